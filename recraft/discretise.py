"""Discretise regression targets into classes for FLD / ORCA's OTDD (paper App. H, spec §5.2).

Each training sample's whole target field is flattened into one vector and the vectors are
clustered with k-means (scikit-learn); the cluster id is the class. Full ``KMeans`` up to
``minibatch_threshold`` samples (10000, as the reference code), ``MiniBatchKMeans`` with batches
of 10000 above. Unlike the reference code (random init on every call) the clustering is seeded,
so the classes are reproducible; class ids are renumbered by first appearance in ``y`` so that
they do not depend on k-means' internal numbering.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["class_weights", "discretise_targets"]


def discretise_targets(y: np.ndarray, n_classes: int = 10, seed: int = 0, *,
                       n_init: int | None = None, minibatch_threshold: int = 10000,
                       batch_size: int = 10000) -> np.ndarray:
    """k-means class ids (int64, ``0 .. K-1``) for targets ``y`` of shape ``(N, ...)``.

    ``n_init``: k-means restarts, default 10 for ``KMeans`` and 3 for ``MiniBatchKMeans``;
    ``seed``: ``random_state`` (same seed and data -> same labels). When ``y`` holds fewer distinct
    samples than ``n_classes``, K is reduced to that number with a ``UserWarning``; a warning is
    also given if k-means leaves a cluster empty (the ids stay consecutive either way).
    """
    y = np.asarray(y)
    if y.ndim < 1 or y.shape[0] == 0:
        raise ValueError("y must hold at least one sample along its first axis")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    flat = y.reshape(y.shape[0], -1)
    if not np.issubdtype(flat.dtype, np.floating):
        flat = flat.astype(np.float64)
    if not np.all(np.isfinite(flat)):
        raise ValueError("y contains NaN or inf")

    n_samples = flat.shape[0]
    n_distinct = len(np.unique(flat, axis=0))
    k = n_classes
    if n_distinct < k:
        warnings.warn(f"discretise_targets: only {n_distinct} distinct target samples, using "
                      f"K={n_distinct} classes instead of {n_classes}", UserWarning, stacklevel=2)
        k = n_distinct
    if k == 1:
        return np.zeros(n_samples, dtype=np.int64)

    # scikit-learn is imported here, not at module level: it takes ~1.4 s, which every new
    # trial process of a method without FLD (nft) would otherwise pay
    if n_samples > minibatch_threshold:
        from sklearn.cluster import MiniBatchKMeans

        km = MiniBatchKMeans(n_clusters=k, batch_size=batch_size, random_state=seed,
                             n_init=3 if n_init is None else n_init)
    else:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, random_state=seed, n_init=10 if n_init is None else n_init)
    # one BLAS thread: a trial already holds its CPU share (one torch thread per trial CPU), and
    # on these few-hundred-sample fields a multi-threaded BLAS spends its time spinning; measured
    # on PSICOV's 90 x 4096 targets beside a concurrent trial: 6-9 CPU s -> 0.12 CPU s, same labels
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        raw = km.fit_predict(flat)

    # renumber by first appearance: ids 0..K'-1, independent of k-means' own numbering
    _, first = np.unique(raw, return_index=True)
    order = raw[np.sort(first)]
    mapping = np.empty(raw.max() + 1, dtype=np.int64)
    mapping[order] = np.arange(len(order), dtype=np.int64)
    labels = mapping[raw]
    if len(order) < k:
        warnings.warn(f"discretise_targets: k-means left {k - len(order)} empty cluster(s); "
                      f"{len(order)} classes remain", UserWarning, stacklevel=2)
    return labels


def class_weights(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Class frequencies ``w_k = n_k / n`` (float64, sums to 1), length ``max(label) + 1`` or
    ``n_classes``."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("labels must be a non-empty 1-D array")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative")
    counts = np.bincount(labels.astype(np.int64), minlength=n_classes or 0)
    if n_classes is not None and len(counts) > n_classes:
        raise ValueError(f"a label is >= n_classes={n_classes}")
    return counts / labels.size
