#!/usr/bin/env python
"""Make the large-photo benchmark input: tests/fixtures/obama.jpg enlarged to a phone photo.

The bundled 910x1137 photo is enlarged (Lanczos) to 3024x3780 (11.4 Mpx, the size of a 12 MP
phone photo in portrait) and saved as a JPEG of quality 90, 4:2:0, without EXIF data: the
"obama.jpg enlarged" row of issue 22's tables and the ``large_photo`` case of scripts/bench.py.

    .venv/bin/python scripts/make_large_photo.py --out /tmp/obama_3024x3780.jpg
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "fixtures" / "obama.jpg"
SIZE = (3024, 3780)
QUALITY = 90

log = logging.getLogger("make_large_photo")


def make_large_photo(
    out: Path, source: Path = SOURCE, size: tuple[int, int] = SIZE, quality: int = QUALITY
) -> Path:
    """Enlarge ``source`` to ``size`` (width, height) and write it to ``out`` as a JPEG.

    Returns ``out``. The same inputs always give the same bytes (Pillow's Lanczos filter and
    libjpeg are deterministic).
    """
    from PIL import Image

    with Image.open(source) as image:
        large = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    large.save(out, "JPEG", quality=quality)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="where to write the JPEG")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = make_large_photo(args.out)
    log.info("wrote %s (%dx%d, JPEG q %d, %d bytes)", path, *SIZE, QUALITY, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
