// Package inprocess runs the API gateway inside another process, for `cairnctl dev`;
// deployments run the cairn-gateway binary. It re-exports the gateway so the CLI can import
// it (the implementation lives under internal/).
package inprocess

import "github.com/cairn-io/cairn/services/gateway/internal/gateway"

// Config is the gateway's configuration (see cairn-gateway --help).
type Config = gateway.Config

// Gateway is the public API server; Start serves in the background, Stop shuts it down.
type Gateway = gateway.Gateway

// New checks cfg and returns a gateway ready to Start.
func New(cfg Config) (*Gateway, error) { return gateway.New(cfg) }
