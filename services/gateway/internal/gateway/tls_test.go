package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
	"github.com/cairn-io/cairn/services/gateway/internal/gateway"
)

// TestPublicTLS: with a public certificate, REST and gRPC are served over TLS only, and the
// forwarded mutation goes through the mutual TLS link to the leader.
func TestPublicTLS(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{PublicTLS: true})
	if !strings.HasPrefix(c.HTTPURL, "https://") {
		t.Fatalf("HTTPURL %q", c.HTTPURL)
	}
	hc := c.HTTPClient()
	req, err := http.NewRequest("POST", c.HTTPURL+"/v1/workflows", strings.NewReader(`{"yaml": "name: tls\ntasks:\n  - {id: a, type: noop}\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+gatewaytest.AdminToken)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("REST over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.ProtoMajor != 2 {
		t.Fatalf("REST over TLS: %d, TLS %v, HTTP/%d", resp.StatusCode, resp.TLS != nil, resp.ProtoMajor)
	}
	if c.LeaderCalls() == 0 {
		t.Error("the mutation did not reach the leader")
	}
	// Plain HTTP to the TLS port is refused (Go's server answers 400 to a plaintext request).
	if resp, err := http.Get("http://" + strings.TrimPrefix(c.HTTPURL, "https://") + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP got an answer from the TLS listener")
		}
	}
	// A client that does not trust the CA fails the handshake.
	if _, err := http.Get(c.HTTPURL + "/readyz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := cairnv1.NewWorkflowServiceClient(c.Conn()).GetWorkflow(ctx, &cairnv1.GetWorkflowRequest{Name: "tls"})
	if err != nil || got.GetWorkflow().GetName() != "tls" {
		t.Fatalf("gRPC over TLS: %v, %v", got, err)
	}
	plain, err := grpc.NewClient(c.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if _, err := cairnv1.NewWorkflowServiceClient(plain).GetWorkflow(sctx, &cairnv1.GetWorkflowRequest{Name: "tls"}); err == nil {
		t.Error("plaintext gRPC got an answer from the TLS listener")
	}
}

// TestInternalTLSOrInsecure: without a client certificate for the scheduler the gateway
// refuses to start, naming what to set; --insecure dials in plaintext only with every peer on
// loopback.
func TestInternalTLSOrInsecure(t *testing.T) {
	base := gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x",
		EtcdEndpoints: []string{"http://127.0.0.1:2379"}}
	_, err := gateway.New(base)
	for _, want := range []string{"--tls-cert (CAIRN_TLS_CERT)", "--tls-key (CAIRN_TLS_KEY)", "--tls-ca (CAIRN_TLS_CA)", "--insecure (CAIRN_INSECURE)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no TLS, not insecure: %v; want an error naming %s", err, want)
		}
	}
	ok := base
	ok.Insecure = true
	if _, err := gateway.New(ok); err != nil {
		t.Errorf("insecure on loopback: %v", err)
	}
	remote := ok
	remote.EtcdEndpoints, remote.DatabaseURL = []string{"http://etcd:2379"}, "postgres://x@db.example/x"
	_, err = gateway.New(remote)
	for _, want := range []string{"--etcd-endpoints (CAIRN_ETCD_ENDPOINTS)=http://etcd:2379", "--database-url (CAIRN_DATABASE_URL) host=db.example"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("insecure with remote peers: %v; want an error naming %s", err, want)
		}
	}
	half := base
	half.TLSCert = "gateway.pem"
	if _, err := gateway.New(half); err == nil || !strings.Contains(err.Error(), "needs all of") {
		t.Errorf("a certificate without key and CA: %v", err)
	}
}
