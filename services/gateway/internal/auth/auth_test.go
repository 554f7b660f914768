package auth

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

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

// TestAuditResourceNeverHoldsASecret: an audit event names what a call was about from
// identifying fields only. SetSecret's value — and every other field of every message of the
// API that is not an identifying field (tokens' secrets, login codes, YAML, params, reasons) —
// never reaches the resource, whatever it holds. Each field of each message (and of the
// messages nested in it) is filled with a marker naming it; only the markers of
// resourceFields may come out.
func TestAuditResourceNeverHoldsASecret(t *testing.T) {
	const value = "s3cr3t-VALUE-do-not-log"
	for _, m := range []proto.Message{
		&cairnv1.SetSecretRequest{Namespace: "team-a", Name: "db.password", Value: value},
		&cairnv1.SetSecretResponse{Secret: &cairnv1.Secret{Namespace: "team-a", Name: "db.password", KeyId: "k1"}, Created: true},
		&cairnv1.DeleteSecretRequest{Namespace: "team-a", Name: "db.password"},
	} {
		if got := resourceOf(m); got != "name=db.password" {
			t.Errorf("resourceOf(%T) = %q, want name=db.password", m, got)
		}
	}

	allowed := map[string]bool{}
	for _, f := range resourceFields {
		allowed[string(f)] = true
	}
	var fill func(m protoreflect.Message, depth int)
	fill = func(m protoreflect.Message, depth int) {
		fields := m.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			f := fields.Get(i)
			switch {
			case f.IsList() || f.IsMap():
			case f.Kind() == protoreflect.StringKind:
				m.Set(f, protoreflect.ValueOfString("marker<"+string(f.Name())+">"))
			case f.Kind() == protoreflect.MessageKind && depth < 3 && f.Message().FullName().Parent() == "cairn.v1":
				fill(m.Mutable(f).Message(), depth+1)
			}
		}
	}
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().FullName().Parent() != "cairn.v1" {
			return true
		}
		n++
		m := mt.New()
		fill(m, 0)
		got := resourceOf(m.Interface())
		for _, part := range strings.Split(got, "marker<")[1:] {
			name, _, _ := strings.Cut(part, ">")
			if !allowed[name] {
				t.Errorf("resourceOf(%s) = %q: it repeats field %q, which is not an identifying field", mt.Descriptor().FullName(), got, name)
			}
		}
		return true
	})
	if n < 50 {
		t.Fatalf("only %d cairn.v1 messages found in the registry", n)
	}
}
