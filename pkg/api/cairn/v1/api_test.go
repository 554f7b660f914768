package cairnv1_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// designRoutes is the REST surface of docs/api.md's table (minus /healthz,
// /readyz, /metrics and /openapi.json, which the gateway serves itself): every
// namespaced resource under /v1/namespaces/{namespace}/..., the same routes
// without the prefix (the namespace `default`), NamespaceService, ClusterService,
// AuthService and SecretService.
var designRoutes = []struct{ method, path string }{
	{"post", "/v1/namespaces/{namespace}/workflows"},
	{"post", "/v1/namespaces/{namespace}/workflows:validate"},
	{"get", "/v1/namespaces/{namespace}/workflows"},
	{"get", "/v1/namespaces/{namespace}/workflows/{name}"},
	{"post", "/v1/namespaces/{namespace}/workflows/{workflow}/runs"},
	{"get", "/v1/namespaces/{namespace}/runs"},
	{"get", "/v1/namespaces/{namespace}/runs/{run_id}"},
	{"post", "/v1/namespaces/{namespace}/runs/{run_id}:cancel"},
	{"post", "/v1/namespaces/{namespace}/runs/{run_id}:retry"},
	{"get", "/v1/namespaces/{namespace}/runs/{run_id}/tasks/{task_id}/attempts"},
	{"get", "/v1/namespaces/{namespace}/runs/{run_id}:watch"},
	{"get", "/v1/namespaces/{namespace}/deadletters"},
	{"get", "/v1/namespaces/{namespace}/deadletters/{id}"},
	{"post", "/v1/namespaces/{namespace}/deadletters/{id}:replay"},
	{"delete", "/v1/namespaces/{namespace}/deadletters/{id}"},
	{"post", "/v1/namespaces"},
	{"get", "/v1/namespaces"},
	{"get", "/v1/namespaces/{namespace}"},
	{"delete", "/v1/namespaces/{namespace}"},

	{"post", "/v1/workflows"},
	{"post", "/v1/workflows:validate"},
	{"get", "/v1/workflows"},
	{"get", "/v1/workflows/{name}"},
	{"post", "/v1/workflows/{workflow}/runs"},
	{"get", "/v1/runs"},
	{"get", "/v1/runs/{run_id}"},
	{"post", "/v1/runs/{run_id}:cancel"},
	{"post", "/v1/runs/{run_id}:retry"},
	{"get", "/v1/runs/{run_id}/tasks/{task_id}/attempts"},
	{"get", "/v1/runs/{run_id}:watch"},
	{"get", "/v1/deadletters"},
	{"get", "/v1/deadletters/{id}"},
	{"post", "/v1/deadletters/{id}:replay"},
	{"delete", "/v1/deadletters/{id}"},
	{"get", "/v1/workers"},
	{"get", "/v1/cluster"},

	{"post", "/v1/tokens"},
	{"get", "/v1/tokens"},
	{"post", "/v1/tokens/{id}:revoke"},
	{"get", "/v1/auth/whoami"},
	{"post", "/v1/auth/login-codes"},
	{"post", "/v1/auth/login-codes:exchange"},
	{"get", "/v1/audit-events"},

	{"put", "/v1/namespaces/{namespace}/secrets/{name}"},
	{"get", "/v1/namespaces/{namespace}/secrets"},
	{"delete", "/v1/namespaces/{namespace}/secrets/{name}"},
	{"put", "/v1/secrets/{name}"},
	{"get", "/v1/secrets"},
	{"delete", "/v1/secrets/{name}"},
	{"post", "/v1/secrets:reseal"},
}

