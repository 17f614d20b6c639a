"""The tidy results table: the sweep's source of truth.

One row per (task, method, phase, trial or seed, split, metric). Rows are appended as small
parquet *parts* (one file per finished unit of work, written to a temporary name and renamed), so
a crash never leaves a half-written table and concurrent writers never collide. Reading
concatenates the parts. MLflow is the browsing view; leaderboards are rebuilt from this table.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

# column -> pandas dtype. Every row has all of them (missing values are NA).
COLUMNS: dict[str, str] = {
    "sweep": "string",            # sweep name (--name)
    "suite": "string",
    "task": "string",
    "task_version": "string",
    "method": "string",
    "method_version": "string",
    "variant_of": "string",       # e.g. "recraft" for its ablations; NA otherwise
    "role": "string",             # "method" (ranked) or "floor" (a reference predictor, unranked)
    "phase": "string",            # "search" (validation) or "final" (seeded re-runs on test)
    "trial_id": "string",         # Tune trial id (search) or "seed-<n>" (final)
    "seed": "Int64",
    "split": "string",            # "val" or "test"
    "metric": "string",           # e.g. "nrmse"
    "value": "float64",
    "direction": "string",        # "min" or "max"
    "status": "string",           # "ok", "failed", "diverged", "stopped" (early-stopped)
    "epochs": "Int64",            # epochs the trial ran (search and final alike)
    "best_epoch": "Int64",        # the epoch the value was taken at (selected on validation)
    "config_hash": "string",
    "config_json": "string",
    "data_source": "string",      # "real" or "synthetic"
    "data_check": "string",       # real data: "verified" (published samples and md5) or "unverified"
    "data_file": "string",        # the task's data file, as read
    "data_bytes": "Int64",        # its size
    "data_samples": "Int64",      # its sample count
    "data_md5": "string",         # its md5 (when computed: harness.data.facts)
    "backbone": "string",
    "profile": "string",
    "mlflow_run_id": "string",
    "node_id": "string",
    "hostname": "string",
    "git_commit": "string",       # HEAD, "+dirty" with changed or untracked code the cell ran
    "method_hash": "string",      # sha256 (16 hex) of the method's source files
    "method_files": "string",     # those files with their git state, e.g. "baselines/x.py (untracked)"
    "packages": "string",         # JSON: versions of torch, ray, ...
    "hardware": "string",         # e.g. "cpu x2" or "NVIDIA H200"
    "wall_seconds": "float64",
    "finished_at": "string",      # ISO 8601 UTC
    "error": "string",
    # the source side's recalibration level and the level it reached (NA for methods without)
    "epsilon": "float64",         # ε the source head was recalibrated to (paper mode)
    "lipschitz": "float64",       # achieved level: max per-sample ‖∂CE/∂r‖ over the proxy data
}

#: result columns taken from a trial's last report (the MLflow metric of the same value)
REPORTED_COLUMNS = {"epsilon": "source.epsilon", "lipschitz": "source.lipschitz"}


def reported_columns(last: Mapping) -> dict[str, float]:
    """The :data:`REPORTED_COLUMNS` present in a trial's last report."""
    return {col: float(last[key]) for col, key in REPORTED_COLUMNS.items()
            if isinstance(last.get(key), (int, float))}


def normalise(rows: Iterable[Mapping] | pd.DataFrame) -> pd.DataFrame:
    """A frame with exactly :data:`COLUMNS` in order and their dtypes; unknown columns raise."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    unknown = [c for c in df.columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"unknown result column(s) {unknown}; known: {list(COLUMNS)}")
    for c, dtype in COLUMNS.items():
        if c not in df.columns:
            df[c] = pd.Series(float("nan") if dtype == "float64" else pd.NA, index=df.index, dtype=dtype)
        elif dtype == "float64":
            df[c] = pd.to_numeric(df[c], errors="raise").astype("float64")
        else:
            df[c] = df[c].astype(dtype)
    return df[list(COLUMNS)].reset_index(drop=True)


def part_tag(tag: str) -> str:
    """The file-name-safe prefix of a result part written with ``tag``."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tag)[:80]


def append_rows(results_dir: str | Path, rows: Iterable[Mapping] | pd.DataFrame,
                tag: str = "rows") -> Path | None:
    """Write ``rows`` as a new parquet part under ``results_dir/parts``; returns its path."""
    df = normalise(rows)
    if df.empty:
        return None
    parts = Path(results_dir) / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    final = parts / f"{part_tag(tag)}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = final.with_name("." + final.name + ".tmp")
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


