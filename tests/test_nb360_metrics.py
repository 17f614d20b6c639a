"""Task metrics and losses against hand-computed values (published and upstream variants)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.metrics import get_metric
from harness.scoring import losses
from harness.suites import get_suite


def test_every_task_metric_and_upstream_variant_is_registered():
    for t in get_suite("nasbench360").values():
        assert callable(get_metric(t.metric.name))
        if t.metric.upstream:
            assert callable(get_metric(t.metric.upstream))
    with pytest.raises(ValueError, match="unknown metric 'nope'.*error_rate"):
        get_metric("nope")


def test_error_rate_and_chunked_upstream():
    logits = np.array([[2, 1], [0, 3], [1, 0], [0, 1]], float)
    target = np.array([0, 1, 1, 1])
    assert get_metric("error_rate")(logits, target) == pytest.approx(0.25)
    # chunks of 3 and 1: errors 1/3 and 0, averaged
    assert get_metric("error_rate_upstream")(logits, target, chunk=3) == pytest.approx(1 / 6)
    assert get_metric("error_rate")(torch.tensor(logits), torch.tensor(target)) == pytest.approx(0.25)


def test_macro_f1_error_by_hand():
    target = np.array([0, 0, 1, 2, 3, 3])
    pred = np.eye(4)[[0, 1, 1, 2, 3, 0]]
    # F1 per class: 0: P=R=1/2 → 1/2; 1: P=1/2 R=1 → 2/3; 2: 1; 3: P=1 R=1/2 → 2/3
    want = 1 - (0.5 + 2 / 3 + 1 + 2 / 3) / 4
    assert get_metric("f1_error")(pred, target) == pytest.approx(want)
    # a class predicted but never true scores 0: (2/3 + 1 + 0) / 3
    pred2 = np.eye(4)[[0, 2, 1, 1]]
    assert get_metric("f1_error")(pred2, np.array([0, 0, 1, 1])) == pytest.approx(1 - (2 / 3 + 1) / 3)
    # upstream: per chunk of 2 over the labels present in each chunk
    t3, p3 = np.array([0, 0, 1, 2]), np.eye(4)[[0, 0, 1, 1]]
    chunk1 = 0.0                                     # [0, 0] vs [0, 0]: perfect
    chunk2 = 1 - (1 * 2 / 3 + 0) / 2                 # class 1: P=1/2 R=1 → 2/3; class 2: 0
    assert get_metric("f1_error_upstream")(p3, t3, chunk=2) == pytest.approx((chunk1 + chunk2) / 2)


def _ml():
    scores = np.array([[0.9, 0.2, 0.5], [0.8, 0.7, 0.1], [0.3, 0.6, 0.3], [0.1, 0.1, 0.2]])
    target = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    return scores, target


def test_map_error_by_hand_and_all_labels_upstream():
    scores, target = _ml()
    # label 0 ranks 1,0,1,0 → AP = (1 + 2/3)/2; label 1: the positive ranks first → 1; label 2: none
    ap0 = (1 + 2 / 3) / 2
    assert get_metric("map_error")(scores, target) == pytest.approx(1 - (ap0 + 1) / 2)
    assert get_metric("map_error_upstream")(scores, target) == pytest.approx(1 - (ap0 + 1 + 0) / 3)


def test_map_error_averages_chunk_logits_per_clip():
    # clip 7 has two chunks whose mean (0.5) beats clip 3 (0.4) on the one label
    chunks = np.array([[0.4], [0.0], [1.0], [0.45]])
    target = np.array([[0], [1], [1], [0]])
    clip = np.array([3, 7, 7, 9])
    assert get_metric("map_error")(chunks, target, clip=clip) == pytest.approx(0.0)
    assert get_metric("map_error")(chunks, target) > 0.0        # per chunk it is not perfect


def test_mean_auroc_error_by_hand_and_chunked_upstream():
    scores, target = _ml()
    # label 0: positives {0.9, 0.3} vs negatives {0.8, 0.1}: 3 of 4 pairs → 0.75; label 1: 1.0
    assert get_metric("mean_auroc_error")(scores, target) == pytest.approx(1 - (0.75 + 1.0) / 2)
    # upstream, chunks of 2: rows 0-1 give AUCs 1 and 1; rows 2-3 give 1 (label 1 and 2 undefined)
    assert get_metric("mean_auroc_error_upstream")(scores, target, chunk=2) == pytest.approx(0.0)
    assert get_metric("mean_auroc_error_upstream")(scores, target, chunk=4) == pytest.approx(0.125)


def test_rel_l2_by_hand():
    pred = np.array([[3.0, 4.0], [1.0, 1.0]])
    target = np.array([[3.0, 0.0], [1.0, 1.0]])
    assert get_metric("rel_l2")(pred, target) == pytest.approx((4 / 3 + 0) / 2)


def _protein(length: int, c: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Window maps (pad 5): true distances 20 except a few long-range contacts."""
    t = np.full((c, c), 100.0)
    t[5:5 + length, 5:5 + length] = 20.0
    return t, t.copy()


