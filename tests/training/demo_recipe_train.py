"""The recipe of a demonstration head, ``demo_age``: age in decades, from a few UTKFace photos.

It exists to prove the seams (tests/training/test_recipe_head.py) and is never shipped: the
whole training of a new head is this one file. A fine-tuned copy of stages 4-5 of dlib's face
ResNet over the trunk's stage-3 map, a softmax over 0, 10, ..., 100 years (KL loss to a
Gaussian of 15 years), compared in a 3-fold CV with the average distribution and with the top
plus an isotonic correction; the lower cross-validated MAE of the two tops ships.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facecore.training.distribution_recipe import DistributionRecipe
from facecore.training.publish import Figure
from facecore.training.runner import Data, Learner, OutOfFold, Run
from facecore.training.tops import TopRecipe

BINS = tuple(float(b) for b in range(0, 101, 10))
LICENCE = "trained on UTKFace: non-commercial research use only"


@dataclass(frozen=True)
class DemoAgeRecipe(DistributionRecipe):
    """``n_photos`` UTKFace photos (a seeded draw), ``folds``-fold CV, a tiny top."""

    name: str = "demo_age"
    folds: int = 3
    n_photos: int = 24
    top: TopRecipe = TopRecipe(start="stage4", epochs=3, batch_size=8, lr=1e-3)
    work_dir: Path = Path(".cache/demo_age")
    licence, rebuild, bins = LICENCE, "pytest tests/training/test_recipe_head.py", BINS
    int8: bool = False
    task = "demo_age"
    protocol = "{folds}-fold KFold (seed {seed}) on {n} photos"
    columns = (("MAE", "mae"), ("within 10 y", "within10"))
    figures = (
        Figure(
            "scatter",
            "scatter",
            "Out-of-fold predicted against true age.",
            {"title": "{name}: out-of-fold predictions ({chosen})"},
        ),
    )
    card_text = {
        "summary": "Age in decades (a demonstration head; never shipped).",
        "model": ("Fine-tuned stages 4-5 of dlib's face ResNet; shipped: {chosen}.",),
        "training_data": "{n_photos} UTKFace photos, {n} with a face.",
        "evaluation": "{protocol}.",
    }

    def load(self, data_root: str | os.PathLike[str]) -> Data:
        from facecore.datasets import dataset_hash, load_utkface
        from facecore.ldl.distributions import gaussian_label_distribution
        from facecore.training.chips import extract_dataset_chips

        ds = load_utkface(data_root)
        pick = np.random.default_rng(self.seed).permutation(len(ds))[: self.n_photos]
        ds = ds.subset(np.sort(pick))
        chips = extract_dataset_chips(ds, cache_dir=Path(self.work_dir) / "chips")
        rows = np.flatnonzero(chips.has_face)
        y = np.asarray(ds.targets, np.float64)[rows]
        return Data(
            y=y,
            targets=gaussian_label_distribution(y, BINS, 15.0),
            features={},
            title="UTKFace (a sample)",
            n_photos=len(ds),
            data_hash=dataset_hash(ds),
            extra=self.top_inputs(chips, rows),
        )

    def top_folder(self, top: TopRecipe, data: Data) -> Path:
        return Path(self.work_dir) / "cv"

    def learners(self, run: Run) -> list[Learner]:
        from facecore.training.learners import IsotonicCorrection, MeanDistribution, TopRegressor

        (spec,) = self.tops(run)
        return [
            Learner("average", lambda r: MeanDistribution(BINS), ("rows",), "targets"),
            Learner(
                "top",
                lambda r: TopRegressor(spec.recipe, BINS, spec.maps, spec.flipped, device=r.device),
                ("rows",),
                "targets",
                cache=lambda r: spec.folder,
            ),
            Learner("top + correction", lambda r: IsotonicCorrection(BINS), ("top",)),
        ]

    def metrics(self, run: Run, oof: OutOfFold) -> dict[str, Any]:
        err = np.abs(oof.values - run.data.y)
        return {"mae": float(err.mean()), "within10": float(np.mean(err <= 10)), "n": len(err)}

    def choose(self, run: Run) -> str:
        return min(("top", "top + correction"), key=lambda k: run.table[k]["mae"])

    def ship(self, run: Run, out: Path) -> Any:
        from facecore.training.learners import IsotonicCorrection

        knots, temperature = None, 1.0
        if run.chosen == "top + correction":
            corr = IsotonicCorrection(BINS).fit(run.oof["top"].distributions, run.data.y)
            knots, temperature = corr.knots_, corr.temperature_
        return self.ship_tops(
            run,
            out,
            output={
                "name": "demo_age",
                "kind": "distribution",
                "scale": [0, 100],
                "bins": list(BINS),
            },
            inputs="Face with features['trunk.stage3']; output: age in decades",
            source="tests/training/demo_recipe_train.py (never shipped)",
            model={"calibration": knots, "temperature": temperature},
        )
