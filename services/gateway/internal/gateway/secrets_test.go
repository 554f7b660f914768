package gateway_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
)

// Secrets over REST, in both path shapes: set (PUT with the value in a JSON body), list,
// delete. The value is stored (sealed) and never comes back: not in a response, not in an
// error — a bad value is described by its length, and a body that does not parse is not
// quoted — and not in the audit trail, which names the secret.
func TestSecretsOverREST(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	base := c.HTTPURL + "/v1"
	const value = "s3cr3t-token-0123456789"
	noValue := func(what string, r httpResult) {
		t.Helper()
		if strings.Contains(string(r.body), value) || strings.Contains(string(r.body), "s3cr3t") {
			t.Errorf("%s: the response holds the value: %s", what, r.body)
		}
	}

	r := do(t, "PUT", base+"/secrets/db.password", map[string]string{"value": value})
	wantStatus(t, "set in default", r, 200)
	noValue("set", r)
	if s := r.json(t)["secret"].(map[string]any); s["name"] != "db.password" || s["namespace"] != "default" || s["key_id"] != "test" ||
		r.json(t)["created"] != true {
		t.Errorf("set: %s", r.body)
	}
	if v, ok := c.OpenSecret("default", "db.password"); !ok || v != value {
		t.Fatalf("stored value %q %v", v, ok)
	}
	r = do(t, "PUT", base+"/secrets/db.password", map[string]string{"value": value + "-2"})
	wantStatus(t, "replace", r, 200)
	if r.json(t)["created"] != false {
		t.Errorf("replace: %s", r.body)
	}
	wantStatus(t, "create team-a", do(t, "POST", base+"/namespaces", map[string]string{"namespace": "team-a"}), 200)
	wantStatus(t, "set in team-a", do(t, "PUT", base+"/namespaces/team-a/secrets/api", map[string]string{"value": value}), 200)
	wantStatus(t, "set in a missing namespace", do(t, "PUT", base+"/namespaces/nope/secrets/api", map[string]string{"value": value}), 404, "namespace nope")

	// Refusals name the field and the problem, never the value.
	for _, c := range []struct {
		what string
		body any
		want string
	}{
		{"too short", map[string]string{"value": "s3c"}, "value: is 3 bytes long, at least 4"},
		{"too long", map[string]string{"value": "s3cr3t" + strings.Repeat("x", 64<<10)}, "at most 65536"},
		{"NUL", map[string]string{"value": "s3cr3t\x00x"}, "NUL"},
		{"not JSON", `{"value": s3cr3t-unquoted}`, "the parser's message is withheld"},
		{"bad escape", `{"value": "s3cr3t\q"}`, "the parser's message is withheld"},
		{"unknown field", `{"value": "s3cr3t-x", "s3cr3t": 1}`, "the parser's message is withheld"},
	} {
		r := do(t, "PUT", base+"/secrets/x1", c.body)
		wantStatus(t, c.what, r, 400, c.want)
		noValue(c.what, r)
	}
	wantStatus(t, "bad name", do(t, "PUT", base+"/secrets/Bad_Name", map[string]string{"value": value}), 400, "name: ")
	// A PUT body must be JSON, like a POST's (browsers preflight PUT, but the rule is the same).
	r = doWith(t, "PUT", base+"/secrets/x1", `{"value": "`+value+`"}`,
		map[string]string{"Authorization": "Bearer " + gatewaytest.AdminToken, "Content-Type": "text/plain"})
	if r.code != 415 {
		t.Errorf("PUT text/plain: %d %s, want 415", r.code, r.body)
	}
	noValue("PUT text/plain", r)

	// List: names and times, no value; per namespace.
	r = do(t, "GET", base+"/secrets", nil)
	wantStatus(t, "list default", r, 200)
	noValue("list", r)
	if list := r.json(t)["secrets"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "db.password" ||
		list[0].(map[string]any)["updated_by"] != "" {
		t.Errorf("list default: %s", r.body)
	}
	if r := do(t, "GET", base+"/namespaces/team-a/secrets", nil); r.code != 200 || !strings.Contains(string(r.body), `"name":"api"`) ||
		strings.Contains(string(r.body), "db.password") {
		t.Errorf("list team-a: %d %s", r.code, r.body)
	}
	wantStatus(t, "list a missing namespace", do(t, "GET", base+"/namespaces/nope/secrets", nil), 404, "namespace nope")

	// Delete.
	wantStatus(t, "delete", do(t, "DELETE", base+"/secrets/db.password", nil), 200)
	wantStatus(t, "delete again", do(t, "DELETE", base+"/secrets/db.password", nil), 404)
	wantStatus(t, "delete in team-a", do(t, "DELETE", base+"/namespaces/team-a/secrets/api", nil), 200)

	// The audit trail names the secrets, never a value.
	evs, err := cairnv1.NewAuthServiceClient(c.Conn()).ListAuditEvents(context.Background(), &cairnv1.ListAuditEventsRequest{PageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	sets := 0
	for _, e := range evs.GetEvents() {
		if strings.Contains(e.String(), "s3cr3t") {
			t.Errorf("audit event holds the value: %v", e)
		}
		if e.GetMethod() == cairnv1.SecretService_SetSecret_FullMethodName && e.GetOutcome() == "OK" {
			sets++
			if e.GetResource() != "name=db.password" && e.GetResource() != "name=api" {
				t.Errorf("SetSecret audited as %q", e.GetResource())
			}
		}
	}
	if sets != 3 {
		t.Errorf("%d successful SetSecret audit events, want 3", sets)
	}
}

// Scopes: secrets:write sets and deletes, secrets:read lists; neither reads a value (no call
// returns one), and a token of another namespace finds nothing.
func TestSecretScopes(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	k := tokens{t, c}
	reader, _ := k.make("reader", []string{"default"}, apitoken.SecretsRead)
	writer, _ := k.make("writer", []string{"default"}, apitoken.SecretsWrite)
	other, _ := k.make("other", []string{"team-a"}, apitoken.SecretsRead, apitoken.SecretsWrite)
	ctx := context.Background()
	set := &cairnv1.SetSecretRequest{Name: "tok", Value: "value-1234"}
	if _, err := cairnv1.NewSecretServiceClient(c.ConnAs(reader)).SetSecret(ctx, set); status.Code(err) != codes.PermissionDenied {
		t.Errorf("set with secrets:read: %v", err)
	}
	if _, err := cairnv1.NewSecretServiceClient(c.ConnAs(writer)).SetSecret(ctx, set); err != nil {
		t.Errorf("set with secrets:write: %v", err)
	}
	if _, err := cairnv1.NewSecretServiceClient(c.ConnAs(writer)).ListSecrets(ctx, &cairnv1.ListSecretsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("list with secrets:write only: %v", err)
	}
	list, err := cairnv1.NewSecretServiceClient(c.ConnAs(reader)).ListSecrets(ctx, &cairnv1.ListSecretsRequest{})
	if err != nil || len(list.GetSecrets()) != 1 {
		t.Errorf("list with secrets:read: %v %v", list, err)
	}
	if _, err := cairnv1.NewSecretServiceClient(c.ConnAs(other)).DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Name: "tok"}); status.Code(err) != codes.NotFound {
		t.Errorf("delete default's secret with a token of team-a: %v, want NOT_FOUND", err)
	}
	if _, err := cairnv1.NewSecretServiceClient(c.ConnAs(writer)).ResealSecrets(ctx, &cairnv1.ResealSecretsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("reseal without admin: %v", err)
	}
}
