"""Dense-prediction metrics: Darcy's relative L2, PSICOV's MAE8 and Cosmic's pixel AUROC.

* :func:`rel_l2` — mean over samples of ``‖ŷ − y‖₂ / ‖y‖₂`` (FNO's ``LpLoss``; the same number
  as ``harness.metrics.nrmse``), in physical units.
* :func:`mae8` — PDNet/DEEPCON's long-range MAE: the prediction is symmetrised
  (``(P + Pᵀ)/2``) and floored at 0.01 Å; over residue pairs ``j − i ≥ 24`` with a true distance
  ``≤ 8`` Å, the mean absolute error per protein, then the mean over proteins that have such
  pairs. Each protein is scored on its own length (``length``) inside the padded window.
* :func:`pixel_auroc_error` — 1 − ROC AUC of the per-pixel scores against the cosmic-ray mask,
  over all pixels that are not ignored.

Upstream variants: :func:`mae8_upstream` scores every protein on the first protein's length, as
ORCA does with its per-protein chunks (``L`` from ``psicov.lst``'s first entry), averages the two
triangles the way its loop does (¾ of the lower plus ¼ of the upper value) and turns a protein
without scorable pairs into ``inf``; :func:`pixel_auroc_error_upstream` binarises the logits at 0
and counts ignored pixels as negatives with score 0, per chunk of 1,000 images.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

from harness.scoring.fields import nrmse
from harness.scoring._arrays import UPSTREAM_CHUNK, as_numpy, chunked, same_rows

PAD = 10          # PSICOV's zero padding (5 on each side)
MIN_SEP = 24      # long-range pairs
MAX_DIST = 8.0    # contacts (Å)
FLOOR = 0.01      # predictions are floored here (Å)


def rel_l2(pred: Any, target: Any, **_: Any) -> float:
    """Mean per-sample relative L2 error (all non-batch axes together)."""
    p, t = as_numpy(pred, np.float64), as_numpy(target, np.float64)
    if p.shape != t.shape and p.size == t.size:
        p = p.reshape(t.shape)   # (N, H, W) against (N, 1, H, W)
    return float(nrmse(p, t))


def _maps(pred: Any, target: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_numpy(pred, np.float64), as_numpy(target, np.float64)
    same_rows(p, t, what)
    p, t = p.reshape(len(p), *p.shape[-2:]), t.reshape(len(t), *t.shape[-2:])
    if p.shape != t.shape or p.shape[1] != p.shape[2]:
        raise ValueError(f"{what}: prediction {p.shape} and target {t.shape} must be square maps "
                         f"of one shape")
    return p, t


def _protein_mae(p: np.ndarray, t: np.ndarray, length: int, offset: int, pad: int) -> float:
    """MAE over long-range contacts of one protein; ``p`` already symmetrised and floored."""
    h = pad // 2
    c = p.shape[0]
    lo, hi = max(0, offset - h), min(length, offset - h + c)   # protein residues in the window
    if hi - lo <= MIN_SEP:
        return np.nan
    rows = np.arange(lo, hi) - offset + h
    pp, tt = p[np.ix_(rows, rows)], t[np.ix_(rows, rows)]
    i, j = np.meshgrid(np.arange(lo, hi), np.arange(lo, hi), indexing="ij")
    sel = (j - i >= MIN_SEP) & (tt <= MAX_DIST)
    return float(np.abs(pp[sel] - tt[sel]).mean()) if sel.any() else np.nan


def mae8(pred: Any, target: Any, length: Any = None, offset: Any = None, pad: int = PAD,
         **_: Any) -> float:
    """PSICOV MAE8 (published definition; see the module docstring).

    ``pred``/``target``: (N, [1,] C, C) distance maps in the padded window; ``length``: residues
    per protein (required); ``offset``: the window's start in the padded map (0 when the protein
    fits, the default)."""
    p, t = _maps(pred, target, "mae8")
    if length is None:
        raise ValueError("mae8 needs each protein's length (TaskData.aux[split]['length'])")
    lengths = as_numpy(length).astype(int).reshape(-1)
    offsets = np.zeros(len(p), int) if offset is None else as_numpy(offset).astype(int).reshape(-1)
    vals = []
    for b in range(len(p)):
        sym = np.maximum((p[b] + p[b].T) / 2.0, FLOOR)
        vals.append(_protein_mae(sym, t[b], int(lengths[b]), int(offsets[b]), pad))
    vals = np.asarray(vals)
    if np.all(np.isnan(vals)):
        return float("inf")
    return float(np.nanmean(vals))


def mae8_upstream(pred: Any, target: Any, length: Any = None, pad: int = PAD, **_: Any) -> float:
    """ORCA's ``psicov_mae`` with one protein per chunk: every protein is scored on the first
    protein's length ``length[0]``; a protein without scorable pairs gives ``inf``."""
    p, t = _maps(pred, target, "mae8_upstream")
    if length is None:
        raise ValueError("mae8_upstream needs the proteins' lengths (its first entry is used)")
    first = int(as_numpy(length).reshape(-1)[0])
    h = pad // 2
    c = p.shape[1]
    vals = []
    for b in range(len(p)):
        q = p[b].copy()
        upper = np.triu_indices(c)
        q[upper] = (q.T[upper] + q[upper]) / 2.0          # the upper triangle averaged ...
        q = np.maximum(q, FLOOR)
        q[: c - pad, : c - pad] = q[h: c - h, h: c - h]   # ... padding shifted out ...
        y = t[b].copy()
        y[: c - pad, : c - pad] = y[h: c - h, h: c - h]
        n = first
        pav = (q[:n, :n].T + q[:n, :n]) / 2.0              # ... and averaged again
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        sel = (j - i >= MIN_SEP) & (y[:n, :n] <= MAX_DIST)
        vals.append(float(np.abs(y[:n, :n][sel] - pav[sel]).mean()) if sel.any() else np.inf)
    return float(np.mean(vals))


def pixel_auroc_error(pred: Any, target: Any, ignore: Any = None, **_: Any) -> float:
    """1 − ROC AUC of per-pixel scores (logits) against the mask, ignored pixels left out."""
    p, t = as_numpy(pred, np.float64).reshape(-1), as_numpy(target).reshape(-1)
    if p.size != t.size:
        raise ValueError(f"pixel_auroc_error: {p.size} scores for {t.size} mask pixels")
    keep = np.ones(p.size, bool) if ignore is None else as_numpy(ignore).reshape(-1) == 0
    t = t[keep] > 0.5
    if t.all() or not t.any():
        raise ValueError("pixel_auroc_error: the kept pixels hold only one class; AUROC is undefined")
    return 1.0 - float(skm.roc_auc_score(t, p[keep]))


def _binarised_chunk(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> float:
    keep = 1.0 if ignore is None else 1.0 - ignore
    out = (pred * keep).reshape(-1) > 0
    y = (target * keep).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 1.0 - float(skm.roc_auc_score(y, out))


def pixel_auroc_error_upstream(pred: Any, target: Any, ignore: Any = None,
                               chunk: int = UPSTREAM_CHUNK, **_: Any) -> float:
    """ORCA's ``inv_auroc``: logits and mask multiplied by (1 − ignore), logits binarised at 0,
    1 − ROC AUC over all pixels, per chunk of ``chunk`` images, averaged."""
    p, t = as_numpy(pred, np.float64), as_numpy(target, np.float64)
    same_rows(p, t, "pixel_auroc_error_upstream")
    ig = None if ignore is None else as_numpy(ignore, np.float64)
    return chunked(_binarised_chunk, p, t, chunk, ignore=ig)
