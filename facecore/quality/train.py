"""The recipe of the face quality model (``quality_faces``): RankIQA on synthetic distortions.

X. Liu, J. van de Weijer, A. D. Bagdanov, "RankIQA: Learning from Rankings for No-Reference
Image Quality Assessment", ICCV 2017: a network learns, by a pairwise hinge, that the less
distorted of two graded versions of a chip scores higher. Departures: no human quality labels;
the score is calibrated (isotonic) onto the agreement of dlib descriptors with the clean chip's,
and the warning threshold is chosen from the other heads' error by quality band. The steps are
described in ``docs/training.md``.
"""

from __future__ import annotations

import logging
import os
import time
import timeit
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from facecore.atomic import atomic_path
from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500, load_utkface
from facecore.quality.distortions import LEVELS, N_LEVELS, distort, distortion_kinds
from facecore.quality.model import QualityModel
from facecore.quality.network import ARCHITECTURES, build, ranking_loss
from facecore.training.chips import extract_dataset_chips, frozen_maps, load_face_resnet
from facecore.training.fit import FitConfig, fit, predict
from facecore.training.publish import CardTable, Shipped
from facecore.training.recipes import get_recipe
from facecore.training.runner import Data, Recipe, Run, config_tag, fold_estimators
from facecore.trunk import TrunkStage

__all__ = [
    "LICENCE",
    "REBUILD",
    "TOLERANCE",
    "GroupBatches",
    "QualityRecipe",
    "Ranker",
    "card_parts",
    "choose_threshold",
    "make_versions",
    "ranking_table",
    "version_index",
]

logger = logging.getLogger(__name__)

LICENCE = (
    "trained on face crops of SCUT-FBP5500, MEBeauty and UTKFace: non-commercial research use only"
)
REBUILD = (
    ".venv/bin/python scripts/train_quality.py --data ../shared/data --out models/quality_faces"
)

#: A quality band is "as reliable as a clean photo" while its error is at most this many times
#: the clean photos' error.
TOLERANCE = 1.5
#: dlib's same-person descriptor distance (the calibration target's scale).
SAME_PERSON = 0.6
#: Optimiser steps per epoch of the ranker's fit (a history entry and a checkpoint each).
STEPS_PER_EPOCH = 100

KINDS = distortion_kinds()
N_VERSIONS = 1 + len(KINDS) * N_LEVELS
#: The versions' names, in :func:`version_index` order.
VERSION_NAMES = ["clean"] + [f"{kind} {lv}" for kind in KINDS for lv in range(1, N_LEVELS + 1)]
BAND_EDGES = np.round(np.arange(0.0, 1.01, 0.1), 2)
RANK_KEYS = ("pair_accuracy", "spearman", "spearman_per_photo")
#: The rated and aged sets of the error tables: task -> dataset.
ERROR_SETS = {"attractiveness": "scut-fbp5500", "age": "utkface"}


def version_index(kind: int, level: int) -> int:
    """Position of (kind index, level) among a chip's versions (0: the clean chip)."""
    return 0 if level == 0 else 1 + kind * N_LEVELS + (level - 1)


def _kind_columns(kind: int) -> list[int]:
    return [version_index(kind, lv) for lv in range(N_LEVELS + 1)]


