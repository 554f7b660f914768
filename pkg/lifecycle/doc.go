// Package lifecycle is the one start/stop contract of every long-lived Cairn component
// (elector, membership watcher, ops server, engine, stream servers…).
//
// A component implements [Service]: Start(ctx) starts it and returns once it is running (or
// failed to start); Stop() stops it and returns once everything it started has finished.
// Components embed [StartStop], which supplies the rules so each component does not
// re-implement them:
//
//   - Start on a running service is a no-op; Stop on a stopped (or never started) service is
//     a no-op. Both are safe to call from any number of goroutines at once.
//   - The service's body runs in exactly one goroutine owned by the StartStop. Stop cancels its
//     context (cause [ErrStopped]) and waits for it to return: no goroutine outlives its
//     component.
//   - Cancelling the context given to Start stops the body too; Stop is still the call that
//     waits for it.
//   - A service can be started again after it stopped (or after its body returned on its own).
//   - A Start that races with an in-progress Stop waits for that Stop to finish and then starts
//     a fresh run, so Start never reports success for a run that is already shutting down.
//
// The body must not call Stop of its own service (Stop waits for the body): it returns instead.
package lifecycle
