// Package retry owns Cairn's retry policy: how many extra attempts a task gets after its
// first, and how long to wait before each (exponential backoff with a cap and optional
// "full jitter").
//
// It imports nothing of Cairn; the DAG parser, the scheduler and the local runner convert
// their specs into a Policy.
//
// # Numbering
//
// A task's attempts are numbered from 1. Retries are numbered from 0: retry n is attempt
// n+2, and it waits Delay(n) after attempt n+1 failed.
//
//	attempt 1 fails → Delay(0) ∈ [0, Initial]               → attempt 2
//	attempt 2 fails → Delay(1) ∈ [0, Initial×Multiplier]    → attempt 3
//	attempt k fails → Delay(k-1) ∈ [0, min(Max, Initial×Multiplier^(k-1))]
//	                  … until MaxRetries retries have been made (Next reports false).
//
// Without jitter the delay is exactly the ceiling min(Max, Initial×Multiplier^n); with jitter
// it is uniform in [0, ceiling) (AWS "full jitter"), which spreads the retries of many tasks
// that failed together.
//
// # Invariants
//
//   - Delay and Ceiling never return a negative duration nor one above max(Initial, Max),
//     for any n (n = 1<<62 included: the arithmetic is done in float64 and clamped, so it
//     cannot overflow), and for any random source (out-of-range values are clamped).
//   - Merge never mutates its inputs; an Override field left nil keeps the value beneath it,
//     so "unset" and "zero" differ (retries: 0 turns retries off).
//   - Validate reports every bad field at once (errors.Join of *FieldError values), each
//     naming the field as the DAG format spells it: "retries", "backoff.initial",
//     "backoff.max", "backoff.multiplier". errors.Is(err, ErrInvalidPolicy) holds for each.
//
// Delay and Ceiling are defined on any Policy, valid or not, so a caller that skipped
// Validate still gets a bounded, non-negative delay; only Validate says whether the policy
// means what its author intended.
package retry
