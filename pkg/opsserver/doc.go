// Package opsserver is the operations HTTP server every Cairn binary runs on CAIRN_OPS_ADDR.
//
// Endpoints:
//
//	/healthz         200 "ok" while the process is up (liveness: no dependency is checked)
//	/readyz          runs every registered readiness check concurrently, each under its own
//	                 timeout; 200 when all pass, else 503. The body is JSON listing each check
//	                 with ok, its duration and, when it failed, the reason.
//	/metrics         the telemetry handler (Prometheus text format), when one is configured
//	/debug/pprof/*   the runtime profiler, only when Config.Pprof is set
//
// The server implements lifecycle.Service: Start binds the address (so a port conflict is a
// Start error, not a log line) and serves in a goroutine it owns; Stop shuts down gracefully
// within Config.ShutdownTimeout and waits for the serving goroutine. Handlers are on a private
// mux: nothing registered on http.DefaultServeMux is exposed.
package opsserver
