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

.PHONY: install serve test test-browser browser bench lint clean loadtest overload soak fuzz train-age train-mebeauty train-scut-ldl train-quality study

$(STAMP): pyproject.toml setup.py Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q "setuptools==80.10.2" wheel 2>&1 | $(QUIET_PIP)
	$(PIP) install -q --no-build-isolation -e ".[dev,ray]" 2>&1 | $(QUIET_PIP)
	$(PIP) install -q --no-deps "facenet-pytorch==2.6.0" 2>&1 | $(QUIET_PIP)
	# scripts/bench.py's large-photo baseline; --no-deps: it would build dlib, here dlib-bin
	$(PIP) install -q --no-deps "face-recognition==1.3.0" 2>&1 | $(QUIET_PIP)
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/facecore serve --host $(HOST) --port $(PORT)

# PYTEST_ARGS: more pytest arguments, e.g. PYTEST_ARGS="-m 'not slow'".
test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The web page in a real headless Chromium (tests/app/test_browser.py; selenium comes with the
# dev extra). Debian's chromium and chromium-driver are installed with apt when missing and this
# is root (or has sudo without a password); otherwise it says so and the browser tests skip.
APT_BROWSER := chromium chromium-driver
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "make browser: chromium/chromedriver missing and apt-get needs root: not installed; the browser tests will skip"; exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "make browser: no apt-get: chromium not installed; the browser tests will skip"; exit 0; fi; \
	echo "make browser: installing $(APT_BROWSER) with apt-get"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$sudo apt-get install -y -q $(APT_BROWSER) >/dev/null 2>&1 \
	  || { $$sudo apt-get update -q >/dev/null 2>&1 && $$sudo apt-get install -y -q $(APT_BROWSER) >/dev/null; } \
	  || echo "make browser: apt-get could not install $(APT_BROWSER); the browser tests will skip"

test-browser: $(STAMP) browser
	$(PY) -m pytest -q tests/app/test_browser.py

# The HTTP service under load: 8 clients for 2 minutes on /v1/analyze (scripts/loadtest.py).
CLIENTS  ?= 8
DURATION ?= 120
loadtest: $(STAMP)
	$(PY) scripts/loadtest.py --clients $(CLIENTS) --duration $(DURATION) --out loadtest.json --check

# Overload (issue 22): `facecore serve` with its defaults; 8 clients that honour Retry-After for
# OVERLOAD_SECONDS, then 64 that ignore it, posting 20 SCUT-FBP5500 photos; fails unless the 64
# clients get at least 0.85x the 8 clients' successful requests a second, p99 of all answers
# <= 1 s, no status but 200 and 503, and /readyz answers afterwards (docs/serving.md).
OVERLOAD_SECONDS ?= 40
overload: $(STAMP)
	$(PY) scripts/loadtest.py --overload --seconds $(OVERLOAD_SECONDS) --out overload.json --check-overload

# Soak: 8 clients for SOAK_SECONDS (30 minutes), the server's memory and open descriptors sampled
# every 10 s; fails on a status but 200/503 or on growth between the first and last quarter.
SOAK_SECONDS ?= 1800
soak: $(STAMP)
	$(PY) scripts/loadtest.py --soak --seconds $(SOAK_SECONDS) --out soak.json

# Schemathesis with many examples per route: on the fake models, then on the real ones.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	FACECORE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/app/test_fuzz.py
	FACECORE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FACECORE_FUZZ_MODELS=real $(PY) -m pytest -q -p no:cacheprovider tests/app/test_fuzz.py

# Long trainings (resumable; caches in .cache/): see each model card for the figures.
train-age: $(STAMP)
	$(PY) scripts/train_age.py --data ../shared/data --out models/age_utkface
train-mebeauty: $(STAMP)
	$(PY) scripts/train_attractiveness_ldl.py --dataset mebeauty --data ../shared/data --out models/attractiveness_mebeauty
train-scut-ldl: $(STAMP)
	$(PY) scripts/train_attractiveness_ldl.py --dataset scut-fbp5500 --data ../shared/data --out models/attractiveness_scut
# The face quality model (RankIQA); its error table reuses the age and SCUT folds' checkpoints.
train-quality: $(STAMP)
	$(PY) scripts/train_quality.py --data ../shared/data --out models/quality_faces
# The dating-site paper's age-attractiveness study (docs/age.md).
study: $(STAMP)
	$(VENV)/bin/facecore study age-attractiveness --data ../shared/data --out study/age-attractiveness

bench: $(STAMP)
	$(PY) scripts/bench.py --out bench.json
	$(PY) scripts/bench_batch.py --data ../shared/data --out bench_batch.json

lint: $(STAMP)
	$(VENV)/bin/ruff check facecore app scripts tests
	$(VENV)/bin/ruff format --check facecore app scripts tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
