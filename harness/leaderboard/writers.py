"""Writers of one leaderboard: Markdown, CSV (wide, one row per method), HTML, LaTeX (booktabs).

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

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from harness.leaderboard.common import FAILED, MISSING, OK
from harness.leaderboard.skips import SKIPPED
from harness.leaderboard.common import reference_value as _reference_value
from harness.leaderboard.stats import groups_text

if TYPE_CHECKING:
    from harness.leaderboard.build import Cell, Leaderboard

MISSING_MARK = "—"
SKIP_MARK = "n/a"
FAILED_MARK = "✗"


def _fmt_rank(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _value_text(cell: Cell) -> str:
    return f"{cell.display} ± {cell.display_std}" if cell.display_std else cell.display


FLOOR_MARK = "†"
SPREAD_MARK = "≈"
FLOORS_LABEL = "floors (reference predictors, not ranked)"


def _marks(cell: Cell) -> str:
    """† below the mean floor, ≈ within the seed spread of the task's best."""
    return (f" {FLOOR_MARK}" if cell.below_floor else "") + (f" {SPREAD_MARK}" if cell.within_spread else "")


def _missing_text(cell: Cell) -> str:
    """"n/a" for a cell the method does not support (skipped), "—" for one without runs."""
    return SKIP_MARK if cell.run_status == SKIPPED else MISSING_MARK


def _floor_text(cell: Cell) -> str:
    if cell.status == MISSING:
        return _missing_text(cell)
    if cell.status == FAILED:
        return f"{FAILED_MARK} {cell.run_status}"
    return _value_text(cell)


def _stated(r) -> list[str]:
    """A reference row's summary columns (Avg. Rank, #1, #2, Tasks, below-floor): the paper's
    stated values marked as such, or blanks."""
    if not r.stated:
        return ["", "", "", "", ""]
    return [f"{r.stated_rank} (stated)", r.stated_firsts or "", r.stated_seconds or "", "", ""]


def _reference_label(lb: Leaderboard) -> str:
    text = f"reference ({lb.reference_name}, not run here)"
    if lb.data_source != "real":
        text += f"; real-data protocol, not comparable with {lb.data_source} runs"
    return text


def _method_label(lb: Leaderboard, key: str) -> str:
    m = lb.method(key)
    return f"{key} (variant of {m.variant_of})" if m.variant_of else key


def _skips(lb: Leaderboard) -> list[str]:
    """One line per cell whose method does not support the task, with the method's reason."""
    keys = list(lb.method_keys) + [f.key for f in lb.floors]
    return [f"{m} / {t}: {lb.cells[(m, t)].error}" for m in keys for t in lb.task_keys
            if lb.cells[(m, t)].status == MISSING and lb.cells[(m, t)].run_status == SKIPPED]


def _notes(lb: Leaderboard) -> list[str]:
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


def _title(lb: Leaderboard) -> str:
    suites = sorted({t.suite for t in lb.tasks if t.suite})
    return f"Leaderboard: {lb.data_source} data" + (f" ({', '.join(suites)})" if suites else "")


# ---------------------------------------------------------------------------------------------
# Markdown

def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_cell(cell: Cell, modal: int | None) -> str:
    if cell.status == MISSING:
        return _missing_text(cell)
    if cell.status == FAILED:
        return f"{FAILED_MARK} {_md_escape(cell.run_status)}"
    text = _value_text(cell)
    if cell.rank == 1:
        text = f"**{text}**"
    text += f" ({cell.rank}){_marks(cell)}"
    if modal is not None and cell.n != modal:
        text += f" n={cell.n}"
    return text


