package authz_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/tlsconf"
	"github.com/cairn-io/cairn/services/scheduler/internal/authz"
)

// sched answers ApplyWorkflow with the caller as authz describes it (in the error message);
// everything else is UNIMPLEMENTED: reaching a handler at all is what "allowed" means here.
type sched struct {
	cairnv1.UnimplementedSchedulerServiceServer
}

func (sched) ApplyWorkflow(ctx context.Context, _ *cairnv1.ApplyWorkflowRequest) (*cairnv1.ApplyWorkflowResponse, error) {
	return nil, status.Error(codes.FailedPrecondition, "by="+authz.By(ctx))
}

type workers struct {
	cairnv1.UnimplementedWorkerServiceServer
}

// internalMethods lists every method of the internal services, from their descriptors.
func internalMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	for _, fd := range []protoreflect.FileDescriptor{cairnv1.File_cairn_v1_scheduler_service_proto, cairnv1.File_cairn_v1_worker_service_proto} {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			if _, ok := authz.Rules[string(sd.FullName())]; !ok {
				t.Errorf("service %s has no rule in authz.Rules", sd.FullName())
			}
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

// call invokes md with an empty request and returns the status code.
func call(ctx context.Context, conn *grpc.ClientConn, md protoreflect.MethodDescriptor) error {
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
	if err := s.SendMsg(in.New().Interface()); err != nil {
		return s.RecvMsg(out.New().Interface())
	}
	_ = s.CloseSend()
	return s.RecvMsg(out.New().Interface())
}

type pki struct {
	dir *tlsconf.Dir
}

func (p pki) creds(t *testing.T, role tlsconf.Role, name string) credentials.TransportCredentials {
	t.Helper()
	var cert, key string
	if role != "" {
		var err error
		if cert, key, err = p.dir.Issue(string(role)+"-"+name, tlsconf.CertRequest{Identity: tlsconf.Identity{Role: role, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: p.dir.CAFile(), CertFile: cert, KeyFile: key, ServerName: "cairn-scheduler"})
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(cfg)
}

func newPKI(t *testing.T) pki {
	t.Helper()
	d, err := tlsconf.CreateDir(filepath.Join(t.TempDir(), "tls"), tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pki{d}
}

func serve(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	cairnv1.RegisterSchedulerServiceServer(s, sched{})
	cairnv1.RegisterWorkerServiceServer(s, workers{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestEveryInternalMethodNeedsTheRightCertificate enumerates SchedulerService and
// WorkerService from their descriptors and calls every method with each kind of client.
func TestEveryInternalMethodNeedsTheRightCertificate(t *testing.T) {
	p, other := newPKI(t), newPKI(t)
	srvCert, srvKey, err := p.dir.Issue("scheduler", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s"},
		DNSNames: []string{"cairn-scheduler"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: p.dir.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	az := authz.Authorizer{}
	addr := serve(t, grpc.Creds(credentials.NewTLS(tc)), grpc.ChainUnaryInterceptor(az.Unary), grpc.ChainStreamInterceptor(az.Stream))

	// A gateway certificate of another CA (the client trusts the server's CA).
	otherCert, otherKey, err := other.dir.Issue("gateway-x", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	foreignCfg, err := tlsconf.ClientConfig(tlsconf.ClientOptions{CAFile: p.dir.CAFile(), CertFile: otherCert, KeyFile: otherKey, ServerName: "cairn-scheduler"})
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*grpc.ClientConn{
		"plaintext":            dial(t, addr, insecure.NewCredentials()),
		"TLS without a cert":   dial(t, addr, p.creds(t, "", "")),
		"a cert of another CA": dial(t, addr, credentials.NewTLS(foreignCfg)),
		"gateway":              dial(t, addr, p.creds(t, tlsconf.RoleGateway, "gw")),
		"worker":               dial(t, addr, p.creds(t, tlsconf.RoleWorker, "w1")),
		"scheduler":            dial(t, addr, p.creds(t, tlsconf.RoleScheduler, "peer")),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, md := range internalMethods(t) {
		service := string(md.Parent().FullName())
		allowed := authz.Rules[service]
		for who, conn := range clients {
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			err := call(cctx, conn, md)
			ccancel()
			code := status.Code(err)
			name := service + "/" + string(md.Name()) + " as " + who
			switch who {
			case "plaintext", "TLS without a cert", "a cert of another CA":
				if code != codes.Unavailable {
					t.Errorf("%s: %v, want the connection refused (UNAVAILABLE)", name, err)
				}
			case string(allowed):
				if code == codes.PermissionDenied || code == codes.Unauthenticated || code == codes.Unavailable {
					t.Errorf("%s: %v, want the call to reach the service", name, err)
				}
			default:
				if code != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "only a "+string(allowed)) {
					t.Errorf("%s: %v, want PERMISSION_DENIED naming the allowed role", name, err)
				}
			}
		}
	}
}

// TestPrincipalOnlyFromGateways: cairn-principal reaches the handler from a gateway's
// connection; from anyone else it is dropped.
func TestPrincipalOnlyFromGateways(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey, err := p.dir.Issue("scheduler", tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleScheduler, Name: "s"},
		DNSNames: []string{"cairn-scheduler"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsconf.ServerConfig(tlsconf.ServerOptions{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: p.dir.CAFile()})
	if err != nil {
		t.Fatal(err)
	}
	az := authz.Authorizer{}
	addr := serve(t, grpc.Creds(credentials.NewTLS(tc)), grpc.ChainUnaryInterceptor(az.Unary))
	conn := dial(t, addr, p.creds(t, tlsconf.RoleGateway, "gw-1"))
	ctx := metadata.AppendToOutgoingContext(context.Background(), authz.PrincipalKey, "alice")
	_, err = cairnv1.NewSchedulerServiceClient(conn).ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{})
	if got := status.Convert(err).Message(); got != "by=alice via gateway gw-1" {
		t.Errorf("a gateway's principal: %q", got)
	}
	_, err = cairnv1.NewSchedulerServiceClient(conn).ApplyWorkflow(context.Background(), &cairnv1.ApplyWorkflowRequest{})
	if got := status.Convert(err).Message(); got != "by=gateway gw-1" {
		t.Errorf("no principal: %q", got)
	}

	// Insecure mode: plaintext is accepted without identity.
	insecureAddr := serve(t, grpc.ChainUnaryInterceptor(authz.Authorizer{Insecure: true}.Unary))
	plain := dial(t, insecureAddr, insecure.NewCredentials())
	_, err = cairnv1.NewSchedulerServiceClient(plain).ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{})
	if got := status.Convert(err).Message(); got != "by=alice" {
		t.Errorf("insecure mode: %q", got)
	}
	// A secure server refuses the same plaintext call (the interceptor alone, without TLS
	// credentials on the server: UNAUTHENTICATED, not a silent pass).
	strict := serve(t, grpc.ChainUnaryInterceptor(authz.Authorizer{}.Unary))
	_, err = cairnv1.NewSchedulerServiceClient(dial(t, strict, insecure.NewCredentials())).ApplyWorkflow(ctx, &cairnv1.ApplyWorkflowRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("plaintext to a secure authorizer: %v, want UNAUTHENTICATED", err)
	}
}

// TestPrincipalIgnoredFromWorkers: a worker's connection cannot claim to act for a user.
func TestPrincipalIgnoredFromWorkers(t *testing.T) {
	p := newPKI(t)
	kp, err := p.dir.CA.Issue(tlsconf.CertRequest{Identity: tlsconf.Identity{Role: tlsconf.RoleWorker, Name: "w1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{kp.Cert, p.dir.CA.Cert}}}}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs(authz.PrincipalKey, "alice"))
	got, err := authz.Authorizer{}.Authorize(ctx, "/cairn.v1.WorkerService/Connect")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := authz.From(got)
	if c.Principal != "" || authz.By(got) != "worker w1" {
		t.Errorf("a worker's principal was kept: %+v (%s)", c, authz.By(got))
	}
	if _, err := (authz.Authorizer{}).Authorize(ctx, "/cairn.v1.Other/Call"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a service without a rule: %v, want PERMISSION_DENIED", err)
	}
}
