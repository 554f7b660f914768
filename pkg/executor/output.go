package executor

import (
	"errors"
	"io"
)

// tailBuffer keeps the last max bytes written to it, in at most 2×max bytes of memory.
type tailBuffer struct {
	max   int
	buf   []byte
	total int64
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.total += int64(n)
	if n >= t.max {
		t.buf = append(t.buf[:0], p[n-t.max:]...)
		return n, nil
	}
	if len(t.buf)+n > 2*t.max {
		keep := t.max - n // bytes of the old tail that stay within the last max
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// ReadFrom copies r into the buffer until EOF or an error (a read deadline, a closed file),
// which it returns unless it is EOF.
func (t *tailBuffer) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	chunk := make([]byte, 32<<10)
	for {
		m, err := r.Read(chunk)
		if m > 0 {
			_, _ = t.Write(chunk[:m])
			n += int64(m)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
}

// Bytes returns a copy of the kept tail.
func (t *tailBuffer) Bytes() []byte {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return append([]byte(nil), b...)
}

// Truncated reports whether bytes were dropped.
func (t *tailBuffer) Truncated() bool { return t.total > int64(t.max) }
