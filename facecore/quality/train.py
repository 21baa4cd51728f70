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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.atomic import atomic_path
from facecore.quality.distortions import LEVELS, N_LEVELS, distort, distortion_kinds
from facecore.training.publish import CardTable, Shipped
from facecore.training.runner import Data, Recipe, Run, config_tag

__all__ = [
    "LICENCE",
    "REBUILD",
    "TOLERANCE",
    "GroupBatches",
    "QualityRecipe",
    "choose_threshold",
    "make_versions",
    "ranking_table",
    "train_ranker",
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

KINDS = distortion_kinds()
N_VERSIONS = 1 + len(KINDS) * N_LEVELS
BAND_EDGES = np.round(np.arange(0.0, 1.01, 0.1), 2)


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
    import torch

    x = np.asarray(block)
    if arch_node == "chip":
        x = x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x))


#: Optimiser steps per epoch of the ranker's fit (a history entry and a checkpoint each).
STEPS_PER_EPOCH = 100


class GroupBatches:
    """The ranker's batches (a :class:`facecore.training.fit.Batches`): each step, ``groups``
    seeded draws of (photo, distortion kind), each with its clean and graded versions; a chip
    network's batch is mirrored with probability 1/2. Targets: the levels of each group."""

    def __init__(self, inputs: np.ndarray, node: str, config: QualityRecipe) -> None:
        import torch

        self.inputs, self.node, self.groups = inputs, node, config.groups
        self.rng = np.random.default_rng(config.seed)
        self.levels = torch.arange(N_LEVELS + 1).repeat(config.groups, 1)

    def __len__(self) -> int:
        return STEPS_PER_EPOCH

    def epoch(self, gen: Any) -> Any:
        import torch

        for _ in range(STEPS_PER_EPOCH):
            photos = self.rng.integers(0, len(self.inputs), self.groups)
            kinds = self.rng.integers(0, len(KINDS), self.groups)
            cols = np.array([_kind_columns(k) for k in kinds])
            block = np.stack([self.inputs[p, c] for p, c in zip(photos, cols, strict=True)])
            x = _as_input(self.node, block.reshape(-1, *block.shape[2:]))
            if self.node == "chip" and self.rng.random() < 0.5:
                x = torch.flip(x, dims=(3,))
            yield x, self.levels, 1.0

    def state_dict(self) -> Any:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: Any) -> None:
        self.rng.bit_generator.state = state


