"""The ``logistic`` floor: multinomial logistic regression on flattened, standardised inputs.

The classification counterpart of the ``ridge`` floor: scikit-learn's ``LogisticRegression``
(L2 penalty, lbfgs) on the flattened inputs, each feature standardised with the training split's
mean and std; the inverse penalty ``C`` is picked on the validation split.

With fewer training samples than features (the quick profile: 96 samples of 3,072–10,800
values), the inputs are first expressed in an orthonormal basis of the training samples' span
(thin SVD). This is exact, not an approximation: an L2-penalised linear model's weights lie in
that span (the representer theorem), and the penalty is the same in the basis. It makes each
fit about as cheap as one on ``n`` features.
"""
from __future__ import annotations

import warnings

import numpy as np

from harness.methods.floor import FloorPredictor, best_on_validation, only_classes

#: inverse L2 penalties tried (scikit-learn's ``C``); the best on the validation split is kept
CS = (1e-3, 1e-2, 1e-1, 1.0)
#: lbfgs iterations per fit: enough for these small problems, bounded for large real splits
MAX_ITER = 200


class LogisticRegressionFloor(FloorPredictor):
    name = "logistic"
    version = "1"
    summary = "Reference predictor: logistic regression on flattened inputs (C chosen on validation)"

    def supports(self, task):
        return only_classes(task)

    def fit(self, x_train, y_train, x_val, y_val, metric, direction, seed):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        flat = lambda a: np.asarray(a, dtype=np.float64).reshape(len(a), -1)  # noqa: E731
        xt = flat(x_train)
        mean, std = xt.mean(axis=0), xt.std(axis=0)
        std[std < 1e-12] = 1.0
        standardised = lambda a: (flat(a) - mean) / std  # noqa: E731
        scaled = standardised
        if xt.shape[0] < xt.shape[1]:
            _u, sv, vt = np.linalg.svd(standardised(x_train), full_matrices=False)
            basis = vt[sv > sv.max() * 1e-10]
            scaled = lambda a: standardised(a) @ basis.T  # noqa: E731
        labels = np.asarray(y_train).reshape(-1).astype(np.int64)
        n_cls = int(labels.max()) + 1
        if len(np.unique(labels)) < 2:
            raise ValueError("logistic: the training split holds a single class; nothing to fit")

        def fitted(c):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed).fit(
                    scaled(x_train), labels)
            return _predictor(model, scaled, n_cls)

        return best_on_validation((fitted(c) for c in CS), x_val, y_val, metric, direction,
                                  "logistic: every C")


def _predictor(model, scaled, n_cls: int):
    """Inputs -> (N, n_cls) log-probabilities; classes absent from training get -inf-like logits."""
    cols = model.classes_.astype(np.int64)

    def predict(x):
        out = np.full((len(x), n_cls), -1e4, dtype=np.float32)
        out[:, cols] = model.predict_log_proba(scaled(x)).astype(np.float32)
        return out
    return predict
