"""Prometheus metrics of the service, in one registry per app (``GET /metrics``).

* ``facecore_http_requests_total{route, method, status}`` and
  ``facecore_http_request_duration_seconds{route, method}``: every request, by route template
  (``unmatched`` for paths no route has, so that a scan cannot blow up the label set);
* ``facecore_stage_seconds{stage}``: time of each pipeline step per call (``decode``,
  ``detect``, then each stage by name), measured where it runs (in the worker) and reported
  with the results; ``facecore_batch_images`` images per worker task, ``facecore_trunk_faces``
  faces per trunk forward;
* ``facecore_queue_depth`` images waiting for a worker, ``facecore_images_in_flight`` images
  being analysed, ``facecore_rejected_total{reason}`` requests refused by a guard (``overloaded``,
  ``timeout``, ``body_timeout``, ``unauthorized``, ``shutting_down``);
* ``facecore_workers{state}`` workers ``loading``/``ready``/``failed``, and
  ``facecore_models_loaded`` (1 once every worker has loaded every model).

The library knows nothing of this: stage times come from the service's own pipeline loop
(:mod:`app.core.pipeline`).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STAGE = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_COUNTS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """The service's metrics (a registry of its own, so several apps can live in one process)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "facecore_http_requests", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "facecore_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=_LATENCY,
            registry=r,
        )
        self.stage = Histogram(
            "facecore_stage_seconds",
            "Time per pipeline step call",
            ["stage"],
            buckets=_STAGE,
            registry=r,
        )
        self.batch = Histogram(
            "facecore_batch_images", "Images per worker task", buckets=_COUNTS, registry=r
        )
        self.trunk_faces = Histogram(
            "facecore_trunk_faces", "Faces per trunk forward", buckets=_COUNTS, registry=r
        )
        self.images = Counter(
            "facecore_images",
            "Images analysed, by outcome (ok or error code)",
            ["outcome"],
            registry=r,
        )
        self.queue = Gauge("facecore_queue_depth", "Images waiting for a worker", registry=r)
        self.in_flight = Gauge(
            "facecore_images_in_flight", "Images being analysed by a worker", registry=r
        )
        self.rejected = Counter(
            "facecore_rejected", "Requests refused by a guard", ["reason"], registry=r
        )
        self.workers = Gauge("facecore_workers", "Workers by state", ["state"], registry=r)
        self.models_loaded = Gauge(
            "facecore_models_loaded", "1 once every worker has loaded every model", registry=r
        )

    def observe_stages(self, timings: dict[str, list[float]]) -> None:
        for name, values in timings.items():
            h = self.stage.labels(name)
            for v in values:
                h.observe(v)

    def render(self) -> bytes:
        return generate_latest(self.registry)