def make_versions(chips: np.ndarray, photo_ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every version of each chip: (P, N_VERSIONS, H, W, 3) uint8 (see :func:`version_index`)."""
    chips = np.asarray(chips)
    out = np.empty((len(chips), N_VERSIONS, *chips.shape[1:]), np.uint8)
    for p, (chip, pid) in enumerate(zip(chips, photo_ids, strict=True)):
        out[p, 0] = chip
        for k, kind in enumerate(KINDS):
            for lv in range(1, N_LEVELS + 1):
                s = int(seed) * 1_000_003 + int(pid) * 101 + k * 11 + lv
                out[p, version_index(k, lv)] = distort(chip, kind, lv, seed=s)
    return out


# -- ranking ------------------------------------------------------------------------------------
def _as_input(arch_node: str, block: np.ndarray) -> Any:
    x = np.asarray(block)
    if arch_node == "chip":
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


class GroupBatches:
    """The ranker's batches (a :class:`facecore.training.fit.Batches`): each step, ``groups``
    seeded draws of (photo, distortion kind), each with its clean and graded versions; a chip
    network's batch is mirrored with probability 1/2. Targets: the levels of each group."""

    def __init__(self, inputs: np.ndarray, node: str, groups: int, seed: int) -> None:
        self.inputs, self.node, self.groups = inputs, node, groups
        self.rng = np.random.default_rng(seed)
        self.levels = torch.arange(N_LEVELS + 1).repeat(groups, 1)

    def __len__(self) -> int:
        return STEPS_PER_EPOCH

    def epoch(self, gen: Any) -> Any:
        for _ in range(STEPS_PER_EPOCH):
            photos = self.rng.integers(0, len(self.inputs), self.groups)
            kinds = self.rng.integers(0, len(KINDS), self.groups)
            cols = np.array([_kind_columns(k) for k in kinds])
            block = np.asarray(self.inputs[photos[:, None], cols])
            x = _as_input(self.node, block.reshape(-1, *block.shape[2:]))
            if self.node == "chip" and self.rng.random() < 0.5:
                x = torch.flip(x, dims=(3,))
            yield x, self.levels, 1.0

    def state_dict(self) -> Any:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: Any) -> None:
        self.rng.bit_generator.state = state


class Ranker(BaseEstimator):
    """A candidate network (a key of :data:`facecore.quality.network.ARCHITECTURES`) trained
    by ranking with the ``recipe``'s settings, as an estimator; checkpointed in
    ``checkpoint_dir`` every :data:`STEPS_PER_EPOCH` steps and resumed from there."""

    def __init__(self, architecture: str, recipe: Any, checkpoint_dir: Path | None = None) -> None:
        self.architecture = architecture
        self.recipe = recipe
        self.checkpoint_dir = checkpoint_dir

    def fit(self, X: np.ndarray, y: None = None) -> Ranker:
        """Train on ``X`` (P, N_VERSIONS, ...): chips (150, 150, 3) uint8 or maps (64, 17, 17).
        Sets ``net_`` (in eval mode), ``history_`` (the loss every 100 steps) and ``seconds_``."""
        r = self.recipe
        torch.manual_seed(r.seed)
        net = build(self.architecture)
        config = FitConfig(
            epochs=r.steps // STEPS_PER_EPOCH,
            batch_size=r.groups,
            lr=r.lr,
            weight_decay=r.weight_decay,
            loss="custom",
            schedule="cosine",
            seed=r.seed,
            checkpoint_dir=self.checkpoint_dir,
        )

        def loss_fn(scores: Any, levels: Any) -> Any:
            return ranking_loss(scores.view(r.groups, N_LEVELS + 1), levels, r.margin)

        batches = GroupBatches(X, net.input_node, r.groups, r.seed)
        res = fit(
            net, batches, None, config, resume=self.checkpoint_dir is not None, loss_fn=loss_fn
        )
        self.history_ = [
            {"step": h.epoch * STEPS_PER_EPOCH, "loss": round(h.loss, 5)} for h in res.history
        ]
        self.seconds_ = round(float(sum(h.seconds for h in res.history)), 1)
        self.net_ = net.eval()
        return self

    def predict(self, X: np.ndarray, batch: int = 128) -> np.ndarray:
        """Raw scores (P, N_VERSIONS) of every version."""
        flat = X.reshape(-1, *X.shape[2:])
        with torch.inference_mode():
            out = [
                self.net_(_as_input(self.net_.input_node, flat[s : s + batch])).numpy()
                for s in range(0, len(flat), batch)
            ]
        return np.concatenate(out).reshape(X.shape[:2]).astype(np.float64)

    def ms_per_face(self, sample: np.ndarray, repeats: int = 50) -> float:
        """Median milliseconds of the network on one face at batch 1 (after 5 warm-up calls)."""
        x = _as_input(self.net_.input_node, sample[:1])
        with torch.inference_mode():
            times = timeit.repeat(lambda: self.net_(x), repeat=5 + repeats, number=1)[5:]
        return float(np.median(times) * 1000.0)


