-- attempt_base: the attempt number a run retry or a DLQ replay re-opened the task at. Retries
-- are counted from it, so a re-run task gets its full retry budget again while attempt
-- numbers (and fencing tokens) keep increasing.
ALTER TABLE task_runs ADD COLUMN attempt_base integer NOT NULL DEFAULT 0
    CHECK (attempt_base >= 0 AND attempt_base <= attempt);
