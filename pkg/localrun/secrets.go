package localrun

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cairn-io/cairn/pkg/dag"
	"github.com/cairn-io/cairn/pkg/mask"
	"github.com/cairn-io/cairn/pkg/taskspec"
)

// Secrets for local runs. There is no store: a workflow's {{ secret "name" }} references are
// resolved from a secrets file and from the environment, never from the command line (argv is
// visible to every user of the machine in ps and /proc). The values reach only the attempts
// that reference them, and everything the run reports is masked with them.

// SecretEnvPrefix starts the environment variables that hold secrets for local runs.
const SecretEnvPrefix = "CAIRN_SECRET_"

// SecretEnvVar returns the environment variable holding secret name for a local run:
// SecretEnvPrefix, then the name in upper case with '.' and '-' written '_'
// (db.password → CAIRN_SECRET_DB_PASSWORD).
func SecretEnvVar(name string) string {
	return SecretEnvPrefix + strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '-':
			return '_'
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, name)
}

// ParseSecretsFile reads a secrets file: one name=value per line, the value being everything
// after the first '=' as written (no quotes, no escapes; a trailing CR is dropped), blank lines
// and lines starting with # ignored. Names follow the workflow-name rule and appear once;
// values must be at least mask.MinLen bytes (shorter ones could not be masked in output).
// Errors name the line and the secret, never the value.
func ParseSecretsFile(path string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	firstLine := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: want name=value", path, n)
		case !dag.ValidSecretName(name):
			return nil, fmt.Errorf("%s:%d: %q is not a valid secret name: use a-z, 0-9, '_', '.' and '-', starting with a letter or digit", path, n, name)
		case firstLine[name] > 0:
			return nil, fmt.Errorf("%s:%d: secret %q is already set at line %d", path, n, name, firstLine[name])
		case len(value) < mask.MinLen:
			return nil, fmt.Errorf("%s:%d: the value of secret %q is shorter than %d bytes, too short to be masked in output", path, n, name, mask.MinLen)
		}
		firstLine[name] = n
		out[name] = value
	}
	return out, nil
}

// LoadSecrets returns the Lookup for a local run: the secrets file at path (none if path is
// empty), then the SecretEnvVar variables of environ (os.Environ() form).
func LoadSecrets(path string, environ []string) (taskspec.Lookup, error) {
	file := map[string]string{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read secrets file: %w", err)
		}
		if file, err = ParseSecretsFile(path, data); err != nil {
			return nil, err
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, SecretEnvPrefix) {
			env[k] = v
		}
	}
	return func(name string) (string, bool) {
		if v, ok := file[name]; ok {
			return v, true
		}
		v, ok := env[SecretEnvVar(name)]
		return v, ok
	}, nil
}

// ErrSecrets: the workflow references secrets the local run cannot resolve.
var ErrSecrets = errors.New("localrun: secrets not set")

// resolveRunSecrets looks up every secret wf references before the run starts, so that a
// missing one is an error at once rather than a failed attempt, and returns the values.
func resolveRunSecrets(wf *dag.Workflow, lookup taskspec.Lookup) ([]mask.Secret, error) {
	names := wf.Secrets()
	var missing, short []string
	var out []mask.Secret
	for _, name := range names {
		var v string
		ok := false
		if lookup != nil {
			v, ok = lookup(name)
		}
		switch {
		case !ok:
			missing = append(missing, name)
		case len(v) < mask.MinLen:
			short = append(short, name)
		default:
			out = append(out, mask.Secret{Name: name, Value: v})
		}
	}
	var problems []string
	if len(missing) > 0 {
		vars := make([]string, len(missing))
		for i, n := range missing {
			vars[i] = SecretEnvVar(n)
		}
		problems = append(problems, fmt.Sprintf("%s not set (put name=value lines in a secrets file, or set %s)",
			quoteList("secret", missing), strings.Join(vars, ", ")))
	}
	if len(short) > 0 {
		problems = append(problems, fmt.Sprintf("%s shorter than %d bytes, too short to be masked in output", quoteList("secret", short), mask.MinLen))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: workflow %q: %s", ErrSecrets, wf.Name, strings.Join(problems, "; "))
	}
	return out, nil
}

// quoteList writes `secret "a"` or `secrets "a", "b"`.
func quoteList(noun string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return noun + " " + q[0] + " is"
	}
	return noun + "s " + strings.Join(q, ", ") + " are"
}
