# Cairn — a fault-tolerant distributed DAG task scheduler.
# `make help` lists the targets; each one documented with a `##` comment.

SHELL      := /bin/bash
GO         ?= go
BIN        := bin
BINARIES   := cairn-scheduler cairn-gateway cairn-worker cairnctl
GOTESTFLAGS ?=
# Packages under test; the end-to-end suites under tests/ build the binaries themselves.
PKGS       ?= ./...
STATICCHECK := $(GO) tool -modfile=tools/lint/go.mod staticcheck
BUF         := $(GO) tool -modfile=tools/buf/go.mod buf
FUZZTIME   ?= 20s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build every binary into bin/.
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do \
		if [ -d services/$${b#cairn-} ]; then d=services/$${b#cairn-}; else d=services/$$b; fi; \
		[ -d $$d ] || continue; \
		echo "go build -o $(BIN)/$$b ./$$d"; \
		$(GO) build -o $(BIN)/$$b ./$$d || exit 1; \
	done

.PHONY: test
test: ## Run every test with the race detector (starts its own PostgreSQL and etcd).
	$(GO) test -race -count=1 -timeout 15m $(GOTESTFLAGS) $(PKGS)

.PHONY: test-short
test-short: ## Run the unit tests only (no PostgreSQL, etcd or spawned binaries).
	$(GO) test -short -count=1 $(PKGS)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s).
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

.PHONY: generate
generate: ## Lint the protos and regenerate protobuf, gRPC, grpc-gateway and OpenAPI code (offline; Go module proxy only).
	$(BUF) lint
	@# Remove the previous output first so that a deleted .proto leaves no orphan;
	@# the hand-written doc.go, openapi.go and tests in the same directory stay.
	rm -f pkg/api/cairn/v1/*.pb.go pkg/api/cairn/v1/*.pb.gw.go pkg/api/cairn/v1/*.swagger.json
	$(BUF) generate
	$(GO) build ./pkg/api/...

.PHONY: generate-check
generate-check: generate ## Fail when the committed generated code is stale.
	@git diff --exit-code -- pkg/api || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- pkg/api)" || { git status --porcelain -- pkg/api; echo "untracked or deleted generated files: run 'make generate' and commit"; exit 1; }

.PHONY: proto-breaking
proto-breaking: BREAKING_AGAINST ?= .git\#branch=main
proto-breaking: ## Check the protos for breaking changes against main (offline; BREAKING_AGAINST=<buf input> to change).
	$(BUF) breaking --against '$(BREAKING_AGAINST)'

.PHONY: dev
dev: build ## Run all of Cairn locally: embedded etcd, local PostgreSQL under .cairn/, scheduler, gateway, workers.
	./$(BIN)/cairnctl dev

.PHONY: bench
bench: ## Run the end-to-end benchmark on a real loopback cluster and print its figures (BENCHFLAGS=--quick, --only hop, ...).
	$(GO) run ./bench $(BENCHFLAGS)

.PHONY: robustness
robustness: ## Run the fault-injection suite in a loop (ROBUSTNESS_COUNT times, default 3).
	$(GO) test -race -count=$${ROBUSTNESS_COUNT:-3} -timeout 60m -run 'Robust|Failure' ./tests/...

.PHONY: clean
clean: ## Remove built binaries and local dev state.
	rm -rf $(BIN)
