# The two commands: `make run` (the panel, with demo data) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv lint typecheck hooks e2e-deps clean chaos bench screenshots

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	mkdir -p var/broker/out var/broker/processed
	$(PY) manage.py migrate --noinput
	# PayPal with the demo credentials of the local simulator (simulators/paypal) unless set.
	PAYPAL_API_URL=$${PAYPAL_API_URL:-http://127.0.0.1:8910} PAYPAL_CLIENT_ID=$${PAYPAL_CLIENT_ID:-demo-client} PAYPAL_CLIENT_SECRET=$${PAYPAL_CLIENT_SECRET:-demo-secret} PAYPAL_WEBHOOK_ID=$${PAYPAL_WEBHOOK_ID:-demo-webhook} \
	BTCPAY_URL=$${BTCPAY_URL:-http://127.0.0.1:8911} BTCPAY_STORE_ID=$${BTCPAY_STORE_ID:-demo-store} \
	BTCPAY_API_KEY=$${BTCPAY_API_KEY:-demo-btcpay-key} BTCPAY_WEBHOOK_SECRET=$${BTCPAY_WEBHOOK_SECRET:-demo-btcpay-secret} \
	$(VENV)/bin/honcho -f Procfile start

test: $(STAMP) e2e-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The browser tests drive Debian's chromium; install it when it is missing (needs root).
e2e-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "could not install chromium: browser tests will not run"; \
	  else echo "chromium is not installed: browser tests will not run (apt-get install chromium)"; fi; }

# A bounded chaos run (at most 10 minutes; CHAOS_ARGS="--minutes 6"): see chaos/run.py.
chaos: $(STAMP)
	$(PY) -m chaos.run $(CHAOS_ARGS)

# Benchmarks on this machine's PostgreSQL and Redis, against the README's targets
# (BENCH_ARGS="--quick" for a short rehearsal): see tests/bench/run_all.py. wrk comes from Debian.
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "wrk is needed: apt-get install wrk"; exit 1; fi; }
	$(PY) -m tests.bench.run_all $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint . --lint --quiet

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

# CI's quick checks before each commit (.pre-commit-config.yaml).
hooks: $(STAMP)
	$(VENV)/bin/pre-commit install

clean:
	rm -rf var

# Screenshots of every customer page at 390 and 1280 px (tests/e2e/pages.py), light theme:
# the key pages into docs/screenshots/, or every page with SCREENSHOTS_ALL=1 SCREENSHOTS=dir.
SCREENSHOTS ?= docs/screenshots
screenshots: $(STAMP) e2e-deps
	PANEL_SCREENSHOTS=$(abspath $(SCREENSHOTS)) PANEL_SCREENSHOTS_ALL=$(SCREENSHOTS_ALL) \
	  $(VENV)/bin/pytest -q tests/e2e/test_every_page.py -k "fits and not 360"
