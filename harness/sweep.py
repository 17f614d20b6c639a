"""``python -m harness.sweep --suite pdebench``: the sweep's front door.

The sweep (Ray Tune + Optuna search, seeded final runs, MLflow, leaderboard) is not built yet.
Until it is, this command validates its arguments, says so plainly and exits with status 3, so a
script never mistakes it for a finished sweep.
"""
from __future__ import annotations

import argparse
import sys

NOT_BUILT_EXIT = 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.sweep")
    p.add_argument("--suite", default="pdebench")
    p.add_argument("--tasks", default=None)
    args, _unknown = p.parse_known_args(argv)
    from harness.suites import select_tasks

    try:
        tasks = select_tasks(args.suite, args.tasks)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"harness.sweep: the sweep is NOT BUILT YET (suite {args.suite!r}, "
          f"{len(tasks)} tasks: {', '.join(t.name for t in tasks)}).\n"
          "What works today: python -m harness.data synth|download|check --suite pdebench --root DIR.\n"
          "Nothing was run; exiting with status 3.", file=sys.stderr)
    return NOT_BUILT_EXIT


if __name__ == "__main__":
    sys.exit(main())
