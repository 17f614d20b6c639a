"""Target discretisation for FLD / OTDD (recraft.discretise)."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from recraft.discretise import class_weights, discretise_targets


def _groups(n_per=(20, 15, 25), seed=0):
    """Three well-separated groups of (1, 16) 'fields', shuffled."""
    rng = np.random.default_rng(seed)
    centres = np.array([-10.0, 0.0, 10.0])
    truth = np.concatenate([np.full(n, g) for g, n in enumerate(n_per)])
    y = centres[truth][:, None, None] + 0.3 * rng.standard_normal((len(truth), 1, 16))
    perm = rng.permutation(len(truth))
    return y[perm], truth[perm]


def test_recovers_well_separated_groups_and_is_deterministic():
    y, truth = _groups()
    labels = discretise_targets(y, n_classes=3, seed=0)
    assert labels.dtype == np.int64 and labels.shape == (60,)
    assert set(labels.tolist()) == {0, 1, 2}
    assert adjusted_rand_score(truth, labels) == 1.0
    assert labels[0] == 0                                   # ids numbered by first appearance
    assert np.array_equal(labels, discretise_targets(y, n_classes=3, seed=0))
    assert np.array_equal(labels, discretise_targets(y, n_classes=3, seed=5))  # clear groups: same


def test_default_k_and_seed_determinism_on_unstructured_data():
    y = np.random.default_rng(1).standard_normal((80, 1, 8)).astype(np.float32)
    a = discretise_targets(y, seed=3)
    assert set(a.tolist()) == set(range(10))
    assert np.array_equal(a, discretise_targets(y, seed=3))


def test_minibatch_kmeans_above_threshold():
    y, truth = _groups(n_per=(30, 30, 30), seed=2)
    labels = discretise_targets(y, n_classes=3, seed=0, minibatch_threshold=50, batch_size=32)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.array_equal(labels, discretise_targets(y, n_classes=3, seed=0, minibatch_threshold=50,
                                                     batch_size=32))


def test_fewer_distinct_samples_than_k_reduces_k_with_a_warning():
    base = np.arange(4, dtype=np.float64)[:, None] * np.ones((4, 5))
    y = np.repeat(base, 3, axis=0)                           # 12 samples, 4 distinct
    with pytest.warns(UserWarning, match="4 distinct"):
        labels = discretise_targets(y, n_classes=10)
    assert sorted(set(labels.tolist())) == [0, 1, 2, 3]
    assert adjusted_rand_score(np.repeat(np.arange(4), 3), labels) == 1.0
    with pytest.warns(UserWarning):
        assert discretise_targets(np.ones((5, 3)), n_classes=4).tolist() == [0] * 5


def test_class_weights():
    labels = np.array([0, 0, 1, 2, 2, 2, 2, 1])
    w = class_weights(labels)
    np.testing.assert_allclose(w, [2 / 8, 2 / 8, 4 / 8])
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(class_weights(labels, n_classes=5), [0.25, 0.25, 0.5, 0, 0])
    y, _ = _groups()
    assert class_weights(discretise_targets(y, 3)).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        class_weights(labels, n_classes=2)
