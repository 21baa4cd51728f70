"""Schemathesis against the OpenAPI document: every route, every check, no 5xx, every answer
matches its schema.

The app is the fake one (``fakes.FakeAnalyzer``: real decoding, limits and stage handling;
fixed faces) with API keys set, so that the auth checks run too; schemathesis sends the key.
``FACECORE_FUZZ_EXAMPLES`` sets the examples per operation (25 here; ``make fuzz`` runs 500 on
the fake and then on the real models, ``FACECORE_FUZZ_MODELS=real``).

``positive_data_acceptance`` expects a schema-valid request to be accepted. The schema says what
the service takes (base64 with its pattern, the image media types, the bounds of every list), but
no schema can say "a decodable JPEG": schemathesis' valid-by-schema bytes are not an image, so
the documented image answers (413 too large, 415 unsupported format, 422 undecodable or an
unknown stage/model name) count as accepted handling here; a 5xx, an undocumented status or a
body off its schema still fails.
"""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis
from fakes import FakeAnalyzer
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from facecore.analyzer import AnalyzerConfig, FaceAnalyzer
from facecore.io import ImageLimits

KEY = "fuzz-key-1"
EXAMPLES = int(os.environ.get("FACECORE_FUZZ_EXAMPLES", "25"))
#: ``real``: the real models instead of the fake (``make fuzz``).
MODELS = os.environ.get("FACECORE_FUZZ_MODELS", "fake")

_settings = Settings(
    analyzer=AnalyzerConfig(limits=ImageLimits(max_bytes=2 << 20)),
    preload=True,  # the fake "loads" at once: /readyz is 200 (while loading it is a 503)
    worker_mode="thread",
    workers=2,
    api_keys=SecretStr(KEY),
)
# Loaded before the first request (/readyz is a documented 503 while models load).
_analyzer = (
    FakeAnalyzer(_settings.analyzer)
    if MODELS == "fake"
    else FaceAnalyzer(_settings.analyzer).load()
)
app = create_app(_settings, analyzer=_analyzer)

config = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"ApiKeyHeader": {"api_key": KEY}, "BearerAuth": {"bearer": KEY}}},
        "generation": {"max-examples": EXAMPLES},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "413", "415", "422"]},
        },
        # The multi-image routes answer a request of several images with 200 and each image's
        # own result or error (422 undecodable_image inside), so a "schema-violating" file part
        # (multipart has no non-binary parts: it is just bytes that are no image) is rejected
        # inside a 200, not by the status.
        "operations": [
            {
                "include-path-regex": "^/v1/(analyze|score|age)$",
                "checks": {
                    "negative_data_rejection": {
                        "expected-statuses": [
                            "200",
                            "400",
                            "401",
                            "403",
                            "404",
                            "405",
                            "406",
                            "409",
                            "413",
                            "415",
                            "422",
                            "428",
                            "429",
                        ],
                    }
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.fixture(scope="module", autouse=True)
def _stop_lifespan():
    yield
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)
def test_api(case):
    case.call_and_validate()
