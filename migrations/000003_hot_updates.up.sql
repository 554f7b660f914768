-- Heap-only-tuple (HOT) updates for the two tables the leader updates on every task cycle.
--
-- An UPDATE is HOT — no new entry in any index — only when no indexed column changes and the
-- page has room. A partial index counts its predicate's columns: these three indexes named
-- `state`, which every transition changes, so every update of task_runs and attempts wrote a
-- new entry into every index of the table. Nothing reads through them: the leader keeps the
-- queue, retry timers and attempt deadlines in memory (rebuilt from the active runs after a
-- failover), and the store's QueuedTasks, DueRetries and ExpiredAttempts are diagnostics.
DROP INDEX task_runs_queued;
DROP INDEX task_runs_retry_due;
DROP INDEX attempts_deadline;

-- Leave room on each page for the new versions of its rows (each task run is updated about
-- four times per attempt, each attempt twice).
ALTER TABLE task_runs SET (fillfactor = 70);
ALTER TABLE attempts SET (fillfactor = 70);

-- Events are read by run only (EventsSince: run_id = $1 AND seq > $2 ORDER BY seq): one index
-- on (run_id, seq) serves as the key, instead of a key on seq plus that index (one index
-- insert less per event; a short task's cycle writes three events).
ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_run_seq;
ALTER TABLE events ADD PRIMARY KEY (run_id, seq);
