"""Static checks of the Docker files: ``Dockerfile``, ``.dockerignore`` and ``compose.yaml``.

Nothing here builds an image (``docker/build-local.sh`` does, see CONTRIBUTING.md); these catch
what drifts without one: a setting of :class:`app.core.config.Settings` that the Dockerfile does
not document or documents with a wrong default, a documented variable that no setting reads, a
file the Dockerfile copies that ``.dockerignore`` keeps out, and a compose healthcheck or Ray
address that no longer matches the image. The HEALTHCHECK's probe itself runs against a local
stand-in server.
"""

from __future__ import annotations

import ast
import dataclasses
import http.server
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from app.core.config import LIBRARY_VARIABLES, Settings, unknown_variables
from facecore import cli

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
PREFIX = "FACECORE_"
SERVE = ["facecore", "serve", "--host", "0.0.0.0", "--port", "8000"]


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str


@dataclasses.dataclass
class Stage:
    base: str
    instructions: list[Instruction]
    comments: list[str]


def _parse_dockerfile(text: str) -> tuple[list[Instruction], list[Stage]]:
    """(instructions before the first FROM, stages): continuation lines joined, comments kept
    per stage (a comment inside a continued instruction is dropped, as Docker does)."""
    head: list[Instruction] = []
    stages: list[Stage] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            if not pending and stages:
                stages[-1].comments.append(line)
            continue
        if not line and not pending:
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        keyword, _, args = pending.strip().partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append(Stage(instruction.args.split()[0], [], []))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            head.append(instruction)
    return head, stages


HEAD, STAGES = _parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = STAGES[-1]


def _args(stage: Stage, keyword: str) -> list[str]:
    return [i.args for i in stage.instructions if i.keyword == keyword]


