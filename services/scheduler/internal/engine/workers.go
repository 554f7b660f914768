package engine

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// sessionClock is the part of a Session its stream handler updates without the engine: when
// the worker was last heard from.
type sessionClock struct {
	lastSeen atomic.Int64 // UnixNano; 0: never
}

// Seen records that a message from the worker arrived at t. Safe for concurrent use; the
// stream handler calls it for every message, heartbeats included.
func (s *Session) Seen(t time.Time) { s.clock.lastSeen.Store(t.UnixNano()) }

// LastSeen is the time of the last Seen, or the zero time.
func (s *Session) LastSeen() time.Time {
	if n := s.clock.lastSeen.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// WorkerLoad is one attached worker as the leader sees it.
type WorkerLoad struct {
	ID       string
	Pool     string
	Capacity int
	// Running counts the attempts assigned to it that have not ended (ASSIGNED or RUNNING).
	Running int
	// Queued counts the QUEUED tasks waiting in its queue at the leader.
	Queued   int
	Draining bool
	LastSeen time.Time
}

type listWorkers struct {
	pool  string
	reply chan []WorkerLoad
}

func (in listWorkers) handle(e *Engine) {
	out := make([]WorkerLoad, 0, len(e.workers))
	for _, w := range e.workers {
		if in.pool != "" && w.pool.name != in.pool {
			continue
		}
		queued := 0
		for _, ref := range w.queue {
			if e.live(ref) {
				queued++
			}
		}
		out = append(out, WorkerLoad{ID: w.id, Pool: w.pool.name, Capacity: w.capacity, Running: w.inflight,
			Queued: queued, Draining: w.draining, LastSeen: w.sess.LastSeen()})
	}
	slices.SortFunc(out, func(a, b WorkerLoad) int { return strings.Compare(a.ID, b.ID) })
	in.reply <- out
}

// Workers returns the workers attached to the engine, of pool (all pools when empty), ordered
// by ID. It waits for the engine's loop, like every input; nothing is written. The answer is
// the engine's memory when the query is handled, before the batch it is part of commits: an
// operator's view, which may count an assignment of that batch that then fails.
func (e *Engine) Workers(ctx context.Context, pool string) ([]WorkerLoad, error) {
	reply := make(chan []WorkerLoad, 1)
	return call(ctx, e, listWorkers{pool: pool, reply: reply}, reply)
}
