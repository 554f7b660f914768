package mask

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Handler is a slog.Handler that masks the message and every attribute value of a record
// before passing it on. Attribute keys and group names are not masked (they are written by
// code, not data). The Masker is asked for at each record, so a Registry's secrets added after
// the handler was built are masked too, except in attributes attached earlier with WithAttrs,
// which are masked once, when they are attached.
type Handler struct {
	next   slog.Handler
	masker func() *Masker
}

// NewHandler wraps next. masker returns the Masker to apply (nil: none); Registry.Masker and a
// closure over a fixed *Masker both fit.
func NewHandler(next slog.Handler, masker func() *Masker) *Handler {
	return &Handler{next: next, masker: masker}
}

var _ slog.Handler = (*Handler)(nil)

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle masks r and passes the result on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	m := h.masker()
	if m.Empty() {
		return h.next.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, m.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(m.Attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs masks attrs with the current Masker and attaches them.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	m := h.masker()
	masked := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		masked[i] = m.Attr(a)
	}
	return &Handler{next: h.next.WithAttrs(masked), masker: h.masker}
}

// WithGroup opens a group.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), masker: h.masker}
}

// Attr returns a with its value masked, groups recursively. A value that is not a string (an
// error, a struct, a number) is checked in its text form (and, for arbitrary values, its JSON
// form, which is what a JSON handler writes): if that holds a secret, the value is replaced by
// its masked text; otherwise it is kept as it is.
func (m *Masker) Attr(a slog.Attr) slog.Attr {
	if m.Empty() {
		return a
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, m.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, x := range g {
			out[i] = m.Attr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		x := v.Any()
		var text string
		if err, ok := x.(error); ok {
			text = err.Error()
		} else {
			text = fmt.Sprintf("%+v", x)
		}
		if masked := m.String(text); masked != text {
			return slog.String(a.Key, masked)
		}
		if _, isErr := x.(error); !isErr {
			if j, err := json.Marshal(x); err == nil {
				if masked := m.Bytes(j); string(masked) != string(j) {
					return slog.String(a.Key, string(masked))
				}
			}
		}
		return slog.Attr{Key: a.Key, Value: v}
	default: // numbers, booleans, times and durations: a numeric secret may still show up
		text := v.String()
		if masked := m.String(text); masked != text {
			return slog.String(a.Key, masked)
		}
		return slog.Attr{Key: a.Key, Value: v}
	}
}
