-- Reverts 000004_namespaces.up.sql. Only possible while every row is in the namespace
-- 'default' (other namespaces may exist if they are empty): workflow names and idempotency
-- keys are unique per namespace, and the previous schema has no way to tell them apart.
DO $$
DECLARE
    held text;
BEGIN
    SELECT string_agg(DISTINCT namespace, ', ') INTO held FROM (
        SELECT namespace FROM workflows WHERE namespace <> 'default'
        UNION ALL SELECT namespace FROM runs WHERE namespace <> 'default'
        UNION ALL SELECT namespace FROM dead_letters WHERE namespace <> 'default'
        UNION ALL SELECT namespace FROM schedules WHERE namespace <> 'default') x;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'cannot revert the namespaces migration: namespace(s) % hold data; only ''default'' may', held
            USING ERRCODE = 'restrict_violation';
    END IF;
END;
$$;

ALTER TABLE schedules DROP CONSTRAINT schedules_workflow_fkey;
ALTER TABLE schedules DROP CONSTRAINT schedules_pkey;
ALTER TABLE schedules DROP COLUMN namespace;
ALTER TABLE schedules ADD PRIMARY KEY (workflow);

DROP INDEX dead_letters_created;
DROP INDEX dead_letters_workflow_created;
ALTER TABLE dead_letters DROP COLUMN namespace;
CREATE INDEX dead_letters_created ON dead_letters (created_at DESC, id DESC);
CREATE INDEX dead_letters_workflow_created ON dead_letters (workflow, created_at DESC, id DESC);

ALTER TABLE runs DROP CONSTRAINT runs_workflow_version_fkey;
ALTER TABLE runs DROP CONSTRAINT runs_namespace_fkey;
DROP INDEX runs_idempotency_key;
DROP INDEX runs_created;
DROP INDEX runs_workflow_created;
DROP INDEX runs_state_created;
ALTER TABLE runs DROP COLUMN namespace;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (workflow, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_state_created ON runs (state, created_at DESC, id DESC);

ALTER TABLE workflows DROP CONSTRAINT workflows_latest_version_fkey;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_workflow_fkey;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_namespace_workflow_hash_key;
ALTER TABLE workflow_versions DROP CONSTRAINT workflow_versions_pkey;
ALTER TABLE workflow_versions DROP COLUMN namespace;
ALTER TABLE workflow_versions ADD PRIMARY KEY (workflow, version);
ALTER TABLE workflow_versions ADD CONSTRAINT workflow_versions_workflow_hash_key UNIQUE (workflow, hash);

ALTER TABLE workflows DROP CONSTRAINT workflows_namespace_fkey;
ALTER TABLE workflows DROP CONSTRAINT workflows_pkey;
ALTER TABLE workflows DROP COLUMN namespace;
ALTER TABLE workflows ADD PRIMARY KEY (name);

-- The keys by workflow name, as 000001 created them.
ALTER TABLE workflow_versions ADD CONSTRAINT workflow_versions_workflow_fkey
    FOREIGN KEY (workflow) REFERENCES workflows (name) ON DELETE CASCADE;
ALTER TABLE workflows ADD CONSTRAINT workflows_name_latest_version_fkey
    FOREIGN KEY (name, latest_version) REFERENCES workflow_versions (workflow, version)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE runs ADD CONSTRAINT runs_workflow_version_fkey
    FOREIGN KEY (workflow, version) REFERENCES workflow_versions (workflow, version);
ALTER TABLE schedules ADD CONSTRAINT schedules_workflow_fkey
    FOREIGN KEY (workflow) REFERENCES workflows (name) ON DELETE CASCADE;

DROP TABLE namespaces;
