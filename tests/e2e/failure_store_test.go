package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// TestFailurePostgresDown: stop PostgreSQL for 10s while a run is mid-flight. No process
// exits (the leader retries its batch, workers keep their results), and once PostgreSQL is
// back the run completes with every invariant intact.
func TestFailurePostgresDown(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Schedulers: 2, Workers: 2, WorkerConcurrency: 1})
	name, _ := c.Apply(chain)
	run := c.StartRun(name, nil)
	c.WaitAttemptRunning(run, "t2", 20*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.PG.Stop(ctx); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	down := time.Now()
	// Hold the outage for 10s, checking all the while that no process exits.
	for time.Since(down) < 10*time.Second {
		for _, p := range append(append([]*framework.Process{}, c.Schedulers...), c.Workers...) {
			select {
			case <-p.Exited():
				code, _ := p.Wait(time.Second)
				t.Fatalf("%s exited (code %d) while PostgreSQL was down", p.Name, code)
			default:
			}
		}
		time.Sleep(100 * time.Millisecond) // the outage's duration, not a synchronisation
	}
	if err := c.PG.Restart(ctx); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	t.Logf("PostgreSQL down for %v", time.Since(down).Round(time.Millisecond))

	if got := c.WaitRun(run, 30*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run finished %s, want SUCCEEDED", got)
	}
	t.Logf("PostgreSQL back → run SUCCEEDED %v after the outage began", time.Since(down).Round(time.Millisecond))
	for _, p := range append(append([]*framework.Process{}, c.Schedulers...), c.Workers...) {
		if !p.Running() {
			t.Errorf("%s is not running after the outage", p.Name)
		}
	}
	c.CheckInvariants(t)
}
