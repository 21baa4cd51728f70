"""facecore.detect.base: the reduced copy detection runs on."""

import cv2
import numpy as np
import pytest

from facecore.detect.base import downscale_for_detection


@pytest.mark.parametrize(
    ("height", "width", "measured"),
    [(3780, 3024, 0.337), (4032, 3024, 0.318), (3001, 4003, 1.637), (1500, 1100, 0.0)],
)
def test_downscale_halves_then_area_resizes(height, width, measured):
    """The reduced copy has the size one area resize gives and nearly its pixels: mean absolute
    difference as measured on this content (blobs of about 40 px in all grey levels; 0.32 on
    obama.jpg enlarged to 3024x3780). An odd side loses its last pixel row or column before it
    is halved, which stretches the copy by at most half a pixel: hence the larger difference."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 40, width // 40, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)  # smooth content
    view, back = downscale_for_detection(image, 1280)
    scale = 1280 / max(height, width)
    size = (round(width * scale), round(height * scale))
    assert (view.shape[1], view.shape[0]) == size and back == pytest.approx(1 / scale)
    direct = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    assert np.abs(view.astype(int) - direct.astype(int)).mean() <= 1.5 * measured
    same, one = downscale_for_detection(direct, 1280)
    assert same is direct and one == 1.0  # small enough already: not copied
    unlimited, one = downscale_for_detection(image, None)
    assert unlimited is image and one == 1.0
