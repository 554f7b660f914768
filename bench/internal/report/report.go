package report

import (
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"sync"
	"text/tabwriter"
)

// Unavailable is the value printed for a figure that could not be measured.
const Unavailable = "unavailable"

// Figure is one measured value.
type Figure struct {
	Workload string
	Name     string
	Value    string // formatted number or Unavailable
	Unit     string
	Note     string // shown in the table only
}

// Report collects and prints figures. Safe for concurrent use.
type Report struct {
	mu       sync.Mutex
	w        io.Writer
	workload string
	figures  []Figure
}

// New returns a report printing to w.
func New(w io.Writer) *Report { return &Report{w: w} }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Line is the pattern of a figure line: name, value, optional unit.
var Line = regexp.MustCompile(`^([a-z0-9][a-z0-9._-]*)=(\S+)(?: (\S.*))?$`)

// Workload starts a workload's section and prints its settings as a comment line.
func (r *Report) Workload(name string, settings ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.workload = name
	s := "# workload " + name + ":"
	for i := 0; i+1 < len(settings); i += 2 {
		s += fmt.Sprintf(" %v=%v", settings[i], settings[i+1])
	}
	fmt.Fprintln(r.w, s)
}

// Notef prints a comment line.
func (r *Report) Notef(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "# "+format+"\n", args...)
}

// Add prints and records a figure. A NaN or infinite value is recorded as unavailable.
func (r *Report) Add(name string, value float64, unit string) {
	r.AddNote(name, value, unit, "")
}

// AddNote is Add with a note for the table.
func (r *Report) AddNote(name string, value float64, unit, note string) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		r.Unavailable(name, note)
		return
	}
	r.add(Figure{Name: name, Value: format(value), Unit: unit, Note: note})
}

// Unavailable prints and records a figure that could not be measured, with why.
func (r *Report) Unavailable(name, why string) {
	r.add(Figure{Name: name, Value: Unavailable, Note: why})
}

func (r *Report) add(f Figure) {
	if !nameRE.MatchString(f.Name) {
		panic(fmt.Sprintf("report: bad figure name %q", f.Name)) // a programming error
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f.Workload = r.workload
	r.figures = append(r.figures, f)
	if f.Unit == "" {
		fmt.Fprintf(r.w, "%s=%s\n", f.Name, f.Value)
	} else {
		fmt.Fprintf(r.w, "%s=%s %s\n", f.Name, f.Value, f.Unit)
	}
}

// Figures returns a copy of what was recorded.
func (r *Report) Figures() []Figure {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Figure(nil), r.figures...)
}

// Table prints every figure as a table.
func (r *Report) Table() {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.w)
	tw := tabwriter.NewWriter(r.w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tFIGURE\tVALUE\tUNIT\tNOTE")
	for _, f := range r.figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Workload, f.Name, f.Value, f.Unit, f.Note)
	}
	_ = tw.Flush()
}

// format prints v with up to 4 significant decimals for small values and none for large.
func format(v float64) string {
	switch a := math.Abs(v); {
	case a == math.Trunc(a) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
