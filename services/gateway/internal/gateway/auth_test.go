package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/model"
	"github.com/cairn-io/cairn/pkg/store"
	"github.com/cairn-io/cairn/services/gateway/gatewaytest"
	"github.com/cairn-io/cairn/services/gateway/internal/auth"
	"github.com/cairn-io/cairn/services/gateway/internal/gateway"
)

// internalServices are served by the scheduler, never by the gateway.
var internalServices = map[protoreflect.FullName]bool{"cairn.v1.SchedulerService": true, "cairn.v1.WorkerService": true}

// publicMethods lists every method of the public services, read from the proto descriptors,
// so a new RPC is covered by these tests without anyone adding it.
func publicMethods(t *testing.T) []protoreflect.MethodDescriptor {
	t.Helper()
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("cairn.v1", func(f protoreflect.FileDescriptor) bool {
		for i := 0; i < f.Services().Len(); i++ {
			s := f.Services().Get(i)
			if internalServices[s.FullName()] {
				continue
			}
			for j := 0; j < s.Methods().Len(); j++ {
				out = append(out, s.Methods().Get(j))
			}
		}
		return true
	})
	if len(out) < 20 {
		t.Fatalf("found %d public methods in the descriptors; the registry is not what this test expects", len(out))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

func fullMethod(m protoreflect.MethodDescriptor) string {
	return fmt.Sprintf("/%s/%s", m.Parent().FullName(), m.Name())
}

// call invokes a method with an empty request (its fields do not matter: the checks come
// before the handler), unary or server-streaming, and returns the status.
func call(t *testing.T, conn *grpc.ClientConn, m protoreflect.MethodDescriptor, md metadata.MD) error {
	t.Helper()
	in, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if md != nil {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	req, resp := in.New().Interface(), out.New().Interface()
	if !m.IsStreamingServer() {
		return conn.Invoke(ctx, fullMethod(m), req, resp)
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, fullMethod(m))
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(resp)
}

// tokens makes the credentials the tests try: one per kind of bad token, plus tokens with
// chosen grants.
type tokens struct {
	t *testing.T
	c *gatewaytest.Cluster
}

func (k tokens) make(name string, ns []string, scopes ...apitoken.Scope) (string, store.Token) {
	k.t.Helper()
	secret := apitoken.NewSecret()
	tok, err := k.c.Store.CreateToken(context.Background(), store.Token{Name: name, CreatedBy: "test",
		Grants: apitoken.Grants{Scopes: scopes, Namespaces: ns, ExpiresAt: time.Now().Add(time.Hour)}}, apitoken.Hash(secret))
	if err != nil {
		k.t.Fatal(err)
	}
	return secret, tok
}

// bad returns a token secret for each way a token is not live.
func (k tokens) bad() map[string]string {
	k.t.Helper()
	ctx := context.Background()
	expired, et := k.make("expired", []string{"*"}, apitoken.Admin)
	if _, err := k.c.Store.Pool().Exec(ctx, `UPDATE api_tokens SET created_at = now() - interval '2 hours',
		expires_at = now() - interval '1 hour' WHERE id = $1`, et.ID); err != nil {
		k.t.Fatal(err)
	}
	revoked, rt := k.make("revoked", []string{"*"}, apitoken.Admin)
	if _, err := k.c.Store.RevokeToken(ctx, rt.ID); err != nil {
		k.t.Fatal(err)
	}
	return map[string]string{
		"no token":      "",
		"garbage":       "garbage",
		"unknown token": apitoken.NewSecret(),
		"expired token": expired,
		"revoked token": revoked,
	}
}

func bearerMD(secret string) metadata.MD {
	if secret == "" {
		return nil
	}
	return metadata.Pairs("authorization", "Bearer "+secret)
}

func TestEveryPublicMethodHasARule(t *testing.T) {
	for _, m := range publicMethods(t) {
		if _, ok := auth.Rules[fullMethod(m)]; !ok {
			t.Errorf("%s has no rule in auth.Rules: it is refused to everyone until one is decided", fullMethod(m))
		}
	}
	for name := range auth.Rules {
		found := false
		for _, m := range publicMethods(t) {
			found = found || fullMethod(m) == name
		}
		if !found {
			t.Errorf("auth.Rules names %s, which is not a public method", name)
		}
	}
}

func TestEveryPublicMethodRefusesBadTokens(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	conn := c.ConnAs("")
	for kind, secret := range (tokens{t, c}).bad() {
		for _, m := range publicMethods(t) {
			err := call(t, conn, m, bearerMD(secret))
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("%s with %s: %v, want UNAUTHENTICATED", fullMethod(m), kind, err)
			}
			// The error never says which kind of bad token it was (the login-code exchange
			// takes no token: its message is about the code).
			msg := status.Convert(err).Message()
			if (strings.Contains(msg, "expired") || strings.Contains(msg, "revoked")) && !auth.Rules[fullMethod(m)].NoToken {
				t.Errorf("%s with %s: message %q tells why the token is refused", fullMethod(m), kind, msg)
			}
		}
	}
	// A second authorization value (Grpc-Metadata-Authorization through REST) is refused
	// even when one of them is valid.
	md := metadata.Pairs("authorization", "Bearer "+gatewaytest.AdminToken, "authorization", "Bearer garbage")
	if err := call(t, conn, publicMethods(t)[0], md); status.Code(err) != codes.Unauthenticated {
		t.Errorf("two authorization values: %v, want UNAUTHENTICATED", err)
	}
}

// openAPIRoutes lists every REST route of the OpenAPI document with its path parameters
// filled in.
func openAPIRoutes(t *testing.T) [][2]string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(cairnv1.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	fill := func(p string) string {
		switch p {
		case "{name}", "{workflow}", "{namespace}", "{task_id}":
			return "etl"
		}
		return uuid.NewString()
	}
	var out [][2]string
	for path, methods := range doc.Paths {
		for method := range methods {
			out = append(out, [2]string{strings.ToUpper(method), param.ReplaceAllStringFunc(path, fill)})
		}
	}
	if len(out) < 20 {
		t.Fatalf("found %d REST routes in the OpenAPI document", len(out))
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1]+out[i][0] < out[j][1]+out[j][0] })
	return out
}

