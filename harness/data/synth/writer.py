"""HDF5 writer for synthetic files in the upstream (PDEBench) layout of ``catalog.FILES``.

Every dataset is float32. A file is written under a temporary name in its final folder and moved
into place with ``os.replace``, so a file carrying the final name is always complete.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import yaml

from ..catalog import PdebenchFile
from .plan import Plan

# Upstream wrote diff-sorp and 2D diff-react with lzf compression (``docs/data.md`` §1). We keep it
# for diff-sorp (smooth data, so it pays and the reader's lzf path gets exercised) and drop it for
# 2D diff-react, whose noisy frames barely compress and would take longer to write than to solve.
LZF_FILES = frozenset({"1D_diff-sorp_NA_NA.h5"})


def _f32(a: Any, what: str) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float32)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(f"refusing to write non-finite values to {what}")
    return out


def _write_single(f: h5py.File, spec: PdebenchFile, plan: Plan) -> None:
    datasets = {}
    for key in spec.keys:
        if key.key in plan.shared:
            f.create_dataset(key.key, data=_f32(plan.shared[key.key], key.key))
            continue
        shape = (plan.n,) + tuple(plan.per_sample[key.key])
        if len(shape) != len(key.axes):
            raise ValueError(f"{spec.filename}: '{key.key}' would have rank {len(shape)}, "
                             f"expected {len(key.axes)} {key.axes}")
        datasets[key.key] = f.create_dataset(key.key, shape=shape, dtype=np.float32)
    for idx in plan.batches:
        idx = np.asarray(idx)
        order = np.argsort(idx)
        arrays = plan.solve(idx)
        for key, ds in datasets.items():
            values = _f32(np.asarray(arrays[key])[order], key)
            lo, hi = int(idx[order[0]]), int(idx[order[-1]])
            if hi - lo + 1 == len(idx):  # a contiguous block: one hyperslab write
                ds[lo:hi + 1] = values
            else:
                ds[np.sort(idx)] = values


def _write_multi(f: h5py.File, spec: PdebenchFile, plan: Plan,
                 group_attrs: Mapping[str, Any]) -> None:
    compression = "lzf" if spec.filename in LZF_FILES else None
    grids = {k.key: _f32(plan.shared[k.key], k.key) for k in spec.keys if k.coordinate}
    for idx in plan.batches:
        data = plan.solve(np.asarray(idx))["data"]
        for i, values in zip(idx, data):
            g = f.create_group(f"{int(i):04d}")
            g.create_dataset("data", data=_f32(values, f"{int(i):04d}/data"),
                             compression=compression)
            for key, coord in grids.items():
                g.create_dataset(key, data=coord)
            g.attrs["config"] = yaml.safe_dump(
                {**plan.configs[i], **group_attrs, "sample": int(i)}, sort_keys=True)


def write(path: Path, spec: PdebenchFile, plan: Plan, root_attrs: Mapping[str, Any]) -> Path:
    """Write ``plan`` to ``path`` in ``spec``'s layout, atomically; returns ``path``.

    Single layout: one dataset per catalog key, sample-indexed ones filled batch by batch.
    Multi layout: one group ``%04d`` per sample with ``data``, the ``grid/*`` coordinates and a
    YAML ``config`` attribute.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in root_attrs.items():
                f.attrs[key] = value
            if spec.layout == "single":
                _write_single(f, spec, plan)
            else:
                _write_multi(f, spec, plan, {k: root_attrs[k] for k in
                                             ("generator_version", "seed", "size")})
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_root_attrs(path: Path) -> dict[str, Any] | None:
    """Root attributes of an existing HDF5 file, or None if it cannot be opened."""
    try:
        with h5py.File(path, "r") as f:
            return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    except OSError:
        return None
