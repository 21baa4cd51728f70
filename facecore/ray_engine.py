"""The batch runner on a Ray cluster: Ray Data over the paths, the analyzer held in actors.

:func:`ray_results` is the ``--engine ray`` source of :func:`facecore.batch.run_batch`: the paths
still to do become a Ray dataset, :class:`AnalyzerActor` (one model load per actor) analyses
them in chunks with :func:`facecore.batch_rows.analyze_chunk` and turns each image into the same
rows as the local engine, and the driver streams the rows back to ``run_batch``, which writes,
resumes and converts them exactly as for the local engine. The images are read by the actors,
so every path must be readable on every node (a shared file system or the same mount
everywhere).

Needs the ``ray`` extra (``ray[data,client]``). ``address``: ``None`` starts a local Ray instance
in this process; ``"auto"`` joins the cluster this machine is part of; ``"ray://HOST:10001"``
connects through Ray Client.

This module implements no paper.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["AnalyzerActor", "ray_results", "require_ray"]

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """The ``ray`` module, or a clear error naming the extra."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ValueError(
            "--engine ray needs Ray: pip install 'facecore[ray]' (make install has it)"
        ) from None
    return ray


class AnalyzerActor:
    """A Ray Data callable class: one :class:`~facecore.analyzer.FaceAnalyzer` per actor, loaded
    once, each batch of paths analysed together."""

    def __init__(self, config: Any, threads: int = 1) -> None:
        from facecore.analyzer import FaceAnalyzer
        from facecore.threads import limit_threads

        limit_threads(threads)
        self.analyzer = FaceAnalyzer(config).load()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from facecore.batch_rows import analyze_chunk, rows_for

        paths = [str(p) for p in batch["path"]]
        results = analyze_chunk(paths, self.analyzer)
        rows = [json.dumps(rows_for(p, r)) for p, r in zip(paths, results, strict=True)]
        return {"path": paths, "rows": rows}


def ray_results(
    paths: list[str],
    config: Any,
    *,
    address: str | None = None,
    actors: int | None = None,
    chunk: int = 8,
) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """``(path, rows)`` of every path, analysed on Ray (in the order they finish).

    Parameters
    ----------
    paths : list of str
    config : AnalyzerConfig
    address : str, optional
        Ray address (see the module docstring); None: a local instance.
    actors : int, optional
        Analyzer actors (default: one per CPU of the cluster, at least 1).
    chunk : int, default 8
        Images per actor call.
    """
    import os

    # facecore works offline: Ray's usage statistics would try to reach the internet.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require_ray()
    if not paths:
        return
    started = False
    if not ray.is_initialized():
        if address and address.startswith("ray://"):
            ray.init(address=address, log_to_driver=False)  # Ray Client
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(1, min(actors or cpus, max(1, len(paths) // chunk)))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"path": p} for p in paths])
        out = ds.map_batches(
            AnalyzerActor,
            fn_constructor_kwargs={"config": config},
            batch_size=chunk,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=1,
        )
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            for p, r in zip(batch["path"], batch["rows"], strict=True):
                yield str(p), json.loads(str(r))
    finally:
        if started:
            ray.shutdown()
