// Package cron fires workflows' cron schedules. It runs on the leader only, for one leadership
// term, and writes under that term's epoch.
//
// Every tick (one second by default) it reads the schedules whose next fire time has passed
// (store.DueSchedules) and, for each, in ONE store group:
//
//   - creates the run (trigger schedule) with the idempotency key "schedule:<fire time RFC 3339
//     UTC>", so the same fire time can never create two runs, whichever leader fires it;
//   - advances the schedule, compare-and-set on the next fire time it read, to the first fire
//     time after the one fired.
//
// If the key is already taken (the fire time has its run), the schedule alone is advanced: no
// second run. Then it appends a note event to the run saying which fire time it is for and how
// many earlier fire times were skipped, and hands the run to the engine. If the leader dies in between, the run is durable and
// PENDING, and the next leader's rebuild starts it.
//
// Missed fire times (the cluster had no leader for longer than a period) are not replayed: only
// the most recent missed fire time fires, and the number skipped is logged at WARN, recorded in
// the run's note event and counted in cairn_schedule_skipped_total — never silently.
//
// The schedule of record is the workflow's latest version: a due row whose workflow no longer
// has a schedule is deleted.
package cron
