package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/election"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/tests/e2e/framework"
)

// Security tests of the internal services, over the real binaries on loopback: mutual TLS,
// the role of each certificate, and worker identity (docs/security-tls.md).

// internalMethods lists every method of SchedulerService and WorkerService, from the
// descriptors, so that a method added later is covered without editing the test.
func internalMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	for _, fd := range []protoreflect.FileDescriptor{cairnv1.File_cairn_v1_scheduler_service_proto, cairnv1.File_cairn_v1_worker_service_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				out = append(out, sd.Methods().Get(j))
			}
		}
	}
	if len(out) < 7 {
		t.Fatalf("found %d internal methods; the descriptors were not read", len(out))
	}
	return out
}

// invoke calls md with an empty request (a stream: one empty message) and returns the error.
func invoke(ctx context.Context, conn *grpc.ClientConn, md protoreflect.MethodDescriptor) error {
	name := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return err
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return err
	}
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, name, in.New().Interface(), out.New().Interface())
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}, name)
	if err != nil {
		return err
	}
	if err := s.SendMsg(in.New().Interface()); err == nil {
		_ = s.CloseSend()
	}
	return s.RecvMsg(out.New().Interface())
}

func dialCreds(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// schedulerClientTLS is a client configuration towards the scheduler with an optional
// certificate: it trusts the cluster's CA and verifies the fixed scheduler name.
func schedulerClientTLS(t *testing.T, c *framework.Cluster, cert, key string) *tls.Config {
	t.Helper()
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: c.PKI.CAFile(), CertFile: cert, KeyFile: key,
		ServerName: framework.SchedulerServerName})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSecurityInternalServicesNeedTheRightCertificate enumerates every method of the
// internal services and calls each one against the real leader: without TLS, with TLS but no
// client certificate, with a certificate of another CA — the connection is refused; with a
// certificate of the wrong role — PERMISSION_DENIED. Nothing of it changes PostgreSQL. With
// the right role the call reaches the service (the control that the enumeration can fail).
func TestSecurityInternalServicesNeedTheRightCertificate(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{})
	leader := c.WaitLeader(30 * time.Second)
	name, _ := c.Apply(oneSlow) // something in the tables for the fingerprint to cover

	other, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "other-ca"), tlsconf.CAOptions{CommonName: "not the cluster's CA"})
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := other.Issue("gateway", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "gateway"}})
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]*grpc.ClientConn{
		"plaintext":                   dialCreds(t, leader.Addr, insecure.NewCredentials()),
		"TLS without a certificate":   dialCreds(t, leader.Addr, credentials.NewTLS(schedulerClientTLS(t, c, "", ""))),
		"a certificate of another CA": dialCreds(t, leader.Addr, credentials.NewTLS(schedulerClientTLS(t, c, foreignCert, foreignKey))),
	}
	roles := map[tlsconf.Role]*grpc.ClientConn{
		tlsconf.RoleGateway:   c.DialScheduler(leader.Addr, tlsconf.RoleGateway, "enum-gateway"),
		tlsconf.RoleWorker:    c.DialScheduler(leader.Addr, tlsconf.RoleWorker, "enum-worker"),
		tlsconf.RoleScheduler: c.DialScheduler(leader.Addr, tlsconf.RoleScheduler, "enum-scheduler"),
	}
	allowed := map[string]tlsconf.Role{
		string(cairnv1.SchedulerService_ServiceDesc.ServiceName): tlsconf.RoleGateway,
		string(cairnv1.WorkerService_ServiceDesc.ServiceName):    tlsconf.RoleWorker,
	}
	before := dbFingerprint(t, c)
	methods := internalMethods(t)
	call := func(conn *grpc.ClientConn, md protoreflect.MethodDescriptor) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return invoke(ctx, conn, md)
	}
	for _, md := range methods {
		service := string(md.Parent().FullName())
		want, ok := allowed[service]
		if !ok {
			t.Fatalf("service %s: no expected role (add it to the test and to authz.Rules)", service)
		}
		for who, conn := range refused {
			if err := call(conn, md); status.Code(err) != codes.Unavailable {
				t.Errorf("%s/%s with %s: %v, want the connection refused (UNAVAILABLE)", service, md.Name(), who, err)
			}
		}
		for role, conn := range roles {
			if role == want {
				continue
			}
			if err := call(conn, md); status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s/%s as a %s: %v, want PERMISSION_DENIED", service, md.Name(), role, err)
			}
		}
	}
	if after := dbFingerprint(t, c); after != before {
		t.Errorf("refused calls changed PostgreSQL:\nbefore %s\nafter  %s", before, after)
	}
	// Control: the right role reaches each service (an empty request is invalid, not refused).
	for _, md := range methods {
		err := call(roles[allowed[string(md.Parent().FullName())]], md)
		switch status.Code(err) {
		case codes.PermissionDenied, codes.Unauthenticated, codes.Unavailable:
			t.Errorf("%s/%s with the right role: %v, want the call to reach the service", md.Parent().FullName(), md.Name(), err)
		}
	}

	// Below gRPC: a TLS handshake without a client certificate fails, and plaintext bytes
	// get no answer.
	conn, err := tls.Dial("tcp", leader.Addr, schedulerClientTLS(t, c, "", ""))
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a TLS client without a certificate: %v, want the handshake refused for the missing certificate", err)
	}
	raw, err := net.DialTimeout("tcp", leader.Addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = raw.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, _ := raw.Read(buf)
	raw.Close()
	if n > 0 && !isTLSAlert(buf[:n]) {
		t.Errorf("a plaintext HTTP/2 preface got %q back", buf[:n])
	}

	// The real clients still work: a run of the applied workflow succeeds.
	run := c.StartRun(name, nil)
	if got := c.WaitRun(run, 30*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run %s", got)
	}
	c.CheckInvariants(t)
}

