-- Namespaces. Every workflow (with its versions and its schedule) and every run (with its
-- task runs, attempts, events and dead letters) belongs to exactly one namespace; a resource
-- of another namespace is not found. Existing rows go to the namespace 'default', which is
-- what requests that name no namespace use.
--
-- Workflows and runs carry the namespace; task_runs, attempts and events reach it through
-- their run (the leader updates task_runs and attempts on every task cycle: no column and no
-- index is added to them, see docs/benchmarks.md). Dead letters carry it too, for listing.
--
-- workflows and runs reference namespaces ON DELETE RESTRICT: a namespace can only be deleted
-- once nothing is left in it. The foreign keys also make that safe against concurrent writers:
-- an insert locks the namespace row FOR KEY SHARE, which the DELETE's row lock conflicts with,
-- so either the DELETE sees the new row and fails, or the insert sees the namespace gone.
CREATE TABLE namespaces (
    name        text        PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO namespaces (name, description) VALUES ('default', 'The namespace of requests that name none.');

-- The keys that named a workflow by its name alone.
ALTER TABLE workflows DROP CONSTRAINT workflows_name_latest_version_fkey;
ALTER TABLE runs DROP CONSTRAINT runs_workflow_version_fkey;
ALTER TABLE schedules DROP CONSTRAINT schedules_workflow_fkey;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_workflow_fkey;

-- The namespace columns: every existing row is in 'default'. Adding a column with a constant
-- default rewrites nothing; the default is dropped afterwards so that no writer can land in
-- 'default' by forgetting the column.
ALTER TABLE workflows ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE workflow_versions ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE dead_letters ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE schedules ADD COLUMN namespace text NOT NULL DEFAULT 'default';
ALTER TABLE workflows ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE workflow_versions ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE runs ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE dead_letters ALTER COLUMN namespace DROP DEFAULT;
ALTER TABLE schedules ALTER COLUMN namespace DROP DEFAULT;

-- workflows: one row per (namespace, name).
ALTER TABLE workflows DROP CONSTRAINT workflows_pkey;
ALTER TABLE workflows ADD PRIMARY KEY (namespace, name);
ALTER TABLE workflows ADD CONSTRAINT workflows_namespace_fkey
    FOREIGN KEY (namespace) REFERENCES namespaces (name) ON DELETE RESTRICT;

-- workflow_versions: versions and content hashes are per (namespace, workflow).
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_pkey;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_workflow_hash_key;
ALTER TABLE workflow_versions ADD PRIMARY KEY (namespace, workflow, version);
ALTER TABLE workflow_versions ADD CONSTRAINT workflow_versions_namespace_workflow_hash_key
    UNIQUE (namespace, workflow, hash);
ALTER TABLE workflow_versions ADD CONSTRAINT workflow_versions_workflow_fkey
    FOREIGN KEY (namespace, workflow) REFERENCES workflows (namespace, name) ON DELETE CASCADE;
ALTER TABLE workflows ADD CONSTRAINT workflows_latest_version_fkey
    FOREIGN KEY (namespace, name, latest_version) REFERENCES workflow_versions (namespace, workflow, version)
    DEFERRABLE INITIALLY DEFERRED;

-- runs: a run executes a version of its own namespace.
ALTER TABLE runs ADD CONSTRAINT runs_namespace_fkey
    FOREIGN KEY (namespace) REFERENCES namespaces (name) ON DELETE RESTRICT;
ALTER TABLE runs ADD CONSTRAINT runs_workflow_version_fkey
    FOREIGN KEY (namespace, workflow, version) REFERENCES workflow_versions (namespace, workflow, version);
-- Idempotency keys are per (namespace, workflow).
DROP INDEX runs_idempotency_key;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (namespace, workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Listing is per namespace: the listing indexes lead with it (as many indexes as before, so a
-- run insert maintains no more of them). runs_created also serves the RESTRICT check of a
-- namespace's deletion.
DROP INDEX runs_created;
DROP INDEX runs_workflow_created;
DROP INDEX runs_state_created;
CREATE INDEX runs_created ON runs (namespace, created_at DESC, id DESC);
CREATE INDEX runs_workflow_created ON runs (namespace, workflow, created_at DESC, id DESC);
CREATE INDEX runs_state_created ON runs (namespace, state, created_at DESC, id DESC);

-- dead_letters: listed per namespace, alone or by workflow.
DROP INDEX dead_letters_created;
DROP INDEX dead_letters_workflow_created;
CREATE INDEX dead_letters_created ON dead_letters (namespace, created_at DESC, id DESC);
CREATE INDEX dead_letters_workflow_created ON dead_letters (namespace, workflow, created_at DESC, id DESC);

-- schedules: one per (namespace, workflow).
ALTER TABLE schedules DROP CONSTRAINT schedules_pkey;
ALTER TABLE schedules ADD PRIMARY KEY (namespace, workflow);
ALTER TABLE schedules ADD CONSTRAINT schedules_workflow_fkey
    FOREIGN KEY (namespace, workflow) REFERENCES workflows (namespace, name) ON DELETE CASCADE;
