#!/usr/bin/env python
"""Per-stage timing of the face pipeline (``make bench``).

Times each stage on one photo (a 350x350 SCUT-FBP5500 photo when ../shared/data is present, else
a bundled test photo) and prints the median, p90 and mean in milliseconds, then writes them to JSON.
The library's timings run with the machine's thread count as it is (torch and OpenCV use both
cores here); the ``http_request_*`` timings come last, through the app, whose thread workers
use one thread each (the service's default ``FACECORE_WORKER_THREADS``).

It times ``facecore.analyze`` against face_recognition on the bench photo (the 350x350 case)
and on a large photo: ``tests/fixtures/obama.jpg`` enlarged to 3024x3780, JPEG
q 90 (``scripts/make_large_photo.py``), through ``facecore.analyze`` (the default heads) against
face_recognition's ``face_locations`` + ``face_landmarks`` + ``face_encodings`` with their
defaults, both from the JPEG bytes (decoding included), reported as the ratio of the medians.

Each face detector (:data:`facecore.detect.DETECTORS`: ``hog``, ``mtcnn``, ``auto``,
``blazeface_back``, ``blazeface_short``) is timed alone on the bench photo (``detect_<name>``) and
on a 1280-pixel photo (``detect_<name>_1280``: ``tests/fixtures/obama.jpg`` enlarged to
1024x1280, JPEG q 90, decoded once), and reported as the ratio of its median to HOG's
(``scripts/detector_eval.py`` compares them on accuracy too).

Besides the shipped stages it times a stub head that owns a copy of the trunk's stages 4-5 and
runs from the shared stage-3 map (``facecore.nn.top.BackboneTop`` with an untrained output layer;
the timing of a fine-tuned head, not a model), in int8 as the shipped tops run
(:mod:`facecore.nn.quantize`) and in float32, and reports its cost as a share of one trunk
forward.

The appearance backbone (``docs/appearance.md``) is timed as its crop (``appearance_crop_224``),
its network on one crop (``appearance_network_per_face``), the stage on one face as served
(crop, plain and mirrored passes: ``appearance_stage_per_face``) and the default heads with it
(``analyze_default_heads_and_appearance``).

The busy-core case (first, before the app limits this process's threads) times
``FaceAnalyzer.analyze`` with the default heads on the first ``--busy-photos`` (30)
SCUT-FBP5500 photos (sorted by name), idle and while a child process spins one core, with
``threads`` ``auto``, 1 and torch's default count, and reports the median and p90 of each and the
busy/idle p90 ratio (target: at most 1.5 for ``auto``; its idle median within 5% of the
default's). ``--busy-only`` runs it alone.

    .venv/bin/python scripts/bench.py [--repeat 30] [--image PATH] [--out bench.json]
        [--busy-photos 30] [--busy-passes 1] [--busy-only]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGES = [
    ROOT.parent / "shared" / "data" / "scut-fbp5500" / "images" / "AF10.jpg",
    ROOT / "tests" / "fixtures" / "obama_small.jpg",
]


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000.0)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "repeat": repeat,
    }


class StubTopHead:
    """A head with its own copy of trunk stages 4-5 (untrained output layer): bench only.

    With ``calibration`` (stage-3 maps) it runs in int8 as the shipped tops do
    (:func:`facecore.nn.quantize.quantize_top`), else in float32.
    """

    name = "stub_top"
    requires = ("trunk",)

    def __init__(self, trunk_network: object, calibration: object = None) -> None:
        from facecore.nn.dlib_resnet import for_inference
        from facecore.nn.quantize import quantize_top
        from facecore.nn.top import BackboneTop
        from facecore.stages import Output

        self.top = for_inference(BackboneTop(trunk_network, start="stage4", num_outputs=9))
        if calibration is not None:
            self.top = quantize_top(self.top, calibration)
        self.provides = (Output("stub_top", distribution=True),)

    def load(self) -> None:
        pass

    def __call__(self, image, faces):
        import numpy as np

        from facecore.trunk import run_top
        from facecore.types import Prediction

        logits = run_top(self.top, faces)
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        bins = tuple(float(b) for b in np.linspace(1, 5, probs.shape[1]))
        return [
            f.with_prediction(self.name, Prediction.from_distribution(bins, p, "stub"))
            for f, p in zip(faces, probs, strict=True)
        ]


def fixture_maps() -> object:
    """Stage-3 maps of the faces in tests/fixtures' photos (the int8 stub's calibration)."""
    import numpy as np

    from facecore.analyzer import FaceAnalyzer
    from facecore.trunk import map_key

    analyzer = FaceAnalyzer(stages=("landmarks", "trunk")).load()
    maps = [
        face.features[map_key("stage3")]
        for path in sorted((ROOT / "tests" / "fixtures").glob("*.jpg"))
        for face in analyzer.analyze(path.read_bytes())
    ]
    return np.stack(maps)


#: Size (width, height) of the 1280-pixel photo the detectors are timed on.
DETECTOR_PHOTO_SIZE = (1024, 1280)


def detector_cases(img: object) -> dict[str, Callable[[], object]]:
    """``detect_<name>`` on ``img`` for the detectors the shipped stages do not time, and
    ``detect_<name>_1280`` for every detector on the 1280-pixel photo."""
    import tempfile

    from make_large_photo import make_large_photo  # scripts/ is sys.path[0]

    from facecore.detect import DETECTORS, make_detector
    from facecore.io import load_image

    with tempfile.TemporaryDirectory() as tmp:
        path = make_large_photo(Path(tmp) / "photo_1280.jpg", size=DETECTOR_PHOTO_SIZE)
        big = load_image(path.read_bytes())
    detectors = {name: make_detector(name) for name in DETECTORS}
    cases: dict[str, Callable[[], object]] = {}
    for name, det in detectors.items():
        det.load()
        if name not in ("hog", "mtcnn"):  # pipeline_stages times those two on img
            cases[f"detect_{name}"] = lambda det=det: det.detect(img)
    for name, det in detectors.items():
        cases[f"detect_{name}_1280"] = lambda det=det: det.detect(big)
    return cases


def detector_report(results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per detector: median ms on the bench photo and on the 1280-pixel one, and each over
    HOG's."""
    from facecore.detect import DETECTORS

    out = {}
    for name in DETECTORS:
        small, big = results[f"detect_{name}"], results[f"detect_{name}_1280"]
        out[name] = {
            "median_ms": small["median_ms"],
            "median_ms_1280": big["median_ms"],
            "vs_hog": round(small["median_ms"] / results["detect_hog"]["median_ms"], 3),
            "vs_hog_1280": round(big["median_ms"] / results["detect_hog_1280"]["median_ms"], 3),
        }
    return out


