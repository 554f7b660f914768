package workerapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cairn-io/cairn/pkg/tlsconf"
)

func peerWith(t *testing.T, ca *tlsconf.CA, id *tlsconf.Identity) context.Context {
	t.Helper()
	state := tls.ConnectionState{}
	if id != nil {
		kp, err := ca.Issue(tlsconf.CertRequest{Identity: *id})
		if err != nil {
			t.Fatal(err)
		}
		state.VerifiedChains = [][]*x509.Certificate{{kp.Cert, ca.Cert}}
	}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: state}})
}

// TestHelloMustNameTheCertificatesWorker: the hello's worker id is the certificate's name, or
// the stream is refused before the engine sees it.
func TestHelloMustNameTheCertificatesWorker(t *testing.T) {
	ca, err := tlsconf.NewCA(tlsconf.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w1 := &tlsconf.Identity{Role: tlsconf.RoleWorker, Name: "w1"}
	gw := &tlsconf.Identity{Role: tlsconf.RoleGateway, Name: "w1"}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		id   string
		want codes.Code
	}{
		{"its own id", peerWith(t, ca, w1), "w1", codes.OK},
		{"another worker's id", peerWith(t, ca, w1), "w2", codes.PermissionDenied},
		{"a gateway certificate", peerWith(t, ca, gw), "w1", codes.PermissionDenied},
		{"TLS without a certificate", peerWith(t, ca, nil), "w1", codes.Unauthenticated},
		{"plaintext (insecure mode)", context.Background(), "anything", codes.OK},
	} {
		if got := status.Code(checkIdentity(tc.ctx, tc.id)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
