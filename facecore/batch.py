"""Batch analysis of many images into one CSV, with progress, worker processes and resume.

Every input appears in the output: one row per face (``path``, ``face_index``, ``n_faces``, the box
``x1, y1, x2, y2``, the detector's ``detector_score`` and name, then one column per prediction the
stages provide - ``attractiveness`` on the model's scale, ... - plus ``<name>_dist`` for each
prediction with a distribution; :func:`facecore.serialize.batch_columns`), or one row whose
``error`` column says why there is none (``no_face``, ``undecodable_image``,
``file_not_found``...). A bad file never stops the run. Rows of one image are written together with
one ``write`` and flushed, so an interrupted run leaves at most the last image incomplete; a rerun
with the same output drops any incomplete image (its row count differs from its ``n_faces``), keeps
every complete one and processes only the paths not yet done, so it never duplicates or loses a
row.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecore.atomic import atomic_path
from facecore.batch_rows import CHUNK, analyze_chunk, rows_for

__all__ = [
    "ENGINES",
    "IMAGE_SUFFIXES",
    "BatchSummary",
    "expand_inputs",
    "run_batch",
]

log = logging.getLogger(__name__)

#: Where the analysis runs: worker processes on this machine, or actors on a Ray cluster.
ENGINES = ("local", "ray")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class BatchSummary:
    inputs: int
    skipped_done: int
    processed: int
    faces: int
    errors: int
    output: Path


def _csv_paths(csv_path: Path) -> list[str]:
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        rows = [r for r in reader if r and any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    col = next((header.index(n) for n in ("path", "image", "file") if n in header), None)
    body = rows[1:] if col is not None else rows
    col = col or 0
    out = []
    for r in body:
        p = Path(r[col].strip())
        out.append(str(p if p.is_absolute() else csv_path.parent / p))
    return out


def expand_inputs(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Image paths from files, folders (recursively, image suffixes only) and CSV lists.

    A CSV file (suffix ``.csv``) lists paths in a ``path``/``image``/``file`` column (or its first
    column), relative to the CSV's folder. Explicit files are kept whatever their suffix (the
    format is read from the content); duplicates are dropped, first occurrence wins.
    """
    seen: dict[str, None] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
            )
            for q in found:
                seen.setdefault(str(q), None)
        elif p.suffix.lower() == ".csv" and p.is_file():
            for q in _csv_paths(p):
                seen.setdefault(q, None)
        else:
            seen.setdefault(str(p), None)
    return list(seen)


# -- worker side -------------------------------------------------------------------------------
_worker_analyzer = None


def _init_worker(config: Any, threads: int) -> None:
    global _worker_analyzer
    import torch

    from facecore.analyzer import FaceAnalyzer

    # Workers x threads never oversubscribes the cores. Only torch's pool is set here: the
    # workers are forked, and OpenCV's and OpenMP's pools hang when re-sized in a child forked
    # from a process that has used them (facecore.threads.limit_threads is for fresh processes).
    torch.set_num_threads(threads)
    _worker_analyzer = FaceAnalyzer(config)


def _work(paths: list[str]) -> list[tuple[str, list[dict[str, str]]]]:
    results = analyze_chunk(paths, _worker_analyzer)
    return [(p, rows_for(p, r)) for p, r in zip(paths, results, strict=True)]


