-- Cairn schema v1. Enumerated values match package model; CHECK constraints keep them so.
-- Every state change the scheduler makes is a compare-and-set on these rows (see docs/store.md).

-- leadership: a single row fencing the leader. epoch only ever increases; every leader write
-- transaction locks this row FOR SHARE and compares the epoch first.
CREATE TABLE leadership (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch      bigint      NOT NULL CHECK (epoch >= 0),
    holder     text        NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO leadership (singleton, epoch, holder) VALUES (true, 0, '');

-- workflows: one row per workflow name, pointing at the version applied last.
CREATE TABLE workflows (
    name           text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    description    text        NOT NULL DEFAULT '',
    latest_version integer     NOT NULL CHECK (latest_version >= 1),
    version_count  integer     NOT NULL CHECK (version_count >= latest_version),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- workflow_versions: immutable, content-addressed by the SHA-256 of the submitted YAML.
CREATE TABLE workflow_versions (
    workflow   text        NOT NULL REFERENCES workflows (name) ON DELETE CASCADE,
    version    integer     NOT NULL CHECK (version >= 1),
    hash       text        NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    yaml       text        NOT NULL,
    compiled   bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, version),
    UNIQUE (workflow, hash)
);
ALTER TABLE workflows
    ADD FOREIGN KEY (name, latest_version) REFERENCES workflow_versions (workflow, version)
    DEFERRABLE INITIALLY DEFERRED;

-- runs: one execution of a workflow version.
CREATE TABLE runs (
    id              uuid        PRIMARY KEY,
    workflow        text        NOT NULL,
    version         integer     NOT NULL,
    state           text        NOT NULL
        CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    params          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    idempotency_key text        CHECK (idempotency_key <> ''),
    trigger         text        NOT NULL CHECK (trigger IN ('manual', 'schedule', 'retry')),
    error           text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (workflow, version) REFERENCES workflow_versions (workflow, version)
);
-- Idempotent creation: one run per (workflow, key); ON CONFLICT DO NOTHING relies on it.
CREATE UNIQUE INDEX runs_idempotency_key ON runs (workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Listing (keyset on (created_at, id), newest first), optionally by workflow and/or state.
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_state_created ON runs (state, created_at DESC, id DESC);
-- Failover rebuild and purge.
CREATE INDEX runs_active ON runs (created_at) WHERE state IN ('PENDING', 'RUNNING');
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

-- task_runs: the state of each task of a run; all rows are created with the run.
CREATE TABLE task_runs (
    run_id          uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id         text        NOT NULL CHECK (task_id <> ''),
    state           text        NOT NULL
        CHECK (state IN ('PENDING', 'QUEUED', 'ASSIGNED', 'RUNNING', 'RETRY_WAIT', 'SUCCEEDED',
                         'FAILED', 'UPSTREAM_FAILED', 'SKIPPED', 'CANCELLED', 'DEAD_LETTERED')),
    attempt         integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    fencing_token   bigint      NOT NULL DEFAULT 0,
    worker_id       text        NOT NULL DEFAULT '',
    next_attempt_at timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (run_id, task_id),
    CHECK ((state = 'RETRY_WAIT') = (next_attempt_at IS NOT NULL)),
    CHECK (state NOT IN ('ASSIGNED', 'RUNNING') OR (attempt >= 1 AND fencing_token <> 0))
);
-- Ready work: queued tasks, and retries by due time.
CREATE INDEX task_runs_queued ON task_runs (updated_at) WHERE state = 'QUEUED';
CREATE INDEX task_runs_retry_due ON task_runs (next_attempt_at) WHERE state = 'RETRY_WAIT';

-- attempts: one row per try, inserted when the task is ASSIGNED.
CREATE TABLE attempts (
    id               uuid        PRIMARY KEY,
    run_id           uuid        NOT NULL,
    task_id          text        NOT NULL,
    number           integer     NOT NULL CHECK (number >= 1),
    fencing_token    bigint      NOT NULL UNIQUE CHECK (fencing_token <> 0),
    worker_id        text        NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('ASSIGNED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'LOST',
                         'CANCELLED', 'STALE')),
    failure_kind     text        NOT NULL DEFAULT ''
        CHECK (failure_kind IN ('', 'timeout', 'exit_code', 'unexpected_status', 'connection',
                                'cancelled', 'internal', 'lost')),
    exit_code        integer,
    http_status      integer     CHECK (http_status BETWEEN 100 AND 599),
    output           bytea       NOT NULL DEFAULT '' CHECK (octet_length(output) <= 65536),
    output_truncated boolean     NOT NULL DEFAULT false,
    error            text        NOT NULL DEFAULT '',
    assigned_at      timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    deadline_at      timestamptz,
    finished_at      timestamptz,
    stale_result_at  timestamptz,
    stale_outcome    text        NOT NULL DEFAULT '',
    UNIQUE (run_id, task_id, number),
    FOREIGN KEY (run_id, task_id) REFERENCES task_runs (run_id, task_id) ON DELETE CASCADE,
    CHECK ((state IN ('ASSIGNED', 'RUNNING')) = (finished_at IS NULL))
);
-- Expired attempts: running attempts by deadline (the leader's timeout sweep).
CREATE INDEX attempts_deadline ON attempts (deadline_at) WHERE state IN ('ASSIGNED', 'RUNNING');

-- dead_letters: tasks whose attempts were exhausted; replayed at most once.
CREATE TABLE dead_letters (
    id          uuid        PRIMARY KEY,
    run_id      uuid        NOT NULL,
    task_id     text        NOT NULL,
    workflow    text        NOT NULL,
    errors      jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    FOREIGN KEY (run_id, task_id) REFERENCES task_runs (run_id, task_id) ON DELETE CASCADE
);
-- At most one open dead letter per task run.
CREATE UNIQUE INDEX dead_letters_open ON dead_letters (run_id, task_id) WHERE replayed_at IS NULL;
-- Listing (keyset on (created_at, id), newest first), optionally by workflow.
CREATE INDEX dead_letters_created ON dead_letters (created_at DESC, id DESC);
CREATE INDEX dead_letters_workflow_created ON dead_letters (workflow, created_at DESC, id DESC);

-- events: append-only history of each run. seq orders events of one writer (the leader).
CREATE TABLE events (
    seq       bigserial   PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    run_id    uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id   text        NOT NULL DEFAULT '',
    kind      text        NOT NULL CHECK (kind ~ '^[a-z][a-z_]{0,63}$'),
    from_state text       NOT NULL DEFAULT '',
    to_state  text        NOT NULL DEFAULT '',
    attempt   integer     NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    message   text        NOT NULL DEFAULT ''
);
CREATE INDEX events_run_seq ON events (run_id, seq);

-- Events are never updated, and deleted only together with their run (run-retention purge
-- deletes the run; ON DELETE CASCADE removes its events after the run row is gone).
CREATE FUNCTION events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'events are append-only: UPDATE of event % rejected', OLD.seq
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM runs WHERE id = OLD.run_id) THEN
        RAISE EXCEPTION 'events are append-only: event % can only be deleted with its run %',
            OLD.seq, OLD.run_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- schedules: a workflow's cron schedule; advanced by CAS on next_fire_at.
CREATE TABLE schedules (
    workflow     text        PRIMARY KEY REFERENCES workflows (name) ON DELETE CASCADE,
    cron         text        NOT NULL CHECK (cron <> ''),
    timezone     text        NOT NULL DEFAULT 'UTC' CHECK (timezone <> ''),
    next_fire_at timestamptz NOT NULL,
    last_fire_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX schedules_due ON schedules (next_fire_at);
