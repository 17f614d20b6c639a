"""Shared helpers of the benchmark scripts: arguments, provenance, load, results files.

Every script prints its figures and writes ``benchmarks/results/<date>-<name>[-quick].json`` and
``.md`` with the date, machine, load averages (``uptime``) before and after, ``nproc``, package
versions, git commit and the exact command. The machine these were written on is shared: load
averages are recorded with every measurement and the figures are ratios measured side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a smaller, faster variant (labelled so)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:0)")
    p.add_argument("--out", default=None,
                   help="results folder (default: $OUT if set, else benchmarks/results)")
    return p


def load() -> dict:
    """``uptime`` load averages (1, 5, 15 min) and the raw line."""
    try:
        raw = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        raw = ""
    try:
        la = list(os.getloadavg())
    except OSError:
        la = None
    return {"uptime": raw, "loadavg": la, "at": datetime.now(timezone.utc).isoformat()}


def provenance(device: str = "cpu") -> dict:
    from harness import provenance as pv

    info = {"date": datetime.now(timezone.utc).isoformat(), "host": platform.node(),
            "nproc": os.cpu_count(), "machine": platform.machine(),
            "cpu": _cpu_model(), "mem_gb": _mem_gb(), "hardware": pv.hardware(),
            "device": device, "packages": json.loads(pv.package_versions()),
            "git_commit": pv.git_commit(),
            "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
            "cwd": os.getcwd()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def out_dir(args) -> Path:
    d = Path(args.out or os.environ.get("OUT") or RESULTS)
    d.mkdir(parents=True, exist_ok=True)
    return d


def write(args, name: str, figures: dict, details: dict, md_body: str, load_before: dict,
          notes: list[str] | None = None) -> Path:
    """Write ``<date>-<name>[-quick].json`` and ``.md``; returns the JSON path."""
    load_after = load()
    prov = provenance(getattr(args, "device", "cpu"))
    stem = f"{datetime.now().strftime('%Y-%m-%d')}-{name}{'-quick' if args.quick else ''}"
    d = out_dir(args)
    doc = {"benchmark": name, "quick": bool(args.quick), "figures": figures, "details": details,
           "notes": notes or [], "load_before": load_before, "load_after": load_after,
           "provenance": prov}
    jp = d / f"{stem}.json"
    jp.write_text(json.dumps(doc, indent=1, default=str))
    md = [f"# {name}{' (--quick)' if args.quick else ''}", "",
          f"- date: {prov['date']}", f"- host: {prov['host']} ({prov['cpu']}, nproc {prov['nproc']}, "
          f"{prov['mem_gb']} GB), device {prov['device']}",
          f"- load before: `{load_before['uptime']}`", f"- load after: `{load_after['uptime']}`",
          f"- git: {prov['git_commit']}", f"- packages: `{json.dumps(prov['packages'], sort_keys=True)}`",
          f"- command: `{prov['command']}`", ""]
    if notes:
        md += ["Notes:", *[f"- {n}" for n in notes], ""]
    md += [md_body.rstrip(), ""]
    (d / f"{stem}.md").write_text("\n".join(md))
    print(f"wrote {jp} and {jp.with_suffix('.md')}")
    return jp


def timed(fn, *a, **kw) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return time.perf_counter() - t0, out


def median(xs) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def table(header: list[str], rows: list[list]) -> str:
    def f(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(f(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
