"""Split positions and the read audit, shared by every suite's readers (no reader imports)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

@dataclass(frozen=True)
class SplitIndices:
    """Positions (sample index, or position in the sorted seed list) of each split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def get(self, name: str) -> np.ndarray:
        return getattr(self, name)


def split_indices(n: int, test_fraction: float, test_from: str, val_fraction: float,
                  val_seed: int) -> SplitIndices:
    """ORCA's test split (first or last 10 %), then a fixed seeded validation carve-out of train."""
    n_test = int(n * test_fraction)
    allidx = np.arange(n)
    if test_from == "first":
        test, rest = allidx[:n_test], allidx[n_test:]
    else:
        test, rest = allidx[n - n_test:], allidx[:n - n_test]
    n_val = int(round(len(rest) * val_fraction))
    perm = np.random.default_rng(val_seed).permutation(len(rest))
    val = np.sort(rest[perm[:n_val]])
    train = np.sort(rest[perm[n_val:]])
    return SplitIndices(train=train, val=val, test=test)


def audit_read(task: str, splits: tuple[str, ...], path: Path) -> None:
    """Append a line per read to ``$HARNESS_DATA_AUDIT`` (when set): which splits, when, by whom.

    It lets a test prove that the test split is read only after a cell's search has finished.
    """
    log = os.environ.get("HARNESS_DATA_AUDIT")
    if not log:
        return
    line = json.dumps({"time": time.time(), "task": task, "splits": list(splits),
                       "pid": os.getpid(), "path": str(path)})
    with open(log, "a") as fh:
        fh.write(line + "\n")
