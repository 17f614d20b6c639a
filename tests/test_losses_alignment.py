"""Feature-alignment losses (recraft.losses.alignment): values, monotonicity, gradients."""
from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import torch
from scipy.special import logsumexp

from recraft.losses import (FAVariant, FeatureAlignment, class_conditional_alignment, cost_matrix,
                            entropic_ot, label_distances, otdd_source_terms, sinkhorn_divergence,
                            wasserstein_fa)

torch.set_num_threads(1)
SHIFTS = [0.0, 0.5, 1.0, 2.0]


def _cloud(n=24, d=3, seed=0, scale=0.5, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, d, generator=g)).to(dtype)


def _labelled_source(seed=0):
    """Two source classes 2 apart along axis 0 (tight clouds, so eps=0.1 Sinkhorn converges fast)."""
    s = _cloud(16, 2, seed=seed, scale=0.15, dtype=torch.float64)
    y = torch.arange(16) % 2
    s[y == 1, 0] += 2.0
    return s, y


# ---------------------------------------------------------------- cost matrix

def test_cost_matrix_values_exact_zero_and_finite_grad():
    s = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    t = torch.tensor([[0.0, 0.0], [0.0, 4.0], [3.0, 0.0]], requires_grad=True)
    c1 = cost_matrix(s, t, 1)
    np.testing.assert_allclose(c1.detach().numpy(), [[0, 4, 3], [5, 3, 4]], atol=1e-6)
    c2 = cost_matrix(s, t, 2)
    np.testing.assert_allclose(c2.detach().numpy(), [[0, 16, 9], [25, 9, 16]], atol=1e-5)
    assert c1[0, 0].item() == 0.0                      # identical points: exactly 0
    c1.sum().backward()                                # sqrt at 0 must not give NaN
    assert torch.isfinite(t.grad).all()
    big = _cloud(30, 5)
    np.testing.assert_allclose(cost_matrix(big, big, 1, exact=False).detach().numpy(),
                               cost_matrix(big, big, 1, exact=True).detach().numpy(), atol=2e-3)
    assert cost_matrix(big, big, 1, exact=True).diagonal().abs().max().item() == 0.0


# ---------------------------------------------------------------- identical clouds and shifts

def _w1_emd(s, t):
    return wasserstein_fa(s, t, method="emd")


def _w1_sinkhorn(s, t):
    return wasserstein_fa(s, t, method="sinkhorn", reg=0.1)


def _w1_sinkhorn_debiased(s, t):
    return wasserstein_fa(s, t, method="sinkhorn", reg=0.1, debias=True)


def _sdiv(s, t):
    return sinkhorn_divergence(s, t, reg=0.1)


def _otdd(s, t):
    y = torch.arange(s.shape[0]) % 2
    return class_conditional_alignment(s, y, t, y.clone(), reg=0.1)


VARIANTS = {"w1_emd": _w1_emd, "w1_sinkhorn": _w1_sinkhorn, "w1_sinkhorn_debiased": _w1_sinkhorn_debiased,
            "sinkhorn_div": _sdiv, "otdd": _otdd}


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")  # slow self-terms at shift 0
@pytest.mark.parametrize("name", list(VARIANTS))
def test_fa_zero_for_identical_then_grows_with_shift_and_has_gradient(name):
    fn = VARIANTS[name]
    src = _cloud(16, 3, seed=1, scale=0.3, dtype=torch.float64)
    values = []
    for shift in SHIFTS:
        tgt = (src + shift).clone().requires_grad_(True)
        loss = fn(src, tgt)
        loss.backward()
        values.append(loss.item())
        assert torch.isfinite(tgt.grad).all()
        if shift > 0:
            assert tgt.grad.abs().sum().item() > 1e-3
    if name == "w1_sinkhorn":   # entropic bias: small but positive at zero shift
        assert 0.0 < values[0] < 0.25 * values[1]
    elif name in ("w1_emd", "w1_sinkhorn_debiased", "sinkhorn_div"):
        assert values[0] == 0.0
    else:
        assert abs(values[0]) < 1e-8
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_w1_emd_matches_1d_closed_form_and_epsilon_scales_linearly():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(25, 1, generator=g, dtype=torch.float64)
    y = (1.5 * torch.randn(25, 1, generator=g, dtype=torch.float64) + 0.7).requires_grad_(True)
    closed = (torch.sort(x[:, 0]).values - torch.sort(y.detach()[:, 0]).values).abs().mean().item()
    w1 = wasserstein_fa(x, y, method="emd")
    assert w1.item() == pytest.approx(closed, rel=1e-12)
    w1.backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    # W2 too: sqrt(mean squared sorted difference)
    closed2 = (torch.sort(x[:, 0]).values - torch.sort(y.detach()[:, 0]).values).pow(2).mean().sqrt()
    assert wasserstein_fa(x, y.detach(), method="emd", p=2).item() == pytest.approx(closed2.item(), rel=1e-10)
    # epsilon multiplies W linearly (both solvers)
    for kw in (dict(method="emd"), dict(method="sinkhorn", reg=0.1)):
        base = wasserstein_fa(x, y.detach(), epsilon=1.0, **kw).item()
        for eps in (0.3, 0.5, 2.0):
            scaled = wasserstein_fa(x, y.detach(), epsilon=eps, **kw).item()
            assert scaled == pytest.approx(eps * base, rel=1e-12)