def worker_threads(workers: int) -> int:
    """Threads each of ``workers`` worker processes may use: the usable cores shared out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, workers))


# -- output side -------------------------------------------------------------------------------
def _load_done(output: Path, columns: Sequence[str]) -> set[str]:
    """Paths already complete in ``output``; rewrites it without incomplete images."""
    if not output.exists() or output.stat().st_size == 0:
        return set()
    with output.open(newline="", encoding="utf-8") as fh:
        text = fh.read()
    if not text.endswith("\n"):  # a row cut by an interruption
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or list(reader.fieldnames) != list(columns):
        raise ValueError(
            f"{output} exists with columns {reader.fieldnames}, not {list(columns)}; "
            "choose another output file or the same analysis settings"
        )
    by_path: dict[str, list[dict[str, str]]] = {}
    for row in reader:
        by_path.setdefault(row["path"], []).append(row)
    complete = {
        p: rows
        for p, rows in by_path.items()
        if rows and len(rows) == max(1, int(rows[0].get("n_faces") or 0))
    }
    dropped = set(by_path) - set(complete)
    if dropped or not text.endswith("\n") or len(text) != output.stat().st_size:
        if dropped:
            log.warning("dropping %d incomplete image(s) from %s", len(dropped), output)
        _atomic_rewrite(output, columns, [r for rows in complete.values() for r in rows])
    return set(complete)


def _atomic_rewrite(output: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())


def _results(
    paths: list[str], analyzer: Any, workers: int, chunk: int = CHUNK
) -> Iterator[tuple[str, list[dict[str, str]]]]:
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    if workers <= 1:
        for part in chunks:
            for p, r in zip(part, analyze_chunk(part, analyzer), strict=True):
                yield p, rows_for(p, r)
        return
    with ProcessPoolExecutor(
        workers,
        initializer=_init_worker,
        initargs=(analyzer.config, worker_threads(workers)),
    ) as pool:
        for rows in pool.map(_work, chunks):
            yield from rows


def run_batch(
    inputs: Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    config: Any = None,
    workers: int = 1,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
) -> BatchSummary:
    """Analyse every image in ``inputs`` and append rows to the CSV ``output``.

    An ``output`` ending in ``.parquet`` is written as Parquet (typed columns; needs pyarrow,
    the ``parquet`` extra) from a CSV journal beside it, ``<output>.csv``, which is what a rerun
    resumes from; the Parquet file is rewritten from the journal when the run ends, also when it
    is interrupted.

    Parameters
    ----------
    inputs : iterable of paths
        Image files, folders and CSV lists (see :func:`expand_inputs`).
    output : path
        CSV (or ``.parquet``) file; if it exists, finished paths are skipped (resume).
    config : AnalyzerConfig, optional
        Analysis settings (default: the default heads).
    workers : int
        Worker processes (1 = in this process); with ``engine="ray"``, analyzer actors (1: one
        per CPU of the cluster).
    progress : bool
        Show a progress bar on stderr.
    engine : {"local", "ray"}
        ``"ray"``: Ray Data with the analyzer in actors (:mod:`facecore.ray_engine`), the same
        rows and resume.
    address : str, optional
        The Ray cluster (``"auto"``, ``"ray://HOST:10001"``); default a local Ray instance.
    """
    from tqdm import tqdm

    from facecore.analyzer import FaceAnalyzer
    from facecore.serialize import batch_columns

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "ray":
        from facecore.ray_engine import require_ray

        require_ray()
    analyzer = FaceAnalyzer(config)
    columns = batch_columns(analyzer.outputs())
    final = Path(output)
    final.parent.mkdir(parents=True, exist_ok=True)
    parquet = final.suffix.lower() == PARQUET_SUFFIX
    output = journal_path(final) if parquet else final
    if parquet:
        _require_pyarrow()
        if final.exists() and not output.exists():
            _journal_from_parquet(final, output, columns)
    paths = expand_inputs(inputs)
    done = _load_done(output, columns)
    todo = [p for p in paths if p not in done]
    new_file = not output.exists() or output.stat().st_size == 0
    with output.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n", restval="")
        if new_file:
            writer.writeheader()
            fh.flush()
        bar = tqdm(total=len(todo), desc="batch", unit="img", disable=not progress)
        try:
            if engine == "ray":
                from facecore.ray_engine import ray_results

                source = ray_results(
                    todo, analyzer.config, address=address, actors=workers if workers > 1 else None
                )
            else:
                source = _results(todo, analyzer, workers)
            n_proc, n_faces, n_err = _write_all(fh, columns, source, bar)
        finally:
            bar.close()
            fh.flush()
            os.fsync(fh.fileno())
            if parquet:
                write_parquet(output, final, columns)
    return BatchSummary(
        inputs=len(paths),
        skipped_done=len(paths) - len(todo),
        processed=n_proc,
        faces=n_faces,
        errors=n_err,
        output=final,
    )


def _write_all(
    fh: Any, columns: Sequence[str], results: Iterator[tuple[str, list[dict[str, str]]]], bar: Any
) -> tuple[int, int, int]:
    n_faces = n_err = n_proc = 0
    for _path, rows in results:
        buf = io.StringIO()
        csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", restval="").writerows(
            rows
        )
        fh.write(buf.getvalue())  # one write per image
        fh.flush()
        n_proc += 1
        n_err += sum(1 for r in rows if r.get("error"))
        n_faces += sum(1 for r in rows if not r.get("error"))
        bar.update(1)
    return n_proc, n_faces, n_err


# -- Parquet ------------------------------------------------------------------------------------
PARQUET_SUFFIX = ".parquet"
#: Columns that are whole numbers; every prediction column (not ``*_dist``) and the box and score
#: are floats; the rest are text. An empty cell is null.
_INT_COLUMNS = frozenset({"face_index", "n_faces"})
_TEXT_COLUMNS = frozenset({"path", "detector", "error"})


def journal_path(output: Path) -> Path:
    """The CSV journal of a Parquet output (``x.parquet`` -> ``x.parquet.csv``)."""
    return output.with_name(output.name + ".csv")


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValueError(
            "Parquet output needs pyarrow: pip install 'facecore[parquet]' (make install has it)"
        ) from None


def _complete_rows(journal: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    with journal.open(newline="", encoding="utf-8") as fh:
        text = fh.read()
    text = text[: text.rfind("\n") + 1]  # a row cut by an interruption is not a row
    by_path: dict[str, list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        by_path.setdefault(row["path"], []).append(row)
    return [
        r
        for rows in by_path.values()
        if len(rows) == max(1, int(rows[0].get("n_faces") or 0))
        for r in rows
    ]


def write_parquet(journal: Path, output: Path, columns: Sequence[str]) -> Path:
    """Write the complete images of the CSV ``journal`` to ``output`` as Parquet, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _complete_rows(journal, columns) if journal.exists() else []

    def kind(c: str) -> Any:
        if c in _INT_COLUMNS:
            return pa.int64(), int
        if c in _TEXT_COLUMNS or c.endswith("_dist"):
            return pa.string(), str
        return pa.float64(), float

    arrays, fields = [], []
    for c in columns:
        typ, conv = kind(c)
        arrays.append(pa.array([conv(r[c]) if r.get(c) else None for r in rows], type=typ))
        fields.append(pa.field(c, typ))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    with atomic_path(output) as tmp:
        pq.write_table(table, tmp)
    return output


def _journal_from_parquet(output: Path, journal: Path, columns: Sequence[str]) -> None:
    """Rebuild a lost journal from the Parquet file a finished run left."""
    import pyarrow.parquet as pq

    table = pq.read_table(output)
    if table.column_names != list(columns):
        raise ValueError(
            f"{output} exists with columns {table.column_names}, not {list(columns)}; "
            "choose another output file or the same analysis settings"
        )

    def text(c: str, v: Any) -> str:
        if v is None:
            return ""
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    rows = [{c: text(c, r[c]) for c in columns} for r in table.to_pylist()]
    _atomic_rewrite(journal, columns, rows)
