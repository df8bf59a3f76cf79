# The chat engine. `make help` lists the targets.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help run up down test lint fmt build backends bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

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

test: backends build lint ## install/start the backends, then run unit, end-to-end and browser tests
	bash tests/scripts/e2e.sh
	bash tests/scripts/browser.sh

bench: backends ## the benchmark suite, short (minutes); FULL=1 for the full run; results in bench-results/
	$(CARGO) build --release --locked -p rooms -p authz -p line-gateway -p standalone -p chat-tools
	./target/release/chatbench run $(if $(FULL),--full,) --bin-dir target/release --out bench-results

lint: ## rustfmt, clippy (warnings are errors) and no module cycles within a crate
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	python3 tests/scripts/module-cycles.py

fmt: ## format the code
	$(CARGO) fmt --all

clean: ## remove build output and run files
	$(CARGO) clean
	rm -rf .run