def _env(stage: Stage) -> dict[str, str]:
    """Every ``ENV`` of a stage (``K=V ...`` and the old ``K V`` form)."""
    out: dict[str, str] = {}
    for args in _args(stage, "ENV"):
        words = shlex.split(args)
        if "=" not in words[0]:
            out[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            out[key] = value
    return out


def _documented(stage: Stage) -> dict[str, str]:
    """``FACECORE_*=EXAMPLE`` at the start of a comment line: the settings with no single
    default, which are documented as comments."""
    out: dict[str, str] = {}
    for line in stage.comments:
        if m := re.match(rf"#\s+({PREFIX}[A-Z0-9_]+)=(\S*)", line):
            out[m.group(1)] = m.group(2)
    return out


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def _healthcheck(stage: Stage) -> list[str]:
    (args,) = _args(stage, "HEALTHCHECK")
    _, _, command = args.partition("CMD ")
    return _exec_form(command.strip())


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``FACECORE_*`` variable from the test run leaks into a ``Settings()``."""
    for key in list(os.environ):
        if key.upper().startswith(PREFIX):
            monkeypatch.delenv(key)
    return monkeypatch


def _comment_only(name: str) -> bool:
    """Settings documented as comments: a secret (never baked into an image), one whose default
    is None (unset is not an empty string) and the nested analyzer (its alternatives clash)."""
    field = Settings.model_fields[name]
    nested = field.default_factory is not None
    return nested or field.default is None or isinstance(field.default, SecretStr)


# ----------------------------------------------------------------------------------------------
# Dockerfile
# ----------------------------------------------------------------------------------------------


def test_dockerfile_takes_the_base_image_as_a_build_arg() -> None:
    assert Instruction("ARG", "BASE_IMAGE=python:3.11-slim-bookworm") in HEAD
    assert len(STAGES) >= 2, "a builder stage and a runtime stage"
    assert [s.base for s in STAGES] == ["${BASE_IMAGE}"] * len(STAGES)


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = _args(FINAL, "USER")
    assert users, "the final stage has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0", ""}
    last_user = max(i for i, x in enumerate(FINAL.instructions) if x.keyword == "USER")
    cmd = max(i for i, x in enumerate(FINAL.instructions) if x.keyword == "CMD")
    assert last_user < cmd


def test_default_command_serves_on_all_interfaces_and_any_other_command_runs_as_is() -> None:
    assert _exec_form(_args(FINAL, "CMD")[-1]) == SERVE
    assert not _args(FINAL, "ENTRYPOINT"), "an ENTRYPOINT would prefix `docker run IMAGE CMD...`"
    assert "8000" in _args(FINAL, "EXPOSE")
    options = set(inspect.signature(cli.serve).parameters)
    assert {"host", "port"} <= options, "facecore serve lost --host/--port"


def test_torch_comes_from_the_cpu_index_and_is_checked() -> None:
    for stage in STAGES:
        for arg in _args(stage, "ARG"):
            if arg.startswith("TORCH_INDEX="):
                assert arg == "TORCH_INDEX=https://download.pytorch.org/whl/cpu"
    builder_runs = " ".join(r for s in STAGES[:-1] for r in _args(s, "RUN"))
    assert '--index-url "$TORCH_INDEX"' in builder_runs
    assert any("--cpu-torch" in r and "TORCH_INDEX" in r for r in _args(FINAL, "RUN"))


def test_builder_copies_what_the_wheel_test_builds_the_wheel_from() -> None:
    tree = ast.parse((ROOT / "tests" / "test_wheel.py").read_text(encoding="utf-8"))
    (sources,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SOURCES"
    ]
    copied = {src.rstrip("/") for s in STAGES[:-1] for src in _copy_sources(s)}
    assert set(sources) <= copied


def test_healthcheck_probes_readyz_and_fails_unless_ready() -> None:
    command = _healthcheck(FINAL)
    assert command[:2] == ["python", "-c"]
    code = command[2]
    assert "http://127.0.0.1:8000/readyz" in code

    answer = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(answer["status"] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        probe = code.replace("127.0.0.1:8000", f"127.0.0.1:{server.server_port}")
        # A proxy in the environment must not be used for the container's own address.
        env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
        env |= {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
        codes = {}
        for status in (200, 503):
            answer["status"] = status
            r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True)
            codes[status] = r.returncode
    finally:
        server.shutdown()
        server.server_close()
    assert codes[200] == 0 and codes[503] != 0, codes


def test_env_writes_out_every_setting_with_its_default(clean_env: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in _env(FINAL).items() if k.startswith(PREFIX)}
    documented = _documented(FINAL)
    expected_env = {PREFIX + n.upper() for n in Settings.model_fields if not _comment_only(n)}
    expected_comment = {PREFIX + n.upper() for n in Settings.model_fields if _comment_only(n)}
    assert set(env) == expected_env, "ENV lines and Settings fields differ"
    missing = sorted(
        n for n in expected_comment if not any(d == n or d.startswith(n + "__") for d in documented)
    )
    assert not missing, f"settings documented neither as ENV nor as a comment: {missing}"

    default = Settings().model_dump()
    for key, value in env.items():
        clean_env.setenv(key, value)
    written = Settings().model_dump()
    assert written == default, {
        k: (default[k], written[k]) for k in default if written[k] != default[k]
    }


def _variables(prefix: str, config: object) -> Iterator[tuple[str, object]]:
    """(variable, default) of every field of a nested config, and of the fields of its nested
    configs (whose own variable is a shortcut, e.g. FACECORE_ANALYZER__DETECTOR=hog)."""
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        name, value = f"{prefix}__{f.name.upper()}", getattr(config, f.name)
        yield name, value
        if dataclasses.is_dataclass(value):
            yield from _variables(name, value)


def test_every_analyzer_setting_is_documented_and_every_example_is_valid(
    clean_env: pytest.MonkeyPatch,
) -> None:
    variables = dict(_variables(PREFIX + "ANALYZER", Settings().analyzer))
    known = set(variables)
    leaves = {k for k, v in variables.items() if not dataclasses.is_dataclass(v)}
    documented = _documented(FINAL)
    stage_options = PREFIX + "ANALYZER__STAGE_OPTIONS"
    missing = sorted(leaves - set(documented))
    assert not missing, f"AnalyzerConfig fields not documented in the Dockerfile: {missing}"
    for name in documented:
        if name.startswith(PREFIX + "ANALYZER__"):
            assert name in known or name.startswith(stage_options + "__"), f"unknown {name}"
    assert unknown_variables(documented | _env(FINAL)) == []
    assert set(LIBRARY_VARIABLES) & set(documented) == {"FACECORE_MODELS_DIR"}

    for name, value in documented.items():
        clean_env.setenv(name, value)
        Settings()  # raises if the example is not a valid value
        clean_env.delenv(name)


# ----------------------------------------------------------------------------------------------
# .dockerignore
# ----------------------------------------------------------------------------------------------


def _copy_sources(stage: Stage) -> list[str]:
    out = []
    for args in _args(stage, "COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        out += [w for w in words if not w.startswith("--")][:-1]
    return out


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go's filepath.Match plus ``**``)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, _pattern(line.lstrip("!").strip().strip("/"))))
    return rules


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for keep, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            ignored = not keep
    return ignored


def test_dockerignore_sends_every_copied_file_and_nothing_private() -> None:
    rules = _rules()
    for stage in STAGES:
        for source in _copy_sources(stage):
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if "__pycache__" not in rel and not f.name.endswith(".pyc"):
                    assert not _ignored(rel, rules), f"{rel} (COPY {source}) is in .dockerignore"
    assert not _ignored("docker/ca/host-ca.crt", rules), "pip's CA bundle must reach the build"
    for private in (
        ".venv/bin/python",
        ".git/HEAD",
        ".cache/features/x.npz",
        "study/age-attractiveness/table.csv",
        "tests/test_wheel.py",
        "bench.json",
        "loadtest.json",
        "overload.json",
        "soak.json",
        "out.csv",
        "facecore/__pycache__/cli.cpython-311.pyc",
        "app/api/__pycache__/deps.cpython-311.pyc",
        "facecore.egg-info/PKG-INFO",
        ".pytest_cache/v/cache/nodeids",
    ):
        assert _ignored(private, rules), f"{private} would be sent to the daemon"


# ----------------------------------------------------------------------------------------------
# compose.yaml
# ----------------------------------------------------------------------------------------------

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]


def _default(value: object) -> str:
    """``${VAR:-default}`` -> default (what compose uses with VAR unset)."""
    return re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value))


def _seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", value)
    assert m, value
    return float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def test_compose_service_has_limits_a_read_only_root_and_the_image_healthcheck() -> None:
    api = SERVICES["api"]
    assert "profiles" not in api, "the service starts with a plain `docker compose up`"
    assert api["healthcheck"]["test"] == ["CMD", *_healthcheck(FINAL)]
    assert _default(api["ports"][0]).endswith(":8000")
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and re.fullmatch(r"\d+[mg]", limits["memory"])
    assert api["read_only"] is True and any(t.startswith("/tmp") for t in api["tmpfs"])
    assert api["restart"] in {"always", "unless-stopped", "on-failure"}
    env = {k: _default(v) for k, v in api["environment"].items()}
    assert unknown_variables(env) == []
    # With a cpus quota the service would start one worker per host CPU unless told.
    assert float(env["FACECORE_WORKERS"]) == float(limits["cpus"])
    shutdown = float(env.get("FACECORE_SHUTDOWN_TIMEOUT_S", Settings().shutdown_timeout_s))
    assert _seconds(api["stop_grace_period"]) > shutdown


def test_compose_ray_profile_has_a_head_and_a_worker_on_the_same_image() -> None:
    ray = {name: s for name, s in SERVICES.items() if "ray" in s.get("profiles", [])}
    heads = [n for n, s in ray.items() if "ray start --head" in " ".join(s["command"].split())]
    assert len(heads) == 1, ray.keys()
    (head,) = heads
    workers = [n for n, s in ray.items() if f"--address={head}:6379" in s["command"]]
    assert workers, f"no worker joins {head}:6379"
    image = SERVICES["api"]["image"]
    for name in [head, *workers]:
        assert SERVICES[name]["image"] == image, name
        assert SERVICES[name]["healthcheck"] != SERVICES["api"]["healthcheck"], (
            f"{name} would probe the service's /readyz"
        )
    client_port = re.search(r"--ray-client-server-port=(\d+)", SERVICES[head]["command"])
    assert client_port, "the head serves no Ray Client port for ray:// addresses"
    drivers = [s for s in SERVICES.values() if "--engine ray" in str(s.get("command", ""))]
    for driver in drivers:
        assert f"ray://{head}:{client_port.group(1)}" in driver["command"]
        assert driver["image"] == image
