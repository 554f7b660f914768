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