type openAPIDoc struct {
	Swagger string `json:"swagger"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Tags []struct {
		Name string `json:"name"`
	} `json:"tags"`
	Paths map[string]map[string]struct {
		OperationID string `json:"operationId"`
		Summary     string `json:"summary"`
	} `json:"paths"`
}

func TestOpenAPIDocumentListsEveryRoute(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(cairnv1.OpenAPI, &doc); err != nil {
		t.Fatalf("embedded OpenAPI is not JSON: %v", err)
	}
	if doc.Swagger != "2.0" || doc.Info.Title != "Cairn API" || doc.Info.Version != "v1" {
		t.Errorf("swagger=%q title=%q version=%q; want 2.0, Cairn API, v1", doc.Swagger, doc.Info.Title, doc.Info.Version)
	}
	want := map[string]bool{}
	for _, r := range designRoutes {
		want[r.method+" "+r.path] = true
		op, ok := doc.Paths[r.path][r.method]
		if !ok {
			t.Errorf("OpenAPI lacks %s %s", strings.ToUpper(r.method), r.path)
			continue
		}
		if op.Summary == "" {
			t.Errorf("%s %s (%s) has no summary: comment the RPC", strings.ToUpper(r.method), r.path, op.OperationID)
		}
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if !want[method+" "+path] {
				t.Errorf("OpenAPI has an unexpected route %s %s (%s): add it to designRoutes and docs/api.md", strings.ToUpper(method), path, op.OperationID)
			}
		}
	}
	for _, tag := range doc.Tags {
		if tag.Name == "SchedulerService" || tag.Name == "WorkerService" {
			t.Errorf("internal service %s leaks into the public OpenAPI document", tag.Name)
		}
	}
}

// runServer records which unary method the gateway routed to.
type runServer struct {
	cairnv1.UnimplementedRunServiceServer
	gotRunID, gotNamespace string
	cancelCalls            int
}

func (s *runServer) CancelRun(_ context.Context, req *cairnv1.CancelRunRequest) (*cairnv1.CancelRunResponse, error) {
	s.cancelCalls++
	return &cairnv1.CancelRunResponse{Run: &cairnv1.Run{RunId: req.GetRunId(), State: cairnv1.RunState_RUN_STATE_CANCELLED, Reason: req.GetReason()}}, nil
}

func (s *runServer) GetRun(_ context.Context, req *cairnv1.GetRunRequest) (*cairnv1.GetRunResponse, error) {
	s.gotRunID, s.gotNamespace = req.GetRunId(), req.GetNamespace()
	return &cairnv1.GetRunResponse{Run: &cairnv1.Run{RunId: req.GetRunId(), State: cairnv1.RunState_RUN_STATE_RUNNING}}, nil
}

// TestWatchRouteIsNotShadowedByGetRun guards the method order in
// run_service.proto: GET /v1/runs/{run_id} (and its namespaced form) also
// matches "x:watch" as a run ID if it is tried first. Both path shapes.
func TestWatchRouteIsNotShadowedByGetRun(t *testing.T) {
	srv, mux := newRunMux(t)
	for _, c := range []struct{ prefix, namespace string }{{"/v1", ""}, {"/v1/namespaces/team-a", "team-a"}} {
		srv.gotRunID, srv.gotNamespace = "", ""
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.prefix+"/runs/r1", nil))
		if rec.Code != http.StatusOK || srv.gotRunID != "r1" || srv.gotNamespace != c.namespace {
			t.Fatalf("GET %s/runs/r1: status %d, GetRun saw run %q in namespace %q; want 200, r1 in %q (body %s)",
				c.prefix, rec.Code, srv.gotRunID, srv.gotNamespace, c.namespace, rec.Body)
		}

		srv.gotRunID = ""
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.prefix+"/runs/r1:watch", nil))
		if srv.gotRunID != "" {
			t.Fatalf("GET %s/runs/r1:watch was routed to GetRun with run_id %q", c.prefix, srv.gotRunID)
		}
		// The in-process handler does not support streams, so reaching WatchRun's
		// route answers 501 Not Implemented; a 404 would mean no route matched.
		if rec.Code != http.StatusNotImplemented {
			t.Errorf("GET %s/runs/r1:watch: status %d, want 501 from the WatchRun route (body %s)", c.prefix, rec.Code, rec.Body)
		}
	}
}

func newRunMux(t *testing.T) (*runServer, *runtime.ServeMux) {
	t.Helper()
	srv := &runServer{}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, cairnv1.NewJSONMarshaler()))
	if err := cairnv1.RegisterRunServiceHandlerServer(context.Background(), mux, srv); err != nil {
		t.Fatalf("register: %v", err)
	}
	return srv, mux
}

// TestJSONMarshalerWireFormat checks the format promised by the OpenAPI
// document: proto field names, enum names, zero values present, unknown
// request fields rejected.
func TestJSONMarshalerWireFormat(t *testing.T) {
	srv, mux := newRunMux(t)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/runs/r1:cancel", strings.NewReader(`{"reason": "operator"}`)))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/runs/r1:cancel: status %d (body %s)", rec.Code, rec.Body)
	}
	var got struct {
		Run map[string]any `json:"run"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("response is not JSON: %v (%s)", err, rec.Body)
	}
	for field, want := range map[string]any{
		"run_id":           "r1",
		"state":            "RUN_STATE_CANCELLED",
		"reason":           "operator",
		"workflow_version": "0", // int64 is a JSON string; zero values are present
		"finished_at":      nil, // unset timestamp is null, not absent
	} {
		v, ok := got.Run[field]
		if !ok || v != want {
			t.Errorf("run.%s = %#v (present %v), want %#v; body %s", field, v, ok, want, rec.Body)
		}
	}

	calls := srv.cancelCalls
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/runs/r1:cancel", strings.NewReader(`{"reasn": "typo"}`)))
	if rec.Code != http.StatusBadRequest || srv.cancelCalls != calls {
		t.Errorf("unknown field: status %d, CancelRun calls %d -> %d; want 400 and no call (body %s)", rec.Code, calls, srv.cancelCalls, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "reasn") {
		t.Errorf("unknown-field error %s does not name the field", rec.Body)
	}
}
