// Package gateway assembles cairn-gateway: the public gRPC server, the REST front end
// (grpc-gateway), /openapi.json, /healthz, /readyz and /metrics, on top of package api (the
// service implementations) and package forward (mutations to the leader).
//
//	gRPC client ──▶ gRPC listener ──┐
//	                                ├─▶ grpc.Server (api.Server) ──▶ PostgreSQL (reads)
//	REST client ──▶ HTTP listener   │                            └─▶ forward ──▶ leader (mutations)
//	   body cap ──▶ grpc-gateway ──▶ in-memory (bufconn) gRPC connection
//
// REST handlers call the gRPC server through an in-memory connection rather than in-process:
// grpc-gateway's in-process transport cannot stream (WatchRun), and one path keeps the limits,
// interceptors and metrics identical for REST and gRPC.
//
// Invariants:
//
//   - Every REST error is the google.rpc.Status JSON ({"code", "message", "details"}) with the
//     HTTP status of its gRPC code; a 503 carries Retry-After.
//   - Request bodies over MaxBodyBytes are refused with 413 before decoding; gRPC request
//     messages are capped at the same size (RESOURCE_EXHAUSTED).
//   - /readyz is 503 unless PostgreSQL answers, etcd answers a linearizable read and a leader
//     is known and reachable; its body names the failing check and why.
//   - The gateway holds no state of its own: any number can run side by side.
//   - Start needs neither PostgreSQL nor a leader to be up; Stop drains requests in flight for
//     up to ShutdownTimeout, then cancels the rest and releases every connection it opened.
package gateway
