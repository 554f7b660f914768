package auth

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cairn-io/cairn/pkg/apitoken"
)

// HTTPConfig configures the REST listener's request checks.
type HTTPConfig struct {
	// AllowedHosts, when not empty, are the only Host header values (without port, lower
	// case) accepted; any other is 421 Misdirected Request. In insecure mode the gateway sets
	// them to the loopback names, which defeats DNS rebinding: a page whose name resolves to
	// 127.0.0.1 still sends its own name as Host.
	AllowedHosts []string
	// AllowedOrigins are extra origins (scheme://host[:port]) allowed to send requests, beside
	// the gateway's own (the Host the request was sent to).
	AllowedOrigins []string
	// WriteError writes an error response.
	WriteError func(w http.ResponseWriter, httpCode int, grpcCode int, msg string)
}

// LoopbackHosts are the Host names accepted in insecure mode.
var LoopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// Guard wraps the REST handler with the checks every request passes before it is decoded:
// the Host header, the Origin of browser requests (no cross-origin calls: the gateway never
// sends CORS headers, and refuses a request whose Origin is another site), and the content
// type of mutations (only application/json, so an HTML form or a `text/plain` fetch — which a
// browser sends cross-site without asking — cannot reach the API).
func Guard(cfg HTTPConfig, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(cfg.AllowedHosts) > 0 && !slices.Contains(cfg.AllowedHosts, hostOnly(r.Host)) {
			cfg.WriteError(w, http.StatusMisdirectedRequest, 7, // PERMISSION_DENIED
				"host "+quoteHost(r.Host)+" is not served here (accepted: "+strings.Join(cfg.AllowedHosts, ", ")+")")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) && !slices.Contains(cfg.AllowedOrigins, o) {
			cfg.WriteError(w, http.StatusForbidden, 7, "cross-origin requests are not allowed (Origin "+o+")")
			return
		}
		// A POST is the one mutation a browser sends cross-site without a preflight (with a
		// form's or text/plain content type, or none): it must say application/json. DELETE,
		// PUT and PATCH are always preflighted, which the gateway never grants; a body they
		// carry must still be JSON.
		ct := r.Header.Get("Content-Type")
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
		case r.Method == http.MethodPost || ct != "":
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				cfg.WriteError(w, http.StatusUnsupportedMediaType, 3, // INVALID_ARGUMENT
					"Content-Type: "+r.Method+" requests must send application/json, got "+quoteHost(ct))
				return
			}
		}
		next.ServeHTTP(challenge{w}, r)
	})
}

// challenge adds `WWW-Authenticate: Bearer` to every 401, whichever handler writes it (the
// streaming calls' errors do not pass through grpc-gateway's error handler).
type challenge struct{ http.ResponseWriter }

func (c challenge) WriteHeader(code int) {
	if code == http.StatusUnauthorized && c.Header().Get("WWW-Authenticate") == "" {
		c.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	c.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming responses (WatchRun) flowing.
func (c challenge) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (c challenge) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// hostOnly returns the host of a Host header without its port, lower case.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// sameOrigin reports whether an Origin header names the host the request was sent to.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

func quoteHost(s string) string {
	if s == "" {
		return "(none)"
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

// RequireScope wraps a plain HTTP handler (the REST listener's /metrics) with the token check
// the gRPC interceptors make: 401 without a live token, 403 without scope.
func (a *Authenticator) RequireScope(scope apitoken.Scope, writeError func(w http.ResponseWriter, httpCode int, grpcCode int, msg string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.cfg.Insecure {
			secret, ok := parseBearer(r.Header.Values("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
				writeError(w, http.StatusUnauthorized, 16, errUnauthenticatedMsg)
				return
			}
			p, err := a.Authenticate(r.Context(), secret)
			if err != nil {
				if isUnavailable(err) {
					writeError(w, http.StatusServiceUnavailable, 14, "cannot check the token now; retry")
					return
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
				writeError(w, http.StatusUnauthorized, 16, errUnauthenticatedMsg)
				return
			}
			if !p.Grants.Allows(scope) {
				writeError(w, http.StatusForbidden, 7, "token \""+p.Name+"\" lacks the scope "+string(scope)+" that this call needs")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
