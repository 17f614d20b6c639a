"""``python -m harness.report --sweep runs/<name> [--out DIR] [--tracking-uri URI] [--no-mlflow]``.

Builds the sweep's analysis report from its results table and MLflow store (no re-training) and
prints the page's path. Exit 1 with a one-line error when the sweep has no results.
"""
from __future__ import annotations

import argparse
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.report",
                                description="Build a sweep's HTML analysis report.")
    p.add_argument("--sweep", required=True, help="the sweep's folder (runs/<name>)")
    p.add_argument("--out", default=None, help="output folder (default: <sweep>/report/)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default: sqlite <sweep>/../mlflow.db, as the sweep writes)")
    p.add_argument("--no-mlflow", action="store_true",
                   help="do not log the figures as artifacts of the sweep's MLflow run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from harness.report.build import build_report

    t0 = time.perf_counter()
    try:
        rep = build_report(args.sweep, args.out, args.tracking_uri, log_to_mlflow=not args.no_mlflow)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(rep.html)
    print(f"{len(rep.images)} figure(s) in {time.perf_counter() - t0:.1f} s"
          + (f"; logged to MLflow run {rep.logged_to} under report/" if rep.logged_to else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