def pipeline_stages(data: bytes) -> dict[str, Callable[[], object]]:
    """name -> zero-argument callable, for every stage of the pipeline."""
    import numpy as np
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.main import create_app
    from facecore.align import align_face
    from facecore.analyzer import FaceAnalyzer
    from facecore.descriptor import DlibDescriptor, face_chips
    from facecore.detect import HogDetector, MtcnnDetector
    from facecore.io import load_image
    from facecore.landmarks import LandmarkPredictor
    from facecore.trunk import TrunkStage, map_key

    img = load_image(data)
    hog, mtcnn = HogDetector(), MtcnnDetector()
    faces = hog.detect(img) or mtcnn.detect(img)
    if not faces:
        raise SystemExit("the bench photo has no detectable face")
    lm = LandmarkPredictor()
    face = lm(img, faces[:1])[0]
    desc = DlibDescriptor()
    trunk = TrunkStage()
    chips = face_chips(img, [face])
    chips8 = np.repeat(chips, 8, axis=0)
    (with_maps,) = trunk(img, [face])
    # The int8 stub's ranges: stage-3 maps of the fixture photos' faces (and of this one).
    calibration = np.concatenate([with_maps.features[map_key("stage3")][None], fixture_maps()])
    stub = StubTopHead(trunk.network, calibration)
    stub_float = StubTopHead(trunk.network)

    pipeline = FaceAnalyzer(stages=("landmarks", "trunk")).load()
    heads = FaceAnalyzer().load()  # the default heads
    from facecore.stages import default_heads

    # Each default head alone, on a face the trunk has run on (what it adds per face).
    head_calls = {}
    for head in default_heads():
        stage = heads.stage(head)
        head_calls[f"head_{head}_per_face"] = lambda stage=stage: stage(img, [with_maps])
    with_stub = FaceAnalyzer(stages=("landmarks", "trunk", stub)).load()
    # The appearance backbone (docs/appearance.md): its crop and network on one face, plain
    # and mirror-averaged, and the default heads with it.
    from facecore.align import face_crop
    from facecore.appearance import appearance_features
    from facecore.model_router import load

    with_appearance = FaceAnalyzer(stages=(*heads.config.stage_names, "appearance")).load()
    appearance = with_appearance.stage("appearance")
    appearance_net = load(appearance.model)
    crop = face_crop(img, face, appearance.spec)[None].copy()
    clients: list[TestClient] = []

    def request(route: str) -> None:
        # The app is started on the first request, after the library's timings: its thread
        # workers limit this process to FACECORE_WORKER_THREADS (1) threads from then on.
        if not clients:
            clients.append(TestClient(create_app(Settings(), analyzer=heads)))
            clients[0].__enter__()
        r = clients[0].post(route, files={"file": ("a.jpg", data, "image/jpeg")})
        assert r.status_code == 200, r.text

    return {
        "decode": lambda: load_image(data),
        "detect_hog": lambda: hog.detect(img),
        "detect_mtcnn": lambda: mtcnn.detect(img),
        **detector_cases(img),
        "landmarks_68": lambda: lm.predict(img, face),
        "align_112": lambda: align_face(img, face.landmarks, size=112),
        # a fresh crop cache each call, so the chip is really cut
        "dlib_chip_150": lambda: face_chips(img, [face.evolve(crops={})]),
        "descriptor_dlib_per_chip": lambda: desc.compute(chips),
        "trunk_torch_per_chip": lambda: trunk.compute(chips),
        "trunk_torch_batch8": lambda: trunk.compute(chips8),
        **head_calls,
        "stub_top_head_per_face": lambda: stub(img, [with_maps]),
        "stub_top_head_batch8": lambda: stub(img, [with_maps] * 8),
        "stub_top_head_float32_per_face": lambda: stub_float(img, [with_maps]),
        "stub_top_head_float32_batch8": lambda: stub_float(img, [with_maps] * 8),
        "analyze_whole": lambda: pipeline.analyze(data),
        "analyze_with_stub_head": lambda: with_stub.analyze(data),
        "analyze_default_heads": lambda: heads.analyze(data),
        "appearance_crop_224": lambda: face_crop(img, face.evolve(crops={}), appearance.spec),
        "appearance_network_per_face": lambda: appearance_features(
            appearance_net, crop, mirror=False
        ),
        "appearance_stage_per_face": lambda: appearance(img, [face.evolve(crops={})]),
        "analyze_default_heads_and_appearance": lambda: with_appearance.analyze(data),
        "http_request_faces": lambda: request("/v1/faces"),
        "http_request_score": lambda: request("/v1/score"),
        "http_request_analyze": lambda: request("/v1/analyze"),
    }


