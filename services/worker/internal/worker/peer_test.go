package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/etcdtest"
)

// This file is the test peer: a small leader side of WorkerService.Connect on 127.0.0.1 that
// records what a worker sends and lets the test answer, registered as leader in etcd through
// a real election.

const waitLimit = 15 * time.Second

// testLeader is one "scheduler replica" of a test.
type testLeader struct {
	cairnv1.UnimplementedWorkerServiceServer
	addr    string
	streams chan *peer
	elector *election.Elector
}

func startLeader(t *testing.T) *testLeader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &testLeader{addr: ln.Addr().String(), streams: make(chan *peer, 16)}
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	cairnv1.RegisterWorkerServiceServer(srv, l)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return l
}

// campaign makes l a candidate; it returns once l leads.
func (l *testLeader) campaign(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	l.campaignAsync(t, cli)
	waitUntil(t, "leader elected", func() bool { _, ok := l.elector.Leadership(); return ok })
}

// campaignAsync makes l a candidate without waiting to win.
func (l *testLeader) campaignAsync(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	e, err := election.New(election.Config{Client: cli, Value: l.addr, SessionTTL: 2 * time.Second,
		OnElected: func(ctx context.Context, _ election.Leadership) error { <-ctx.Done(); return nil },
		Logger:    slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.elector = e
	t.Cleanup(e.Stop)
}

// Connect records one worker stream until the test drops it.
func (l *testLeader) Connect(stream cairnv1.WorkerService_ConnectServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetHello() == nil {
		return status.Error(codes.InvalidArgument, "first message must be hello")
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	p := &peer{hello: first.GetHello(), stream: stream, drop: cancel, done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				cancel(err)
				return
			}
			p.record(m)
		}
	}()
	l.streams <- p
	<-ctx.Done()
	close(p.done)
	return status.Error(codes.Unavailable, "stream dropped by the test leader")
}

// accept waits for the next worker stream.
func (l *testLeader) accept(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-l.streams:
		return p
	case <-time.After(waitLimit):
		t.Fatalf("no worker connected to %s", l.addr)
		return nil
	}
}

// peer is one worker stream seen by a test leader.
type peer struct {
	hello  *cairnv1.WorkerHello
	stream cairnv1.WorkerService_ConnectServer
	drop   context.CancelCauseFunc
	done   chan struct{}

	sendMu  sync.Mutex
	mu      sync.Mutex
	msgs    []*cairnv1.WorkerMessage
	claimed map[int]bool
	changed chan struct{}
}

func (p *peer) record(m *cairnv1.WorkerMessage) {
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

func (p *peer) all() []*cairnv1.WorkerMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*cairnv1.WorkerMessage(nil), p.msgs...)
}

// await returns the first unclaimed message matching match, waiting for it.
func (p *peer) await(t *testing.T, what string, match func(*cairnv1.WorkerMessage) bool) *cairnv1.WorkerMessage {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		p.mu.Lock()
		if p.claimed == nil {
			p.claimed = map[int]bool{}
		}
		for i, m := range p.msgs {
			if !p.claimed[i] && match(m) {
				p.claimed[i] = true
				p.mu.Unlock()
				return m
			}
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; received %v", what, p.all())
		}
	}
}

func (p *peer) send(t *testing.T, m *cairnv1.SchedulerMessage) {
	t.Helper()
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if err := p.stream.Send(m); err != nil {
		t.Fatalf("send %v: %v", m, err)
	}
}

func (p *peer) welcome(t *testing.T, adopted, rejected []*cairnv1.AttemptRef) {
	t.Helper()
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Welcome{Welcome: &cairnv1.SchedulerWelcome{
		SchedulerId: "test", Epoch: 1, Adopted: adopted, Rejected: rejected,
		HeartbeatInterval: durationpb.New(200 * time.Millisecond)}}})
}

func (p *peer) assign(t *testing.T, a *cairnv1.Assignment) {
	t.Helper()
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Assignment{Assignment: a}})
}

