package leadership

import (
	"fmt"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/services/scheduler/internal/engine"
)

// Term is one leadership term as the API servers see it.
type Term struct {
	Engine *engine.Engine
	Epoch  int64
	Holder string // this replica's id
}

// State is the replica's view of leadership. The zero value is not usable: use New.
type State struct {
	self     atomic.Pointer[string] // this replica's advertised gRPC address
	term     atomic.Pointer[Term]
	observed atomic.Pointer[election.Leadership]
}

// New returns a State for the replica advertising self (which SetSelf may set later).
func New(self string) *State {
	s := &State{}
	s.SetSelf(self)
	return s
}

// SetSelf sets the address this replica advertises.
func (s *State) SetSelf(addr string) { s.self.Store(&addr) }

// Publish makes t the current term.
func (s *State) Publish(t *Term) { s.term.Store(t) }

// Withdraw clears the current term if it is still t.
func (s *State) Withdraw(t *Term) { s.term.CompareAndSwap(t, nil) }

// SetObserved records the leader last seen in etcd (the zero Leadership: nobody leads).
func (s *State) SetObserved(l election.Leadership) { s.observed.Store(&l) }

// Observed returns the leader last seen in etcd and whether one is known.
func (s *State) Observed() (election.Leadership, bool) {
	l := s.observed.Load()
	if l == nil || l.IsZero() {
		return election.Leadership{}, false
	}
	return *l, true
}

// Leading reports whether this replica has a running term.
func (s *State) Leading() bool {
	_, err := s.Current()
	return err == nil
}

// Current returns the running term, or a *NotLeaderError.
func (s *State) Current() (*Term, error) {
	t := s.term.Load()
	if t != nil {
		select {
		case <-t.Engine.Done():
		default:
			return t, nil
		}
	}
	l, ok := s.Observed()
	switch {
	case !ok:
		return nil, &NotLeaderError{}
	case l.Value == *s.self.Load():
		return nil, &NotLeaderError{Leader: l.Value, Self: true}
	}
	return nil, &NotLeaderError{Leader: l.Value}
}

// NotLeaderError says this replica cannot serve leader work. It converts to gRPC UNAVAILABLE.
type NotLeaderError struct {
	// Leader is the address of the leader observed in etcd; empty when nobody leads.
	Leader string
	// Self: etcd says this replica leads, but its term is not serving (taking office,
	// rebuilding its state, or just deposed).
	Self bool
}

func (e *NotLeaderError) Error() string {
	switch {
	case e.Leader == "":
		return "this scheduler is not the leader and no leader is elected right now; retry shortly"
	case e.Self:
		return fmt.Sprintf("this scheduler (%s) is taking office or leaving it and does not serve yet; retry shortly", e.Leader)
	}
	return fmt.Sprintf("this scheduler is not the leader; the leader is at %s", e.Leader)
}

// GRPCStatus makes status.FromError report UNAVAILABLE with the message above.
func (e *NotLeaderError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}