// isTLSAlert reports whether b is a TLS record of type alert (21): what a TLS server answers
// to bytes that are not a handshake.
func isTLSAlert(b []byte) bool { return len(b) > 0 && (b[0] == 21 || b[0] == 22) }

// TestSecurityWorkerCertificateCannotCallSchedulerService: a worker's certificate is refused
// by SchedulerService (PERMISSION_DENIED) and starts nothing.
func TestSecurityWorkerCertificateCannotCallSchedulerService(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{})
	leader := c.WaitLeader(30 * time.Second)
	name, _ := c.Apply(oneSlow)
	// The worker's own certificate, as a compromised task could present it.
	conn := c.DialScheduler(leader.Addr, tlsconf.RoleWorker, "worker-0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cairnv1.NewSchedulerServiceClient(conn).StartRun(ctx, &cairnv1.StartRunRequest{Workflow: name})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("StartRun with a worker certificate: %v, want PERMISSION_DENIED", err)
	}
	var runs int
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM runs`).Scan(&runs); err != nil || runs != 0 {
		t.Fatalf("%d runs (%v), want none", runs, err)
	}
	// And a gateway certificate cannot open a worker stream.
	gw := c.DialScheduler(leader.Addr, tlsconf.RoleGateway, "gateway")
	stream, err := cairnv1.NewWorkerServiceClient(gw).Connect(ctx)
	if err == nil {
		_ = stream.Send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Hello{Hello: &cairnv1.WorkerHello{WorkerId: "gateway", Capacity: 4}}})
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a worker stream with a gateway certificate: %v, want PERMISSION_DENIED", err)
	}
	c.CheckInvariants(t)
}

// slowEcho runs long enough for a test to act while its attempt runs, and prints a line the
// test can find in the stored output.
const slowEcho = `
name: slow-echo
tasks:
  - {id: slow, type: shell, command: "sleep 3; echo real-output"}
