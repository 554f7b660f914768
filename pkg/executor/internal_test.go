package executor

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

type panicking struct{}

func (panicking) run(context.Context, *Attempt, *Result) { panic("boom in executor") }

func TestPanicBecomesInternalFailure(t *testing.T) {
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	d.runners[TypeNoop] = panicking{}
	res := d.Execute(t.Context(), &Attempt{Number: 1, Spec: Spec{Type: TypeNoop}})
	if res.Succeeded || res.Failure != FailureInternal || !errors.Is(res.Err, ErrPanic) {
		t.Fatalf("Failure %s, Err %v; want internal / ErrPanic", res.Failure, res.Err)
	}
	if !strings.Contains(res.Error, "boom in executor") || !bytes.Contains(res.Output, []byte("TestPanicBecomesInternalFailure")) {
		t.Errorf("Error %q / Output %q: want the panic value and its stack", res.Error, res.Output)
	}
	if res.Started.IsZero() || res.Finished.IsZero() || res.ExitCode != -1 {
		t.Errorf("times or exit code not set: %+v", res)
	}
}

func TestTailBufferMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []int{1, 7, 64, 1000} {
		tb := newTailBuffer(limit)
		var all []byte
		for i := range 500 {
			n := rnd.IntN(3 * limit)
			p := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			p = append(p, byte(i))
			_, _ = tb.Write(p)
			all = append(all, p...)
			want := all[max(0, len(all)-limit):]
			if got := tb.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("limit %d after %d writes: tail %q, want %q", limit, i+1, got, want)
			}
			if tb.Truncated() != (len(all) > limit) {
				t.Fatalf("limit %d: Truncated %v with %d bytes written", limit, tb.Truncated(), len(all))
			}
			if len(tb.buf) > 2*limit {
				t.Fatalf("limit %d: buffer holds %d bytes", limit, len(tb.buf))
			}
		}
	}
}

func TestParseStat(t *testing.T) {
	for line, want := range map[string]struct {
		state byte
		pgrp  int
		ok    bool
	}{
		"123 (sleep) S 1 456 789 0":        {'S', 456, true},
		"123 (a (weird) name) Z 1 77 77 0": {'Z', 77, true},
		"123 (sp ace) R 1 88 88":           {'R', 88, true},
		"garbage":                          {0, 0, false},
		"123 (x) S 1":                      {0, 0, false},
		"123 (x) S 1 notanumber 3":         {0, 0, false},
	} {
		state, pgrp, ok := parseStat([]byte(line))
		if state != want.state || pgrp != want.pgrp || ok != want.ok {
			t.Errorf("parseStat(%q) = %c %d %v, want %c %d %v", line, state, pgrp, ok, want.state, want.pgrp, want.ok)
		}
	}
}
