# The chat engine. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help run up down test lint fmt build backends bench fuzz clean deny k8s-check images openapi schemathesis

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## build every binary
	$(CARGO) build --workspace --bins --locked

run: ## the standalone engine on http://127.0.0.1:8080 (in-process bus and presence, SQLite, demo data) and the LINE platform simulator on :8090
	$(CARGO) build --locked -p standalone -p chat-tools -p line-sim
	bash tests/scripts/run.sh

backends: ## install (Debian packages) and start PostgreSQL, Redis and RabbitMQ where missing or stopped
	bash tests/scripts/ensure-backends.sh

up: backends build ## the four services as separate processes against the local backends; ROOMS_REPLICAS=3 for a cluster of 3 rooms replicas
	bash tests/scripts/up.sh

down: ## stop what `make up` started
	bash tests/scripts/down.sh

test: backends build lint ## install/start the backends, then run unit, end-to-end and browser tests, and the ops checks in their short form (supply chain, Kubernetes, OpenAPI, fuzzing, images)
	bash tests/scripts/e2e.sh
	bash tests/scripts/browser.sh
	bash tests/scripts/deny.sh
	bash tests/scripts/k8s-check.sh
	bash tests/scripts/schemathesis.sh
	bash tests/scripts/fuzz.sh
	bash tests/scripts/images.sh

bench: backends ## the benchmark suite, short (minutes); FULL=1 for the full run; results in bench-results/
	$(CARGO) build --release --locked -p rooms -p authz -p line-gateway -p standalone -p chat-tools
	./target/release/chatbench run $(if $(FULL),--full,) --bin-dir target/release --out bench-results

fuzz: ## the fuzz targets (fuzz/), FUZZ_SECONDS each (default 30); a crash fails it. `make fuzz FUZZ_SECONDS=3600` for a long run
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),30) bash tests/scripts/fuzz.sh

openapi: ## check every service's OpenAPI document (/v1/openapi.json): sound, every $ref resolved, each operation routed, the served one the generated one; the standalone's merged one too
	$(CARGO) test --locked -p chat-kit -p rooms -p authz -p contacts -p line-gateway -p standalone openapi

schemathesis: backends build ## schemathesis against every service's OpenAPI document (the four binaries on the local backends): 0 server errors, 0 violations; EXAMPLES per operation (default 25), e.g. `make schemathesis EXAMPLES=500`
	EXAMPLES=$(or $(EXAMPLES),25) bash tests/scripts/schemathesis.sh

lint: ## rustfmt, clippy (warnings are errors) and no module cycles within a crate
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	python3 tests/scripts/module-cycles.py

deny: ## supply chain: cargo deny offline (advisories from ../shared/advisory-db, licenses, bans, sources); installs cargo-deny if missing
	bash tests/scripts/deny.sh

k8s-check: ## Kubernetes manifests offline: STRICT_TOOLS=1 k8s/validate.sh, installing its tools where missing
	bash tests/scripts/k8s-check.sh

images: ## container images (FROM scratch, static binaries, non-root) built without a daemon (buildah); OCI archives in target/images/
	bash tests/scripts/images.sh

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output and run files
	$(CARGO) clean
	rm -rf .run
