"""scripts/predictor_box_fit.py: the per-face ratios and their medians on synthetic faces, the
fixed photo subset, and the constants it measures against HOG on a few SCUT-FBP5500 photos."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from facecore.types import Box

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    path = ROOT / "scripts" / "predictor_box_fit.py"
    spec = importlib.util.spec_from_file_location("predictor_box_fit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["predictor_box_fit"] = module
    spec.loader.exec_module(module)
    return module


pbf = _load_script()

#: Eyes at y 20, mouth corners at y 44: midpoint (20, 32), d = 24.
FIVE = np.array([[10, 20], [30, 20], [20, 32], [14, 44], [26, 44]], np.float32)


def test_box_ratios_in_units_of_the_eye_mouth_distance():
    mid, d = pbf.geometry(FIVE)
    np.testing.assert_allclose(mid, [20, 32])
    assert d == pytest.approx(24)
    # a 48-px HOG box centred 2.4 px above and 1.2 px right of the midpoint
    hog = Box(21.2 - 24, 29.6 - 24, 21.2 + 24, 29.6 + 24)
    side, shift, shift_x = pbf.box_ratios(FIVE, hog)
    assert side == pytest.approx(2.0)
    assert shift == pytest.approx(-0.1)
    assert shift_x == pytest.approx(0.05)


def test_fit_takes_medians():
    r = [(2.0, -0.1, 0.0), (2.2, 0.0, 0.0), (9.0, -0.05, 1.0)]  # one outlier
    out = pbf.fit(r)
    assert out["faces"] == 3
    assert out["side"] == pytest.approx(2.2) and out["shift"] == pytest.approx(-0.05)
    assert out["side_mean"] == pytest.approx(13.2 / 3)
    with pytest.raises(ValueError, match="no face"):
        pbf.fit([])


def test_spread_names_is_fixed_and_spans_the_sorted_names():
    paths = [Path(f"{g}{i}.jpg") for g in ("CM", "AF", "CF", "AM") for i in range(1, 11)]
    picked = pbf.spread_names(paths, 4)
    # indices 0, 13, 26, 39 of AF1, AF10, AF2, ..., AF9, AM1, AM10, AM2, AM3, ...
    assert [p.name for p in picked] == ["AF1.jpg", "AM3.jpg", "CF6.jpg", "CM9.jpg"]
    assert pbf.spread_names(paths, 100) == sorted(paths, key=lambda p: p.name)


#: ``blazeface_back`` on 12 photos spread over SCUT-FBP5500: median side and shift (measured).
MEASURED_12 = (2.105, -0.0454)


@pytest.mark.usefixtures("torch_single_thread")
def test_measures_blazeface_against_hog(data_root):
    photos = pbf.spread_names(list((data_root / "scut-fbp5500" / "images").glob("*.jpg")), 12)
    out = pbf.measure(photos, ["blazeface_back"])["blazeface_back"]
    # measured on these 12 photos (on 300: side 2.024, shift -0.044)
    assert out["faces"] == 12
    assert out["side"] == pytest.approx(MEASURED_12[0], abs=0.02)
    assert out["shift"] == pytest.approx(MEASURED_12[1], abs=0.01)
