"""A sweep's ``plan.json``: its parts (one Tune experiment each), resume and ``--retry-failed``.

A sweep runs in *parts*. If the last part has unfinished cells and its experiment can be
restored, a rerun of the same command resumes it; cells added to a sweep whose parts are all
finished run in a new part; ``--retry-failed`` moves a failed cell's rows aside and runs it again.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from harness.engine.plan import done_marker

PLAN_FILE = "plan.json"


class PlanChanged(ValueError):
    """Rerunning an interrupted sweep with a different plan (space, budgets, versions, cells)."""


def load_plan(plan_file: Path) -> dict[str, Any]:
    """The sweep's ``plan.json``: its parts (one Tune experiment each) and their cells."""
    return json.loads(plan_file.read_text()) if plan_file.exists() else {"parts": []}


def save_plan(plan_file: Path, saved: dict[str, Any]) -> None:
    """Write ``plan.json`` atomically (a crash leaves the old or the new file, never half)."""
    tmp = plan_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, indent=1, default=str))
    tmp.replace(plan_file)


def _unfinished(part: dict[str, Any], results_dir: Path) -> dict[str, Any]:
    return {k: v for k, v in part["cells"].items()
            if not done_marker(results_dir, k, v["content"]).exists()}


def cell_failed(marker: Path, seeds: int) -> bool:
    """Whether a finished cell's marker says some of its runs failed (fewer ok finals than seeds,
    or no configuration could be selected)."""
    summary = json.loads(marker.read_text())
    return summary.get("finals_ok", 0) < seeds or summary.get("best_val") is None


def interrupted_cells(sweep_dir: Path, results_dir: Path) -> dict[str, Any]:
    """Cells of the sweep's last part without a done marker (its run was interrupted)."""
    saved = load_plan(sweep_dir / PLAN_FILE)
    return _unfinished(saved["parts"][-1], results_dir) if saved["parts"] else {}


def refuse_retry_while_interrupted(pending: dict[str, Any]) -> None:
    """``--retry-failed`` needs the last part finished first (its experiment is resumed as is)."""
    if pending:
        raise ValueError(f"--retry-failed: this sweep has {len(pending)} unfinished cell(s) "
                         f"from an interrupted run ({', '.join(sorted(pending)[:3])}...); "
                         f"rerun the same command without --retry-failed to finish them first")


def lost_rows(results_dir: Path, key: str, marker: Path) -> str | None:
    """Why a cell with a done marker has not got all its rows any more (None: it has them).

    A marker says its cell's rows were written; a part deleted or moved away afterwards must not
    leave the cell counted as finished (its rows would silently leave the table). Damaged parts
    are refused before this is asked (:func:`harness.results.damaged_parts`).
    """
    from harness.results import cell_parts, read_part

    try:
        expected = json.loads(marker.read_text()).get("rows")
    except (OSError, ValueError):
        return f"its done marker {marker.name} cannot be read"
    parts = cell_parts(results_dir, key)
    if not parts:
        return f"its rows are missing (no result part for it under {results_dir / 'parts'})"
    n = sum(len(read_part(p)) for p in parts)
    if expected is not None and n < int(expected):
        return f"only {n} of its {expected} rows are left under {results_dir / 'parts'}"
    return None


def attempt_of(results_dir: Path, marker: Path) -> int:
    """The attempt number a cell run again gets (2 for the first rerun of a finished cell)."""
    from harness.results import retired_attempts

    return retired_attempts(results_dir, marker.name) + 2


def retire_failed(sweep_dir: Path, results_dir: Path, retry: list[tuple[str, Path]]) -> dict[str, int]:
    """Move failed cells' rows and markers to ``results/superseded/`` so they run again.

    Refused while the sweep's last part is unfinished (resume it first). Each cell is also taken
    out of the part that ran it in ``plan.json``, so this run starts a new part for it. Returns
    cell -> attempt number (2 for the first retry), which tags its new MLflow runs.
    """
    refuse_retry_while_interrupted(interrupted_cells(sweep_dir, results_dir))
    return retire_cells(sweep_dir, results_dir, retry, "retrying")


def retire_cells(sweep_dir: Path, results_dir: Path, cells: list[tuple[str, Path]],
                 verb: str) -> dict[str, int]:
    """Move cells' rows and markers aside (kept) and take them out of ``plan.json``'s parts;
    returns cell -> attempt number of their next run."""
    from harness.results import retire_cell

    plan_file = sweep_dir / PLAN_FILE
    saved = load_plan(plan_file)
    attempts = {}
    for key, marker in cells:
        attempts[key] = attempt_of(results_dir, marker)
        dest = retire_cell(results_dir, key, marker)
        for part in saved["parts"]:
            part["cells"].pop(key, None)
        print(f"{verb} {key} (attempt {attempts[key]}): its earlier rows and marker moved to {dest}",
              flush=True)
    if saved["parts"]:
        save_plan(plan_file, saved)
    return attempts


