package mask

import (
	"bytes"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	const v = "hunter2-is-the-password"
	const pin = "918273"
	var reg Registry
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), reg.Masker))
	release := reg.Add(Secret{"pw", v}, Secret{"pin", pin})

	type creds struct {
		User     string
		Password string
		Raw      []byte // encoding/json writes it in base64
	}
	log.With("attached", "early "+v).WithGroup("g").Info("connecting with "+v,
		"err", errors.New("dial postgres://u:"+v+"@db: refused"),
		"pin", 918273,
		"creds", creds{User: "u", Password: v},
		"raw", creds{Raw: []byte(v)},
		slog.Group("inner", "token", base64.StdEncoding.EncodeToString([]byte(v))),
		"fine", 42,
	)
	out := buf.String()
	for _, f := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), pin} {
		if strings.Contains(out, f) {
			t.Fatalf("log line holds %q:\n%s", f, out)
		}
	}
	for _, want := range []string{`"msg":"connecting with ***"`, `"attached":"early ***"`, `"err":"dial postgres://u:***@db: refused"`,
		`"pin":"***"`, `"fine":42`, `"inner":{"token":"***"}`, `"creds":"{User:u Password:*** Raw:[]}"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s:\n%s", want, out)
		}
	}
	// Released secrets are no longer masked; attributes attached earlier stay as they were.
	release()
	buf.Reset()
	log.Info("now " + v)
	if !strings.Contains(buf.String(), "now "+v) {
		t.Errorf("released secret still masked: %s", buf.String())
	}
	// Without a masker the handler is transparent.
	buf.Reset()
	slog.New(NewHandler(slog.NewTextHandler(&buf, nil), func() *Masker { return nil })).Info("plain", "k", "v")
	if !strings.Contains(buf.String(), "msg=plain k=v") {
		t.Errorf("transparent: %s", buf.String())
	}
}
