"""The critical-difference diagram (Demšar 2006, Fig. 1 style), drawn with matplotlib's Agg canvas.

Methods hang from a rank axis (1 = best, on the left) at their average ranks; the better half is
labelled on the left, the worse half on the right. Thick bars under the axis join the methods
that are not significantly different (:func:`harness.leaderboard.stats.nemenyi_groups`); a bar
above the axis shows the critical difference when there is one.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def draw_cd_diagram(mean_ranks: Mapping[str, float], path: str | Path, *,
                    cd: float | None = None, groups: Sequence[Sequence[str]] = (),
                    title: str | None = None, dpi: int = 150) -> Path:
    """Write the diagram as PNG to ``path`` and return it."""
    if not mean_ranks:
        raise ValueError("a critical-difference diagram needs at least one method")
    path = Path(path)
    order = sorted(mean_ranks, key=lambda m: (mean_ranks[m], m))
    k = len(order)
    lo = 1
    hi = max(k, int(math.ceil(max(mean_ranks.values()))))
    n_left = int(math.ceil(k / 2))
    left, right = order[:n_left], order[n_left:][::-1]  # right side: worst at the top

    tick_h, row_h, group_h = 0.12, 0.32, 0.16
    group_top = -0.18
    first_row = group_top - len(groups) * group_h - 0.12
    n_rows = max(len(left), len(right), 1)
    y_min = first_row - (n_rows - 1) * row_h - 0.3
    y_max = 1.0 if cd else 0.6
    if title:
        y_max += 0.35

    height = max(1.8, (y_max - y_min) * 1.15)
    width = max(6.0, 1.2 * (hi - lo) + 4.0)
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    span = hi - lo if hi > lo else 1
    ax.set_xlim(lo - 0.35 * span - 0.6, hi + 0.35 * span + 0.6)
    ax.set_ylim(y_min, y_max)

    line = dict(color="black", linewidth=1.0)
    # rank axis with integer and half ticks
    ax.plot([lo, hi], [0, 0], **line)
    for i in range(lo, hi + 1):
        ax.plot([i, i], [0, tick_h], **line)
        ax.text(i, tick_h + 0.05, str(i), ha="center", va="bottom", fontsize=10)
        if i < hi:
            ax.plot([i + 0.5, i + 0.5], [0, tick_h / 2], **line)

    # critical difference bar
    if cd and math.isfinite(cd):
        y_cd = tick_h + 0.45
        ax.plot([lo, lo + cd], [y_cd, y_cd], color="black", linewidth=1.6)
        for x in (lo, lo + cd):
            ax.plot([x, x], [y_cd - 0.05, y_cd + 0.05], color="black", linewidth=1.6)
        ax.text(lo + cd / 2, y_cd + 0.07, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)

    # groups of methods that are not significantly different
    for j, group in enumerate(groups):
        rs = [mean_ranks[m] for m in group]
        y = group_top - j * group_h
        ax.plot([min(rs) - 0.04, max(rs) + 0.04], [y, y], color="black", linewidth=3.5,
                solid_capstyle="round")

    # methods
    for i, m in enumerate(left):
        r, y = mean_ranks[m], first_row - i * row_h
        ax.plot([r, r, lo - 0.15], [0, y, y], **line)
        ax.text(lo - 0.2, y, f"{m}  {r:.2f}", ha="right", va="center", fontsize=10)
    for i, m in enumerate(right):
        r, y = mean_ranks[m], first_row - i * row_h
        ax.plot([r, r, hi + 0.15], [0, y, y], **line)
        ax.text(hi + 0.2, y, f"{r:.2f}  {m}", ha="left", va="center", fontsize=10)

    if title:
        ax.text((lo + hi) / 2, y_max - 0.05, title, ha="center", va="top", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.15,
                facecolor="white")
    return path
