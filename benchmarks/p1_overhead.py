"""P1, harness overhead: sweep wall time / plain-loop wall time for the same trials.

A toy method plugin (``benchmarks/_toy.py``) sleeps ``epoch_seconds`` per epoch, so a trial's
length is controlled and independent of machine load. The same N trials run

* ``plain``: ``harness.trial.loop.run_local`` in a thread pool of ``c`` threads (no Ray, no MLflow);
* ``tune``: ``harness.engine.run_cells`` (Ray Tune + Optuna TPE + per-cell ASHA, ``c`` concurrent
  trials; ASHA's grace period = the trial length so no trial is stopped), no MLflow;
* ``tune+mlflow``: the same with the MLflow tracker (sqlite store in a temp folder) the sweep uses;

at c = 1 and 2, for trials of about 5 s (N = 8) and about 30 s (N = 4). Ray start-up and a
warm-up sweep (first imports, MLflow database creation) are measured once, apart. Each measured
``run_cells`` call is a new Tuner, whose first trial(s) start new trial actors: that
per-experiment cost is included, spread over the N trials (a real sweep is one experiment of
hundreds of trials, so it pays it once). It is also measured alone: an experiment of one
zero-length trial. Figures: ratio harness / plain; fixed cost per trial = (harness - plain) / N
(at c = 2, wall-clock cost per trial with 2 running at once); steady per-trial cost = median of
(Tune's trial wall - nominal length) over the trials after each cell's first.

    python benchmarks/p1_overhead.py [--quick] [--n5 8] [--n30 4]
"""
from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as C
import _toy


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--n5", type=int, default=None, help="trials per 5-s run (default 8; quick 2)")
    p.add_argument("--n30", type=int, default=None, help="trials per 30-s run (default 4; quick 2)")
    args = p.parse_args()
    from harness.profiles import PROFILES
    from harness.trial.context import CellSpec
    from harness.trial.loop import SEED_KEY, run_local
    from harness.suites import get_suite
    from harness.tracking import Tracker, default_tracking_uri

    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    # (label, epochs, seconds per epoch, trials at c=1, trials at c=2)
    n5 = args.n5 or (2 if args.quick else 8)
    n30 = args.n30 or (2 if args.quick else 4)
    if min(n5, n30) < 2:
        raise SystemExit("--n5 and --n30 must be at least 2 (the c = 2 runs need 2 trials)")
    variants = [("5s", 5, 1.0, n5, n5), ("30s", 5, 6.0, n30, n30)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-p1-"))
    t0 = C.time.perf_counter()
    ray = _toy.ray_init(2)
    ray_start = C.time.perf_counter() - t0
    tracker = Tracker(default_tracking_uri(tmp / "mlruns"), "bench-p1")
    data = _toy.toy_data("advection")
    task = get_suite("pdebench")["advection"]
    # warm-up, not measured: the first trials start Ray's worker processes (importing torch,
    # transformers, POT) and the first in-process trial imports the method's modules
    warm_m = _toy.toy_method(1, 0.0)
    warm_p = PROFILES["smoke"].with_overrides(grace_period=1)
    t0 = C.time.perf_counter()
    _toy.run_harness(warm_m, "advection", data, warm_p, trials=2, concurrency=2, tmp=tmp,
                     tag="p1-warmup", tracker=tracker, max_t=1, grace=1)
    warmup_s = C.time.perf_counter() - t0
    run_local(CellSpec(sweep="w", suite="pdebench", task="advection", method=warm_m.name,
                       profile=warm_p), warm_m, data, dict(warm_m.defaults(task), **{SEED_KEY: 0}))
    # the cost of one experiment alone: a Tuner whose single trial does nothing (new actor,
    # searcher, scheduler, experiment checkpoint, teardown)
    empty = []
    for i in range(3):
        empty.append(_toy.run_harness(warm_m, "advection", data, warm_p, trials=1, concurrency=1,
                                      tmp=tmp, tag=f"p1-empty-{i}", max_t=1, grace=1)[0])
    experiment_s = sorted(empty)[1]
    print(f"ray.init {ray_start:.1f} s, warm-up sweep {warmup_s:.1f} s, one-trial experiment "
          f"{experiment_s:.2f} s (median of {[round(e, 2) for e in empty]})", flush=True)
    rows, details, figures = [], {"ray_init_s": ray_start, "warmup_s": warmup_s,
                                  "empty_experiment_s": empty, "runs": []}, \
        {"experiment_start_s": experiment_s}
    for label, epochs, eps, n1, n2 in variants:
        method = _toy.toy_method(epochs, eps)
        prof = PROFILES["smoke"].with_overrides(grace_period=epochs)
        for conc, n in ((1, n1), (2, n2)):
            cell = CellSpec(sweep="plain", suite="pdebench", task="advection", method=method.name,
                            profile=prof)
            cfg = dict(method.defaults(task), **{SEED_KEY: 0})

            def plain():
                with ThreadPoolExecutor(conc) as ex:
                    list(ex.map(lambda _: run_local(cell, method, data, cfg), range(n)))

            res = {}
            res["plain"] = C.timed(plain)[0]
            l_plain = C.load()["loadavg"]
            res["tune"], cb = _toy.run_harness(method, "advection", data, prof, trials=n,
                                               concurrency=conc, tmp=tmp, tag=f"p1-{label}-c{conc}",
                                               max_t=epochs, grace=epochs)
            trial_walls = [r.wall for r in cb.records.values()]
            firsts = {}
            for r in cb.records.values():
                if r.cell not in firsts or r.started < firsts[r.cell].started:
                    firsts[r.cell] = r
            later = [r.wall - epochs * eps for r in cb.records.values()
                     if r is not firsts[r.cell]]
            l_tune = C.load()["loadavg"]
            res["tune+mlflow"], cb2 = _toy.run_harness(
                method, "advection", data, prof, trials=n, concurrency=conc, tmp=tmp,
                tag=f"p1-{label}-c{conc}-mlflow", tracker=tracker, max_t=epochs, grace=epochs)
            l_ml = C.load()["loadavg"]
            statuses = [r.status for r in cb.records.values()] + [r.status for r in cb2.records.values()]
            fig = {"trials": n, "concurrency": conc, "trial_seconds_nominal": epochs * eps,
                   "seconds": res, "ratio_tune": res["tune"] / res["plain"],
                   "ratio_tune_mlflow": res["tune+mlflow"] / res["plain"],
                   "fixed_cost_per_trial_tune_s": (res["tune"] - res["plain"]) / n,
                   "fixed_cost_per_trial_tune_mlflow_s": (res["tune+mlflow"] - res["plain"]) / n,
                   "tune_trial_walls": trial_walls, "statuses": statuses,
                   "steady_cost_per_trial_s": (sorted(later)[len(later) // 2] if later
                                               else None),
                   "load": {"plain": l_plain, "tune": l_tune, "tune+mlflow": l_ml}}
            figures[f"{label}_c{conc}"] = fig
            rows.append([label, conc, n, res["plain"], res["tune"], fig["ratio_tune"],
                         fig["fixed_cost_per_trial_tune_s"], fig["steady_cost_per_trial_s"],
                         res["tune+mlflow"],
                         fig["ratio_tune_mlflow"], fig["fixed_cost_per_trial_tune_mlflow_s"],
                         str(l_ml)])
            print(f"{label} c={conc} n={n}: plain {res['plain']:.1f} s, tune {res['tune']:.1f} s "
                  f"(x{fig['ratio_tune']:.2f}), tune+mlflow {res['tune+mlflow']:.1f} s "
                  f"(x{fig['ratio_tune_mlflow']:.2f}); load {l_ml}", flush=True)
    ray.shutdown()
    g = [figures[k] for k in figures if k.startswith("30s")]
    figures["goal_30s_ratio_le_1.10"] = all(f["ratio_tune_mlflow"] <= 1.10 for f in g)
    figures["goal_fixed_cost_le_2s"] = all(f["fixed_cost_per_trial_tune_mlflow_s"] <= 2.0 for f in g)
    body = (f"Ray start-up {ray_start:.1f} s and a warm-up sweep (2 one-epoch trials, starting "
            f"the trial actors) {warmup_s:.1f} s: once per sweep, not in the figures. One "
            f"experiment alone (a Tuner with one zero-length trial): {experiment_s:.2f} s; every "
            f"measured run below is a new experiment and pays it once.\n\n" + C.table(
        ["trial", "c", "N", "plain s", "tune s", "ratio", "fixed s/trial", "steady s/trial",
         "tune+MLflow s", "ratio", "fixed s/trial", "load (1,5,15)"], rows))
    C.write(args, "p1-overhead", figures, details, body, load0,
            notes=["Toy trials sleep (load-independent); the plain loop runs them in c threads.",
                   "Concurrency c uses c cells of the same task/method, as in a sweep (the "
                   "engine prefers one trial in flight per cell)."])


if __name__ == "__main__":
    main()
