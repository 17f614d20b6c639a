"""Feature-alignment losses (recraft.losses) and the OT solvers under them (recraft.ot): values,
monotonicity, gradients."""
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
from recraft.ot import SOLVERS, record_sinkhorn, sinkhorn_potentials
from recraft.ot import sinkhorn as sk
from recraft.ot.value import ot_value

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


def test_w1_emd_matches_1d_closed_form():
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
        # (the label distances come from batched solves that stop together: equal to ~1e-7)
        assert per.item() == pytest.approx(0.5 * (parts[0] + parts[1]).item(), rel=1e-6)
        assert per_w.item() == pytest.approx((0.25 * parts[0] + 0.75 * parts[1]).item(), rel=1e-6)


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
    fa = FeatureAlignment(FAVariant.SINKHORN_DIV, s)
    assert fa(t).item() == pytest.approx(sinkhorn_divergence(s, t).item(), rel=1e-10)
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


# ---------------------------------------------------------------- the torch solver (default) vs POT

# POT run to (near) machine precision: the reference for the torch solver at its defaults
POT_TIGHT = dict(solver="pot", stop_thr=1e-13, num_iter_max=100_000)


def _pair(seed=20):
    """20 source x 15 target points in 3-D, overlapping (every solver converges tightly)."""
    s = _cloud(20, 3, seed=seed, dtype=torch.float64)
    t = _cloud(15, 3, seed=seed + 1, dtype=torch.float64) + 0.3
    return s, t


def _plan(f, g, c, reg):
    n, m = c.shape
    return torch.exp((f[:, None] + g[None, :] - c) / reg) / (n * m)


@pytest.mark.parametrize("seed", [22, 24])
def test_torch_solver_values_match_converged_pot(seed):
    s, t = _pair(seed)
    y, k = torch.arange(20) % 2, torch.arange(15) % 2
    # entropic objectives: the torch value is the dual objective, second order in the marginal
    # error, so at the default stop_thr (1e-6 L1) it matches POT's converged primal to ~1e-12
    exact = dict(rel=1e-10, abs=1e-12)
    assert entropic_ot(s, t).item() == pytest.approx(entropic_ot(s, t, **POT_TIGHT).item(), **exact)
    assert entropic_ot(t, t).item() == pytest.approx(entropic_ot(t, t, **POT_TIGHT).item(), **exact)
    assert sinkhorn_divergence(s, t).item() == pytest.approx(
        sinkhorn_divergence(s, t, **POT_TIGHT).item(), **exact)
    # the w1 path returns the linear cost <pi, C> of the plan: first order in the marginal error
    # (measured 2e-8 .. 2e-7 relative at stop_thr=1e-6), tight when the torch solve is tight
    for kw in (dict(), dict(reg=0.05, reg_relative=False), dict(p=2, debias=True)):
        ref = wasserstein_fa(s, t, **kw, **POT_TIGHT).item()
        assert wasserstein_fa(s, t, **kw).item() == pytest.approx(ref, rel=1e-6)
        assert wasserstein_fa(s, t, stop_thr=1e-12, **kw).item() == pytest.approx(ref, rel=1e-10)
    # OTDD, the inner problems converged too so that both solvers compute the same label
    # distances (inner_reg=0.5: at 0.1, POT's two-sided inner self-terms OT(S_c, S_c) stop short
    # after 1e5 iterations, ~1e-8 off, where the symmetric iteration converges in ~25)
    for per_cluster in (False, True):
        kw = dict(per_cluster=per_cluster, inner_num_iter_max=100_000, inner_reg=0.5)
        ref = class_conditional_alignment(s, y, t, k, **kw, **POT_TIGHT).item()
        assert class_conditional_alignment(s, y, t, k, **kw).item() == pytest.approx(ref, rel=1e-6)
        tight = class_conditional_alignment(s, y, t, k, stop_thr=1e-12, **kw).item()
        assert tight == pytest.approx(ref, rel=1e-10)


