// Package tlsconf owns Cairn's internal certificates: it generates a CA and issues
// certificates that name their holder, writes them with safe file modes, loads TLS
// configurations for servers and clients, and reads the identity of a gRPC peer.
//
// Identities. Every internal certificate carries exactly one URI SAN
// spiffe://cairn/<role>/<name>, role one of scheduler, gateway, worker (Identity,
// IdentityFromCert, IdentityFromPeer). A certificate without it, or with two, names nobody
// (ErrNoIdentity). The scheduler's certificate also carries a DNS SAN — the fixed scheduler
// identity clients verify (`cairn-scheduler` by default) — and ClientOptions.ServerName makes
// a client verify that name, never the address it dialed, so an address published in etcd by
// someone else leads nowhere; ClientOptions.ServerRole additionally requires the server's
// identity to have a role (scheduler).
//
// Keys are ECDSA P-256 (crypto/ecdsa), PKCS #8 PEM. Only the standard library's crypto is used.
//
// Files (WriteFiles): a directory 0700, certificates 0644, keys 0600, each written to a
// temporary file and renamed, so a reader never sees half a key.
//
// Reload. A server's or client's own certificate/key pair is looked at again at most every
// ReloadCheckInterval, on a handshake; when either file changed (modification time or size)
// it is loaded again, so renewing a certificate needs no restart. A pair that does not load
// (a renewal half-written) leaves the previous pair in use. The CA files are read once:
// changing the CA needs a restart.
//
// Invariants and the tests that prove them (tlsconf_test.go):
//   - a certificate signed by another CA is refused, as a client and as a server certificate
//     (TestClientCertOfAnotherCARefused, TestServerCertOfAnotherCARefused);
//   - a server certificate for another DNS name is refused even when the dialed address
//     matches its IP SAN (TestServerNameNotAddressIsVerified);
//   - a server certificate of another role is refused when ServerRole is set
//     (TestServerRoleIsVerified);
//   - a certificate without the URI SAN gives no identity (TestNoURISANNoIdentity);
//   - keys are written 0600 in a 0700 directory (TestWriteFilesModes);
//   - a renewed key pair is served without a restart (TestKeyPairReload).
package tlsconf