def train_ranker(
    architecture: str,
    inputs: np.ndarray,
    config: QualityRecipe,
    checkpoint_dir: Path | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train a candidate network by ranking on ``inputs`` (P, N_VERSIONS, ...): chips
    (..., 150, 150, 3) uint8 for a chip network, maps (..., 64, 17, 17) for a map head; with
    :func:`facecore.training.fit.fit` (AdamW, cosine decay over ``config.steps``), checkpointed
    in ``checkpoint_dir`` every :data:`STEPS_PER_EPOCH` steps and resumed from there.

    Returns
    -------
    (network in eval mode, history dict with the loss every 100 steps and the seconds)
    """
    import torch

    from facecore.quality.network import build, ranking_loss
    from facecore.training.fit import FitConfig, fit

    torch.manual_seed(config.seed)
    net = build(architecture)
    batches = GroupBatches(inputs, net.input_node, config)
    fit_config = FitConfig(
        epochs=config.steps // STEPS_PER_EPOCH,
        batch_size=config.groups,
        lr=config.lr,
        weight_decay=config.weight_decay,
        loss="custom",
        schedule="cosine",
        seed=config.seed,
        checkpoint_dir=checkpoint_dir,
    )

    def loss_fn(scores: Any, levels: Any) -> Any:
        return ranking_loss(scores.view(config.groups, N_LEVELS + 1), levels, config.margin)

    result = fit(net, batches, None, fit_config, resume=checkpoint_dir is not None, loss_fn=loss_fn)
    history = [
        {"step": r.epoch * STEPS_PER_EPOCH, "loss": round(r.loss, 5)} for r in result.history
    ]
    seconds = float(sum(r.seconds for r in result.history))
    return net.eval(), {"history": history, "seconds": round(seconds, 1)}


def _scores(net: Any, inputs: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch

    flat = inputs.reshape(-1, *inputs.shape[2:])
    out = []
    with torch.inference_mode():
        for s in range(0, len(flat), batch):
            out.append(net(_as_input(net.input_node, flat[s : s + batch])).numpy())
    return np.concatenate(out).reshape(inputs.shape[:2]).astype(np.float64)


def ranking_table(scores: np.ndarray) -> list[dict[str, Any]]:
    """Per distortion kind (and overall), from scores (P, N_VERSIONS) of held-out photos:

    * ``pair_accuracy`` - share of the pairs of one photo's versions of that kind (clean
      included; 10 pairs per photo) in which the less distorted version scores higher;
    * ``spearman`` - Spearman correlation of score with minus the level, pooled over photos;
    * ``spearman_per_photo`` - its mean over photos (each photo's 5 versions).
    """
    from scipy.stats import spearmanr

    rows = []
    lv = np.arange(N_LEVELS + 1)
    i, j = np.triu_indices(N_LEVELS + 1, k=1)
    all_acc, all_rho, all_pp = [], [], []
    for k, kind in enumerate(KINDS):
        s = scores[:, _kind_columns(k)]
        acc = float(np.mean(s[:, i] > s[:, j]))
        rho = float(spearmanr(s.ravel(), -np.tile(lv, len(s))).statistic)
        per = [float(spearmanr(r, -lv).statistic) for r in s if np.ptp(r) > 0]
        pp = float(np.mean(per)) if per else float("nan")
        rows.append({"kind": kind, "pair_accuracy": acc, "spearman": rho, "spearman_per_photo": pp})
        all_acc.append(acc), all_rho.append(rho), all_pp.append(pp)
    rows.append(
        {
            "kind": "all (mean of kinds)",
            "pair_accuracy": float(np.mean(all_acc)),
            "spearman": float(np.mean(all_rho)),
            "spearman_per_photo": float(np.mean(all_pp)),
        }
    )
    return rows


def calibration_knots(scores: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the increasing isotonic fit of ``target`` (in [0, 1]) on ``scores``."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    iso.fit(np.asarray(scores).ravel(), np.asarray(target).ravel())
    return np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)


def agreement(embeddings: np.ndarray) -> np.ndarray:
    """``max(0, 1 - d / 0.6)`` per version, ``d`` the descriptor distance from version 0."""
    d = np.linalg.norm(embeddings - embeddings[:, :1], axis=2)
    return np.clip(1.0 - d / SAME_PERSON, 0.0, 1.0)


def choose_threshold(
    quality: np.ndarray, error: np.ndarray, clean_mae: float, min_faces: int = 30
) -> float:
    """The lowest band edge ``e`` of :data:`BAND_EDGES` such that every band at or above ``e``
    holding at least ``min_faces`` faces has a mean absolute error at most :data:`TOLERANCE`
    times the clean photos' ``clean_mae``; ``quality`` and ``error`` are flat arrays over the
    same versions."""
    ok_from = float(BAND_EDGES[-1])
    for lo in BAND_EDGES[-2::-1]:
        hi = lo + 0.1
        inside = (quality >= lo) & ((quality < hi) if hi < 1.0 else (quality <= 1.0))
        if inside.sum() >= min_faces and float(np.mean(error[inside])) > TOLERANCE * clean_mae:
            break
        ok_from = float(lo)
    return round(ok_from, 2)


# -- data ---------------------------------------------------------------------------------------
def _sources(data_root: str | os.PathLike[str], cfg: QualityRecipe) -> dict[str, Any]:
    """Per dataset: the chips of its photos with a face, their dataset indices, its sha256."""
    from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500, load_utkface
    from facecore.training.chips import extract_dataset_chips

    out = {}
    for name, load in (
        ("scut-fbp5500", load_scut_fbp5500),
        ("mebeauty", load_mebeauty),
        ("utkface", load_utkface),
    ):
        ds = load(data_root)
        chips = extract_dataset_chips(ds, cache_dir=Path(cfg.chip_dirs[name]))
        out[name] = (chips.chips, np.flatnonzero(chips.has_face), dataset_hash(ds))
    return out


def _cached(path: Path, make: Any) -> np.ndarray:
    if path.is_file():
        return np.load(path, mmap_mode="r")
    arr = make()
    with atomic_path(path) as tmp:
        np.save(tmp, arr)
    return arr


def _trunk_outputs(versions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (P, V, 128) and float16 stage-2 maps (P, V, 64, 17, 17) of versions."""
    from facecore.trunk import TrunkStage

    trunk = TrunkStage(keep_maps=("stage2",), batch_size=32)
    P, V = versions.shape[:2]
    emb = np.empty((P, V, 128), np.float32)
    maps = np.empty((P, V, 64, 17, 17), np.float16)
    for p in range(P):
        res = trunk.compute(np.ascontiguousarray(versions[p]))
        emb[p], maps[p] = res["embedding"], res["stage2"]
    return emb, maps


def _error_rows(
    task: str,
    data_root: str | os.PathLike[str],
    photo: np.ndarray,
    maps: np.ndarray,
) -> np.ndarray:
    """Absolute errors (P, V) on every version of the photos ``photo`` (dataset indices) by the
    fold top of the shipped CV of ``task`` that did not see each: its recipe's float top fitted
    per fold (read from the fold checkpoints; a missing one is trained first), raw expectation."""
    from facecore.training.fit import predict
    from facecore.training.recipes import get_recipe
    from facecore.training.runner import fold_estimators

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


def _ms_per_face(net: Any, sample: np.ndarray, repeats: int = 50) -> float:
    import torch

    x = _as_input(net.input_node, sample[:1])
    with torch.inference_mode():
        for _ in range(5):
            net(x)
        t = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1000.0)