def ranking_table(scores: np.ndarray) -> list[dict[str, Any]]:
    """Per distortion kind (and their mean), from scores (P, N_VERSIONS) of held-out photos:

    * ``pair_accuracy`` - share of the pairs of one photo's versions of that kind (clean
      included; 10 pairs per photo) in which the less distorted version scores higher;
    * ``spearman`` - Spearman correlation of score with minus the level, pooled over photos;
    * ``spearman_per_photo`` - its mean over photos (each photo's 5 versions).
    """
    lv = np.arange(N_LEVELS + 1)
    i, j = np.triu_indices(N_LEVELS + 1, k=1)
    rows = []
    for k, kind in enumerate(KINDS):
        s = scores[:, _kind_columns(k)]
        per = [float(spearmanr(r, -lv).statistic) for r in s if np.ptp(r) > 0]
        rows.append(
            {
                "kind": kind,
                "pair_accuracy": float(np.mean(s[:, i] > s[:, j])),
                "spearman": float(spearmanr(s.ravel(), -np.tile(lv, len(s))).statistic),
                "spearman_per_photo": float(np.mean(per)) if per else float("nan"),
            }
        )
    mean = {key: float(np.mean([r[key] for r in rows])) for key in RANK_KEYS}
    return [*rows, {"kind": "all (mean of kinds)", **mean}]


def calibration_knots(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the increasing isotonic fit of ``target`` (in [0, 1]) on ``scores``."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(scores).ravel(), np.asarray(target).ravel())
    return np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)


def agreement(embeddings: np.ndarray) -> np.ndarray:
    """``max(0, 1 - d / 0.6)`` per version, ``d`` the descriptor distance from version 0."""
    d = np.linalg.norm(embeddings - embeddings[:, :1], axis=2)
    return np.clip(1.0 - d / SAME_PERSON, 0.0, 1.0)


