// Package api implements Cairn's public gRPC services (WorkflowService, RunService,
// DeadLetterService, NamespaceService, ClusterService, AuthService, SecretService) for the
// gateway.
//
// Reads come from PostgreSQL through pkg/store and from etcd through the Cluster interface;
// mutations are validated here and forwarded unchanged to the scheduler leader through the
// Forwarder interface (package forward). The domain (pkg/model, pkg/dag) is converted to API
// messages in convert.go and nowhere else.
//
// Invariants:
//
//   - Every error returned is a gRPC status. Bad input is INVALID_ARGUMENT whose message starts
//     with the field name ("run_id: ... is not a valid UUID") and carries a
//     google.rpc.BadRequest detail naming the field; invalid workflow YAML carries one
//     cairn.v1.ValidationError (with line and column) per problem instead. Store errors are
//     translated once, in toStatus: not found → NOT_FOUND, bad page token → INVALID_ARGUMENT.
//   - YAML is validated locally with pkg/dag before anything is forwarded, so a bad file is
//     rejected even without a leader, and ValidateWorkflow never needs one.
//   - Page sizes: 0 means the default (50), larger values are capped at MaxPageSize, negative
//     ones are INVALID_ARGUMENT. Store listings are keyset-paginated with the store's tokens;
//     listings paged here (workers, attempts) use checksummed tokens bound to their query.
//   - WatchRun ends only after the event that makes the run terminal has been sent (the state
//     is read before the events of each round), or when the client goes away.
//   - Parsed workflow versions are cached by (namespace, name, version): versions are
//     immutable, and one name in two namespaces is two workflows.
//   - Every request about a workflow, run, attempt or dead letter acts in the namespace it
//     names (empty: default; a malformed one is INVALID_ARGUMENT naming the field
//     "namespace"). A resource of another namespace is NOT_FOUND exactly like a missing one,
//     never PERMISSION_DENIED; when a lookup finds nothing and the namespace itself does not
//     exist, NOT_FOUND names the namespace. That extra read happens only on a miss.
//   - Namespace creation and deletion are forwarded to the leader like every mutation;
//     reads of namespaces come from PostgreSQL.
//   - Secrets: SetSecret is checked here (name, value length, UTF-8, no NUL) and forwarded
//     with its value to the leader, which alone holds the keyring; ListSecrets reads names and
//     times from PostgreSQL. No response, error or log line carries a value: a bad value is
//     described by its length, and the REST decoder withholds the parser's message for a
//     SetSecret body, which could quote it (TestSecretsOverREST).
package api
