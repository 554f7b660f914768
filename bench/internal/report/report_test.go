package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var b bytes.Buffer
	r := New(&b)
	r.Workload("w", "size", 3)
	r.Add("a.b", 1234.5678, "tasks/s")
	r.Add("c", 0.000123, "s")
	r.Add("d", 7, "runs")
	r.Add("nan", math.NaN(), "ms")
	r.Unavailable("pgbench", "not installed")
	want := []string{"# workload w: size=3", "a.b=1234.6 tasks/s", "c=0.000123 s", "d=7 runs", "nan=unavailable", "pgbench=unavailable"}
	got := strings.Split(strings.TrimSpace(b.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range got[1:] {
		if !Line.MatchString(l) {
			t.Errorf("line %q does not match Line", l)
		}
	}
	r.Table()
	if !strings.Contains(b.String(), "not installed") {
		t.Errorf("table lacks the note:\n%s", b.String())
	}
	if len(r.Figures()) != 5 {
		t.Errorf("%d figures recorded, want 5", len(r.Figures()))
	}
}
