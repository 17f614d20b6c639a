"""Build leaderboards from the tidy results table (``harness.results``).

Policy (also printed in every caption, see :meth:`Leaderboard.caption_lines`):

- Rows used: ``phase == "final"``, ``split == "test"``, the task's metric (``Task.metric`` for
  suite tasks; the rows' own metric and direction otherwise). A cell is one
  (data source, task, method): mean and sample std (ddof = 1) over its seeds' ``ok`` values.
  When a seed has several rows (a re-run), the latest ``ok`` row counts; a seed with no ``ok``
  row counts as not ok. Cell status: ``ok`` (>= 1 ok seed), ``failed`` (rows, none ok) or
  ``missing`` (no rows).
- One leaderboard per ``data_source`` (real first, then synthetic, then anything else); sources
  are never ranked together.
- Per-task rank: competition ("min") ranking of the *displayed* mean (``Metric.display``), in the
  metric's direction, so values equal at display precision share the best rank (1, 1, 3).
  Failed and missing cells are shown and not ranked.
- Across tasks: Avg. Rank = mean of a method's ranks over the tasks it covers; #1 / #2 = tasks
  ranked 1 / 2; coverage = covered / total tasks.
- Versions: a task (or method) present with more than one version gets one column (row) per
  version, labelled ``name@version``; results of different versions are never averaged.
- Significance: see :mod:`harness.leaderboard.stats` (complete blocks, displayed values).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from harness.leaderboard import floors as fl
from harness.leaderboard import stats as st
from harness.leaderboard.common import (FAILED, MISSING, OK, SOURCE_ORDER, UNKNOWN_SOURCE,
                                        reference_value as _reference_value)
# the leaderboard's parts, re-exported: callers import them from here
from harness.leaderboard.model import Cell, Leaderboard, MethodRow, TaskColumn
from harness.leaderboard.reference import ReferenceRow, reference_rows
from harness.leaderboard.skips import SKIPPED, unsupported_reason
from harness.results import normalise
from harness.suites.base import Metric

__all__ = ["FAILED", "MISSING", "OK", "Cell", "Leaderboard", "MethodRow", "TaskColumn",
           "build_leaderboard", "build_leaderboards", "data_sources", "displayed_value",
           "final_test_rows", "rank_task", "resolve_metric"]


def _mask(series: pd.Series, value: str) -> np.ndarray:
    return series.eq(value).fillna(False).to_numpy(dtype=bool)


def final_test_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a leaderboard uses: ``phase == "final"`` and ``split == "test"``."""
    df = normalise(df)
    return df[_mask(df["phase"], "final") & _mask(df["split"], "test")].reset_index(drop=True)


def _source_series(df: pd.DataFrame) -> pd.Series:
    return df["data_source"].astype(object).where(df["data_source"].notna(), UNKNOWN_SOURCE)


def _order_sources(sources) -> list[str]:
    sources = set(sources)
    head = [s for s in SOURCE_ORDER if s in sources]
    return head + sorted(sources - set(SOURCE_ORDER))


def data_sources(df: pd.DataFrame) -> list[str]:
    """Data sources with final test rows, in leaderboard order (real, synthetic, others)."""
    rows = final_test_rows(df)
    return _order_sources(_source_series(rows).unique())


def _plain(rows: pd.DataFrame) -> pd.DataFrame:
    """String columns with "" for NA, seeds as Python ints or None; easy to group on."""
    out = rows.copy()
    for c in out.columns:
        if c in ("value", "wall_seconds"):
            continue
        if c in ("seed", "epochs"):
            out[c] = out[c].astype(object).where(out[c].notna(), None)
        else:
            out[c] = out[c].astype(object).where(out[c].notna(), "")
    return out


_SUITES_CACHE: dict | None = None


def _suites() -> dict:
    global _SUITES_CACHE
    if _SUITES_CACHE is None:
        try:
            from harness.suites import available_suites
            _SUITES_CACHE = available_suites()
        except Exception:  # pragma: no cover - a broken suite must not break the leaderboard
            _SUITES_CACHE = {}
    return _SUITES_CACHE