def test_torch_solver_gradient_matches_pot_and_finite_differences():
    s, t0 = _pair(22)
    for fn in (sinkhorn_divergence, entropic_ot, wasserstein_fa):
        grads = {}
        for name, kw in (("torch", {}), ("torch_tight", dict(stop_thr=1e-12)), ("pot", POT_TIGHT)):
            t = t0.clone().requires_grad_(True)
            fn(s, t, **kw).backward()
            grads[name] = t.grad.numpy()
        scale = np.abs(grads["pot"]).max()
        # the gradient is the plan: first order in the marginal error (default 1e-6 L1)
        np.testing.assert_allclose(grads["torch"], grads["pot"], rtol=0, atol=1e-5 * scale)
        np.testing.assert_allclose(grads["torch_tight"], grads["pot"], rtol=0, atol=1e-10 * scale)
    # envelope gradient of the Sinkhorn divergence = central finite differences (tiny case)
    s, t0 = _cloud(5, 2, seed=30, dtype=torch.float64), _cloud(4, 2, seed=31, dtype=torch.float64) + 0.5
    t = t0.clone().requires_grad_(True)
    sinkhorn_divergence(s, t, stop_thr=1e-12).backward()
    h, fd = 1e-6, np.zeros(t0.shape)
    for i in range(t0.shape[0]):
        for j in range(t0.shape[1]):
            tp, tm = t0.clone(), t0.clone()
            tp[i, j] += h
            tm[i, j] -= h
            fd[i, j] = (sinkhorn_divergence(s, tp, stop_thr=1e-12).item()
                        - sinkhorn_divergence(s, tm, stop_thr=1e-12).item()) / (2 * h)
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-6, atol=1e-9)


def test_symmetric_self_term_equals_generic_solve_in_fewer_iterations():
    x = _cloud(30, 3, seed=40, dtype=torch.float64)
    c = 0.5 * cost_matrix(x, x, 2)
    kw = dict(stop_thr=1e-12, num_iter_max=100_000)
    with record_sinkhorn() as stats:
        sym = ot_value(c, 0.1, symmetric=True, **kw)
        gen = ot_value(c, 0.1, symmetric=False, **kw)
    assert sym.item() == pytest.approx(gen.item(), rel=1e-10)
    assert [st.symmetric for st in stats] == [True, False]
    assert stats[0].iterations < stats[1].iterations
    f, g, _ = sinkhorn_potentials(c, 0.1, symmetric=True, **kw)
    assert f is g
    fg, gg, _ = sinkhorn_potentials(c, 0.1, **kw)
    torch.testing.assert_close(_plan(f, g, c, 0.1), _plan(fg, gg, c, 0.1), rtol=0, atol=1e-12)
    # the losses route self-terms (same points, whatever the tensor) through it
    with record_sinkhorn() as stats:
        entropic_ot(x, x)
        entropic_ot(x, x.clone())
        entropic_ot(x, x + 1e-3)
    assert [st.symmetric for st in stats] == [True, True, False]
    with record_sinkhorn() as stats:
        sinkhorn_divergence(x, x + 0.1)
    assert [st.symmetric for st in stats] == [False, True, True]


def test_sinkhorn_divergence_torch_is_zero_for_identical_clouds_and_nonnegative():
    x = _cloud(25, 4, seed=41, dtype=torch.float64)
    t = x.clone().requires_grad_(True)
    loss = sinkhorn_divergence(x, t)
    assert loss.item() == 0.0                      # the three problems are the same one
    loss.backward()
    assert t.grad.abs().max().item() < 1e-6        # the minimum: zero gradient (to the tolerance)
    for seed in range(6):
        s = _cloud(20, 3, seed=50 + seed, dtype=torch.float64)
        t = _cloud(18, 3, seed=60 + seed, dtype=torch.float64) * (0.5 + 0.2 * seed) + 0.05 * seed
        assert sinkhorn_divergence(s, t).item() >= -1e-12


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")  # POT's default 1e-9 in float32
def test_float32_in_float32_out_both_solvers():
    s64, t64 = _pair(26)
    s, t0 = s64.float(), t64.float()
    for solver in SOLVERS:
        for fn in (entropic_ot, sinkhorn_divergence, wasserstein_fa):
            t = t0.clone().requires_grad_(True)
            loss = fn(s, t, solver=solver)
            assert loss.dtype == torch.float32 and loss.requires_grad
            loss.backward()
            assert t.grad.dtype == torch.float32 and torch.isfinite(t.grad).all()
            assert loss.item() == pytest.approx(fn(s64, t64, solver=solver).item(), rel=1e-5)


def test_overrelaxation_converges_to_the_same_plan_in_fewer_iterations():
    # three clusters, the target's masses unbalanced (12 / 8 / 4 of 24 points against 10 / 10 / 10):
    # mass must move between clusters, which plain Sinkhorn does slowly
    g = torch.Generator().manual_seed(0)
    cent = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    s = cent[torch.arange(30) % 3] + 0.5 * torch.randn(30, 2, generator=g, dtype=torch.float64)
    t = (cent[torch.tensor([0] * 12 + [1] * 8 + [2] * 4)]
         + 0.5 * torch.randn(24, 2, generator=g, dtype=torch.float64) + 0.1)
    c = 0.5 * cost_matrix(s, t, 2)
    kw = dict(stop_thr=1e-10, num_iter_max=100_000)
    f0, g0, plain = sinkhorn_potentials(c, 0.1, overrelax=None, **kw)
    ref = _plan(f0, g0, c, 0.1)
    assert plain.omega == 1.0 and plain.iterations > 300
    for overrelax in ("auto", 1.5):
        f, g_, st = sinkhorn_potentials(c, 0.1, overrelax=overrelax, **kw)
        assert st.converged and st.omega > 1.2
        assert st.iterations < plain.iterations / 3
        torch.testing.assert_close(_plan(f, g_, c, 0.1), ref, rtol=0, atol=1e-10)
    # a problem that converges within the estimation window is left alone
    _, _, easy = sinkhorn_potentials(cost_matrix(s, t, 1), 1.0)
    assert easy.omega == 1.0