def test_w1_sinkhorn_matches_pot_sinkhorn2_and_reg_interpretation():
    s, t = _cloud(12, 2, seed=4, dtype=torch.float64), _cloud(9, 2, seed=5, dtype=torch.float64) + 1.0
    m = cost_matrix(s, t, 1)
    a, b = torch.full((12,), 1 / 12, dtype=torch.float64), torch.full((9,), 1 / 9, dtype=torch.float64)
    # relative reg: POT reg = 0.1 * mean(C)
    ref = ot.sinkhorn2(a, b, m, 0.1 * m.mean().item(), method="sinkhorn_log", numItermax=5000, stopThr=1e-12)
    assert wasserstein_fa(s, t, reg=0.1, stop_thr=1e-12).item() == pytest.approx(ref.item(), rel=1e-9)
    ref_abs = ot.sinkhorn2(a, b, m, 0.05, method="sinkhorn_log", numItermax=5000, stopThr=1e-12)
    got_abs = wasserstein_fa(s, t, reg=0.05, reg_relative=False, stop_thr=1e-12, num_iter_max=5000)
    assert got_abs.item() == pytest.approx(ref_abs.item(), rel=1e-9)
    # relative reg makes the loss scale-equivariant; emd is a lower bound of the entropic plan's cost
    assert wasserstein_fa(3 * s, 3 * t, reg=0.1).item() == pytest.approx(
        3 * wasserstein_fa(s, t, reg=0.1).item(), rel=1e-6)
    assert wasserstein_fa(s, t, method="emd").item() <= wasserstein_fa(s, t, reg=0.1).item()
    # the unrolled (autodiff) gradient and the envelope gradient agree in direction
    grads = []
    for grad in ("envelope", "autodiff"):
        tt = t.clone().requires_grad_(True)
        wasserstein_fa(s, tt, reg=0.1, grad=grad).backward()
        assert torch.isfinite(tt.grad).all()
        grads.append(tt.grad.flatten())
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0).item() > 0.95


def test_float32_input_gives_float32_loss_with_gradient():
    s = _cloud(20, 4, seed=6)
    t = (_cloud(15, 4, seed=7) + 0.5).requires_grad_(True)
    for loss in (wasserstein_fa(s, t), wasserstein_fa(s, t, method="emd"), sinkhorn_divergence(s, t)):
        assert loss.dtype == torch.float32 and loss.requires_grad
        loss.backward()
    assert torch.isfinite(t.grad).all()


# ---------------------------------------------------------------- sinkhorn divergence vs numpy

def _np_entropic_ot(x, y, eps, iters=20000):
    """Independent float64 log-domain Sinkhorn: <pi, C> + eps KL(pi | a x b), C = |x-y|^2 / 2."""
    c = 0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    la, lb = np.full(len(x), -np.log(len(x))), np.full(len(y), -np.log(len(y)))
    f, g = np.zeros(len(x)), np.zeros(len(y))
    for it in range(iters):
        f = -eps * logsumexp(lb[None, :] + (g[None, :] - c) / eps, axis=1)
        g = -eps * logsumexp(la[:, None] + (f[:, None] - c) / eps, axis=0)
        if it % 20 == 0:   # stop once the row marginal is met to 1e-15
            row = np.exp(la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - c) / eps).sum(1)
            if np.abs(row - np.exp(la)).max() < 1e-15:
                break
    else:
        raise AssertionError("reference Sinkhorn did not converge")
    log_pi = la[:, None] + lb[None, :] + (f[:, None] + g[None, :] - c) / eps
    pi = np.exp(log_pi)
    kl = (pi * (log_pi - la[:, None] - lb[None, :])).sum()
    return (pi * c).sum() + eps * kl, pi


