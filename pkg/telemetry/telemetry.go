package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ErrInvalidConfig is matched by every configuration error of this package.
var ErrInvalidConfig = errors.New("telemetry: invalid configuration")

// Config configures Setup.
type Config struct {
	// Service is the service name (service.name), e.g. "cairn-scheduler". Required.
	Service string
	// Version is the service version (service.version); optional.
	Version string
	// InstanceID identifies this process among replicas (service.instance.id); optional.
	InstanceID string
	// OTLPEndpoint is where traces are exported over OTLP/gRPC: "host:port" (plaintext),
	// "http://host:port" (plaintext) or "https://host:port" (TLS). Empty: traces are created
	// and propagated but not exported.
	OTLPEndpoint string
	// SetGlobal also installs the providers as the OpenTelemetry globals, for libraries that
	// use them implicitly. Binaries set it; tests that run several setups leave it off.
	SetGlobal bool
}

// Telemetry holds a process's providers.
type Telemetry struct {
	MeterProvider  *sdkmetric.MeterProvider
	TracerProvider *sdktrace.TracerProvider
	// Registry is the private Prometheus registry behind Handler.
	Registry *prometheus.Registry

	handler      http.Handler
	shutdownOnce sync.Once
	shutdownErr  error
}

// Setup builds the providers described by cfg. Call Shutdown when the process exits.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if strings.TrimSpace(cfg.Service) == "" {
		return nil, fmt.Errorf("%w: Service (the service name) is empty", ErrInvalidConfig)
	}
	var traceOpts []otlptracegrpc.Option
	if cfg.OTLPEndpoint != "" {
		opts, err := otlpOptions(cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		traceOpts = opts
	}

	attrs := []attribute.KeyValue{semconv.ServiceName(cfg.Service)}
	if cfg.Version != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.Version))
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, semconv.ServiceInstanceID(cfg.InstanceID))
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, attrs...))
	if err != nil {
		return nil, fmt.Errorf("telemetry: build resource: %w", err)
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("telemetry: register Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("telemetry: register process collector: %w", err)
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exporter))

	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if traceOpts != nil {
		spanExporter, err := otlptracegrpc.New(ctx, traceOpts...)
		if err != nil {
			_ = mp.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: OTLP trace exporter for %s: %w", cfg.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(spanExporter))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if cfg.SetGlobal {
		otel.SetMeterProvider(mp)
		otel.SetTracerProvider(tp)
	}
	return &Telemetry{
		MeterProvider:  mp,
		TracerProvider: tp,
		Registry:       reg,
		handler:        promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	}, nil
}

// otlpOptions turns an endpoint setting into exporter options.
func otlpOptions(endpoint string) ([]otlptracegrpc.Option, error) {
	if !strings.Contains(endpoint, "://") {
		if _, port, ok := strings.Cut(endpoint, ":"); !ok || port == "" || strings.Contains(endpoint, "/") {
			return nil, fmt.Errorf("%w: OTLP endpoint %q must be host:port or an http(s):// URL", ErrInvalidConfig, endpoint)
		}
		return []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint), otlptracegrpc.WithInsecure()}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: OTLP endpoint %q: %v", ErrInvalidConfig, endpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: OTLP endpoint %q: scheme must be http or https", ErrInvalidConfig, endpoint)
	case u.Host == "":
		return nil, fmt.Errorf("%w: OTLP endpoint %q has no host", ErrInvalidConfig, endpoint)
	}
	return []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(endpoint)}, nil
}

// Handler serves the metrics in the Prometheus text format (for /metrics).
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Meter returns a meter of the telemetry's MeterProvider.
func (t *Telemetry) Meter(name string) metric.Meter { return t.MeterProvider.Meter(name) }

// Tracer returns a tracer of the telemetry's TracerProvider.
func (t *Telemetry) Tracer(name string) trace.Tracer { return t.TracerProvider.Tracer(name) }

// Shutdown flushes pending spans and stops both providers. Idempotent.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		if err := t.TracerProvider.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracer provider: %w", err))
		}
		if err := t.MeterProvider.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("meter provider: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			t.shutdownErr = fmt.Errorf("telemetry shutdown: %w", err)
		}
	})
	return t.shutdownErr
}

// NewLogger returns a slog logger writing to w: format "json" or "text"; level one of
// "debug", "info", "warn", "error" (any case, with an optional offset such as "info+2");
// an empty level means info.
func NewLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	if w == nil {
		return nil, errors.New("telemetry: logger writer is nil")
	}
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("telemetry: log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("telemetry: log format %q: want json or text", format)
}
