package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// Defaults.
const (
	DefaultInterval = time.Second
	DefaultBatch    = 100
	// maxCatchUp bounds the walk over missed fire times (about 8 years of a every-minute
	// schedule); past it the most recent fire time is not reached in one tick but in the next.
	maxCatchUp = 1 << 22
)

// Metrics is what the loop reports; nil records nothing.
type Metrics interface {
	ScheduleFired(skipped int)
}

// Config configures a Cron for one leadership term.
type Config struct {
	Store     *store.Store          // required
	Epoch     int64                 // the term's epoch (required)
	Workflows *engine.WorkflowCache // required
	// Plan hands a created run to the engine (engine.PlanRun). Required.
	Plan     func(ctx context.Context, run model.Run, wf *dag.Workflow) error
	Logger   *slog.Logger
	Metrics  Metrics
	Now      func() time.Time
	Interval time.Duration // between ticks; zero means DefaultInterval
	Batch    int           // due schedules read per tick; zero means DefaultBatch
}

// Cron fires due schedules.
type Cron struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns a Cron.
func New(cfg Config) (*Cron, error) {
	if cfg.Store == nil || cfg.Workflows == nil || cfg.Plan == nil || cfg.Epoch <= 0 {
		return nil, errors.New("cron: Store, Workflows, Plan and a positive Epoch are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	return &Cron{cfg: cfg, log: cfg.Logger.With("component", "cron", "epoch", cfg.Epoch)}, nil
}

// Run ticks until ctx ends (nil) or the epoch is stale (an error wrapping store.ErrStaleEpoch).
// Other errors are logged and retried at the next tick.
func (c *Cron) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := c.Tick(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, store.ErrStaleEpoch) {
				return err
			}
			c.log.Warn("cron tick failed; retrying at the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick fires every schedule due now and returns how many runs it created.
func (c *Cron) Tick(ctx context.Context) (int, error) {
	due, err := c.cfg.Store.DueSchedules(ctx, c.cfg.Now(), c.cfg.Batch)
	if err != nil {
		return 0, err
	}
	fired := 0
	var errs []error
	for _, sc := range due {
		ok, err := c.fire(ctx, sc)
		if err != nil {
			if errors.Is(err, store.ErrStaleEpoch) || ctx.Err() != nil {
				return fired, err
			}
			errs = append(errs, fmt.Errorf("schedule of %s/%s: %w", sc.Namespace, sc.Workflow, err))
			continue
		}
		if ok {
			fired++
		}
	}
	return fired, errors.Join(errs...)
}

// FireKey is the idempotency key of the run for one fire time.
func FireKey(at time.Time) string { return "schedule:" + at.UTC().Format(time.RFC3339) }

// fire fires one due schedule; false when another writer got there first or the schedule
// was dropped.
func (c *Cron) fire(ctx context.Context, sc model.Schedule) (bool, error) {
	log := c.log.With("namespace", sc.Namespace, "workflow", sc.Workflow)
	v, err := c.cfg.Store.GetVersion(ctx, sc.Namespace, sc.Workflow, 0)
	if err != nil {
		return false, err
	}
	wf, err := c.cfg.Workflows.Get(ctx, v.Namespace, v.Workflow, v.Version)
	if err != nil {
		return false, err
	}
	if wf.Schedule == nil {
		log.Info("dropping the schedule row: the workflow's latest version has no schedule", "version", v.Version)
		return false, c.apply(ctx, store.DeleteSchedule{Namespace: sc.Namespace, Workflow: sc.Workflow})
	}

	// The most recent fire time at or before now, counting the ones passed over.
	now := c.cfg.Now()
	fire := sc.NextFireAt
	next := wf.Schedule.Next(fire)
	skipped := 0
	for !next.IsZero() && !next.After(now) && skipped < maxCatchUp {
		fire, next = next, wf.Schedule.Next(next)
		skipped++
	}

	params, err := wf.ResolveParams(nil)
	if err != nil {
		return false, err
	}
	taskIDs := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		taskIDs[i] = t.ID
	}
	run := model.Run{ID: uuid.New(), Namespace: v.Namespace, Workflow: v.Workflow, Version: v.Version, State: model.RunPending, Params: params,
		IdempotencyKey: FireKey(fire), Trigger: model.TriggerSchedule}
	note := fmt.Sprintf("started by schedule %q for fire time %s", wf.Schedule.Expr, fire.UTC().Format(time.RFC3339))
	if skipped > 0 {
		note += fmt.Sprintf("; %d earlier fire time(s) from %s were skipped because no leader was running then",
			skipped, sc.NextFireAt.UTC().Format(time.RFC3339))
	}
	ops := []store.Op{store.InsertRun{Run: run, TaskIDs: taskIDs}}
	if next.IsZero() {
		log.Warn("the schedule never fires again after this; removing it", "cron", wf.Schedule.Expr)
		ops = append(ops, store.DeleteSchedule{Namespace: sc.Namespace, Workflow: sc.Workflow})
	} else {
		ops = append(ops, store.AdvanceSchedule{Namespace: sc.Namespace, Workflow: sc.Workflow, ExpectedNext: sc.NextFireAt, Next: next, FiredAt: fire})
	}
	if err := c.apply(ctx, ops...); err != nil {
		if !errors.Is(err, store.ErrConflict) {
			return false, err
		}
		// Either the schedule moved meanwhile, or this fire time already has its run (its
		// key is taken). In the latter case the schedule must still move on, or it would
		// stay due forever.
		if aerr := c.apply(ctx, ops[1]); aerr != nil {
			log.Info("schedule changed meanwhile; reading it again at the next tick", "fire_time", fire, "err", err)
			return false, nil
		}
		log.Warn("fire time already had its run; schedule advanced without a new run", "fire_time", fire, "err", err)
		return false, nil
	}
	// The note goes in its own write: in the run's group, an insert that found the key
	// taken would make the event's foreign key fail the whole batch instead of the group.
	if err := c.apply(ctx, store.AppendEvent{Event: model.Event{RunID: run.ID, Kind: model.EventNote, Message: note}}); err != nil {
		log.Warn("cannot record the schedule note on the run", "run_id", run.ID, "err", err)
	}
	if skipped > 0 {
		log.Warn("missed fire times skipped: fired only the most recent one", "run_id", run.ID, "fire_time", fire,
			"skipped", skipped, "first_skipped", sc.NextFireAt)
	} else {
		log.Info("schedule fired", "run_id", run.ID, "fire_time", fire)
	}
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.ScheduleFired(skipped)
	}
	if err := c.cfg.Plan(ctx, run, wf); err != nil {
		log.Warn("scheduled run created but not handed to the engine; the next leader will start it", "run_id", run.ID, "err", err)
	}
	return true, nil
}

// apply writes ops as one all-or-nothing group under the term's epoch.
func (c *Cron) apply(ctx context.Context, ops ...store.Op) error {
	var b store.Batch
	b.Add(ops...)
	res, err := c.cfg.Store.Apply(ctx, c.cfg.Epoch, &b)
	if err != nil {
		return err
	}
	return res[0]
}
