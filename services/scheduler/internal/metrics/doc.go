// Package metrics binds the scheduler's observations to OpenTelemetry instruments (exported to
// Prometheus by pkg/telemetry). [Metrics] implements engine.Metrics for the leader's engine and
// adds what the binary itself reports: leader status and epoch, connected workers and cron
// fires.
//
// Names as Prometheus shows them:
//
//	cairn_runs_finished_total{state}            runs that reached a terminal state
//	cairn_task_attempts_total{outcome}          attempts that ended, by outcome
//	cairn_dispatch_queue_wait_seconds           time from QUEUED to ASSIGNED (histogram)
//	cairn_queue_depth{worker,pool}              tasks waiting in each worker's queue (gauge)
//	cairn_steals_total                          tasks an idle worker took from a busy peer
//	cairn_commit_batch_groups                   groups per group-commit transaction (histogram)
//	cairn_commit_duration_seconds               time of one group-commit transaction (histogram)
//	cairn_leader                                1 while this replica leads, else 0 (gauge)
//	cairn_leader_epoch                          epoch of this replica's term, 0 when following
//	cairn_workers_connected                     worker streams attached to this replica
//	cairn_schedule_fires_total                  runs created by cron schedules
//	cairn_schedule_skipped_total                fire times skipped after a leader outage
//
// Every method is safe for concurrent use; a nil *Metrics records nothing.
package metrics
