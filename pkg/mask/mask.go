package mask

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// MinLen is the shortest secret value a Masker hides, in bytes. Shorter values are ignored:
// masking "a" or "42" everywhere would destroy the output and tell a reader where the value
// occurs anyway. The API that stores secrets should refuse values this short.
const MinLen = 4

// Redacted replaces every masked span unless the Masker is built WithNames.
const Redacted = "***"

// Secret is a named value to hide.
type Secret struct {
	Name  string
	Value string
}

// Option configures a Masker.
type Option func(*Masker)

// WithNames makes a Masker write [secret:NAME] instead of *** for each masked span, naming the
// secret whose form starts the span.
func WithNames() Option { return func(m *Masker) { m.named = true } }

// Masker hides the forms of a set of secret values (see Forms) in text. It is immutable and
// safe for concurrent use. A nil *Masker, or one built from no usable value, masks nothing.
type Masker struct {
	ac       *automaton
	patterns []string
	names    []string // secret name of each pattern
	patLens  []int
	maxLen   int
	named    bool

	revOnce sync.Once
	rev     *automaton // the patterns reversed, for suffixes cut off at the start of a text
}

// New returns a Masker for secrets. Values shorter than MinLen are ignored; a value given under
// several names is masked under the first.
func New(secrets []Secret, opts ...Option) *Masker {
	m := &Masker{}
	for _, o := range opts {
		o(m)
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		for _, f := range Forms(s.Value) {
			if seen[f] {
				continue
			}
			seen[f] = true
			m.patterns = append(m.patterns, f)
			m.names = append(m.names, s.Name)
			m.patLens = append(m.patLens, len(f))
			m.maxLen = max(m.maxLen, len(f))
		}
	}
	if len(m.patterns) > 0 {
		m.ac = newAutomaton(m.patterns)
	}
	return m
}

// Empty reports whether m masks nothing.
func (m *Masker) Empty() bool { return m == nil || m.ac == nil }

// MaxLen is the length of the longest form m looks for (0 when empty).
func (m *Masker) MaxLen() int {
	if m.Empty() {
		return 0
	}
	return m.maxLen
}

// span is a masked interval [start, end) of a text, labelled by the pattern that started it.
type span struct {
	start, end int64
	pat        int32
}

// addSpan merges [start, end) into spans, which are sorted, disjoint and end before end. The
// union of overlapping occurrences is masked as one span, so a secret overlapping another is
// not left half visible.
func addSpan(spans []span, start, end int64, pat int32) []span {
	for len(spans) > 0 && start < spans[len(spans)-1].end {
		last := spans[len(spans)-1]
		spans = spans[:len(spans)-1]
		if last.start <= start {
			start, pat = last.start, last.pat
		}
	}
	return append(spans, span{start, end, pat})
}

// find returns the masked spans of text, offsets relative to it.
func (m *Masker) find(text []byte) []span {
	var spans []span
	m.ac.scan(text, 0, func(end int, p int32) {
		spans = addSpan(spans, int64(end-m.patLens[p]), int64(end), p)
	})
	return spans
}

func (m *Masker) label(pat int32) string {
	if m.named {
		return "[secret:" + m.names[pat] + "]"
	}
	return Redacted
}

// apply writes text with spans (relative offsets, sorted, disjoint) replaced by labels.
func (m *Masker) apply(dst, text []byte, spans []span) []byte {
	prev := 0
	for _, s := range spans {
		dst = append(dst, text[prev:s.start]...)
		dst = append(dst, m.label(s.pat)...)
		prev = int(s.end)
	}
	return append(dst, text[prev:]...)
}

// Bytes returns b with every form of every secret masked. When nothing is found it returns b
// itself, not a copy.
func (m *Masker) Bytes(b []byte) []byte {
	if m.Empty() {
		return b
	}
	spans := m.find(b)
	if len(spans) == 0 {
		return b
	}
	return m.apply(make([]byte, 0, len(b)), b, spans)
}

// String returns s with every form of every secret masked.
func (m *Masker) String(s string) string {
	if m.Empty() {
		return s
	}
	spans := m.find([]byte(s))
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := 0
	for _, sp := range spans {
		b.WriteString(s[prev:sp.start])
		b.WriteString(m.label(sp.pat))
		prev = int(sp.end)
	}
	b.WriteString(s[prev:])
	return b.String()
}

// Cut masks b, a piece cut out of a longer text: cutBefore says bytes before b[0] were
// dropped (b is a tail), cutAfter that bytes after its end were (b is a head). Besides the
// forms inside b, it masks the part of a form that the cut split: the longest start of b that
// ends some form, and the longest end of b that begins one. Use it on output that was
// truncated before it was masked.
func (m *Masker) Cut(b []byte, cutBefore, cutAfter bool) []byte {
	if m.Empty() {
		return b
	}
	spans := m.find(b)
	if cutAfter {
		// The automaton's state after a text is the longest suffix of it that begins a pattern.
		from := max(0, len(b)-(m.maxLen-1))
		n := m.ac.scan(b[from:], 0, func(int, int32) {})
		if k := int(m.ac.depth[n]); k > 0 {
			spans = append(spans, span{int64(len(b) - k), int64(len(b)), m.patternWith(b[len(b)-k:], false)})
		}
	}
	if cutBefore {
		if k := m.cutPrefix(b); k > 0 {
			spans = append(spans, span{0, int64(k), m.patternWith(b[:k], true)})
		}
	}
	if len(spans) == 0 {
		return b
	}
	return m.apply(make([]byte, 0, len(b)), b, mergeSorted(spans))
}

// mergeSorted sorts spans by start and merges those that overlap; a merged span keeps the
// label of the one that starts first.
func mergeSorted(spans []span) []span {
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && s.start < out[n-1].end {
			out[n-1].end = max(out[n-1].end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// cutPrefix returns the length of the longest start of b that is the end of some form (a form
// the cut before b split), found with the automaton of the reversed patterns.
func (m *Masker) cutPrefix(b []byte) int {
	m.revOnce.Do(func() {
		rev := make([]string, len(m.patterns))
		for i, p := range m.patterns {
			rev[i] = reverse(p)
		}
		m.rev = newAutomaton(rev)
	})
	n := min(len(b), m.maxLen-1)
	r := make([]byte, n)
	for i := range n {
		r[i] = b[n-1-i]
	}
	st := m.rev.scan(r, 0, func(int, int32) {})
	return int(m.rev.depth[st])
}

// patternWith returns the first pattern that ends (suffix) or starts (!suffix) with piece, for
// the label of a span a cut split.
func (m *Masker) patternWith(piece []byte, suffix bool) int32 {
	for i, p := range m.patterns {
		if (suffix && strings.HasSuffix(p, string(piece))) || (!suffix && strings.HasPrefix(p, string(piece))) {
			return int32(i)
		}
	}
	return 0
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
