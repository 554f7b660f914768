package forward_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdtest"
	"github.com/cairn-io/cairn/services/gateway/internal/forward"
)

var quiet = slog.New(slog.DiscardHandler)

// peer is a SchedulerService that answers ApplyWorkflow with err, or with its name.
type peer struct {
	cairnv1.UnimplementedSchedulerServiceServer
	name string
	err  error
}

func (p *peer) ApplyWorkflow(context.Context, *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	if p.err != nil {
		return nil, p.err
	}
	return &cairnv1.ApplyWorkflowResponse{Workflow: &cairnv1.Workflow{Name: p.name}}, nil
}

func serve(t *testing.T, p *peer) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	cairnv1.RegisterSchedulerServiceServer(s, p)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func campaign(t *testing.T, c *clientv3.Client, addr string) *election.Elector {
	el, err := election.New(election.Config{Client: c, Value: addr, Logger: quiet,
		OnElected: func(ctx context.Context, _ election.Leadership) error { <-ctx.Done(); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(el.Stop)
	return el
}

func apply(f *forward.Forwarder) (string, error) {
	var name string
	err := f.Do(context.Background(), "ApplyWorkflow", func(ctx context.Context, c cairnv1.SchedulerServiceClient) error {
		resp, err := c.ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{})
		name = resp.GetWorkflow().GetName()
		return err
	})
	return name, err
}

func TestForwardAcrossFailover(t *testing.T) {
	etcd := etcdtest.New(t)
	f, err := forward.New(forward.Config{Client: etcd, Timeout: 10 * time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	<-f.Synced()

	// No leader: UNAVAILABLE at once, with a retry hint.
	_, err = apply(f)
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || len(st.Details()) != 1 {
		t.Fatalf("without a leader: %v (details %v)", err, st.Details())
	}
	if _, ok := st.Details()[0].(*errdetails.RetryInfo); !ok {
		t.Errorf("detail %T, want RetryInfo", st.Details()[0])
	}

	// A deposed leader still in office answers UNAVAILABLE: the call waits for the next one.
	old := campaign(t, etcd, serve(t, &peer{name: "old", err: status.Error(codes.Unavailable, "not the leader")}))
	for f.Leader().IsZero() {
		time.Sleep(5 * time.Millisecond)
	}
	next := serve(t, &peer{name: "new"})
	go func() {
		time.Sleep(200 * time.Millisecond)
		campaign(t, etcd, next)
		old.Stop()
	}()
	name, err := apply(f)
	if err != nil || name != "new" {
		t.Fatalf("across a failover: %q, %v; want the new leader's answer", name, err)
	}
	if f.Leader().Value != next {
		t.Errorf("leader %q, want %q", f.Leader().Value, next)
	}

}

// TestForwardGivesUpAfterTimeout: a leader that keeps answering UNAVAILABLE yields
// UNAVAILABLE once the forward timeout is spent, never a hang.
func TestForwardGivesUpAfterTimeout(t *testing.T) {
	etcd := etcdtest.New(t)
	p := &peer{err: status.Error(codes.Unavailable, "not the leader")}
	campaign(t, etcd, serve(t, p))
	f, err := forward.New(forward.Config{Client: etcd, Timeout: 300 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	for f.Leader().IsZero() {
		time.Sleep(5 * time.Millisecond)
	}
	_, err = apply(f)
	if st := status.Convert(err); st.Code() != codes.Unavailable || len(st.Details()) != 1 {
		t.Fatalf("leader stuck unavailable: %v", err)
	}
	// Other errors pass through unchanged, without retries.
	p.err = status.Error(codes.FailedPrecondition, "run is not finished")
	if _, err = apply(f); status.Code(err) != codes.FailedPrecondition || status.Convert(err).Message() != "run is not finished" {
		t.Fatalf("leader error: %v", err)
	}
}
