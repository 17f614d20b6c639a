"""Darcy flow from FNO's MAT files [ORCA load_darcy_flow, MatReader, UnitGaussianNormalizer].

``piececonst_r421_N1024_smooth{1,2}.mat`` hold ``coeff`` (a) and ``sol`` (u), (1024, 421, 421).
Construction as upstream: subsample ``[:, ::5, ::5]`` (85 × 85); train = the first 1,000 samples
of smooth1 (here split 90/10 into train and validation by a fixed seed), test = the first 100 of
smooth2; a pointwise Gaussian normaliser (mean and unbiased std over training samples per grid
point, eps 1e-5) is fitted on the training inputs and applied to every input; the input is
(normalised a, x grid, y grid) with grids ``linspace(0, 1)`` as ``np.meshgrid`` lays them out.

Targets are returned in physical units, (N, 1, 85, 85). Upstream normalises the training target
and decodes both prediction and target before the loss and the metric; that is a prediction
head ``u = mean + (std + eps) · v``, with ``mean``/``std`` the training-target statistics given
in ``TaskData.attrs["y_mean"]``/``["y_std"]`` (plus ``["y_eps"]``).

A file on a grid other than 421 is subsampled to 85 points when 84 divides its size − 1, and
used as is when it is smaller than 85 (small synthetic stand-ins).
"""
from __future__ import annotations

import numpy as np

from harness.data.errors import SchemaMismatch
from harness.data.nb360.formats import mat_field_shape, read_mat_field, require_file
from harness.data.nb360.building import Built, Context, carve


def darcy_stride(resolution: int, real: int, stride: int, path) -> int:
    """Stride that maps a file's grid to the task grid (``real`` subsampled by ``stride``)."""
    out = (real - 1) // stride + 1
    if resolution == real:
        return stride
    if resolution > out and (resolution - 1) % (out - 1) == 0:
        return (resolution - 1) // (out - 1)
    if resolution <= out:
        return 1
    raise SchemaMismatch(f"{path}: grid of {resolution} points; expected {real} (subsampled by "
                         f"{stride} to {out}), a size n with n − 1 a multiple of {out - 1}, or at "
                         f"most {out} points")


def _pair(ctx: Context, rel: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    path = require_file(ctx.path(rel), "Darcy flow MAT file", ctx.task.name)
    p = ctx.params
    shape = mat_field_shape(path, "coeff")
    if len(shape) != 3 or shape[1] != shape[2]:
        raise SchemaMismatch(f"{path}: 'coeff' has shape {shape}, expected (samples, n, n)")
    stride = darcy_stride(shape[1], p["resolution"], p["stride"], path)
    a = read_mat_field(path, "coeff", rows, stride)
    u = read_mat_field(path, "sol", rows, stride)
    if u.shape != a.shape:
        raise SchemaMismatch(f"{path}: 'sol' has shape {u.shape} after subsampling, 'coeff' "
                             f"{a.shape}; expected equal shapes")
    return a, u


def _grid(s: int) -> np.ndarray:
    g = np.linspace(0, 1, s)
    gx, gy = np.meshgrid(g, g)   # upstream: vstack of the meshgrid, reshaped to (s, s, 2)
    return np.stack([gx, gy]).astype(np.float32)


def build_darcy(ctx: Context) -> Built:
    p, sp = ctx.params, ctx.task.split
    eps = np.float32(p["normaliser_eps"])
    a_tr, u_tr = _pair(ctx, ctx.task.file.required[0], p["n_train"])
    if len(a_tr) < 2:
        raise SchemaMismatch(f"{ctx.path(ctx.task.file.required[0])}: {len(a_tr)} sample(s); "
                             f"at least 2 are needed to fit the normaliser")
    tr, va = carve(len(a_tr), sp.val_fraction, sp.val_seed)
    x_mean, x_std = a_tr[tr].mean(0), a_tr[tr].std(0, ddof=1)
    y_mean, y_std = u_tr[tr].mean(0), u_tr[tr].std(0, ddof=1)
    parts = {"train": (a_tr, u_tr, tr), "val": (a_tr, u_tr, va)}
    if "test" in ctx.splits:
        a_te, u_te = _pair(ctx, ctx.task.file.required[1], p["n_test"])
        if a_te.shape[1:] != a_tr.shape[1:]:
            raise SchemaMismatch(f"{ctx.path(ctx.task.file.required[1])}: grid {a_te.shape[1:]} "
                                 f"differs from the training file's {a_tr.shape[1:]}")
        parts["test"] = (a_te, u_te, np.arange(len(a_te)))
    grid = _grid(a_tr.shape[1])
    out = Built(attrs={"y_mean": y_mean[None], "y_std": y_std[None], "y_eps": float(eps)})
    for s in ctx.splits:
        a, u, idx = parts[s]
        coeff = ((a[idx] - x_mean) / (x_std + eps))[:, None]
        out.x[s] = np.concatenate([coeff, np.broadcast_to(grid, (len(idx), *grid.shape))],
                                  axis=1).astype(np.float32)
        out.y[s] = np.ascontiguousarray(u[idx][:, None], dtype=np.float32)
        out.indices[s] = idx
    return out