def _known_task(suite: str, task: str):
    suites = _suites()
    if suite in suites:
        return suites[suite].get(task)
    if not suite:  # no suite recorded: a unique match by name
        hits = [s[task] for s in suites.values() if task in s]
        return hits[0] if len(hits) == 1 else None
    return None


def _task_sort_key(suite: str, task: str) -> tuple:
    suites = _suites()
    known = list(suites.get(suite, {}))
    if not suite:
        for s in suites.values():
            if task in s:
                known = list(s)
                break
    return (suite, 0, known.index(task), "") if task in known else (suite, 1, 0, task)


def resolve_metric(suite: str, task: str, rows: pd.DataFrame,
                   overrides: Mapping[str, Metric] | None = None) -> Metric:
    """The metric a task is ranked on: an override, the suite's ``Task.metric``, or the rows'.

    For a task no suite knows, the most frequent metric name among its rows (ties:
    alphabetical) with those rows' ``direction`` ("max" or else "min") and ``Metric()``'s
    default significant digits.
    """
    if overrides and task in overrides:
        return overrides[task]
    known = _known_task(suite, task)
    if known is not None:
        return known.metric
    names = Counter(n for n in rows["metric"] if n)
    if not names:
        return Metric()
    name = sorted(names, key=lambda n: (-names[n], n))[0]
    dirs = [d for d in rows.loc[rows["metric"] == name, "direction"] if d]
    direction = "max" if dirs and Counter(dirs).most_common(1)[0][0] == "max" else "min"
    return Metric(name=name, direction=direction)


def _make_cell(method: str, task: str, sub: pd.DataFrame, metric: Metric) -> Cell:
    if sub.empty:
        return Cell(method, task, MISSING)
    sub = sub.assign(row_order=np.arange(len(sub))).sort_values(
        ["finished_at", "row_order"], kind="stable")
    per_seed: dict[object, list] = {}
    for rec in sub.itertuples(index=False):
        key = ("seed", rec.seed) if rec.seed is not None else (
            ("trial", rec.trial_id) if rec.trial_id else ("row", rec.row_order))
        per_seed.setdefault(key, []).append(rec)
    values, bad, run_ids = [], [], []
    for recs in per_seed.values():
        oks = [r for r in recs if r.status == "ok" and np.isfinite(r.value)]
        if oks:
            values.append(float(oks[-1].value))
            run_id = getattr(oks[-1], "mlflow_run_id", None)
            if isinstance(run_id, str) and run_id:
                run_ids.append(run_id)
        else:
            bad.append(recs[-1])
    statuses = []
    for r in bad:
        s = r.status or "unknown"
        statuses.append("no value" if s == "ok" else s)
    run_status = ", ".join(sorted(set(statuses)))
    errors = [r.error for r in bad if r.error]
    error = errors[-1] if errors else ""
    if not values:
        return Cell(method, task, FAILED, n=0, n_failed=len(bad), run_status=run_status,
                    error=error)
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if len(arr) >= 2 else float("nan")
    return Cell(method, task, OK, mean=mean, std=std, n=len(arr), n_failed=len(bad),
                display=metric.display(mean),
                display_std=metric.display(std) if np.isfinite(std) else "",
                run_status=run_status, error=error, run_ids=tuple(run_ids))


def displayed_value(cell: Cell, metric: Metric) -> float:
    """The displayed mean as a float, signed so that lower is better."""
    v = float(cell.display)
    return -v if metric.direction == "max" else v


def rank_task(cells: list[Cell], metric: Metric) -> None:
    """Competition ("min") ranks on the displayed value, in place; only ok cells are ranked."""
    ok = [c for c in cells if c.status == OK]
    for c in cells:
        c.rank = None
    if not ok:
        return
    keys = [displayed_value(c, metric) for c in ok]
    for c, r in zip(ok, rankdata(keys, method="min")):
        c.rank = int(r)


