// Package apitoken defines Cairn's API credentials: the format of a token's secret, the hash
// under which it is stored, the scopes a token grants and the namespaces it may use, and the
// rule that a token can never mint more than it has (Grants.Covers). It has no I/O: the store
// keeps tokens, the gateway checks them.
//
// Invariants, each with the test that proves it:
//   - a secret carries 256 random bits and is stored only as its SHA-256 (TestSecretFormat,
//     TestHashIsStable);
//   - a malformed secret is refused before any lookup (TestParseSecretRejects);
//   - admin implies every scope and `*` every namespace, nothing else implies anything
//     (TestAllows);
//   - Covers refuses any grant with a scope, a namespace or a lifetime beyond the
//     caller's (TestCovers).
package apitoken
