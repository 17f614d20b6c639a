"""What a generator hands the writer: shared coordinates plus a solver for batches of samples.

Samples are solved and written batch by batch, so a "large" file never has to fit in memory.
All randomness is drawn up front (per-sample parameters, or per-sample seeds), so a sample's initial
condition does not depend on the batching; its solution can, at the level of the discretisation
error, where a solver shares one step size across a batch. Batches are fixed by the size preset,
so files stay deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

BATCH_VALUES = 2**24  # float64 output values per batch (128 MiB)


@dataclass(frozen=True)
class Plan:
    """A file's content, to be produced batch by batch.

    ``shared``: coordinate datasets by key (single layout: top-level keys such as
    ``x-coordinate``; multi layout: ``grid/x`` ...). ``per_sample``: per-sample shape of each
    sample-indexed key (single: ``tensor`` → (T, X); multi: ``data`` → (T, X[, Y], C)).
    ``solve(indices)`` returns those keys' arrays for the given sample indices (first axis in
    the same order). ``configs``: one dict per sample (multi layout's YAML ``config``).
    """

    n: int
    shared: Mapping[str, np.ndarray]
    per_sample: Mapping[str, tuple[int, ...]]
    solve: Callable[[np.ndarray], Mapping[str, np.ndarray]]
    batches: list[np.ndarray]
    configs: list[dict] = field(default_factory=list)


def contiguous_batches(n: int, values_per_sample: int, budget: int = BATCH_VALUES
                       ) -> list[np.ndarray]:
    """Consecutive index blocks of at most ``budget`` output values each (≥ 1 sample)."""
    size = max(1, min(n, budget // max(1, values_per_sample)))
    return [np.arange(s, min(n, s + size)) for s in range(0, n, size)]
