package mask

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Registry is the set of secrets a process currently holds, for masking its logs: each holder
// (an attempt that resolved secrets) adds its values and releases them when done; Masker
// returns a Masker for everything held, rebuilt only when the set changes. Safe for
// concurrent use; the zero value is an empty registry.
type Registry struct {
	mu   sync.Mutex
	held map[Secret]int // reference counts
	cur  atomic.Pointer[Masker]
	opts []Option
}

// NewRegistry returns an empty registry whose Maskers are built with opts.
func NewRegistry(opts ...Option) *Registry { return &Registry{opts: opts} }

// Masker returns the Masker for the secrets held now (nil when none).
func (r *Registry) Masker() *Masker { return r.cur.Load() }

// Add holds secrets until the returned release is called (release is idempotent).
func (r *Registry) Add(secrets ...Secret) (release func()) {
	r.mu.Lock()
	if r.held == nil {
		r.held = map[Secret]int{}
	}
	for _, s := range secrets {
		r.held[s]++
	}
	r.rebuild()
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, s := range secrets {
				if r.held[s]--; r.held[s] <= 0 {
					delete(r.held, s)
				}
			}
			r.rebuild()
		})
	}
}

func (r *Registry) rebuild() {
	if len(r.held) == 0 {
		r.cur.Store(nil)
		return
	}
	all := make([]Secret, 0, len(r.held))
	for s := range r.held {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b Secret) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Value, b.Value)) })
	r.cur.Store(New(all, r.opts...))
}
