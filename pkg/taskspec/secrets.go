package taskspec

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/executor"
	"github.com/cairn-io/cairn/pkg/mask"
)

// ErrMissingSecret: a rendered task references a secret the resolver does not have (never
// set in the namespace, or deleted since the workflow was applied).
var ErrMissingSecret = errors.New("secret not found")

// MissingSecretsError names the secrets a task references that could not be resolved.
type MissingSecretsError struct {
	Names []string // sorted
}

func (e *MissingSecretsError) Error() string {
	q := make([]string, len(e.Names))
	for i, n := range e.Names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return "secret " + q[0] + " is not defined"
	}
	return "secrets " + strings.Join(q, ", ") + " are not defined"
}

// Unwrap makes errors.Is(err, ErrMissingSecret) hold.
func (e *MissingSecretsError) Unwrap() error { return ErrMissingSecret }

// Lookup returns the value of the named secret and whether it exists.
type Lookup func(name string) (value string, ok bool)

// ResolveSecrets runs on the worker, just before an attempt: it returns a copy of spec (spec
// itself is not changed) in which each ref's placeholder is replaced by the secret's value, and
// the resolved secrets, from which the attempt's Masker is built.
//
// Replacement happens only in the fields secrets may go to — shell env values, and the http
// url, header values and body — and is one pass over each field: a value that happens to hold
// a placeholder is not expanded again, and a placeholder in any other field (argv, workdir,
// script) stays as it is. Only the placeholders refs lists are replaced, so text a run param
// made look like one is left alone (see dag.SecretRef).
//
// A ref the lookup does not have is a *MissingSecretsError naming every missing one (the
// attempt's error); a malformed ref wraps executor.ErrInvalidSpec.
func ResolveSecrets(spec executor.Spec, refs []dag.SecretRef, lookup Lookup) (executor.Spec, []mask.Secret, error) {
	if len(refs) == 0 {
		return spec, nil, nil
	}
	var missing []string
	resolved := make([]mask.Secret, 0, len(refs))
	pairs := make([]string, 0, 2*len(refs))
	seen := make(map[string]bool, len(refs))
	for _, r := range refs {
		if !r.Valid() {
			return executor.Spec{}, nil, fmt.Errorf("%w: malformed secret reference for %q", executor.ErrInvalidSpec, r.Name)
		}
		if seen[r.Name] {
			return executor.Spec{}, nil, fmt.Errorf("%w: secret %q is referenced twice", executor.ErrInvalidSpec, r.Name)
		}
		seen[r.Name] = true
		v, ok := lookup(r.Name)
		if !ok {
			missing = append(missing, r.Name)
			continue
		}
		resolved = append(resolved, mask.Secret{Name: r.Name, Value: v})
		pairs = append(pairs, r.Placeholder, v)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return executor.Spec{}, nil, &MissingSecretsError{Names: missing}
	}
	rep := strings.NewReplacer(pairs...)
	out := spec
	switch {
	case spec.Shell != nil:
		s := *spec.Shell
		s.Env = maps.Clone(s.Env)
		for k, v := range s.Env {
			s.Env[k] = replace(rep, v)
		}
		out.Shell = &s
	case spec.HTTP != nil:
		h := *spec.HTTP
		h.URL = replace(rep, h.URL)
		h.Headers = maps.Clone(h.Headers)
		for k, v := range h.Headers {
			h.Headers[k] = replace(rep, v)
		}
		h.Body = replace(rep, h.Body)
		out.HTTP = &h
	}
	return out, resolved, nil
}

// replace skips the replacer for the (usual) field without any placeholder.
func replace(rep *strings.Replacer, s string) string {
	if !strings.Contains(s, dag.PlaceholderPrefix) {
		return s
	}
	return rep.Replace(s)
}
