"""Cross-task significance, as Demšar (2006) prescribes: Friedman + Nemenyi critical difference.

The test runs on *complete blocks* only: the tasks where every compared method has a value.
Ranks inside the test are average (fractional) ranks, which is what the Friedman statistic and
the Nemenyi critical difference assume; the leaderboard's own per-task ranks (competition "min"
ranks) are a presentation rule and are not used here.

With two methods there is no Friedman test (scipy needs three samples); a Wilcoxon signed-rank
test on the paired per-task values is used instead and the report says so. Fewer than
:data:`MIN_BLOCKS` complete blocks: no test at all, and :attr:`Significance.reason` says why.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: Fewest complete blocks (tasks) before any cross-task test is run.
MIN_BLOCKS = 5

#: Default significance level.
ALPHA = 0.05

#: Nemenyi's q_alpha at alpha = 0.05 for k = 2..10 compared methods:
#: ``scipy.stats.studentized_range.ppf(0.95, k, inf) / sqrt(2)``, computed with scipy 1.17
#: and rounded to 6 decimals (Demšar 2006, Table 5(a), gives the same values to 3 decimals:
#: 1.960 2.343 2.569 2.728 2.850 2.949 3.031 3.102 3.164). tests/test_leaderboard_stats.py
#: recomputes them.
Q_ALPHA_005: dict[int, float] = {
    2: 1.959964,
    3: 2.343701,
    4: 2.569032,
    5: 2.727774,
    6: 2.849705,
    7: 2.948320,
    8: 3.030878,
    9: 3.101730,
    10: 3.163684,
}


def q_alpha(k: int, alpha: float = ALPHA) -> float:
    """Nemenyi's q_alpha for ``k`` methods (the table for alpha = 0.05, k <= 10; else scipy)."""
    if k < 2:
        raise ValueError(f"q_alpha needs at least 2 methods, got k={k}")
    if math.isclose(alpha, 0.05) and k in Q_ALPHA_005:
        return Q_ALPHA_005[k]
    return float(stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def critical_difference(k: int, n_blocks: int, alpha: float = ALPHA) -> float:
    """Nemenyi CD = q_alpha * sqrt(k (k + 1) / (6 N)) for ``k`` methods over ``N`` blocks."""
    if n_blocks < 1:
        raise ValueError(f"critical difference needs at least one block, got N={n_blocks}")
    return q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_blocks))


def average_ranks(matrix: np.ndarray) -> np.ndarray:
    """Mean over rows of the fractional ranks within each row (lower value = better = rank 1)."""
    matrix = np.asarray(matrix, dtype=float)
    return stats.rankdata(matrix, method="average", axis=1).mean(axis=0)


def nemenyi_groups(mean_ranks: Mapping[str, float], cd: float) -> list[tuple[str, ...]]:
    """Maximal runs of methods (in rank order) whose average ranks differ by less than ``cd``.

    Each group is a tuple of method names ordered best first; single methods are not groups.
    A group that lies inside an earlier one is dropped, so each bar on the diagram is maximal.
    """
    order = sorted(mean_ranks, key=lambda m: (mean_ranks[m], m))
    values = [mean_ranks[m] for m in order]
    groups: list[tuple[str, ...]] = []
    last_end = -1
    for i, r in enumerate(values):
        j = i
        while j + 1 < len(values) and values[j + 1] - r < cd:
            j += 1
        if j > i and j > last_end:
            groups.append(tuple(order[i:j + 1]))
            last_end = j
    return groups


@dataclass
class Significance:
    """What the cross-task test did (or why it did not run), with every number it used."""

    test: str | None                     # "friedman", "wilcoxon" or None (not run)
    reason: str                          # one sentence: what ran, or why nothing did
    alpha: float = ALPHA
    methods: list[str] = field(default_factory=list)       # compared methods (columns)
    blocks: list[str] = field(default_factory=list)        # complete tasks used (rows)
    n_tasks: int = 0                                       # tasks in the leaderboard
    matrix: pd.DataFrame | None = None   # blocks x methods, oriented so lower is better
    statistic: float = float("nan")
    pvalue: float = float("nan")
    mean_ranks: dict[str, float] = field(default_factory=dict)  # fractional, over the blocks
    q: float = float("nan")
    cd: float = float("nan")
    groups: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.test is not None

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)

    @property
    def significant(self) -> bool:
        return bool(self.ran and np.isfinite(self.pvalue) and self.pvalue < self.alpha)


