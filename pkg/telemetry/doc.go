// Package telemetry sets up a process's metrics, traces and logs.
//
// [Setup] builds the OpenTelemetry SDK for one binary: a MeterProvider whose only reader is
// the Prometheus exporter, registered on a private prometheus.Registry (never the global
// default one, so tests and several components in one process do not collide), together with
// Go runtime and process collectors; a TracerProvider that exports over OTLP/gRPC only when an
// endpoint is configured; and the W3C TraceContext + Baggage propagator, installed globally so
// trace context crosses gateway → scheduler → worker. [Telemetry.Handler] serves the registry
// for /metrics (the ops server mounts it). Shutdown flushes and stops both providers.
//
// [NewLogger] builds the slog logger every binary uses: JSON in production, text in dev.
package telemetry
