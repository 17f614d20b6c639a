"""Task metrics and losses beyond PDEBench's nRMSE: classification, multi-label and dense tasks.

Every metric takes ``(pred, target, **aux)`` — model outputs (logits or fields, numpy or torch,
sample axis first), targets and the per-split extras of ``TaskData.aux`` (``clip``, ``length``,
``offset``, ``ignore``) — and returns a float where lower is better. Each published metric has an
``*_upstream`` variant that reproduces the reference code (ORCA/RECRAFT) where it deviates:
chunked averaging, binarised scores, PSICOV's length handling. :func:`get` looks both up by name;
``harness.metrics.get_metric`` falls back to it.
"""
from __future__ import annotations

from typing import Callable

from harness.scoring import classification, dense

METRICS: dict[str, Callable[..., float]] = {
    "error_rate": classification.error_rate,
    "error_rate_upstream": classification.error_rate_upstream,
    "f1_error": classification.f1_error,
    "f1_error_upstream": classification.f1_error_upstream,
    "map_error": classification.map_error,
    "map_error_upstream": classification.map_error_upstream,
    "mean_auroc_error": classification.mean_auroc_error,
    "mean_auroc_error_upstream": classification.mean_auroc_error_upstream,
    "rel_l2": dense.rel_l2,
    "mae8": dense.mae8,
    "mae8_upstream": dense.mae8_upstream,
    "pixel_auroc_error": dense.pixel_auroc_error,
    "pixel_auroc_error_upstream": dense.pixel_auroc_error_upstream,
}


def get(name: str) -> Callable[..., float]:
    """A metric by name (see :data:`METRICS`)."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None
