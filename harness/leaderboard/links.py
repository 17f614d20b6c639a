"""Links from a leaderboard's HTML into the tracking UI (built by the caller, rendered here).

The leaderboard is computed from the results table alone and knows no tracking server; whoever
has one (the sweep, :func:`harness.report.board_links.mlflow_board_links`) fills a
:class:`BoardLinks`, and the HTML writer turns each cell's value and each task's header into a
link. Markdown, CSV and LaTeX stay link-free.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BoardLinks:
    """URLs for one leaderboard: per (method key, task key) cell, and per task key."""

    cells: dict[tuple[str, str], str] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    cell_title: str = "open this cell's run in MLflow"
    task_title: str = "compare this task's final runs in MLflow"
