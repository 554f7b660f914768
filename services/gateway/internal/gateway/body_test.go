package gateway

import (
	"strings"
	"testing"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

func TestBodyDecodeErrorsNameTheBody(t *testing.T) {
	m := bodyMarshaler{cairnv1.NewJSONMarshaler()}
	for _, body := range []string{`{"params":["who"]}`, `{"params":`, `{"nope": 1}`} {
		var req cairnv1.StartRunRequest
		err := m.NewDecoder(strings.NewReader(body)).Decode(&req)
		if err == nil || !strings.HasPrefix(err.Error(), "request body: not a valid JSON StartRunRequest: ") {
			t.Errorf("%s: err = %v, want it to say the request body is not a valid StartRunRequest", body, err)
		}
	}
	var req cairnv1.StartRunRequest
	if err := m.NewDecoder(strings.NewReader(`{"workflow": "x", "params": {"a": "b"}}`)).Decode(&req); err != nil || req.GetParams()["a"] != "b" {
		t.Fatalf("valid body: err %v, params %v", err, req.GetParams())
	}
}