def next_part(sweep_dir: Path, storage: str, name: str, todo: Iterable, results_dir: Path
              ) -> tuple[str, str | None, dict[str, Any] | None]:
    """(Tune experiment name, path to restore or None, the new part to record or None), without
    writing anything (see :func:`resume_plan`; :func:`record_part` writes the new part).

    Leaving cells out (narrower ``--tasks``/``--methods``, or ``--drop-cell`` for a cell that
    hung) is allowed: the interrupted part is left as it is, its finished cells keep their rows,
    and the other unfinished cells start again in a new part.
    """
    from ray import tune

    saved = load_plan(sweep_dir / PLAN_FILE)
    current = {c.key: c.saved for c in todo}
    last = saved["parts"][-1] if saved["parts"] else None
    if last is not None:
        unfinished = _unfinished(last, results_dir)
        path = f"{storage.rstrip('/')}/{last['tune_name']}"
        dropped = sorted(set(unfinished) - set(current))
        if unfinished and dropped and not plan_diff({k: v for k, v in unfinished.items()
                                                     if k in current}, current):
            print(f"left out of the interrupted run: {', '.join(dropped)}; its other "
                  f"{len(unfinished) - len(dropped)} unfinished cell(s) start again in a new "
                  f"part (finished cells keep their rows)", flush=True)
        elif unfinished and tune.Tuner.can_restore(path):
            diff = plan_diff(unfinished, current)
            if diff:
                raise PlanChanged(
                    f"sweep {name!r} was interrupted and its unfinished cells were planned "
                    f"differently:\n{diff}\nRerun the original command to finish it, or start a "
                    f"new sweep with --name {name}-2.")
            return last["tune_name"], path, None
    tune_name = name if not saved["parts"] else f"{name}.{len(saved['parts']) + 1}"
    return tune_name, None, ({"tune_name": tune_name, "cells": current} if current else None)


def record_part(sweep_dir: Path, part: dict[str, Any] | None) -> None:
    """Append a new part to ``plan.json`` (nothing for None)."""
    if part is None:
        return
    plan_file = sweep_dir / PLAN_FILE
    saved = load_plan(plan_file)
    saved["parts"].append(part)
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    save_plan(plan_file, saved)


def resume_plan(sweep_dir: Path, storage: str, name: str, todo: Iterable, results_dir: Path
                ) -> tuple[str, str | None]:
    """(Tune experiment name, path to restore or None) for this run of the sweep.

    ``todo``: the cells to run (:class:`~harness.sweep.planning.CellEntry`). If the last part has
    unfinished cells and its experiment can be restored, this run resumes it (searcher state,
    finished trials, MLflow runs), provided every unfinished cell is planned exactly as before;
    otherwise the difference is shown and a new ``--name`` suggested. Cells added to a sweep whose
    parts are all finished run in a new part.
    """
    tune_name, path, part = next_part(sweep_dir, storage, name, todo, results_dir)
    record_part(sweep_dir, part)
    return tune_name, path


def earlier_attempts(sweep_dir: Path, part: str, keys: Iterable[str]) -> dict[str, int]:
    """Cell -> how many parts other than ``part`` list it: each was an interrupted attempt that
    was left (see :func:`resume_plan`), so this run's MLflow runs of the cell are new ones."""
    parts = load_plan(sweep_dir / PLAN_FILE)["parts"]
    counts = {k: sum(1 for p in parts if p["tune_name"] != part and k in p["cells"]) for k in keys}
    return {k: n for k, n in counts.items() if n}


def plan_diff(before: dict, now: dict) -> str:
    """Readable differences between saved and current cell plans."""
    lines = []
    for key in sorted(set(before) | set(now)):
        if key not in now:
            lines.append(f"  {key}: planned before, not now (was it dropped from --tasks/--methods?)")
            continue
        if key not in before:
            lines.append(f"  {key}: new cell")
            continue
        a, b = before[key]["description"], now[key]["description"]
        for field_ in sorted(set(a) | set(b)):
            if a.get(field_) != b.get(field_):
                if isinstance(a.get(field_), dict) and isinstance(b.get(field_), dict):
                    for k in sorted(set(a[field_]) | set(b[field_])):
                        if a[field_].get(k) != b[field_].get(k):
                            lines.append(f"  {key}: {field_}.{k}: {a[field_].get(k)!r} -> "
                                         f"{b[field_].get(k)!r}")
                else:
                    lines.append(f"  {key}: {field_}: {a.get(field_)!r} -> {b.get(field_)!r}")
    return "\n".join(lines)
