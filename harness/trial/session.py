"""The per-worker contract a training loop is written against, and its three runtimes.

A loop calls ``session.report(metrics, checkpoint_dir)`` once per epoch, reads
``session.get_checkpoint()`` to resume, asks ``session.prepare_model(model)`` to wrap a model for
data parallelism and ``session.shard(n)`` for its share of the training indices. This mirrors Ray
Train's per-worker API (``ray.train.report`` / ``get_checkpoint`` / ``prepare_model`` /
``get_context``), so the same loop runs:

* :class:`LocalSession` — in-process, no Ray (the plain entry point and unit tests);
* :class:`TuneSession` — a single-worker Ray Tune function trainable (the light path);
* :class:`TrainSession` — inside a Ray Train ``TorchTrainer`` worker (data-parallel trials).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


class Session:
    """Base runtime: single process, rank 0 of 1, CPU unless told otherwise."""

    world_size: int = 1
    world_rank: int = 0

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None = None) -> None:
        raise NotImplementedError

    def get_checkpoint(self) -> Path | None:
        return None

    def prepare_model(self, model):
        return model

    def shard(self, order: np.ndarray) -> np.ndarray:
        """This worker's share of a (shuffled) index array: equal-sized contiguous slices, so every
        rank runs the same number of steps (DDP requires it); the remainder is dropped."""
        per = len(order) // self.world_size
        return order[self.world_rank * per:(self.world_rank + 1) * per]

    @property
    def device(self):
        """The GPU Ray assigned to this process (it sets CUDA_VISIBLE_DEVICES), else the CPU."""
        import torch

        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

    @property
    def node_id(self) -> str:
        try:
            import ray

            if ray.is_initialized():
                return ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - best effort provenance
            pass
        return "local"


class LocalSession(Session):
    """No Ray: reports go to a callback (which may raise to stop the trial)."""

    def __init__(self, on_report: Callable[[dict, str | None], None] | None = None,
                 checkpoint: Path | None = None):
        self.on_report = on_report
        self.history: list[dict] = []
        self._checkpoint = checkpoint

    def report(self, metrics, checkpoint_dir=None):
        self.history.append(dict(metrics))
        if checkpoint_dir is not None:
            self._checkpoint = Path(checkpoint_dir)
        if self.on_report is not None:
            self.on_report(dict(metrics), checkpoint_dir)

    def get_checkpoint(self):
        return self._checkpoint


def stamped(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with ``reported_at`` (float seconds since the epoch): Tune's own ``timestamp``
    is whole seconds, too coarse to order a report against an event in the same second."""
    return {**metrics, "reported_at": time.time()}


class TuneSession(Session):
    """A Ray Tune function trainable, one worker: ``tune.report`` with a directory checkpoint."""

    def report(self, metrics, checkpoint_dir=None):
        from ray import tune

        ckpt = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        tune.report(stamped(metrics), checkpoint=ckpt)

    def get_checkpoint(self):
        from ray import tune

        ckpt = tune.get_checkpoint()
        return Path(ckpt.to_directory()) if ckpt is not None else None


class TrainSession(Session):
    """Inside a Ray Train worker: ``ray.train.report``, DDP through ``prepare_model``."""

    def __init__(self):
        import ray.train

        ctx = ray.train.get_context()
        self.world_size = ctx.get_world_size()
        self.world_rank = ctx.get_world_rank()

    def report(self, metrics, checkpoint_dir=None):
        import ray.train

        # every rank reports (Ray Train expects it); only rank 0 attaches the checkpoint
        ckpt = (ray.train.Checkpoint.from_directory(checkpoint_dir)
                if checkpoint_dir and self.world_rank == 0 else None)
        ray.train.report(stamped(metrics), checkpoint=ckpt)

    def get_checkpoint(self):
        import ray.train

        ckpt = ray.train.get_checkpoint()
        return Path(ckpt.to_directory()) if ckpt is not None else None

    def prepare_model(self, model):
        import ray.train.torch

        return ray.train.torch.prepare_model(model) if self.world_size > 1 else model

    @property
    def device(self):
        import ray.train.torch

        return ray.train.torch.get_device()


def checkpoint_dir() -> str:
    """A fresh temporary folder for one checkpoint (the runtime copies it to storage)."""
    return tempfile.mkdtemp(prefix="ckpt-", dir=os.environ.get("HARNESS_TMP"))
