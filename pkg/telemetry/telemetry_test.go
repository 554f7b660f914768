package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cairn-io/cairn/pkg/telemetry"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	return string(body)
}

func TestCounterShowsUpInMetrics(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "cairn-test", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	counter, err := tel.Meter("cairn/test").Int64Counter("cairn_test_tasks", metric.WithDescription("tasks seen"))
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(context.Background(), 3, metric.WithAttributes(attribute.String("state", "succeeded")))
	counter.Add(context.Background(), 2, metric.WithAttributes(attribute.String("state", "succeeded")))

	body := scrape(t, tel.Handler())
	var line string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, "cairn_test_tasks_total{") && strings.Contains(l, `state="succeeded"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("counter missing from /metrics:\n%s", body)
	}
	if !strings.HasSuffix(line, " 5") {
		t.Fatalf("counter line %q, want value 5", line)
	}
	if !strings.Contains(body, `service_name="cairn-test"`) {
		t.Errorf("target_info lacks the service name:\n%s", body)
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Errorf("Go runtime metrics missing")
	}
}

func TestSetupsAreIsolated(t *testing.T) {
	a, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "b"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := a.Meter("x").Int64Counter("only_in_a")
	c.Add(context.Background(), 1)
	if body := scrape(t, b.Handler()); strings.Contains(body, "only_in_a") {
		t.Fatal("a metric of one setup shows up in another's registry")
	}
	_ = a.Shutdown(context.Background())
	_ = b.Shutdown(context.Background())
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestPropagatorAndTracing(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "svc", OTLPEndpoint: "127.0.0.1:4317"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tel.Tracer("t").Start(context.Background(), "op")
	carrier := http.Header{}
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(carrier))
	span.End()
	if tp := carrier.Get("Traceparent"); !strings.Contains(tp, span.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q does not carry the trace id", tp)
	}
	// Nothing listens on the endpoint: Shutdown must still return (with a bounded context).
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = tel.Shutdown(sctx)
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []telemetry.Config{
		{},
		{Service: "s", OTLPEndpoint: "nohostport"},
		{Service: "s", OTLPEndpoint: "ftp://x:1"},
		{Service: "s", OTLPEndpoint: "http://"},
	} {
		if _, err := telemetry.Setup(context.Background(), cfg); !errors.Is(err, telemetry.ErrInvalidConfig) {
			t.Errorf("Setup(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLogger("json", "warn", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "run_id", "r1")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["run_id"] != "r1" {
		t.Fatalf("record %v", rec)
	}
	buf.Reset()
	log, err = telemetry.NewLogger("TEXT", "", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("hello")
	if !strings.Contains(buf.String(), "msg=hello") || strings.Contains(buf.String(), "hidden") {
		t.Fatalf("text output %q", buf.String())
	}
	if _, err := telemetry.NewLogger("xml", "info", &buf); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("bad format: %v", err)
	}
	if _, err := telemetry.NewLogger("json", "loud", &buf); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("bad level: %v", err)
	}
}
