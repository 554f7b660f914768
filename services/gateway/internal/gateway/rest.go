package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/services/gateway/internal/forward"
)

// newRESTMux builds the grpc-gateway mux over a client connection to the gateway's own gRPC
// server. The REST handlers go through the client (RegisterXHandlerClient) rather than calling
// the server in-process (RegisterXHandlerServer) because grpc-gateway's in-process transport
// does not support server streaming, which WatchRun needs; going through one connection also
// gives REST and gRPC the same interceptors, limits and metrics.
func newRESTMux(ctx context.Context, conn *grpc.ClientConn) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, bodyMarshaler{cairnv1.NewJSONMarshaler()}),
		runtime.WithErrorHandler(errorHandler),
		// No HTTP header becomes gRPC metadata but Authorization (which grpc-gateway always
		// passes): a client must not be able to set metadata the gateway trusts.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
	)
	for name, register := range map[string]func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		"AuthService":       cairnv1.RegisterAuthServiceHandler,
		"WorkflowService":   cairnv1.RegisterWorkflowServiceHandler,
		"RunService":        cairnv1.RegisterRunServiceHandler,
		"DeadLetterService": cairnv1.RegisterDeadLetterServiceHandler,
		"ClusterService":    cairnv1.RegisterClusterServiceHandler,
		"NamespaceService":  cairnv1.RegisterNamespaceServiceHandler,
		"SecretService":     cairnv1.RegisterSecretServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("register %s REST handlers: %w", name, err)
		}
	}
	return mux, nil
}

// bodyMarshaler says which part of the request a JSON decoding error is about: protojson's
// own messages ("unexpected EOF", "syntax error (line 1:12): unexpected token [") name neither
// the body nor the field.
type bodyMarshaler struct{ runtime.Marshaler }

func (m bodyMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	d := m.Marshaler.NewDecoder(r)
	return runtime.DecoderFunc(func(v any) error {
		if err := d.Decode(v); err != nil {
			if err == io.EOF {
				return err // an empty body: grpc-gateway treats it as an empty message
			}
			what := "request"
			if msg, ok := v.(proto.Message); ok {
				what = string(msg.ProtoReflect().Descriptor().Name())
			}
			if _, secret := v.(*cairnv1.SetSecretRequest); secret {
				// protojson quotes the text it could not parse ("invalid value s3cr3t"),
				// which may be the secret's value: say only that the body is not valid.
				return fmt.Errorf("request body: not a valid JSON %s (expected {\"value\": \"...\"}; the parser's message is withheld: it could quote the value)", what)
			}
			return fmt.Errorf("request body: not a valid JSON %s: %w", what, err)
		}
		return nil
	})
}

// retryAfter returns the RetryInfo delay of an UNAVAILABLE status in whole seconds (at least
// 1), or forward.RetryAfter's.
func retryAfter(st *status.Status) string {
	d := forward.RetryAfter
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			d = ri.GetRetryDelay().AsDuration()
		}
	}
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// errorHandler writes every error as the google.rpc.Status JSON ({"code", "message",
// "details"}) with the HTTP status of its gRPC code, adding Retry-After to 503s.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		w.Header().Set("Retry-After", retryAfter(st))
	case codes.Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// writeStatus writes st as an error response with the given HTTP code.
func writeStatus(w http.ResponseWriter, httpCode int, st *status.Status) {
	body, err := cairnv1.NewJSONMarshaler().Marshal(st.Proto())
	if err != nil {
		body = []byte(`{"code":13,"message":"failed to marshal an error","details":[]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpCode)
	_, _ = w.Write(body)
}

// writeError writes an error of the HTTP checks that run before grpc-gateway.
func writeError(w http.ResponseWriter, httpCode, grpcCode int, msg string) {
	writeStatus(w, httpCode, status.New(codes.Code(grpcCode), msg))
}

// limitBody rejects request bodies over max bytes with 413 and a JSON status, before the
// gateway decodes anything. Bodies are read whole (they are small by construction).
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tooLarge := func() {
			writeStatus(w, http.StatusRequestEntityTooLarge, status.Newf(codes.ResourceExhausted,
				"request body: larger than the limit of %d bytes", max))
		}
		if r.ContentLength > max {
			tooLarge()
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			data, err := io.ReadAll(io.LimitReader(r.Body, max+1))
			_ = r.Body.Close()
			if err != nil {
				writeStatus(w, http.StatusBadRequest, status.Newf(codes.InvalidArgument, "request body: %v", err))
				return
			}
			if int64(len(data)) > max {
				tooLarge()
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(data))
		}
		next.ServeHTTP(w, r)
	})
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(cairnv1.OpenAPI)
}
