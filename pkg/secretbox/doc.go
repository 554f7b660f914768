// Package secretbox encrypts secret values at rest with AES-256-GCM under a keyring, so that
// what the store holds is useless without the key, and a row moved to another secret does not
// decrypt. It imports nothing of Cairn; the store keeps the three parts of a Sealed value
// (key ID, nonce, ciphertext) and never sees a key or a plaintext.
//
// # Keyring
//
// A keyring is text, read from a file or an environment variable: one key per entry, entries
// separated by newlines or commas, blank lines and lines starting with # ignored:
//
//	# newest first: the first key encrypts, the others only decrypt
//	k2026-03:q4J2...base64 of 32 random bytes...=
//	k2025-11:Xb9v...=
//
// A key ID is [A-Za-z0-9][A-Za-z0-9_.-]{0,63}; a key is exactly 32 bytes in standard base64
// with padding (44 characters; `openssl rand -base64 32`, or NewKeyLine). Open rejects an
// empty keyring, a malformed line, a bad or short key and a repeated ID, naming the entry
// (by line and ID, never by its key material).
//
// # Sealing
//
// Seal(ns, name, plaintext) uses the active (first) key and a fresh random 96-bit nonce, and
// authenticates the additional data
//
//	"cairn-secret-v1" 0x00 len(keyID) keyID len(ns) ns len(name) name
//
// (lengths as 4-byte big-endian), so the same ciphertext unsealed under another namespace,
// name or key ID fails authentication. Unseal finds the key by the Sealed value's KeyID: an ID
// missing from the keyring is an *UnknownKeyError naming it; any alteration of the nonce, the
// ciphertext, the tag or the (ns, name) binding is ErrAuth.
//
// # Rotation
//
// Put a new key first and keep the old ones after it: new values are sealed with the new
// key, old ones still open. Reseal re-encrypts one value under the active key (a no-op for
// values already under it); once every stored value has been resealed, the old key can be
// removed. Random 96-bit nonces keep the GCM collision risk negligible up to 2^32 seals per
// key, far above what a secret store does; rotate well before that anyway.
//
// # Invariants and the tests that prove them
//
//   - Seal then Unseal with the same (ns, name) returns the plaintext: TestRoundTrip.
//   - Changing any byte of the nonce, ciphertext or tag, the key ID, the namespace or the name
//     makes Unseal fail: TestTamperEachPart, TestBindingToNamespaceAndName.
//   - Two seals of one plaintext differ (fresh nonce), and no sealed part contains the
//     plaintext: TestCiphertextNeverContainsPlaintext.
//   - A rotated keyring opens values sealed under older keys and seals under the new one;
//     Reseal moves a value to the active key: TestRotation.
//   - Every malformed keyring is refused with an error naming the problem and never echoing key
//     material: TestOpenRejects.
package secretbox
