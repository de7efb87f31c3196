# Regional Tele-Health Cloud — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEB_SOURCES := $(shell find web/src web/public web/index.html web/package.json web/package-lock.json web/vite.config.* web/tsconfig*.json -type f 2>/dev/null)

.PHONY: run test install web otp lint typecheck bench-gateway bench-ecg bench-imaging bench-consult clean system-deps browser-deps

## run: install, build the web app, start the whole platform with demo data (Ctrl-C stops it)
run: install web
	$(PY) -m infra.local.run

## test: install, build the web app, lint and type-check, run the whole suite against real PostgreSQL, Redis,
## S3, Celery workers and Chromium
test: install web browser-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

install: $(STAMP)

$(STAMP): pyproject.toml
	@bash infra/local/system-deps.sh python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

## web: build the browser app into web/dist (the gateway serves it at /)
web: web/dist/index.html

web/dist/index.html: $(WEB_SOURCES)
	@bash infra/local/system-deps.sh node
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

browser-deps:
	@bash infra/local/system-deps.sh chromium

## otp: print the current TOTP codes of the demo admin accounts
otp: install
	@set -a; [ -f var/stack.env ] && . var/stack.env; set +a; $(PY) -m gateway.identity.otp

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

bench-gateway: install
	$(PY) -m bench.gateway

bench-ecg: install
	$(PY) -m bench.ecg

## bench-imaging: our DICOMweb archive side by side with Orthanc (apt-get installs it), plus a 1M-instance QIDO run
bench-imaging: install
	$(PY) -m bench.imaging

## bench-consult: a 3-party aiortc video room through the gateway (CPU, fps, join time, 2-min RSS soak) and the
## consult API under 50 users; the soak of record: .venv/bin/python -m bench.consult --soak-minutes 30 --profile
bench-consult: install
	$(PY) -m bench.consult

clean:
	rm -rf var web/dist