func TestEveryRESTRouteRefusesBadTokens(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	for kind, secret := range (tokens{t, c}).bad() {
		hdr := map[string]string{"Authorization": "Bearer " + secret}
		if secret == "" {
			hdr = map[string]string{}
		}
		for _, r := range openAPIRoutes(t) {
			var body any
			if r[0] == "POST" {
				body = "{}"
			}
			res := doWith(t, r[0], c.HTTPURL+r[1], body, hdr)
			if res.code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d %s, want 401", r[0], r[1], kind, res.code, res.body)
			} else if res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %s: 401 without WWW-Authenticate", r[0], r[1], kind)
			}
		}
	}
	// What answers without a token.
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if r := doWith(t, "GET", c.HTTPURL+p, nil, nil); r.code != 200 {
			t.Errorf("GET %s without a token: %d, want 200", p, r.code)
		}
	}
	if r := doWith(t, "GET", c.HTTPURL+"/metrics", nil, nil); r.code != 401 {
		t.Errorf("GET /metrics without a token on the REST listener: %d, want 401", r.code)
	}
	reader, _ := (tokens{t, c}).make("metrics", []string{"default"}, apitoken.ClusterRead)
	runs, _ := (tokens{t, c}).make("runs", []string{"*"}, apitoken.RunsRead)
	if r := doWith(t, "GET", c.HTTPURL+"/metrics", nil, map[string]string{"Authorization": "Bearer " + reader}); r.code != 200 {
		t.Errorf("GET /metrics with cluster:read: %d, want 200", r.code)
	}
	if r := doWith(t, "GET", c.HTTPURL+"/metrics", nil, map[string]string{"Authorization": "Bearer " + runs}); r.code != 403 {
		t.Errorf("GET /metrics without cluster:read: %d, want 403", r.code)
	}
}

