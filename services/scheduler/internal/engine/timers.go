package engine

import (
	"container/heap"
	"time"

	"github.com/cairn-io/cairn/pkg/model"
)

type timerKind uint8

const (
	timerRetry    timerKind = iota // a RETRY_WAIT task's next attempt is due
	timerDeadline                  // an attempt's leader-side deadline
	timerAdopt                     // the adoption grace of an attempt found after failover
	timerStart                     // an attempt's start, kept in memory, is due to be written
)

// timer is one scheduled check. Timers are never cancelled: each checks, when it fires,
// that the task is still in the situation it was armed for (same attempt or token).
type timer struct {
	at      time.Time
	kind    timerKind
	ref     taskRef
	token   int64
	attempt int
}

type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return x
}

func (h *timerHeap) push(t timer) { heap.Push(h, t) }

func (h timerHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].at, true
}

// fireTimers handles every timer that is due.
func (e *Engine) fireTimers() {
	now := e.cfg.Now()
	for len(e.timers) > 0 && !e.timers[0].at.After(now) {
		t := heap.Pop(&e.timers).(timer)
		ref := t.ref
		if e.runs[ref.run.run.ID] != ref.run {
			continue // the run ended or was reloaded
		}
		task := ref.task()
		g := e.tx.group(ref.run.run.ID)
		switch t.kind {
		case timerRetry:
			if task.state != model.TaskRetryWait || task.attempt != t.attempt {
				break
			}
			rs := ref.run
			if rs.wf.MaxActiveTasks > 0 && rs.active >= rs.wf.MaxActiveTasks {
				rs.throttle(ref.idx)
				break
			}
			e.queueTask(g, ref, "retry due")
		case timerDeadline:
			if task.token == t.token && task.state.Active() {
				e.expire(g, ref)
			}
		case timerStart:
			if task.token == t.token && task.state == model.TaskAssigned {
				e.writeStart(g, ref)
			}
		case timerAdopt:
			if task.token == t.token && task.state.Active() && task.unconfirmed {
				e.lose(g, ref, "worker "+task.worker+" did not re-attach it after the leader changed")
			}
		}
		g.close()
	}
}
