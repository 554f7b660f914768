package executor

import (
	"errors"
	"io"
)

// tailBuffer keeps the last limit bytes written to it, in at most 2×limit bytes of memory.
type tailBuffer struct {
	limit int
	buf   []byte
	total int64
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.total += int64(n)
	if n >= t.limit {
		t.buf = append(t.buf[:0], p[n-t.limit:]...)
		return n, nil
	}
	if len(t.buf)+n > 2*t.limit {
		keep := t.limit - n // bytes of the old tail that stay within the last limit
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
	if len(b) > t.limit {
		b = b[len(b)-t.limit:]
	}
	return append([]byte(nil), b...)
}

// Truncated reports whether bytes were dropped.
func (t *tailBuffer) Truncated() bool { return t.total > int64(t.limit) }
