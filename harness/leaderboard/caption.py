"""The caption of a leaderboard: its policy in sentences, shared by every writer."""
from __future__ import annotations

from typing import TYPE_CHECKING

from harness.leaderboard import floors as fl
from harness.leaderboard import stats as st
from harness.leaderboard.common import OK

if TYPE_CHECKING:
    from harness.leaderboard.model import Leaderboard


_SOURCE_WORDS = {"synthetic": "synthetic (generated stand-ins, not {name} data)"}
_SUITE_NAMES = {"pdebench": "PDEBench", "nasbench360": "NAS-Bench-360"}


def _suite_name(lb: Leaderboard) -> str:
    """The suite(s) of the board's tasks, in words."""
    suites = sorted({t.suite for t in lb.tasks if t.suite}) or ["pdebench"]
    return " / ".join(_SUITE_NAMES.get(s, s) for s in suites)


def _source_words(lb: Leaderboard) -> str:
    """The data source in words, naming the suite(s) of the board's tasks."""
    return _SOURCE_WORDS.get(lb.data_source, lb.data_source).format(name=_suite_name(lb))


def caption_lines(lb: Leaderboard) -> list[str]:
    """The policy, one sentence group per line."""
    lines = []
    ds = _source_words(lb)
    if lb.data_source == "real":
        # the file names alone do not make the published files: say what was checked
        name = _suite_name(lb)
        checks = lb.data_checks
        other = sorted(t for t, c in checks.items() if c != "verified")
        ds = (f"real (verified: every file has {name}'s published sample count and md5)"
              if checks and not other else
              f"real (unverified: the files of {', '.join(other) or 'these tasks'} were not "
              f"matched against {name}'s published sample count and md5, see the rows' "
              f"data_check, data_samples and data_md5)")
    others = (f" This results table also has {', '.join(lb.other_sources)} results: they have "
              "their own leaderboard." if lb.other_sources else "")
    lines.append(f"Data source: {ds}. Each data source gets its own leaderboard; real and "
                 f"synthetic results are never ranked together.{others}")

    metric_names = sorted({t.metric.name for t in lb.tasks})
    ns = sorted({c.n for c in lb.cells.values() if c.status == OK})
    modal = lb.modal_seeds()
    if not ns:
        seeds = "no cell has an ok seed"
    elif len(ns) == 1:
        seeds = f"{ns[0]} seed(s) per cell"
    else:
        seeds = (f"{ns[0]}–{ns[-1]} seeds per cell (mostly {modal}; n is shown where it "
                 "differs)")
    partial = sum(1 for c in lb.cells.values() if c.status == OK and c.n_failed)
    if partial:
        seeds += f"; {partial} cell(s) also have seeds that did not finish ok (listed below)"
    lines.append(f"Cells: mean ± sample std (ddof = 1) over seeds of the final test runs "
                 f"(phase = final, split = test, status = ok) of "
                 f"{', '.join(metric_names) or '—'}; "
                 f"std is blank for a single seed; {seeds}.")

    sig_figs = sorted({t.metric.sigfigs for t in lb.tasks})
    sf = "/".join(str(s) for s in sig_figs) or "3"
    dirs = {t.metric.direction for t in lb.tasks}
    if dirs == {"max"}:
        direction = "higher is better"
    elif dirs <= {"min"}:
        direction = "lower is better"
    else:
        direction = "direction per task (↓ lower is better, ↑ higher is better)"
    lines.append(f"Rank (in parentheses, bold = rank 1): competition (\"min\") ranking within each "
                 f"task on the displayed value ({sf} significant digits), {direction}; values "
                 "equal at displayed precision share the best rank (1, 1, 3).")
    lines.append("— = missing (no runs); ✗ = failed (runs exist but none ended ok; status and "
                 "error listed below). Missing and failed cells are shown and left out of that "
                 "task's ranking (never given the worst rank). Avg. Rank = mean of a method's "
                 "ranks over the tasks it covers (Tasks = covered/total); #1 / #2 = number of "
                 "tasks ranked 1 / 2 (after a tie for first, no method is ranked 2).")

    tv = ", ".join(f"{t.key} {t.task_version or 'unversioned'}" for t in lb.tasks) or "none"
    mv = ", ".join(f"{m.key} {m.method_version or 'unversioned'}" for m in lb.methods) or "none"
    lines.append(f"Task versions: {tv}. Method versions: {mv}.")

    lines.append(fl.bodies_line(lb.backbones))
    lines.append(fl.caption_line(lb))

    sig_text = st.describe(lb.significance)
    if lb.excluded_from_test:
        sig_text += (f" Methods without any value ({', '.join(lb.excluded_from_test)}) are not "
                     "compared.")
    lines.append(sig_text)

    if lb.reference:
        provenance = "; ".join(dict.fromkeys(r.provenance for r in lb.reference))
        text = (f"Rows under \"reference ({lb.reference_name}, not run here)\" are published "
                f"numbers ({provenance}). They follow the paper's real-data "
                "protocol, are never ranked and do not count towards Avg. Rank, #1 or #2.")
        if any(r.stated for r in lb.reference):
            text += (" \"(stated)\" marks the paper's own average rank over its tasks, shown "
                     "as published and not recomputed from these cells.")
        if lb.data_source != "real":
            text += f" They are not comparable with these {lb.data_source} runs."
        lines.append(text)
    return lines
