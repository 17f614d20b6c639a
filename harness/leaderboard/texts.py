"""The texts every leaderboard writer shares: marks, labels, notes and the title."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from harness.leaderboard.common import FAILED, MISSING, OK
from harness.leaderboard.skips import SKIPPED

if TYPE_CHECKING:
    from harness.leaderboard.model import Cell, Leaderboard

MISSING_MARK = "—"
SKIP_MARK = "n/a"
FAILED_MARK = "✗"


def fmt_rank(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def value_text(cell: Cell) -> str:
    return f"{cell.display} ± {cell.display_std}" if cell.display_std else cell.display


FLOOR_MARK = "†"
SPREAD_MARK = "≈"
FLOORS_LABEL = "floors (reference predictors, not ranked)"


def marks_text(cell: Cell) -> str:
    """† below the mean floor, ≈ within the seed spread of the task's best."""
    return (f" {FLOOR_MARK}" if cell.below_floor else "") + (f" {SPREAD_MARK}" if cell.within_spread else "")


def missing_text(cell: Cell) -> str:
    """"n/a" for a cell the method does not support (skipped), "—" for one without runs."""
    return SKIP_MARK if cell.run_status == SKIPPED else MISSING_MARK


def floor_text(cell: Cell) -> str:
    if cell.status == MISSING:
        return missing_text(cell)
    if cell.status == FAILED:
        return f"{FAILED_MARK} {cell.run_status}"
    return value_text(cell)


def stated_columns(r) -> list[str]:
    """A reference row's summary columns (Avg. Rank, #1, #2, Tasks, below-floor): the paper's
    stated values marked as such, or blanks."""
    if not r.stated:
        return ["", "", "", "", ""]
    return [f"{r.stated_rank} (stated)", r.stated_firsts or "", r.stated_seconds or "", "", ""]


def reference_label(lb: Leaderboard) -> str:
    text = f"reference ({lb.reference_name}, not run here)"
    if lb.data_source != "real":
        text += f"; real-data protocol, not comparable with {lb.data_source} runs"
    return text


def method_label(lb: Leaderboard, key: str) -> str:
    m = lb.method(key)
    return f"{key} (variant of {m.variant_of})" if m.variant_of else key


def skipped_lines(lb: Leaderboard) -> list[str]:
    """One line per cell whose method does not support the task, with the method's reason."""
    keys = list(lb.method_keys) + [f.key for f in lb.floors]
    return [f"{m} / {t}: {lb.cells[(m, t)].error}" for m in keys for t in lb.task_keys
            if lb.cells[(m, t)].status == MISSING and lb.cells[(m, t)].run_status == SKIPPED]


def failure_notes(lb: Leaderboard) -> list[str]:
    """One line per failed cell and per ok cell with seeds that did not finish ok."""
    out = []
    for m in lb.method_keys:
        for t in lb.task_keys:
            c = lb.cells[(m, t)]
            err = " ".join(c.error.split())
            if len(err) > 300:
                err = err[:297] + "..."
            err = f": {err}" if err else ""
            if c.status == FAILED:
                out.append(f"{m} / {t}: failed, {c.n_failed} seed(s) {c.run_status}{err}")
            elif c.status == OK and c.n_failed:
                out.append(f"{m} / {t}: {c.n_failed} seed(s) {c.run_status}; the mean uses the "
                           f"{c.n} ok seed(s){err}")
    return out


def board_title(lb: Leaderboard) -> str:
    suites = sorted({t.suite for t in lb.tasks if t.suite})
    return f"Leaderboard: {lb.data_source} data" + (f" ({', '.join(suites)})" if suites else "")