class DamagedResults(ValueError):
    """A result part that cannot be read (truncated, not parquet): its rows are lost."""


def read_part(path: str | Path) -> pd.DataFrame:
    """One result part; a file that cannot be read raises :class:`DamagedResults` saying what to do."""
    path = Path(path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:   # pyarrow's ArrowInvalid is a ValueError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DamagedResults(
            f"result part {path} is damaged and its rows cannot be read ({first}). Move it out of "
            f"{path.parent} (e.g. mv {path} {path.parent.parent / 'damaged'}/, kept for inspection) "
            f"and run the same command again: the cell it belongs to then runs again, every other "
            f"cell's rows are kept.") from exc


def read_results(path: str | Path) -> pd.DataFrame:
    """All rows under a results folder (its ``parts/``), or from a single parquet file."""
    path = Path(path)
    if path.is_file():
        return normalise(pd.read_parquet(path))
    parts_dir = path / "parts" if (path / "parts").is_dir() else path
    files = sorted(p for p in parts_dir.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        if not path.exists():
            raise FileNotFoundError(f"no results at {path}: the folder does not exist")
        return normalise([])
    return normalise(pd.concat([read_part(f) for f in files], ignore_index=True))


def damaged_parts(results_dir: str | Path) -> list[DamagedResults]:
    """Every part under ``results_dir/parts`` that cannot be read, as its error (none: [])."""
    found = []
    for f in sorted((Path(results_dir) / "parts").glob("*.parquet")):
        if f.name.startswith("."):
            continue
        try:
            read_part(f)
        except DamagedResults as exc:
            found.append(exc)
    return found


def cell_parts(results_dir: str | Path, cell_key: str) -> list[Path]:
    """The result parts a cell wrote: ``<tag>-<12 hex>.parquet`` (not ``<tag>-ref-...`` of another
    method whose name extends this one's)."""
    import re

    own = re.compile(re.escape(part_tag(cell_key.replace("/", "__"))) + r"-[0-9a-f]{12}\.parquet")
    return [p for p in sorted((Path(results_dir) / "parts").glob("*.parquet")) if own.fullmatch(p.name)]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a consolidated copy of the table (``results.parquet``) atomically."""
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    normalise(df).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def replace_table(df: pd.DataFrame, path: str | Path) -> str | None:
    """Write ``results.parquet``, never silently with fewer rows than the copy it replaces.

    A table that would shrink (rows whose parts went missing; a retried cell with fewer rows) or
    an old copy that cannot be read is first moved to ``superseded/results-<stamp>.parquet``
    beside it; the returned message says so (None when nothing was kept aside).
    """
    from datetime import datetime, timezone

    path = Path(path)
    if not path.exists():
        write_table(df, path)
        return None
    try:
        old = read_results(path)
        why = (f"{path} held {len(old)} rows, the result parts now hold {len(df)}"
               if len(old) > len(df) else None)
        if why:
            missing = (set(old["task"] + "/" + old["method"]) - set(df["task"] + "/" + df["method"]))
            if missing:
                why += f" (no rows now for {', '.join(sorted(missing))})"
    except (OSError, ValueError) as exc:
        why = f"{path} could not be read ({str(exc).splitlines()[0] if str(exc) else exc!r})"
    if why:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        aside = path.parent / "superseded" / f"{path.stem}-{stamp}{path.suffix}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, aside)
        why += f"; the old table is kept as {aside}"
    write_table(df, path)
    return why


def retire_cell(results_dir: str | Path, cell_key: str, marker: str | Path) -> Path:
    """Move a finished cell's result parts and done marker to ``results_dir/superseded/<stamp>/``.

    Used to run a failed cell again: its earlier rows leave the results table (the leaderboard
    reads ``parts/`` only) but are kept, never deleted. Returns the folder they went to.
    """
    from datetime import datetime, timezone

    results_dir, marker = Path(results_dir), Path(marker)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    dest = results_dir / "superseded" / stamp
    dest.mkdir(parents=True, exist_ok=False)
    for part in cell_parts(results_dir, cell_key):
        os.replace(part, dest / part.name)
    if marker.exists():
        os.replace(marker, dest / marker.name)
    return dest


def retired_attempts(results_dir: str | Path, marker_name: str) -> int:
    """How many earlier attempts of a cell were retired (markers under ``superseded/``)."""
    return sum(1 for _ in (Path(results_dir) / "superseded").glob(f"*/{marker_name}"))
