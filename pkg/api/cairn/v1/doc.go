// Package cairnv1 is Cairn's API contract (protobuf package cairn.v1): the
// messages, gRPC clients and servers, grpc-gateway REST handlers and the
// OpenAPI v2 document of the public and internal services.
//
// Everything here except doc.go, openapi.go, gateway.go and the tests is
// generated from proto/cairn/v1 by `make generate` and committed; never edit
// it by hand.
// `make generate-check` fails when the committed code is stale and
// `make proto-breaking` checks the protos for breaking changes against main.
//
// Public services (gRPC, and REST through the mapping in
// proto/cairn/v1/cairn_api.yaml): WorkflowService, RunService,
// DeadLetterService, ClusterService. Internal services (gRPC only):
// SchedulerService (gateway → leader mutations) and WorkerService (one
// bidirectional stream per worker).
//
// Invariants of the contract: enum values are prefixed with their enum name
// and their zero value is *_UNSPECIFIED (never a meaningful state); IDs are
// opaque strings; fencing tokens and epochs are int64 and only increase;
// fields whose unset value differs from zero (exit_code, http_status,
// GetWorkflowRequest.version) have explicit presence.
package cairnv1
