package auth

import (
	"testing"

	"google.golang.org/grpc/codes"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.NotFound: "NOT_FOUND",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unavailable: "UNAVAILABLE"} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%v) = %q, want %q", c, got, want)
		}
	}
}

func TestResourceOf(t *testing.T) {
	for _, c := range []struct {
		msg  any
		want string
	}{
		{&cairnv1.StartRunRequest{Workflow: "etl", Params: map[string]string{"day": "x"}}, "workflow=etl"},
		{&cairnv1.ApplyWorkflowRequest{Yaml: "name: etl"}, ""},
		{&cairnv1.ApplyWorkflowResponse{Workflow: &cairnv1.Workflow{Name: "etl", Version: 3, Yaml: "..."}}, "name=etl version=3"},
		{&cairnv1.CreateTokenResponse{Token: &cairnv1.Token{Id: "t1", Name: "ci"}, Secret: "cairn_secret"}, "name=ci id=t1"},
		{&cairnv1.CancelRunRequest{RunId: "r1", Reason: "free text"}, "run_id=r1"},
		{nil, ""},
	} {
		if got := resourceOf(c.msg); got != c.want {
			t.Errorf("resourceOf(%v) = %q, want %q", c.msg, got, c.want)
		}
	}
}
