ALTER TABLE task_runs DROP COLUMN attempt_base;