def _set(m, i, j, upper, lower=None):
    m[5 + i, 5 + j] = upper
    m[5 + j, 5 + i] = upper if lower is None else lower


def test_mae8_published_and_upstream_by_hand():
    t1, p1 = _protein(30)
    for i, j in ((0, 24), (0, 25), (1, 29)):
        _set(t1, i, j, 5.0)
    _set(t1, 2, 28, 9.0)                   # not a contact (> 8 Å): never scored
    _set(p1, 0, 24, 7.0, 5.0)              # symmetrised 6 → |6 - 5| = 1
    _set(p1, 0, 25, 5.0)                   # exact
    _set(p1, 1, 29, 3.0)                   # |3 - 5| = 2
    _set(p1, 2, 28, 0.0)
    t2, p2 = _protein(26)
    _set(t2, 0, 24, 4.0)
    _set(t2, 1, 25, 6.0)
    _set(p2, 0, 24, 4.0)
    _set(p2, 1, 25, 8.0)                   # |8 - 6| = 2 → protein 2: (0 + 2) / 2 = 1
    pred, target = np.stack([p1, p2])[:, None], np.stack([t1, t2])[:, None]
    mae8, up = get_metric("mae8"), get_metric("mae8_upstream")
    assert mae8(pred[:1], target[:1], length=[30]) == pytest.approx((1 + 0 + 2) / 3)
    assert mae8(pred, target, length=[30, 26]) == pytest.approx((1.0 + 1.0) / 2)
    # upstream averages ¾ lower + ¼ upper: (0,24) → 0.75·5 + 0.25·7 = 5.5 → 0.5
    assert up(pred[:1], target[:1], length=[30]) == pytest.approx((0.5 + 0 + 2) / 3)
    # ... and scores every protein on the first one's length: [26, 30] drops pair (1, 29)
    assert up(pred, target, length=[26, 30]) == pytest.approx(((0.5 + 0) / 2 + 1.0) / 2)
    assert mae8(pred, target, length=[26, 30]) != up(pred, target, length=[26, 30])


def test_mae8_protein_without_contacts_is_skipped_published_inf_upstream():
    t, p = _protein(30)
    _set(t, 0, 24, 5.0)
    _set(p, 0, 24, 6.0)
    empty_t, empty_p = _protein(30)
    pred, target = np.stack([p, empty_p])[:, None], np.stack([t, empty_t])[:, None]
    assert get_metric("mae8")(pred, target, length=[30, 30]) == pytest.approx(1.0)
    assert math.isinf(get_metric("mae8_upstream")(pred, target, length=[30, 30]))
    with pytest.raises(ValueError, match="needs each protein's length"):
        get_metric("mae8")(pred, target)


def test_pixel_auroc_published_and_binarised_upstream_by_hand():
    logits = np.array([[[[2.0, -1.0], [0.5, -3.0]]]])
    mask = np.array([[[[1, 0], [0, 1]]]])
    ignore = np.array([[[[0, 0], [0, 1]]]])
    pub, up = get_metric("pixel_auroc_error"), get_metric("pixel_auroc_error_upstream")
    assert pub(logits, mask, ignore=ignore) == pytest.approx(0.0)       # 2 beats -1 and 0.5
    assert pub(logits, mask) == pytest.approx(0.5)                      # -3 now a positive
    # upstream: masked logits [2, -1, 0.5, 0] > 0 → [1, 0, 1, 0]; mask [1, 0, 0, 0]:
    # TPR 1, TNR 2/3 → AUC 5/6
    assert up(logits, mask, ignore=ignore) == pytest.approx(1 - 5 / 6)


def test_losses_by_hand():
    ce = losses.cross_entropy(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1]))
    assert ce.item() == pytest.approx(-math.log(0.75))
    b = losses.bce(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), pos_weight=10.0)
    assert b.item() == pytest.approx((10 * math.log(2) + math.log(2)) / 2)
    m = losses.bce_masked(torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]]),
                          ignore=torch.tensor([[0.0, 1.0]]))
    assert m.item() == pytest.approx((math.log(1 + math.exp(-2)) + math.log(2)) / 2)
    r = losses.rel_l2(torch.tensor([[3.0, 4.0], [1.0, 1.0]]), torch.tensor([[3.0, 0.0], [1.0, 1.0]]))
    assert r.item() == pytest.approx(4 / 3)                             # summed over the batch
    assert losses.mse(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 0.0]])).item() == pytest.approx(5.0)


def test_task_loss_binds_upstream_positive_weights():
    t = get_suite("nasbench360")
    logits, target = torch.zeros(1, 200), torch.zeros(1, 200)
    target[0, 0] = 1.0
    got = losses.task_loss(t["fsd50k"])(logits, target).item()
    assert got == pytest.approx((10 * math.log(2) + 199 * math.log(2)) / 200)
    x = torch.randn(3, 36, requires_grad=True)
    losses.task_loss(t["deepsea"])(x, torch.ones(3, 36)).backward()
    assert x.grad is not None
    assert losses.task_loss(t["ecg"]) is losses.cross_entropy