func (p *peer) ack(t *testing.T, r *cairnv1.AttemptResult, accepted bool) {
	t.Helper()
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_ResultAck{ResultAck: &cairnv1.ResultAck{
		AttemptId: r.GetAttemptId(), ResultId: r.GetResultId(), Accepted: accepted}}})
}

func (p *peer) cancel(t *testing.T, attemptID string, token int64, reason string) {
	t.Helper()
	p.send(t, &cairnv1.SchedulerMessage{Msg: &cairnv1.SchedulerMessage_Cancel{Cancel: &cairnv1.CancelAttempt{
		AttemptId: attemptID, FencingToken: token, Reason: reason}}})
}

// awaitCredits waits for the next unclaimed credit grant.
func (p *peer) awaitCredits(t *testing.T) int32 {
	t.Helper()
	return p.await(t, "credits", func(m *cairnv1.WorkerMessage) bool { return m.GetCredits() != nil }).GetCredits().GetFreeSlots()
}

func (p *peer) awaitStarted(t *testing.T, attemptID string) *cairnv1.AttemptStarted {
	t.Helper()
	return p.await(t, "started of "+attemptID, func(m *cairnv1.WorkerMessage) bool {
		return m.GetStarted().GetAttemptId() == attemptID
	}).GetStarted()
}

func (p *peer) awaitResult(t *testing.T, attemptID string) *cairnv1.AttemptResult {
	t.Helper()
	return p.await(t, "result of "+attemptID, func(m *cairnv1.WorkerMessage) bool {
		return m.GetResult().GetAttemptId() == attemptID
	}).GetResult()
}

// creditsGranted sums the credits of every message received.
func (p *peer) creditsGranted() int {
	n := 0
	for _, m := range p.all() {
		n += int(m.GetCredits().GetFreeSlots())
	}
	return n
}

// shell builds a shell assignment.
func shell(id string, token int64, script string, env map[string]string) *cairnv1.Assignment {
	return &cairnv1.Assignment{AttemptId: id, RunId: "run-1", TaskId: "task-" + id, Attempt: 1, FencingToken: token,
		IdempotencyKey: "run-1/task-" + id, Workflow: "wf",
		Spec: &cairnv1.TaskSpec{Type: cairnv1.TaskType_TASK_TYPE_SHELL,
			Kind: &cairnv1.TaskSpec_Shell{Shell: &cairnv1.ShellTaskSpec{Script: script, Env: env}}}}
}

// sleeper is a shell assignment that writes its pid to a file, then sleeps for 30 s; pidOf
// reads the pid once the file is written.
func sleeper(t *testing.T, id string, token int64) (*cairnv1.Assignment, string) {
	pidfile := filepath.Join(t.TempDir(), id+".pid")
	return shell(id, token, `echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 30`, map[string]string{"PIDFILE": pidfile}), pidfile
}

func pidOf(t *testing.T, pidfile string) int {
	t.Helper()
	var pid int
	waitUntil(t, "pid file "+pidfile, func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running is a worker started by a test.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// startWorker runs a worker against srv with test-sized timings; mod adjusts its config. The
// worker is stopped (and waited for) when the test ends.
func startWorker(t *testing.T, srv *etcdtest.Server, mod func(*Config)) *running {
	t.Helper()
	cfg := Config{
		EtcdEndpoints: srv.Endpoints(), ID: "w1", Concurrency: 2, LeaseTTL: 2 * time.Second,
		DrainTimeout: 10 * time.Second, KillGrace: time.Second,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		ScratchRoot: t.TempDir(), Insecure: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop")
		}
	})
	return r
}

// wait waits for Run to return and gives its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
		return nil
	}
}

// workerKey reads the worker's etcd key: its lease, or 0 when it is absent.
func workerKey(t *testing.T, cli *clientv3.Client, id string) (lease int64, exists bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/cairn/workers/"+id)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0, false
	}
	return resp.Kvs[0].Lease, true
}

func (p *peer) String() string { return fmt.Sprintf("stream of %s", p.hello.GetWorkerId()) }

func clientv3LeaseID(id int64) clientv3.LeaseID { return clientv3.LeaseID(id) }
