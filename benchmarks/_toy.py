"""A toy method plugin for the harness benchmarks (written to a temp folder and discovered like
any file in ``baselines/``).

``toy-bench``: one stage, ``toy.epochs`` epochs; each epoch sleeps ``toy.epoch_seconds`` (a
controllable, load-independent trial length) and reports a validation value with a known
dependence on the hyperparameters:

    val(epoch) = (log10(lr) + 2.5)^2 / 4 + (x - 0.3)^2 + (y - 0.7)^2 + 0.5 / epoch

so the optimum is lr = 10^-2.5, x = 0.3, y = 0.7 (value 0.5 / epochs at the last epoch).
"""
from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import numpy as np

TOY = textwrap.dedent('''
    import math
    import time
    from harness.methods.contract import Method, Stage
    from harness.methods.space import Fixed, Float, LogFloat

    def objective(cfg, epoch):
        return ((math.log10(cfg["toy.lr"]) + 2.5) ** 2 / 4 + (cfg["toy.x"] - 0.3) ** 2
                + (cfg["toy.y"] - 0.7) ** 2 + 0.5 / epoch)

    class ToyBench(Method):
        """Sleeps a fixed time per epoch; a known validation surface."""
        name = "toy-bench"
        version = "1"
        stages = (Stage("fit", ("toy.lr", "toy.x", "toy.y", "toy.epochs", "toy.epoch_seconds")),)
        epochs = 4
        epoch_seconds = 1.0

        def search_space(self, task):
            return {"toy.lr": LogFloat(1e-5, 1e-1), "toy.x": Float(0.0, 1.0),
                    "toy.y": Float(0.0, 1.0), "toy.epochs": Fixed(int(self.epochs)),
                    "toy.epoch_seconds": Fixed(float(self.epoch_seconds))}

        def defaults(self, task):
            return {"toy.lr": 1e-3, "toy.x": 0.5, "toy.y": 0.5, "toy.epochs": int(self.epochs),
                    "toy.epoch_seconds": float(self.epoch_seconds)}

        def stage_fit(self, ctx, config, upstream):
            val = math.nan
            for epoch in range(1, int(config["toy.epochs"]) + 1):
                if config["toy.epoch_seconds"] > 0:
                    time.sleep(config["toy.epoch_seconds"])
                val = objective(config, epoch)
                ctx.report(epoch, {ctx.metric_key: val})
            return {"metrics": {ctx.metric_key: val}}
''')


def toy_method(epochs: int, epoch_seconds: float):
    from harness.methods.discovery import discover

    d = Path(tempfile.mkdtemp(prefix="bench-toy-"))
    (d / "toy_bench.py").write_text(TOY)
    m = discover([d])["toy-bench"].method
    m.epochs, m.epoch_seconds = int(epochs), float(epoch_seconds)
    return m


def toy_data(task: str = "advection"):
    from harness.suites.base import TaskData

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 1, 4)).astype(np.float32)
    return TaskData(task, "v", "synthetic", "/dev/null", {"train": x, "val": x},
                    {"train": 2 * x, "val": 2 * x}, {})


def ray_init(num_cpus: int = 2):
    import os

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"RAY_TRAIN_V2_ENABLED": "0"}})
    return ray


def run_harness(method, task_name: str, data, profile, *, trials: int, concurrency: int,
                tmp: Path, tag: str, tracker=None, max_t: int, grace: int, seed: int = 0,
                cache_dir: str | None = None):
    """``trials`` search trials of ``method`` through ``harness.engine.run_cells`` with
    ``concurrency`` trials at a time: c cells of the same task and method (keys
    ``task/method#i``), each with ``trials / c`` samples, as in a sweep where the engine prefers
    one trial in flight per cell. Returns (seconds, callback)."""
    import time

    from harness.engine import CellPlan, row_meta, run_cells
    from harness.suites import get_suite
    from harness.trial.context import CellSpec

    task = get_suite("pdebench")[task_name]
    cells, plans, meta = {}, [], {}
    per = [trials // concurrency + (1 if i < trials % concurrency else 0) for i in range(concurrency)]
    for i, n in enumerate(per):
        key = f"{task_name}/{method.name}#{i}"
        cell = CellSpec(sweep=tag, suite="pdebench", task=task_name, method=method.name,
                        profile=profile, cache_dir=cache_dir)
        cells[key] = (cell, method)
        plans.append(CellPlan.of(task, method, key=key, num_samples=n, seeds=0, max_t=max_t,
                                 grace_period=grace, search_seed=seed + i))
        meta[key] = row_meta(cell, method, task, data.source, tag)
    sweep_run = tracker.sweep_run(tag) if tracker is not None else None
    t0 = time.perf_counter()
    cb = run_cells(cells, plans, {task_name: data}, name=tag, storage_path=str(tmp / "tune"),
                   results_dir=str(tmp / f"results-{tag}"), meta=meta,
                   max_concurrent=concurrency, tracker=tracker, sweep_run_id=sweep_run)
    return time.perf_counter() - t0, cb