def to_markdown(lb: Leaderboard, png_name: str | None = None) -> str:
    """The leaderboard as a Markdown section: title, table, notes, caption."""
    modal = lb.modal_seeds()
    head = ["Method"] + [f"{t.key} {t.arrow}" for t in lb.tasks] + ["Avg. Rank", "#1", "#2",
                                                                    "Tasks", "< floor"]
    lines = [f"## {_title(lb)}", ""] + [f"- {_md_escape(x)}" for x in lb.summary_lines()] + ["",
             "| " + " | ".join(_md_escape(h) for h in head) + " |",
             "|---" + "|---:" * (len(head) - 1) + "|"]
    for m in lb.methods:
        row = [_md_escape(_method_label(lb, m.key))]
        row += [_md_cell(lb.cells[(m.key, t)], modal) for t in lb.task_keys]
        row += [_fmt_rank(m.avg_rank), str(m.n_first), str(m.n_second), m.coverage,
                str(m.n_below_floor)]
        lines.append("| " + " | ".join(row) + " |")
    if lb.floors:
        lines.append("| *" + FLOORS_LABEL + "* |" + " |" * (len(head) - 1))
        for f in lb.floors:
            vals = [_md_escape(_floor_text(lb.cells[(f.key, t)])) for t in lb.task_keys]
            lines.append("| " + " | ".join([_md_escape(f.key)] + vals + ["", "", "", f.coverage, ""])
                         + " |")
    if lb.reference:
        lines.append("| *" + _md_escape(_reference_label(lb)) + "* |"
                     + " |" * (len(head) - 1))
        for r in lb.reference:
            vals = [_reference_value(r, t) or MISSING_MARK for t in lb.tasks]
            lines.append("| " + " | ".join([_md_escape(r.label)] + vals + _stated(r)) + " |")
    lines.append("")
    notes = _notes(lb)
    if notes:
        lines.append("Seeds that did not finish ok:")
        lines += [f"- {_md_escape(n)}" for n in notes]
        lines.append("")
    skips = _skips(lb)
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


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #333; }
tr.refhead td { font-style: italic; color: #666; border-top: 2px solid #333; }
tr.ref td { color: #666; }
td.failed { color: #a00; }
td.missing { color: #999; }
.caption p { max-width: 60em; line-height: 1.4; }
"""


def _linked(inner: str, url: str | None, title: str) -> str:
    if not url:
        return inner
    e = html.escape
    return f'<a href="{e(url, quote=True)}" title="{e(title, quote=True)}">{inner}</a>'


def _html_cell(cell: Cell, modal: int | None, url: str | None = None,
               title: str = "") -> str:
    if cell.status == MISSING:
        return (f'<td class="missing" title="{html.escape(cell.error, quote=True)}">'
                f'{_missing_text(cell)}</td>')
    if cell.status == FAILED:
        tip = html.escape(cell.error, quote=True)
        return (f'<td class="failed" title="{tip}">{FAILED_MARK} '
                f'{html.escape(cell.run_status)}</td>')
    text = _linked(html.escape(_value_text(cell)), url, title)
    if cell.rank == 1:
        text = f"<b>{text}</b>"
    text += f" ({cell.rank}){html.escape(_marks(cell))}"
    if modal is not None and cell.n != modal:
        text += f" <small>n={cell.n}</small>"
    return f"<td>{text}</td>"


def to_html(lb: Leaderboard, png: str | Path | None = None, embed: bool = True,
            links=None) -> str:
    """A standalone page; ``png`` is embedded as a data URI (``embed``) or linked by name;
    ``links`` (:class:`harness.leaderboard.links.BoardLinks`) makes values and task headers links."""
    from harness.leaderboard.links import BoardLinks

    links = links or BoardLinks()
    modal = lb.modal_seeds()
    e = html.escape
    head = "".join(f"<th>{_linked(e(t.key), links.tasks.get(t.key), links.task_title)} "
                   f"{t.arrow}</th>" for t in lb.tasks)
    rows = []
    for m in lb.methods:
        cells = "".join(_html_cell(lb.cells[(m.key, t)], modal, links.cells.get((m.key, t)),
                                   links.cell_title) for t in lb.task_keys)
        rows.append(f"<tr><td>{e(_method_label(lb, m.key))}</td>{cells}"
                    f"<td>{_fmt_rank(m.avg_rank)}</td><td>{m.n_first}</td>"
                    f"<td>{m.n_second}</td><td>{m.coverage}</td><td>{m.n_below_floor}</td></tr>")
    if lb.floors:
        rows.append(f'<tr class="refhead"><td colspan="{len(lb.tasks) + 6}">'
                    f"{e(FLOORS_LABEL)}</td></tr>")
        for f in lb.floors:
            vals = "".join(f"<td>{e(_floor_text(lb.cells[(f.key, t)]))}</td>" for t in lb.task_keys)
            rows.append(f'<tr class="floor"><td>{e(f.key)}</td>{vals}'
                        f"<td></td><td></td><td></td><td>{f.coverage}</td><td></td></tr>")
    if lb.reference:
        rows.append(f'<tr class="refhead"><td colspan="{len(lb.tasks) + 6}">'
                    f"{e(_reference_label(lb))}</td></tr>")
        for r in lb.reference:
            vals = "".join(f"<td>{e(_reference_value(r, t) or MISSING_MARK)}</td>"
                           for t in lb.tasks)
            summary = "".join(f"<td>{e(x)}</td>" for x in _stated(r))
            rows.append(f'<tr class="ref"><td>{e(r.label)}</td>{vals}{summary}</tr>')
    notes = _notes(lb)
    notes_html = ("<h3>Seeds that did not finish ok</h3><ul>"
                  + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>") if notes else ""
    skips = _skips(lb)
    if skips:
        notes_html += (f"<h3>Skipped cells ({SKIP_MARK}: the method does not support the task)"
                       "</h3><ul>" + "".join(f"<li>{e(n)}</li>" for n in skips) + "</ul>")
    caption = "".join(f"<p>{e(line)}</p>" for line in lb.caption_lines())
    summary = ('<ul class="summary">' + "".join(f"<li>{e(x)}</li>" for x in lb.summary_lines())
               + "</ul>")
    figure = ""
    if png is not None:
        png = Path(png)
        if embed:
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            src = f"data:image/png;base64,{data}"
        else:
            src = e(png.name)
        figure = (f'<h3>Critical-difference diagram</h3><img src="{src}" '
                  f'alt="critical-difference diagram ({e(lb.data_source)} data)">'
                  f"<p>Not significantly different (joined): "
                  f"{e(groups_text(lb.significance.groups))}.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(_title(lb))}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{e(_title(lb))}</h1>\n{summary}<table><thead><tr><th>Method</th>{head}"
            "<th>Avg. Rank</th><th>#1</th><th>#2</th><th>Tasks</th><th>&lt; floor</th>"
            "</tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>\n"
            f"{notes_html}<div class=\"caption\">{caption}</div>{figure}\n</body></html>\n")


# ---------------------------------------------------------------------------------------------
# LaTeX

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _tex_cell(cell: Cell) -> str:
    if cell.status == MISSING:
        return "n/a" if cell.run_status == SKIPPED else "--"
    if cell.status == FAILED:
        return f"failed ({tex_escape(cell.run_status)})"
    core = tex_escape(cell.display)
    if cell.display_std:
        core += r" $\pm$ " + tex_escape(cell.display_std)
    if cell.rank == 1:
        core = rf"\textbf{{{core}}}"
    marks = (r" $\dagger$" if cell.below_floor else "") + (r" $\approx$" if cell.within_spread else "")
    return f"{core} ({cell.rank}){marks}"


def to_latex(lb: Leaderboard) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), caption as comments above."""
    n_cols = len(lb.tasks) + 6
    out = [f"% {_title(lb)} -- generated by harness.leaderboard; needs \\usepackage{{booktabs}}"]
    out += [f"% {line}" for line in lb.caption_lines()]
    out.append(r"\begin{tabular}{l" + "r" * (n_cols - 1) + "}")
    out.append(r"\toprule")
    head = ["Method"] + [tex_escape(t.key) + (r" $\uparrow$" if t.metric.direction == "max"
                                              else r" $\downarrow$") for t in lb.tasks]
    head += [r"Avg.\ Rank", r"\#1", r"\#2", "Tasks", r"$<$ floor"]
    out.append(" & ".join(head) + r" \\")
    out.append(r"\midrule")
    for m in lb.methods:
        row = [tex_escape(_method_label(lb, m.key))]
        row += [_tex_cell(lb.cells[(m.key, t)]) for t in lb.task_keys]
        row += [_fmt_rank(m.avg_rank).replace("—", "--"), str(m.n_first), str(m.n_second),
                m.coverage, str(m.n_below_floor)]
        out.append(" & ".join(row) + r" \\")
    if lb.floors:
        out.append(r"\midrule")
        out.append(rf"\multicolumn{{{n_cols}}}{{l}}{{\textit{{{FLOORS_LABEL}}}}} \\")
        for f in lb.floors:
            vals = [tex_escape(_floor_text(lb.cells[(f.key, t)]).replace(MISSING_MARK, "--"))
                    for t in lb.task_keys]
            out.append(" & ".join([tex_escape(f.key)] + vals + ["", "", "", f.coverage, ""]) + r" \\")
    if lb.reference:
        out.append(r"\midrule")
        label = tex_escape(_reference_label(lb))
        out.append(rf"\multicolumn{{{n_cols}}}{{l}}{{\textit{{{label}}}}} \\")
        for r in lb.reference:
            vals = [tex_escape(_reference_value(r, t) or "--") for t in lb.tasks]
            out.append(" & ".join([tex_escape(r.label)] + vals
                                  + [tex_escape(x) for x in _stated(r)]) + r" \\")
    out.append(r"\bottomrule")
    out.append(r"\end{tabular}")
    return "\n".join(out) + "\n"
