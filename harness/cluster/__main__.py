"""``python -m harness.cluster``: the preflight checks on their own."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.cluster.auth import auth_mode_hint, connect_error_message
from harness.cluster.checks import preflight
from harness.cluster.issues import DEFAULT_PROBE_TIMEOUT, format_issues, has_errors
from harness.cluster.probe import _node_label, alive_nodes


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m harness.cluster",
        description="Check that a Ray cluster is ready for a multi-node sweep (shared storage, "
                    "tracking server) without running anything.")
    p.add_argument("--address", default="auto", help="Ray cluster address (default: auto)")
    p.add_argument("--storage", default=None, help="the --storage you will pass to the sweep")
    p.add_argument("--tracking-uri", default=None, help="the --tracking-uri of the sweep")
    p.add_argument("--runs-dir", default=None,
                   help="the --runs-dir of the sweep (its stage cache is checked too)")
    p.add_argument("--data-root", default=None, help="the --data-root of the sweep")
    p.add_argument("--timeout", type=float, default=DEFAULT_PROBE_TIMEOUT)
    args = p.parse_args(argv)
    hint = auth_mode_hint()
    if hint:
        print(f"note: {hint}", file=sys.stderr)
    import ray

    t0 = time.perf_counter()
    try:
        ray.init(address=args.address, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    except Exception as exc:  # noqa: BLE001
        print(connect_error_message(exc, args.address), file=sys.stderr)
        return 2
    try:
        nodes = alive_nodes()
        print(f"{len(nodes)} alive node(s):")
        for n in nodes:
            res = n.get("Resources") or {}
            print(f"  {_node_label(n)}: {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU")
        cache = str(Path(args.runs_dir).resolve()) if args.runs_dir else None
        issues = preflight(args.address, args.storage, args.tracking_uri, cache_dir=cache,
                           data_root=args.data_root, timeout=args.timeout)
    finally:
        ray.shutdown()
    print(format_issues(issues))
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 1 if has_errors(issues) else 0


if __name__ == "__main__":
    sys.exit(main())
