package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrStopped is the cancellation cause of a service's context when Stop was called.
var ErrStopped = errors.New("lifecycle: service stopped")

// Service is a long-lived component.
type Service interface {
	// Start starts the service and returns once it runs, or an error if it could not start
	// (then nothing of it is left running). Starting a running service does nothing.
	Start(ctx context.Context) error
	// Stop stops the service and waits until everything it started has finished. Stopping a
	// stopped service does nothing.
	Stop()
}

// RunFunc is the body of a service. It runs until ctx is cancelled, then releases what it
// holds and returns. Its error (nil for a normal stop) is kept for [StartStop.Err].
type RunFunc func(ctx context.Context) error

// StartStop makes Start/Stop idempotent and concurrency-safe and owns the service's goroutine.
// Embed it in a component and call [StartStop.StartFunc] from the component's Start. The zero
// value is ready to use; a StartStop must not be copied after first use.
type StartStop struct {
	mu  sync.Mutex
	cur *run // the current (or last) run; nil before the first Start
}

// run is one Start…Stop cycle.
type run struct {
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the body has returned
	err      error         // the body's result; written before done is closed
	stopping bool          // Stop has cancelled this run (guarded by StartStop.mu)
}

func (r *run) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// StartFunc starts the service unless it is already running. init runs synchronously with the
// run's context (cancelled on Stop) and prepares what the run needs (listen on a socket, grant a
// lease…); if it fails, the service stays stopped and StartFunc returns init's error. Otherwise
// the returned RunFunc runs in a goroutine owned by s, and StartFunc returns nil. A Stop that
// arrives during init waits for it, so init must be quick or honour ctx; slow, retried work
// (dialing, campaigning) belongs in the RunFunc.
func (s *StartStop) StartFunc(ctx context.Context, init func(ctx context.Context) (RunFunc, error)) error {
	if ctx == nil {
		return errors.New("lifecycle: Start called with a nil context")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.cur; r != nil && !r.finished() {
		if !r.stopping {
			return nil // already running
		}
		// A Stop is in progress: let it finish, then start afresh. The body never takes s.mu,
		// so waiting here cannot deadlock with it.
		<-r.done
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	body, err := init(runCtx)
	if err == nil && body == nil {
		err = errors.New("lifecycle: init returned neither a run function nor an error")
	}
	if err != nil {
		cancel(err)
		return err
	}
	r := &run{cancel: cancel, done: make(chan struct{})}
	s.cur = r
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("lifecycle: service panicked: %v", p)
			}
			cancel(ErrStopped)
			close(r.done)
		}()
		r.err = body(runCtx)
	}()
	return nil
}

// Stop cancels the running body (cause ErrStopped) and waits for it to return. It does nothing
// if the service is not running. Concurrent calls all wait for the same body.
func (s *StartStop) Stop() {
	s.mu.Lock()
	r := s.cur
	if r == nil || r.finished() {
		s.mu.Unlock()
		return
	}
	r.stopping = true
	s.mu.Unlock()
	r.cancel(ErrStopped)
	<-r.done
}

// Done returns a channel closed when the current (or last) run's body has returned. Before the
// first Start it returns a closed channel: nothing is running.
func (s *StartStop) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return s.cur.done
}

// Running reports whether the body is running (started and not yet returned).
func (s *StartStop) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && !s.cur.finished()
}

// Err returns what the last finished body returned (nil while it runs, and for a clean stop).
func (s *StartStop) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || !s.cur.finished() {
		return nil
	}
	return s.cur.err
}

// StartAll starts services in order. If one fails, those already started are stopped (in
// reverse order) and the error names the failing one by position.
func StartAll(ctx context.Context, services ...Service) error {
	for i, svc := range services {
		if err := svc.Start(ctx); err != nil {
			StopAll(services[:i]...)
			return fmt.Errorf("start service %d (%T): %w", i, svc, err)
		}
	}
	return nil
}

// StopAll stops services in reverse order, each one after the previous has finished: the
// component started last (which may depend on the earlier ones) stops first.
func StopAll(services ...Service) {
	for _, svc := range slices.Backward(services) {
		svc.Stop()
	}
}
