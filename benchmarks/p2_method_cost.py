"""P2, method cost: wall-time ratios RECRAFT/ORCA, RECRAFT/NFT and RECRAFT-ref/RECRAFT.

Each method runs once per task with ``recraft.run.run_one`` (quick profile, paper defaults, seed 0,
synthetic data, a fresh cache folder per run so stage 1 and the source side are computed), after
an untimed warm-up run per task (imports, first calls), on one
1D and one 2D task, in an interleaved order (repeat r runs the methods rotated by r) so load
drifts hit every method alike. Stage seconds come from the outputs' ``stage_seconds``.

    python benchmarks/p2_method_cost.py [--quick] [--device cpu] [--tasks burgers,darcy]
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import _common as C

METHODS = ["recraft", "orca", "nft", "recraft-ref"]


def run_on(method: str, task: str, data_root, prof, cache, device: str) -> dict:
    """``recraft.run.run_one`` on CPU; on another device, the same steps with a LocalSession
    whose ``device`` is that device (the harness's local session always says CPU)."""

    from recraft.run import run_one

    if device == "cpu":
        return run_one(method, task, data_root, profile=prof, seed=0, cache_dir=cache)
    import torch

    from harness.methods.discovery import get_method
    from harness.suites import get_suite
    from harness.trial.context import CellSpec
    from harness.trial.data import load_for_phase
    from harness.trial.loop import SEED_KEY, trial_body
    from harness.trial.session import LocalSession

    class DeviceSession(LocalSession):
        @property
        def device(self):
            return torch.device(device)

    t, m = get_suite("pdebench")[task], get_method(method)
    data = load_for_phase(t, data_root, prof, "search")
    cell = CellSpec(sweep="local", suite="pdebench", task=task, method=m.name, profile=prof,
                    cache_dir=str(cache))
    return trial_body(DeviceSession(None), cell, m, data, dict(m.defaults(t), **{SEED_KEY: 0}))


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--tasks", default="burgers,darcy")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--profile", default="quick")
    args = p.parse_args()
    import torch

    from harness.data.synth import generate
    from harness.profiles import get_profile

    if args.device != "cpu":
        print(f"note: both stages (source side, alignment, fine-tuning) run on {args.device} "
              f"through a LocalSession whose device is {args.device}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    prof = get_profile(args.profile)
    repeats = args.repeats or (1 if args.quick else 3)
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-p2-"))
    data_root = tmp / "data"
    tasks = args.tasks.split(",")
    for t in tasks:
        generate(t, data_root, prof.synthetic_size)
    # warm-up, not measured: the first run in a process pays imports and first-call costs (torch,
    # transformers, timm, POT kernels); without it the first method timed looks slower
    for t in tasks:
        for m in ("nft", "recraft-ref"):
            dt = C.timed(run_on, m, t, data_root, prof.with_overrides(finetune_epochs=1,
                                                                      fa_scale=0.01,
                                                                      fld_scale=0.01,
                                                                      source_head_epochs=1),
                         tmp / f"cache-warm-{t}-{m}", args.device)[0]
            print(f"warm-up {t}/{m}: {dt:.1f} s", flush=True)
    runs, figures, rows = [], {}, []
    for t in tasks:
        wall = {m: [] for m in METHODS}
        stages = {m: [] for m in METHODS}
        for r in range(repeats):
            order = METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]
            for m in order:
                cache = tmp / f"cache-{t}-{m}-{r}"
                t0 = C.time.perf_counter()
                out = run_on(m, t, data_root, prof, cache, args.device)
                dt = C.time.perf_counter() - t0
                wall[m].append(dt)
                stages[m].append(out.get("stage_seconds", {}))
                runs.append({"task": t, "method": m, "repeat": r, "wall_s": dt,
                             "stage_seconds": out.get("stage_seconds"),
                             "metrics": out.get("metrics"), "cache_events": out.get("cache_events"),
                             "load": C.load()["loadavg"]})
                print(f"{t}/{m} r{r}: {dt:.1f} s  stages {out.get('stage_seconds')}  "
                      f"load {C.load()['loadavg']}", flush=True)
        med = {m: C.median(v) for m, v in wall.items()}
        f = {"recraft_over_orca": med["recraft"] / med["orca"],
             "recraft_over_nft": med["recraft"] / med["nft"],
             "recraft_ref_over_recraft": med["recraft-ref"] / med["recraft"],
             "wall_s": med}
        figures[t] = f
        for m in METHODS:
            st = stages[m][0]
            rows.append([t, m, med[m], ", ".join(f"{k} {v:.1f}" for k, v in st.items())])
    figures["goal_recraft_over_orca_le_1.10"] = all(
        figures[t]["recraft_over_orca"] <= 1.10 for t in tasks)
    body = C.table(["task", "method", "wall s (median)", "stage seconds (first run)"], rows)
    body += "\n\n" + C.table(["task", "RECRAFT/ORCA", "RECRAFT/NFT", "RECRAFT-ref/RECRAFT"],
                             [[t, figures[t]["recraft_over_orca"], figures[t]["recraft_over_nft"],
                               figures[t]["recraft_ref_over_recraft"]] for t in tasks])
    C.write(args, "p2-method-cost", figures, {"runs": runs, "profile": repr(prof)}, body, load0,
            notes=[f"profile {prof.name}, {repeats} repeat(s) per method, fresh cache per run, "
                   "synthetic data (size {prof.synthetic_size}), paper defaults, seed 0.".replace(
                       "{prof.synthetic_size}", prof.synthetic_size)])


if __name__ == "__main__":
    main()
