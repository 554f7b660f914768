-- API tokens, one-time login codes and the audit trail (docs/security.md). These are the
-- gateway's own tables: it writes them directly, while the scheduler leader stays the single
-- writer of workflow, run, task and dead-letter state.

-- api_tokens: only the SHA-256 of a token's secret is kept; the secret is shown once.
CREATE TABLE api_tokens (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    hash       bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
    namespaces text[]      NOT NULL CHECK (cardinality(namespaces) >= 1),
    scopes     text[]      NOT NULL CHECK (cardinality(scopes) >= 1),
    created_by text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    CHECK (expires_at IS NULL OR expires_at > created_at)
);
-- A name designates one live token (audit events record names); a revoked token's name may
-- be used again.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
CREATE INDEX api_tokens_created ON api_tokens (created_at DESC, id DESC);

-- login_codes: single-use codes the web UI exchanges for a session token. used_at is set by
-- the one exchange that wins (UPDATE ... WHERE used_at IS NULL).
CREATE TABLE login_codes (
    hash          bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    token_id      uuid        NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    namespaces    text[]      NOT NULL CHECK (cardinality(namespaces) >= 1),
    scopes        text[]      NOT NULL CHECK (cardinality(scopes) >= 1),
    session_ttl   interval    NOT NULL CHECK (session_ttl > '0'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);

-- audit_events: one row per API mutation, inserted before the call is carried out (outcome
-- UNKNOWN) and completed with its outcome after.
CREATE TABLE audit_events (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    token_id   uuid,
    token_name text        NOT NULL,
    method     text        NOT NULL CHECK (method <> ''),
    namespace  text        NOT NULL DEFAULT '',
    resource   text        NOT NULL DEFAULT '',
    outcome    text        NOT NULL DEFAULT 'UNKNOWN'
);
CREATE INDEX audit_events_namespace ON audit_events (namespace, id DESC);
CREATE INDEX audit_events_token ON audit_events (token_name, id DESC);
