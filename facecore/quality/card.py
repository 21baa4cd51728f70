"""The quality model's card, from the document :func:`facecore.quality.train.main` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_quality_card"]

_ARCH_TEXT = {
    "quality_map_head": "a small head on the trunk's shared stage-2 map (two 3x3 convolutions, "
    "mean and standard-deviation pooling, a two-layer MLP)",
    "quality_chip_net": "a small network of its own on the 150x150 chip (four stride-2 3x3 "
    "convolutions, mean and standard-deviation pooling, a two-layer MLP)",
}


def _fmt(v: Any, f: str = "{:.3f}") -> Any:
    return "-" if v is None else (f.format(v) if isinstance(v, float) else v)


def write_quality_card(out: Path, cv: dict[str, Any], *, licence: str, rebuild: str) -> Path:
    """Write ``<out>.md`` for the model whose training document is ``cv`` (trained under
    ``licence``, rebuilt by the command ``rebuild``); returns the path."""
    from facecore.training.card import CardTable, ModelCard, package_versions, write_card

    chosen = cv["chosen"]
    cands = cv["candidates"]
    photos = cv["photos"]
    n_eval = sum(photos["eval"].values())
    kinds = [r["kind"] for r in cands[chosen]["ranking"]]
    rank_rows = []
    for i, kind in enumerate(kinds):
        row: list[Any] = [kind]
        for arch in cands:
            r = cands[arch]["ranking"][i]
            row += [r["pair_accuracy"], r["spearman"], r["spearman_per_photo"]]
        rank_rows.append(row)
    rank_header = ["distortion"]
    for arch in cands:
        rank_header += [f"{arch}: pair acc.", "Spearman", "per photo"]
    cand_rows = [
        [
            a + (" (shipped)" if a == chosen else ""),
            c["ranking"][-1]["pair_accuracy"],
            c["ms_per_face"],
            c["parameters"],
            round(c["train_seconds"] / 60, 1),
        ]
        for a, c in cands.items()
    ]
    band_rows = [
        [
            r["band"],
            r["attractiveness_n"],
            _fmt(r["attractiveness_mae"]),
            r["age_n"],
            _fmt(r["age_mae"], "{:.2f}"),
        ]
        for r in cv["error_by_quality"]
    ]
    version_rows = [
        [
            r["version"],
            r["quality_median"],
            r["agreement_median"],
            r["attractiveness_mae"],
            round(r["age_mae"], 2),
        ]
        for r in cv["error_by_version"]
    ]
    cal = cv["calibration"]
    levels = "; ".join(
        f"{k} {', '.join(f'{x:g}' for x in v)}" for k, v in cv["distortions"].items()
    )
    card = ModelCard(
        name=out.name,
        summary=(
            "Quality of a face crop in [0, 1] (higher: better): how far blur, noise, JPEG "
            "compression, low resolution, under- or over-exposure or motion blur have moved the "
            "face, as the other heads see it, from a clean photo of it. Responses carry a warning "
            f"for faces below {cv['warn_below']:.2f} (the service's default threshold, chosen "
            "from the error table below)."
        ),
        licence=licence,
        model=[
            "RankIQA (Liu, van de Weijer, Bagdanov, ICCV 2017) without human quality labels: "
            "each training chip is distorted at four graded levels of seven kinds, and the "
            "network learns, by a pairwise hinge (margin "
            f"{cv['config']['margin']}), that the less distorted version of a pair scores higher.",
            f"Network: {_ARCH_TEXT.get(chosen, chosen)}; chosen over the other candidate by "
            "held-out pairwise ranking accuracy (table below).",
            "Calibration: isotonic regression, on the calibration photos, of the raw score onto "
            "the agreement max(0, 1 - d/0.6), where d is the distance between the 128-D dlib "
            "descriptor of the version and of the clean chip (0.6 is dlib's same-person "
            "distance). So 1 means the heads see the face as in the clean photo; 0 that the "
            "distortion moved it as far as a change of person.",
            f"Training: {cv['config']['steps']} steps of {cv['config']['groups']} (photo, kind) "
            f"groups of 5 versions, AdamW (lr {cv['config']['lr']}, cosine decay).",
            f"Distortion levels 1-4: {levels}.",
        ],
        training_data=(
            "Face chips (largest face, dlib 150x150) of three sets in `../shared/data`, drawn per "
            f"set with seed {cv['config']['seed']} into disjoint parts: ranking "
            f"{photos['train']}, calibration {photos['calib']}, evaluation {photos['eval']} "
            f"photos; {cv['versions_per_photo']} versions each. Dataset sha256: "
            + ", ".join(f"{k} `{v}`" for k, v in cv["data_hashes"].items())
            + "."
        ),
        evaluation=(
            f"On the {n_eval} evaluation photos (not used for ranking or calibration): pairwise "
            "accuracy over the 10 pairs of each photo's five versions of a kind (clean and "
            "levels 1-4), Spearman correlation of the score with the level (pooled, and the mean "
            "per photo). The error tables use the evaluation photos of SCUT-FBP5500 "
            f"({photos['eval']['scut-fbp5500']}) and UTKFace ({photos['eval']['utkface']}) in "
            "every version, each rated and aged by the cross-validation fold model of "
            "`attractiveness_scut` and `age_utkface` that did not see it (raw expectations, "
            "before those models' calibration)."
        ),
        tables=[
            CardTable(
                "Candidates (held-out pairwise accuracy, mean of the kinds; milliseconds per face "
                "at batch 1 on this CPU, network alone)",
                ["network", "pair accuracy", "ms per face", "parameters", "training min"],
                cand_rows,
                "{:.3f}",
            ),
            CardTable(
                "Ranking on held-out photos, per distortion", rank_header, rank_rows, "{:.3f}"
            ),
            CardTable(
                "Error by quality band (attractiveness: absolute error on SCUT-FBP5500's 1-5 "
                f"scale, clean photos {cv['clean_mae']['attractiveness']:.3f}; age: years, "
                f"clean photos {cv['clean_mae']['age']:.2f})",
                ["quality", "n (attr.)", "attractiveness MAE", "n (age)", "age MAE"],
                band_rows,
            ),
            CardTable(
                "Per version: median quality, median descriptor agreement, errors",
                ["version", "quality", "agreement", "attractiveness MAE", "age MAE"],
                version_rows,
                "{:.3f}",
            ),
        ],
        evaluation_notes=(
            f"Calibration on held-out photos: Spearman of quality with descriptor agreement "
            f"{cal['spearman_quality_vs_agreement']:.3f}, mean absolute difference "
            f"{cal['mae_quality_vs_agreement']:.3f}; clean chips' quality median "
            f"{cal['clean_quality_median']:.3f} (5th percentile "
            f"{cal['clean_quality_p05']:.3f}).\n\n"
            f"Warning threshold: {cv['warn_below']:.2f}, the lowest band edge above which every "
            f"band with at least 30 faces errs at most {cv['tolerance']}x as much as the clean "
            "photos, for attractiveness and for age (the stricter of the two). At it, "
            f"{100 * cal.get('clean_below_threshold', float('nan')):.1f}% of the clean "
            "evaluation photos are warned about (their own crops score low)."
        ),
        limitations=[
            "Distortions are applied to the aligned chip, not to the whole photo; a face that is "
            "small in a large photo behaves like the downscale levels.",
            "Quality says how far the face is from a clean version of itself; it does not judge "
            "pose, occlusion, or whether the face is a face at all.",
            "The clean photos of the three sets are studio or web crops; real photos may have "
            "mixtures of distortions the training never saw.",
        ],
        rebuild=rebuild,
        rebuild_note=(
            "Deterministic given the seed and the chip caches; the error tables need the fold "
            "checkpoints of `make train-age` and `make train-scut-ldl` (reused from their "
            "caches, or trained first)."
        ),
        packages=package_versions(),
    )
    return write_card(card, out.with_name(out.name + ".md"))
