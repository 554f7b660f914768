package dag

import (
	"errors"
	"slices"
	"testing"
)

func TestRender(t *testing.T) {
	wf := mustParse(t, `
name: w
params: {day: "2026-01-01", host: "127.0.0.1:8080", token: abc}
tasks:
  - id: sh
    type: shell
    command: [echo, "day={{ .params.day }}", '{{ if eq .params.day "x" }}x{{ else }}y{{ end }}']
    env: {DAY: "{{ .params.day }}", FIXED: "1"}
    workdir: "/tmp/{{ .params.day }}"
  - id: script
    type: shell
    command: 'echo "$DAY"'
    env: {DAY: "{{ .params.day }}"}
  - id: web
    type: http
    http:
      method: POST
      url: "http://{{ .params.host }}/run?day={{ urlquery .params.day }}"
      headers: {Authorization: "Bearer {{ .params.token }}"}
      body: '{"day": {{ printf "%q" .params.day }}}'
      expect_status: [202]
`)
	r, err := wf.Tasks[0].Render(map[string]string{"day": "2026-02-03; rm -rf /"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"echo", "day=2026-02-03; rm -rf /", "y"}; !slices.Equal(r.Shell.Argv, want) {
		t.Errorf("argv: %q", r.Shell.Argv)
	}
	if r.Shell.Env["DAY"] != "2026-02-03; rm -rf /" || r.Shell.Env["FIXED"] != "1" || r.Shell.Workdir != "/tmp/2026-02-03; rm -rf /" {
		t.Errorf("env/workdir: %+v", r.Shell)
	}
	if wf.Tasks[0].Shell.Argv[1] != "day={{ .params.day }}" {
		t.Error("Render modified the task")
	}
	r, err = wf.Tasks[1].Render(map[string]string{"day": "$(reboot)"})
	if err != nil || r.Shell.Script != `echo "$DAY"` || r.Shell.Env["DAY"] != "$(reboot)" {
		t.Errorf("script task: %+v, %v", r.Shell, err)
	}
	r, err = wf.Tasks[2].Render(map[string]string{"day": "a b&c"})
	if err != nil {
		t.Fatal(err)
	}
	if h := r.HTTP; h.URL != "http://127.0.0.1:8080/run?day=a+b%26c" || h.Body != `{"day": "a b&c"}` || h.Headers["Authorization"] != "Bearer abc" || h.Method != "POST" || !slices.Equal(h.ExpectStatus, []int{202}) {
		t.Errorf("http: %+v", h)
	}
}

func TestRenderRejectsBadRunParams(t *testing.T) {
	wf := mustParse(t, `
name: w
params: {host: "127.0.0.1", token: abc}
tasks:
  - id: web
    type: http
    http: {url: "http://{{ .params.host }}/x", headers: {X-Token: "{{ .params.token }}"}}
`)
	task := wf.Tasks[0]
	cases := map[string]struct {
		params map[string]string
		want   string
	}{
		"unknown":       {map[string]string{"hots": "x", "zz": "y"}, `invalid run parameters: workflow "w" has no param "hots", "zz" (declared: host, token)`},
		"url":           {map[string]string{"host": "a b"}, `invalid run parameters: task "web": http.url: invalid URL "http://a b/x": invalid character " " in host name`},
		"header inject": {map[string]string{"token": "a\r\nX-Admin: 1"}, `invalid run parameters: task "web": http.headers.X-Token: contains a '\r' character, which is not allowed in a header value`},
	}
	for name, c := range cases {
		_, err := task.Render(c.params)
		if err == nil || err.Error() != c.want || !errors.Is(err, ErrParams) {
			t.Errorf("%s: got %v\nwant %s", name, err, c.want)
		}
	}
	if err := wf.ValidateParams(map[string]string{"host": "example.com"}); err != nil {
		t.Errorf("ValidateParams: %v", err)
	}
	if err := wf.ValidateParams(map[string]string{"nope": ""}); !errors.Is(err, ErrParams) {
		t.Errorf("ValidateParams accepted an unknown param: %v", err)
	}
	p, _ := wf.ResolveParams(map[string]string{"token": "t"})
	if p["host"] != "127.0.0.1" || p["token"] != "t" {
		t.Errorf("ResolveParams: %v", p)
	}
}
