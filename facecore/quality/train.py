"""Train, evaluate and ship the face quality model (RankIQA on synthetic distortions).

1. **Photos.** The largest face's 150x150 chip of photos of SCUT-FBP5500, MEBeauty and UTKFace
   (the chip caches the attractiveness and age trainers use). Per dataset, a seeded draw puts
   photos in three disjoint sets: *train* (the ranking network), *calib* (the calibration) and
   *eval* (the card's tables).
2. **Versions.** Every chip in 1 + 7 x 4 versions: itself and each distortion of
   :mod:`facecore.quality.distortions` at levels 1..4 (seeded per photo, kind and level).
3. **Ranking.** Each candidate network (:mod:`facecore.quality.network`) is trained with
   RankIQA's hinge over the pairs of one chip's graded versions of one kind (clean included):
   batches of (photo, kind) groups, AdamW with cosine decay; checkpointed, so a rerun resumes.
4. **Which network.** Pairwise ranking accuracy on the eval photos decides (the cost per face is
   measured and reported beside it).
5. **Calibration.** Isotonic regression, on the calib photos, of the chosen network's score onto
   ``max(0, 1 - d / 0.6)``, ``d`` being the distance of the version's 128-D dlib descriptor from
   the clean chip's (0.6: dlib's same-person threshold).
6. **Error by quality.** Eval photos of SCUT-FBP5500 and UTKFace are rated and aged, in every
   version, by the fold model of the attractiveness and age cross-validations that did not see
   them (their raw expectations); the absolute errors are tabulated by quality band. The default
   warning threshold (``warn_below``) is the lowest band edge above which every band with enough
   faces errs at most :data:`TOLERANCE` times as much as the clean photos do, for both tasks.

Outputs: ``<out>.pt`` (:class:`facecore.quality.model.QualityModel`), its manifest entry,
``<out>.cv.json`` and the card ``<out>.md``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facecore.atomic import atomic_path
from facecore.quality.distortions import LEVELS, N_LEVELS, distort, distortion_kinds

__all__ = [
    "LICENCE",
    "REBUILD",
    "TOLERANCE",
    "GroupBatches",
    "QualityTrainConfig",
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


@dataclass(frozen=True)
class QualityTrainConfig:
    """Settings of :func:`main`.

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

    def __post_init__(self) -> None:
        if self.steps < 1 or self.steps % 100:
            raise ValueError(f"steps must be a positive multiple of 100, got {self.steps}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["work_dir"] = str(self.work_dir)
        return d


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

    def __init__(self, inputs: np.ndarray, node: str, config: QualityTrainConfig) -> None:
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
    config: QualityTrainConfig,
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
    quality: np.ndarray,
    errors: dict[str, np.ndarray],
    clean_mae: dict[str, float],
    min_faces: int = 30,
) -> float:
    """The lowest band edge ``e`` of :data:`BAND_EDGES` such that every band at or above ``e``
    holding at least ``min_faces`` faces has, for every task, a mean absolute error at most
    :data:`TOLERANCE` times the clean photos'.

    ``quality`` and each ``errors[task]`` are flat arrays over the same versions.
    """
    ok_from = float(BAND_EDGES[-1])
    for lo in BAND_EDGES[-2::-1]:
        hi = lo + 0.1
        inside = (quality >= lo) & ((quality < hi) if hi < 1.0 else (quality <= 1.0))
        fine = True
        if inside.sum() >= min_faces:
            for task, err in errors.items():
                if float(np.mean(err[inside])) > TOLERANCE * clean_mae[task]:
                    fine = False
        if not fine:
            break
        ok_from = float(lo)
    return round(ok_from, 2)


# -- data ---------------------------------------------------------------------------------------
@dataclass
class _Source:
    name: str
    chips: np.ndarray  # (N_with_face, 150, 150, 3) of the photos with a face
    photo: np.ndarray  # dataset index of each chip


def _sources(data_root: str | os.PathLike[str], cfg: QualityTrainConfig) -> list[_Source]:
    from facecore.datasets import load_mebeauty, load_scut_fbp5500, load_utkface
    from facecore.training.chips import extract_dataset_chips

    out = []
    for name, load in (
        ("scut-fbp5500", load_scut_fbp5500),
        ("mebeauty", load_mebeauty),
        ("utkface", load_utkface),
    ):
        ds = load(data_root)
        chips = extract_dataset_chips(ds, cache_dir=Path(cfg.chip_dirs[name]), progress=False)
        rows = np.flatnonzero(chips.has_face)
        out.append(_Source(name, chips.chips, rows))
    return out


