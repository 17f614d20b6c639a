"""P6, search efficiency: Optuna TPE + ASHA against random search at equal compute.

A cheap synthetic objective through the real Tune path: the toy plugin of ``benchmarks/_toy.py``
(no sleep), whose validation value is ``(log10 lr + 2.5)^2/4 + (x-0.3)^2 + (y-0.7)^2 + 0.5/epoch``
(3 searched parameters, known optimum). Both arms run through ``harness.engine.run_cells`` with
one trial at a time and the paper defaults enqueued first:

* ``tpe+asha``: the harness as is (Optuna TPE, ASHA grace 1 epoch, reduction factor 2, max 8);
* ``random``: the same engine with Optuna's ``RandomSampler`` (the benchmark swaps
  ``harness.engine.searcher.make_sampler``) and no early stopping (grace = max_t).

Compute = epochs run. For each searcher seed it finds the compute at which TPE+ASHA first reaches
random search's final best (fraction of random's compute; goal <= 0.5) and TPE+ASHA's best at
half of random's compute.

    python benchmarks/p6_search.py [--quick]
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import _common as C
import _toy


def curve(cb) -> list[tuple[int, float]]:
    """(cumulative epochs, best so far) in trial order (one trial at a time)."""
    recs = sorted((r for r in cb.records.values() if r.phase == "search"), key=lambda r: r.started)
    out, tot, best = [], 0, math.inf
    for r in recs:
        tot += r.epochs
        if math.isfinite(r.best):
            best = min(best, r.best)
        out.append((tot, best))
    return out


def best_at(cur, budget) -> float:
    vals = [b for e, b in cur if e <= budget]
    return min(vals) if vals else math.inf


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    import optuna

    from harness.engine import searcher as engine   # the module CellSearcher takes its sampler from
    from harness.profiles import PROFILES

    n_random = 12 if args.quick else 16
    n_tpe = 24 if args.quick else 32
    max_t = 8
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-p6-"))
    ray = _toy.ray_init(2)
    method = _toy.toy_method(max_t, 0.0)
    data = _toy.toy_data("advection")
    original = engine.make_sampler
    per_seed, rows = {}, []
    for seed in range(args.seeds):
        prof_r = PROFILES["smoke"].with_overrides(grace_period=max_t)
        engine.make_sampler = lambda _cell_seed, s=seed: optuna.samplers.RandomSampler(seed=s)
        try:
            _, cb_r = _toy.run_harness(method, "advection", data, prof_r, trials=n_random,
                                       concurrency=1, tmp=tmp, tag=f"p6-random-{seed}",
                                       max_t=max_t, grace=max_t, seed=seed)
        finally:
            engine.make_sampler = original
        prof_t = PROFILES["smoke"].with_overrides(grace_period=1)
        _, cb_t = _toy.run_harness(method, "advection", data, prof_t, trials=n_tpe, concurrency=1,
                                   tmp=tmp, tag=f"p6-tpe-{seed}", max_t=max_t, grace=1, seed=seed)
        cr, ct = curve(cb_r), curve(cb_t)
        budget = cr[-1][0]
        target = cr[-1][1]
        reach = next((e for e, b in ct if b <= target), None)
        frac = reach / budget if reach is not None else math.inf
        tpe_half = best_at(ct, budget / 2)
        tpe_equal = best_at(ct, budget)
        per_seed[seed] = {"random_curve": cr, "tpe_asha_curve": ct, "random_epochs": budget,
                          "random_best": target, "tpe_epochs_to_reach": reach,
                          "fraction_of_random_compute": frac, "tpe_best_at_half": tpe_half,
                          "tpe_best_at_equal": tpe_equal,
                          "tpe_statuses": [r.status for r in cb_t.records.values()],
                          "load": C.load()["loadavg"]}
        rows.append([seed, budget, target, tpe_equal, tpe_half,
                     reach if reach is not None else "not reached", frac])
        print(f"seed {seed}: random best {target:.4f} in {budget} epochs; TPE+ASHA best at equal "
              f"{tpe_equal:.4f}, at half {tpe_half:.4f}; reaches random's best at {reach} epochs "
              f"({frac:.2f} of random); load {per_seed[seed]['load']}", flush=True)
    ray.shutdown()
    fracs = [per_seed[s]["fraction_of_random_compute"] for s in per_seed]
    figures = {"seeds": args.seeds, "n_random": n_random, "n_tpe_max": n_tpe,
               "fractions": fracs, "median_fraction": C.median(fracs),
               "seeds_at_half_or_less": sum(f <= 0.5 for f in fracs),
               "goal_half_compute_all_seeds": all(f <= 0.5 for f in fracs)}
    body = ("Objective: toy plugin (synthetic, known optimum 0.0625 at 8 epochs), real Tune path.\n\n"
            + C.table(["seed", "random epochs", "random best", "TPE+ASHA best @ equal",
                       "TPE+ASHA best @ half", "TPE+ASHA epochs to reach", "fraction"], rows))
    C.write(args, "p6-search", figures, per_seed, body, load0,
            notes=["Random arm: the engine's Optuna studies given optuna RandomSampler(seed), no ASHA; "
                   "TPE arm: the engine unchanged (TPE seeded per cell, ASHA grace 1, rf 2).",
                   f"TPE arm may run up to {n_tpe} trials; its curve is cut at the compute points "
                   "compared."])


if __name__ == "__main__":
    main()
