package dag

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"
	"text/template"
)

// Secrets. A template references a secret as {{ secret "name" }}, an action of its own, in the
// fields where the worker can put a value without the leader ever holding it: env values and
// the http url, header values and body (secretFields). Everywhere else it is a validation
// error. Parse collects each task's names in Task.Secrets, for the apply path to check against
// the namespace's secrets.
//
// Render never resolves a secret: each {{ secret "name" }} becomes a placeholder,
//
//	cairn-secret-<name>-<nonce>
//
// where nonce is 128 random bits drawn once per Render call, after the run's params are fixed,
// and RenderedTask.Secrets lists each (name, placeholder) pair that call produced. The worker
// replaces exactly those placeholders, in exactly those fields (taskspec.ResolveSecrets). A run
// param cannot forge a reference: its value is data that text/template copies verbatim, so it
// can only contain placeholder-looking text with some other nonce, which no table lists; and
// since a placeholder is replaced as a whole string, text a param puts next to a real
// placeholder cannot extend the name it stands for.

// secretFunc is the template function that references a secret.
const secretFunc = "secret"

// PlaceholderPrefix starts every secret placeholder in a rendered task.
const PlaceholderPrefix = "cairn-secret-"

// nonceBytes is the size of the random part of a placeholder.
const nonceBytes = 16

// validationNonce stands in for the random nonce when a file is validated: the output of that
// rendering is checked and dropped, never sent anywhere.
var validationNonce = strings.Repeat("0", 2*nonceBytes)

// SecretRef is one secret a rendered task references: Placeholder stands in the rendered
// fields where the template wrote {{ secret "Name" }}, until the worker replaces it by the
// value.
type SecretRef struct {
	Name        string
	Placeholder string
}

// Valid reports whether r's placeholder has the form Render gives it for r.Name: the prefix,
// the name, a dash and 32 lower-case hex digits.
func (r SecretRef) Valid() bool {
	rest, ok := strings.CutPrefix(r.Placeholder, PlaceholderPrefix+r.Name+"-")
	if !ok || !validName(r.Name) || len(rest) != 2*nonceBytes {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

var errSecretNotAllowed = errors.New("secrets are not allowed here")

// secretFieldsHint says where secrets may go, for error messages.
const secretFieldsHint = "secrets go only in env values and in the http url, headers and body, where the worker puts the value"

// parseFuncs declares secret for parsing; execution binds it to a secretScope.
var parseFuncs = template.FuncMap{secretFunc: func(string) (string, error) { return "", errSecretNotAllowed }}

// secretScope makes the placeholders of one rendering of one task: one nonce, shared by all its
// fields.
type secretScope struct {
	nonce string            // "" until the first reference; validationNonce when validating
	refs  map[string]string // name → placeholder
}

// funcs returns the function map that binds secret for one field.
func (s *secretScope) funcs(allowed bool) template.FuncMap {
	return template.FuncMap{secretFunc: func(name string) (string, error) {
		if !allowed || s == nil {
			return "", errSecretNotAllowed
		}
		if !validName(name) {
			return "", errors.New("invalid secret name") // Parse has checked it already
		}
		if s.nonce == "" {
			b := make([]byte, nonceBytes)
			if _, err := rand.Read(b); err != nil {
				return "", err
			}
			s.nonce = hex.EncodeToString(b)
		}
		p := PlaceholderPrefix + name + "-" + s.nonce
		if s.refs == nil {
			s.refs = map[string]string{}
		}
		s.refs[name] = p
		return p, nil
	}}
}

// leads reports whether v starts with one of the scope's placeholders (a URL whose scheme and
// host are a secret: only the worker can check it, once the value is in).
func (s *secretScope) leads(v string) bool {
	if s == nil || !strings.HasPrefix(v, PlaceholderPrefix) {
		return false
	}
	for _, p := range s.refs {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// list returns the references made, sorted by name; nil when none.
func (s *secretScope) list() []SecretRef {
	if s == nil || len(s.refs) == 0 {
		return nil
	}
	out := make([]SecretRef, 0, len(s.refs))
	for name, p := range s.refs {
		out = append(out, SecretRef{Name: name, Placeholder: p})
	}
	slices.SortFunc(out, func(a, b SecretRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// secretCall finds {{ secret ... }} written where no template may go (a shell script, the
// program), or as literal text (a param default), to explain the rule instead of failing
// later with a less helpful message.
var secretCall = regexp.MustCompile(`\{\{-?\s*secret\s`)

func mentionsSecret(s string) bool { return hasTemplate(s) && secretCall.MatchString(s) }

// checkURLOrSecret checks a rendered URL unless it starts with a secret placeholder of this
// rendering; then the worker checks the URL the value makes.
func checkURLOrSecret(sec *secretScope) func(string) error {
	return func(s string) error {
		if sec.leads(s) {
			return nil
		}
		return checkURL(s)
	}
}

// secretNames returns the sorted, distinct names of refs; nil when there are none.
func secretNames(refs []string) []string {
	if len(refs) == 0 {
		return nil
	}
	out := slices.Clone(refs)
	slices.Sort(out)
	return slices.Compact(out)
}

// Secrets returns the names of the secrets any task of w references, sorted, each once: what the
// apply path checks against the namespace's secrets.
func (w *Workflow) Secrets() []string {
	var all []string
	for _, t := range w.Tasks {
		all = append(all, t.Secrets...)
	}
	return secretNames(all)
}

// ValidSecretName reports whether name follows the rule secret names share with workflow
// names: [a-z0-9][a-z0-9_.-]{0,127}.
func ValidSecretName(name string) bool { return validName(name) }
