"""What one cell searches, and the content keys that say whether a cell must run again."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.methods.space import Fixed, Param, searched


def config_hash(config: Mapping[str, Any]) -> str:
    """A short stable hash of a configuration (JSON, sorted keys)."""
    blob = json.dumps(dict(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class CellPlan:
    """What one cell searches and how (picklable; part of the experiment checkpoint)."""

    key: str                      # "task/method"
    task: str
    method: str
    metric: str                   # reported key, e.g. "val_nrmse"
    mode: str                     # "min" | "max"
    space: dict[str, Param]
    defaults: dict[str, Any]
    num_samples: int
    seeds: int
    max_t: int
    grace_period: int
    search_seed: int = 0
    #: searched parameters of the method's cached stages, and how many consecutive search trials
    #: keep one configuration of them (see ``Profile.stage_reuse``)
    shared: tuple[str, ...] = ()
    stage_reuse: int = 1
    #: search trials of this cell preferably running at once: 1 lets TPE learn from every
    #: finished trial; the searcher exceeds it only for a slot no other cell can use
    in_flight: int = 1

    @classmethod
    def of(cls, task, method, *, num_samples: int, seeds: int, max_t: int, grace_period: int,
           search_seed: int = 0, stage_reuse: int = 1, key: str | None = None,
           defaults: Mapping[str, Any] | None = None) -> "CellPlan":
        """The plan of ``method`` on ``task``: key, metric, space, defaults and the cached stages'
        shared parameters come from them; budgets and search settings from the caller."""
        space = method.search_space(task)
        if not searched(space):
            num_samples = 1   # nothing to search (e.g. a floor): more trials would repeat one config
        return cls(key=key or f"{task.name}/{method.name}", task=task.name, method=method.name,
                   metric=f"val_{task.metric.name}", mode=task.metric.direction,
                   space=space,
                   defaults=dict(method.defaults(task) if defaults is None else defaults),
                   num_samples=num_samples, seeds=seeds, max_t=max_t, grace_period=grace_period,
                   search_seed=search_seed, shared=method.shared_stage_params(task),
                   stage_reuse=stage_reuse)

    def __post_init__(self):
        # a cell with no search trial would never end its search, and the experiment would wait
        bad = [f"{name} must be >= {low} (got {value})"
               for name, value, low in (("num_samples", self.num_samples, 1),
                                        ("seeds", self.seeds, 0),
                                        ("stage_reuse", self.stage_reuse, 1),
                                        ("in_flight", self.in_flight, 1)) if value < low]
        if bad:
            raise ValueError(f"cell {self.key}: " + "; ".join(bad))

    @property
    def fixed(self) -> dict[str, Any]:
        """The space's fixed (not searched) parameters and their values."""
        return {k: p.value for k, p in self.space.items() if isinstance(p, Fixed)}

    @property
    def test_metric(self) -> str:
        """The key a final run reports its test value under, e.g. ``test_nrmse``."""
        return f"test_{self.metric[len('val_'):]}" if self.metric.startswith("val_") else "test"

    def better(self, value: float, than: float | None) -> bool:
        """Whether ``value`` beats ``than`` in this cell's direction (anything beats None)."""
        return than is None or (value < than if self.mode == "min" else value > than)


def done_marker(results_dir: str | Path, cell_key: str, content: str = "") -> Path:
    """The file whose presence says a cell finished with all its rows written.

    ``content`` is :func:`cell_content_key`: a cell whose task version, method version, search
    space or budgets changed is a different cell and runs again.
    """
    suffix = f"-{content}" if content else ""
    return Path(results_dir) / "cells" / f"{cell_key.replace('/', '__')}{suffix}.json"


def cell_description(task, method, profile, plan: CellPlan) -> dict[str, Any]:
    """Everything that decides a cell's results, in readable form (for diffs on resume)."""
    return {"task_version": task.version, "method_version": method.version,
            "profile": repr(profile),
            "space": {k: p.describe() for k, p in sorted(plan.space.items())},
            "defaults": json.loads(json.dumps(plan.defaults, default=str)),
            "num_samples": plan.num_samples, "seeds": plan.seeds, "max_t": plan.max_t,
            "grace_period": plan.grace_period, "search_seed": plan.search_seed,
            "stage_reuse": plan.stage_reuse if plan.shared else 1}


def cell_content_key(task, method, profile, plan: CellPlan) -> str:
    """A content hash of :func:`cell_description`."""
    return config_hash(cell_description(task, method, profile, plan))
