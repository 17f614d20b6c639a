"""Run one method configuration on one task end to end, in this process, without Ray.

    >>> from recraft.run import run_one
    >>> out = run_one("recraft", "advection", data_root="data/synthetic")   # doctest: +SKIP
    >>> out["metrics"]["val_nrmse"]                                        # doctest: +SKIP

The harness's trials call the same loop (:func:`harness.trial.loop.trial_body`) through Ray.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from harness.methods.contract import Method
from harness.methods.discovery import get_method
from harness.profiles import Profile, get_profile
from harness.suites import get_suite
from harness.trial.context import CellSpec
from harness.trial.data import load_for_phase
from harness.trial.loop import SEED_KEY, run_local


def run_one(method: "str | Method", task: str, data_root: str | Path, *, suite: str = "pdebench",
            profile: str | Profile = "quick", config: Mapping[str, Any] | None = None,
            seed: int = 0, phase: str = "search", cache_dir: str | Path | None = None,
            on_report: Callable[[dict, str | None], None] | None = None,
            test_config: bool = False) -> dict[str, Any]:
    """Run ``method`` on ``task`` with ``config`` (default: its paper defaults) and return its
    stage outputs, including ``metrics`` (validation; test too when ``phase == "final"``) and the
    per-epoch ``history``."""
    prof = get_profile(profile, suite=suite) if isinstance(profile, str) else profile
    t = get_suite(suite)[task]
    m = method if isinstance(method, Method) else get_method(method)
    cfg = dict(config) if config is not None else (m.test_config(t) if test_config else m.defaults(t))
    data = load_for_phase(t, data_root, prof, phase)
    cell = CellSpec(sweep="local", suite=suite, task=task, method=m.name, profile=prof, phase=phase,
                    cache_dir=str(cache_dir) if cache_dir else None)
    cfg[SEED_KEY] = seed
    out = run_local(cell, m, data, cfg, on_report=on_report)
    out["data_source"] = data.source
    return out
