"""Nothing heavy happens at import (README, STYLE.md rule 5): models and their frameworks load on
first use.

Measured in a fresh interpreter: ``import facecore`` imports no third-party package at all;
``import facecore.analyzer`` and ``facecore.list_stages()`` bring in numpy, Pillow and OpenCV (the
decoder and the detectors' image helpers) but none of torch, torchvision, scikit-learn,
scikit-image, scipy, dlib, facenet-pytorch, joblib or the service's packages. Analysing a photo
with the default heads imports none of the research networks of :mod:`facecore.nn` (they
register lazily; ``scripts/import_cost.py`` reports the seconds and memory). Neither importing
facecore nor analysing a photo changes torch's thread count (a call sets its own thread's count
for its duration, :mod:`facecore.threads`, and restores it).
"""

from __future__ import annotations

import json
import subprocess
import sys

#: Packages that cost seconds (or hundreds of MB) to import, or belong to the service.
HEAVY = (
    "torch",
    "torchvision",
    "sklearn",
    "skimage",
    "scipy",
    "dlib",
    "facenet_pytorch",
    "face_recognition_models",
    "joblib",
    "fastapi",
    "uvicorn",
)

CODE = f"""
import json, sys
heavy = {HEAVY!r}
def loaded(names):
    return sorted(m for m in names if m in sys.modules)
import facecore
steps = {{"import facecore": loaded(heavy + ("numpy", "cv2", "PIL"))}}
import facecore.analyzer
steps["import facecore.analyzer"] = loaded(heavy)
facecore.list_stages()
steps["facecore.list_stages()"] = loaded(heavy)
print(json.dumps(steps))
"""


def test_import_and_list_stages_load_no_heavy_package() -> None:
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout.strip().splitlines()[-1])
    assert steps == {
        "import facecore": [],
        "import facecore.analyzer": [],
        "facecore.list_stages()": [],
    }


#: The research networks and training tools of :mod:`facecore.nn`, which only the tests use.
RESEARCH_ZOO = tuple(
    f"facecore.nn.{m}"
    for m in ("vggface", "resnet", "binary", "orn", "ensembles", "regularizers", "losses", "optim")
)


def test_analyze_imports_none_of_the_research_networks(fixtures) -> None:
    code = (
        "import json, sys; import facecore; "
        f"faces = facecore.analyze({str(fixtures / 'obama.jpg')!r}); "
        "print(json.dumps([len(faces), sorted(faces[0].predictions), "
        "sorted(m for m in sys.modules if m.startswith('facecore.nn'))]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    n_faces, predictions, loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert n_faces == 1 and {"attractiveness", "age", "quality"} <= set(predictions)
    assert "facecore.nn.dlib_resnet" in loaded  # the trunk ran
    assert not set(RESEARCH_ZOO) & set(loaded), loaded


def test_import_and_analyze_keep_torchs_thread_count(fixtures) -> None:
    photo = str(fixtures / "obama.jpg")
    code = (
        "import json, torch; torch.set_num_threads(3); import facecore, facecore.analyzer; "
        "counts = [torch.get_num_threads()]; "
        f"facecore.analyze({photo!r}); "
        f"facecore.FaceAnalyzer(threads=1).analyze({photo!r}); "
        "counts.append(torch.get_num_threads()); print(json.dumps(counts))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [3, 3]
