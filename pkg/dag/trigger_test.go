package dag

import "testing"

// sum builds a summary from outcome counts: s=succeeded f=failed u=upstream_failed k=skipped
// c=cancelled p=not finished.
func sum(s, f, u, k, c, p int) UpstreamSummary {
	return UpstreamSummary{Total: s + f + u + k + c + p, Succeeded: s, Failed: f, UpstreamFailed: u, Skipped: k, Cancelled: c, Done: s + f + u + k + c}
}

// TestTriggerRuleTable covers every row of the table in doc.go.
func TestTriggerRuleTable(t *testing.T) {
	cases := []struct {
		rule TriggerRule
		s    UpstreamSummary
		want Decision
	}{
		// all_success
		{AllSuccess, sum(0, 0, 0, 0, 0, 0), Run},
		{AllSuccess, sum(3, 0, 0, 0, 0, 0), Run},
		{AllSuccess, sum(2, 0, 0, 0, 0, 1), Wait},
		{AllSuccess, sum(1, 1, 0, 0, 0, 1), UpstreamFailed}, // decided before the rest finish
		{AllSuccess, sum(1, 0, 1, 0, 0, 0), UpstreamFailed},
		{AllSuccess, sum(1, 0, 0, 0, 1, 0), UpstreamFailed},
		{AllSuccess, sum(0, 1, 0, 1, 0, 0), UpstreamFailed}, // failure wins over skip
		{AllSuccess, sum(1, 0, 0, 1, 0, 0), Skip},
		{AllSuccess, sum(0, 0, 0, 1, 0, 1), Wait}, // a later failure would make it UpstreamFailed
		// all_done
		{AllDone, sum(0, 0, 0, 0, 0, 0), Run},
		{AllDone, sum(1, 1, 1, 1, 1, 0), Run},
		{AllDone, sum(1, 1, 0, 0, 0, 1), Wait},
		// one_success
		{OneSuccess, sum(1, 0, 0, 0, 0, 2), Run},
		{OneSuccess, sum(1, 2, 0, 0, 0, 0), Run},
		{OneSuccess, sum(0, 0, 0, 2, 0, 0), Skip},
		{OneSuccess, sum(0, 0, 0, 0, 0, 0), Skip}, // no upstream: never fires (rejected by Parse)
		{OneSuccess, sum(0, 1, 0, 1, 0, 0), UpstreamFailed},
		{OneSuccess, sum(0, 0, 0, 0, 1, 0), UpstreamFailed},
		{OneSuccess, sum(0, 1, 0, 0, 0, 1), Wait},
		// one_failed
		{OneFailed, sum(0, 1, 0, 0, 0, 2), Run},
		{OneFailed, sum(0, 0, 1, 0, 0, 2), Run},
		{OneFailed, sum(2, 0, 0, 1, 1, 0), Skip},
		{OneFailed, sum(0, 0, 0, 0, 0, 0), Skip}, // no upstream: never fires (rejected by Parse)
		{OneFailed, sum(1, 0, 0, 0, 1, 1), Wait},
		// none_failed
		{NoneFailed, sum(0, 0, 0, 0, 0, 0), Run},
		{NoneFailed, sum(1, 0, 0, 2, 0, 0), Run},
		{NoneFailed, sum(0, 0, 0, 2, 0, 0), Run},
		{NoneFailed, sum(1, 1, 0, 0, 0, 1), UpstreamFailed},
		{NoneFailed, sum(1, 0, 1, 0, 0, 0), UpstreamFailed},
		{NoneFailed, sum(1, 0, 0, 0, 1, 0), UpstreamFailed},
		{NoneFailed, sum(1, 0, 0, 1, 0, 1), Wait},
	}
	for _, c := range cases {
		if got := c.rule.Evaluate(c.s); got != c.want {
			t.Errorf("%s %+v: got %v, want %v", c.rule, c.s, got, c.want)
		}
	}
}

// TestTriggerDecisionsAreFinal checks the property doc.go promises: once a rule decides, no
// further upstream outcome changes the decision.
func TestTriggerDecisionsAreFinal(t *testing.T) {
	terminal := []Outcome{OutcomeSucceeded, OutcomeFailed, OutcomeUpstreamFailed, OutcomeSkipped, OutcomeCancelled}
	for _, rule := range []TriggerRule{AllSuccess, AllDone, OneSuccess, OneFailed, NoneFailed} {
		// Every assignment of terminal outcomes to 3 upstream tasks, revealed one at a time.
		for code := 0; code < 125; code++ {
			outs := []Outcome{terminal[code%5], terminal[code/5%5], terminal[code/25]}
			final := rule.Evaluate(summaryOf(outs))
			for known := 0; known <= 3; known++ {
				var s UpstreamSummary
				for i, o := range outs {
					if i < known {
						s.Add(o)
					} else {
						s.Add(OutcomeActive)
					}
				}
				if d := rule.Evaluate(s); d != Wait && d != final {
					t.Fatalf("%s %v: decided %v after %d outcomes, but %v once all are known", rule, outs, d, known, final)
				}
			}
		}
	}
}

func summaryOf(outs []Outcome) UpstreamSummary {
	var s UpstreamSummary
	for _, o := range outs {
		s.Add(o)
	}
	return s
}

func TestUpstreamSummaryAdd(t *testing.T) {
	s := summaryOf([]Outcome{OutcomePending, OutcomeActive, OutcomeSucceeded, OutcomeFailed, OutcomeUpstreamFailed, OutcomeSkipped, OutcomeCancelled})
	want := UpstreamSummary{Total: 7, Succeeded: 1, Failed: 1, UpstreamFailed: 1, Skipped: 1, Cancelled: 1, Done: 5}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if OutcomeActive.Terminal() || !OutcomeCancelled.Terminal() || Outcome(99).Terminal() {
		t.Error("Terminal is wrong")
	}
}
