package worker

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// metrics are the worker's instruments. The zero value records nothing (noop instruments are
// installed by newMetrics for tests that skip register).
type metrics struct {
	attemptsTotal metric.Int64Counter
	reconnects    metric.Int64Counter
	leaseLost     metric.Int64Counter
}

// register creates the instruments on meter. Gauges read the worker's state when scraped.
//
//	cairn_worker_attempts_total{outcome}   attempts ended, by outcome (succeeded, exit_code,
//	                                        timeout, cancelled, …, rejected, handed_back)
//	cairn_worker_running_attempts          attempts executing now
//	cairn_worker_free_slots                slots neither running, granted, nor held by a result (see Worker)
//	cairn_worker_results_pending_ack       results kept until the leader acknowledges them
//	cairn_worker_reconnects_total          streams to the leader that ended and were retried
//	cairn_worker_lease_lost_total          etcd registrations lost
func (m *metrics) register(meter metric.Meter, w *Worker) error {
	var errs [6]error
	m.attemptsTotal, errs[0] = meter.Int64Counter("cairn.worker.attempts", metric.WithDescription("Attempts ended on this worker, by outcome."))
	m.reconnects, errs[1] = meter.Int64Counter("cairn.worker.reconnects", metric.WithDescription("Streams to the leader that ended and were reopened."))
	m.leaseLost, errs[2] = meter.Int64Counter("cairn.worker.lease_lost", metric.WithDescription("Times the worker's etcd registration was lost."))
	running, err3 := meter.Int64ObservableGauge("cairn.worker.running_attempts", metric.WithDescription("Attempts executing now."))
	free, err4 := meter.Int64ObservableGauge("cairn.worker.free_slots", metric.WithDescription("Slots neither running, granted to the leader, nor held by a result beyond the outbox's free share."))
	pending, err5 := meter.Int64ObservableGauge("cairn.worker.results_pending_ack", metric.WithDescription("Results kept until the leader acknowledges them."))
	errs[3], errs[4], errs[5] = err3, err4, err5
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		o.ObserveInt64(running, int64(len(w.running)))
		o.ObserveInt64(free, int64(w.freeLocked()))
		o.ObserveInt64(pending, int64(len(w.outbox)))
		return nil
	}, running, free, pending)
	return err
}

func newMetrics() metrics {
	meter := noop.NewMeterProvider().Meter("")
	c, _ := meter.Int64Counter("")
	return metrics{attemptsTotal: c, reconnects: c, leaseLost: c}
}

func (m *metrics) attempts(ctx context.Context, outcome string) {
	m.attemptsTotal.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}