def _labels(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(name, version) -> "name", or "name@version" when the name has several versions."""
    versions: dict[str, set] = {}
    for name, ver in pairs:
        versions.setdefault(name, set()).add(ver)
    return {(n, v): (f"{n}@{v or 'unversioned'}" if len(versions[n]) > 1 else n)
            for n, v in pairs}


def build_leaderboard(df: pd.DataFrame, data_source: str = "real", *,
                      reference: bool | str = False,
                      metrics: Mapping[str, Metric] | None = None,
                      alpha: float = st.ALPHA, min_blocks: int = st.MIN_BLOCKS) -> Leaderboard:
    """The leaderboard of one ``data_source`` from a results frame (any rows; filtered here).

    ``reference``: False, True (= "paper") or a reference name; adds unranked reference rows.
    ``metrics``: per-task-name :class:`Metric` overrides (name, direction, sigfigs).
    """
    rows_all = final_test_rows(df)
    src = _source_series(rows_all)
    all_sources = _order_sources(src.unique())
    rows = _plain(rows_all[(src == data_source).to_numpy()])

    # --- columns: (suite, task, task_version), each with its metric -------------------------
    col_ids = sorted({(r.suite, r.task, r.task_version) for r in rows.itertuples()},
                     key=lambda t: (_task_sort_key(t[0], t[1]), t[2]))
    suites_of: dict[str, set] = {}
    for s, t, _ in col_ids:
        suites_of.setdefault(t, set()).add(s)
    n_versions = Counter((s, t) for s, t, _ in col_ids)
    tasks: list[TaskColumn] = []
    col_rows: dict[str, pd.DataFrame] = {}
    for s, t, v in col_ids:
        sel = rows[(rows["suite"] == s) & (rows["task"] == t) & (rows["task_version"] == v)]
        metric = resolve_metric(s, t, sel, metrics)
        key = f"{s or '?'}/{t}" if len(suites_of[t]) > 1 else t
        if n_versions[(s, t)] > 1:
            key = f"{key}@{v or 'unversioned'}"
        sel = sel[(sel["metric"] == metric.name) | (sel["metric"] == "")]
        tasks.append(TaskColumn(key, s, t, v, metric))
        col_rows[key] = sel

    # --- methods: (method, method_version); floors apart -----------------------------------
    used = pd.concat(list(col_rows.values())) if col_rows else rows.iloc[0:0]
    all_ids = sorted({(r.method, r.method_version) for r in used.itertuples()})
    meth_label = _labels(all_ids)
    floor_ids = sorted({(r.method, r.method_version) for r in used.itertuples()
                        if r.role == "floor"})
    meth_ids = [mid for mid in all_ids if mid not in floor_ids]
    variant = {}
    for mid in all_ids:
        sel = used[(used["method"] == mid[0]) & (used["method_version"] == mid[1])]
        vs = [x for x in sel["variant_of"] if x]
        variant[mid] = Counter(vs).most_common(1)[0][0] if vs else ""

    # --- cells and per-task ranks ----------------------------------------------------------
    cells: dict[tuple[str, str], Cell] = {}
    resolved: dict[str, bool] = {}
    for col in tasks:
        sel = col_rows[col.key]
        column_cells = []
        for mid in meth_ids:
            sub = sel[(sel["method"] == mid[0]) & (sel["method_version"] == mid[1])]
            c = _make_cell(meth_label[mid], col.key, sub, col.metric)
            cells[(c.method, col.key)] = c
            column_cells.append(c)
        rank_task(column_cells, col.metric)
        floor_cells = {}
        for mid in floor_ids:
            sub = sel[(sel["method"] == mid[0]) & (sel["method_version"] == mid[1])]
            c = _make_cell(meth_label[mid], col.key, sub, col.metric)
            cells[(c.method, col.key)] = c
            floor_cells[mid[0]] = c
        fl.mark_below_floor(column_cells, fl.baseline_floor(floor_cells), col.metric.direction)
        for mid in all_ids:
            c = cells[(meth_label[mid], col.key)]
            if c.status == MISSING:
                why = unsupported_reason(col.suite, col.task, mid[0])
                if why is not None:
                    c.run_status, c.error = SKIPPED, why
        resolved[col.key] = fl.resolve_task(column_cells)

    # --- summary -----------------------------------------------------------------------------
    methods: list[MethodRow] = []
    for mid in meth_ids:
        key = meth_label[mid]
        ranks = [cells[(key, t.key)].rank for t in tasks if cells[(key, t.key)].ranked]
        methods.append(MethodRow(
            key=key, method=mid[0], method_version=mid[1], variant_of=variant[mid],
            avg_rank=float(np.mean(ranks)) if ranks else float("nan"),
            n_first=sum(r == 1 for r in ranks), n_second=sum(r == 2 for r in ranks),
            covered=len(ranks), n_tasks=len(tasks),
            n_below_floor=sum(cells[(key, t.key)].below_floor for t in tasks)))
    methods.sort(key=lambda m: (math.isnan(m.avg_rank), m.avg_rank if not math.isnan(m.avg_rank)
                                else 0.0, -m.covered, m.key))

    floors = [MethodRow(key=meth_label[mid], method=mid[0], method_version=mid[1],
                        variant_of=variant[mid], avg_rank=float("nan"), n_first=0, n_second=0,
                        covered=sum(cells[(meth_label[mid], t.key)].status == OK for t in tasks),
                        n_tasks=len(tasks))
              for mid in floor_ids]

    # --- significance on complete blocks (displayed values, lower is better) ----------------
    compared = [m.key for m in methods if m.covered > 0]
    excluded = [m.key for m in methods if m.covered == 0]
    values = pd.DataFrame(
        {m: [displayed_value(cells[(m, t.key)], t.metric) if cells[(m, t.key)].status == OK
             else np.nan for t in tasks] for m in compared},
        index=pd.Index([t.key for t in tasks], name="task"), dtype="float64")
    sig = st.significance_test(values, alpha=alpha, min_blocks=min_blocks)

    # --- reference rows ---------------------------------------------------------------------
    ref_name = None
    refs: list[ReferenceRow] = []
    if reference:
        ref_name = "paper" if reference is True else str(reference)
        names = [t.task for t in tasks]
        refs = [r for r in reference_rows(ref_name, names)
                if any(_reference_value(r, t) is not None for t in tasks)
                or (r.stated and any(r.suite == t.suite for t in tasks))]

    return Leaderboard(data_source=data_source, tasks=tasks, methods=methods, cells=cells,
                       significance=sig, reference=refs, reference_name=ref_name,
                       other_sources=[s for s in all_sources if s != data_source],
                       excluded_from_test=excluded, floors=floors, resolved=resolved,
                       backbones=sorted({b for b in used["backbone"] if b}),
                       data_checks={t: _data_check(set(g)) for t, g in
                                    rows.groupby("task")["data_check"]} if len(rows) else {})


def _data_check(values: set[str]) -> str:
    if values == {"verified"}:
        return "verified"
    return "unverified" if "unverified" in values else "unchecked"


def build_leaderboards(df: pd.DataFrame, *, data_source: str | None = None,
                       reference: bool | str = False,
                       metrics: Mapping[str, Metric] | None = None,
                       alpha: float = st.ALPHA,
                       min_blocks: int = st.MIN_BLOCKS) -> list[Leaderboard]:
    """One leaderboard per data source present (real first), or only ``data_source``."""
    sources = data_sources(df)
    if data_source is not None:
        sources = [s for s in sources if s == data_source]
    return [build_leaderboard(df, s, reference=reference, metrics=metrics, alpha=alpha,
                              min_blocks=min_blocks) for s in sources]
