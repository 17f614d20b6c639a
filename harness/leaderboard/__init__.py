"""Cross-task leaderboards rebuilt from the tidy results table (``harness.results``).

One leaderboard per data source (real first; real and synthetic are never ranked together).
Cells are mean ± std over seeds of the final test runs; per-task ranks are competition ("min")
ranks on the *displayed* value, so ties at display precision share the best rank; failed and
missing cells are shown and not ranked; Avg. Rank, #1, #2 and coverage summarise across tasks;
a Friedman (or, for two methods, Wilcoxon) test with the Nemenyi critical difference runs on the
complete blocks when there are at least five. Published paper numbers can be shown as unranked
reference rows. Writers: Markdown, CSV, HTML, LaTeX and the critical-difference diagram (PNG).

    from harness.leaderboard import build_leaderboards, write_leaderboard
    for lb in build_leaderboards(df, reference=True):
        print(lb.to_markdown())
    write_leaderboard(df, "results/leaderboard")

Command line: ``python -m harness.leaderboard --results PATH [--out DIR] [--reference paper]
[--data-source real|synthetic]``.
"""
from __future__ import annotations

from harness.leaderboard.build import (FAILED, MISSING, OK, Cell, Leaderboard, MethodRow,
                                       TaskColumn, build_leaderboard, build_leaderboards,
                                       data_sources, final_test_rows, rank_task, resolve_metric)
from harness.leaderboard.reference import REFERENCES, ReferenceRow, reference_rows
from harness.leaderboard.stats import (ALPHA, MIN_BLOCKS, Q_ALPHA_005, Significance,
                                       average_ranks, critical_difference, nemenyi_groups,
                                       q_alpha, significance_test)
from harness.leaderboard.files import leaderboard_markdown, write_leaderboard
from harness.leaderboard.writers import to_frame, to_html, to_latex, to_markdown


def draw_cd_diagram(mean_ranks, path, *, cd=None, groups=(), title=None, dpi=150):
    """The critical-difference diagram as PNG (see :mod:`harness.leaderboard.plot`; matplotlib
    is imported only when a diagram is drawn)."""
    from harness.leaderboard.plot import draw_cd_diagram as _draw
    return _draw(mean_ranks, path, cd=cd, groups=groups, title=title, dpi=dpi)


__all__ = [
    "ALPHA", "FAILED", "MIN_BLOCKS", "MISSING", "OK", "Q_ALPHA_005", "REFERENCES", "Cell",
    "Leaderboard", "MethodRow", "ReferenceRow", "Significance", "TaskColumn", "average_ranks",
    "build_leaderboard", "build_leaderboards", "critical_difference", "data_sources",
    "draw_cd_diagram", "final_test_rows", "leaderboard_markdown", "nemenyi_groups", "q_alpha",
    "rank_task", "reference_rows", "resolve_metric", "significance_test", "to_frame", "to_html",
    "to_latex", "to_markdown", "write_leaderboard",
]
