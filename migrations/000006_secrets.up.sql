-- Secrets (docs/secrets.md). A secret is a named value of a namespace that workflows reference
-- as {{ secret "name" }}. Only its sealed form is stored: AES-256-GCM under a key of the
-- scheduler's keyring (pkg/secretbox), sealed by the leader before the statement is built, so
-- neither this table nor a query log ever holds a value in clear. There is no plaintext
-- column, and none may be added.
--
--   key_id      the keyring entry the value is sealed under (rotation finds the rows still
--               under an old key with WHERE key_id = ...)
--   nonce       the 96-bit random GCM nonce of this sealing
--   ciphertext  the GCM ciphertext with its 16-byte tag (values are at most 64 KiB,
--               store.MaxSecretValue); the additional data binds it to
--               (key_id, namespace, name), so a row copied elsewhere does not open
--   updated_by  the token name of the last SetSecret (as audit events name callers)
--
-- namespace references namespaces ON DELETE RESTRICT: a namespace that holds secrets cannot
-- be deleted (DeleteNamespace counts them), so no secret outlives its namespace and a new
-- namespace of the same name does not inherit old values. The leader is the only writer.
CREATE TABLE secrets (
    namespace  text        NOT NULL REFERENCES namespaces (name) ON DELETE RESTRICT,
    name       text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    key_id     text        NOT NULL CHECK (key_id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    nonce      bytea       NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext bytea       NOT NULL CHECK (octet_length(ciphertext) BETWEEN 16 AND 65536 + 16),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL DEFAULT '',
    PRIMARY KEY (namespace, name)
);
