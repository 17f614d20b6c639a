"""The ``majority`` floor: predict the training split's most frequent class for every input.

Single-label classification only (the ``mean`` floor is the regression and multi-label
counterpart). Its logits are the log class frequencies of the training split, so ``argmax`` is
the majority class; a class never seen in training gets a large negative logit.
"""
from __future__ import annotations

import numpy as np

from harness.methods.floor import FloorPredictor, only_classes

#: logit of a class that never occurs in the training split
UNSEEN = -1e4


def chance_error(num_classes: int) -> float:
    """Expected error rate of guessing uniformly among ``num_classes`` classes: ``1 − 1/K``."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return 1.0 - 1.0 / num_classes


class MajorityClass(FloorPredictor):
    name = "majority"
    version = "1"
    summary = "Reference predictor: the train split's most frequent class"

    def supports(self, task):
        return only_classes(task)

    def fit(self, x_train, y_train, x_val, y_val, metric, direction, seed):
        labels = np.asarray(y_train).reshape(-1).astype(np.int64)
        n_cls = int(labels.max()) + 1
        counts = np.bincount(labels, minlength=n_cls).astype(np.float64)
        with np.errstate(divide="ignore"):
            logits = np.where(counts > 0, np.log(counts / counts.sum()), UNSEEN)
        # ties between equally frequent classes go to the lowest class id (numpy's argmax)
        return lambda x: np.broadcast_to(logits.astype(np.float32), (len(x), n_cls)).copy()
