"""Reference predictors ("floors"): trivial models every compared method must beat.

A floor is a method like any other (same splits, seeds, result rows, MLflow runs), with one stage
``fit`` that fits a closed-form predictor on the training split, reports its validation value as
epoch 1 and, in a final run, its test value. Floors use no pretrained body and are never ranked
against the methods: the leaderboard shows them as a block of their own and flags every method
whose mean is worse than the ``mean`` floor on a task (``harness.leaderboard``).

A floor subclass sets ``name``/``version``/``summary`` and implements :meth:`FloorPredictor.fit`,
returning a function from inputs to predictions. The ``metric`` it gets is bound to the
validation split's extras (``TaskData.aux``), so it is called as ``metric(pred, target)``.

Which floors run where: ``mean`` and ``ridge`` on regression, segmentation and multi-label
targets (a mean 0/1 label vector is the per-label prior); ``majority`` and ``logistic`` on
single-label classification (:func:`not_for_classes`, :func:`only_classes`).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

from harness.methods.contract import Method, Resources, Stage
from harness.metrics import get_metric

Predictor = Callable[[np.ndarray], np.ndarray]


class FloorPredictor(Method):
    """Base of the reference predictors: one ``fit`` stage, nothing to search, no body."""

    role: ClassVar[str] = "floor"
    uses_body: ClassVar[bool] = False
    stages = (Stage("fit"),)
    resources = Resources(cpus=1.0)

    def search_space(self, task) -> dict[str, Any]:
        return {}

    def defaults(self, task) -> dict[str, Any]:
        return {}

    def fit(self, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
            y_val: np.ndarray, metric: Callable, direction: str, seed: int) -> Predictor:
        """Fit on the training split (the validation split may pick a hyperparameter)."""
        raise NotImplementedError

    def stage_fit(self, ctx, config, upstream) -> dict[str, Any]:
        task = ctx.task
        name = task.metric.name
        base = get_metric(name)
        aux = ctx.data.aux

        def metric_on(split: str) -> Callable:
            # the split's extras (clip ids, protein lengths, ignore masks) go with every call
            extras = dict(aux.get(split, {}))
            return lambda pred, target: base(pred, target, **extras)

        x, y = ctx.data.split("train")
        xv, yv = ctx.data.split("val")
        predict = self.fit(x, y, xv, yv, metric_on("val"), task.metric.direction, ctx.seed)
        val = float(metric_on("val")(predict(xv), yv))
        ctx.check_finite(f"val_{name}", val)
        row = {f"val_{name}": val, f"best_val_{name}": val}
        metrics: dict[str, Any] = {f"val_{name}": val, "best_epoch": 1}
        if ctx.phase == "final":
            xt, yt = ctx.data.split("test")
            test = float(metric_on("test")(predict(xt), yt))
            row.update({f"test_{name}": test, f"test_{name}_last": test, "best_epoch": 1})
            metrics.update({f"test_{name}": test, f"test_{name}_last": test})
        ctx.report(1, row)
        return {"metrics": metrics}


def best_on_validation(predictors, x_val, y_val, metric, direction: str, what: str):
    """The predictor (from an iterable, fitted lazily) with the best finite validation value;
    raises ValueError ``"<what> gave a non-finite validation value"`` when none has one."""
    best = None
    for predict in predictors:
        value = float(metric(predict(x_val), y_val))
        better = best is None or (value < best[0] if direction == "min" else value > best[0])
        if np.isfinite(value) and better:
            best = (value, predict)
    if best is None:
        raise ValueError(f"{what} gave a non-finite validation value")
    return best[1]


def not_for_classes(task) -> tuple[bool, str]:
    """``supports`` of the regression floors: class indices are no field to average or regress
    (the ``majority`` and ``logistic`` floors stand in on those tasks)."""
    if task.kind == "classification":
        return False, "single-label classification: see the majority and logistic floors"
    return True, ""


def only_classes(task) -> tuple[bool, str]:
    """``supports`` of the classification floors."""
    if task.kind != "classification":
        return False, f"{task.kind.replace('_', ' ')} target: see the mean and ridge floors"
    return True, ""