def _in_band(quality: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (quality >= lo) & ((quality < hi) if hi < 1.0 else (quality <= 1.0))


def choose_threshold(
    quality: np.ndarray, error: np.ndarray, clean_mae: float, min_faces: int = 30
) -> float:
    """The lowest band edge of :data:`BAND_EDGES` above which every band of at least
    ``min_faces`` faces errs at most :data:`TOLERANCE` times ``clean_mae`` (flat arrays)."""
    ok_from = float(BAND_EDGES[-1])
    for lo in BAND_EDGES[-2::-1]:
        inside = _in_band(quality, lo, lo + 0.1)
        if inside.sum() >= min_faces and float(np.mean(error[inside])) > TOLERANCE * clean_mae:
            break
        ok_from = float(lo)
    return round(ok_from, 2)


# -- data ---------------------------------------------------------------------------------------
def _cached(path: Path, make: Any, *args: Any) -> np.ndarray:
    """``make(*args)``, saved to ``path`` (``.npy``) and read back from it on later runs."""
    if path.is_file():
        return np.load(path, mmap_mode="r")
    arr = make(*args)
    with atomic_path(path) as tmp:
        np.save(tmp, arr)
    return arr


def _trunk_outputs(versions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (P, V, 128) and float16 stage-2 maps (P, V, 64, 17, 17) of versions."""
    trunk = TrunkStage(keep_maps=("stage2",), batch_size=32)
    P, V = versions.shape[:2]
    emb = np.empty((P, V, 128), np.float32)
    maps = np.empty((P, V, 64, 17, 17), np.float16)
    for p in range(P):
        res = trunk.compute(np.ascontiguousarray(versions[p]))
        emb[p], maps[p] = res["embedding"], res["stage2"]
    return emb, maps


def _error_rows(
    task: str, data_root: str | os.PathLike[str], photo: np.ndarray, maps: np.ndarray
) -> np.ndarray:
    """Absolute errors (P, V) on every version of the photos ``photo`` (dataset indices) by the
    float top of the CV fold of ``task``'s recipe that did not see each (raw expectation; read
    from the fold checkpoints, a missing one is trained first)."""
    recipe = get_recipe("age_utkface" if task == "age" else "attractiveness_scut")
    data = recipe.load(data_root)
    folds, tops = fold_estimators(recipe, data, recipe.top_learner)
    rows, y, bins = data.extra["rows"], data.y, np.asarray(tops[0].bins, np.float64)
    fold_of = np.empty(len(y), np.int64)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    pos = np.searchsorted(rows, photo)
    if not np.array_equal(rows[np.minimum(pos, len(rows) - 1)], photo):
        raise ValueError(f"some eval photos are not in the {task} cross-validation")
    err = np.empty(maps.shape[:2], np.float64)
    for p, q in enumerate(pos):
        err[p] = np.abs(predict(tops[fold_of[q]].top_, np.asarray(maps[p])) @ bins - y[q])
    return err


# -- the card -----------------------------------------------------------------------------------
_ARCH_TEXT = {
    "quality_map_head": "a small head on the trunk's shared stage-2 map (two 3x3 convolutions, "
    "mean and standard-deviation pooling, a two-layer MLP)",
    "quality_chip_net": "a small network of its own on the 150x150 chip (four stride-2 3x3 "
    "convolutions, mean and standard-deviation pooling, a two-layer MLP)",
}

#: The card's error tables: ``cv.json`` list -> (title, a template of ``cv.json``'s fields; the
#: header of its items' values, in order; their formats, None: as they are, "-" for None).
ERROR_TABLES = {
    "error_by_quality": (
        "Error by quality band (attractiveness: absolute error on SCUT-FBP5500's 1-5 scale, "
        "clean photos {clean_mae[attractiveness]:.3f}; age: years, clean photos "
        "{clean_mae[age]:.2f})",
        ("quality", "n (attr.)", "attractiveness MAE", "n (age)", "age MAE"),
        (None, None, "{:.3f}", None, "{:.2f}"),
    ),
    "error_by_version": (
        "Per version: median quality, median descriptor agreement, errors",
        ("version", "quality", "agreement", "attractiveness MAE", "age MAE"),
        (None, "{:.3f}", "{:.3f}", "{:.3f}", "{:.2f}0"),  # age: 2 decimals, printed with 3
    ),
}


def card_parts(cv: dict[str, Any]) -> tuple[dict[str, Any], list[CardTable]]:
    """The card's fields that ``cv`` (the training document) does not hold as they are written,
    and its tables: the candidates, the ranking per distortion, :data:`ERROR_TABLES`."""
    chosen, cands = cv["chosen"], cv["candidates"]
    rank_header = ["distortion"]
    for arch in cands:
        rank_header += [f"{arch}: pair acc.", "Spearman", "per photo"]
    rank_rows = [
        [r["kind"], *(c["ranking"][i][k] for c in cands.values() for k in RANK_KEYS)]
        for i, r in enumerate(cands[chosen]["ranking"])
    ]
    cand_rows = [
        [a + (" (shipped)" if a == chosen else ""), c["ranking"][-1]["pair_accuracy"]]
        + [c["ms_per_face"], c["parameters"], round(c["train_seconds"] / 60, 1)]
        for a, c in cands.items()
    ]
    tables = [
        CardTable(
            "Candidates (held-out pairwise accuracy, mean of the kinds; milliseconds per face "
            "at batch 1 on this CPU, network alone)",
            ["network", "pair accuracy", "ms per face", "parameters", "training min"],
            cand_rows,
            "{:.3f}",
        ),
        CardTable("Ranking on held-out photos, per distortion", rank_header, rank_rows, "{:.3f}"),
    ]
    for key, (title, header, formats) in ERROR_TABLES.items():
        cells = [zip(r.values(), formats, strict=True) for r in cv[key]]
        rows = [["-" if v is None else f.format(v) if f else v for v, f in c] for c in cells]
        tables.append(CardTable(title.format(**cv), list(header), rows))
    fields = {
        "network": _ARCH_TEXT.get(chosen, chosen),
        "levels": "; ".join(
            f"{k} {', '.join(f'{x:g}' for x in v)}" for k, v in cv["distortions"].items()
        ),
        "hashes": ", ".join(f"{k} `{v}`" for k, v in cv["data_hashes"].items()),
        "n_eval": sum(cv["photos"]["eval"].values()),
        "clean_pct": 100 * cv["calibration"]["clean_below_threshold"],
    }
    return fields, tables


# -- the recipe ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class QualityRecipe(Recipe):
    """The quality model's recipe, evaluated on held-out photos (:meth:`evaluate`) instead of
    cross-validated.

    Attributes
    ----------
    n_train, n_calib, n_eval : int
        Photos per dataset in each set.
    steps, groups : int
        Optimiser steps per candidate network (a multiple of 100); (photo, kind) groups a step.
    architectures : tuple of str
        Candidates (keys of :data:`facecore.quality.network.ARCHITECTURES`).
    chip_dirs : dict
        Chip cache folder of each dataset (shared with the attractiveness and age recipes).
    """

    name: str = "quality_faces"
    n_train: int = 500
    n_calib: int = 120
    n_eval: int = 200
    steps: int = 2000
    groups: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    margin: float = 1.0
    architectures: tuple[str, ...] = ("quality_map_head", "quality_chip_net")
    seed: int = 0
    work_dir: Path = Path(".cache/quality")
    chip_dirs: dict[str, str] = field(
        default_factory=lambda: {
            "scut-fbp5500": ".cache/attractiveness/chips",
            "mebeauty": ".cache/attractiveness/chips",
            "utkface": ".cache/age/chips",
        }
    )

    licence, rebuild = LICENCE, REBUILD
    #: The settings of the ranking alone (they do not change the data folder).
    ranking_settings = ("steps", "architectures", "lr", "weight_decay", "margin", "groups")
    card_text = {
        "summary": (
            "Quality of a face crop in [0, 1] (higher: better): how far blur, noise, JPEG "
            "compression, low resolution, under- or over-exposure or motion blur have moved the "
            "face, as the other heads see it, from a clean photo of it. Responses carry a warning "
            "for faces below {warn_below:.2f} (the service's default threshold, chosen from the "
            "error table below)."
        ),
        "model": (
            "RankIQA (Liu, van de Weijer, Bagdanov, ICCV 2017) without human quality labels: "
            "each training chip is distorted at four graded levels of seven kinds, and the "
            "network learns, by a pairwise hinge (margin {config[margin]}), that the less "
            "distorted version of a pair scores higher.",
            "Network: {network}; chosen over the other candidate by held-out pairwise ranking "
            "accuracy (table below).",
            "Calibration: isotonic regression, on the calibration photos, of the raw score onto "
            "the agreement max(0, 1 - d/0.6), where d is the distance between the 128-D dlib "
            "descriptor of the version and of the clean chip (0.6 is dlib's same-person "
            "distance). So 1 means the heads see the face as in the clean photo; 0 that the "
            "distortion moved it as far as a change of person.",
            "Training: {config[steps]} steps of {config[groups]} (photo, kind) groups of 5 "
            "versions, AdamW (lr {config[lr]}, cosine decay).",
            "Distortion levels 1-4: {levels}.",
        ),
        "training_data": (
            "Face chips (largest face, dlib 150x150) of three sets in `../shared/data`, drawn per "
            "set with seed {config[seed]} into disjoint parts: ranking {photos[train]}, "
            "calibration {photos[calib]}, evaluation {photos[eval]} photos; "
            "{versions_per_photo} versions each. Dataset sha256: {hashes}."
        ),
        "evaluation": (
            "On the {n_eval} evaluation photos (not used for ranking or calibration): pairwise "
            "accuracy over the 10 pairs of each photo's five versions of a kind (clean and "
            "levels 1-4), Spearman correlation of the score with the level (pooled, and the mean "
            "per photo). The error tables use the evaluation photos of SCUT-FBP5500 "
            "({photos[eval][scut-fbp5500]}) and UTKFace ({photos[eval][utkface]}) in every "
            "version, each rated and aged by the cross-validation fold model of "
            "`attractiveness_scut` and `age_utkface` that did not see it (raw expectations, "
            "before those models' calibration)."
        ),
        "evaluation_notes": (
            "Calibration on held-out photos: Spearman of quality with descriptor agreement "
            "{calibration[spearman_quality_vs_agreement]:.3f}, mean absolute difference "
            "{calibration[mae_quality_vs_agreement]:.3f}; clean chips' quality median "
            "{calibration[clean_quality_median]:.3f} (5th percentile "
            "{calibration[clean_quality_p05]:.3f}).\n\n"
            "Warning threshold: {warn_below:.2f}, the lowest band edge above which every band "
            "with at least 30 faces errs at most {tolerance}x as much as the clean photos, for "
            "attractiveness and for age (the stricter of the two). At it, {clean_pct:.1f}% of "
            "the clean evaluation photos are warned about (their own crops score low)."
        ),
        "limitations": (
            "Distortions are applied to the aligned chip, not to the whole photo; a face that is "
            "small in a large photo behaves like the downscale levels.",
            "Quality says how far the face is from a clean version of itself; it does not judge "
            "pose, occlusion, or whether the face is a face at all.",
            "The clean photos of the three sets are studio or web crops; real photos may have "
            "mixtures of distortions the training never saw.",
        ),
        "rebuild_note": (
            "Deterministic given the seed and the chip caches; the error tables need the fold "
            "checkpoints of `make train-age` and `make train-scut-ldl` (reused from their "
            "caches, or trained first)."
        ),
    }

    def __post_init__(self) -> None:
        if self.steps < 1 or self.steps % 100:
            raise ValueError(f"steps must be a positive multiple of 100, got {self.steps}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain values (``work_dir`` as a string)."""
        return asdict(self) | {"work_dir": str(self.work_dir)}

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        """The photos' versions, their maps and descriptors (cached under the work folder)."""
        t0, seconds = time.perf_counter(), {}
        tag = config_tag(
            {k: v for k, v in self.to_dict().items() if k not in self.ranking_settings}
        )
        work = Path(self.work_dir) / f"run-{tag}"
        work.mkdir(parents=True, exist_ok=True)
        chips, photo, hashes = {}, {}, {}  # per dataset: chips, indices of photos with a face
        for name, load in (
            ("scut-fbp5500", load_scut_fbp5500),
            ("mebeauty", load_mebeauty),
            ("utkface", load_utkface),
        ):
            ds = load(data_root)
            dc = extract_dataset_chips(ds, cache_dir=Path(self.chip_dirs[name]))
            chips[name], photo[name] = dc.chips, np.flatnonzero(dc.has_face)
            hashes[name] = dataset_hash(ds)
        sets: dict[str, dict[str, np.ndarray]] = {"train": {}, "calib": {}, "eval": {}}
        a, b = self.n_train, self.n_train + self.n_calib
        for salt, (name, rows) in enumerate(photo.items()):
            perm = np.random.default_rng([self.seed, salt]).permutation(len(rows))
            for part, idx in zip(sets, (perm[:a], perm[a:b], perm[b:][: self.n_eval]), strict=True):
                sets[part][name] = np.sort(idx)
        counts = {p: {n: int(len(i)) for n, i in d.items()} for p, d in sets.items()}
        logger.info("photos per set: %s", counts)
        versions = {}
        for part, picked in sets.items():
            # chips[n][i]: the i-th chip of the dataset, not of its photos with a face (as shipped)
            part_chips = np.concatenate([np.asarray(chips[n][i]) for n, i in picked.items()])
            ids = np.concatenate(
                [photo[n][i] + 10_000_000 * k for k, (n, i) in enumerate(picked.items())]
            )
            path = work / f"{part}-versions.npy"
            versions[part] = _cached(path, make_versions, part_chips, ids, self.seed)
        seconds["distortions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        resnet = load_face_resnet()

        def maps_of(v: np.ndarray) -> np.ndarray:
            flat = v.reshape(-1, *v.shape[2:])
            maps = frozen_maps(flat, resnet, upto="stage2", dtype="float16")
            return maps.reshape(*v.shape[:2], 64, 17, 17)

        train_maps = _cached(work / "train-maps.npy", maps_of, versions["train"])
        seconds["train_maps"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        calib_emb = _cached(work / "calib-emb.npy", lambda: _trunk_outputs(versions["calib"])[0])
        eval_paths = [work / "eval-emb.npy", work / "eval-maps.npy"]
        if not all(p.is_file() for p in eval_paths):
            for path, arr in zip(eval_paths, _trunk_outputs(versions["eval"]), strict=True):
                _cached(path, lambda a=arr: a)
        eval_emb, eval_maps = (np.load(p, mmap_mode="r") for p in eval_paths)
        calib_maps = _cached(work / "calib-maps.npy", maps_of, versions["calib"])
        seconds["eval_trunk"] = time.perf_counter() - t0
        evals = sets["eval"]
        return Data(
            y=np.zeros(sum(counts["eval"].values())),
            features={},
            title="SCUT-FBP5500, MEBeauty and UTKFace (face chips)",
            n_photos=sum(sum(c.values()) for c in counts.values()),
            data_hash=", ".join(f"{k} {v}" for k, v in hashes.items()),
            extra={
                "root": data_root,
                "work": work,
                "counts": counts,
                "hashes": hashes,
                "inputs": {
                    "chip": versions,
                    "stage2": {"train": train_maps, "calib": calib_maps, "eval": eval_maps},
                },
                "calib_emb": calib_emb,
                "eval_emb": eval_emb,
                "eval_photo": np.concatenate([photo[n][i] for n, i in evals.items()]),
                "eval_set": np.repeat(list(evals), [len(i) for i in evals.values()]),
                "seconds": seconds,
            },
        )

    def evaluate(self, data: Data, *, device: str = "cpu") -> Run:
        """Each candidate network ranked on the train photos and scored on the eval photos."""
        run, x = Run(self, data, [], device), data.extra
        x["rankers"] = {}
        for arch in self.architectures:
            sets = x["inputs"][ARCHITECTURES[arch].input_node]
            ckpt = x["work"] / f"ckpt-{arch}-{config_tag(self.to_dict())}"
            ranker = x["rankers"][arch] = Ranker(arch, self, ckpt).fit(sets["train"])
            table = ranking_table(ranker.predict(sets["eval"]))
            run.table[arch] = {
                "ranking": table,
                "train_seconds": ranker.seconds_,
                "ms_per_face": round(ranker.ms_per_face(sets["eval"][0]), 3),
                "parameters": int(sum(p.numel() for p in ranker.net_.parameters())),
                "history": ranker.history_,
            }
            logger.info("%s: %s", arch, table[-1])
        run.chosen = self.choose(run)
        return run

    def choose(self, run: Run) -> str:
        """The rule: the best held-out pairwise accuracy (ties: the faster network)."""
        rank = {
            a: (t["ranking"][-1]["pair_accuracy"], -t["ms_per_face"]) for a, t in run.table.items()
        }
        return max(self.architectures, key=rank.__getitem__)

    def ship(self, run: Run, out: Path) -> Any:
        """Calibrate the chosen network, tabulate the error by quality, set the threshold."""
        x, chosen = run.data.extra, run.chosen
        ranker = x["rankers"][chosen]
        sets = x["inputs"][ranker.net_.input_node]
        knots = calibration_knots(
            ranker.predict(sets["calib"]), agreement(np.asarray(x["calib_emb"]))
        )
        model = QualityModel(chosen, ranker.net_, knots)
        eval_q = model.calibrate(ranker.predict(sets["eval"]))
        eval_agree = agreement(np.asarray(x["eval_emb"]))
        calib_fit = {
            "spearman_quality_vs_agreement": float(
                spearmanr(eval_q.ravel(), eval_agree.ravel()).statistic
            ),
            "mae_quality_vs_agreement": float(np.mean(np.abs(eval_q - eval_agree))),
            "clean_quality_median": float(np.median(eval_q[:, 0])),
            "clean_quality_p05": float(np.quantile(eval_q[:, 0], 0.05)),
            "knots": len(knots[0]),
        }
        t0, errors, qual = time.perf_counter(), {}, {}
        eval_maps = np.asarray(x["inputs"]["stage2"]["eval"])
        for task, set_name in ERROR_SETS.items():
            sel = x["eval_set"] == set_name
            errors[task] = _error_rows(task, x["root"], x["eval_photo"][sel], eval_maps[sel])
            qual[task] = eval_q[sel]
        x["seconds"]["error_table"] = time.perf_counter() - t0
        clean_mae = {t: float(np.mean(e[:, 0])) for t, e in errors.items()}
        band_rows = []
        for lo in BAND_EDGES[:-1]:
            hi = round(lo + 0.1, 2)
            row: dict[str, Any] = {"band": f"{lo:.1f}-{hi:.1f}"}
            for task, q in qual.items():
                inside = _in_band(q, lo, hi)
                row[f"{task}_n"] = int(inside.sum())
                row[f"{task}_mae"] = float(np.mean(errors[task][inside])) if inside.any() else None
            band_rows.append(row)
        # A face is flagged when either task is unreliable there (the stricter threshold).
        model.warn_below = warn_below = max(
            choose_threshold(qual[t].ravel(), errors[t].ravel(), clean_mae[t]) for t in errors
        )
        calib_fit["clean_below_threshold"] = float(np.mean(eval_q[:, 0] < warn_below))
        per_version = [
            {
                "version": name,
                "quality_median": float(np.median(eval_q[:, c])),
                "agreement_median": float(np.median(eval_agree[:, c])),
                **{f"{t}_mae": float(np.mean(errors[t][:, c])) for t in errors},
            }
            for c, name in enumerate(VERSION_NAMES)
        ]
        counts, hashes = x["counts"], x["hashes"]
        cv = {
            "model": out.name,
            "task": "quality",
            "config": self.to_dict(),
            "photos": counts,
            "versions_per_photo": N_VERSIONS,
            "distortions": {k: list(v) for k, v in LEVELS.items()},
            "candidates": run.table,
            "chosen": chosen,
            "calibration": calib_fit,
            "clean_mae": clean_mae,
            "error_by_quality": band_rows,
            "error_by_version": per_version,
            "warn_below": warn_below,
            "tolerance": TOLERANCE,
            "seconds": {k: round(v, 1) for k, v in x["seconds"].items()},
            "data_hashes": hashes,
            "torch": torch.__version__,
        }
        ranking = run.table[chosen]["ranking"][-1]
        held_out = {k: round(ranking[k], 4) for k in ("pair_accuracy", "spearman")}
        model.metadata = {"task": "quality", "architecture": chosen, **held_out}
        model.metadata |= {"warn_below": warn_below, "licence": LICENCE, "rebuild": REBUILD}
        node = (
            "Face with its dlib 150x150 chip (cached by the trunk stage)"
            if ranker.net_.input_node == "chip"
            else "Face with features['trunk.stage2'] (the trunk stage's shared stage-2 map)"
        )
        n = {p: sum(c.values()) for p, c in counts.items()}
        entry = {
            "kind": "quality",
            "task": "quality",
            "architecture": chosen,
            "input_size": [150, 150],
            "normalisation": None,
            "chip": {"method": "dlib", "size": 150, "padding": 0.25},
            "outputs": [{"name": "quality", "kind": "scalar", "scale": [0.0, 1.0], "dim": None}],
            "inputs": node + "; output: quality in [0, 1]",
            "source": (
                "facecore.quality.train (scripts/train_quality.py): RankIQA pairwise ranking "
                "(Liu et al. 2017) on 7 synthetic distortions x 4 levels of face chips, isotonic "
                "calibration to descriptor agreement"
            ),
            "training_data": (
                f"face chips of SCUT-FBP5500, MEBeauty and UTKFace (shared/data; sha256 "
                f"{', '.join(f'{k} {v[:16]}' for k, v in hashes.items())}): "
                f"{n['train']} photos for ranking, {n['calib']} for calibration, "
                f"{n['eval']} held out for evaluation"
            ),
            "licence": LICENCE,
            "metrics": {"held_out": held_out | {"n_photos": n["eval"]}, "warn_below": warn_below},
            "card": f"{out.name}.md",
            "rebuild": REBUILD,
        }
        fields, tables = card_parts(cv)
        return Shipped(model, ".pt", cv, lambda path: entry, fields=fields, tables=tables)
