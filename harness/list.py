"""``python -m harness.list [methods|suites|tasks]``: what this install can run."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _methods(dirs: list[Path] | None) -> list[str]:
    from harness.methods.discovery import discover
    from harness.methods.space import searched, space_size
    from harness.suites import get_suite

    probe = next(iter(get_suite("pdebench").values()))   # spaces may depend on the task
    lines = [f"{'method':<20} {'version':<8} {'stages':<28} {'searched':>8} {'space size':>10}  status"]
    for name, e in sorted(discover(dirs).items()):
        if not e.available:
            first = (e.error or "").strip().splitlines()[0]
            lines.append(f"{name:<20} {'-':<8} {'-':<28} {'-':>8} {'-':>10}  UNAVAILABLE ({e.origin}): {first}")
            continue
        m = e.method
        try:
            space = m.search_space(probe)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, never fatal
            lines.append(f"{name:<20} {m.version:<8} {'-':<28} {'-':>8} {'-':>10}  UNAVAILABLE "
                         f"({e.origin}): search_space() raised {type(exc).__name__}: {exc}")
            continue
        size = space_size(space)
        stages = " -> ".join(s.name for s in m.stages)
        lines.append(f"{name:<20} {m.version:<8} {stages:<28} {len(searched(space)):>8} "
                     f"{'inf' if size == float('inf') else int(size):>10}  ok ({e.origin})"
                     + ("" if getattr(m, "in_default_sweep", True)
                        else "; named only: not in a sweep without --methods"))
    return lines


def _suites() -> list[str]:
    from harness.suites import available_suites

    return [f"{name}: {len(tasks)} tasks ({', '.join(tasks)})"
            for name, tasks in available_suites().items()]


def _tasks(suite: str) -> list[str]:
    from harness.suites import get_suite

    tasks = list(get_suite(suite).values())
    metric = {t.name: t.metric.name + ("↓" if t.metric.direction == "min" else "↑") for t in tasks}
    mw = max(8, *(len(m) for m in metric.values()))
    lines = [f"{'task':<24} {'dim':<4} {'kind':<18} {'version':<13} {'backbone':<8} "
             f"{'metric':<{mw}} file"]
    for t in tasks:
        lines.append(f"{t.name:<24} {t.modality:<4} {t.kind:<18} {t.version:<13} "
                     f"{t.defaults.backbone:<8} {metric[t.name]:<{mw}} {t.file.filename}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.list")
    p.add_argument("what", nargs="?", default="methods", choices=["methods", "suites", "tasks"])
    p.add_argument("--suite", default="pdebench")
    p.add_argument("--baselines-dir", action="append", type=Path, default=None,
                   help="folder of method plugins to scan instead of baselines/ (repeatable)")
    args = p.parse_args(argv)
    if args.what == "methods":
        lines = _methods(args.baselines_dir)
    elif args.what == "suites":
        lines = _suites()
    else:
        lines = _tasks(args.suite)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
