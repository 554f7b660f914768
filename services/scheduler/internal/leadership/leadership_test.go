package leadership

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-io/cairn/pkg/election"
)

func TestNotLeader(t *testing.T) {
	s := New("10.0.0.1:7071")
	_, err := s.Current()
	var nl *NotLeaderError
	if !errors.As(err, &nl) || nl.Leader != "" || status.Code(err) != codes.Unavailable {
		t.Fatalf("no leader: %v", err)
	}
	s.SetObserved(election.Leadership{Epoch: 3, Value: "10.0.0.2:7071"})
	_, err = s.Current()
	if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "10.0.0.2:7071") {
		t.Fatalf("other leader: %v", err)
	}
	s.SetObserved(election.Leadership{Epoch: 4, Value: "10.0.0.1:7071"})
	if _, err := s.Current(); !errors.As(err, &nl) || !nl.Self || s.Leading() {
		t.Fatalf("self observed without a term: %v", err)
	}
}
