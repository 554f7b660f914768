package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/membership"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/cron"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
	"github.com/cairn-io/cairn/services/scheduler/internal/leadership"
)

// lead is the elector's OnElected: one leadership term. ctx is cancelled the moment the term
// ends (session lost, resign, shutdown); everything leader-side derives from it and stops at
// once. Returning an error makes the elector resign and campaign again after a backoff.
func (a *App) lead(ctx context.Context, l election.Leadership) error {
	log := a.log.With("epoch", l.Epoch)
	log.Info("elected; taking office")
	if err := a.takeLeadership(ctx, l.Epoch); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	// The live workers, for the rebuild (whose attempts may be re-adopted) and for the
	// reaper (a removed key loses the worker's attempts).
	events := make(chan membership.Event, 1024)
	watcher, err := membership.NewWatcher(a.etcd.Load(), membership.WithPrefix(a.cfg.EtcdPrefix),
		membership.WithLogger(a.log), membership.WithEvents(events))
	if err != nil {
		return err
	}
	if err := watcher.Start(ctx); err != nil {
		return fmt.Errorf("membership watcher: %w", err)
	}
	defer watcher.Stop()
	select {
	case <-watcher.Synced():
	case <-ctx.Done():
		return nil
	}

	eng := engine.New(engine.Config{
		Store: a.store, Epoch: l.Epoch, Holder: a.cfg.ID, Logger: a.log, Workflows: a.cache,
		LiveWorkers: func() map[string]bool {
			live := map[string]bool{}
			for _, m := range watcher.Members() {
				live[m.ID] = true
			}
			return live
		},
		AttemptGrace: a.cfg.AttemptGrace, AdoptGrace: a.cfg.AdoptGrace, Metrics: a.metrics,
		StreamTimeout: StreamTimeout,
	})
	crn, err := cron.New(cron.Config{Store: a.store, Epoch: l.Epoch, Workflows: a.cache, Plan: eng.PlanRun,
		Logger: a.log, Metrics: a.metrics, Now: a.cfg.Now, Interval: a.cfg.CronInterval})
	if err != nil {
		return err
	}
	term := &leadership.Term{Engine: eng, Epoch: l.Epoch, Holder: a.cfg.ID}

	g, gctx := errgroup.WithContext(ctx)
	// Withdraw the term the moment it ends, before anything else winds down.
	stopWithdraw := context.AfterFunc(gctx, func() {
		a.state.Withdraw(term)
		a.metrics.Leading(false, 0)
	})
	defer stopWithdraw()
	g.Go(func() error {
		if err := eng.Run(gctx); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		for {
			select {
			case ev := <-events:
				if ev.Type != membership.Removed {
					continue
				}
				if m, ok := watcher.Member(ev.Member.ID); ok && m.Incarnation > ev.Member.Incarnation {
					// The worker registered again before this removal reached us: its new
					// stream's hello re-attaches (or loses) its attempts; telling the engine
					// it is gone now would only kick the new stream.
					log.Info("worker re-registered; ignoring the removal of its old registration", "worker", ev.Member.ID)
					continue
				}
				log.Info("worker registration gone; its attempts are lost", "worker", ev.Member.ID)
				if err := eng.WorkerGone(gctx, ev.Member.ID); err != nil {
					return nil // the engine stopped or the term ended
				}
			case <-gctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error {
		select {
		case <-eng.Ready():
		case <-gctx.Done():
			return nil
		}
		a.state.Publish(term)
		a.metrics.Leading(true, l.Epoch)
		log.Info("leading: serving workers and API calls")
		if err := crn.Run(gctx); err != nil {
			return fmt.Errorf("cron: %w", err)
		}
		return nil
	})
	err = g.Wait()
	a.state.Withdraw(term)
	a.metrics.Leading(false, 0)
	if ctx.Err() != nil {
		log.Info("leadership ended", "cause", context.Cause(ctx))
		return nil
	}
	log.Error("leadership given up", "err", err)
	return err
}

// takeLeadership raises the epoch in PostgreSQL, retrying transient errors until ctx ends.
func (a *App) takeLeadership(ctx context.Context, epoch int64) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := a.store.TakeLeadership(ctx, epoch, a.cfg.ID)
		if err == nil {
			return nil
		}
		if errors.Is(err, store.ErrStaleEpoch) || errors.Is(err, store.ErrInvalidArgument) || ctx.Err() != nil {
			return fmt.Errorf("take leadership: %w", err)
		}
		a.log.Warn("cannot record the leadership in PostgreSQL; retrying", "epoch", epoch, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