def test_sinkhorn_divergence_matches_independent_numpy_computation_and_envelope_gradient():
    s = _cloud(7, 2, seed=8, dtype=torch.float64)
    t = (_cloud(5, 2, seed=9, dtype=torch.float64) + 0.4).requires_grad_(True)
    eps = 0.1
    sn, tn = s.numpy(), t.detach().numpy()
    ab, pi_st = _np_entropic_ot(sn, tn, eps)
    aa, _ = _np_entropic_ot(sn, sn, eps)
    bb, pi_tt = _np_entropic_ot(tn, tn, eps)
    expected = ab - 0.5 * aa - 0.5 * bb
    got = sinkhorn_divergence(s, t, reg=eps, stop_thr=1e-13, num_iter_max=20000)
    assert got.item() == pytest.approx(expected, rel=1e-7, abs=1e-10)
    assert expected > 0
    # the precomputed source self-term gives the same value
    self_term = entropic_ot(s, s, reg=eps, stop_thr=1e-13, num_iter_max=20000)
    assert sinkhorn_divergence(s, t.detach(), reg=eps, source_self=self_term, stop_thr=1e-13,
                               num_iter_max=20000).item() == pytest.approx(got.item(), rel=1e-12)
    # gradient = envelope formula: sum_i pi_ij (t_j - s_i) - sum_l pi^TT_jl (t_j - t_l)
    got.backward()
    grad = (pi_st.sum(0)[:, None] * tn - pi_st.T @ sn) - (pi_tt.sum(1)[:, None] * tn - pi_tt @ tn)
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-6, atol=1e-9)


def test_sinkhorn_divergence_tends_to_half_w2_squared_for_small_reg():
    s = _cloud(6, 2, seed=10, dtype=torch.float64)
    t = _cloud(6, 2, seed=11, dtype=torch.float64) + 1.0
    w = torch.full((6,), 1 / 6, dtype=torch.float64)
    exact = ot.emd2(w, w, 0.5 * cost_matrix(s, t, 2)).item()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = sinkhorn_divergence(s, t, reg=0.005, num_iter_max=5000).item()
    assert small == pytest.approx(exact, rel=2e-2)


# ---------------------------------------------------------------- ORCA's class-conditional alignment

@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")  # mixed clusters: slow, coarse is enough
def test_otdd_lower_when_clusters_match_source_classes_than_when_mixed():
    s, y = _labelled_source()
    t = s.clone() + 0.1
    terms = otdd_source_terms(s, y)
    aligned = class_conditional_alignment(s, y, t, y.clone(), source_terms=terms)
    mixed_labels = torch.tensor([0, 0, 1, 1] * 4)  # each cluster holds half of each source class
    mixed = class_conditional_alignment(s, y, t, mixed_labels, source_terms=terms, num_iter_max=200)
    feature_only = sinkhorn_divergence(s, t)       # the labels are what makes the difference
    assert aligned.item() < 0.1 * mixed.item()
    # a pure shift d costs 1/2|d|^2 in features plus 1/2 W^2(S_y, T_y) = 1/2|d|^2 in labels
    assert feature_only.item() == pytest.approx(0.5 * 0.02, rel=1e-6)
    assert aligned.item() == pytest.approx(2 * feature_only.item(), rel=1e-3)
    # per-cluster (ORCA's loop): sum_k w_k OTDD((S, y), (T_k, one label)); each cluster is compared
    # with the whole labelled source, so here a mixed cluster (covering both classes) costs less
    for labels in (y.clone(), mixed_labels):
        kw = dict(source_terms=terms, num_iter_max=200)
        dist = label_distances(s, y, t, labels, source_terms=terms, target_pairs=False)
        per = class_conditional_alignment(s, y, t, labels, per_cluster=True, distances=dist, **kw)
        weights = torch.tensor([0.25, 0.75])
        per_w = class_conditional_alignment(s, y, t, labels, per_cluster=True, cluster_weights=weights,
                                            distances=dist, **kw)
        parts = [class_conditional_alignment(s, y, t[labels == c], labels[labels == c], **kw)
                 for c in (0, 1)]
        assert per.item() == pytest.approx(0.5 * (parts[0] + parts[1]).item(), rel=1e-10)
        assert per_w.item() == pytest.approx((0.25 * parts[0] + 0.75 * parts[1]).item(), rel=1e-10)