func TestScopesAndNamespacesOfEveryMethod(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	k := tokens{t, c}
	// A token that grants only secrets:read (ListSecrets' scope, skipped below): every other
	// method needs another scope.
	useless, _ := k.make("useless", []string{"*"}, apitoken.SecretsRead)
	// A token with every scope but only for another namespace.
	var every []apitoken.Scope
	for _, s := range apitoken.AllScopes {
		if s != apitoken.Admin {
			every = append(every, s)
		}
	}
	elsewhere, _ := k.make("elsewhere", []string{"team-a"}, every...)
	conn := c.ConnAs("")
	for _, m := range publicMethods(t) {
		rule := auth.Rules[fullMethod(m)]
		err := call(t, conn, m, bearerMD(useless))
		switch {
		case rule.NoToken:
		case rule.Scope != "" && rule.Scope != apitoken.SecretsRead:
			if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), string(rule.Scope)) {
				t.Errorf("%s without %s: %v, want PERMISSION_DENIED naming the scope", fullMethod(m), rule.Scope, err)
			}
		default:
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.Unauthenticated {
				t.Errorf("%s needs no scope but answered %v", fullMethod(m), err)
			}
		}
		err = call(t, conn, m, bearerMD(elsewhere))
		switch {
		case rule.Namespaced:
			if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "namespace default not found") {
				t.Errorf("%s in namespace default with a token of team-a: %v, want NOT_FOUND (never PERMISSION_DENIED)", fullMethod(m), err)
			}
		case rule.Scope == apitoken.Admin:
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s with a non-admin token: %v, want PERMISSION_DENIED", fullMethod(m), err)
			}
		}
	}
}

