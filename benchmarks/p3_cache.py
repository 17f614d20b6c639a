"""P3, stage-cache saving: a 16-trial RECRAFT search's compute with the stage cache against the
same trials without it.

The configurations come from the engine's real ``CellSearcher`` (Optuna TPE, paper defaults
first, stage-1 groups of ``--stage-reuse`` trials: a group's first trial draws every parameter,
the others keep its ``align.*`` values and draw only ``finetune.*``). Each trial runs in this
process with ``harness.trial.loop.run_local``, once with a shared cache folder in the ``CellSpec``
(stage 1 and the source side reused by content key) and once with ``cache_dir=None``, after one
untimed warm-up trial (first-call costs); the
cached pass's validation value is fed back to the searcher. Both passes run the same trials to
full length (no ASHA), so the difference is only the cache. Figures: total trial seconds without
/ with the cache, stage-1 hits and misses, and the source side's cache entries.

    python benchmarks/p3_cache.py [--quick] [--trials 16] [--stage-reuse 4] [--profile quick]

``--quick``: the smoke profile and 8 trials.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import _common as C


def main() -> None:
    p = C.parser(__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=None, help="default 16 (8 with --quick)")
    p.add_argument("--task", default="burgers")
    p.add_argument("--method", default="recraft")
    p.add_argument("--profile", default=None, help="default: quick (smoke with --quick)")
    p.add_argument("--stage-reuse", type=int, default=4,
                   help="search trials per stage-1 configuration (default 4, the paper profile's)")
    args = p.parse_args()
    from harness.data.synth import generate
    from harness.engine import CellPlan, CellSearcher, method_config
    from harness.methods.discovery import get_method
    from harness.profiles import get_profile
    from harness.suites import get_suite
    from harness.trial.context import CellSpec
    from harness.trial.data import load_for_phase
    from harness.trial.loop import SEED_KEY, run_local

    prof = get_profile(args.profile or ("smoke" if args.quick else "quick"))
    args.trials = args.trials or (8 if args.quick else 16)
    task = get_suite("pdebench")[args.task]
    method = get_method(args.method)
    load0 = C.load()
    print("load:", load0["uptime"], flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-p3-"))
    generate(args.task, tmp / "data", prof.synthetic_size)
    data = load_for_phase(task, tmp / "data", prof, "search")
    plan = CellPlan.of(task, method, num_samples=args.trials, seeds=0,
                       max_t=prof.epochs(task.defaults.epochs), grace_period=prof.grace_period,
                       stage_reuse=args.stage_reuse)
    metric = plan.metric
    searcher = CellSearcher([plan])
    configs = []
    cache = tmp / "cache"
    # warm-up, not measured: the first trial in a process pays first-call costs (imports, model
    # construction, kernels) that have nothing to do with the cache and would land on whichever
    # pass runs first
    warm = CellSpec(sweep="p3-warm", suite="pdebench", task=args.task, method=method.name,
                    profile=prof, cache_dir=str(tmp / "cache-warm"))
    dt = C.timed(run_local, warm, method, data, dict(method.defaults(task), **{SEED_KEY: 0}))[0]
    print(f"warm-up trial {dt:.1f} s", flush=True)
    passes = {"cache": str(cache), "no_cache": None}
    secs = {k: [] for k in passes}
    stage_s = {k: [] for k in passes}
    events, loads = [], []
    # interleave: trial i with cache, then trial i without, so load drifts hit both alike
    for i in range(args.trials):
        cfg = method_config(searcher.suggest(f"t{i}"))
        configs.append(cfg)
        order = list(passes) if i % 2 == 0 else list(passes)[::-1]
        for name in order:
            cell = CellSpec(sweep="p3", suite="pdebench", task=args.task, method=method.name,
                            profile=prof, cache_dir=passes[name])
            dt, out = C.timed(run_local, cell, method, data, dict(cfg, **{SEED_KEY: 0}))
            secs[name].append(dt)
            stage_s[name].append(out.get("stage_seconds", {}))
            if name == "cache":
                events.append(out.get("cache_events"))
                value = out.get("metrics", {}).get(metric, float("nan"))
        searcher.on_trial_result(f"t{i}", {metric: value})
        searcher.on_trial_complete(f"t{i}", {metric: value})
        loads.append(C.load()["loadavg"])
        print(f"trial {i}: cache {secs['cache'][-1]:.1f} s {events[-1]}, no cache "
              f"{secs['no_cache'][-1]:.1f} s; eps {cfg.get('align.epsilon')}; load {loads[-1]}",
              flush=True)
    hits = sum(1 for e in events for s, h in (e or []) if s == "stage1" and h == "hit")
    misses = sum(1 for e in events for s, h in (e or []) if s == "stage1" and h == "miss")
    src_entries = len(list((cache / "source").rglob("*.json"))) if (cache / "source").exists() else 0
    tot = {k: sum(v) for k, v in secs.items()}
    eps_distinct = len({c.get("align.epsilon") for c in configs})
    groups = len({tuple(c.get(k) for k in plan.shared) for c in configs})
    figures = {"trials": len(configs), "stage_reuse": args.stage_reuse,
               "distinct_stage1_configs": groups, "total_s": tot,
               "saving_x": tot["no_cache"] / tot["cache"],
               "stage1_hits": hits, "stage1_misses": misses,
               "source_cache_entries": src_entries, "distinct_epsilons": eps_distinct,
               "align_s": {k: sum(s.get("align", 0.0) for s in v) for k, v in stage_s.items()},
               "finetune_s": {k: sum(s.get("finetune", 0.0) for s in v) for k, v in stage_s.items()},
               "goal_ge_2x": tot["no_cache"] / tot["cache"] >= 2.0}
    rows = [[i, c.get("align.epsilon"), c.get("align.fa_steps"), c.get("align.fld_epochs"),
             f"{c.get('align.lr', 0):.2e}", f"{c.get('finetune.lr', 0):.2e}", secs["cache"][i], secs["no_cache"][i], str(events[i])] for i, c in enumerate(configs)]
    body = (f"Total: no cache {tot['no_cache']:.1f} s, cache {tot['cache']:.1f} s, saving "
            f"x{figures['saving_x']:.2f}; stage-1 hits {hits}/{len(configs)} ({groups} distinct stage-1 "
            f"configurations, --stage-reuse {args.stage_reuse}); source-side entries "
            f"built {src_entries} for {eps_distinct} distinct epsilons.\n\n" + C.table(
                ["trial", "eps", "fa_steps", "fld_epochs", "align lr", "finetune lr", "cache s",
                 "no cache s", "events"], rows))
    name = "p3-cache" if args.stage_reuse == 4 else f"p3-cache-reuse{args.stage_reuse}"
    C.write(args, name, figures, {"configs": configs, "seconds": secs, "stage_seconds": stage_s,
                                         "cache_events": events, "loads": loads}, body, load0,
            notes=[f"profile {prof.name}, task {args.task}, method {method.name}, stage reuse "
                   f"{args.stage_reuse}; configurations from the engine's CellSearcher (TPE); "
                   "trials run sequentially in-process (run_local), full length, interleaved "
                   "with/without."])


if __name__ == "__main__":
    main()
