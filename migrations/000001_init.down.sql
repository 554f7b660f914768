-- Reverts 000001_init.up.sql: drops every table, trigger and function it created.
DROP TABLE IF EXISTS schedules;
DROP TABLE IF EXISTS events;
DROP FUNCTION IF EXISTS events_append_only();
DROP TABLE IF EXISTS dead_letters;
DROP TABLE IF EXISTS attempts;
DROP TABLE IF EXISTS task_runs;
DROP TABLE IF EXISTS runs;
ALTER TABLE IF EXISTS workflows DROP CONSTRAINT IF EXISTS workflows_name_latest_version_fkey;
DROP TABLE IF EXISTS workflow_versions;
DROP TABLE IF EXISTS workflows;
DROP TABLE IF EXISTS leadership;
