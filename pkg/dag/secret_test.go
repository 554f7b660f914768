package dag

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestSecretPlacement checks that {{ secret "name" }} is accepted only where the worker can put
// the value (env values, http url, headers and body), and that every other use is an error at
// the field's position that names the field.
func TestSecretPlacement(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"argv element", `
name: w
tasks:
  - {id: a, type: shell, command: [curl, '{{ secret "tok" }}']}
`, `w.yaml:3:42: task "a": command[1]: template: secret "tok" is not allowed in command[1]: ` + secretFieldsHint},
		{"argv element among text", `
name: w
params: {x: ""}
tasks:
  - {id: a, type: shell, command: [curl, '-H', 'Authorization: {{ .params.x }}{{ secret "tok" }}']}
`, `w.yaml:4:48: task "a": command[2]: template: secret "tok" is not allowed in command[2]: ` + secretFieldsHint},
		{"program", `
name: w
tasks:
  - {id: a, type: shell, command: ['{{ secret "bin" }}']}
`, `w.yaml:3:36: task "a": command[0]: secrets are not allowed in the program to run; pass the secret through env (env: {TOKEN: '{{ secret "name" }}'}) and use "$TOKEN"`},
		{"sh -c script", `
name: w
tasks:
  - {id: a, type: shell, command: [sh, -c, 'echo {{ secret "tok" }}']}
`, `w.yaml:3:44: task "a": command[2]: secrets are not allowed in the script a shell runs with -c; pass the secret through env (env: {TOKEN: '{{ secret "name" }}'}) and use "$TOKEN"`},
		{"script string", `
name: w
tasks:
  - {id: a, type: shell, command: 'echo {{ secret "tok" }}'}
`, `w.yaml:3:35: task "a": command: secrets are not allowed in a shell script string; pass the secret through env (env: {TOKEN: '{{ secret "name" }}'}) and use "$TOKEN" in the script`},
		{"workdir", `
name: w
tasks:
  - {id: a, type: shell, command: [ls], workdir: '/srv/{{ secret "dir" }}'}
`, `w.yaml:3:50: task "a": workdir: template: secret "dir" is not allowed in workdir: ` + secretFieldsHint},
		{"pool", `
name: w
tasks:
  - {id: a, type: noop, pool: '{{ secret "p" }}'}
`, `w.yaml:3:31: task "a": pool: "{{ secret \"p\" }}" is not a valid pool name: use ` + nameRule},
		{"param default", `
name: w
params: {token: '{{ secret "tok" }}'}
tasks:
  - {id: a, type: noop}
`, `w.yaml:2:17: params.token: a param default cannot reference a secret (it would be plain text, visible to every run); write {{ secret "name" }} in the env value, url, header or body that needs it`},
		{"piped", `
name: w
tasks:
  - {id: a, type: shell, command: [env], env: {T: '{{ secret "tok" | urlquery }}'}}
`, `w.yaml:3:51: task "a": env.T: template: ` + errSecretShape.Error()},
		{"passed to a function", `
name: w
tasks:
  - {id: a, type: http, http: {url: "http://x/", body: '{{ printf "%s" (secret "tok") }}'}}
`, `w.yaml:3:56: task "a": http.body: template: ` + errSecretShape.Error()},
		{"tested in if", `
name: w
tasks:
  - {id: a, type: http, http: {url: "http://x/", headers: {X: '{{ if secret "tok" }}y{{ end }}'}}}
`, `w.yaml:3:63: task "a": http.headers.X: template: ` + errSecretShape.Error()},
		{"name from a param", `
name: w
params: {which: tok}
tasks:
  - {id: a, type: shell, command: [env], env: {T: '{{ secret .params.which }}'}}
`, `w.yaml:4:51: task "a": env.T: template: secret takes one argument, the secret's name as a quoted string: {{ secret "name" }} (a name cannot come from a parameter)`},
		{"no name", `
name: w
tasks:
  - {id: a, type: shell, command: [env], env: {T: '{{ secret }}'}}
`, `w.yaml:3:51: task "a": env.T: template: secret takes one argument, the secret's name as a quoted string: {{ secret "name" }} (a name cannot come from a parameter)`},
		{"bad name", `
name: w
tasks:
  - {id: a, type: shell, command: [env], env: {T: '{{ secret "DB Password" }}'}}
`, `w.yaml:3:51: task "a": env.T: template: secret "DB Password": not a valid secret name: use ` + nameRule},
		{"in a branch the defaults never take", `
name: w
params: {debug: ""}
tasks:
  - {id: a, type: shell, command: [echo, '{{ if .params.debug }}{{ secret "tok" }}{{ end }}']}
`, `w.yaml:4:42: task "a": command[1]: template: secret "tok" is not allowed in command[1]: ` + secretFieldsHint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("w.yaml", []byte(strings.TrimPrefix(c.yaml, "\n")), Limits{})
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error is not ErrInvalid")
			}
		})
	}
}