def versus_face_recognition(data: bytes, label: str, repeat: int) -> dict[str, object]:
    """``facecore.analyze`` on the JPEG bytes ``data`` against face_recognition's detect +
    landmarks + encode on the same bytes (decoding included in both); the ratio is facecore's
    median over face_recognition's."""
    import io

    try:
        import face_recognition
    except ImportError:
        raise SystemExit(
            "the face_recognition cases need face_recognition: make install, or "
            'pip install --no-deps "face-recognition==1.3.0"'
        ) from None
    import facecore

    def theirs() -> None:
        image = face_recognition.load_image_file(io.BytesIO(data))
        locations = face_recognition.face_locations(image)
        face_recognition.face_landmarks(image, locations)
        face_recognition.face_encodings(image, locations)

    if len(facecore.analyze(data)) != 1:
        raise SystemExit(f"{label} must have one face for facecore")
    ours = timeit(lambda: facecore.analyze(data), repeat)
    other = timeit(theirs, repeat, warmup=1)
    return {
        "image": label,
        "bytes": len(data),
        "facecore_analyze": ours,
        "face_recognition_detect_landmarks_encode": other,
        "ratio_median": round(ours["median_ms"] / other["median_ms"], 4),
    }


def large_photo_case(repeat: int) -> dict[str, object]:
    """:func:`versus_face_recognition` on ``tests/fixtures/obama.jpg`` enlarged to 11 MP."""
    import tempfile

    from make_large_photo import SIZE, make_large_photo  # scripts/ is sys.path[0]

    with tempfile.TemporaryDirectory() as tmp:
        data = make_large_photo(Path(tmp) / "large.jpg").read_bytes()
    label = f"tests/fixtures/obama.jpg enlarged to {SIZE[0]}x{SIZE[1]}, JPEG q 90"
    return versus_face_recognition(data, label, repeat)


