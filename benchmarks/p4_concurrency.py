"""P4, concurrency scaling: trials per hour with 2 concurrent trials against 1, on this machine.

A warm-up sweep first runs (not measured; it warms the driver, but each ``run_cells`` call is a
new Tuner whose trial actors start anew, so each measured run's first trials include actor
start-up). Then the same number of real trials (a method on synthetic data, quick profile, 1 CPU per trial as the
sweep's default) run through ``harness.engine.run_cells`` at ``max_concurrent`` 1 and 2 (2 cells
of the same task and method, as in a sweep, where the engine prefers one trial in flight per
cell). ASHA's grace
period is the trial length, so no trial is stopped and both runs do equal work. The two runs
alternate (c=1, c=2, and with more repeats c=2, c=1) to share load drifts.

    python benchmarks/p4_concurrency.py [--quick] [--method nft] [--task burgers] [--trials 4]
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import _common as C
import _toy


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--method", default="nft")
    p.add_argument("--task", default="burgers")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--profile", default="quick")
    p.add_argument("--epochs", type=int, default=None,
                   help="fine-tuning epochs per trial (default 40, 12 with --quick): long enough "
                        "that a trial's compute, not its fixed cost, dominates")
    args = p.parse_args()
    from harness.data.synth import generate
    from harness.methods.discovery import get_method
    from harness.profiles import get_profile
    from harness.suites import get_suite
    from harness.trial.data import load_for_phase

    epochs = args.epochs or (12 if args.quick else 40)
    prof = get_profile(args.profile).with_overrides(finetune_epochs=epochs)
    n = args.trials or (4 if args.quick else 6)
    task = get_suite("pdebench")[args.task]
    method = get_method(args.method)
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-p4-"))
    generate(args.task, tmp / "data", prof.synthetic_size)
    data = load_for_phase(task, tmp / "data", prof, "search")
    ray = _toy.ray_init(2)
    max_t = prof.epochs(task.defaults.epochs)
    # warm-up, not measured: starts both trial actors (imports torch, transformers, POT)
    t0 = C.time.perf_counter()
    _toy.run_harness(method, args.task, data, prof.with_overrides(finetune_epochs=1), trials=2,
                     concurrency=2, tmp=tmp, tag="p4-warmup", max_t=1, grace=1)
    warmup_s = C.time.perf_counter() - t0
    print(f"warm-up {warmup_s:.1f} s", flush=True)
    res, walls, loads = {}, {}, {}
    for conc in (1, 2):
        dt, cb = _toy.run_harness(method, args.task, data, prof, trials=n, concurrency=conc,
                                  tmp=tmp, tag=f"p4-c{conc}", max_t=max_t, grace=max_t,
                                  cache_dir=str(tmp / f"cache-c{conc}"))
        res[conc] = dt
        walls[conc] = [(r.wall, r.status, r.error) for r in cb.records.values()]
        loads[conc] = C.load()["loadavg"]
        print(f"c={conc}: {n} trials in {dt:.1f} s = {n / dt * 3600:.0f} trials/h; load "
              f"{loads[conc]}; trials {[(round(w, 1), s) for w, s, _ in walls[conc]]}", flush=True)
    ray.shutdown()
    tph = {c: n / res[c] * 3600 for c in res}
    figures = {"trials": n, "seconds": res, "trials_per_hour": tph, "scaling_x": tph[2] / tph[1],
               "goal_ge_1.8x": tph[2] / tph[1] >= 1.8}
    body = C.table(["concurrency", "trials", "wall s", "trials/h", "load (1,5,15) after"],
                   [[c, n, res[c], tph[c], str(loads[c])] for c in res])
    body += f"\n\nScaling 2 vs 1: x{figures['scaling_x']:.2f}"
    C.write(args, "p4-concurrency", figures, {"trial_walls": walls, "loads": loads,
                                               "warmup_s": warmup_s}, body, load0,
            notes=[f"method {method.name}, task {args.task}, profile {prof.name}, {max_t} epochs, "
                   "1 CPU per trial, fresh stage cache per concurrency level.",
                   "The machine is shared: other users' load takes cores, which caps scaling."])


if __name__ == "__main__":
    main()
