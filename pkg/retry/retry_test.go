package retry_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cairn-io/cairn/pkg/retry"
)

func seeded(seed uint64) func() float64 {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).Float64
}

func TestDelayWithoutJitterIsExact(t *testing.T) {
	p := retry.Policy{MaxRetries: 10, Initial: time.Second, Max: time.Minute, Multiplier: 2}
	want := []time.Duration{
		1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute,
	}
	for n, w := range want {
		if got := p.Delay(n, nil); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
	if got := p.Delay(-3, nil); got != time.Second {
		t.Errorf("Delay(-3) = %s, want Initial (negative n counts as 0)", got)
	}

	frac := retry.Policy{Initial: 100 * time.Millisecond, Max: time.Hour, Multiplier: 1.5}
	for n, w := range []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond, 337500 * time.Microsecond} {
		if got := frac.Delay(n, nil); got != w {
			t.Errorf("multiplier 1.5: Delay(%d) = %s, want %s", n, got, w)
		}
	}

	constant := retry.Policy{Initial: 3 * time.Second, Max: 3 * time.Second, Multiplier: 1}
	for _, n := range []int{0, 1, 7, 10_000} {
		if got := constant.Delay(n, nil); got != 3*time.Second {
			t.Errorf("multiplier 1: Delay(%d) = %s, want 3s", n, got)
		}
	}
}

func TestDelayWithJitterStaysInBoundsAndAveragesHalfTheCeiling(t *testing.T) {
	p := retry.Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: true}
	rnd := seeded(1)
	const samples = 20_000
	for _, n := range []int{0, 1, 3, 6, 7, 20, 10_000} {
		ceiling := p.Ceiling(n)
		var sum float64
		distinct := map[time.Duration]bool{}
		for range samples {
			d := p.Delay(n, rnd)
			if d < 0 || d > ceiling {
				t.Fatalf("Delay(%d) = %s, outside [0, %s]", n, d, ceiling)
			}
			sum += float64(d)
			distinct[d] = true
		}
		mean := sum / samples
		// Uniform on [0, c): mean c/2, standard error c/sqrt(12·samples) ≈ 0.002c.
		if rel := mean / float64(ceiling); rel < 0.47 || rel > 0.53 {
			t.Errorf("Delay(%d): mean %s is %.3f of the ceiling %s, want ≈ 0.5", n, time.Duration(mean), rel, ceiling)
		}
		if len(distinct) < samples/2 {
			t.Errorf("Delay(%d): only %d distinct values in %d samples; jitter is not spreading", n, len(distinct), samples)
		}
	}
	if got := p.Ceiling(7); got != 10*time.Second {
		t.Errorf("Ceiling(7) = %s, want the cap 10s", got)
	}
}

func TestDelayNeverOverflows(t *testing.T) {
	policies := []retry.Policy{
		{Initial: time.Second, Max: time.Hour, Multiplier: 2},
		{Initial: time.Second, Max: time.Hour, Multiplier: 2, Jitter: true},
		{Initial: time.Second, Max: math.MaxInt64, Multiplier: 2},
		{Initial: time.Second, Max: math.MaxInt64, Multiplier: 2, Jitter: true},
		{Initial: math.MaxInt64, Max: math.MaxInt64, Multiplier: 1e300},
		{Initial: time.Nanosecond, Max: time.Minute, Multiplier: math.MaxFloat64},
	}
	rnd := seeded(2)
	for _, p := range policies {
		for _, n := range []int{0, 1, 62, 63, 64, 1023, 1024, 1025, 10_000, math.MaxInt32, math.MaxInt} {
			for range 50 {
				d := p.Delay(n, rnd)
				if d < 0 || d > p.Max {
					t.Fatalf("%+v: Delay(%d) = %d, outside [0, %d]", p, n, d, p.Max)
				}
				if !p.Jitter && n >= 1024 && d != p.Max {
					t.Fatalf("%+v: Delay(%d) = %d, want the cap %d", p, n, d, p.Max)
				}
			}
		}
	}
}

func TestDelayClampsAFaultyRandomSource(t *testing.T) {
	p := retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 2, Jitter: true}
	for _, u := range []float64{-1, math.NaN(), math.Inf(-1), 0, 1, 1.5, math.Inf(1)} {
		d := p.Delay(0, func() float64 { return u })
		if d < 0 || d > time.Second {
			t.Errorf("rnd()=%v: Delay = %s, outside [0, 1s]", u, d)
		}
	}
	if d := p.Delay(0, func() float64 { return 0.25 }); d != 250*time.Millisecond {
		t.Errorf("rnd()=0.25: Delay = %s, want 250ms", d)
	}
	// A nil source uses the global generator and still stays in bounds.
	for range 1000 {
		if d := p.Delay(0, nil); d < 0 || d > time.Second {
			t.Fatalf("nil rnd: Delay = %s, outside [0, 1s]", d)
		}
	}
}

func TestDelayIsBoundedOnInvalidPolicies(t *testing.T) {
	for _, p := range []retry.Policy{
		{Initial: -time.Second, Max: time.Second, Multiplier: 2},
		{Initial: 5 * time.Second, Max: time.Second, Multiplier: 2},
		{Initial: time.Second, Max: time.Minute, Multiplier: 0.5},
		{Initial: time.Second, Max: time.Minute, Multiplier: math.NaN()},
		{Initial: time.Second, Max: -time.Minute, Multiplier: 2, Jitter: true},
	} {
		limit := max(p.Initial, p.Max, 0)
		for _, n := range []int{0, 1, 5, 10_000} {
			if d := p.Delay(n, seeded(3)); d < 0 || d > limit {
				t.Errorf("%+v: Delay(%d) = %s, outside [0, %s]", p, n, d, limit)
			}
		}
	}
}