SCUT_IMAGES = ROOT.parent / "shared" / "data" / "scut-fbp5500" / "images"


def spin_one_core() -> subprocess.Popen[bytes]:
    """A child process that keeps one core busy until it is terminated."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def busy_core(photos: list[bytes], passes: int) -> dict[str, object]:
    """``analyze`` per photo, idle and with one core busy, for threads auto, 1 and the default.

    Returns, per setting, the idle and busy median/p90 (ms) and the busy/idle p90 ratio.
    """
    import torch

    from facecore.analyzer import FaceAnalyzer
    from facecore.threads import CpuMonitor

    default = torch.get_num_threads()
    settings: list[int | str] = ["auto", 1, default] if default != 1 else ["auto", 1]
    analyzers = {str(s): FaceAnalyzer(threads=s).load() for s in settings}
    others: dict[str, float | None] = {}

    def run(state: str) -> dict[str, dict[str, float]]:
        # The other processes' CPU use over the phase (this process's own subtracted), to tell
        # an idle machine from one that is not.
        load = CpuMonitor(max_window=math.inf)
        load.free_cores()
        out: dict[str, dict[str, float]] = {}
        for name, analyzer in analyzers.items():
            for data in photos[:2]:  # warm-up; auto's load window sees the spinner
                analyzer.analyze(data)
            times = []
            for _ in range(passes):
                for data in photos:
                    t = time.perf_counter()
                    analyzer.analyze(data)
                    times.append((time.perf_counter() - t) * 1000.0)
            times.sort()
            out[name] = {
                "median_ms": round(statistics.median(times), 3),
                "p90_ms": round(times[int(0.9 * (len(times) - 1))], 3),
                "n": len(times),
            }
            print(f"busy-core {state:<5} threads={name:<5} {out[name]}", flush=True)
        free = load.free_cores()
        others[state] = None if free is None else round(len(os.sched_getaffinity(0)) - free, 2)
        print(f"busy-core {state}: other processes used {others[state]} cores", flush=True)
        return out

    idle = run("idle")
    spinner = spin_one_core()
    try:
        time.sleep(1.0)  # the spinner runs; auto's 0.2-2 s window covers it
        busy = run("busy")
    finally:
        spinner.terminate()
        spinner.wait()
    return {
        "photos": len(photos),
        "passes": passes,
        "default_threads": default,
        "other_processes_cores": others,
        "settings": {
            name: {
                "idle": idle[name],
                "busy": busy[name],
                "busy_p90_over_idle_p90": round(busy[name]["p90_ms"] / idle[name]["p90_ms"], 3),
            }
            for name in analyzers
        },
        "auto_idle_median_over_default": round(
            idle["auto"]["median_ms"] / idle[str(default)]["median_ms"], 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "bench.json")
    ap.add_argument("--busy-photos", type=int, default=30)
    ap.add_argument("--busy-passes", type=int, default=1)
    ap.add_argument("--busy-only", action="store_true")
    args = ap.parse_args(argv)
    image = args.image or next(p for p in DEFAULT_IMAGES if p.exists())
    data = image.read_bytes()

    import torch
    from PIL import Image

    busy = None
    if SCUT_IMAGES.is_dir():
        paths = sorted(SCUT_IMAGES.glob("*.jpg"))[: args.busy_photos]
        busy = busy_core([p.read_bytes() for p in paths], args.busy_passes)
        for name, r in busy["settings"].items():
            print(f"busy core, threads={name}: busy/idle p90 = {r['busy_p90_over_idle_p90']:.2f}")
        print(f"auto idle median / default = {busy['auto_idle_median_over_default']:.3f}")
    else:
        print(f"busy-core case skipped: {SCUT_IMAGES} is missing")
    if args.busy_only:
        args.out.write_text(json.dumps({"busy_core": busy}, indent=2))
        print(f"wrote {args.out}")
        return 0

    # Before the app's thread workers change this process's thread count (pipeline_stages).
    large = large_photo_case(args.repeat)
    small = versus_face_recognition(data, str(image), args.repeat)
    results = {}
    for name, fn in pipeline_stages(data).items():
        results[name] = timeit(fn, args.repeat)
    w, h = Image.open(image).size

    def share(head: str, trunk: str) -> float:
        return results[head]["median_ms"] / max(results[trunk]["median_ms"], 1e-9)

    top_share = share("stub_top_head_per_face", "trunk_torch_per_chip")
    top_share8 = share("stub_top_head_batch8", "trunk_torch_batch8")
    float_share = share("stub_top_head_float32_per_face", "trunk_torch_per_chip")
    report = {
        "image": str(
            image.relative_to(ROOT.parent) if image.is_relative_to(ROOT.parent) else image
        ),
        "image_size": [w, h],
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
        },
        "stages": results,
        "large_photo": large,
        "bench_photo_vs_face_recognition": small,
        "busy_core": busy,
        "detectors": detector_report(results),
        "stub_top_head_share_of_trunk": round(top_share, 3),
        "stub_top_head_share_of_trunk_batch8": round(top_share8, 3),
        "stub_top_head_float32_share_of_trunk": round(float_share, 3),
        "head_share_of_trunk": {
            name.removeprefix("head_").removesuffix("_per_face"): round(
                share(name, "trunk_torch_per_chip"), 3
            )
            for name in results
            if name.startswith("head_")
        },
    }
    print(f"image {report['image']} ({w}x{h}), {args.repeat} runs each")
    print(f"{'stage':<26}{'median ms':>11}{'p90 ms':>10}{'mean ms':>10}")
    for name, r in results.items():
        print(f"{name:<26}{r['median_ms']:>11.2f}{r['p90_ms']:>10.2f}{r['mean_ms']:>10.2f}")
    for case in (small, large):
        ours, other = case["facecore_analyze"], case["face_recognition_detect_landmarks_encode"]
        print(
            f"{case['image']}: facecore.analyze {ours['median_ms']:.1f} ms, "
            f"face_recognition detect + landmarks + encode {other['median_ms']:.1f} ms, "
            f"ratio {case['ratio_median']:.3f}"
        )
    for name, d in report["detectors"].items():
        print(
            f"detector {name}: {d['median_ms']:.1f} ms ({d['vs_hog']:.2f}x hog) on {w}x{h}, "
            f"{d['median_ms_1280']:.1f} ms ({d['vs_hog_1280']:.2f}x hog) on "
            f"{DETECTOR_PHOTO_SIZE[0]}x{DETECTOR_PHOTO_SIZE[1]}"
        )
    print(f"stub top head (stages 4-5) per face = {top_share:.1%} of trunk_torch_per_chip")
    print(f"stub top head, 8 faces = {top_share8:.1%} of trunk_torch_batch8")
    print(f"stub top head in float32 per face = {float_share:.1%} of trunk_torch_per_chip")
    for head, sh in report["head_share_of_trunk"].items():
        print(f"head {head} per face = {sh:.1%} of trunk_torch_per_chip")
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
