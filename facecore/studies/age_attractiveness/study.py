"""The age-attractiveness study of the dating-site paper, on the rated face sets facecore has.

Y. Zang et al., "Prediction of users' facial attractiveness on an online dating website", study
how the users' age relates to their attractiveness, per sex: on their dating-site data the
correlation is r about 0.67 for women and 0.33 for men (the figures the issue quotes; the
paper's own protocol and sample are not available here).

Here the age is facecore's estimate (the ``age`` stage, default ``age_utkface``) of the largest
face of every photo, and the attractiveness is, per dataset:

* ``rated`` - the dataset's mean human rating (SCUT-FBP5500 1-5, MEBeauty 1-10);
* ``model:<name>`` - a shipped attractiveness model's prediction (SCUT-FBP5500:
  ``attractiveness_scut``; MEBeauty: ``attractiveness_mebeauty`` when the manifest has it).

For each (dataset, source, sex) the table gives n, Pearson's r with a 95% interval (Fisher z),
Spearman's rho and the least-squares line ``score = a + b * age``. The per-photo analysis goes
through :func:`facecore.batch.run_batch` (one CSV row per photo, resumable), so every photo is
accounted for and a rerun continues where it stopped.

Sex comes from the datasets' own labels (SCUT-FBP5500's file prefixes, MEBeauty's folders); it
is never estimated from a face. The data are for non-commercial research use only.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MODELS",
    "PAPER_R",
    "StudyResult",
    "StudyRow",
    "correlation_row",
    "run_study",
]

logger = logging.getLogger(__name__)

#: The paper's correlations of age with attractiveness, per sex (dating-site data).
PAPER_R = {"female": 0.67, "male": 0.33}
#: The attractiveness model studied on each dataset (used when the manifest has it).
DEFAULT_MODELS = {"scut-fbp5500": "attractiveness_scut", "mebeauty": "attractiveness_mebeauty"}
SEXES = ("female", "male", "all")


@dataclass(frozen=True)
class StudyRow:
    """One line of the study's table."""

    dataset: str
    source: str
    sex: str
    n: int
    r: float
    r_low: float
    r_high: float
    spearman: float
    intercept: float
    slope: float
    paper_r: float | None

    def as_list(self) -> list[Any]:
        """The table cells, as text (NaN as "")."""

        def f(v: float, fmt: str) -> str:
            return "" if v != v else format(v, fmt)

        return [
            self.dataset,
            self.source,
            self.sex,
            self.n,
            f(self.r, ".3f"),
            "" if self.r != self.r else f"[{self.r_low:.3f}, {self.r_high:.3f}]",
            f(self.spearman, ".3f"),
            f(self.intercept, ".3f"),
            f(self.slope, ".4f"),
            "" if self.paper_r is None else f"{self.paper_r:.2f}",
        ]


HEADER = [
    "dataset",
    "source",
    "sex",
    "n",
    "pearson_r",
    "r_95ci",
    "spearman_rho",
    "intercept",
    "slope_per_year",
    "paper_r",
]


def correlation_row(
    dataset: str, source: str, sex: str, age: np.ndarray, score: np.ndarray
) -> StudyRow:
    """Pearson's r (with a Fisher-z 95% interval), Spearman's rho and the fitted line."""
    from scipy.stats import pearsonr, spearmanr

    age = np.asarray(age, np.float64)
    score = np.asarray(score, np.float64)
    n = len(age)
    if n < 4 or np.ptp(age) == 0 or np.ptp(score) == 0:
        nan = float("nan")
        return StudyRow(dataset, source, sex, n, nan, nan, nan, nan, nan, nan, PAPER_R.get(sex))
    r = float(pearsonr(age, score).statistic)
    z, half = math.atanh(max(min(r, 0.999999), -0.999999)), 1.959964 / math.sqrt(n - 3)
    slope, intercept = np.polyfit(age, score, 1)
    return StudyRow(
        dataset,
        source,
        sex,
        n,
        r,
        math.tanh(z - half),
        math.tanh(z + half),
        float(spearmanr(age, score).statistic),
        float(intercept),
        float(slope),
        PAPER_R.get(sex),
    )


@dataclass
class StudyResult:
    rows: list[StudyRow]
    table_csv: Path
    table_md: Path
    plot: Path
    skipped: list[str]
    accounted: dict[str, dict[str, int]]


def _sexes(ds: Any) -> np.ndarray:
    if ds.name == "scut-fbp5500":
        return np.array(["female" if g.endswith("F") else "male" for g in ds.groups])
    return np.array([p.split("/", 1)[0].lower() for p in ds.relative_paths])


def _loader(name: str) -> Any:
    from facecore.datasets import load_mebeauty, load_scut_fbp5500

    return {"scut-fbp5500": load_scut_fbp5500, "mebeauty": load_mebeauty}[name]


def _read_rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {
            row["path"]: row for row in csv.DictReader(fh) if row.get("face_index") in ("0", "")
        }


