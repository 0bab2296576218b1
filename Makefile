# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export UPSELL_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/upsell
export UPSELL_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/
export UPSELL_HTTP_HOST ?= 127.0.0.1
export UPSELL_HTTP_PORT ?= 8080
# `make run` serves the reference checkout page; the service itself has it off unless told.
UPSELL_DEMO ?= on

.PHONY: install services browser prometheus asyncapi-schema kubectl load-generator migrate run test unit lint schemas reliability bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

services: install
	@bash deploy/ensure-services.sh

migrate: services
	$(BIN)/upsell migrate

# The service runs in the foreground (exec: Ctrl-C and SIGTERM reach it as they reach `upsell serve`);
# beside it, deploy/run-hint.py prints where it listens and a first curl once /readyz answers, and ends
# with the service if that comes first.
run: migrate
	@$(BIN)/upsell catalog apply deploy/catalog.example.yaml --if-empty
	@test -s .upsell-admin-token || $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))' > .upsell-admin-token
	@$(BIN)/python deploy/run-hint.py $$$$ http://$(UPSELL_HTTP_HOST):$(UPSELL_HTTP_PORT) $(UPSELL_DEMO) & \
		UPSELL_ADMIN_TOKEN="$${UPSELL_ADMIN_TOKEN:-$$(cat .upsell-admin-token)}" UPSELL_DEMO=$(UPSELL_DEMO) \
		exec $(BIN)/upsell serve

test: services browser prometheus asyncapi-schema kubectl
	$(BIN)/pytest

# The browser tests drive Debian's Chromium (Playwright downloads no browser here); make bench loads with
# wrk. Each is installed where apt-get is there, else named for the user to install.
browser:
	@if [ -z "$$UPSELL_TEST_CHROMIUM" ] && ! command -v chromium-browser >/dev/null 2>&1; then \
		bash deploy/ensure-command.sh chromium chromium "the browser tests (or set UPSELL_TEST_CHROMIUM)"; fi
	@# Japanese glyphs for the ja pages' screenshots; the tests read text, so elsewhere this is optional.
	@if command -v apt-get >/dev/null 2>&1 && [ -z "$$(fc-list :lang=ja 2>/dev/null)" ]; then \
		$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq fonts-ipafont-gothic >/dev/null || true; fi

# promtool (tests/unit/test_alerts.py) and the server (tests/e2e/test_prometheus.py, on a port of its
# own) are in Debian's prometheus package. Where its install started the packaged daemons, they are
# stopped and disabled: nothing is left listening on 9090.
prometheus:
	@if ! command -v promtool >/dev/null 2>&1; then \
		bash deploy/ensure-command.sh promtool prometheus "the alert rule and Prometheus tests" || exit 1; \
		for daemon in prometheus prometheus-node-exporter; do \
			if [ -d /run/systemd/system ]; then $(if $(filter 0,$(shell id -u)),,sudo) systemctl disable --now --quiet $$daemon || true; \
			else $(if $(filter 0,$(shell id -u)),,sudo) service $$daemon stop >/dev/null 2>&1 || true; fi; done; fi

# The official AsyncAPI 3.0.0 JSON Schema that tests/unit/test_asyncapi.py validates against, from the
# AsyncAPI project's npm package, pinned; installed once per version.
ASYNCAPI_SPECS := 6.11.1
ASYNCAPI_STAMP := build/asyncapi-specs/.installed-$(ASYNCAPI_SPECS)
asyncapi-schema: $(ASYNCAPI_STAMP)

$(ASYNCAPI_STAMP):
	@bash deploy/ensure-command.sh npm npm "the AsyncAPI schema test"
	npm install --prefix build/asyncapi-specs --no-save --no-audit --no-fund --ignore-scripts @asyncapi/specs@$(ASYNCAPI_SPECS)
	touch $@

# tests/unit/test_deploy.py builds deploy/kubernetes with `kubectl kustomize` (no cluster needed).
kubectl:
	@bash deploy/ensure-command.sh kubectl kubernetes-client "the Kubernetes manifests' test"

load-generator:
	@bash deploy/ensure-command.sh wrk wrk "make bench"

# The fault-injection suite with streams of 5,000 events; the table goes to docs/reliability.md.
RELIABILITY_RESULTS := build/reliability.jsonl
reliability: services
	@mkdir -p build && rm -f $(RELIABILITY_RESULTS)
	UPSELL_RELIABILITY_EVENTS=5000 UPSELL_RELIABILITY_RESULTS=$(CURDIR)/$(RELIABILITY_RESULTS) \
		$(BIN)/pytest tests/reliability -m reliability -p no:cacheprovider
	$(BIN)/python -m tests.reliability.report $(RELIABILITY_RESULTS) docs/reliability.md

# Service against baselines measured in the same run (loopback, bounded); table in docs/performance.md.
bench: services load-generator
	$(BIN)/python -m bench.run

unit: install asyncapi-schema kubectl
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schemas: install
	$(BIN)/python -m contracts.generate

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
