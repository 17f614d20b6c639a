"""One leaderboard as a standalone HTML page (table, notes, caption, the CD diagram)."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from harness.leaderboard.common import FAILED, MISSING
from harness.leaderboard.common import reference_value as _reference_value
from harness.leaderboard.stats import groups_text
from harness.leaderboard.texts import (FAILED_MARK, FLOORS_LABEL, MISSING_MARK, SKIP_MARK,
                                       floor_text, fmt_rank, marks_text, method_label,
                                       missing_text, failure_notes, reference_label, skipped_lines, stated_columns,
                                       board_title, value_text)

if TYPE_CHECKING:
    from harness.leaderboard.model import Cell, Leaderboard

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
                f'{missing_text(cell)}</td>')
    if cell.status == FAILED:
        tip = html.escape(cell.error, quote=True)
        return (f'<td class="failed" title="{tip}">{FAILED_MARK} '
                f'{html.escape(cell.run_status)}</td>')
    text = _linked(html.escape(value_text(cell)), url, title)
    if cell.rank == 1:
        text = f"<b>{text}</b>"
    text += f" ({cell.rank}){html.escape(marks_text(cell))}"
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
        rows.append(f"<tr><td>{e(method_label(lb, m.key))}</td>{cells}"
                    f"<td>{fmt_rank(m.avg_rank)}</td><td>{m.n_first}</td>"
                    f"<td>{m.n_second}</td><td>{m.coverage}</td><td>{m.n_below_floor}</td></tr>")
    if lb.floors:
        rows.append(f'<tr class="refhead"><td colspan="{len(lb.tasks) + 6}">'
                    f"{e(FLOORS_LABEL)}</td></tr>")
        for f in lb.floors:
            vals = "".join(f"<td>{e(floor_text(lb.cells[(f.key, t)]))}</td>" for t in lb.task_keys)
            rows.append(f'<tr class="floor"><td>{e(f.key)}</td>{vals}'
                        f"<td></td><td></td><td></td><td>{f.coverage}</td><td></td></tr>")
    if lb.reference:
        rows.append(f'<tr class="refhead"><td colspan="{len(lb.tasks) + 6}">'
                    f"{e(reference_label(lb))}</td></tr>")
        for r in lb.reference:
            vals = "".join(f"<td>{e(_reference_value(r, t) or MISSING_MARK)}</td>"
                           for t in lb.tasks)
            summary = "".join(f"<td>{e(x)}</td>" for x in stated_columns(r))
            rows.append(f'<tr class="ref"><td>{e(r.label)}</td>{vals}{summary}</tr>')
    notes = failure_notes(lb)
    notes_html = ("<h3>Seeds that did not finish ok</h3><ul>"
                  + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>") if notes else ""
    skips = skipped_lines(lb)
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
            f"<title>{e(board_title(lb))}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{e(board_title(lb))}</h1>\n{summary}<table><thead><tr><th>Method</th>{head}"
            "<th>Avg. Rank</th><th>#1</th><th>#2</th><th>Tasks</th><th>&lt; floor</th>"
            "</tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table>\n"
            f"{notes_html}<div class=\"caption\">{caption}</div>{figure}\n</body></html>\n")
