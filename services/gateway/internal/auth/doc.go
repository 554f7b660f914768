// Package auth decides every call of the gateway's public API: who calls (an API token,
// authenticated against the store with a short cache), whether the method's rule lets that
// token through (scope, namespace), and it records every mutation in the audit trail before
// carrying it out. It also guards the REST listener against browsers: Host header (DNS
// rebinding in insecure mode), cross-origin requests, and mutations that are not JSON.
//
// One table (Rules) maps each public method to its scope; a method missing from it is
// refused. The order of the checks is fixed: token (UNAUTHENTICATED, never saying why),
// namespace (NOT_FOUND, as for a resource that does not exist), scope (PERMISSION_DENIED).
//
// Invariants, each with the test that proves it (services/gateway/internal/gateway):
//   - every public method has a rule (TestEveryPublicMethodHasARule, from the descriptors);
//   - no public gRPC method or REST route answers without a live token, whatever kind of bad
//     token is sent (TestEveryPublicMethodRefusesBadTokens, TestEveryRESTRouteRefusesBadTokens);
//   - scopes and namespaces are enforced on every method (TestScopesAndNamespacesOfEveryMethod);
//   - a revoked token is refused within the cache TTL (TestRevocationTakesEffectWithinTheCacheTTL);
//   - a token never mints more than it has (TestATokenNeverMintsMoreThanItHas);
//   - every mutation leaves an audit event with its outcome (TestMutationsAreAudited);
//   - text/plain, form and cross-origin requests change nothing (TestBrowserRequestsCannotCrossSites).
package auth
