"""Array-likes that read samples on indexing, for NAS-Bench-360 splits too large to hold in memory.

A real PSICOV training split is 3,456 × 57 × 512 × 512 float32 (about 200 GB) and DeepSEA's
test split 149,400 × 4 × 1,000 (2.4 GB); upstream builds them sample by sample in a Dataset.
:class:`SampleArray` does the same behind an ndarray-like surface: ``len``, ``shape``,
``dtype``, and ``a[i]`` / ``a[i:j]`` / ``a[index_array]`` returning ``np.ndarray``. Readers hand
out plain arrays when a split is small (:func:`eager_limit`) and a ``SampleArray`` otherwise.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

#: default split size (bytes) up to which readers materialise arrays; ``HARNESS_EAGER_BYTES``
#: overrides it (0: always lazy, which the tests use to exercise the lazy path)
DEFAULT_EAGER_BYTES = 1 << 30


def eager_limit() -> int:
    """Bytes up to which a split is returned as an ``ndarray`` rather than a :class:`SampleArray`."""
    raw = os.environ.get("HARNESS_EAGER_BYTES")
    if raw is None or raw.strip() == "":
        return DEFAULT_EAGER_BYTES
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"HARNESS_EAGER_BYTES={raw!r}: expected a number of bytes") from None


class SampleArray:
    """Samples ``fetch(indices) -> ndarray`` of a fixed per-sample shape, read on indexing."""

    def __init__(self, n: int, sample_shape: tuple[int, ...], dtype,
                 fetch: Callable[[np.ndarray], np.ndarray], block: int = 64) -> None:
        self._n = int(n)
        self._sample_shape = tuple(int(s) for s in sample_shape)
        self.dtype = np.dtype(dtype)
        self._fetch = fetch
        self._block = max(1, int(block))

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self._sample_shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self._n

    def _take(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), *self._sample_shape), dtype=self.dtype)
        for lo in range(0, len(idx), self._block):  # bounded working memory per fetch
            part = idx[lo:lo + self._block]
            got = np.asarray(self._fetch(part), dtype=self.dtype)
            if got.shape != (len(part), *self._sample_shape):
                raise RuntimeError(f"fetch returned shape {got.shape}, expected "
                                   f"{(len(part), *self._sample_shape)}")
            out[lo:lo + len(part)] = got
        return out

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -self._n <= i < self._n:
                raise IndexError(f"index {i} out of range for {self._n} samples")
            return self._take(np.array([i % self._n]))[0]
        if isinstance(key, slice):
            return self._take(np.arange(self._n)[key])
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (self._n,):
                raise IndexError(f"boolean mask of shape {idx.shape}, expected ({self._n},)")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"SampleArray takes an int, a slice or a 1-D index array, got {key!r}")
        if idx.size and (idx.max() >= self._n or idx.min() < -self._n):
            raise IndexError(f"index out of range for {self._n} samples")
        return self._take(idx % max(1, self._n))

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"SampleArray(shape={self.shape}, dtype={self.dtype})"


def maybe_lazy(n: int, sample_shape: tuple[int, ...], dtype,
               fetch: Callable[[np.ndarray], np.ndarray], block: int = 64):
    """An ``ndarray`` of all ``n`` samples when it fits :func:`eager_limit`, else a SampleArray."""
    lazy = SampleArray(n, sample_shape, dtype, fetch, block)
    if lazy.nbytes <= eager_limit():
        return lazy[:]
    return lazy
