# facecore: the HTTP service and the batch CLI, CPU only, with every model baked in.
#
#   docker build -t facecore .
#   docker run -p 8000:8000 facecore                                  # serves on 0.0.0.0:8000
#   docker run --no-healthcheck -v "$PWD/photos:/data" facecore facecore batch /data -o /data/out.csv
#
# The default command is the service; any other command runs as it is (there is no ENTRYPOINT).
# The container runs as uid 10001: a folder mounted for `batch` must be writable by it (or pass
# --user "$(id -u):$(id -g)"). Stop with `docker stop -t 40` so that in-flight requests can
# finish (FACECORE_SHUTDOWN_TIMEOUT_S is 30 s; Docker's default is 10 s). compose.yaml has the
# limits and a Ray cluster; CONTRIBUTING.md ("Docker") how to build where images cannot be pulled.
#
# Build args:
#   BASE_IMAGE   a Debian bookworm image with python3 (3.11) and its venv module; both stages use
#                it, so that the venv built in the first runs in the second.
#   TORCH_INDEX  where torch and torchvision come from: the CPU build, so that no CUDA library is
#                installed (checked at the end). Empty: from the main index as any other package
#                (on Linux x86-64 that is the CUDA build, several GB larger: only for building
#                where the CPU index cannot be reached; the CPU check is then skipped).
#   EXTRAS       comma-separated extras of facecore to install, e.g. "ray" for `facecore batch
#                --engine ray` and the Ray nodes of compose.yaml (the build fails if facecore
#                has no such extra: pip alone would only warn).
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST
#                pip's own settings, for a build behind a package mirror (unset when empty).
#   A CA bundle for pip (a TLS-intercepting proxy, a mirror with a private CA): put the *.crt or
#   *.pem files in docker/ca/ before building; pip then trusts them and its own roots. They stay
#   in the build stage; the image never holds them. (Not a `RUN --mount=type=secret`: that needs
#   BuildKit, and this file builds with the classic builder of Debian's docker.io as well.)
# Build args are visible in the build stage's history: use a mirror that needs no password rather
# than credentials in an index URL.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# ------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_TRUSTED_HOST=
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG EXTRAS=

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_DEFAULT_TIMEOUT=180

COPY docker/pip.sh /usr/local/bin/build-pip
COPY docker/ca/ /tmp/ca/
RUN python3 -m venv /opt/venv

# The pinned dependencies first (pyproject.toml only), so that a change to the code does not
# reinstall torch. torch and torchvision come from TORCH_INDEX alone (--no-deps); everything else,
# their own dependencies included, from the main index. A "2.14.1+cpu" satisfies "==2.14.1".
# facenet-pytorch pins torch<=2.3, so it goes in last without its dependencies (as `make install`).
WORKDIR /src
COPY pyproject.toml ./
RUN set -eu; \
    /opt/venv/bin/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" > /tmp/requirements.txt; \
    if [ -n "$TORCH_INDEX" ]; then \
        grep -E '^(torch|torchvision)==' /tmp/requirements.txt > /tmp/torch.txt; \
        sh /usr/local/bin/build-pip install --no-deps --index-url "$TORCH_INDEX" -r /tmp/torch.txt; \
    fi; \
    sh /usr/local/bin/build-pip install -r /tmp/requirements.txt; \
    sh /usr/local/bin/build-pip install --no-deps "facenet-pytorch==2.6.0"

# facecore itself, as the wheel that tests/test_wheel.py checks: its code, app/ and models/
# (installed as the package facecore_models, found without the repository).
COPY setup.py pyproject.toml README.md ./
COPY facecore ./facecore
COPY app ./app
COPY models ./models
RUN set -eu; \
    sh /usr/local/bin/build-pip wheel --no-deps --no-build-isolation -w /tmp/dist .; \
    wheel=$(ls /tmp/dist/facecore-*.whl); \
    sh /usr/local/bin/build-pip install "${wheel}${EXTRAS:+[$EXTRAS]}"

# ------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

ARG EXTRAS=
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

LABEL org.opencontainers.image.title="facecore" \
      org.opencontainers.image.description="Face analysis and attractiveness estimation on a CPU: HTTP service and batch CLI" \
      org.opencontainers.image.licenses="MIT (code); bundled models: non-commercial research only (models/README.md)"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8

RUN groupadd --system --gid 10001 facecore \
    && useradd --system --uid 10001 --gid facecore --create-home --home-dir /home/facecore \
       --shell /usr/sbin/nologin facecore \
    && mkdir /data && chown facecore:facecore /data

COPY --from=builder /opt/venv /opt/venv
COPY docker/check_image.py /usr/local/share/facecore/check_image.py

USER 10001:10001
WORKDIR /data

# Every model resolves (sha256 checked) for this user, the service and the CLI import, torch is the
# CPU build with no CUDA package, and EXTRAS are real extras. Rerun it by hand:
#   docker run --rm IMAGE python /usr/local/share/facecore/check_image.py --cpu-torch
RUN python /usr/local/share/facecore/check_image.py --extras "$EXTRAS" ${TORCH_INDEX:+--cpu-torch}

