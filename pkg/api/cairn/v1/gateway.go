package cairnv1

import (
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
)

// NewJSONMarshaler returns the JSON marshaler the REST gateway must register
// (runtime.WithMarshalerOption(runtime.MIMEWildcard, cairnv1.NewJSONMarshaler()))
// so that the wire format is the one the OpenAPI document describes:
//   - field names are the proto names (run_id, idempotency_key), as in the
//     OpenAPI document (generated with json_names_for_fields=false); requests
//     may also use the lowerCamelCase JSON names;
//   - enums are written by name (RUN_STATE_SUCCEEDED) and accepted by name or number;
//   - fields at their zero value are written (unset messages and unset
//     optional fields as null), so clients need no defaults table;
//   - unknown request fields are rejected with INVALID_ARGUMENT (HTTP 400)
//     instead of being silently dropped, so a typo never goes unnoticed.
func NewJSONMarshaler() runtime.Marshaler {
	return &runtime.JSONPb{
		MarshalOptions: protojson.MarshalOptions{
			UseProtoNames:   true,
			EmitUnpopulated: true,
		},
		UnmarshalOptions: protojson.UnmarshalOptions{
			DiscardUnknown: false,
		},
	}
}