func TestNext(t *testing.T) {
	p := retry.Policy{MaxRetries: 3, Initial: time.Second, Max: time.Minute, Multiplier: 3}
	cases := []struct {
		attempt int
		want    time.Duration
		ok      bool
	}{
		{0, 0, false}, {1, time.Second, true}, {2, 3 * time.Second, true}, {3, 9 * time.Second, true},
		{4, 0, false}, {100, 0, false},
	}
	for _, c := range cases {
		d, ok := p.Next(c.attempt, nil)
		if d != c.want || ok != c.ok {
			t.Errorf("Next(%d) = %s, %v; want %s, %v", c.attempt, d, ok, c.want, c.ok)
		}
	}
	if _, ok := (retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 1}).Next(1, nil); ok {
		t.Error("MaxRetries 0: Next(1) allowed a retry")
	}
}

func TestMerge(t *testing.T) {
	base := retry.Default()
	workflow := retry.Override{MaxRetries: new(3), Initial: new(2 * time.Second)}
	task := retry.Override{MaxRetries: new(0), Jitter: new(false), Multiplier: new(1.5)}

	got := retry.Merge(base, workflow, task)
	want := retry.Policy{MaxRetries: 0, Initial: 2 * time.Second, Max: time.Minute, Multiplier: 1.5, Jitter: false}
	if got != want {
		t.Errorf("Merge = %+v, want %+v (an explicit 0 must override, unset must not)", got, want)
	}
	if got := retry.Merge(base, workflow); got.MaxRetries != 3 || got.Initial != 2*time.Second || got.Max != time.Minute || !got.Jitter {
		t.Errorf("Merge(base, workflow) = %+v", got)
	}
	if got := retry.Merge(base); got != base {
		t.Errorf("Merge without overrides = %+v, want the base %+v", got, base)
	}
	if got := retry.Merge(base, retry.Override{}); got != base {
		t.Errorf("Merge with an empty override = %+v, want the base %+v", got, base)
	}
	if base != retry.Default() || *workflow.MaxRetries != 3 || *task.MaxRetries != 0 {
		t.Error("Merge modified its inputs")
	}
}

func TestValidate(t *testing.T) {
	if err := retry.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	valid := []retry.Policy{
		{MaxRetries: 0, Initial: 0, Max: 0, Multiplier: 1},
		{MaxRetries: retry.MaxRetriesLimit, Initial: time.Millisecond, Max: time.Hour, Multiplier: 10, Jitter: true},
	}
	for _, p := range valid {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: Validate() = %v, want nil", p, err)
		}
	}

	cases := []struct {
		p      retry.Policy
		fields []string
	}{
		{retry.Policy{MaxRetries: -1, Initial: time.Second, Max: time.Second, Multiplier: 2}, []string{"retries"}},
		{retry.Policy{MaxRetries: retry.MaxRetriesLimit + 1, Initial: time.Second, Max: time.Second, Multiplier: 2}, []string{"retries"}},
		{retry.Policy{Initial: -time.Second, Max: time.Second, Multiplier: 2}, []string{"backoff.initial"}},
		{retry.Policy{Initial: time.Minute, Max: time.Second, Multiplier: 2}, []string{"backoff.max"}},
		{retry.Policy{Initial: time.Second, Max: -time.Second, Multiplier: 2}, []string{"backoff.max"}},
		{retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 0.5}, []string{"backoff.multiplier"}},
		{retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: 0}, []string{"backoff.multiplier"}},
		{retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: math.NaN()}, []string{"backoff.multiplier"}},
		{retry.Policy{Initial: time.Second, Max: time.Second, Multiplier: math.Inf(1)}, []string{"backoff.multiplier"}},
		{retry.Policy{MaxRetries: -5, Initial: -1, Max: -2, Multiplier: -3},
			[]string{"retries", "backoff.initial", "backoff.max", "backoff.multiplier"}},
	}
	for _, c := range cases {
		err := c.p.Validate()
		if err == nil {
			t.Errorf("%+v: Validate() = nil, want errors on %v", c.p, c.fields)
			continue
		}
		if !errors.Is(err, retry.ErrInvalidPolicy) {
			t.Errorf("%+v: %v does not match ErrInvalidPolicy", c.p, err)
		}
		var fields []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *retry.FieldError
			if !errors.As(e, &fe) {
				t.Errorf("%+v: %v is not a *FieldError", c.p, e)
				continue
			}
			if !strings.HasPrefix(fe.Error(), fe.Field+": ") || fe.Problem == "" {
				t.Errorf("FieldError %q does not name its field and problem", fe.Error())
			}
			fields = append(fields, fe.Field)
		}
		if strings.Join(fields, ",") != strings.Join(c.fields, ",") {
			t.Errorf("%+v: Validate() named fields %v, want %v (error: %v)", c.p, fields, c.fields, err)
		}
	}
}

func BenchmarkDelayJitter(b *testing.B) {
	p := retry.Default()
	rnd := seeded(4)
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += p.Delay(i%16, rnd)
	}
	_ = sink
}
