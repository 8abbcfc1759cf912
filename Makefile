# The two commands: `make run` (the panel, with demo data) and `make test` (the suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test venv lint typecheck hooks e2e-deps gettext-deps messages locale clean chaos bench screenshots
# The shipped languages besides English (settings.LANGUAGES), as gettext locale names.
LOCALES := es pt_BR tr ru
# What `make messages` does not read: tools and tests, never shown to customers.
MESSAGES_IGNORE := --ignore=var --ignore=node_modules --ignore=tests --ignore=chaos --ignore=devtools --ignore=simulators --ignore=bench

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) is needed (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP) locale
	mkdir -p var/broker/out var/broker/processed
	$(PY) manage.py migrate --noinput
	# PayPal with the demo credentials of the local simulator (simulators/paypal) unless set.
	PAYPAL_API_URL=$${PAYPAL_API_URL:-http://127.0.0.1:8910} PAYPAL_CLIENT_ID=$${PAYPAL_CLIENT_ID:-demo-client} PAYPAL_CLIENT_SECRET=$${PAYPAL_CLIENT_SECRET:-demo-secret} PAYPAL_WEBHOOK_ID=$${PAYPAL_WEBHOOK_ID:-demo-webhook} \
	BTCPAY_URL=$${BTCPAY_URL:-http://127.0.0.1:8911} BTCPAY_STORE_ID=$${BTCPAY_STORE_ID:-demo-store} \
	BTCPAY_API_KEY=$${BTCPAY_API_KEY:-demo-btcpay-key} BTCPAY_WEBHOOK_SECRET=$${BTCPAY_WEBHOOK_SECRET:-demo-btcpay-secret} \
	CURRENCY_RATES_URL=$${CURRENCY_RATES_URL:-http://127.0.0.1:8912/api/latest.json} CURRENCY_RATES_API_KEY=$${CURRENCY_RATES_API_KEY:-demo-rates-key} \
	$(VENV)/bin/honcho -f Procfile start

# The suite runs in TEST_WORKERS processes (pytest-xdist; each has its own test database and
# Redis databases, see tests/parallel.py; TEST_WORKERS=0 runs it in this process).
# With RABBITMQ_TEST_URL (amqp://user:pass@host:5672/vhost; CI sets it) the tests that run a
# real Celery worker run again with RabbitMQ as the broker, in one process (one vhost).
TEST_WORKERS ?= 2
test: $(STAMP) e2e-deps locale
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)
	@if [ -n "$$RABBITMQ_TEST_URL" ]; then \
	  echo "== the worker tests again, on RabbitMQ"; \
	  CELERY_BROKER_URL="$$RABBITMQ_TEST_URL" $(VENV)/bin/pytest -q -m broker tests/orders/test_worker.py tests/test_celery.py tests/webhooks/test_pace.py; \
	fi

# The catalogues: extract every marked text into locale/<lang>/LC_MESSAGES/django.po (then
# translate the new entries; tests/test_translations.py fails until every one is).
messages: $(STAMP) gettext-deps
	$(PY) manage.py makemessages --no-obsolete --add-location=file $(MESSAGES_IGNORE) $(addprefix -l ,$(LOCALES))

# Compiled catalogues (.mo, not committed) for the running panel and the tests.
locale: $(STAMP) gettext-deps
	@if command -v msgfmt >/dev/null 2>&1; then \
	  $(PY) manage.py compilemessages --ignore=.venv --ignore=var --ignore=node_modules >/dev/null; \
	else echo "msgfmt is not installed: pages will be in English only (apt-get install gettext)"; fi

# makemessages and compilemessages use GNU gettext; install Debian's when it is missing (needs root).
gettext-deps:
	@command -v msgfmt >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null) \
	      || echo "could not install gettext: catalogues will not be compiled"; \
	  else echo "gettext is not installed (apt-get install gettext)"; fi; }

# The browser tests drive Debian's chromium; install it when it is missing (needs root).
e2e-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "could not install chromium: browser tests will not run"; \
	  else echo "chromium is not installed: browser tests will not run (apt-get install chromium)"; fi; }

# A bounded chaos run (at most 10 minutes; CHAOS_ARGS="--minutes 6"): see chaos/run.py.
# With --hosts the PostgreSQL relay is Debian's socat, installed here when missing (root).
chaos: $(STAMP)
	@case "$(CHAOS_ARGS)" in *--hosts*) command -v socat >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat >/dev/null; \
	  else echo "socat is not installed (apt-get install socat)"; fi; };; esac
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