def test_returned_plan_meets_the_marginals_it_reports(monkeypatch):
    s, t = _pair(28)
    c = 0.5 * cost_matrix(s, t, 2)
    for check_every in (1, 10):      # 10: the sparse error reads used off CPU
        monkeypatch.setattr(sk, "_check_every", lambda device, k=check_every: k)
        f, g, st = sinkhorn_potentials(c, 0.1)
        pi = _plan(f, g, c, 0.1)
        row_err = (pi.sum(1) - 1 / 20).abs().sum().item()
        assert st.converged and row_err < sk.TORCH_STOP_THR
        assert row_err == pytest.approx(st.error, rel=1e-6)
        assert (pi.sum(0) - 1 / 15).abs().sum().item() < 1e-14   # the last update fits the columns
        fs, _, sym = sinkhorn_potentials(0.5 * cost_matrix(t, t, 2), 0.1, symmetric=True)
        ps = _plan(fs, fs, 0.5 * cost_matrix(t, t, 2), 0.1)
        assert sym.converged
        assert (ps.sum(1) - 1 / 15).abs().sum().item() == pytest.approx(sym.error, rel=1e-6)
        assert sinkhorn_divergence(s, t).item() == pytest.approx(
            sinkhorn_divergence(s, t, **POT_TIGHT).item(), rel=1e-10)


def test_torch_solver_warns_when_not_converged_and_records_stats():
    s, t = _pair(30)
    with record_sinkhorn() as outer:
        with record_sinkhorn() as stats, pytest.warns(UserWarning, match="Sinkhorn did not converge"):
            entropic_ot(s, t, num_iter_max=2, stop_thr=1e-14)
        assert len(stats) == 1
        st = stats[0]
        assert not st.converged and st.iterations == 2 and st.error > 1e-14
        assert st.shape == (20, 15) and st.stop_thr == 1e-14 and st.scales > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            entropic_ot(s, t)
    assert len(outer) == 2 and outer[1].converged and outer[1].error < 1e-6
    assert sk._RECORDERS == []


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")  # POT at its default budget
def test_solver_choice_reaches_feature_alignment_and_bad_arguments_raise():
    s, t = _pair(32)
    y = torch.arange(20) % 2
    for solver in SOLVERS:
        fa = FeatureAlignment("sinkhorn_div", s, solver=solver)
        assert fa(t).item() == pytest.approx(sinkhorn_divergence(s, t, solver=solver).item(), rel=1e-12)
    with record_sinkhorn() as stats:
        FeatureAlignment("sinkhorn_div", s, solver="pot")(t)
    assert stats == []                             # POT did every solve
    with record_sinkhorn() as stats:
        FeatureAlignment("otdd", s, y)(t, torch.arange(15) % 2)
    assert stats and any(st.symmetric for st in stats)
    with pytest.raises(ValueError, match="unknown solver 'geomloss'; valid solvers: torch, pot"):
        sinkhorn_divergence(s, t, solver="geomloss")
    for call in (lambda **kw: entropic_ot(s, t, **kw), lambda **kw: wasserstein_fa(s, t, **kw),
                 lambda **kw: class_conditional_alignment(s, y, t, torch.arange(15) % 2, **kw),
                 lambda **kw: FeatureAlignment("w1", s, **kw)):
        with pytest.raises(ValueError, match="valid solvers: torch, pot"):
            call(solver="Torch")
        with pytest.raises(ValueError, match="eps_scaling"):
            call(eps_scaling=1.0)
        with pytest.raises(ValueError, match="stop_thr"):
            call(stop_thr=0.0)
        with pytest.raises(ValueError, match="num_iter_max"):
            call(num_iter_max=0)
    c = 0.5 * cost_matrix(s, t, 2)
    with pytest.raises(ValueError, match="square"):
        sinkhorn_potentials(c, 0.1, symmetric=True)
    with pytest.raises(ValueError, match="reg"):
        sinkhorn_potentials(c, 0.0)
    with pytest.raises(ValueError, match="overrelax"):
        sinkhorn_potentials(c, 0.1, overrelax=2.0)
    with pytest.raises(ValueError, match="scaling_iters"):
        sinkhorn_potentials(c, 0.1, scaling_iters=0)