def significance_test(values: pd.DataFrame, alpha: float = ALPHA,
                      min_blocks: int = MIN_BLOCKS) -> Significance:
    """Friedman (k >= 3) or Wilcoxon (k = 2) on the complete rows of ``values``.

    ``values`` is tasks x methods, already oriented so that lower is better (negate "max"
    metrics), with NaN where a method has no value. Rows with any NaN are not used.
    """
    methods = [str(c) for c in values.columns]
    k = len(methods)
    n_tasks = len(values.index)
    complete = values.dropna(axis=0, how="any")
    blocks = [str(i) for i in complete.index]
    base = dict(alpha=alpha, methods=methods, blocks=blocks, n_tasks=n_tasks)
    if k < 2:
        return Significance(None, f"No significance test: {k} method(s) ranked; a comparison "
                                  "needs at least 2.", **base)
    if len(blocks) < min_blocks:
        return Significance(
            None, f"No significance test: only {len(blocks)} of {n_tasks} task(s) have a value "
                  f"for all {k} methods (complete blocks); the test needs at least {min_blocks}.",
            **base)

    matrix = complete.astype(float)
    arr = matrix.to_numpy()
    ranks = average_ranks(arr)
    mean_ranks = {m: float(r) for m, r in zip(methods, ranks)}
    q = q_alpha(k, alpha)
    cd = critical_difference(k, len(blocks), alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if k == 2:
                res = stats.wilcoxon(arr[:, 0], arr[:, 1])
                test = "wilcoxon"
            else:
                res = stats.friedmanchisquare(*arr.T)
                test = "friedman"
            statistic, pvalue = float(res.statistic), float(res.pvalue)
        except ValueError:  # e.g. every paired difference is zero
            test = "wilcoxon" if k == 2 else "friedman"
            statistic, pvalue = float("nan"), float("nan")
    if not np.isfinite(statistic) and np.all(arr == arr[:, :1]):
        statistic, pvalue = 0.0, 1.0  # every block entirely tied: no evidence of a difference

    if test == "wilcoxon":
        # two methods: they are one group unless the signed-rank test separates them
        sig = np.isfinite(pvalue) and pvalue < alpha
        groups = [] if sig else [tuple(sorted(methods, key=lambda m: (mean_ranks[m], m)))]
        reason = (f"2 methods, so a Wilcoxon signed-rank test (not Friedman, which needs >= 3) "
                  f"on the {len(blocks)} of {n_tasks} tasks where both have a value")
    else:
        groups = nemenyi_groups(mean_ranks, cd)
        reason = (f"Friedman test on the {len(blocks)} of {n_tasks} tasks where all {k} methods "
                  "have a value (complete blocks), average (fractional) ranks, then Nemenyi")
    return Significance(test, reason, matrix=matrix, statistic=statistic, pvalue=pvalue,
                        mean_ranks=mean_ranks, q=q, cd=cd, groups=groups, **base)


def describe(sig: Significance, digits: int = 3) -> str:
    """One paragraph for the caption."""
    if not sig.ran:
        return sig.reason
    p = "nan" if not np.isfinite(sig.pvalue) else f"{sig.pvalue:.{digits}g}"
    verdict = ("significant" if sig.significant else "not significant") + f" at α = {sig.alpha:g}"
    ranks = ", ".join(f"{m} {sig.mean_ranks[m]:.2f}"
                      for m in sorted(sig.mean_ranks, key=lambda m: (sig.mean_ranks[m], m)))
    if sig.test == "wilcoxon":
        return (f"Significance: {sig.reason}: W = {sig.statistic:.{digits}g}, p = {p} "
                f"({verdict}). Average ranks on those tasks: {ranks}.")
    text = (f"Significance: {sig.reason}: χ²_F = {sig.statistic:.{digits}g}, p = {p} "
            f"({verdict}). Average ranks on those tasks: {ranks}. Nemenyi critical difference "
            f"CD = {sig.cd:.3f} (q_{sig.alpha:g} = {sig.q:.3f}, k = {len(sig.methods)}, "
            f"N = {sig.n_blocks}); methods whose average ranks differ by less than CD are joined.")
    if not sig.significant:
        text += " The Friedman test did not reject equal ranks, so the grouping is indicative only."
    return text


def groups_text(groups: Sequence[tuple[str, ...]]) -> str:
    return "; ".join("{" + ", ".join(g) + "}" for g in groups) or "none"
