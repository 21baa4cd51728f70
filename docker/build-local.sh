#!/usr/bin/env bash
# Build the facecore image on a machine that cannot pull images, then use it as a person would.
#
#   bash docker/build-local.sh          # as root, on a Debian bookworm host (CONTRIBUTING.md)
#
# 1. Installs Debian's docker.io and debootstrap when missing (no service is started by apt) and
#    starts dockerd by hand when no daemon answers; if it cannot start with its defaults, again
#    with --iptables=false --bridge=none, and everything then uses the host's network.
# 2. Makes a bookworm base image with python3.11 and its venv module by debootstrap and
#    `docker import` ($BASE_IMAGE), unless it already exists.
# 3. Builds the Dockerfile on it (--build-arg BASE_IMAGE) with the host's network and the host's CA
#    bundle for pip (copied to docker/ca/host-ca.crt, removed at exit). torch comes from the CPU
#    index; when that cannot be reached from here, from the main index instead, which is the CUDA
#    build: the summary then says so (REQUIRE_CPU_TORCH=1 makes that an error).
# 4. Smoke test, with the container read-only and a tmpfs /tmp as compose.yaml runs it: the user is
#    not root; /readyz answers 200 and Docker's health status turns healthy; POST
#    tests/fixtures/obama.jpg to /v1/analyze gives the golden attractiveness and age
#    (tests/fixtures/golden_scores.json); `facecore batch` over tests/fixtures into a mounted
#    folder writes a CSV with a row for every image and the golden score for obama.jpg; `docker
#    stop` ends the service within its grace period (exit 0 or 143, not a SIGKILL).
# 5. Prints the build log's last lines, the image size and where the logs are ($LOG_DIR).
#
# Settings (environment variables): IMAGE (facecore:local), BASE_IMAGE (facecore-base:bookworm),
# DEBIAN_MIRROR, CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt), TORCH_INDEX (the CPU index;
# empty: the main index), REQUIRE_CPU_TORCH, EXTRAS, PIP_INDEX_URL / PIP_EXTRA_INDEX_URL /
# PIP_TRUSTED_HOST, PORT (18000, the smoke test's host port), LOG_DIR (/tmp/facecore-docker),
# DOCKER (the client; default Debian's /usr/bin/docker, the daemon's own version), KEEP_DOCKERD=1
# (leave a dockerd that this started running).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

