"""Floors and resolution: what a leaderboard says beyond ranks.

* **Floors** are reference predictors (rows with ``role == "floor"``: ``mean``, ``ridge``,
  ``persistence``; on classification tasks ``majority`` and ``logistic``). They are shown as a block of their own and kept out of the ranks and the
  significance test: they are not competitors, and ranking them would hand every method free
  wins over trivially worse rows and make a Friedman test reject "equal ranks" for the wrong
  reason. A method cell whose mean is worse than the task's baseline floor (``majority`` on a
  classification task, else ``mean``: :func:`baseline_floor`) on the same task (in the metric's
  direction) is flagged ``below_floor``; the summary counts such tasks per method.
* **Resolution.** Per task, a ranked cell is *within the spread* of the task's best when their
  mean ± std intervals (sample std over seeds) overlap, when either has fewer than 2 seeds (no
  spread to tell them apart), or when it ties the best at display precision. A task is
  *resolved* when its best cell is unique and no other ranked cell is within its spread.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from harness.leaderboard.model import Cell, Leaderboard

#: the floor every method must beat
MEAN_FLOOR = "mean"
#: its counterpart on single-label classification tasks (class indices have no mean)
MAJORITY_FLOOR = "majority"
BASELINE_FLOORS = (MAJORITY_FLOOR, MEAN_FLOOR)


def baseline_floor(floor_cells: dict[str, "Cell"]) -> "Cell | None":
    """The floor a task's methods must beat: ``majority`` where it ran, else ``mean``."""
    for name in BASELINE_FLOORS:
        if name in floor_cells:
            return floor_cells[name]
    return None


def _worse(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "min" else a < b


def mark_below_floor(method_cells: Iterable["Cell"], floor_cell: "Cell | None", direction: str) -> None:
    """Set ``below_floor`` on every ok method cell worse than the ok ``mean`` floor cell."""
    if floor_cell is None or floor_cell.status != "ok":
        return
    for c in method_cells:
        c.below_floor = c.status == "ok" and _worse(c.mean, floor_cell.mean, direction)


def within_spread(a: "Cell", b: "Cell") -> bool:
    """Whether two ok cells cannot be told apart by their seeds (module docstring)."""
    if a.display == b.display:
        return True
    if a.n < 2 or b.n < 2 or not (math.isfinite(a.std) and math.isfinite(b.std)):
        return True
    return abs(a.mean - b.mean) <= a.std + b.std


def resolve_task(cells: list["Cell"]) -> bool:
    """Mark ``within_spread`` on the ranked cells of one task; True when the task is resolved."""
    ranked = [c for c in cells if c.rank is not None]
    best = [c for c in ranked if c.rank == 1]
    if not best:
        return False
    head = best[0]
    unresolved = len(best) > 1
    for c in ranked:
        c.within_spread = c is not head and within_spread(c, head)
        unresolved |= c.within_spread
    return not unresolved


def summary_lines(lb: "Leaderboard") -> list[str]:
    """The verdicts a reader needs before the table: floors, resolution, significance."""
    out = []
    n_tasks = len(lb.tasks)
    below = [(m.key, m.n_below_floor) for m in lb.methods if m.n_below_floor]
    present = {f.method for f in lb.floors}
    has_floor = bool(present & set(BASELINE_FLOORS))
    floor_words = ("mean-field or majority-class floor" if MAJORITY_FLOOR in present
                   else "mean-field floor")
    if not has_floor:
        out.append("Floors: no `mean` (or `majority`) floor in these results, so no method was "
                   "checked against it.")
    elif below:
        out.append(f"Below the {floor_words}: " + "; ".join(
            f"{k} on {n} task{'s' if n != 1 else ''}" for k, n in below) + ".")
    else:
        out.append(f"Every method beats the {floor_words} on every task it covers "
                   f"({n_tasks} tasks).")
    n_res = sum(lb.resolved.get(t.key, False) for t in lb.tasks)
    out.append(f"Resolved tasks: {n_res} of {n_tasks} (the best method's mean ± std does not "
               f"overlap any other method's; ≈ marks cells within the best's seed spread).")
    sig = lb.significance
    if sig.ran and math.isfinite(sig.pvalue):
        verdict = ("significant difference" if sig.significant
                   else "no significant difference")
        out.append(f"{sig.test.capitalize()} test over {sig.n_blocks} tasks: p = {sig.pvalue:.3g}: "
                   f"{verdict} between the methods at α = {sig.alpha:g}.")
    else:
        out.append(f"Significance: not tested ({sig.reason}).")
    return out


def bodies_line(backbones: Iterable[str]) -> str:
    """Which bodies the ranked methods ran on, and whether they are pretrained."""
    from recraft.presets import describe_backbone

    names = sorted({b for b in backbones if b})
    return "Bodies: " + (", ".join(describe_backbone(b) for b in names) or "none recorded") + "."


def caption_line(lb: "Leaderboard") -> str:
    names = ", ".join(f.key for f in lb.floors) or "none"
    return ("Floors (reference predictors, not ranked and not in the significance test): "
            f"{names}. mean = the train split's mean target field; ridge = linear least squares on "
            "flattened inputs, penalty chosen on validation; persistence = the input field on the "
            "target grid (same-field tasks only); majority = the train split's most frequent "
            "class; logistic = logistic regression on flattened inputs, C chosen on validation "
            "(classification tasks). Chance level: error rate 1 − 1/K for K classes, 1 − AUROC "
            "0.5. † = the method's mean is worse than the mean (classification: majority) "
            "floor on that task. ≈ = within the seed spread of the task's best (overlapping "
            "mean ± std, or fewer than 2 seeds); a task is resolved when no cell is ≈.")
