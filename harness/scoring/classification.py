"""Single-label and multi-label metrics (errors: lower is better), via scikit-learn.

* :func:`error_rate` — 1 − top-1 accuracy (CIFAR-100, Spherical, NinaPro, Satellite).
* :func:`f1_error` — 1 − macro F1 over the classes that occur (ECG: N, A, O, ~).
* :func:`map_error` — 1 − mean average precision over labels (FSD50K), clip logits averaged
  over the clip's chunks first.
* :func:`mean_auroc_error` — 1 − mean per-label ROC AUC (DeepSEA).

Published definitions use the whole evaluation set at once and skip a label that cannot be
scored (no positive, or for AUROC no negative, in the set). The ``*_upstream`` variants follow
ORCA's code: the metric is computed per chunk of 1,000 samples and the chunk values averaged
(for ECG's F1 each chunk averages the labels present in that chunk); FSD's mAP averages all 200
labels (scikit-learn gives 0 AP to a label without positives) on float32 sigmoids.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn import metrics as skm

from harness.scoring._arrays import UPSTREAM_CHUNK, as_numpy, chunked, same_rows, sigmoid


def _labels_and_classes(pred: Any, target: Any, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    p, t = as_numpy(pred), as_numpy(target).reshape(-1)
    same_rows(p, t, what)
    if p.ndim == 2:
        return p.argmax(axis=1), t.astype(np.int64), p.shape[1]
    if p.ndim == 1:
        return p.astype(np.int64), t.astype(np.int64), int(max(p.max(), t.max()) + 1)
    raise ValueError(f"{what}: predictions must be logits (N, K) or labels (N,), got {p.shape}")


def error_rate(pred: Any, target: Any, **_: Any) -> float:
    """1 − accuracy of ``argmax(pred)`` (or of ``pred`` labels) against class indices."""
    p, t, _k = _labels_and_classes(pred, target, "error_rate")
    return 1.0 - float(skm.accuracy_score(t, p))


def error_rate_upstream(pred: Any, target: Any, chunk: int = UPSTREAM_CHUNK, **_: Any) -> float:
    """ORCA: 1 − accuracy per chunk of ``chunk`` samples, averaged over chunks."""
    p, t = as_numpy(pred), as_numpy(target)
    return chunked(error_rate, p, t, chunk)


def f1_error(pred: Any, target: Any, **_: Any) -> float:
    """1 − macro F1 over the classes that occur in the truth or the predictions (scikit-learn's
    macro average; a class predicted but never true scores 0)."""
    p, t, _k = _labels_and_classes(pred, target, "f1_error")
    return 1.0 - float(skm.f1_score(t, p, average="macro", zero_division=0))


def _f1_chunk_orca(pred: np.ndarray, target: np.ndarray, **_: Any) -> float:
    p, t, _k = _labels_and_classes(pred, target, "f1_error_upstream")
    report = skm.classification_report(t, p, output_dict=True, zero_division=0)
    scores = [report[c]["f1-score"] for c in ("0", "1", "2", "3") if c in report]
    return 1.0 - float(np.mean(scores))


def f1_error_upstream(pred: Any, target: Any, chunk: int = UPSTREAM_CHUNK, **_: Any) -> float:
    """ORCA's ``ecg_f1``: per chunk, the mean F1 of the labels '0'..'3' present in the chunk's
    truth or predictions; 1 − that, averaged over chunks."""
    return chunked(_f1_chunk_orca, as_numpy(pred), as_numpy(target), chunk)


def clip_average(pred: Any, target: Any, clip: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip mean logits and the clip's target (its first chunk's), ordered by clip id."""
    p, t = as_numpy(pred, np.float64), as_numpy(target)
    same_rows(p, t, "clip_average")
    if clip is None:
        return p, t
    c = as_numpy(clip).reshape(-1)
    if len(c) != len(p):
        raise ValueError(f"clip_average: {len(c)} clip ids for {len(p)} chunks")
    ids, first, inv = np.unique(c, return_index=True, return_inverse=True)
    sums = np.zeros((len(ids), p.shape[1]))
    np.add.at(sums, inv.ravel(), p)
    return sums / np.bincount(inv.ravel())[:, None], t[first]


def map_error(pred: Any, target: Any, clip: Any | None = None, **_: Any) -> float:
    """1 − mean over labels with at least one positive of their average precision, on clip
    logits (chunk logits averaged per ``clip`` when given)."""
    p, t = clip_average(pred, target, clip)
    aps = [skm.average_precision_score(t[:, k], p[:, k]) for k in range(t.shape[1])
           if t[:, k].any()]
    if not aps:
        raise ValueError("map_error: no label has a positive sample; mAP is undefined")
    return 1.0 - float(np.mean(aps))


def map_error_upstream(pred: Any, target: Any, clip: Any | None = None, **_: Any) -> float:
    """ORCA's FSD evaluation: float32 sigmoid of the clip-mean logits, AP of every label
    (scikit-learn's 0 for a label without positives), 1 − their mean."""
    p, t = clip_average(pred, target, clip)
    probs = sigmoid(p.astype(np.float32)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aps = [skm.average_precision_score(t[:, k].astype(np.int32), probs[:, k])
               for k in range(t.shape[1])]
    return 1.0 - float(np.mean(aps))


def mean_auroc_error(pred: Any, target: Any, **_: Any) -> float:
    """1 − mean over labels that have both classes of their ROC AUC (on the logits)."""
    p, t = as_numpy(pred, np.float64), as_numpy(target)
    same_rows(p, t, "mean_auroc_error")
    aucs = [skm.roc_auc_score(t[:, j], p[:, j]) for j in range(t.shape[1])
            if 0 < t[:, j].sum() < len(t)]
    if not aucs:
        raise ValueError("mean_auroc_error: no label has both positive and negative samples")
    return 1.0 - float(np.mean(aucs))


def _auroc_chunk_orca(pred: np.ndarray, target: np.ndarray, **_: Any) -> float:
    probs = sigmoid(pred.astype(np.float32))
    vals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(target.shape[1]):
            fpr, tpr, _thr = skm.roc_curve(target[:, j], probs[:, j])
            vals.append(skm.auc(fpr, tpr) if len(fpr) > 1 else np.nan)
    return 1.0 - float(np.nanmean(vals))


def mean_auroc_error_upstream(pred: Any, target: Any, chunk: int = UPSTREAM_CHUNK, **_: Any) -> float:
    """ORCA's ``auroc``: per chunk the nan-mean of per-label AUC (roc_curve + auc on float32
    sigmoids); 1 − that, averaged over chunks."""
    return chunked(_auroc_chunk_orca, as_numpy(pred), as_numpy(target), chunk)