def _split(n: int, cfg: QualityTrainConfig, salt: int) -> dict[str, np.ndarray]:
    perm = np.random.default_rng([cfg.seed, salt]).permutation(n)
    a, b = cfg.n_train, cfg.n_train + cfg.n_calib
    return {
        "train": np.sort(perm[:a]),
        "calib": np.sort(perm[a:b]),
        "eval": np.sort(perm[b : b + cfg.n_eval]),
    }


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


def _fold_predictor(task: str, data_root: str | os.PathLike[str]) -> Any:
    """(dataset indices, labels, the fold of each, bins, each fold's top) of the shipped CV of
    ``task``: its recipe's data and its float top fitted per fold (read from the fold
    checkpoints; a missing one is trained first)."""
    from facecore.training.recipes import get_recipe
    from facecore.training.runner import fold_estimators

    recipe = get_recipe("age_utkface" if task == "age" else "attractiveness_scut")
    data = recipe.load(data_root)
    folds, tops = fold_estimators(recipe, data, recipe.top_learner)
    fold_of = np.empty(len(data.y), np.int64)
    for k, (_, te) in enumerate(folds):
        fold_of[te] = k
    bins = np.asarray(tops[0].bins, np.float64)
    return data.extra["rows"], data.y, fold_of, bins, [t.top_ for t in tops]


def _error_rows(
    task: str,
    data_root: str | os.PathLike[str],
    photo: np.ndarray,
    maps: np.ndarray,
) -> np.ndarray:
    """Absolute errors (P, V) of the out-of-fold model of ``task`` on every version."""
    from facecore.training.fit import predict

    rows, y, fold_of, bins, tops = _fold_predictor(task, data_root)
    pos = np.searchsorted(rows, photo)
    if not np.array_equal(rows[np.minimum(pos, len(rows) - 1)], photo):
        raise ValueError(f"some eval photos are not in the {task} cross-validation")
    err = np.empty(maps.shape[:2], np.float64)
    for p in range(len(photo)):
        top = tops[fold_of[pos[p]]]
        probs = predict(top, np.asarray(maps[p]), loss="kl")
        err[p] = np.abs(probs @ bins - y[pos[p]])
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


@dataclass
class QualityTrainResult:
    cv: dict[str, Any]
    model_path: Path
    card_path: Path