`

// workerStream is the test playing a worker over a real stream.
type workerStream struct {
	t      *testing.T
	stream cairnv1.WorkerService_ConnectClient
	cancel context.CancelFunc
}

// openWorkerStream opens WorkerService.Connect on the leader with the certificate of worker
// certName and sends hello.
func openWorkerStream(t *testing.T, c *framework.Cluster, certName string, hello *cairnv1.WorkerHello) (*workerStream, error) {
	t.Helper()
	leader := c.WaitLeader(30 * time.Second)
	conn := c.DialScheduler(leader.Addr, tlsconf.RoleWorker, certName)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := cairnv1.NewWorkerServiceClient(conn).Connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if err := stream.Send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Hello{Hello: hello}}); err != nil {
		cancel()
		return nil, err
	}
	return &workerStream{t: t, stream: stream, cancel: cancel}, nil
}

// recv returns the next message, or the stream's error, within timeout.
func (w *workerStream) recv(timeout time.Duration) (*cairnv1.SchedulerMessage, error) {
	type res struct {
		m   *cairnv1.SchedulerMessage
		err error
	}
	ch := make(chan res, 1)
	go func() {
		m, err := w.stream.Recv()
		ch <- res{m, err}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(timeout):
		w.cancel()
		return nil, fmt.Errorf("no message within %v", timeout)
	}
}

// attemptID reads the id of the attempt with token.
func attemptID(t *testing.T, c *framework.Cluster, token int64) string {
	t.Helper()
	var id string
	if err := c.Pool.QueryRow(context.Background(), `SELECT id::text FROM attempts WHERE fencing_token = $1`, token).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestSecurityWorkerCannotReportAnotherWorkersAttempt: a worker (its own valid certificate,
// "impostor") reports a start and a success for worker-0's running attempt, with the right
// attempt id and fencing token. Both are refused and nothing is recorded; the attempt
// finishes on worker-0 with its own output. A hello naming another worker than the
// certificate is refused before anything.
func TestSecurityWorkerCannotReportAnotherWorkersAttempt(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Workers: 1, WorkerConcurrency: 1})
	name, _ := c.Apply(slowEcho)
	run := c.StartRun(name, nil)
	a := c.WaitAttemptRunning(run, "slow", 20*time.Second)
	if a.WorkerID != "worker-0" {
		t.Fatalf("attempt on %s", a.WorkerID)
	}
	id := attemptID(t, c, a.Token)

	// A hello for worker-0 with the impostor's certificate: refused.
	w, err := openWorkerStream(t, c, "impostor", &cairnv1.WorkerHello{WorkerId: "worker-0", Capacity: 1})
	if err == nil {
		_, err = w.recv(10 * time.Second)
	}
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "not the worker named by the client certificate") {
		t.Fatalf("hello for worker-0 with the impostor's certificate: %v, want PERMISSION_DENIED", err)
	}

	before := dbFingerprint(t, c)
	w, err = openWorkerStream(t, c, "impostor", &cairnv1.WorkerHello{WorkerId: "impostor", Capacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.recv(10 * time.Second); err != nil || m.GetWelcome() == nil {
		t.Fatalf("the impostor's own hello: %v %v, want a welcome", m, err)
	}
	send := func(m *cairnv1.WorkerMessage) {
		if err := w.stream.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Started{Started: &cairnv1.AttemptStarted{AttemptId: id, FencingToken: a.Token}}})
	resultID := id + "/forged"
	send(&cairnv1.WorkerMessage{Msg: &cairnv1.WorkerMessage_Result{Result: &cairnv1.AttemptResult{
		ResultId: resultID, AttemptId: id, RunId: run, TaskId: "slow", FencingToken: a.Token,
		Outcome: cairnv1.AttemptOutcome_ATTEMPT_OUTCOME_SUCCEEDED, Output: []byte("forged-output")}}})
	for {
		m, err := w.recv(10 * time.Second)
		if err != nil {
			t.Fatalf("waiting for the acknowledgement of the forged result: %v", err)
		}
		if ack := m.GetResultAck(); ack != nil && ack.GetResultId() == resultID {
			if ack.GetAccepted() || !strings.Contains(ack.GetReason(), "not assigned to worker impostor") {
				t.Fatalf("the forged result's acknowledgement: %+v, want refused", ack)
			}
			break
		}
	}
	if after := dbFingerprint(t, c); after != before {
		t.Fatalf("the forged start and result changed PostgreSQL:\nbefore %s\nafter  %s", before, after)
	}
	if got := c.WaitRun(run, 30*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run %s", got)
	}
	as := c.TaskAttempts(run, "slow")
	if len(as) != 1 || as[0].WorkerID != "worker-0" || as[0].State != "SUCCEEDED" || as[0].StaleResultAt != nil {
		t.Fatalf("attempts %v, want one SUCCEEDED on worker-0 with no stale result", as)
	}
	var output string
	var staleEvents int
	if err := c.Pool.QueryRow(context.Background(), `SELECT convert_from(output, 'UTF8') FROM attempts WHERE fencing_token = $1`, a.Token).Scan(&output); err != nil {
		t.Fatal(err)
	}
	if err := c.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE kind = 'attempt_stale'`).Scan(&staleEvents); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(output, "real-output") || strings.Contains(output, "forged") || staleEvents != 0 {
		t.Fatalf("output %q, %d attempt_stale events; want worker-0's output and none", output, staleEvents)
	}
	c.CheckInvariants(t)
}

