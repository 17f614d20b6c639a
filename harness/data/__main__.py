"""``python -m harness.data {synth,download,check} --suite {pdebench,nasbench360} --root DIR``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.data.errors import DataError
from harness.suites import select_tasks


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.data",
                                description="Prepare and check the data of a suite.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--suite", default="pdebench")
        sp.add_argument("--root", required=True, type=Path, help="data root folder")
        sp.add_argument("--tasks", default=None, help="comma-separated task names (default: all)")

    s = sub.add_parser("synth", help="generate synthetic files in the suite's upstream formats")
    common(s)
    s.add_argument("--size", default="small", help="size preset: tiny, small (default), medium, large")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")

    d = sub.add_parser("download", help="download the published files (md5-verified, resumable)")
    common(d)
    d.add_argument("--allow-md5-mismatch", action="store_true",
                   help="keep a file whose md5 differs (e.g. an older data version)")
    d.add_argument("--base-url", default=None, help="a mirror serving the files by name")

    c = sub.add_parser("check", help="check files against the schema the readers expect")
    common(c)
    c.add_argument("--verify", action="store_true",
                   help="nasbench360: also compare downloads with published or pinned md5s")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        tasks = select_tasks(args.suite, args.tasks)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = [t.name for t in tasks]
    try:
        if args.command == "synth":
            from harness.data import synth

            t0 = time.perf_counter()
            paths = synth.generate_suite(args.root, size=args.size, seed=args.seed, tasks=names,
                                         overwrite=args.overwrite)
            for name, path in paths.items():
                print(f"{name}: {path}")
            print(f"generated {len(paths)} synthetic file(s) in {time.perf_counter() - t0:.1f} s "
                  f"(size={args.size}, seed={args.seed}); check them with: "
                  f"python -m harness.data check --suite {args.suite} --root {args.root}")
            return 0
        if args.command == "download":
            if args.suite == "nasbench360":
                from harness.data.nb360 import download
            else:
                from harness.data import download

            paths = download.download_tasks(args.root, names, base_url=args.base_url,
                                            allow_md5_mismatch=args.allow_md5_mismatch)
            for name, path in paths.items():
                print(f"{name}: {path}")
            return 0
        from harness.data.check import check_task, format_report

        reports = [check_task(t, args.root, verify=args.verify) for t in tasks]
        for rep in reports:
            print(format_report(rep))
        bad = [r.task for r in reports if not r.ok]
        print(f"{len(reports) - len(bad)}/{len(reports)} task(s) OK"
              + (f"; failing: {', '.join(bad)}" if bad else ""))
        return 1 if bad else 0
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