def main(
    data_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: QualityTrainConfig | None = None,
) -> QualityTrainResult:
    """Build the data, train the candidates, pick, calibrate, tabulate, write every artefact."""
    import torch

    from facecore.datasets import dataset_hash, load_mebeauty, load_scut_fbp5500, load_utkface
    from facecore.model_store import sha256_file, write_manifest_entry
    from facecore.quality.model import QualityModel
    from facecore.training.chips import FACE_RESNET_MODEL, frozen_maps, load_face_resnet

    cfg = config or QualityTrainConfig()
    out = Path(out)
    work = Path(cfg.work_dir) / f"run-{_config_tag(cfg)}"
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    seconds: dict[str, float] = {}

    sources = _sources(data_root, cfg)
    sets: dict[str, dict[str, np.ndarray]] = {"train": {}, "calib": {}, "eval": {}}
    for salt, src in enumerate(sources):
        for part, idx in _split(len(src.photo), cfg, salt).items():
            sets[part][src.name] = idx
    counts = {p: {n: int(len(i)) for n, i in d.items()} for p, d in sets.items()}
    logger.info("photos per set: %s", counts)

    def versions_of(part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chips, photos, names = [], [], []
        for src in sources:
            idx = sets[part][src.name]
            chips.append(np.asarray(src.chips[idx]))
            photos.append(src.photo[idx])
            names += [src.name] * len(idx)
        chips_a, photo_a = np.concatenate(chips), np.concatenate(photos)
        ids = photo_a + 10_000_000 * np.array([[s.name for s in sources].index(n) for n in names])
        versions = _cached(
            work / f"{part}-versions.npy", lambda: make_versions(chips_a, ids, cfg.seed)
        )
        return versions, photo_a, np.asarray(names)

    t0 = time.perf_counter()
    train_v, _, _ = versions_of("train")
    calib_v, _, _ = versions_of("calib")
    eval_v, eval_photo, eval_set = versions_of("eval")
    seconds["distortions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    resnet = load_face_resnet()
    flat = train_v.reshape(-1, *train_v.shape[2:])
    train_maps = frozen_maps(
        flat,
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

    candidates: dict[str, dict[str, Any]] = {}
    nets: dict[str, Any] = {}
    for arch in cfg.architectures:
        from facecore.quality.network import ARCHITECTURES

        node = ARCHITECTURES[arch].input_node
        inputs = train_v if node == "chip" else train_maps
        net, hist = train_ranker(arch, inputs, cfg, work / f"ckpt-{arch}-{_ranker_tag(cfg)}")
        ev = eval_v if node == "chip" else eval_maps
        table = ranking_table(_scores(net, ev))
        candidates[arch] = {
            "ranking": table,
            "train_seconds": hist["seconds"],
            "ms_per_face": round(_ms_per_face(net, ev[0]), 3),
            "parameters": int(sum(p.numel() for p in net.parameters())),
            "history": hist["history"],
        }
        nets[arch] = net
        logger.info("%s: %s", arch, table[-1])
    chosen = max(
        cfg.architectures,
        key=lambda a: (
            candidates[a]["ranking"][-1]["pair_accuracy"],
            -candidates[a]["ms_per_face"],
        ),
    )
    net = nets[chosen]
    node = net.input_node
    calib_scores = _scores(net, calib_v if node == "chip" else calib_maps)
    knots = calibration_knots(calib_scores, agreement(np.asarray(calib_emb)))
    eval_scores = _scores(net, eval_v if node == "chip" else eval_maps)
    model = QualityModel(chosen, net, knots)
    eval_q = model.calibrate(eval_scores)
    eval_agree = agreement(np.asarray(eval_emb))
    from scipy.stats import spearmanr

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
    t0 = time.perf_counter()
    errors: dict[str, np.ndarray] = {}
    qual: dict[str, np.ndarray] = {}
    for task, set_name in (("attractiveness", "scut-fbp5500"), ("age", "utkface")):
        sel = eval_set == set_name
        errors[task] = _error_rows(task, data_root, eval_photo[sel], np.asarray(eval_maps)[sel])
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
        choose_threshold(qual[t].ravel(), {t: errors[t].ravel()}, clean_mae) for t in errors
    )
    model.warn_below = warn_below
    # How often a clean photo is warned about at that threshold (its own quality is low).
    calib_fit["clean_below_threshold"] = float(np.mean(eval_q[:, 0] < warn_below))
    per_kind_error = []
    for k, kind in enumerate(KINDS):
        for lv in range(N_LEVELS + 1):
            if lv == 0 and k:
                continue
            c = version_index(k, lv)
            per_kind_error.append(
                {
                    "version": "clean" if lv == 0 else f"{kind} {lv}",
                    "quality_median": float(np.median(eval_q[:, c])),
                    "agreement_median": float(np.median(eval_agree[:, c])),
                    **{f"{t}_mae": float(np.mean(errors[t][:, c])) for t in errors},
                }
            )

    hashes = {
        "scut-fbp5500": dataset_hash(load_scut_fbp5500(data_root)),
        "mebeauty": dataset_hash(load_mebeauty(data_root)),
        "utkface": dataset_hash(load_utkface(data_root)),
    }
    cv = {
        "model": out.name,
        "task": "quality",
        "config": cfg.to_dict(),
        "photos": counts,
        "versions_per_photo": N_VERSIONS,
        "distortions": {k: list(v) for k, v in LEVELS.items()},
        "candidates": candidates,
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
    ranking = candidates[chosen]["ranking"][-1]
    model.metadata = {
        "task": "quality",
        "architecture": chosen,
        "pair_accuracy": round(ranking["pair_accuracy"], 4),
        "spearman": round(ranking["spearman"], 4),
        "warn_below": warn_below,
        "licence": LICENCE,
        "rebuild": REBUILD,
    }
    model_path = model.save(out.with_suffix(".pt"))
    seconds["total"] = time.perf_counter() - t_all
    cv["seconds"]["total"] = round(seconds["total"], 1)
    cv_path = out.with_name(out.name + ".cv.json")
    cv_path.write_text(json.dumps(cv, indent=1) + "\n", encoding="utf-8")
    entry = {
        "name": out.name,
        "file": model_path.name,
        "sha256": sha256_file(model_path),
        "kind": "quality",
        "task": "quality",
        "architecture": chosen,
        "input_size": [150, 150],
        "normalisation": None,
        "chip": {"method": "dlib", "size": 150, "padding": 0.25},
        "outputs": [{"name": "quality", "kind": "scalar", "scale": [0.0, 1.0], "dim": None}],
        "inputs": (
            "Face with its dlib 150x150 chip (cached by the trunk stage)"
            if node == "chip"
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
    write_manifest_entry(entry, out.parent)
    from facecore.quality.card import write_quality_card

    card_path = write_quality_card(out, cv, licence=LICENCE, rebuild=REBUILD)
    return QualityTrainResult(cv=cv, model_path=model_path, card_path=card_path)


def _ranker_tag(cfg: QualityTrainConfig) -> str:
    """Keys a ranker's checkpoint folder by every setting of the run."""
    import hashlib

    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()[:8]


def _config_tag(cfg: QualityTrainConfig) -> str:
    import hashlib

    d = cfg.to_dict()
    # Neither the number of steps nor the candidates change the data.
    for k in ("steps", "architectures", "lr", "weight_decay", "margin", "groups"):
        d.pop(k)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