// TestSecuritySecondHelloForALiveWorkerIsRefused: while worker-0 runs an attempt, a second
// stream says hello as worker-0 (with worker-0's own certificate, as a copy of it would) and
// lists no running attempt. It is refused (ALREADY_EXISTS); had it been taken, worker-0's
// attempt would have been lost. The first stream keeps it: one attempt, SUCCEEDED.
func TestSecuritySecondHelloForALiveWorkerIsRefused(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Workers: 1, WorkerConcurrency: 1})
	name, _ := c.Apply(slowEcho)
	run := c.StartRun(name, nil)
	a := c.WaitAttemptRunning(run, "slow", 20*time.Second)
	w, err := openWorkerStream(t, c, "worker-0", &cairnv1.WorkerHello{WorkerId: "worker-0", Capacity: 4})
	if err == nil {
		_, err = w.recv(10 * time.Second)
	}
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a second hello for live worker-0: %v, want ALREADY_EXISTS", err)
	}
	if got := c.WaitRun(run, 30*time.Second); got != "SUCCEEDED" {
		t.Fatalf("run %s", got)
	}
	as := c.TaskAttempts(run, "slow")
	if len(as) != 1 || as[0].Token != a.Token || as[0].State != "SUCCEEDED" || as[0].WorkerID != "worker-0" {
		t.Fatalf("attempts %v, want worker-0's first attempt SUCCEEDED and no other", as)
	}
	if log := c.Worker("worker-0").LogTail(200); strings.Contains(log, "stream to leader ended") {
		t.Errorf("worker-0's stream was disturbed:\n%s", log)
	}
	c.CheckInvariants(t)
}

// impostorLeader is a gRPC server with a certificate of the cluster's CA and the scheduler
// role, but for another DNS name than the one clients verify: what someone who got a leader
// address into etcd could serve. It counts connections and calls.
type impostorLeader struct {
	cairnv1.UnimplementedSchedulerServiceServer
	cairnv1.UnimplementedWorkerServiceServer
	addr  string
	conns atomic.Int64
	calls atomic.Int64
}

func (p *impostorLeader) ApplyWorkflow(context.Context, *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	p.calls.Add(1)
	return &cairnv1.ApplyWorkflowResponse{Workflow: &cairnv1.Workflow{Name: "owned"}}, nil
}