def _config_tag(cfg: QualityRecipe) -> str:
    """Keys the run's data folder (neither the number of steps nor the candidates change it)."""
    d = cfg.to_dict()
    for k in ("steps", "architectures", "lr", "weight_decay", "margin", "groups"):
        d.pop(k)
    return config_tag(d)


_ARCH_TEXT = {
    "quality_map_head": "a small head on the trunk's shared stage-2 map (two 3x3 convolutions, "
    "mean and standard-deviation pooling, a two-layer MLP)",
    "quality_chip_net": "a small network of its own on the 150x150 chip (four stride-2 3x3 "
    "convolutions, mean and standard-deviation pooling, a two-layer MLP)",
}


def _fmt(v: Any, f: str = "{:.3f}") -> Any:
    return "-" if v is None else (f.format(v) if isinstance(v, float) else v)


def card_tables(cv: dict[str, Any]) -> list[Any]:
    """The card's tables, from the training document ``cv``: the candidates, the ranking per
    distortion, the error by quality band and per version."""
    chosen, cands, clean = cv["chosen"], cv["candidates"], cv["clean_mae"]
    kinds = [r["kind"] for r in cands[chosen]["ranking"]]
    rank_header = ["distortion"]
    for arch in cands:
        rank_header += [f"{arch}: pair acc.", "Spearman", "per photo"]
    rank_rows = [
        [kind, *(c["ranking"][i][k] for c in cands.values() for k in _RANK_KEYS)]
        for i, kind in enumerate(kinds)
    ]
    cand_rows = [
        [a + (" (shipped)" if a == chosen else ""), c["ranking"][-1]["pair_accuracy"]]
        + [c["ms_per_face"], c["parameters"], round(c["train_seconds"] / 60, 1)]
        for a, c in cands.items()
    ]
    bands = [
        [r["band"], r["attractiveness_n"], _fmt(r["attractiveness_mae"]), r["age_n"]]
        + [_fmt(r["age_mae"], "{:.2f}")]
        for r in cv["error_by_quality"]
    ]
    versions = [
        [r["version"], r["quality_median"], r["agreement_median"], r["attractiveness_mae"]]
        + [round(r["age_mae"], 2)]
        for r in cv["error_by_version"]
    ]
    return [
        CardTable(
            "Candidates (held-out pairwise accuracy, mean of the kinds; milliseconds per face "
            "at batch 1 on this CPU, network alone)",
            ["network", "pair accuracy", "ms per face", "parameters", "training min"],
            cand_rows,
            "{:.3f}",
        ),
        CardTable("Ranking on held-out photos, per distortion", rank_header, rank_rows, "{:.3f}"),
        CardTable(
            "Error by quality band (attractiveness: absolute error on SCUT-FBP5500's 1-5 "
            f"scale, clean photos {clean['attractiveness']:.3f}; age: years, clean photos "
            f"{clean['age']:.2f})",
            ["quality", "n (attr.)", "attractiveness MAE", "n (age)", "age MAE"],
            bands,
        ),
        CardTable(
            "Per version: median quality, median descriptor agreement, errors",
            ["version", "quality", "agreement", "attractiveness MAE", "age MAE"],
            versions,
            "{:.3f}",
        ),
    ]


