#!/usr/bin/env bash
# Does exactly what README.md's set-up and quickstart say, on this clone: build, try the
# local runner, start `make dev`, run an example through cairnctl and through REST, then
# Ctrl-C it and check that everything (PostgreSQL included) stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
devpid=
cleanup() {
	if [ -n "$devpid" ] && kill -0 "$devpid" 2>/dev/null; then
		kill -INT -- "-$devpid" 2>/dev/null || true
		sleep 5
		kill -KILL -- "-$devpid" 2>/dev/null || true
	fi
	rm -f "$log"
}
trap cleanup EXIT
fail() { echo "quickstart: $*" >&2; echo "--- make dev output:" >&2; cat "$log" >&2; exit 1; }

# 1. Try a workflow without any cluster.
make build
./bin/cairnctl validate examples/*.yaml
./bin/cairnctl graph --format mermaid examples/fanout.yaml >/dev/null
./bin/cairnctl run --local examples/etl.yaml -p day=2026-02-01
./bin/cairnctl run --local --parallel 4 examples/fanout.yaml

# 2. Run Cairn locally (in its own process group, so Ctrl-C reaches all of it).
setsid make dev >"$log" 2>&1 &
devpid=$!
for _ in $(seq 1 240); do
	if curl -fsS --cacert .cairn/tls/ca.pem https://localhost:8080/readyz >/dev/null 2>&1 && grep -q "Cairn is running" "$log"; then
		break
	fi
	kill -0 "$devpid" 2>/dev/null || fail "make dev exited early"
	sleep 0.5
done
curl -fsS --cacert .cairn/tls/ca.pem https://localhost:8080/readyz >/dev/null || fail "/readyz is not ready after 2 minutes"

# 3. Run a workflow on it.
./bin/cairnctl run orders-etl --wait || fail "cairnctl run orders-etl --wait failed"
./bin/cairnctl runs list
out=$(curl -fsS --cacert .cairn/tls/ca.pem -H "Authorization: Bearer $(cat .cairn/dev-token)" -H 'Content-Type: application/json' \
  -X POST https://localhost:8080/v1/workflows/orders-etl/runs -d '{"params": {"day": "2026-02-02"}}')
# Responses are read whole before matching: `curl | grep -q` fails under pipefail when grep
# exits at its first match while curl is still writing (curl: (23)).
echo "$out" | grep -q '"run_id"' || fail "REST start run answered: $out"
runs=$(curl -fsS --cacert .cairn/tls/ca.pem -H "Authorization: Bearer $(cat .cairn/dev-token)" https://localhost:8080/v1/runs) || fail "GET /v1/runs"
grep -q '"runs"' <<<"$runs" || fail "GET /v1/runs answered: $runs"
spec=$(curl -fsS --cacert .cairn/tls/ca.pem https://localhost:8080/openapi.json) || fail "GET /openapi.json"
grep -q '"/v1/workflows"' <<<"$spec" || fail "GET /openapi.json has no /v1/workflows"
# Authentication is on: without the token, or with a body that is not JSON, nothing is done.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert .cairn/tls/ca.pem https://localhost:8080/v1/runs)
[ "$code" = 401 ] || fail "GET /v1/runs without a token answered $code, want 401"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert .cairn/tls/ca.pem -H "Authorization: Bearer $(cat .cairn/dev-token)" \
  -H 'Content-Type: text/plain' -X POST https://localhost:8080/v1/workflows/orders-etl/runs -d '{}')
[ "$code" = 415 ] || fail "a text/plain POST answered $code, want 415"
# TLS is on: the REST API does not answer in plaintext, nor to a client that does not trust the dev CA.
if curl -fsS -o /dev/null http://localhost:8080/readyz 2>/dev/null; then fail "the REST API answered plain HTTP"; fi
if curl -fsS -o /dev/null https://localhost:8080/readyz 2>/dev/null; then fail "curl without --cacert trusted the gateway"; fi

# Ctrl-C stops everything, including the PostgreSQL it started.
kill -INT -- "-$devpid"
for _ in $(seq 1 120); do
	kill -0 "$devpid" 2>/dev/null || break
	sleep 0.5
done
kill -0 "$devpid" 2>/dev/null && fail "make dev still running 60 s after Ctrl-C"
devpid=
grep -q "stopping" "$log" || fail "make dev did not report stopping"
[ ! -e .cairn/pg/data/postmaster.pid ] || fail "PostgreSQL still running after make dev stopped"
echo "quickstart: ok"
