ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (seq);
CREATE INDEX events_run_seq ON events (run_id, seq);
ALTER TABLE attempts RESET (fillfactor);
ALTER TABLE task_runs RESET (fillfactor);
CREATE INDEX attempts_deadline ON attempts (deadline_at) WHERE state IN ('ASSIGNED', 'RUNNING');
CREATE INDEX task_runs_retry_due ON task_runs (next_attempt_at) WHERE state = 'RETRY_WAIT';
CREATE INDEX task_runs_queued ON task_runs (updated_at) WHERE state = 'QUEUED';
