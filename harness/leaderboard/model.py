"""What a leaderboard is: its task columns, cells, method rows and the :class:`Leaderboard` itself.

Built by :mod:`harness.leaderboard.build` (the policy is in its docstring); written by
:mod:`harness.leaderboard.writers`; captioned by :mod:`harness.leaderboard.caption`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.leaderboard import floors as fl
from harness.leaderboard import stats as st
from harness.leaderboard.caption import caption_lines as _caption_lines
from harness.leaderboard.common import OK
from harness.leaderboard.reference import ReferenceRow
from harness.suites.base import Metric


@dataclass(frozen=True)
class TaskColumn:
    """One ranked column: a (suite, task, task_version) and its metric."""

    key: str            # column label: task, or task@version / suite/task when ambiguous
    suite: str
    task: str
    task_version: str
    metric: Metric

    @property
    def arrow(self) -> str:
        return "↑" if self.metric.direction == "max" else "↓"


@dataclass
class Cell:
    """One (method, task) cell of a leaderboard."""

    method: str
    task: str
    status: str                          # "ok", "failed" or "missing" (run_status "skipped":
                                         # the method does not support the task)
    mean: float = float("nan")
    std: float = float("nan")            # ddof = 1; NaN with one seed
    n: int = 0                           # ok seeds
    n_failed: int = 0                    # seeds with rows but no ok value
    display: str = ""                    # Metric.display(mean): what is shown and ranked
    display_std: str = ""                # Metric.display(std), "" when std is NaN
    rank: int | None = None              # competition rank within the task; None if not ranked
    run_status: str = ""                 # statuses of the seeds that were not ok ("diverged", ...)
    error: str = ""                      # the latest error message among them
    below_floor: bool = False            # mean worse than the task's `mean` floor (floors.py)
    within_spread: bool = False          # not told apart from the task's best (floors.py)
    run_ids: tuple[str, ...] = ()        # MLflow runs of the ok seeds (for links, see links.py)

    @property
    def ranked(self) -> bool:
        return self.rank is not None


@dataclass
class MethodRow:
    """One ranked row and its summary columns."""

    key: str                             # row label: method, or method@version when ambiguous
    method: str
    method_version: str
    variant_of: str
    avg_rank: float                      # NaN when the method covers no task
    n_first: int
    n_second: int
    covered: int
    n_tasks: int
    n_below_floor: int = 0               # tasks where the mean is worse than the `mean` floor

    @property
    def coverage(self) -> str:
        return f"{self.covered}/{self.n_tasks}"


@dataclass
class Leaderboard:
    """One data source's leaderboard: cells, ranks, summary, significance, reference rows."""

    data_source: str
    tasks: list[TaskColumn]
    methods: list[MethodRow]             # in leaderboard order (best Avg. Rank first)
    cells: dict[tuple[str, str], Cell]   # (method key, task key) -> cell
    significance: st.Significance
    reference: list[ReferenceRow] = field(default_factory=list)
    reference_name: str | None = None
    other_sources: list[str] = field(default_factory=list)  # other sources in the same results
    excluded_from_test: list[str] = field(default_factory=list)  # methods with no value at all
    floors: list[MethodRow] = field(default_factory=list)   # reference predictors, unranked
    backbones: list[str] = field(default_factory=list)      # bodies of the ranked rows
    resolved: dict[str, bool] = field(default_factory=dict)  # task key -> resolved (floors.py)
    #: task -> "verified" / "unverified" / "unchecked": whether its rows' data files were checked
    #: against the published ones (the rows' ``data_check``; harness.data.facts)
    data_checks: dict[str, str] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """Floors, resolution and significance verdicts (printed before the table)."""
        return fl.summary_lines(self)

    # -- access ----------------------------------------------------------------------------
    def cell(self, method: str, task: str) -> Cell:
        return self.cells[(method, task)]

    def method(self, key: str) -> MethodRow:
        for m in self.methods:
            if m.key == key:
                return m
        raise KeyError(f"no method {key!r} in this leaderboard; methods: "
                       f"{', '.join(m.key for m in self.methods)}")

    @property
    def task_keys(self) -> list[str]:
        return [t.key for t in self.tasks]

    @property
    def method_keys(self) -> list[str]:
        return [m.key for m in self.methods]

    def _grid(self, attr: str, dtype=None) -> pd.DataFrame:
        data = {t: [getattr(self.cells[(m, t)], attr) for m in self.method_keys]
                for t in self.task_keys}
        return pd.DataFrame(data, index=pd.Index(self.method_keys, name="method"), dtype=dtype)

    def means(self) -> pd.DataFrame:
        """methods x tasks: mean over seeds (NaN for failed and missing cells)."""
        return self._grid("mean", "float64")

    def stds(self) -> pd.DataFrame:
        return self._grid("std", "float64")

    def counts(self) -> pd.DataFrame:
        return self._grid("n", "int64")

    def statuses(self) -> pd.DataFrame:
        return self._grid("status")

    def ranks(self) -> pd.DataFrame:
        """methods x tasks: competition rank (``<NA>`` where not ranked)."""
        return self._grid("rank").astype("Int64")

    def summary(self) -> pd.DataFrame:
        """methods: avg_rank, n_first, n_second, covered, n_tasks (leaderboard order)."""
        return pd.DataFrame(
            {"avg_rank": [m.avg_rank for m in self.methods],
             "n_first": [m.n_first for m in self.methods],
             "n_second": [m.n_second for m in self.methods],
             "covered": [m.covered for m in self.methods],
             "n_tasks": [m.n_tasks for m in self.methods]},
            index=pd.Index(self.method_keys, name="method"))

    def modal_seeds(self) -> int | None:
        ns = [c.n for c in self.cells.values() if c.status == OK]
        if not ns:
            return None
        counts = Counter(ns)
        return max(counts, key=lambda n: (counts[n], n))

    # -- caption ---------------------------------------------------------------------------
    def caption_lines(self) -> list[str]:
        """The policy, one sentence group per line (shared by every writer)."""
        return _caption_lines(self)

    @property
    def caption(self) -> str:
        return " ".join(self.caption_lines())

    # -- writers (harness.leaderboard.writers, html_page, latex) ---------------------------
    def to_markdown(self, png_name: str | None = None) -> str:
        from harness.leaderboard import writers
        return writers.to_markdown(self, png_name=png_name)

    def to_frame(self) -> pd.DataFrame:
        from harness.leaderboard import writers
        return writers.to_frame(self)

    def to_csv(self, path: str | Path | None = None) -> str:
        text = self.to_frame().to_csv(index=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_html(self, png: str | Path | None = None, embed: bool = True, links=None) -> str:
        """``links``: a :class:`harness.leaderboard.links.BoardLinks` into MLflow, or None."""
        from harness.leaderboard import html_page
        return html_page.to_html(self, png=png, embed=embed, links=links)

    def to_latex(self) -> str:
        from harness.leaderboard import latex
        return latex.to_latex(self)

    def plot_cd(self, path: str | Path) -> Path | None:
        """Draw the critical-difference diagram to ``path``; None when no test was run."""
        sig = self.significance
        if not sig.ran:
            return None
        from harness.leaderboard.plot import draw_cd_diagram
        title = (f"{self.data_source} data: {sig.test.capitalize()} p = "
                 f"{sig.pvalue:.3g}, N = {sig.n_blocks} tasks")
        return draw_cd_diagram(sig.mean_ranks, path, cd=sig.cd if sig.test == "friedman" else None,
                               groups=sig.groups, title=title)
