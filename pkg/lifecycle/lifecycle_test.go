package lifecycle_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/lifecycle"
)

// ticker is a minimal service: its body counts live goroutines and waits for cancellation.
type ticker struct {
	lifecycle.StartStop
	live    *atomic.Int32 // bodies running right now
	starts  atomic.Int32  // bodies started in total
	initErr error
}

func (t *ticker) Start(ctx context.Context) error {
	return t.StartFunc(ctx, func(ctx context.Context) (lifecycle.RunFunc, error) {
		if t.initErr != nil {
			return nil, t.initErr
		}
		return func(ctx context.Context) error {
			if n := t.live.Add(1); n != 1 {
				panic("two bodies of one service running at once")
			}
			t.starts.Add(1)
			defer t.live.Add(-1)
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), lifecycle.ErrStopped) && ctx.Err() == nil {
				return errors.New("body woke without cancellation")
			}
			return nil
		}, nil
	})
}

var _ lifecycle.Service = (*ticker)(nil)

func newTicker() *ticker { return &ticker{live: new(atomic.Int32)} }

func TestStartStopManyTimes(t *testing.T) {
	svc := newTicker()
	ctx := context.Background()
	for i := range 100 {
		if err := svc.Start(ctx); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if !svc.Running() {
			t.Fatalf("start %d: not running after Start", i)
		}
		svc.Stop()
		if svc.Running() {
			t.Fatalf("stop %d: still running after Stop", i)
		}
		if n := svc.live.Load(); n != 0 {
			t.Fatalf("stop %d: %d bodies still running after Stop returned", i, n)
		}
	}
	// Bodies start asynchronously, but each Stop waited for its body, so all 100 ran.
	if n := svc.starts.Load(); n != 100 {
		t.Fatalf("bodies started = %d, want 100", n)
	}
}

func TestStartIsIdempotent(t *testing.T) {
	svc := newTicker()
	for range 10 {
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	svc.Stop()
	if n := svc.starts.Load(); n != 1 {
		t.Fatalf("10 Starts without Stop ran %d bodies, want 1", n)
	}
}

func TestStopBeforeStart(t *testing.T) {
	svc := newTicker()
	svc.Stop() // must not block or panic
	svc.Stop()
	select {
	case <-svc.Done():
	default:
		t.Fatal("Done of a never-started service is not closed")
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	if n := svc.starts.Load(); n != 1 {
		t.Fatalf("bodies started = %d, want 1", n)
	}
}

func TestConcurrentStopAndStart(t *testing.T) {
	svc := newTicker()
	for range 20 {
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(svc.Stop)
			wg.Go(func() {
				if err := svc.Start(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		svc.Stop()
		if n := svc.live.Load(); n != 0 {
			t.Fatalf("%d bodies running after the final Stop", n)
		}
	}
}

func TestConcurrentStopWaitsForBody(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	var s lifecycle.StartStop
	err := s.StartFunc(context.Background(), func(context.Context) (lifecycle.RunFunc, error) {
		return func(ctx context.Context) error {
			<-ctx.Done()
			<-release // slow cleanup
			finished.Store(true)
			return nil
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			s.Stop()
			if !finished.Load() {
				t.Error("Stop returned before the body finished its cleanup")
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // let the Stops block; the assertion does not depend on it
	close(release)
	wg.Wait()
}

func TestInitErrorLeavesServiceStopped(t *testing.T) {
	svc := newTicker()
	svc.initErr = errors.New("port in use")
	if err := svc.Start(context.Background()); !errors.Is(err, svc.initErr) {
		t.Fatalf("Start error = %v, want the init error", err)
	}
	if svc.Running() {
		t.Fatal("running after a failed init")
	}
	svc.Stop()
	svc.initErr = nil
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("restart after failed init: %v", err)
	}
	svc.Stop()
}

func TestParentCancelStopsBody(t *testing.T) {
	svc := newTicker()
	ctx, cancel := context.WithCancel(context.Background())
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-svc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("body still running 10s after its parent context was cancelled")
	}
	svc.Stop() // a no-op now, must not block
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !svc.Running() {
		t.Fatal("a service whose body ended cannot be started again")
	}
	svc.Stop()
}

func TestBodyErrorAndPanicAreKept(t *testing.T) {
	var s lifecycle.StartStop
	boom := errors.New("boom")
	start := func(body lifecycle.RunFunc) {
		t.Helper()
		if err := s.StartFunc(context.Background(), func(context.Context) (lifecycle.RunFunc, error) { return body, nil }); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
	}
	start(func(context.Context) error { return boom })
	if !errors.Is(s.Err(), boom) {
		t.Fatalf("Err = %v, want %v", s.Err(), boom)
	}
	start(func(context.Context) error { panic("kaboom") })
	if s.Err() == nil {
		t.Fatal("a panicking body left no error")
	}
}

func TestStartAllStopsStartedOnFailure(t *testing.T) {
	a, b := newTicker(), newTicker()
	c := newTicker()
	c.initErr = errors.New("cannot bind")
	err := lifecycle.StartAll(context.Background(), a, b, c)
	if !errors.Is(err, c.initErr) {
		t.Fatalf("StartAll error = %v, want the third service's error", err)
	}
	if a.Running() || b.Running() {
		t.Fatal("services started before the failure were left running")
	}
	if err := lifecycle.StartAll(context.Background(), a, b); err != nil {
		t.Fatal(err)
	}
	lifecycle.StopAll(a, b)
	if a.Running() || b.Running() {
		t.Fatal("StopAll left a service running")
	}
}

func TestNilContextIsAnError(t *testing.T) {
	var s lifecycle.StartStop
	//lint:ignore SA1012 the nil context is the bad input under test
	if err := s.StartFunc(nil, func(context.Context) (lifecycle.RunFunc, error) { return nil, nil }); err == nil { //nolint:staticcheck
		t.Fatal("nil context accepted")
	}
}
