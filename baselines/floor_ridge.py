"""The ``ridge`` floor: linear least squares on flattened inputs, regularisation picked on validation.

When the primal coefficient matrix (features × outputs) would be large, e.g. PSICOV's 57 × 64²
inputs against 64² outputs (about 1e9 coefficients, 7.6 GB), the same model is fitted in its
dual form: scikit-learn's ``KernelRidge`` with a linear kernel on the centred training data,
which needs only the n × n Gram matrix. Centred kernel ridge with a linear kernel is ridge with an
unpenalised intercept, so the predictions are the primal ones up to rounding.
"""
from __future__ import annotations

import numpy as np

from harness.methods.floor import FloorPredictor, best_on_validation, not_for_classes

#: the ridge penalties tried (scikit-learn's ``alpha``); the best on the validation split is kept
ALPHAS = tuple(10.0 ** k for k in range(-4, 5))
#: above this many primal coefficients (features × outputs) the dual form is used
PRIMAL_LIMIT = 50_000_000


class RidgeRegression(FloorPredictor):
    name = "ridge"
    version = "1"
    summary = "Reference predictor: ridge regression on flattened inputs (alpha chosen on validation)"

    def supports(self, task):
        return not_for_classes(task)

    def fit(self, x_train, y_train, x_val, y_val, metric, direction, seed):
        import warnings

        from scipy.linalg import LinAlgWarning
        from sklearn.linear_model import Ridge

        flat = lambda a: np.asarray(a, dtype=np.float64).reshape(len(a), -1)  # noqa: E731
        out_shape = tuple(y_train.shape[1:])
        n_coef = int(np.prod(x_train.shape[1:])) * int(np.prod(out_shape or (1,)))
        if n_coef > PRIMAL_LIMIT and len(x_train) < int(np.prod(x_train.shape[1:])):
            return _dual_fit(flat, x_train, y_train, x_val, y_val, metric, direction, out_shape)

        def fitted(alpha):
            # with fewer samples than features scikit-learn solves the n x n kernel system (about
            # 9x faster here than solver="svd"); tiny penalties make it ill-conditioned, which
            # the validation split then judges
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LinAlgWarning)
                warnings.filterwarnings("ignore", message=".*[Ss]ingular matrix.*")
                model = Ridge(alpha=alpha).fit(flat(x_train), flat(y_train))
            return lambda x: model.predict(flat(x)).reshape((len(x),) + out_shape)

        chosen = best_on_validation((fitted(a) for a in ALPHAS), x_val, y_val, metric, direction,
                                    "ridge: every alpha")
        return lambda x: chosen(x).astype(np.float32)


def _dual_fit(flat, x_train, y_train, x_val, y_val, metric, direction, out_shape):
    """Ridge with intercept in its dual form (module docstring), alpha picked on validation."""
    from sklearn.kernel_ridge import KernelRidge

    xt, yt = flat(x_train), flat(y_train)
    x_mean, y_mean = xt.mean(axis=0), yt.mean(axis=0)
    xc, yc = xt - x_mean, yt - y_mean
    shape = lambda p, n: p.reshape((n,) + out_shape).astype(np.float32)  # noqa: E731

    def fitted(alpha):
        model = KernelRidge(alpha=alpha, kernel="linear").fit(xc, yc)
        return lambda x: shape(model.predict(flat(x) - x_mean) + y_mean, len(x))

    return best_on_validation((fitted(a) for a in ALPHAS), x_val, y_val, metric, direction,
                              "ridge: every alpha")