func (p *impostorLeader) Connect(cairnv1.WorkerService_ConnectServer) error {
	p.calls.Add(1)
	return nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestSecurityForgedLeaderAddressLeadsNowhere: the scheduler dies and etcd is made to name
// an impostor's address as the leader. The gateway and the worker dial it — and refuse its
// certificate (another name than cairn-scheduler): no mutation and no stream reaches it, and
// the gateway answers UNAVAILABLE instead.
func TestSecurityForgedLeaderAddressLeadsNowhere(t *testing.T) {
	c := framework.NewCluster(t, framework.Options{Gateway: true, Workers: 1,
		Env: map[string]string{"CAIRN_FORWARD_TIMEOUT": "3s"}})
	c.Apply(oneSlow) // the gateway knows the real leader

	cert, key, err := c.PKI.Dir.Issue("impostor", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "impostor"},
		DNSNames: []string{"impostor.example"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: cert, KeyFile: key, ClientCAFile: c.PKI.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	imp := &impostorLeader{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	cairnv1.RegisterSchedulerServiceServer(srv, imp)
	cairnv1.RegisterWorkerServiceServer(srv, imp)
	go func() { _ = srv.Serve(countingListener{ln, &imp.conns}) }()
	t.Cleanup(srv.Stop)

	// The real leader dies; the forged key (created now, so after the dead leader's) leads
	// once the dead leader's session expires.
	c.Schedulers[0].Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lease, err := c.EtcdClient.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	forged := election.ElectionPrefix(framework.Prefix) + "/" + fmt.Sprintf("%x", int64(lease.ID))
	if _, err := c.EtcdClient.Put(ctx, forged, imp.addr, clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 20*time.Second, func() bool {
		l, ok := c.LeaderNow()
		return ok && l.Addr == imp.addr
	}, "etcd names the impostor as leader")

	// A mutation through the gateway: the impostor's certificate is refused, the call is
	// UNAVAILABLE, and the impostor sees a TLS attempt but no call.
	gw := c.DialGateway()
	defer gw.Close()
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	_, err = cairnv1.NewWorkflowServiceClient(gw).ApplyWorkflow(cctx, &cairnv1.ApplyWorkflowRequest{Yaml: "name: owned\ntasks:\n  - {id: a, type: noop}\n"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a mutation with an impostor leader: %v, want UNAVAILABLE", err)
	}
	framework.Eventually(t, 20*time.Second, func() bool { return imp.conns.Load() > 0 },
		"the gateway or the worker dialed the forged address (so the refusal is the certificate's)")
	// Give the worker's reconnect loop time to try it too.
	time.Sleep(2 * time.Second) // observation window, not synchronisation
	if n := imp.calls.Load(); n != 0 {
		t.Fatalf("the impostor received %d calls", n)
	}
	var wf int
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM workflows WHERE name = 'owned'`).Scan(&wf); err != nil || wf != 0 {
		t.Fatalf("workflow owned: %d (%v)", wf, err)
	}
	c.CheckInvariants(t)
}

// stateTables are the tables of orchestration state (leadership is the leader's own).
var stateTables = []string{"workflows", "workflow_versions", "schedules", "runs", "task_runs", "attempts", "dead_letters", "events"}

// dbFingerprint is, per state table, its row count and an MD5 over every row's text: any
// insert, update or delete changes it.
func dbFingerprint(t *testing.T, c *framework.Cluster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	for _, tbl := range stateTables {
		var s string
		q := fmt.Sprintf(`SELECT count(*)::text || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM %s x`, tbl)
		if err := c.Pool.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatalf("fingerprint %s: %v", tbl, err)
		}
		fmt.Fprintf(&b, "%s=%s ", tbl, s)
	}
	return b.String()
}

// TestSecurityTaskCannotReadTheWorkersKey: a shell task runs as the worker's task user
// (nobody; the framework's default as root) and cannot read the worker's TLS key, which the
// worker's own user can.
func TestSecurityTaskCannotReadTheWorkersKey(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root: shell tasks run as another user only when the worker can switch (the tests run as uid %d)", os.Geteuid())
	}
	c := framework.NewCluster(t, framework.Options{Workers: 1})
	_, key := c.PKI.Cert(tlsconf.RoleWorker, "worker-0")
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("worker key %s: %v %v, want mode 0600", key, fi.Mode(), err)
	}
	if _, err := os.ReadFile(key); err != nil { // the worker's user (root) can
		t.Fatal(err)
	}
	name, _ := c.Apply(`
name: read-key
params: {key: ""}
tasks:
  - id: whoami
    type: shell
    command: 'id -u'
  - id: read
    type: shell
    env: {KEY: "{{ .params.key }}"}
    command: 'cat "$KEY"'
    retries: 0
`)
	run := c.StartRun(name, map[string]string{"key": key})
	if got := c.WaitRun(run, 30*time.Second); got != "FAILED" {
		t.Fatalf("run %s, want FAILED (the task must not read the key)", got)
	}
	outputs := map[string]string{}
	rows, err := c.Pool.Query(context.Background(), `SELECT task_id, convert_from(output, 'UTF8') FROM attempts WHERE run_id = $1`, run)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var task, out string
		if err := rows.Scan(&task, &out); err != nil {
			t.Fatal(err)
		}
		outputs[task] = out
	}
	rows.Close()
	if got := strings.TrimSpace(outputs["whoami"]); got == "0" || got == "" {
		t.Errorf("the task ran as uid %q, want the task user", got)
	}
	if out := outputs["read"]; strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, "Permission denied") {
		t.Fatalf("the task reading the key printed %q, want a permission error", out)
	}
	c.CheckInvariants(t)
}
