"""Checks of a built facecore image, run as the last step of the Dockerfile.

By hand: ``docker run --rm IMAGE python /usr/local/share/facecore/check_image.py --cpu-torch``.

- every model of the manifest resolves with its sha256, for the user that runs this (the models
  are baked in, and readable by the service's user);
- the service (``app.main``) and the CLI (``facecore.cli``) import;
- with ``--cpu-torch``: torch is a CPU build and no CUDA package (``nvidia-*``, ``triton``) is
  installed;
- with ``--extras a,b``: facecore declares those extras (pip only warns about an unknown one and
  installs nothing for it).

Exits 1 with every failure on stderr; prints one summary line otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import sys

CUDA_PACKAGES = ("nvidia-", "nvidia_", "triton")


def check(extras: set[str], cpu_torch: bool) -> tuple[list[str], str]:
    """Return (failures, summary)."""
    failures: list[str] = []

    provided = set(metadata.metadata("facecore").get_all("Provides-Extra") or [])
    if extras - provided:
        failures.append(
            f"facecore has no extra {sorted(extras - provided)} (it has {sorted(provided)}): "
            "add it to [project.optional-dependencies] in pyproject.toml or drop it from EXTRAS"
        )

    import torch

    if cpu_torch:
        if torch.version.cuda is not None:
            failures.append(f"torch {torch.__version__} is a CUDA {torch.version.cuda} build")
        cuda = sorted(
            name
            for dist in metadata.distributions()
            if (name := dist.metadata["Name"] or "").lower().startswith(CUDA_PACKAGES)
        )
        if cuda:
            failures.append(f"CUDA packages are installed: {', '.join(cuda)}")

    from facecore import model_router, model_store

    names = sorted(model_store.load_manifest())
    for name in names:
        try:
            model_router.resolve(name)
        except Exception as e:  # report every model, not only the first
            failures.append(f"model {name}: {e}")

    for module in ("app.main", "facecore.cli"):
        try:
            importlib.import_module(module)
        except Exception as e:
            failures.append(f"import {module}: {type(e).__name__}: {e}")

    summary = (
        f"facecore {metadata.version('facecore')}, torch {torch.__version__} "
        f"(cuda {torch.version.cuda}), {len(names)} models in {model_store.models_dir()}, "
        f"extras {sorted(extras) or 'none'}"
    )
    return failures, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a built facecore image.")
    parser.add_argument("--extras", default="", help="comma-separated extras that must exist")
    parser.add_argument("--cpu-torch", action="store_true", help="torch must be a CPU build")
    args = parser.parse_args(argv)
    extras = {e.strip() for e in args.extras.split(",") if e.strip()}
    failures, summary = check(extras, args.cpu_torch)
    for failure in failures:
        print(f"check_image: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"check_image: ok: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