def _plot(path: Path, panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = len(panels)
    fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 4), dpi=100, squeeze=False)
    colours = {"female": "tab:red", "male": "tab:blue"}
    for ax, (title, age, score, sex) in zip(axes[0], panels, strict=True):
        for s, c in colours.items():
            sel = sex == s
            if sel.sum() < 4:
                continue
            ax.scatter(age[sel], score[sel], s=4, alpha=0.25, color=c)
            b, a = np.polyfit(age[sel], score[sel], 1)
            xs = np.linspace(age[sel].min(), age[sel].max(), 2)
            r = np.corrcoef(age[sel], score[sel])[0, 1]
            ax.plot(xs, a + b * xs, color=c, lw=2, label=f"{s}: r={r:.2f}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("estimated age (years)")
        ax.set_ylabel("attractiveness")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run_study(
    data_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    datasets: Sequence[str] = ("scut-fbp5500", "mebeauty"),
    models: Mapping[str, str] | None = None,
    age_model: str = "age_utkface",
    workers: int = 1,
    limit: int | None = None,
    progress: bool = False,
) -> StudyResult:
    """Run the study and write ``age_attractiveness.csv``, ``.md`` and ``.png`` in ``out_dir``.

    Parameters
    ----------
    data_root : path-like
        Folder holding ``scut-fbp5500/`` and ``mebeauty/``.
    out_dir : path-like
        Also holds the per-photo analyses ``<dataset>.faces.csv`` (reused by a rerun).
    datasets : names among ``"scut-fbp5500"``, ``"mebeauty"``
    models : dataset -> attractiveness model name (default :data:`DEFAULT_MODELS`); a model the
        manifest lacks is skipped and reported in :attr:`StudyResult.skipped`.
    age_model : str
    workers : int
        Batch worker processes.
    limit : int, optional
        Only the first ``limit`` photos of each dataset (quick checks).
    """
    from facecore.analyzer import AnalyzerConfig
    from facecore.batch import run_batch
    from facecore.model_store import load_manifest

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = dict(DEFAULT_MODELS if models is None else models)
    manifest = load_manifest()
    if age_model not in manifest:
        raise ValueError(f"age model {age_model!r} is not in the manifest")
    rows: list[StudyRow] = []
    panels = []
    skipped: list[str] = []
    accounted: dict[str, dict[str, int]] = {}
    for name in datasets:
        ds = _loader(name)(data_root)
        n = len(ds) if limit is None else min(limit, len(ds))
        paths = [str(p) for p in ds.paths[:n]]
        model = models.get(name)
        stages: tuple[str, ...] = ("age",)
        options: dict[str, dict[str, Any]] = {"age": {"model": age_model}}
        if model and model in manifest:
            stages += ("attractiveness",)
            options["attractiveness"] = {"model": model}
        elif model:
            skipped.append(f"{name}: model {model!r} is not in the manifest")
        config = AnalyzerConfig(stages=stages, stage_options=options, max_faces=1)
        faces_csv = out / f"{name}.faces.csv"
        run_batch(paths, faces_csv, config=config, workers=workers, progress=progress)
        by_path = _read_rows(faces_csv)
        sex_all = _sexes(ds)[:n]
        age = np.full(n, np.nan)
        pred = np.full(n, np.nan)
        for i, p in enumerate(paths):
            row = by_path.get(p, {})
            if row.get("age"):
                age[i] = float(row["age"])
            if row.get("attractiveness"):
                pred[i] = float(row["attractiveness"])
        ok = np.isfinite(age)
        accounted[name] = {
            "photos": n,
            "rows": sum(p in by_path for p in paths),
            "with_face": int(ok.sum()),
        }
        sources = {"rated": np.asarray(ds.targets)[:n]}
        if "attractiveness" in stages:
            sources[f"model:{model}"] = pred
        for source, score in sources.items():
            sel = ok & np.isfinite(score)
            for sex in SEXES:
                keep = sel if sex == "all" else sel & (sex_all == sex)
                rows.append(correlation_row(name, source, sex, age[keep], score[keep]))
            panels.append((f"{name}, {source}", age[sel], score[sel], sex_all[sel]))

    table_csv = out / "age_attractiveness.csv"
    with table_csv.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(r.as_list() for r in rows)
    from facecore.training.publish import markdown_table

    md = [
        "# Age and attractiveness, per sex",
        "",
        f"Age: facecore's estimate (`{age_model}`) of the largest face of each photo. "
        "Attractiveness: the dataset's mean rating (`rated`) or a model's prediction. Paper "
        "(Zang et al., dating-site data): r about 0.67 for women, 0.33 for men. Non-commercial "
        "research data.",
        "",
        markdown_table(HEADER, [r.as_list() for r in rows]),
        "",
    ]
    for name, acc in accounted.items():
        md.append(
            f"- {name}: {acc['photos']} photos, {acc['rows']} in the per-photo CSV, "
            f"{acc['with_face']} with a face"
        )
    md += [f"- skipped: {s}" for s in skipped]
    table_md = out / "age_attractiveness.md"
    table_md.write_text("\n".join(md) + "\n", encoding="utf-8")
    plot = _plot(out / "age_attractiveness.png", panels)
    return StudyResult(rows, table_csv, table_md, plot, skipped, accounted)