# ---- Service settings (app/core/config.py; README "Settings"): each ENV below is the default,
# written out; override any with `docker run -e` or compose's `environment`. The ones with no
# single default are comments (NAME=EXAMPLE  what): set them at run time.
#   FACECORE_API_KEYS=key1,key2                      API keys for /v1/* (unset: every route is open
#                                                    and a warning is logged); a secret, so never
#                                                    baked into an image
#   FACECORE_MAX_REQUEST_BYTES=28027562              whole request body (unset: the image limit
#                                                    x 4/3 + 64 KiB, 28027562 with the defaults)
#   FACECORE_QUALITY_THRESHOLD=0.6                   faces with a lower quality get a warning (unset:
#                                                    the quality model's recommended 0.60)
# The analysis settings are facecore's AnalyzerConfig, nested with "__". Comments, not ENV: a
# written-out default would clash with its alternatives (FACECORE_ANALYZER__DETECTOR=hog next to
# an ENV FACECORE_ANALYZER__DETECTOR__NAME=auto, or STAGE_OPTIONS as one JSON object next to its
# nested keys). Unset, each is AnalyzerConfig's default:
#   FACECORE_ANALYZER__DETECTOR__NAME=auto           auto, hog, mtcnn, blazeface_back or blazeface_short (also FACECORE_ANALYZER__DETECTOR=hog)
#   FACECORE_ANALYZER__DETECTOR__HOG_UPSAMPLE=0      HOG upsampling steps, 0..3
#   FACECORE_ANALYZER__DETECTOR__HOG_THRESHOLD=0.0   least HOG SVM margin
#   FACECORE_ANALYZER__DETECTOR__MTCNN_THRESHOLD=0.9 least MTCNN face probability
#   FACECORE_ANALYZER__DETECTOR__MTCNN_MIN_FACE_SIZE=20  smallest face side MTCNN looks for, px
#   FACECORE_ANALYZER__DETECTOR__BLAZEFACE_THRESHOLD=0.65 least BlazeFace face probability
#   FACECORE_ANALYZER__DETECTOR__MAX_SIDE=1280       images are shrunk to this longer side to detect
#   FACECORE_ANALYZER__DETECTOR__LARGE_JPEG_SHARE=0.5  a JPEG 2x MAX_SIDE is detected on its DCT copy that fits, if it keeps this pixel share (1: always MAX_SIDE)
#   FACECORE_ANALYZER__MAX_FACES=20                  faces kept per image (the largest)
#   FACECORE_ANALYZER__STAGES=landmarks,attractiveness   stages to run (unset: every default head)
#   FACECORE_ANALYZER__STAGE_OPTIONS={"attractiveness":{"model":"attractiveness_mebeauty"}}  per stage
#   FACECORE_ANALYZER__STAGE_OPTIONS__ATTRACTIVENESS__MODEL=attractiveness_scut  the same, one key
#   FACECORE_ANALYZER__LIMITS__MAX_BYTES=20971520    largest image file, bytes
#   FACECORE_ANALYZER__LIMITS__MAX_PIXELS=40000000   largest width x height
#   FACECORE_ANALYZER__LIMITS__MIN_SIDE=16           smallest width and height, px
#   FACECORE_ANALYZER__THREADS=auto                  torch threads of a beautify/average call: auto (at
#                                                    most FACECORE_WORKER_THREADS, fewer while other
#                                                    processes use the cores) or N; analysis runs
#                                                    with FACECORE_WORKER_THREADS
#   FACECORE_MODELS_DIR=/models                      another models folder (unset: the bundled one)

# Most images in one request.
ENV FACECORE_MAX_IMAGES=8
# Load the models at start-up (/readyz is 503 "loading" until done).
ENV FACECORE_PRELOAD=true
# Origins allowed by CORS, comma-separated, "*" for any; empty: no CORS headers.
ENV FACECORE_CORS_ORIGINS=""
# "process" (worker processes) or "thread".
ENV FACECORE_WORKER_MODE=process
# Workers; 0: one per CPU of the affinity mask. A --cpus quota does not narrow that mask: with a
# quota, set this to it (compose.yaml does).
ENV FACECORE_WORKERS=0
# torch / BLAS / OpenMP / OpenCV threads per worker.
ENV FACECORE_WORKER_THREADS=1
# Images that may wait for a worker; more is a 503 with Retry-After.
ENV FACECORE_QUEUE_SIZE=32
# Longest expected wait of an admitted image, s (images waiting x the workers' measured seconds
# per image / workers); more is a 503 with Retry-After (0: only the queue size bounds it).
ENV FACECORE_QUEUE_WAIT_S=0.5
# Most images one worker task takes (1: no batching).
ENV FACECORE_BATCH_MAX=4
# How long a worker waits for more images to fill a batch, ms.
ENV FACECORE_BATCH_WAIT_MS=0
# Time limit of a request, s (504 after).
ENV FACECORE_REQUEST_TIMEOUT_S=30
# The request body must arrive within this, s (408 after).
ENV FACECORE_BODY_TIMEOUT_S=10
# Retry-After of a 503, s.
ENV FACECORE_RETRY_AFTER_S=1
# Refusals of a full queue answered a second at once; past it each waits its turn (0: never).
ENV FACECORE_REFUSAL_RATE=100
# Longest a refusal waits its turn, s.
ENV FACECORE_REFUSAL_WAIT_S=0.5
# After SIGTERM, how long in-flight requests may take, s (keep `docker stop -t` above it).
ENV FACECORE_SHUTDOWN_TIMEOUT_S=30
# Log records as "json" (one object a line) or "text".
ENV FACECORE_LOG_FORMAT=json
# Level of the app and facecore loggers.
ENV FACECORE_LOG_LEVEL=INFO

EXPOSE 8000

# Ready once every worker has loaded its models; no curl in the image, and no proxy for localhost.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; r = u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/readyz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

STOPSIGNAL SIGTERM
CMD ["facecore", "serve", "--host", "0.0.0.0", "--port", "8000"]