const secretsYAML = `
name: w
params: {mode: a, host: example.com, p: ""}
tasks:
  - id: sh
    type: shell
    command: [./deploy.sh, "{{ .params.mode }}"]
    env:
      TOKEN: '{{ secret "deploy-token" }}'
      BOTH: 'x={{ secret "deploy-token" }};y={{ secret "db.password" }}'
      PICK: '{{ if eq .params.mode "a" }}{{ secret "only-a" }}{{ else }}{{ secret "only-b" }}{{ end }}'
      GLUED: '{{ secret "db.password" }}{{ .params.p }}'
  - id: web
    type: http
    http:
      method: POST
      url: 'https://{{ .params.host }}/hook?key={{ secret "api_key" }}'
      headers: {Authorization: 'Bearer {{ secret "api_key" }}'}
      body: '{"pw": "{{ secret "db.password" }}"}'
  - id: webhook
    type: http
    http: {url: '{{ secret "slack-webhook" }}', body: '{"text": "done"}'}
  - id: plain
    type: shell
    command: [echo, "{{ .params.mode }}"]
`

func TestSecretsCollected(t *testing.T) {
	wf := mustParse(t, secretsYAML)
	want := map[string][]string{
		"sh":      {"db.password", "deploy-token", "only-a", "only-b"}, // both branches
		"web":     {"api_key", "db.password"},
		"webhook": {"slack-webhook"},
		"plain":   nil,
	}
	for _, task := range wf.Tasks {
		if !slices.Equal(task.Secrets, want[task.ID]) {
			t.Errorf("task %s: Secrets = %q, want %q", task.ID, task.Secrets, want[task.ID])
		}
	}
	if got := wf.Secrets(); !slices.Equal(got, []string{"api_key", "db.password", "deploy-token", "only-a", "only-b", "slack-webhook"}) {
		t.Errorf("Workflow.Secrets = %q", got)
	}
}