def card_fields(cv: dict[str, Any]) -> dict[str, Any]:
    """The card's template fields that ``cv`` does not hold as they are written."""
    return {
        "network": _ARCH_TEXT.get(cv["chosen"], cv["chosen"]),
        "levels": "; ".join(
            f"{k} {', '.join(f'{x:g}' for x in v)}" for k, v in cv["distortions"].items()
        ),
        "hashes": ", ".join(f"{k} `{v}`" for k, v in cv["data_hashes"].items()),
        "n_eval": sum(cv["photos"]["eval"].values()),
        "clean_pct": 100 * cv["calibration"]["clean_below_threshold"],
    }


_RANK_KEYS = ("pair_accuracy", "spearman", "spearman_per_photo")


@dataclass(frozen=True)
class QualityRecipe(Recipe):
    """The quality model's recipe: its settings and the steps that
    :func:`facecore.training.runner.train` runs (a held-out evaluation instead of a
    cross-validation: :meth:`evaluate`).

    Attributes
    ----------
    n_train, n_calib, n_eval : int
        Photos per dataset in each set.
    steps : int
        Optimiser steps per candidate network.
    groups : int
        (photo, kind) groups per step (each with its 1 + N_LEVELS versions).
    lr, weight_decay, margin : float
    architectures : tuple of str
        Candidates (keys of :data:`facecore.quality.network.ARCHITECTURES`).
    seed : int
    work_dir : Path
    chip_dirs : dict
        Chip cache folder of each dataset (shared with the attractiveness and age trainers).
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
        d = asdict(self)
        d["work_dir"] = str(self.work_dir)
        return d

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        """The photos' versions, their maps and descriptors (cached under the work folder)."""
        from facecore.training.chips import FACE_RESNET_MODEL, frozen_maps, load_face_resnet

        cfg, t0 = self, time.perf_counter()
        work = Path(cfg.work_dir) / f"run-{_config_tag(cfg)}"
        work.mkdir(parents=True, exist_ok=True)
        seconds: dict[str, float] = {}
        sources = _sources(data_root, cfg)
        sets: dict[str, dict[str, np.ndarray]] = {"train": {}, "calib": {}, "eval": {}}
        a, b = cfg.n_train, cfg.n_train + cfg.n_calib
        for salt, (name, (_, photo, _)) in enumerate(sources.items()):
            perm = np.random.default_rng([cfg.seed, salt]).permutation(len(photo))
            for part, idx in (
                ("train", perm[:a]),
                ("calib", perm[a:b]),
                ("eval", perm[b:][: cfg.n_eval]),
            ):
                sets[part][name] = np.sort(idx)
        counts = {p: {n: int(len(i)) for n, i in d.items()} for p, d in sets.items()}
        logger.info("photos per set: %s", counts)

        def versions_of(part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            chips, photos, ids, names = [], [], [], []
            for k, (name, (src_chips, photo, _)) in enumerate(sources.items()):
                idx = sets[part][name]
                chips.append(np.asarray(src_chips[idx]))
                photos.append(photo[idx])
                ids.append(photo[idx] + 10_000_000 * k)
                names += [name] * len(idx)
            chips_a, photo_a, ids_a = (np.concatenate(c) for c in (chips, photos, ids))
            versions = _cached(
                work / f"{part}-versions.npy", lambda: make_versions(chips_a, ids_a, cfg.seed)
            )
            return versions, photo_a, np.asarray(names)

        train_v, _, _ = versions_of("train")
        calib_v, _, _ = versions_of("calib")
        eval_v, eval_photo, eval_set = versions_of("eval")
        seconds["distortions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        resnet = load_face_resnet()
        train_maps = frozen_maps(
            train_v.reshape(-1, *train_v.shape[2:]),
            resnet,
            upto="stage2",
            dtype="float16",
            cache_dir=work,
            key=f"quality-train|{_config_tag(cfg)}|{FACE_RESNET_MODEL}",
        ).reshape(*train_v.shape[:2], 64, 17, 17)
        seconds["train_maps"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        calib_emb = _cached(work / "calib-emb.npy", lambda: _trunk_outputs(calib_v)[0])
        eval_out = None

        def eval_trunk() -> tuple[np.ndarray, np.ndarray]:
            nonlocal eval_out
            if eval_out is None:
                eval_out = _trunk_outputs(eval_v)
            return eval_out

        eval_emb = _cached(work / "eval-emb.npy", lambda: eval_trunk()[0])
        eval_maps = _cached(work / "eval-maps.npy", lambda: eval_trunk()[1])
        calib_maps = _cached(
            work / "calib-maps.npy",
            lambda: frozen_maps(
                calib_v.reshape(-1, *calib_v.shape[2:]), resnet, upto="stage2", dtype="float16"
            ).reshape(*calib_v.shape[:2], 64, 17, 17),
        )
        seconds["eval_trunk"] = time.perf_counter() - t0
        hashes = {name: h for name, (_, _, h) in sources.items()}
        inputs = {
            "chip": {"train": train_v, "calib": calib_v, "eval": eval_v},
            "stage2": {"train": train_maps, "calib": calib_maps, "eval": eval_maps},
        }
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
                "inputs": inputs,
                "calib_emb": calib_emb,
                "eval_emb": eval_emb,
                "eval_photo": eval_photo,
                "eval_set": eval_set,
                "seconds": seconds,
            },
        )

    def evaluate(self, data: Data, device: str = "cpu") -> Run:
        """Each candidate network ranked on the train photos and scored on the eval photos."""
        from facecore.quality.network import ARCHITECTURES

        run = Run(self, data, [], device)
        x = data.extra
        nets: dict[str, Any] = {}
        for arch in self.architectures:
            sets = x["inputs"][ARCHITECTURES[arch].input_node]
            tag = config_tag(self.to_dict())  # every setting of the run
            net, hist = train_ranker(arch, sets["train"], self, x["work"] / f"ckpt-{arch}-{tag}")
            table = ranking_table(_scores(net, sets["eval"]))
            run.table[arch] = {
                "ranking": table,
                "train_seconds": hist["seconds"],
                "ms_per_face": round(_ms_per_face(net, sets["eval"][0]), 3),
                "parameters": int(sum(p.numel() for p in net.parameters())),
                "history": hist["history"],
            }
            nets[arch] = net
            logger.info("%s: %s", arch, table[-1])
        x["nets"] = nets
        run.chosen = max(
            self.architectures,
            key=lambda a: (
                run.table[a]["ranking"][-1]["pair_accuracy"],
                -run.table[a]["ms_per_face"],
            ),
        )
        return run

    def ship(self, run: Run, out: Path) -> Any:
        """Calibrate the chosen network, tabulate the error by quality, set the threshold."""
        import torch
        from scipy.stats import spearmanr

        from facecore.quality.model import QualityModel

        x, chosen, cfg = run.data.extra, run.chosen, self
        net = x["nets"][chosen]
        sets = x["inputs"][net.input_node]
        knots = calibration_knots(
            _scores(net, sets["calib"]), agreement(np.asarray(x["calib_emb"]))
        )
        model = QualityModel(chosen, net, knots)
        eval_q = model.calibrate(_scores(net, sets["eval"]))
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
        # Error by quality band, on the eval photos of the two rated/aged sets.
        t0, seconds = time.perf_counter(), x["seconds"]
        errors: dict[str, np.ndarray] = {}
        qual: dict[str, np.ndarray] = {}
        eval_maps = np.asarray(x["inputs"]["stage2"]["eval"])
        for task, set_name in (("attractiveness", "scut-fbp5500"), ("age", "utkface")):
            sel = x["eval_set"] == set_name
            errors[task] = _error_rows(task, x["root"], x["eval_photo"][sel], eval_maps[sel])
            qual[task] = eval_q[sel]
        seconds["error_table"] = time.perf_counter() - t0
        clean_mae = {t: float(np.mean(errors[t][:, 0])) for t in errors}
        band_rows = []
        for lo in BAND_EDGES[:-1]:
            hi = round(lo + 0.1, 2)
            row: dict[str, Any] = {"band": f"{lo:.1f}-{hi:.1f}"}
            for task in errors:
                q = qual[task]
                inside = (q >= lo) & ((q < hi) if hi < 1.0 else (q <= 1.0))
                row[f"{task}_n"] = int(inside.sum())
                row[f"{task}_mae"] = float(np.mean(errors[task][inside])) if inside.any() else None
            band_rows.append(row)
        # The threshold: a face is flagged when either task is unreliable there (the stricter).
        warn_below = max(
            choose_threshold(qual[t].ravel(), errors[t].ravel(), clean_mae[t]) for t in errors
        )
        model.warn_below = warn_below
        # How often a clean photo is warned about at that threshold (its own quality is low).
        calib_fit["clean_below_threshold"] = float(np.mean(eval_q[:, 0] < warn_below))
        versions = [("clean", 0)] + [
            (f"{kind} {lv}", version_index(k, lv))
            for k, kind in enumerate(KINDS)
            for lv in range(1, N_LEVELS + 1)
        ]
        per_kind_error = [
            {
                "version": name,
                "quality_median": float(np.median(eval_q[:, c])),
                "agreement_median": float(np.median(eval_agree[:, c])),
                **{f"{t}_mae": float(np.mean(errors[t][:, c])) for t in errors},
            }
            for name, c in versions
        ]
        counts, hashes = x["counts"], x["hashes"]
        cv = {
            "model": out.name,
            "task": "quality",
            "config": cfg.to_dict(),
            "photos": counts,
            "versions_per_photo": N_VERSIONS,
            "distortions": {k: list(v) for k, v in LEVELS.items()},
            "candidates": run.table,
            "chosen": chosen,
            "calibration": calib_fit,
            "clean_mae": clean_mae,
            "error_by_quality": band_rows,
            "error_by_version": per_kind_error,
            "warn_below": warn_below,
            "tolerance": TOLERANCE,
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "data_hashes": hashes,
            "torch": torch.__version__,
        }
        ranking = run.table[chosen]["ranking"][-1]
        model.metadata = {
            "task": "quality",
            "architecture": chosen,
            "pair_accuracy": round(ranking["pair_accuracy"], 4),
            "spearman": round(ranking["spearman"], 4),
            "warn_below": warn_below,
            "licence": LICENCE,
            "rebuild": REBUILD,
        }
        entry = {
            "kind": "quality",
            "task": "quality",
            "architecture": chosen,
            "input_size": [150, 150],
            "normalisation": None,
            "chip": {"method": "dlib", "size": 150, "padding": 0.25},
            "outputs": [{"name": "quality", "kind": "scalar", "scale": [0.0, 1.0], "dim": None}],
            "inputs": (
                "Face with its dlib 150x150 chip (cached by the trunk stage)"
                if net.input_node == "chip"
                else "Face with features['trunk.stage2'] (the trunk stage's shared stage-2 map)"
            )
            + "; output: quality in [0, 1]",
            "source": (
                "facecore.quality.train (scripts/train_quality.py): RankIQA pairwise ranking "
                "(Liu et al. 2017) on 7 synthetic distortions x 4 levels of face chips, isotonic "
                "calibration to descriptor agreement"
            ),
            "training_data": (
                f"face chips of SCUT-FBP5500, MEBeauty and UTKFace (shared/data; sha256 "
                f"{', '.join(f'{k} {v[:16]}' for k, v in hashes.items())}): "
                f"{sum(counts['train'].values())} photos for ranking, "
                f"{sum(counts['calib'].values())} for calibration, "
                f"{sum(counts['eval'].values())} held out for evaluation"
            ),
            "licence": LICENCE,
            "metrics": {
                "held_out": {
                    "pair_accuracy": round(ranking["pair_accuracy"], 4),
                    "spearman": round(ranking["spearman"], 4),
                    "n_photos": int(sum(counts["eval"].values())),
                },
                "warn_below": warn_below,
            },
            "card": f"{out.name}.md",
            "rebuild": REBUILD,
        }
        fields, tables = card_fields(cv), card_tables(cv)
        return Shipped(model, ".pt", cv, lambda path: entry, fields=fields, tables=tables)
