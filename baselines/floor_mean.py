"""The ``mean`` floor: predict the training split's mean target field for every input.

On a multi-label task this is the per-label prior (the mean 0/1 vector), on a segmentation task
the per-pixel mask frequency; single-label classification gets the ``majority`` floor instead.
"""
from __future__ import annotations

import numpy as np

from harness.methods.floor import FloorPredictor, not_for_classes


class MeanField(FloorPredictor):
    name = "mean"
    version = "1"
    summary = "Reference predictor: the train split's mean target field"

    def supports(self, task):
        return not_for_classes(task)

    def fit(self, x_train, y_train, x_val, y_val, metric, direction, seed):
        field = np.asarray(y_train, dtype=np.float64).mean(axis=0, keepdims=True)
        return lambda x: np.broadcast_to(field, (len(x),) + field.shape[1:]).astype(np.float32)
