package retry

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// MaxRetriesLimit is the largest MaxRetries Validate accepts. It keeps a typo (retries:
// 1000000) from turning a failing task into a run that never ends.
const MaxRetriesLimit = 1000

// ErrInvalidPolicy is matched (errors.Is) by every error Validate returns.
var ErrInvalidPolicy = errors.New("invalid retry policy")

// Policy says how often a failed task is retried and how long each retry waits.
type Policy struct {
	// MaxRetries is the number of extra attempts after the first (0 = never retry).
	MaxRetries int
	// Initial is the ceiling of the first retry's delay (≥ 0; 0 retries at once).
	Initial time.Duration
	// Max caps every delay (≥ Initial).
	Max time.Duration
	// Multiplier grows the ceiling per retry (≥ 1; 1 = constant ceiling).
	Multiplier float64
	// Jitter draws each delay uniformly from [0, ceiling) instead of using the ceiling.
	Jitter bool
}

// Default returns the policy a task gets when neither its workflow nor the task sets one:
// no retries; should retries be switched on without a backoff, the first waits up to 1s,
// doubling to at most 1m, with full jitter.
func Default() Policy {
	return Policy{MaxRetries: 0, Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: true}
}

// Override is a partial Policy: per-workflow defaults or per-task settings. A nil field
// leaves the value beneath it unchanged.
type Override struct {
	MaxRetries *int
	Initial    *time.Duration
	Max        *time.Duration
	Multiplier *float64
	Jitter     *bool
}

// Merge applies overrides to base in order (later wins) and returns the result, e.g.
// Merge(Default(), workflowDefaults, taskSettings). Its inputs are not modified.
func Merge(base Policy, overrides ...Override) Policy {
	p := base
	for _, o := range overrides {
		if o.MaxRetries != nil {
			p.MaxRetries = *o.MaxRetries
		}
		if o.Initial != nil {
			p.Initial = *o.Initial
		}
		if o.Max != nil {
			p.Max = *o.Max
		}
		if o.Multiplier != nil {
			p.Multiplier = *o.Multiplier
		}
		if o.Jitter != nil {
			p.Jitter = *o.Jitter
		}
	}
	return p
}

// FieldError is one bad field of a Policy. Field is spelled as in the DAG format.
type FieldError struct {
	Field   string // "retries", "backoff.initial", "backoff.max" or "backoff.multiplier"
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is makes errors.Is(err, ErrInvalidPolicy) true for every FieldError.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate reports every field of p that is out of range, joined; nil if p is valid.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if p.MaxRetries < 0 {
		bad("retries", "must be ≥ 0, got %d", p.MaxRetries)
	} else if p.MaxRetries > MaxRetriesLimit {
		bad("retries", "must be ≤ %d, got %d", MaxRetriesLimit, p.MaxRetries)
	}
	if p.Initial < 0 {
		bad("backoff.initial", "must be ≥ 0, got %s", p.Initial)
	}
	if p.Max < 0 {
		bad("backoff.max", "must be ≥ 0, got %s", p.Max)
	} else if p.Initial >= 0 && p.Max < p.Initial {
		bad("backoff.max", "must be ≥ backoff.initial (%s), got %s", p.Initial, p.Max)
	}
	if math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0) || p.Multiplier < 1 {
		bad("backoff.multiplier", "must be a finite number ≥ 1, got %v", p.Multiplier)
	}
	return errors.Join(errs...)
}

// Ceiling returns the largest delay of retry n (0-based): min(Max, Initial×Multiplier^n),
// computed without overflow for any n. A negative n counts as 0. On a policy that fails
// Validate it stays within [0, max(Initial, Max)].
func (p Policy) Ceiling(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	initial := max(p.Initial, 0)
	limit := max(p.Max, initial)
	if initial == 0 {
		return 0
	}
	m := p.Multiplier
	if !(m >= 1) { // also catches NaN; +Inf is fine: Pow gives 1 for n = 0, +Inf after
		m = 1
	}
	f := float64(initial) * math.Pow(m, float64(n))
	// float64(limit) may round up (e.g. MaxInt64 → 2^63); comparing with ≥ keeps the
	// conversion below in range because f is then strictly below a representable int64.
	if math.IsNaN(f) || f >= float64(limit) {
		return limit
	}
	return min(time.Duration(f), limit)
}

// Delay returns the wait before retry n (0-based; see the package doc). Without Jitter it is
// Ceiling(n); with Jitter it is Ceiling(n)×u, where u = rnd() is expected in [0, 1) and is
// clamped into it. rnd may be nil (math/rand/v2's Float64); pass (*rand.Rand).Float64 for a
// seeded, reproducible source.
func (p Policy) Delay(n int, rnd func() float64) time.Duration {
	ceiling := p.Ceiling(n)
	if !p.Jitter || ceiling == 0 {
		return ceiling
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	u := rnd()
	switch {
	case !(u > 0): // also catches NaN
		return 0
	case u >= 1:
		return ceiling
	}
	d := time.Duration(u * float64(ceiling))
	return min(max(d, 0), ceiling)
}

// Next is called after attempt (1-based) failed. It reports whether another attempt is
// allowed and, if so, the delay before it (Delay(attempt-1)).
func (p Policy) Next(attempt int, rnd func() float64) (time.Duration, bool) {
	if attempt < 1 || attempt-1 >= p.MaxRetries {
		return 0, false
	}
	return p.Delay(attempt-1, rnd), true
}
