# The two commands of the README:
#   make serve   build the site and serve site + form on http://127.0.0.1:8000
#   make test    run the whole test suite (installs what it needs first)
# Everything else here is a step of those two.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# The browser of the browser tests (tests/browser.py reads the same variable).
POLICY_CHROMIUM ?= /usr/bin/chromium
export POLICY_CHROMIUM

# apt and service need root. As root (Debian, this project's CI) nothing is
# prefixed; a user (GitHub's hosted runners) gets sudo where there is one.
SUDO := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && echo sudo)

# Whether something answers on 127.0.0.1:PORT. Plain Python, because service
# containers (GitHub) come without pg_isready or redis-cli on the runner.
LISTENING = $(PYTHON) -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 3).close()'

# With COMPARE_WITH=origin/main the check's GitHub report compares the policy texts with it.
COMPARE_WITH ?=

.PHONY: serve test install browser caddy runtimes lighthouse services check audit build lint bench

$(BIN)/policy-site: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/policy-site

serve: install
	$(BIN)/policy-site build
	$(BIN)/policy-site serve

# Debian's Chromium for the browser tests (never a browser downloaded by a test tool),
# unless POLICY_CHROMIUM already names a browser that is there.
browser:
	@[ -x "$(POLICY_CHROMIUM)" ] || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium; }
	@[ -x "$(POLICY_CHROMIUM)" ] || { \
	  echo "No browser at $(POLICY_CHROMIUM): set POLICY_CHROMIUM to a Chromium or Chrome." >&2; \
	  exit 1; }

# Debian's Caddy for the production topology test (tests/test_topology.py runs
# deploy/Caddyfile). Installed only; the test starts its own, on loopback ports.
caddy:
	@command -v caddy >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends caddy; }

# Java for the W3C Nu HTML checker (tests/test_html_validity.py) and Node.js with npm for
# Lighthouse: Debian's, installed only when missing (this project's machines and GitHub's
# runners have both).
JAVA ?= java
NPM  ?= npm
runtimes:
	@command -v $(JAVA) >/dev/null 2>&1 && command -v $(NPM) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends \
	      $$(command -v $(JAVA) >/dev/null 2>&1 || echo default-jre-headless) \
	      $$(command -v $(NPM) >/dev/null 2>&1 || echo nodejs npm); }

# Lighthouse 12.2.3 for tests/test_lighthouse.py and bench/lighthouse.py, pinned with its
# lock file in tools/lighthouse (node_modules/ there is git-ignored). Needs Node 20+.
lighthouse: runtimes tools/lighthouse/node_modules/.package-lock.json

tools/lighthouse/node_modules/.package-lock.json: tools/lighthouse/package.json tools/lighthouse/package-lock.json
	cd tools/lighthouse && npm ci --no-audit --no-fund --loglevel=error

# PostgreSQL and Redis for the scale-out tests: start them only if nothing answers
# (on GitHub they are service containers, already answering).
services:
	@$(LISTENING) 5432 2>/dev/null || \
	  { $(SUDO) service postgresql start >/dev/null 2>&1 || $(SUDO) pg_ctlcluster 15 main start; }
	@$(LISTENING) 6379 2>/dev/null || \
	  redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes

# The check runs again in plain text: on GitHub the workflow's own check step has
# already annotated the files, and twice would double every annotation.
test: install browser caddy runtimes lighthouse services
	$(BIN)/policy-site check --format text
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

check: install
	$(BIN)/policy-site check $(if $(COMPARE_WITH),--compare-with $(COMPARE_WITH))

# A report of the GDPR Art. 13 items (in the job summary on GitHub); it fails only
# with AUDIT_STRICT=yes, since the binding text is the editors' decision.
audit: install
	$(BIN)/policy-site audit $(if $(filter yes,$(AUDIT_STRICT)),--strict)

build: install
	$(BIN)/policy-site build

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/site_build.py
