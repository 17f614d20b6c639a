"""P10: does the nasbench360 quick default fit its budget and beat its floors?

Runs ``python -m harness.sweep --suite nasbench360`` (no other flag but a fresh ``--runs-dir``)
in a subprocess, timing its wall clock (synthetic data generation included), then reads its
results table and prints, per task, the baseline floor (``majority`` on single-label
classification tasks, ``mean`` elsewhere, as the leaderboard's † uses) and every method's test
value (mean of its seeds), and per method the number of tasks where it beats that floor:

1. every method beats the floor on at least 7 of the 10 tasks (issue 15, item 7);
2. the whole run takes at most 900 s on a 2-core CPU.

``--tasks a,b`` runs only those tasks (a check that the script works, not a budget figure: the
result is labelled a subset and its wall-time verdict is left out). ``--results FILE`` re-reads
an earlier run's ``results.parquet`` instead of running the sweep.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load, parser, table, write

BUDGET_S = 900.0
MIN_TASKS_BEATEN = 7
BASELINE_FLOORS = ("majority", "mean")      # harness.leaderboard.floors.baseline_floor's order


def _run_sweep(runs_dir: Path, tasks: str | None) -> tuple[float, int, str]:
    env = dict(os.environ, RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled"))
    cmd = [sys.executable, "-m", "harness.sweep", "--suite", "nasbench360",
           "--runs-dir", str(runs_dir)]
    if tasks:
        cmd += ["--tasks", tasks]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, proc.returncode, proc.stdout[-20000:] + proc.stderr[-5000:]


def _beats(value: float, floor: float, direction: str) -> bool:
    if not (math.isfinite(value) and math.isfinite(floor)):
        return False
    return value < floor if direction == "min" else value > floor


def analyse(df):
    """Per task: the baseline floor and each method's test mean; per method: tasks beaten."""
    test = df[(df.phase == "final") & (df.split == "test") & (df.status == "ok")]
    means = (test.groupby(["task", "method", "role", "direction"], dropna=False)["value"]
             .mean().reset_index())
    methods = sorted(means[means.role != "floor"].method.unique())
    beaten = {m: [] for m in methods}
    missing = {m: [] for m in methods}
    rows, details = [], {}
    for task in dict.fromkeys(test.task):
        sub = means[means.task == task]
        floors = {r.method: float(r.value) for r in sub[sub.role == "floor"].itertuples()}
        name = next((f for f in BASELINE_FLOORS if f in floors), None)
        floor = floors[name] if name else float("nan")
        direction = str(sub.direction.iloc[0])
        values = {r.method: float(r.value) for r in sub[sub.role != "floor"].itertuples()}
        for m in methods:
            if m not in values:
                missing[m].append(task)
            elif _beats(values[m], floor, direction):
                beaten[m].append(task)
        worse = ([m for m in methods if m in values and not _beats(values[m], floor, direction)]
                 if name else ["(no floor row: none counted as beating it)"])
        best = min(values, key=values.get) if direction == "min" else max(values, key=values.get)
        rows.append([task, name or "-", floor, best, values[best], ", ".join(worse) or "-"])
        details[task] = {"floor": name, "floor_value": floor, "direction": direction,
                         "floors": floors, "methods": values}
    return rows, beaten, missing, details


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--results", default=None, help="read this results.parquet instead of running")
    p.add_argument("--tasks", default=None,
                   help="run only these tasks (checks the script; not a budget figure)")
    args = p.parse_args()
    before = load()
    import pandas as pd

    if args.results:
        wall, rc, tail = float("nan"), 0, ""
        df = pd.read_parquet(args.results)
        runs = Path(args.results).parent
    else:
        runs = Path(tempfile.mkdtemp(prefix="p10-runs-"))
        wall, rc, tail = _run_sweep(runs, args.tasks)
        print(tail[-6000:])
        df = pd.read_parquet(runs / "nasbench360-quick" / "results.parquet")
    rows, beaten, missing, details = analyse(df)
    n_tasks = len(rows)
    need = min(MIN_TASKS_BEATEN, n_tasks) if args.tasks else MIN_TASKS_BEATEN
    per_method = [[m, len(t), n_tasks, "yes" if len(t) >= need else "no",
                   ", ".join(sorted(set(details) - set(t) - set(missing[m]))) or "-"]
                  for m, t in beaten.items()]
    all_ok = all(len(t) >= need for t in beaten.values())
    subset = bool(args.tasks)
    figures = {"wall_seconds": wall, "exit_code": rc, "n_tasks": n_tasks,
               "tasks": list(details), "subset": subset,
               "tasks_beating_floor": {m: len(t) for m, t in beaten.items()},
               "every_method_beats_floor_on_7": all_ok,
               "goal_wall_met": None if subset else bool(wall <= BUDGET_S),
               "runs_dir": str(runs)}
    body = [table(["task", "floor", "floor value", "best method", "best", "methods not beating the floor"],
                  rows), "",
            table(["method", "tasks beating the floor", "of", f"≥ {need}", "tasks not beaten"],
                  per_method), "",
            f"- every method beats the majority-class or mean floor on at least {need} tasks: "
            f"**{'yes' if all_ok else 'no'}**"]
    if subset:
        body.append(f"- SUBSET RUN (--tasks {args.tasks}): {wall:.0f} s wall, exit code {rc}; "
                    f"not a budget figure")
    else:
        body.append(f"- wall time of the default run, data generation included: **{wall:.0f} s** "
                    f"(goal: at most {BUDGET_S:.0f} s); exit code {rc}")
    print("\n".join(body))
    notes = [f"subset run: --tasks {args.tasks}"] if subset else []
    write(args, "p10-nb360-quick-budget" + ("-subset" if subset else ""), figures, details,
          "\n".join(body), before, notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
