"""The web page at ``/``: one static page (``app/static/``) that calls the ``/v1`` routes.

Plain HTML, CSS and JavaScript, no build step. The page sends a photo to ``POST /v1/analyze``
and ``POST /v1/beautify`` with the API key the user typed (``X-API-Key``), and draws what comes
back. The files are open (the API key guards ``/v1`` only), are not part of the OpenAPI schema,
and are served from a fixed list, so no request path reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

__all__ = ["STATIC_DIR", "router"]

#: The page's files.
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

_ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page loads comes from this origin; the photos it shows are blob: URLs.
_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=_HEADERS
    )


def _asset(name: str, media_type: str):  # noqa: ANN202
    async def asset() -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_HEADERS)

    asset.__name__ = f"static_{name.replace('.', '_')}"
    return asset


for _name, _media in _ASSETS.items():
    router.add_api_route(f"/static/{_name}", _asset(_name, _media), methods=["GET"])
