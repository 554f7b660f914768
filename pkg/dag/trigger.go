package dag

// TriggerRule decides, from the outcomes of a task's upstream tasks, whether the task runs.
// The semantics follow Airflow; the package documentation has the full table.
type TriggerRule string

// Trigger rules.
const (
	AllSuccess TriggerRule = "all_success" // the default
	AllDone    TriggerRule = "all_done"
	OneSuccess TriggerRule = "one_success"
	OneFailed  TriggerRule = "one_failed"
	NoneFailed TriggerRule = "none_failed"
)

var triggerRules = []string{string(AllSuccess), string(AllDone), string(OneSuccess), string(OneFailed), string(NoneFailed)}

// Outcome is what the scheduler knows about one task, as far as trigger rules care.
type Outcome uint8

// Outcomes. The scheduler maps its task states onto them: PENDING → OutcomePending; QUEUED,
// ASSIGNED, RUNNING and RETRY_WAIT → OutcomeActive; FAILED and DEAD_LETTERED → OutcomeFailed.
const (
	OutcomePending        Outcome = iota // not yet decided: waiting on its upstream
	OutcomeActive                        // decided to run and not finished (queued, running, waiting to retry)
	OutcomeSucceeded                     // terminal
	OutcomeFailed                        // terminal; includes dead-lettered
	OutcomeUpstreamFailed                // terminal
	OutcomeSkipped                       // terminal
	OutcomeCancelled                     // terminal
)

var outcomeNames = [...]string{"pending", "active", "succeeded", "failed", "upstream_failed", "skipped", "cancelled"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "outcome(" + itoa(int(o)) + ")"
}

// Terminal reports whether the task has finished for good.
func (o Outcome) Terminal() bool { return o >= OutcomeSucceeded && int(o) < len(outcomeNames) }

// UpstreamSummary counts a task's upstream tasks by outcome. Done counts the terminal ones
// (Succeeded+Failed+UpstreamFailed+Skipped+Cancelled).
type UpstreamSummary struct {
	Total, Succeeded, Failed, UpstreamFailed, Skipped, Cancelled, Done int
}

// Add counts one upstream task.
func (s *UpstreamSummary) Add(o Outcome) {
	s.Total++
	switch o {
	case OutcomeSucceeded:
		s.Succeeded++
	case OutcomeFailed:
		s.Failed++
	case OutcomeUpstreamFailed:
		s.UpstreamFailed++
	case OutcomeSkipped:
		s.Skipped++
	case OutcomeCancelled:
		s.Cancelled++
	default:
		return
	}
	s.Done++
}

// Decision is what a trigger rule says about a pending task.
type Decision uint8

// Decisions.
const (
	Wait           Decision = iota // not decidable yet: some upstream task has not finished
	Run                            // start the task
	Skip                           // mark it SKIPPED without running it
	UpstreamFailed                 // mark it UPSTREAM_FAILED without running it
)

var decisionNames = [...]string{"wait", "run", "skip", "upstream_failed"}

func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "decision(" + itoa(int(d)) + ")"
}

// Evaluate applies the rule to the upstream outcomes. A decision other than Wait is final: it is
// the same whatever the still-unfinished upstream tasks go on to do, so the final state of every
// task depends only on the final outcomes of its upstream, never on the order they finished in.
// An unknown rule evaluates like AllSuccess (Parse never produces one).
func (r TriggerRule) Evaluate(s UpstreamSummary) Decision {
	allDone := s.Done >= s.Total
	switch r {
	case AllDone:
		if allDone {
			return Run
		}
	case OneSuccess:
		switch {
		case s.Succeeded > 0:
			return Run
		case allDone && s.Skipped == s.Total:
			return Skip
		case allDone:
			return UpstreamFailed
		}
	case OneFailed:
		switch {
		case s.Failed+s.UpstreamFailed > 0:
			return Run
		case allDone:
			return Skip
		}
	case NoneFailed:
		switch {
		case s.Failed+s.UpstreamFailed+s.Cancelled > 0:
			return UpstreamFailed
		case allDone:
			return Run
		}
	default: // AllSuccess
		switch {
		case s.Failed+s.UpstreamFailed+s.Cancelled > 0:
			return UpstreamFailed
		case s.Succeeded == s.Total:
			return Run
		case allDone:
			return Skip
		}
	}
	return Wait
}

// canFireWithoutUpstream reports whether a task with no upstream at all ever runs under r.
func (r TriggerRule) canFireWithoutUpstream() bool {
	return r.Evaluate(UpstreamSummary{}) == Run
}
