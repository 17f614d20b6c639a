"""Metrics against hand-computed values, for numpy and torch inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.metrics import (get_metric, nrmse, nrmse_per_sample, pdebench_nrmse,
                             pdebench_rmse, rmse, rmse_per_sample)

# two samples of shape (C=1, L=2): errors by hand
PRED = np.array([[[3.0, 4.0]], [[1.0, 1.0]]])
TARGET = np.array([[[0.0, 5.0]], [[2.0, 0.0]]])
# sample 0: diff (3,-1) -> |d| = sqrt(10), |y| = 5       -> 0.632455532
# sample 1: diff (-1, 1) -> |d| = sqrt(2),  |y| = 2      -> 0.707106781


def test_nrmse_hand_values_numpy_and_torch():
    per = nrmse_per_sample(PRED, TARGET)
    np.testing.assert_allclose(per, [np.sqrt(10) / 5, np.sqrt(2) / 2])
    assert nrmse(PRED, TARGET) == pytest.approx((np.sqrt(10) / 5 + np.sqrt(2) / 2) / 2)
    t = nrmse(torch.tensor(PRED), torch.tensor(TARGET))
    assert isinstance(t, torch.Tensor) and t.item() == pytest.approx(0.669781157)


def test_nrmse_flattens_channels_together_like_orca():
    pred = np.array([[[1.0, 0.0], [0.0, 0.0]]])          # (1, C=2, L=2)
    target = np.array([[[0.0, 0.0], [0.0, 2.0]]])
    # one norm over both channels: |d| = sqrt(1 + 4) = sqrt5, |y| = 2
    assert nrmse(pred, target) == pytest.approx(np.sqrt(5) / 2)


def test_rmse_hand_values():
    np.testing.assert_allclose(rmse_per_sample(PRED, TARGET), [np.sqrt(10 / 2), np.sqrt(2 / 2)])
    assert rmse(PRED, TARGET) == pytest.approx((np.sqrt(5) + 1) / 2)


def test_zero_target_is_guarded_not_nan():
    v = nrmse(np.ones((1, 3)), np.zeros((1, 3)))
    assert np.isfinite(v) and v > 1e6
    assert nrmse(np.zeros((1, 3)), np.zeros((1, 3))) == 0.0


def test_nrmse_is_differentiable_in_torch():
    p = torch.tensor(PRED, requires_grad=True)
    nrmse(p, torch.tensor(TARGET)).backward()
    # d/dp of |p-y|/|y| for sample 0 is (p-y)/(|p-y| |y|) / 2 samples
    np.testing.assert_allclose(p.grad[0, 0].numpy(), np.array([3.0, -1.0]) / (np.sqrt(10) * 5) / 2)


def test_pdebench_form_per_channel_and_time_and_initial_frames_excluded():
    # (B=1, C=2, T=2, X=2)
    target = np.array([[[[3.0, 4.0], [1.0, 0.0]], [[0.0, 2.0], [1.0, 1.0]]]])
    pred = target.copy()
    pred[0, 0, 1] = [1.0, 1.0]       # c0 t1: diff (0, 1), |y| = 1     -> ratio 1
    pred[0, 1, 1] = [1.0, 2.0]       # c1 t1: diff (0, 1), |y| = sqrt2 -> ratio 1/sqrt2
    pred[0, 0, 0] = [0.0, 0.0]       # c0 t0 (an input frame): ratio 1
    full = pdebench_nrmse(pred, target)
    assert full == pytest.approx((1 + 1 + 0 + 1 / np.sqrt(2)) / 4)
    assert pdebench_nrmse(pred, target, initial_step=1) == pytest.approx((1 + 1 / np.sqrt(2)) / 2)
    # RMSE over space per (c, t): sqrt(mean(d²)) = sqrt(1/2) for both frames at t1
    assert pdebench_rmse(pred, target, initial_step=1) == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="no frames left"):
        pdebench_nrmse(pred, target, initial_step=2)


def test_shape_mismatch_and_unknown_metric_are_clear():
    with pytest.raises(ValueError, match=r"prediction shape \(2, 2\) != target shape \(2, 3\)"):
        nrmse(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="known: nrmse, rmse"):
        get_metric("mae")
    assert get_metric("nrmse") is nrmse
