# The two commands of the README:
#   make serve   build the site and serve site + form on http://127.0.0.1:8000
#   make test    run the whole test suite (installs what it needs first)
# Everything else here is a step of those two.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test install browser caddy services check build lint bench

$(BIN)/policy-site: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/policy-site

serve: install
	$(BIN)/policy-site build
	$(BIN)/policy-site serve

# Debian's Chromium for the browser tests (never a browser downloaded by a test tool).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

# Debian's Caddy for the production topology test (tests/test_topology.py runs
# deploy/Caddyfile). Installed only, never started as a service here.
caddy:
	@command -v caddy >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy; }

# PostgreSQL and Redis for the scale-out tests: start them if they are not running.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
	  { service postgresql start >/dev/null 2>&1 || pg_ctlcluster 15 main start; }
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || \
	  redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes

test: install browser caddy services
	$(BIN)/policy-site check
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

check: install
	$(BIN)/policy-site check

build: install
	$(BIN)/policy-site build

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/site_build.py
