# facecore: one-command set-up, test, serve, bench and lint.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

SHELL       := bash
.SHELLFLAGS := -eo pipefail -c
# pip warns about every package missing from this machine's local mirrors; keep real errors only.
QUIET_PIP   := { grep -v "^WARNING: Location" || true; }

.PHONY: install serve test bench lint clean

$(STAMP): pyproject.toml setup.py Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "setuptools==80.10.2" wheel 2>&1 | $(QUIET_PIP)
	$(PIP) install -q --no-build-isolation -e ".[dev]" 2>&1 | $(QUIET_PIP)
	$(PIP) install -q --no-deps "facenet-pytorch==2.6.0" 2>&1 | $(QUIET_PIP)
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/facecore serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) scripts/bench.py --out bench.json

lint: $(STAMP)
	$(VENV)/bin/ruff check facecore app scripts tests
	$(VENV)/bin/ruff format --check facecore app scripts tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
