"""P9: does the default run measure something? The default sweep, as a new user runs it, against
its floors.

Runs ``python -m harness.sweep --suite pdebench`` (no other flag but a fresh ``--runs-dir``) in a
subprocess, timing its wall clock (data generation included), then reads its results table and
prints, per task, the ``mean`` floor, the best method and every method's ratio to the floor:

1. every ranked method beats the ``mean`` floor on every task where the floor is below 0.95;
2. on at least 6 of the 8 tasks the best method is at most half the floor (at most 0.5 where the
   floor is at about 1.0);
3. the whole run takes at most 900 s on a 2-core CPU.

``--results DIR`` re-reads an earlier run's ``results.parquet`` instead of running the sweep.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import load, parser, table, write

BUDGET_S = 900.0


def _run_sweep(runs_dir: Path) -> tuple[float, int, str]:
    env = dict(os.environ, RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness.sweep", "--suite", "pdebench",
                           "--runs-dir", str(runs_dir)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return wall, proc.returncode, proc.stdout[-20000:] + proc.stderr[-5000:]


def analyse(df):
    """Per task: floor, best method, ratios; and the three verdicts."""
    import pandas as pd

    test = df[(df.phase == "final") & (df.split == "test") & (df.status == "ok")]
    means = test.groupby(["task", "method", "role"], dropna=False)["value"].mean().reset_index()
    rows, half_ok, beat_ok, details = [], 0, True, {}
    for task in dict.fromkeys(test.task):
        sub = means[means.task == task]
        floor = float(sub[sub.method == "mean"].value.iloc[0])
        ranked = sub[sub.role != "floor"].sort_values("value")
        best = ranked.iloc[0]
        target = 0.5 if floor >= 0.95 else floor / 2
        halved = bool(best.value <= target)
        half_ok += halved
        worse = ranked[ranked.value >= floor].method.tolist() if floor < 0.95 else []
        beat_ok &= not worse
        ridge = sub[sub.method == "ridge"].value
        rows.append([task, floor, float(ridge.iloc[0]) if len(ridge) else float("nan"),
                     best.method, float(best.value), float(best.value) / floor,
                     float(ranked.value.max()) / floor, "yes" if halved else "no",
                     ", ".join(worse) or "-"])
        details[task] = {"mean_floor": floor, "target": target,
                         "methods": {r.method: float(r.value) for r in sub.itertuples()}}
    return rows, half_ok, beat_ok, details, pd


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--results", default=None, help="read this results.parquet instead of running")
    args = p.parse_args()
    before = load()
    import pandas as pd

    if args.results:
        wall, rc, tail = float("nan"), 0, ""
        df = pd.read_parquet(args.results)
    else:
        runs = Path(tempfile.mkdtemp(prefix="p9-runs-"))
        wall, rc, tail = _run_sweep(runs)
        print(tail[-6000:])
        df = pd.read_parquet(runs / "pdebench-quick" / "results.parquet")
    rows, half_ok, beat_ok, details, _ = analyse(df)
    n_tasks = len(rows)
    header = ["task", "mean floor", "ridge", "best method", "best", "best/floor",
              "worst/floor", "best ≤ half floor", "methods not beating the floor (floor < 0.95)"]
    figures = {"wall_seconds": wall, "exit_code": rc, "tasks_best_at_most_half_floor": half_ok,
               "n_tasks": n_tasks, "every_method_beats_floor_below_0.95": beat_ok,
               "goal_half_floor_met": half_ok >= 6, "goal_wall_met": wall <= BUDGET_S}
    body = [table(header, rows), "",
            f"- every ranked method beats the mean floor where it is below 0.95: "
            f"**{'yes' if beat_ok else 'no'}**",
            f"- tasks whose best method is at most half the mean floor: **{half_ok} of {n_tasks}** "
            f"(goal: at least 6)",
            f"- wall time of the default run, data generation included: **{wall:.0f} s** "
            f"(goal: at most {BUDGET_S:.0f} s); exit code {rc}"]
    print("\n".join(body))
    write(args, "p9-quick-quality", figures, details, "\n".join(body), before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
