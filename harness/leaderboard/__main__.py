"""``python -m harness.leaderboard --results PATH [--out DIR] [--reference paper]
[--data-source real|synthetic]``: rebuild the leaderboards from stored results.

Prints the Markdown to stdout, writes the files (default ``<results>/leaderboard/``; for a parquet
file, ``leaderboard/`` beside it) and lists them on stderr. Exit 0 on success; a missing or empty
results path, or results without final test rows, give a one-line error and exit 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.leaderboard.reference import REFERENCES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.leaderboard",
        description="Rebuild the cross-task leaderboards (one per data source) from stored "
                    "results.")
    p.add_argument("--results", required=True,
                   help="a results folder (its parts/*.parquet) or a single parquet file")
    p.add_argument("--out", default=None,
                   help="output folder (default: <results>/leaderboard/)")
    p.add_argument("--reference", choices=sorted(REFERENCES), default=None,
                   help="show published numbers as unranked reference rows")
    p.add_argument("--data-source", choices=["real", "synthetic"], default=None,
                   help="only this data source's leaderboard (default: every source present)")
    return p


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results = Path(args.results)
    if not results.exists():
        return _fail(f"no results at {results}: no such file or folder")

    from harness.leaderboard.build import build_leaderboards, data_sources, final_test_rows
    from harness.leaderboard.files import file_suffix, write_leaderboard
    from harness.results import read_results

    try:
        df = read_results(results)
    except Exception as exc:  # unreadable parquet, wrong columns, ...
        msg = " ".join(str(exc).split())
        return _fail(f"cannot read results at {results}: {type(exc).__name__}: {msg}")
    if df.empty:
        return _fail(f"no results in {results}: no rows (expected parquet parts under "
                     f"{results / 'parts'} or a parquet file)")
    final = final_test_rows(df)
    if final.empty:
        return _fail(f"no final test results in {results}: {len(df)} row(s), none with "
                     "phase == 'final' and split == 'test'")
    boards = build_leaderboards(df, data_source=args.data_source,
                                reference=args.reference or False)
    if not boards:
        return _fail(f"no final test results with data_source == {args.data_source!r} in "
                     f"{results}")
    out = Path(args.out) if args.out else (
        results.parent / "leaderboard" if results.is_file() else results / "leaderboard")
    written = write_leaderboard(df, out, reference=args.reference or False,
                                data_source=args.data_source, boards=boards)
    sources = data_sources(df)
    print("\n\n".join(
        written[f"leaderboard{file_suffix(lb.data_source, sources)}.md"].read_text("utf-8")
        for lb in boards))
    print(f"wrote {len(written)} file(s) to {out}: {', '.join(sorted(written))}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
