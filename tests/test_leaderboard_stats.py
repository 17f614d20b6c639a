"""Cross-task statistics: the q_alpha table, the Nemenyi CD, Friedman/Wilcoxon and the groups."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.leaderboard import stats as st


def test_q_alpha_table_matches_the_studentized_range():
    for k in range(2, 11):
        exact = stats.studentized_range.ppf(0.95, k, np.inf) / math.sqrt(2)
        assert st.Q_ALPHA_005[k] == pytest.approx(exact, abs=1e-6)
    # Demšar (2006), Table 5(a)
    demsar = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    assert [round(st.q_alpha(k), 3) for k in range(2, 11)] == pytest.approx(demsar, abs=1e-3)
    with pytest.raises(ValueError):
        st.q_alpha(1)


def test_nemenyi_cd_k4_n8():
    cd = st.critical_difference(4, 8)
    assert cd == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 8)), abs=1e-3)
    assert cd == pytest.approx(1.658, abs=1e-3)
    # more blocks, smaller CD; more methods, larger CD
    assert st.critical_difference(4, 16) < cd < st.critical_difference(5, 8)


def test_nemenyi_groups_are_maximal_runs():
    ranks = {"a": 1.0, "b": 1.5, "c": 2.9, "d": 4.0}
    # CD 1.658: a-b (0.5), b-c (1.4) < CD, a-c (1.9) not, c-d (1.1) < CD
    assert st.nemenyi_groups(ranks, 1.658) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert st.nemenyi_groups(ranks, 0.4) == []
    assert st.nemenyi_groups(ranks, 10.0) == [("a", "b", "c", "d")]


def test_friedman_p_value_equals_scipy_and_uses_average_ranks():
    rng = np.random.default_rng(1)
    arr = np.round(rng.uniform(0.01, 0.1, size=(8, 4)), 3)
    arr[0, 1] = arr[0, 2]  # a tie inside a block: fractional ranks 2.5/2.5 (or similar)
    values = pd.DataFrame(arr, columns=list("abcd"), index=[f"t{i}" for i in range(8)])
    sig = st.significance_test(values)
    ref = stats.friedmanchisquare(*arr.T)
    assert sig.test == "friedman" and sig.n_blocks == 8
    assert sig.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert sig.statistic == pytest.approx(ref.statistic, rel=1e-12)
    expected = stats.rankdata(arr, method="average", axis=1).mean(axis=0)
    assert [sig.mean_ranks[m] for m in "abcd"] == pytest.approx(expected)
    assert sum(sig.mean_ranks.values()) == pytest.approx(4 * 5 / 2)
    assert sig.cd == pytest.approx(1.658, abs=1e-3)


def test_no_test_below_five_complete_blocks():
    values = pd.DataFrame({"a": [1, 2, 3, 4, 5, 6.0], "b": [2, 3, 4, 5, 6, np.nan],
                           "c": [3, 1, 5, np.nan, 7, 8.0]})
    sig = st.significance_test(values)
    assert not sig.ran and sig.n_blocks == 4 and math.isnan(sig.pvalue)
    assert "only 4 of 6" in sig.reason and "at least 5" in sig.reason
    values.loc[3, "c"] = 9.0  # now 5 complete blocks
    sig = st.significance_test(values)
    assert sig.ran and sig.n_blocks == 5 and sig.blocks == ["0", "1", "2", "3", "4"]


def test_two_methods_use_wilcoxon():
    a = np.array([0.10, 0.20, 0.30, 0.40, 0.50, 0.60])
    b = np.array([0.12, 0.25, 0.31, 0.47, 0.52, 0.69])
    sig = st.significance_test(pd.DataFrame({"a": a, "b": b}))
    assert sig.test == "wilcoxon"
    assert sig.pvalue == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert "Wilcoxon" in st.describe(sig) and "not Friedman" in st.describe(sig)


def test_all_tied_blocks_give_p_one():
    sig = st.significance_test(pd.DataFrame(np.full((6, 3), 0.5), columns=list("abc")))
    assert (sig.test, sig.statistic, sig.pvalue) == ("friedman", 0.0, 1.0)
    assert sig.groups == [("a", "b", "c")] and not sig.significant
