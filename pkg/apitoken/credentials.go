package apitoken

import (
	"context"

	"google.golang.org/grpc/credentials"
)

// Bearer is gRPC per-call credentials sending `authorization: Bearer <secret>`.
type Bearer struct {
	Secret string
	// Insecure allows sending the token over a connection without TLS (loopback tests and
	// dev set-ups only): gRPC otherwise refuses to send it in clear.
	Insecure bool
}

var _ credentials.PerRPCCredentials = Bearer{}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Secret}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (b Bearer) RequireTransportSecurity() bool { return !b.Insecure }