@pytest.mark.filterwarnings("error:Sinkhorn did not converge")  # the envelope gradient needs it
def test_otdd_gradient_flows_only_through_feature_term():
    s, y = _labelled_source(seed=2)
    k = y.clone()
    k[:4] = 1 - k[:4]                              # imperfect clusters: label term depends on t
    t0 = (s.clone() + 0.3)
    # outer reg 0.5 instead of 0.1 and plain Sinkhorn (no eps scaling, which stalls slightly above
    # 1e-9 on these balanced two-mode clouds) so that every problem converges to 1e-9 (the envelope
    # gradient is exact only at convergence)
    kw = dict(reg=0.5, eps_scaling=None, num_iter_max=20000)
    terms = otdd_source_terms(s, y, **kw)
    assert not terms.class_distances.requires_grad and not terms.self_value.requires_grad
    t = t0.clone().requires_grad_(True)
    dist = label_distances(s, y, t, k, source_terms=terms)
    assert not dist.source_target.requires_grad and not dist.target_target.requires_grad
    loss = class_conditional_alignment(s, y, t, k, source_terms=terms, **kw)
    assert loss.requires_grad
    loss.backward()

    def frozen(tt):    # label distances held at their value at t0
        return class_conditional_alignment(s, y, tt, k, source_terms=terms, distances=dist, **kw).item()

    def full(tt):      # label distances recomputed at tt
        return class_conditional_alignment(s, y, tt, k, source_terms=terms, **kw).item()

    h = 1e-5
    fd_frozen, fd_full = [], []
    for idx in [(0, 0), (3, 1), (14, 1)]:
        tp, tm = t0.clone(), t0.clone()
        tp[idx] += h
        tm[idx] -= h
        fd_frozen.append((frozen(tp) - frozen(tm)) / (2 * h))
        fd_full.append((full(tp) - full(tm)) / (2 * h))
    autograd = [t.grad[idx].item() for idx in [(0, 0), (3, 1), (14, 1)]]
    np.testing.assert_allclose(autograd, fd_frozen, rtol=1e-4, atol=1e-6)
    assert np.abs(np.array(fd_full) - np.array(autograd)).max() > 1e-3  # label term is excluded


# ---------------------------------------------------------------- picking by string

def test_feature_alignment_by_string_matches_functions_and_caches_source_terms():
    s, y = _labelled_source(seed=3)
    t = (s + 0.2).float().double()
    assert FeatureAlignment("w1", s, method="emd")(t).item() == pytest.approx(
        wasserstein_fa(s, t, method="emd").item(), rel=1e-12)
    fa = FeatureAlignment(FAVariant.SINKHORN_DIV, s, scale=2.0)
    assert fa(t).item() == pytest.approx(2 * sinkhorn_divergence(s, t).item(), rel=1e-10)
    cached = fa.source_terms()
    fa(t + 0.1)
    assert fa.source_terms() is cached
    fa_otdd = FeatureAlignment("otdd", s, y)
    tt = t.clone().requires_grad_(True)
    loss = fa_otdd(tt, y.clone())
    assert loss.item() == pytest.approx(class_conditional_alignment(s, y, t, y.clone()).item(), rel=1e-10)
    loss.backward()
    assert torch.isfinite(tt.grad).all()
    with pytest.raises(ValueError):
        FeatureAlignment("otdd", s)
    with pytest.raises(ValueError):
        fa_otdd(t)
    with pytest.raises(ValueError):
        FeatureAlignment("w2", s)
    assert [v.value for v in FAVariant] == ["w1", "sinkhorn_div", "otdd"]


def test_eps_scaling_converges_where_plain_sinkhorn_stalls():
    s, _ = _labelled_source(seed=3)            # two modes 2 apart: plain Sinkhorn at eps=0.1 stalls
    t = s + 0.2
    with pytest.warns(UserWarning, match="did not converge"):
        plain = sinkhorn_divergence(s, t, eps_scaling=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # converges (to the default 1e-9) with scaling
        scaled = sinkhorn_divergence(s, t)
    # a pure translation d has S_eps = 1/2 |d|^2 exactly
    assert scaled.item() == pytest.approx(0.5 * 2 * 0.2 ** 2, rel=1e-8)
    assert plain.item() == pytest.approx(scaled.item(), rel=1e-3)
