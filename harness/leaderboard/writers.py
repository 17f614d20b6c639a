"""Writers of one leaderboard: Markdown and CSV (wide, one row per method) here; HTML
(:mod:`harness.leaderboard.html_page`) and LaTeX booktabs (:mod:`harness.leaderboard.latex`)
re-exported from their own modules.

The file set they make is written by :func:`harness.leaderboard.files.write_leaderboard`
(``out_dir``):

- the first data source of the results (real when there is any, so usually real):
  ``leaderboard.md/.csv/.html/.tex`` + ``cd_diagram.png`` (the PNG only when a significance
  test ran; every caption names its data source);
- every other data source: the same names with a ``-<source>`` suffix, e.g.
  ``leaderboard-synthetic.md`` and ``cd_diagram-synthetic.png``. A results table with only
  synthetic rows therefore writes ``leaderboard.md`` for them.

Names depend on the sources in the results, never on a ``data_source`` filter, so rebuilding one
source only rewrites its own set. A stale diagram (no test this time) is removed, and so are the
sets of sources the results no longer have (unfiltered builds only). The returned dict maps each
written file's *name* to its path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from harness.leaderboard.common import FAILED, MISSING
from harness.leaderboard.common import reference_value as _reference_value
# HTML and LaTeX have their own modules; re-exported so every writer is importable from here
from harness.leaderboard.html_page import to_html
from harness.leaderboard.latex import to_latex
from harness.leaderboard.skips import SKIPPED
from harness.leaderboard.stats import groups_text
from harness.leaderboard.texts import (FAILED_MARK, FLOORS_LABEL, MISSING_MARK, SKIP_MARK,
                                       floor_text, fmt_rank, marks_text, method_label,
                                       missing_text, failure_notes, reference_label, skipped_lines, stated_columns,
                                       board_title, value_text)

if TYPE_CHECKING:
    from harness.leaderboard.model import Cell, Leaderboard

__all__ = ["to_frame", "to_html", "to_latex", "to_markdown"]


# ---------------------------------------------------------------------------------------------
# Markdown

def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_cell(cell: Cell, modal: int | None) -> str:
    if cell.status == MISSING:
        return missing_text(cell)
    if cell.status == FAILED:
        return f"{FAILED_MARK} {_md_escape(cell.run_status)}"
    text = value_text(cell)
    if cell.rank == 1:
        text = f"**{text}**"
    text += f" ({cell.rank}){marks_text(cell)}"
    if modal is not None and cell.n != modal:
        text += f" n={cell.n}"
    return text


def to_markdown(lb: Leaderboard, png_name: str | None = None) -> str:
    """The leaderboard as a Markdown section: title, table, notes, caption."""
    modal = lb.modal_seeds()
    head = ["Method"] + [f"{t.key} {t.arrow}" for t in lb.tasks] + ["Avg. Rank", "#1", "#2",
                                                                    "Tasks", "< floor"]
    lines = [f"## {board_title(lb)}", ""] + [f"- {_md_escape(x)}" for x in lb.summary_lines()] + ["",
             "| " + " | ".join(_md_escape(h) for h in head) + " |",
             "|---" + "|---:" * (len(head) - 1) + "|"]
    for m in lb.methods:
        row = [_md_escape(method_label(lb, m.key))]
        row += [_md_cell(lb.cells[(m.key, t)], modal) for t in lb.task_keys]
        row += [fmt_rank(m.avg_rank), str(m.n_first), str(m.n_second), m.coverage,
                str(m.n_below_floor)]
        lines.append("| " + " | ".join(row) + " |")
    if lb.floors:
        lines.append("| *" + FLOORS_LABEL + "* |" + " |" * (len(head) - 1))
        for f in lb.floors:
            vals = [_md_escape(floor_text(lb.cells[(f.key, t)])) for t in lb.task_keys]
            lines.append("| " + " | ".join([_md_escape(f.key)] + vals + ["", "", "", f.coverage, ""])
                         + " |")
    if lb.reference:
        lines.append("| *" + _md_escape(reference_label(lb)) + "* |"
                     + " |" * (len(head) - 1))
        for r in lb.reference:
            vals = [_reference_value(r, t) or MISSING_MARK for t in lb.tasks]
            lines.append("| " + " | ".join([_md_escape(r.label)] + vals + stated_columns(r)) + " |")
    lines.append("")
    notes = failure_notes(lb)
    if notes:
        lines.append("Seeds that did not finish ok:")
        lines += [f"- {_md_escape(n)}" for n in notes]
        lines.append("")
    skips = skipped_lines(lb)
    if skips:
        lines.append(f"Skipped cells ({SKIP_MARK}: the method does not support the task):")
        lines += [f"- {_md_escape(n)}" for n in skips]
        lines.append("")
    for line in lb.caption_lines():
        lines += [line, ""]
    sig = lb.significance
    if sig.ran:
        lines.append(f"Not significantly different (joined): {groups_text(sig.groups)}.")
        if png_name:
            lines.append(f"Critical-difference diagram: `{png_name}`.")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CSV

def to_frame(lb: Leaderboard) -> pd.DataFrame:
    """One row per method (ranked rows, then reference rows), per-task and summary columns.

    Per task ``<task>__mean``, ``__std``, ``__n``, ``__rank``, ``__status`` (``__display`` too,
    the ranked string); then ``avg_rank``, ``n_first``, ``n_second``, ``tasks_covered``,
    ``tasks_total``, ``n_below_floor``. ``kind`` is "ranked", "floor" or "reference"; per task
    ``__below_floor`` and ``__within_spread`` carry the leaderboard's † and ≈ marks.
    """
    records = []
    for m in list(lb.methods) + list(lb.floors):
        kind = "floor" if m in lb.floors else "ranked"
        rec = {"data_source": lb.data_source, "kind": kind, "method": m.key,
               "method_name": m.method, "method_version": m.method_version,
               "variant_of": m.variant_of}
        for t in lb.task_keys:
            c = lb.cells[(m.key, t)]
            rec[f"{t}__mean"] = c.mean
            rec[f"{t}__std"] = c.std
            rec[f"{t}__n"] = c.n
            rec[f"{t}__rank"] = c.rank
            rec[f"{t}__status"] = (f"failed: {c.run_status}" if c.status == FAILED
                                   else f"skipped: {c.error}" if c.run_status == SKIPPED
                                   else c.status)
            rec[f"{t}__display"] = c.display
            rec[f"{t}__below_floor"] = c.below_floor
            rec[f"{t}__within_spread"] = c.within_spread
        rec.update(avg_rank=m.avg_rank, n_first=m.n_first, n_second=m.n_second,
                   tasks_covered=m.covered, tasks_total=m.n_tasks, n_below_floor=m.n_below_floor)
        records.append(rec)
    for r in lb.reference:
        rec = {"data_source": lb.data_source, "kind": "reference", "method": r.label,
               "method_name": r.label, "method_version": "", "variant_of": ""}
        for t in lb.tasks:
            v = _reference_value(r, t)
            rec[f"{t.key}__mean"] = float(v) if v is not None else float("nan")
            rec[f"{t.key}__std"] = float("nan")
            rec[f"{t.key}__n"] = None
            rec[f"{t.key}__rank"] = None
            rec[f"{t.key}__status"] = "reference" if v is not None else MISSING
            rec[f"{t.key}__display"] = v or ""
        # the paper's stated summary (over its own tasks), never recomputed from these cells
        rec.update(avg_rank=float(r.stated_rank) if r.stated else float("nan"),
                   n_first=int(r.stated_firsts) if r.stated_firsts else None,
                   n_second=int(r.stated_seconds) if r.stated_seconds else None,
                   tasks_covered=None, tasks_total=len(lb.tasks))
        records.append(rec)
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        if col.endswith(("__rank", "__n")) or col in ("n_first", "n_second", "tasks_covered",
                                                     "tasks_total"):
            frame[col] = frame[col].astype("Int64")
    return frame