func TestRenderKeepsSecretPlaceholders(t *testing.T) {
	wf := mustParse(t, secretsYAML)
	r, err := wf.Tasks[0].Render(map[string]string{"mode": "a"})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, ref := range r.Secrets {
		if !ref.Valid() {
			t.Errorf("invalid ref %+v", ref)
		}
		refs[ref.Name] = ref.Placeholder
	}
	// Only the secrets this rendering placed: the untaken branch's only-b is not listed.
	if got := slices.Sorted(maps.Keys(refs)); !slices.Equal(got, []string{"db.password", "deploy-token", "only-a"}) {
		t.Fatalf("Secrets = %+v", r.Secrets)
	}
	env := r.Shell.Env
	if env["TOKEN"] != refs["deploy-token"] || env["BOTH"] != "x="+refs["deploy-token"]+";y="+refs["db.password"] || env["PICK"] != refs["only-a"] {
		t.Errorf("env = %q", env)
	}
	// One nonce per rendering, shared by its placeholders; a new one for the next rendering.
	nonce := strings.TrimPrefix(refs["deploy-token"], PlaceholderPrefix+"deploy-token-")
	if !strings.HasSuffix(refs["db.password"], "-"+nonce) || nonce == validationNonce {
		t.Errorf("placeholders %q", refs)
	}
	r2, err := wf.Tasks[0].Render(map[string]string{"mode": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Shell.Env["TOKEN"] == env["TOKEN"] || r2.Secrets[2].Name != "only-b" {
		t.Errorf("second rendering: %+v", r2.Secrets)
	}
	// The http task: url, header and body; the task itself is unchanged.
	r, err = wf.Tasks[1].Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Secrets) != 2 || !strings.HasPrefix(r.HTTP.URL, "https://example.com/hook?key="+PlaceholderPrefix+"api_key-") ||
		r.HTTP.Headers["Authorization"] != "Bearer "+r.Secrets[0].Placeholder || r.HTTP.Body != `{"pw": "`+r.Secrets[1].Placeholder+`"}` {
		t.Errorf("http = %+v, secrets %+v", r.HTTP, r.Secrets)
	}
	if wf.Tasks[1].HTTP.Headers["Authorization"] != `Bearer {{ secret "api_key" }}` {
		t.Error("Render modified the task")
	}
	// A URL that is a secret as a whole is left for the worker to check.
	r, err = wf.Tasks[2].Render(nil)
	if err != nil || r.HTTP.URL != r.Secrets[0].Placeholder {
		t.Errorf("webhook: %+v, %v", r, err)
	}
	// No secrets, no table and no randomness.
	r, err = wf.Tasks[3].Render(nil)
	if err != nil || r.Secrets != nil {
		t.Errorf("plain: %+v, %v", r, err)
	}
}

// TestRunParamsCannotForgeSecretReferences is the attack: a run param (which anyone allowed to
// start a run controls) tries to make the worker substitute a secret into a field the workflow
// did not put it in, or a secret the workflow never referenced. Whatever the param holds, the
// rendering lists only the references the template made, and the param's text is none of their
// placeholders (taskspec's test follows the attack through the worker-side substitution).
func TestRunParamsCannotForgeSecretReferences(t *testing.T) {
	wf := mustParse(t, secretsYAML)
	prev, err := wf.Tasks[0].Render(nil) // a rendering an attacker could have seen
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		`{{ secret "other" }}`,      // template text is data in a param
		prev.Secrets[0].Placeholder, // an old placeholder of a referenced secret
		PlaceholderPrefix + "other-" + validationNonce,
		"-admin", // glued after db.password's placeholder: "db.password-admin"?
		"-" + strings.Repeat("0", 32),
	} {
		r, err := wf.Tasks[0].Render(map[string]string{"mode": "a", "p": p})
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(r.Secrets))
		for i, ref := range r.Secrets {
			names[i] = ref.Name
			if strings.Contains(p, ref.Placeholder) {
				t.Fatalf("param %q holds this rendering's placeholder %q", p, ref.Placeholder)
			}
		}
		if !slices.Equal(names, []string{"db.password", "deploy-token", "only-a"}) {
			t.Fatalf("param %q changed the references: %q", p, names)
		}
		if glued := r.Shell.Env["GLUED"]; glued != refOf(r, "db.password")+p {
			t.Fatalf("GLUED = %q", glued)
		}
	}
	// A param default is the author's text, but a secret call in it is refused (see
	// TestSecretPlacement); a param cannot name the secret either.
}

func refOf(r RenderedTask, name string) string {
	for _, ref := range r.Secrets {
		if ref.Name == name {
			return ref.Placeholder
		}
	}
	return ""
}

func TestSecretRefValid(t *testing.T) {
	good := SecretRef{Name: "db.password", Placeholder: PlaceholderPrefix + "db.password-" + strings.Repeat("ab", 16)}
	if !good.Valid() {
		t.Fatal("good ref invalid")
	}
	for _, r := range []SecretRef{
		{Name: "db.password", Placeholder: PlaceholderPrefix + "db.password-" + strings.Repeat("AB", 16)},
		{Name: "db.password", Placeholder: PlaceholderPrefix + "db.password-" + strings.Repeat("ab", 15)},
		{Name: "other", Placeholder: good.Placeholder},
		{Name: "Bad", Placeholder: PlaceholderPrefix + "Bad-" + strings.Repeat("ab", 16)},
		{Name: "db.password", Placeholder: ""},
	} {
		if r.Valid() {
			t.Errorf("%+v is valid", r)
		}
	}
}

func TestChecksStillApplyAroundSecrets(t *testing.T) {
	for _, c := range []struct{ field, want string }{
		{`http: {url: 'http://x/{{ secret "k" }}'}`, ""},
		{`http: {url: '{{ secret "hook" }}'}`, ""},
		{`http: {url: '{{ secret "hook" }}/path?q=1'}`, ""},
		{`http: {url: 'ftp://{{ secret "k" }}/'}`, `is not an absolute http or https URL`},
		{`http: {url: 'http://x/', headers: {X: "{{ secret \"k\" }}\nInjected: 1"}}`, `http.headers.X: rendered with the default params: `},
	} {
		_, err := Parse("w.yaml", []byte("name: w\ntasks:\n  - {id: a, type: http, "+c.field+"}\n"), Limits{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.field, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.field, err, c.want)
		}
	}
}