func TestATokenNeverMintsMoreThanItHas(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	minter, _ := (tokens{t, c}).make("minter", []string{"team-a"}, apitoken.TokensWrite, apitoken.RunsRead)
	client := cairnv1.NewAuthServiceClient(c.ConnAs(minter))
	ctx := context.Background()
	for _, bad := range []*cairnv1.CreateTokenRequest{
		{Name: "x", Scopes: []string{"admin"}, Namespaces: []string{"team-a"}},
		{Name: "x", Scopes: []string{"runs:write"}, Namespaces: []string{"team-a"}},
		{Name: "x", Scopes: []string{"runs:read"}, Namespaces: []string{"team-b"}},
		{Name: "x", Scopes: []string{"runs:read"}, Namespaces: []string{"*"}},
		{Name: "x", Scopes: []string{"runs:read"}, Namespaces: []string{"team-a"}, Ttl: durationpb.New(48 * time.Hour)},
	} {
		if _, err := client.CreateToken(ctx, bad); status.Code(err) != codes.PermissionDenied {
			t.Errorf("CreateToken(%v) by a runs:read+tokens:write token of team-a for 1 h: %v, want PERMISSION_DENIED", bad, err)
		}
	}
	for _, bad := range []*cairnv1.CreateTokenRequest{
		{Name: "Bad Name", Scopes: []string{"runs:read"}, Namespaces: []string{"team-a"}},
		{Name: "x", Scopes: []string{"runs:nope"}, Namespaces: []string{"team-a"}},
		{Name: "x", Namespaces: []string{"team-a"}},
		{Name: "x", Scopes: []string{"runs:read"}},
		{Name: "x", Scopes: []string{"runs:read"}, Namespaces: []string{"team-a"}, Ttl: durationpb.New(-time.Second)},
	} {
		_, err := client.CreateToken(ctx, bad)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateToken(%v): %v, want INVALID_ARGUMENT", bad, err)
		}
	}
	resp, err := client.CreateToken(ctx, &cairnv1.CreateTokenRequest{Name: "reader", Scopes: []string{"runs:read"},
		Namespaces: []string{"team-a"}, Ttl: durationpb.New(30 * time.Minute)})
	if err != nil {
		t.Fatalf("CreateToken within the caller's grants: %v", err)
	}
	who, err := cairnv1.NewAuthServiceClient(c.ConnAs(resp.GetSecret())).WhoAmI(ctx, &cairnv1.WhoAmIRequest{})
	if err != nil || who.GetToken().GetName() != "reader" || who.GetToken().GetCreatedBy() != "minter" {
		t.Fatalf("WhoAmI with the new token = %v, %v", who, err)
	}
	if _, err := client.CreateToken(ctx, &cairnv1.CreateTokenRequest{Name: "reader", Scopes: []string{"runs:read"},
		Namespaces: []string{"team-a"}, Ttl: durationpb.New(time.Minute)}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("second live token named reader: %v, want ALREADY_EXISTS", err)
	}
	// The minter of team-a sees only tokens within team-a: not the admin bootstrap token.
	list, err := client.ListTokens(ctx, &cairnv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list.GetTokens() {
		if tk.GetName() == "bootstrap" {
			t.Errorf("a token of team-a lists the bootstrap token")
		}
	}
	admin := cairnv1.NewAuthServiceClient(c.Conn())
	all, err := admin.ListTokens(ctx, &cairnv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var bootID string
	for _, tk := range all.GetTokens() {
		if tk.GetName() == "bootstrap" {
			bootID = tk.GetId()
		}
	}
	if bootID == "" {
		t.Fatal("the admin does not list the bootstrap token")
	}
	if _, err := client.RevokeToken(ctx, &cairnv1.RevokeTokenRequest{Id: bootID}); status.Code(err) != codes.NotFound {
		t.Errorf("a token of team-a revoking the bootstrap token: %v, want NOT_FOUND", err)
	}
}

func TestRevocationTakesEffectWithinTheCacheTTL(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{TokenCacheTTL: 300 * time.Millisecond})
	secret, tok := (tokens{t, c}).make("short", []string{"default"}, apitoken.RunsRead)
	runs := cairnv1.NewRunServiceClient(c.ConnAs(secret))
	ctx := context.Background()
	if _, err := runs.ListRuns(ctx, &cairnv1.ListRunsRequest{}); err != nil {
		t.Fatalf("ListRuns with a live token: %v", err)
	}
	if _, err := cairnv1.NewAuthServiceClient(c.Conn()).RevokeToken(ctx, &cairnv1.RevokeTokenRequest{Id: tok.ID.String()}); err != nil {
		t.Fatal(err)
	}
	revokedAt := time.Now()
	for {
		_, err := runs.ListRuns(ctx, &cairnv1.ListRunsRequest{})
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(revokedAt) > 3*time.Second {
			t.Fatal("a revoked token is still accepted 3 s after its revocation (cache TTL 300 ms)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoginCodeIsExchangedOnce(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	ctx := context.Background()
	lc, err := cairnv1.NewAuthServiceClient(c.Conn()).CreateLoginCode(ctx, &cairnv1.CreateLoginCodeRequest{
		Scopes: []string{"runs:read"}, Namespaces: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	// The exchange needs no token: it is what a browser does with the link's code.
	r := doWith(t, "POST", c.HTTPURL+"/v1/auth/login-codes:exchange", map[string]string{"code": lc.GetCode()}, nil)
	if r.code != 200 {
		t.Fatalf("exchange: %d %s", r.code, r.body)
	}
	secret, _ := r.json(t)["secret"].(string)
	if apitoken.ParseSecret(secret) != nil {
		t.Fatalf("exchange returned no token secret: %s", r.body)
	}
	if r := doWith(t, "POST", c.HTTPURL+"/v1/auth/login-codes:exchange", map[string]string{"code": lc.GetCode()}, nil); r.code != 401 {
		t.Fatalf("second exchange of one code: %d %s, want 401", r.code, r.body)
	}
	hdr := map[string]string{"Authorization": "Bearer " + secret}
	if r := doWith(t, "GET", c.HTTPURL+"/v1/runs", nil, hdr); r.code != 200 {
		t.Errorf("GET /v1/runs with the session token: %d %s", r.code, r.body)
	}
	if r := doWith(t, "GET", c.HTTPURL+"/v1/workflows", nil, hdr); r.code != 403 {
		t.Errorf("GET /v1/workflows with a runs:read session: %d, want 403", r.code)
	}
	// A code cannot open a session beyond its creator's grants.
	reader, _ := (tokens{t, c}).make("lc-maker", []string{"default"}, apitoken.TokensWrite, apitoken.RunsRead)
	if _, err := cairnv1.NewAuthServiceClient(c.ConnAs(reader)).CreateLoginCode(ctx, &cairnv1.CreateLoginCodeRequest{
		Scopes: []string{"admin"}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("login code for admin by a non-admin: %v, want PERMISSION_DENIED", err)
	}
}

func TestMutationsAreAudited(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	ci, _ := (tokens{t, c}).make("ci", []string{"default"}, apitoken.WorkflowsWrite, apitoken.RunsWrite)
	hdr := map[string]string{"Authorization": "Bearer " + ci}
	if r := doWith(t, "POST", c.HTTPURL+"/v1/workflows", map[string]string{"yaml": etlYAML}, hdr); r.code != 200 {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
	if r := doWith(t, "POST", c.HTTPURL+"/v1/workflows/etl/runs", "{}", hdr); r.code != 200 {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	if r := doWith(t, "POST", c.HTTPURL+"/v1/workflows/nope/runs", "{}", hdr); r.code != 404 {
		t.Fatalf("start of an unknown workflow: %d %s", r.code, r.body)
	}
	evs, err := cairnv1.NewAuthServiceClient(c.Conn()).ListAuditEvents(context.Background(), &cairnv1.ListAuditEventsRequest{TokenName: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	uuidRE := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	for _, e := range evs.GetEvents() {
		if e.GetTokenId() == "" || e.GetTime() == nil {
			t.Errorf("audit event %v lacks its token ID or time", e)
		}
		got = append(got, fmt.Sprintf("%s %s %s [%s]", e.GetMethod(), e.GetNamespace(), e.GetOutcome(),
			uuidRE.ReplaceAllString(e.GetResource(), "RUN")))
	}
	want := []string{
		"/cairn.v1.RunService/StartRun default NOT_FOUND [workflow=nope]",
		"/cairn.v1.RunService/StartRun default OK [workflow=etl run_id=RUN]",
		"/cairn.v1.WorkflowService/ApplyWorkflow default OK [name=etl version=1]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail of ci:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Reads are not audited, and only admin reads the trail.
	if r := doWith(t, "GET", c.HTTPURL+"/v1/audit-events", nil, hdr); r.code != 403 {
		t.Errorf("GET /v1/audit-events by a non-admin: %d, want 403", r.code)
	}
}

func TestBrowserRequestsCannotCrossSites(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	admin := map[string]string{"Authorization": "Bearer " + gatewaytest.AdminToken}
	body := `{"yaml": "name: evil\ntasks:\n  - {id: a, type: noop}\n"}`
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		hdr := map[string]string{"Authorization": admin["Authorization"], "Content-Type": ct}
		r := doWith(t, "POST", c.HTTPURL+"/v1/workflows", []byte(body), hdr)
		if ct == "" {
			// doWith adds application/json to a body; send this one by hand.
			req, _ := http.NewRequest("POST", c.HTTPURL+"/v1/workflows", strings.NewReader(body))
			req.Header.Set("Authorization", admin["Authorization"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r = httpResult{resp.StatusCode, resp.Header, b}
		}
		if r.code != http.StatusUnsupportedMediaType || !strings.Contains(errorMessage(t, r), "application/json") {
			t.Errorf("POST with Content-Type %q: %d %s, want 415 naming application/json", ct, r.code, r.body)
		}
	}
	hdr := map[string]string{"Authorization": admin["Authorization"], "Origin": "https://evil.example"}
	if r := doWith(t, "POST", c.HTTPURL+"/v1/workflows", body, hdr); r.code != http.StatusForbidden {
		t.Errorf("POST from another origin: %d %s, want 403", r.code, r.body)
	}
	if r := doWith(t, "GET", c.HTTPURL+"/v1/workflows", nil, hdr); r.code != http.StatusForbidden {
		t.Errorf("GET from another origin: %d, want 403", r.code)
	}
	// A preflight is never granted: no CORS header in any answer.
	req, _ := http.NewRequest("OPTIONS", c.HTTPURL+"/v1/workflows", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k := range resp.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("preflight answered with %s", k)
		}
	}
	// Same origin (the UI served by the gateway) is fine.
	same := map[string]string{"Authorization": admin["Authorization"], "Origin": c.HTTPURL}
	if r := doWith(t, "GET", c.HTTPURL+"/v1/workflows", nil, same); r.code != 200 {
		t.Errorf("GET from the gateway's own origin: %d %s", r.code, r.body)
	}
	// Nothing was applied by the refused requests.
	if r := do(t, "GET", c.HTTPURL+"/v1/workflows/evil", nil); r.code != 404 {
		t.Errorf("a refused request applied the workflow: GET /v1/workflows/evil = %d", r.code)
	}
}

func TestInsecureModeOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":8080", "10.1.2.3:8080", "[::]:8080"} {
		_, err := gateway.New(gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: addr, DatabaseURL: "postgres://x@127.0.0.1/x",
			EtcdEndpoints: []string{"http://127.0.0.1:2379"}, Insecure: true})
		if err == nil || !strings.Contains(err.Error(), "--insecure") || !strings.Contains(err.Error(), "http-addr") {
			t.Errorf("insecure gateway with http-addr %s: %v, want an error naming --insecure and http-addr", addr, err)
		}
	}
	for _, bad := range []string{"not-a-token", "cairn_short"} {
		_, err := gateway.New(gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DatabaseURL: "postgres://x@127.0.0.1/x",
			EtcdEndpoints: []string{"http://127.0.0.1:2379"}, BootstrapToken: bad})
		if err == nil || !strings.Contains(err.Error(), "bootstrap token") {
			t.Errorf("bootstrap token %q: %v, want an error naming it", bad, err)
		}
	}
}

func TestInsecureModeChecksTheHostHeader(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{Insecure: true})
	if r := doWith(t, "GET", c.HTTPURL+"/v1/workflows", nil, nil); r.code != 200 {
		t.Fatalf("insecure mode without a token: %d %s", r.code, r.body)
	}
	req, _ := http.NewRequest("GET", c.HTTPURL+"/v1/workflows", nil)
	req.Host = "rebound.evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("insecure mode with Host rebound.evil.example: %d, want 421", resp.StatusCode)
	}
	// Mutations are still audited, under the name "insecure".
	if r := doWith(t, "POST", c.HTTPURL+"/v1/workflows", map[string]string{"yaml": etlYAML}, nil); r.code != 200 {
		t.Fatalf("apply: %d %s", r.code, r.body)
	}
	evs, _, err := c.Store.ListAuditEvents(context.Background(), store.AuditFilter{TokenName: "insecure"}, store.PageRequest{})
	if err != nil || len(evs) != 1 || evs[0].Outcome != "OK" {
		t.Errorf("audit events of insecure mode: %+v, %v", evs, err)
	}
}

// A token of namespace A finds nothing of namespace B, whatever path or ID it uses, and the
// answer for B's real IDs is the answer for made-up ones (no probing).
func TestATokenOfOneNamespaceFindsNothingOfAnother(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	base := c.HTTPURL + "/v1"
	for _, ns := range []string{"team-a", "team-b"} {
		wantStatus(t, "create "+ns, do(t, "POST", base+"/namespaces", map[string]string{"namespace": ns}), 200)
	}
	teamB := base + "/namespaces/team-b"
	wantStatus(t, "apply in team-b", do(t, "POST", teamB+"/workflows", map[string]string{"yaml": "name: etl\ntasks:\n  - {id: only, type: noop}\n"}), 200)
	r := do(t, "POST", teamB+"/workflows/etl/runs", "{}")
	if r.code != 200 {
		t.Fatalf("start in team-b: %d %s", r.code, r.body)
	}
	runID := r.json(t)["run"].(map[string]any)["run_id"].(string)
	dl := c.DeadLetter(runID, "only", "etl", model.AttemptError{Attempt: 1, FailureKind: model.FailureExitCode, Error: "exit 1"})

	var every []apitoken.Scope
	for _, s := range apitoken.AllScopes {
		if s != apitoken.Admin {
			every = append(every, s)
		}
	}
	secretA, _ := (tokens{t, c}).make("team-a-all", []string{"team-a"}, every...)
	asA := map[string]string{"Authorization": "Bearer " + secretA}
	fake, fakeDL := uuid.NewString(), uuid.NewString()
	for _, prefix := range []string{teamB, base + "/namespaces/team-a", base} {
		for _, id := range []struct{ run, dl string }{{runID, dl}, {fake, fakeDL}} {
			for _, req := range [][3]string{
				{"GET", prefix + "/workflows/etl", ""},
				{"GET", prefix + "/runs/" + id.run, ""},
				{"GET", prefix + "/runs/" + id.run + "/tasks/only/attempts", ""},
				{"GET", prefix + "/runs/" + id.run + ":watch", ""},
				{"POST", prefix + "/runs/" + id.run + ":cancel", "{}"},
				{"POST", prefix + "/runs/" + id.run + ":retry", "{}"},
				{"GET", prefix + "/deadletters/" + id.dl, ""},
				{"POST", prefix + "/deadletters/" + id.dl + ":replay", "{}"},
				{"DELETE", prefix + "/deadletters/" + id.dl, ""},
			} {
				// Under team-a the token passes and the leader decides: gatewaytest's stand-in
				// leader implements no retry, replay or purge, so those are checked against the
				// real leader in tests/api (TestTokensEndToEnd).
				if prefix == base+"/namespaces/team-a" && (strings.HasSuffix(req[1], ":retry") ||
					strings.Contains(req[1], "/deadletters/") && req[0] != "GET") {
					continue
				}
				var body any
				if req[2] != "" {
					body = req[2]
				}
				res := doWith(t, req[0], req[1], body, asA)
				if res.code != http.StatusNotFound {
					t.Errorf("%s %s with a token of team-a: %d %s, want 404", req[0], req[1], res.code, res.body)
					continue
				}
				// Under team-b (and default, which the token may not use either) the answer
				// names the namespace, the same for real and made-up IDs.
				if prefix != base+"/namespaces/team-a" {
					ns := "team-b"
					if prefix == base {
						ns = "default"
					}
					if msg := errorMessage(t, res); msg != "namespace "+ns+" not found" {
						t.Errorf("%s %s: message %q, want %q whatever the ID", req[0], req[1], msg, "namespace "+ns+" not found")
					}
				}
			}
		}
	}
	// The run is untouched (the cancel and retry above were refused) and team-b's own admin
	// still sees it.
	if r := do(t, "GET", teamB+"/runs/"+runID, nil); r.code != 200 || r.json(t)["run"].(map[string]any)["state"] != "RUN_STATE_PENDING" {
		t.Errorf("team-b's run after team-a's attempts: %d %s", r.code, r.body)
	}
	// gRPC says the same; listing namespaces shows only team-a.
	runs := cairnv1.NewRunServiceClient(c.ConnAs(secretA))
	if _, err := runs.GetRun(context.Background(), &cairnv1.GetRunRequest{Namespace: "team-b", RunId: runID}); status.Code(err) != codes.NotFound {
		t.Errorf("gRPC GetRun of team-b's run with a token of team-a: %v, want NOT_FOUND", err)
	}
	list, err := cairnv1.NewNamespaceServiceClient(c.ConnAs(secretA)).ListNamespaces(context.Background(), &cairnv1.ListNamespacesRequest{})
	if err != nil || len(list.GetNamespaces()) != 1 || list.GetNamespaces()[0].GetName() != "team-a" {
		t.Errorf("ListNamespaces with a token of team-a = %v, %v; want only team-a", list, err)
	}
}

func TestPublicListenersOffLoopbackNeedTLS(t *testing.T) {
	for _, c := range []struct {
		cfg  gateway.Config
		fail bool
	}{
		{gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "0.0.0.0:8080"}, true},
		{gateway.Config{GRPCAddr: "10.0.0.1:7070", HTTPAddr: "127.0.0.1:0"}, true},
		{gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "0.0.0.0:8080", PublicPlaintext: true}, false},
		{gateway.Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, false},
	} {
		cfg := c.cfg
		cfg.DatabaseURL, cfg.EtcdEndpoints = "postgres://x@127.0.0.1/x", []string{"http://127.0.0.1:2379"}
		cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = "c.pem", "k.pem", "ca.pem" // internal TLS set: only the public rule is tested
		_, err := gateway.New(cfg)
		named := err != nil && strings.Contains(err.Error(), "--public-tls-cert") && strings.Contains(err.Error(), "--public-plaintext")
		if named != c.fail {
			t.Errorf("grpc %s http %s plaintext %v: %v; want a refusal naming the TLS flags: %v",
				cfg.GRPCAddr, cfg.HTTPAddr, cfg.PublicPlaintext, err, c.fail)
		}
	}
}

// A token limited to some namespaces learns nothing of the others: not from the audit trail
// (even with admin), not from the namespace list or its page tokens, not from token lists.
func TestNamespaceLimitedTokensSeeOnlyTheirNamespaces(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	base := c.HTTPURL + "/v1"
	for _, ns := range []string{"team-a", "team-b", "team-c"} {
		wantStatus(t, "create "+ns, do(t, "POST", base+"/namespaces", map[string]string{"namespace": ns}), 200)
	}
	k := tokens{t, c}
	adminA, _ := k.make("admin-a", []string{"team-a"}, apitoken.Admin)
	_, _ = k.make("of-b", []string{"team-b"}, apitoken.RunsRead)
	ctx := context.Background()
	if _, err := cairnv1.NewAuthServiceClient(c.ConnAs(adminA)).ListAuditEvents(ctx, &cairnv1.ListAuditEventsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("ListAuditEvents with an admin token of team-a: %v, want PERMISSION_DENIED", err)
	}
	nsClient := cairnv1.NewNamespaceServiceClient(c.ConnAs(adminA))
	list, err := nsClient.ListNamespaces(ctx, &cairnv1.ListNamespacesRequest{PageSize: 1})
	if err != nil || len(list.GetNamespaces()) != 1 || list.GetNamespaces()[0].GetName() != "team-a" || list.GetNextPageToken() != "" {
		t.Errorf("ListNamespaces(page_size 1) with a token of team-a = %v, %v; want team-a alone and no page token", list, err)
	}
	toks, err := cairnv1.NewAuthServiceClient(c.ConnAs(adminA)).ListTokens(ctx, &cairnv1.ListTokensRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks.GetTokens() {
		if tk.GetName() != "admin-a" {
			t.Errorf("a token of team-a lists %s", tk.GetName())
		}
	}
	if toks.GetNextPageToken() != "" {
		t.Errorf("a token of team-a gets a next page token %q: its only visible token is on this page", toks.GetNextPageToken())
	}
}

// A short-lived token (a login session) may create a token without a ttl: the default
// lifetime is cut at its own expiry, while an explicit ttl beyond it is refused.
func TestDefaultTokenLifetimeNeverOutlivesTheCaller(t *testing.T) {
	c := gatewaytest.Start(t, gatewaytest.Options{})
	short, tok := (tokens{t, c}).make("short", []string{"default"}, apitoken.TokensWrite, apitoken.RunsRead)
	client := cairnv1.NewAuthServiceClient(c.ConnAs(short))
	ctx := context.Background()
	resp, err := client.CreateToken(ctx, &cairnv1.CreateTokenRequest{Name: "child", Scopes: []string{"runs:read"}, Namespaces: []string{"default"}})
	if err != nil {
		t.Fatalf("CreateToken without ttl by a token expiring in 1 h: %v", err)
	}
	if got := resp.GetToken().GetExpiresAt().AsTime(); got.After(tok.Grants.ExpiresAt) {
		t.Errorf("child expires %v, after its creator (%v)", got, tok.Grants.ExpiresAt)
	}
	if _, err := client.CreateToken(ctx, &cairnv1.CreateTokenRequest{Name: "child2", Scopes: []string{"runs:read"},
		Namespaces: []string{"default"}, Ttl: durationpb.New(48 * time.Hour)}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("explicit ttl beyond the caller's expiry: %v, want PERMISSION_DENIED", err)
	}
}
