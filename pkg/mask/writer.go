package mask

import (
	"errors"
	"io"
	"slices"
	"sync"
)

// holdLimit bounds the bytes a Writer holds back beyond MaxLen-1 while an unfinished run of
// overlapping occurrences goes on (a secret made of one repeated byte, written over and over).
const holdLimit = 64 << 10

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("mask: write after close")

// Writer masks a stream: what it writes to the underlying writer is what Bytes would make of
// everything written to it, wherever the writes split the text. It holds back the last
// MaxLen-1 bytes (a form may be split across two writes), and the start of an occurrence that
// could still grow into a longer overlapping one; Close writes what is held back. It is safe
// for concurrent use (a process's stdout and stderr may share one).
type Writer struct {
	m *Masker
	w io.Writer

	mu      sync.Mutex
	pending []byte // bytes not yet written; pending[0] is at offset base of the stream
	base    int64
	state   int32
	spans   []span // stream offsets; sorted, disjoint, none before base
	closed  bool
	err     error
}

// Writer returns a Writer that masks what it is given and writes it to w.
func (m *Masker) Writer(w io.Writer) *Writer { return &Writer{m: m, w: w} }

// Write masks p and writes what can no longer change. It reports len(p) unless the underlying
// writer failed (that error is kept and returned by every later call).
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return 0, ErrClosed
	case w.err != nil:
		return 0, w.err
	case w.m.Empty():
		n, err := w.w.Write(p)
		w.err = err
		return n, err
	}
	at := w.base + int64(len(w.pending))
	w.pending = append(w.pending, p...)
	w.state = w.m.ac.scan(p, w.state, func(end int, pat int32) {
		e := at + int64(end)
		w.spans = addSpan(w.spans, e-int64(w.m.patLens[pat]), e, pat)
	})
	total := w.base + int64(len(w.pending))
	// Every occurrence starting before cut ends within what we have: it has been found.
	cut := total - int64(w.m.maxLen-1)
	if i := w.straddling(cut); i >= 0 {
		// A span found across cut is held back whole: an occurrence starting inside it, not yet
		// complete, may still extend it. Past holdLimit it is written in two parts.
		if held := total - w.spans[i].start; held <= int64(w.m.maxLen-1)+holdLimit {
			cut = w.spans[i].start
		} else {
			w.spans = slices.Insert(w.spans, i+1, span{cut, w.spans[i].end, w.spans[i].pat})
			w.spans[i].end = cut
		}
	}
	if cut > w.base {
		w.emit(cut)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// straddling returns the index of the span that holds offset off strictly inside (there is at
// most one: spans are disjoint), or -1.
func (w *Writer) straddling(off int64) int {
	for i := len(w.spans) - 1; i >= 0; i-- {
		if s := w.spans[i]; s.start < off {
			if off < s.end {
				return i
			}
			return -1
		}
	}
	return -1
}

// emit writes the stream up to offset cut, with the spans before it masked.
func (w *Writer) emit(cut int64) {
	n := int(cut - w.base)
	var done int
	rel := make([]span, 0, len(w.spans))
	for _, s := range w.spans {
		if s.end > cut {
			break
		}
		rel = append(rel, span{s.start - w.base, s.end - w.base, s.pat})
		done++
	}
	out := w.m.apply(nil, w.pending[:n], rel)
	if _, err := w.w.Write(out); err != nil {
		w.err = err
	}
	w.spans = append(w.spans[:0], w.spans[done:]...)
	w.pending = append(w.pending[:0], w.pending[n:]...)
	w.base = cut
}

// Close writes the bytes held back, masked. It does not close the underlying writer. Writes
// after Close fail with ErrClosed; Close itself may be called again.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err == nil && len(w.pending) > 0 {
		w.emit(w.base + int64(len(w.pending)))
	}
	return w.err
}