IMAGE=${IMAGE:-facecore:local}
BASE_IMAGE=${BASE_IMAGE:-facecore-base:bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
TORCH_INDEX=${TORCH_INDEX-https://download.pytorch.org/whl/cpu}
EXTRAS=${EXTRAS:-}
PORT=${PORT:-18000}
LOG_DIR=${LOG_DIR:-/tmp/facecore-docker}
NAME=facecore-smoke-$$
CA_COPY=$ROOT/docker/ca/host-ca.crt
DOCKERD_PID=
NET=bridge
ROOTFS=
WORK=

log() { printf '\n== %s\n' "$*"; }
die() {
    printf 'build-local: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    set +e
    if [ -n "${DOCKER:-}" ]; then
        "$DOCKER" rm -f "$NAME" >/dev/null 2>&1
    fi
    rm -f "$CA_COPY"
    [ -z "$ROOTFS" ] || rm -rf "$ROOTFS"
    [ -z "$WORK" ] || rm -rf "$WORK"
    if [ -n "$DOCKERD_PID" ] && [ -z "${KEEP_DOCKERD:-}" ]; then
        kill "$DOCKERD_PID" 2>/dev/null && wait "$DOCKERD_PID" 2>/dev/null
    fi
    exit "$rc"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || die "run as root: it installs packages, starts dockerd and runs debootstrap"
mkdir -p "$LOG_DIR"

# ---- 1. docker.io, debootstrap, dockerd --------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then # no postinst may start dockerd: it is started below
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${need[@]}" ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }
    [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

# The client of docker.io has the daemon's version; another one on PATH may need buildx.
if [ -z "${DOCKER:-}" ]; then
    if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER_BUILDKIT=0 # the classic builder: no buildx needed, and --network host just works

docker_up() { "$DOCKER" info >/dev/null 2>&1; }
start_dockerd() {
    dockerd "$@" >>"$LOG_DIR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    local _
    for _ in $(seq 60); do
        docker_up && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 1
    done
    kill "$DOCKERD_PID" 2>/dev/null && wait "$DOCKERD_PID" 2>/dev/null
    DOCKERD_PID=
    return 1
}
if ! docker_up; then
    log "starting dockerd (log: $LOG_DIR/dockerd.log)"
    if ! start_dockerd; then
        tail -n 15 "$LOG_DIR/dockerd.log" >&2
        log "dockerd did not start with its defaults: again with --iptables=false --bridge=none"
        start_dockerd --iptables=false --bridge=none ||
            { tail -n 30 "$LOG_DIR/dockerd.log" >&2; die "dockerd did not start"; }
        NET=host
    fi
fi
"$DOCKER" version --format 'docker client {{.Client.Version}}, daemon {{.Server.Version}}'

# ---- 2. the base image: debootstrap + docker import --------------------------------------------
if ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    ROOTFS=$(mktemp -d /var/tmp/facecore-rootfs.XXXXXX)
    log "debootstrap bookworm into $ROOTFS from $DEBIAN_MIRROR (log: $LOG_DIR/debootstrap.log)"
    debootstrap --variant=minbase \
        --include=python3.11,python3.11-venv,python3,python3-venv,ca-certificates \
        bookworm "$ROOTFS" "$DEBIAN_MIRROR" >"$LOG_DIR/debootstrap.log" 2>&1 ||
        { tail -n 30 "$LOG_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
    chroot "$ROOTFS" python3 -c \
        'import sys, ensurepip, venv; assert sys.version_info[:2] == (3, 11), sys.version'
    chroot "$ROOTFS" apt-get clean
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
    log "docker import -> $BASE_IMAGE"
    tar --numeric-owner -C "$ROOTFS" -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$BASE_IMAGE"
    rm -rf "$ROOTFS"
    ROOTFS=
fi

# ---- 3. docker build ---------------------------------------------------------------------------
if [ -r "$CA_BUNDLE" ]; then
    cp "$CA_BUNDLE" "$CA_COPY"
else
    log "WARNING: no CA bundle at $CA_BUNDLE: pip in the build trusts its own roots only"
fi
torch_from="the CPU index $TORCH_INDEX"
if [ -z "$TORCH_INDEX" ]; then
    torch_from="the main index (TORCH_INDEX is empty)"
elif ! curl -fsS --max-time 30 -o /dev/null "${TORCH_INDEX%/}/torch/"; then
    [ -z "${REQUIRE_CPU_TORCH:-}" ] || die "$TORCH_INDEX cannot be reached from here"
    log "WARNING: $TORCH_INDEX cannot be reached from here: torch comes from the main index"
    TORCH_INDEX=
    torch_from="the main index, because the CPU index could not be reached"
fi

args=(--network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TORCH_INDEX=$TORCH_INDEX")
args+=(--build-arg "EXTRAS=$EXTRAS")
for var in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    [ -z "${!var:-}" ] || args+=(--build-arg "$var=${!var}")
done
log "docker build -t $IMAGE, torch from $torch_from (log: $LOG_DIR/build.log)"
started=$SECONDS
"$DOCKER" build "${args[@]}" -t "$IMAGE" . 2>&1 | tee "$LOG_DIR/build.log"
build_s=$((SECONDS - started))
rm -f "$CA_COPY"

if "$DOCKER" compose version >/dev/null 2>&1; then
    "$DOCKER" compose -f compose.yaml config -q && echo "compose.yaml: valid"
fi

# ---- 4. smoke test -----------------------------------------------------------------------------
log "smoke test of $IMAGE"
uid=$("$DOCKER" run --rm --no-healthcheck "$IMAGE" id -u)
[ "$uid" != 0 ] || die "the image runs as root"
cuda=$("$DOCKER" run --rm --no-healthcheck "$IMAGE" python -c 'import torch; print(torch.version.cuda)')
echo "user: uid $uid; torch CUDA version: $cuda"

run=(--read-only --tmpfs /tmp:size=64m --memory 4g)
if [ "$NET" = host ]; then # no bridge: the service binds the host's 0.0.0.0:8000 itself
    run+=(--network host)
    url=http://127.0.0.1:8000
else
    run+=(-p "127.0.0.1:$PORT:8000")
    url=http://127.0.0.1:$PORT
fi
"$DOCKER" run -d --name "$NAME" "${run[@]}" -e FACECORE_WORKERS=2 "$IMAGE" >/dev/null
t0=$SECONDS

ready=
for _ in $(seq 150); do
    if curl -fsS --noproxy '*' --max-time 3 "$url/readyz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = true ] || break
    sleep 2
done
[ -n "$ready" ] || { "$DOCKER" logs --tail 40 "$NAME" >&2; die "/readyz never answered 200"; }
echo "/readyz: 200 after about $((SECONDS - t0)) s"

health=
for _ in $(seq 60); do
    health=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")
    [ "$health" = starting ] || break
    sleep 2
done
[ "$health" = healthy ] || die "Docker's health status is '$health'"
echo "HEALTHCHECK: $health"

curl -fsS --noproxy '*' --max-time 60 -F file=@tests/fixtures/obama.jpg "$url/v1/analyze" \
    >"$LOG_DIR/analyze.json"
python3 - "$LOG_DIR/analyze.json" tests/fixtures/golden_scores.json <<'EOF'
import json, sys

r = json.load(open(sys.argv[1]))
golden = json.load(open(sys.argv[2]))["obama.jpg"][0]
p = r["faces"][0]["predictions"]
score, age = p["attractiveness"]["value"], p["age"]["value"]
assert abs(score - golden["score"]) <= 1.5e-3, f"attractiveness {score} != golden {golden['score']}"
assert abs(age - golden["age"]) <= 0.05, f"age {age} != golden {golden['age']}"
print(f"/v1/analyze obama.jpg: {len(r['faces'])} face, attractiveness {score:.4f} "
      f"(golden {golden['score']}), age {age:.2f} (golden {golden['age']})")
EOF

WORK=$(mktemp -d /tmp/facecore-batch.XXXXXX)
chown 10001:10001 "$WORK" # the image's user
"$DOCKER" run --rm --no-healthcheck --read-only --tmpfs /tmp:size=64m --memory 4g \
    -v "$ROOT/tests/fixtures:/data/in:ro" -v "$WORK:/data/out" \
    "$IMAGE" facecore batch /data/in -o /data/out/rows.csv --no-progress 2>&1 |
    tee "$LOG_DIR/batch.log"
cp "$WORK/rows.csv" "$LOG_DIR/batch.csv"
python3 - "$WORK/rows.csv" tests/fixtures <<'EOF'
import csv, json, pathlib, sys

rows = list(csv.DictReader(open(sys.argv[1], newline="")))
fixtures = pathlib.Path(sys.argv[2])
images = sorted(
    p.relative_to(fixtures).as_posix()
    for p in fixtures.rglob("*")
    if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
seen = sorted({r["path"].removeprefix("/data/in/") for r in rows})
assert seen == images, f"rows for {seen}, images {images}"
faces = [r for r in rows if not r["error"]]
golden = json.load(open(fixtures / "golden_scores.json"))["obama.jpg"][0]["score"]
(obama,) = [r for r in faces if r["path"] == "/data/in/obama.jpg"]
assert abs(float(obama["attractiveness"]) - golden) <= 1.5e-3, (obama["attractiveness"], golden)
print(f"batch: {len(rows)} rows, {len(faces)} faces, {len(images)} images; obama.jpg "
      f"{float(obama['attractiveness']):.4f} (golden {golden})")
EOF

"$DOCKER" stop -t 40 "$NAME" >/dev/null
code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$NAME")
"$DOCKER" logs "$NAME" >"$LOG_DIR/service.log" 2>&1
case $code in
0 | 143) echo "docker stop: exit $code" ;;
*) die "the service exited $code on docker stop (log: $LOG_DIR/service.log)" ;;
esac

# ---- 5. summary --------------------------------------------------------------------------------
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
log "build log, last lines ($LOG_DIR/build.log)"
tail -n 12 "$LOG_DIR/build.log"
log "summary"
echo "image $IMAGE on $BASE_IMAGE: $((size / 1000000)) MB; built in ${build_s} s"
echo "torch from $torch_from; CUDA version in the image: $cuda"
echo "smoke test passed; logs in $LOG_DIR"
