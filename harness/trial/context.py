"""What a trial knows: the cell it belongs to, its data, its seed, and how to report."""
from __future__ import annotations

import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from harness.trial.session import Session, checkpoint_dir

if TYPE_CHECKING:
    from harness.methods.contract import Method
    from harness.profiles import Profile
    from harness.suites.base import Task, TaskData
    from harness.trial.fit import FitResult, FitSettings


class Diverged(Exception):
    """A trial's loss or metric became NaN/inf or exploded; the trial stops with status 'diverged'."""


@dataclass(frozen=True)
class CellSpec:
    """One (task, method) cell of a sweep, plus the budget and places it runs with (picklable)."""

    sweep: str
    suite: str
    task: str
    method: str
    profile: "Profile"
    phase: str = "search"               # "search" (validation) or "final" (test)
    cache_dir: str | None = None        # shared stage cache (source side, stage 1)
    storage_path: str | None = None     # Ray results storage (a shared folder or URI)
    data_root: str | None = None        # where the task's files are (fallback reads after a resume)
    workers: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    explode_factor: float = 1e6         # a loss this many times its first value counts as diverged

    @property
    def key(self) -> str:
        return f"{self.task}/{self.method}"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible trial."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


@dataclass
class TrialContext:
    """Passed to every stage of a method: task, data, budget, seed and reporting."""

    task: "Task"
    data: "TaskData"
    profile: "Profile"
    method: "Method"
    seed: int
    phase: str
    session: Session
    cell: CellSpec | None = None
    history: list[dict] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: the stage running now and when it started (``time.perf_counter``), set by the trial loop
    current_stage: tuple[str, float] | None = None
    cache_events: list[tuple[str, str]] = field(default_factory=list)
    _first_losses: dict[str, float] = field(default_factory=dict)

    @property
    def metric_key(self) -> str:
        """The name reported each epoch and used for selection, e.g. ``val_nrmse``."""
        return f"val_{self.task.metric.name}"

    @property
    def device(self):
        return self.session.device

    @property
    def cache_dir(self) -> Path | None:
        return Path(self.cell.cache_dir) if self.cell and self.cell.cache_dir else None

    def check_finite(self, name: str, value: float) -> None:
        """Raise :class:`Diverged` when a loss is NaN/inf or has exploded."""
        if value is None or not math.isfinite(value):
            raise Diverged(f"{name} became {value} (non-finite)")
        if not name.endswith("loss"):
            return
        factor = self.cell.explode_factor if self.cell else 1e6
        first = self._first_losses.get(name)
        if first is None:
            if value != 0:          # a zero first value is no scale to compare against
                self._first_losses[name] = abs(value)
        elif abs(value) > factor * first:
            raise Diverged(f"{name} exploded to {value:.3g} (first value {first:.3g})")

    def stage_clock(self) -> dict[str, float]:
        """``seconds.<stage>``: wall seconds of each finished stage and of the running one so far
        (a stage-1 cache hit counts its load time), reported with every epoch so that the cost
        of each stage per method reaches the tracker (the report's wall-time figure)."""
        out = {f"seconds.{k}": float(v) for k, v in self.stage_seconds.items()}
        if self.current_stage is not None:
            name, t0 = self.current_stage
            out[f"seconds.{name}"] = time.perf_counter() - t0
        return out

    def report(self, epoch: int, metrics: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        """Report one epoch's metrics (and optionally a checkpoint of ``state``) to the runtime."""
        row = {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in metrics.items()}
        row["epoch"] = int(epoch)
        row.setdefault("node_id", self.session.node_id)
        row.update(self.stage_clock())
        self.history.append(dict(row))
        ckpt = None
        if state is not None and self.session.world_rank == 0:
            import torch

            ckpt = checkpoint_dir()
            torch.save(dict(state), os.path.join(ckpt, "state.pt"))
        try:
            self.session.report(row, ckpt)
        finally:
            if ckpt is not None and os.path.isdir(ckpt):
                shutil.rmtree(ckpt, ignore_errors=True)   # the runtime has copied it by now

    def fit(self, model: Any, config: Mapping[str, Any], *, params: Iterable[Any] | None = None,
            loss: Callable[..., Any] | None = None, settings: "FitSettings | None" = None,
            extra_metrics: Mapping[str, float] | None = None) -> "FitResult":
        """Train ``model`` the way every method's last stage does (:mod:`harness.trial.fit`) and
        return its :class:`~harness.trial.fit.FitResult`; a stage ends with
        ``return ctx.fit(model, config).stage_output()``.

        The harness owns the loop: the optimizer and schedule of
        :func:`~harness.trial.fit.fit_settings` (or ``settings``), resume from this trial's
        checkpoint, DDP wrapping and sharding, finite checks, one :meth:`report` per epoch,
        selection on validation and, in the final phase, the one test read. ``params`` are the
        parameters or parameter groups to optimise (default: the model's); parameters with
        ``requires_grad`` off are never trained. ``loss(pred, target, **extras)`` defaults to the
        task's training loss; ``extra_metrics`` go into every epoch's report.
        """
        import torch

        from harness.scoring.losses import training_loss
        from harness.trial.fit import fit, fit_settings

        resume = None
        ckpt = self.session.get_checkpoint()
        if ckpt is not None and (Path(ckpt) / "state.pt").exists():
            resume = torch.load(Path(ckpt) / "state.pt", weights_only=False)
        splits = {s: self.data.split(s) for s in self.data.x}
        return fit(model, splits, settings or fit_settings(self, config), self.seed, self.device,
                   self.report, train_indices=self.session.shard, wrap=self.session.prepare_model,
                   evaluate_test=self.phase == "final", extra_metrics=extra_metrics,
                   resume=resume, check=self.check_finite,
                   loss_fn=loss if loss is not None else training_loss(self.task),
                   aux={s: self.data.aux.get(s, {}) for s in splits}, params=params)
