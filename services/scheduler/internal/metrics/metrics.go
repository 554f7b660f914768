package metrics

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// Metrics holds the scheduler's instruments.
type Metrics struct {
	runs      metric.Int64Counter
	attempts  metric.Int64Counter
	queueWait metric.Float64Histogram
	depth     metric.Int64Gauge
	steals    metric.Int64Counter
	batch     metric.Int64Histogram
	commit    metric.Float64Histogram
	leader    metric.Int64Gauge
	epoch     metric.Int64Gauge
	workers   metric.Int64UpDownCounter
	fires     metric.Int64Counter
	skipped   metric.Int64Counter
}

var _ engine.Metrics = (*Metrics)(nil)

// New creates the instruments on meter.
func New(meter metric.Meter) (*Metrics, error) {
	var m Metrics
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	var err error
	m.runs, err = meter.Int64Counter("cairn.runs.finished", metric.WithDescription("Runs that reached a terminal state, by state."))
	add(err)
	m.attempts, err = meter.Int64Counter("cairn.task.attempts", metric.WithDescription("Task attempts that ended, by outcome."))
	add(err)
	m.queueWait, err = meter.Float64Histogram("cairn.dispatch.queue_wait", metric.WithUnit("s"),
		metric.WithDescription("Time a task waited between QUEUED and its assignment to a worker."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300))
	add(err)
	m.depth, err = meter.Int64Gauge("cairn.queue.depth", metric.WithDescription("Tasks waiting in a worker's queue."))
	add(err)
	m.steals, err = meter.Int64Counter("cairn.steals", metric.WithDescription("Tasks an idle worker stole from a busy peer's queue."))
	add(err)
	m.batch, err = meter.Int64Histogram("cairn.commit.batch_groups", metric.WithDescription("Groups of operations per group-commit transaction."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096))
	add(err)
	m.commit, err = meter.Float64Histogram("cairn.commit.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of one group-commit transaction, retries included."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5))
	add(err)
	m.leader, err = meter.Int64Gauge("cairn.leader", metric.WithDescription("1 while this scheduler leads, 0 otherwise."))
	add(err)
	m.epoch, err = meter.Int64Gauge("cairn.leader.epoch", metric.WithDescription("Epoch of this scheduler's leadership term; 0 while following."))
	add(err)
	m.workers, err = meter.Int64UpDownCounter("cairn.workers.connected", metric.WithDescription("Worker streams attached to this scheduler."))
	add(err)
	m.fires, err = meter.Int64Counter("cairn.schedule.fires", metric.WithDescription("Runs created by cron schedules."))
	add(err)
	m.skipped, err = meter.Int64Counter("cairn.schedule.skipped", metric.WithDescription("Cron fire times skipped because the leader was down past them."))
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.leader.Record(context.Background(), 0)
	m.epoch.Record(context.Background(), 0)
	return &m, nil
}

var bg = context.Background()

// BatchCommitted records one group-commit transaction.
func (m *Metrics) BatchCommitted(groups int, d time.Duration) {
	if m == nil {
		return
	}
	m.batch.Record(bg, int64(groups))
	m.commit.Record(bg, d.Seconds())
}

// AttemptFinished counts an attempt that ended with outcome.
func (m *Metrics) AttemptFinished(outcome string) {
	if m == nil {
		return
	}
	m.attempts.Add(bg, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}

// RunFinished counts a run that ended in state.
func (m *Metrics) RunFinished(state string) {
	if m == nil {
		return
	}
	m.runs.Add(bg, 1, metric.WithAttributes(attribute.String("state", state)))
}

// Steal counts one stolen task.
func (m *Metrics) Steal() {
	if m == nil {
		return
	}
	m.steals.Add(bg, 1)
}

// Dispatched records how long an assigned task waited in its queue.
func (m *Metrics) Dispatched(queueWait time.Duration) {
	if m == nil {
		return
	}
	m.queueWait.Record(bg, max(0, queueWait.Seconds()))
}

// QueueDepth records a worker's queue length.
func (m *Metrics) QueueDepth(worker, pool string, depth int) {
	if m == nil {
		return
	}
	m.depth.Record(bg, int64(depth), metric.WithAttributes(attribute.String("worker", worker), attribute.String("pool", pool)))
}

// Leading records that this replica leads with epoch (leading=false, epoch 0: following).
func (m *Metrics) Leading(leading bool, epoch int64) {
	if m == nil {
		return
	}
	v := int64(0)
	if leading {
		v = 1
	}
	m.leader.Record(bg, v)
	m.epoch.Record(bg, epoch)
}

// WorkerConnected adds delta (+1 attach, -1 detach) to the connected workers.
func (m *Metrics) WorkerConnected(delta int) {
	if m == nil {
		return
	}
	m.workers.Add(bg, int64(delta))
}

// ScheduleFired counts a run created by a schedule and the fire times skipped before it.
func (m *Metrics) ScheduleFired(skipped int) {
	if m == nil {
		return
	}
	m.fires.Add(bg, 1)
	if skipped > 0 {
		m.skipped.Add(bg, int64(skipped))
	}
}
