"""Small hand-made HDF5 files in both PDEBench layouts, with values that encode their position."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from harness.suites.pdebench import TASKS


def single_value(n, t, x):
    """Value stored at (sample n, frame t, point x) in the single-layout fixtures."""
    return n * 1000.0 + t * 100.0 + x


def write_single_1d(root: Path, task_name: str = "advection", n: int = 20, frames: int = 5,
                    nx: int = 16, dt: float = 0.5, keys=("tensor",), dtype="float32") -> Path:
    spec = TASKS[task_name].file
    path = root / spec.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    nn, tt, xx = np.meshgrid(np.arange(n), np.arange(frames), np.arange(nx), indexing="ij")
    with h5py.File(path, "w") as f:
        for i, k in enumerate(keys):
            f.create_dataset(k, data=(single_value(nn, tt, xx) + i * 0.25).astype(dtype))
        f.create_dataset("x-coordinate", data=((np.arange(nx) + 0.5) / nx).astype("float32"))
        f.create_dataset("t-coordinate", data=(np.arange(frames + 1) * dt).astype("float32"))
    return path


def multi_value(g, t, x, y, c):
    return g * 10000.0 + t * 1000.0 + x * 100.0 + y * 10.0 + c


def write_multi_2d(root: Path, task_name: str = "diffusion-reaction-2d", groups: int = 20,
                   frames: int = 3, n: int = 8, channels: int = 2, t_end: float = 5.0) -> Path:
    spec = TASKS[task_name].file
    path = root / spec.rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(1).permutation(groups)   # written out of order on purpose
    tt, xx, yy, cc = np.meshgrid(np.arange(frames), np.arange(n), np.arange(n),
                                 np.arange(channels), indexing="ij")
    with h5py.File(path, "w") as f:
        for g in order:
            grp = f.create_group(f"{g:04d}")
            grp.create_dataset("data", data=multi_value(g, tt, xx, yy, cc).astype("float32"))
            grp.create_dataset("grid/x", data=np.linspace(-1, 1, n).astype("float32"))
            grp.create_dataset("grid/y", data=np.linspace(-1, 1, n).astype("float32"))
            grp.create_dataset("grid/t", data=np.linspace(0, t_end, frames).astype("float32"))
    return path


def small_task(name: str, **sizes):
    """The suite's task with its 'real' grid shrunk, so fixtures exercise the real stride logic."""
    task = TASKS[name]
    real = dict(task.file.real_sizes)
    real.update(sizes)
    return dataclasses.replace(task, file=dataclasses.replace(task.file, real_sizes=real))
