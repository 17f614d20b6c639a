"""Feature Alignment (FA) losses between a fixed source feature cloud and a trainable target cloud.

Three variants, selectable by string through :class:`FAVariant` / :class:`FeatureAlignment`:

``"w1"`` (the paper, eq. 14)
    ``epsilon * W_p(mu_S, mu_T)`` between the uniform empirical measures, Euclidean ground metric
    raised to ``p`` (``p = 1`` is the paper's W1). Solved exactly (``method="emd"``) or with
    entropic Sinkhorn (``method="sinkhorn"``; the paper says POT Sinkhorn with "default
    regularisation", which POT does not define, so ``reg`` is a parameter, see
    :func:`wasserstein_fa`).

``"sinkhorn_div"`` (the reference RECRAFT code)
    The debiased Sinkhorn divergence ``S_eps = OT_eps(a,b) - 1/2 OT_eps(a,a) - 1/2 OT_eps(b,b)``
    with cost ``1/2 |x-y|^2`` and absolute ``eps = 0.1`` (spec §3.2), where
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)`` is the full entropic objective (geomloss's
    convention, which the reference code goes through), not only its linear part.

``"otdd"`` (ORCA)
    The OTDD surrogate of spec §8.2: a debiased outer Sinkhorn divergence over the label-augmented
    cost ``1/2 |s-t|^2 + 1/2 W^2(S_y, T_k)``; the label-to-label distances are constants (no
    gradient), so the labels only shape the transport plan.

How OT is solved and how gradients flow
---------------------------------------
Every OT problem is solved by POT on torch tensors: exact OT by ``ot.solve`` (network simplex,
``ot.emd2``), entropic OT by POT's log-domain ``ot.bregman.sinkhorn_log``. The solver works on a
float64 copy of the cost matrix (float32 cannot reach small stopping thresholds, see
``shared/docs/ray-feasibility.md`` §5). Sinkhorn is run with epsilon scaling by default
(``eps_scaling=0.5``: a few warm-started POT iterations at regularisations ``max(C) * 0.5^k``
before converging at the requested one, as geomloss does); without it, clouds with separated
modes can need 1e5+ iterations at ``eps = 0.1``. Solver knobs on every function: ``num_iter_max``
(final Sinkhorn stage, default 1000; exact OT default 1e6), ``stop_thr`` (default 1e-9 on the
float64 marginal error; POT warns when it is not reached) and ``eps_scaling`` (``None`` disables).

Gradients are envelope gradients: the plan is held fixed and ``d OT / d C = pi*`` (exact for exact
OT, and for the entropic objective at convergence), which costs no memory for unrolled iterations.
The float64 cast is differentiable, so gradients reach float32 features. :func:`wasserstein_fa`
also offers ``grad="autodiff"`` (``ot.sinkhorn2`` unrolled, as the paper presumably did).

Sources are treated as fixed data: pass them without ``requires_grad`` (the caches of
:class:`FeatureAlignment` detach them).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import ot
import torch
from torch import Tensor

__all__ = [
    "FAVariant",
    "FeatureAlignment",
    "LabelDistances",
    "OTDDSourceTerms",
    "class_conditional_alignment",
    "cost_matrix",
    "entropic_ot",
    "label_distances",
    "otdd_source_terms",
    "sinkhorn_divergence",
    "wasserstein_fa",
]

# Pairs (n * m * d) up to this size get exact pairwise differences in ``cost_matrix`` (identical
# points give exactly 0); above it the matrix-multiply form ``|x|^2 + |y|^2 - 2 x.y`` is used
# (about 6x faster on CPU at 5000 x 132 x 768, but identical points only get ~1e-3 in float32).
EXACT_COST_LIMIT = 1 << 22

DEFAULT_SINKHORN_ITERS = 1000
DEFAULT_EMD_ITERS = 1_000_000
DEFAULT_STOP_THR = 1e-9  # on the float64 solver: ||pi^T 1 - b||_2, checked every 10 iterations
EPS_SCALING = 0.5        # default epsilon-scaling factor (None disables), see _sinkhorn_plan
SCALING_ITERS = 10       # Sinkhorn iterations at each intermediate scale
INNER_ITERS = 100        # final-stage iterations for OTDD's inner label-to-label problems


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------

def cost_matrix(source: Tensor, target: Tensor, p: float = 1, *, exact: bool | None = None) -> Tensor:
    """Ground-cost matrix ``C[i, j] = |source_i - target_j|_2 ** p``, shape ``(n, m)``.

    ``p = 1`` is the Euclidean metric (the paper's W1 cost), ``p = 2`` the squared Euclidean
    distance (the Sinkhorn-divergence and OTDD variants use ``0.5 * cost_matrix(x, y, 2)``).

    Computed with :func:`torch.cdist`, whose backward is finite at zero distance (``ot.dist(...,
    metric="euclidean")`` gives NaN gradients there). ``exact=None`` picks exact pairwise
    differences when ``n * m * d <= EXACT_COST_LIMIT`` and the faster matrix-multiply form
    otherwise; ``True``/``False`` force one.
    """
    if source.dim() != 2 or target.dim() != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(f"expected (n, d) and (m, d) clouds, got {tuple(source.shape)} and "
                         f"{tuple(target.shape)}")
    if p <= 0:
        raise ValueError(f"p must be positive, got {p}")
    if exact is None:
        exact = source.shape[0] * target.shape[0] * source.shape[1] <= EXACT_COST_LIMIT
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist"
    dist = torch.cdist(source, target, p=2.0, compute_mode=mode)
    return dist if p == 1 else dist ** p


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=torch.float64, device=like.device)


def _sinkhorn_plan(m64: Tensor, reg: float, *, num_iter_max: int | None, stop_thr: float | None,
                   eps_scaling: float | None) -> Tensor:
    """Entropic plan for the (detached, float64) cost ``m64`` from POT's log-domain ``sinkhorn_log``.

    With ``eps_scaling = q`` in (0, 1), POT is first run for ``SCALING_ITERS`` iterations at each
    regularisation ``max(C) * q^k`` above ``reg``, each warm-started from the previous potentials
    (rescaled to the new regularisation), then to convergence at ``reg``. This epsilon-scaling
    continuation (what geomloss does) resolves the global mass balance at coarse scale; plain
    Sinkhorn at a small ``reg`` can need 1e5+ iterations when the clouds have separated modes.
    """
    a, b = _uniform(m64.shape[0], m64), _uniform(m64.shape[1], m64)
    la, lb = torch.log(a), torch.log(b)
    iters = num_iter_max or DEFAULT_SINKHORN_ITERS
    tol = DEFAULT_STOP_THR if stop_thr is None else stop_thr
    warm, cur = None, float(m64.max())
    if eps_scaling is not None and 0 < eps_scaling < 1:
        while cur > reg:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # intermediate scales are not meant to converge
                _, log = ot.bregman.sinkhorn_log(a, b, m64, cur, numItermax=SCALING_ITERS,
                                                 stopThr=tol, log=True, warmstart=warm)
            nxt = max(cur * eps_scaling, reg)
            # POT's log-scalings are u = log a + f / reg with f the dual potential
            warm = (la + (log["log_u"] - la) * (cur / nxt), lb + (log["log_v"] - lb) * (cur / nxt))
            cur = nxt
    return ot.bregman.sinkhorn_log(a, b, m64, reg, numItermax=iters, stopThr=tol, warmstart=warm)


def _ot_value(cost: Tensor, reg: float | None, *, objective: Literal["entropic", "linear"] = "entropic",
              num_iter_max: int | None = None, stop_thr: float | None = None,
              eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """Optimal value for a cost matrix, differentiable w.r.t. ``cost`` with the plan as gradient.

    ``reg=None``: exact OT (POT ``ot.solve`` -> ``emd2``, whose gradient is the plan).
    Otherwise entropic OT (absolute ``reg``, KL to the product of the uniform weights):
    ``objective="entropic"`` -> ``<pi, C> + reg * KL(pi | a x b)``, ``"linear"`` -> ``<pi, C>``
    (what ``ot.sinkhorn2`` returns). The Sinkhorn plan is computed on a detached float64 copy and
    held fixed (envelope theorem: ``d value / d C = pi`` at convergence). Returned in ``cost``'s
    dtype.
    """
    m64 = cost.to(torch.float64)  # differentiable cast
    if reg is None:
        a, b = _uniform(cost.shape[0], cost), _uniform(cost.shape[1], cost)
        return ot.solve(m64, a, b, max_iter=num_iter_max or DEFAULT_EMD_ITERS).value.to(cost.dtype)
    if reg <= 0:
        raise ValueError(f"reg must be positive (or None for exact OT), got {reg}")
    if objective not in ("entropic", "linear"):
        raise ValueError(f"objective must be 'entropic' or 'linear', got {objective!r}")
    plan = _sinkhorn_plan(m64.detach(), float(reg), num_iter_max=num_iter_max, stop_thr=stop_thr,
                          eps_scaling=eps_scaling).detach()
    value = (plan * m64).sum()
    if objective == "entropic":
        ab = _uniform(cost.shape[0], cost)[:, None] * _uniform(cost.shape[1], cost)[None, :]
        kl = (torch.special.xlogy(plan, plan) - plan * torch.log(ab)).sum()
        value = value + reg * kl
    return value.to(cost.dtype)


def entropic_ot(x: Tensor, y: Tensor, *, reg: float = 0.1, p: float = 2, cost_scale: float = 0.5,
                num_iter_max: int | None = None, stop_thr: float | None = None,
                eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """``OT_eps(x, y) = min <pi, C> + reg * KL(pi | a x b)`` with ``C = cost_scale * |x - y|^p``.

    The defaults are the reference code's outer problem (cost ``1/2 |x-y|^2``, ``eps = 0.1``).
    Useful to precompute the constant source self-term of :func:`sinkhorn_divergence` once.
    """
    return _ot_value(cost_scale * cost_matrix(x, y, p), reg, objective="entropic",
                     num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)


# --------------------------------------------------------------------------------------------
# "w1": the paper's eps * W_p
# --------------------------------------------------------------------------------------------

def wasserstein_fa(source: Tensor, target: Tensor, *, epsilon: float = 1.0, p: int = 1,
                   reg: float | None = 0.1, method: Literal["sinkhorn", "emd"] = "sinkhorn",
                   reg_relative: bool = True, debias: bool = False,
                   grad: Literal["envelope", "autodiff"] = "envelope",
                   num_iter_max: int | None = None, stop_thr: float | None = None,
                   eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """The paper's FA surrogate (eq. 14): ``epsilon * W_p(mu_S, mu_T)``, uniform weights.

    ``W_p = (OT with cost |x - y|_2^p) ** (1/p)``; ``p = 1`` (the paper) is Euclidean W1.

    ``method="emd"``: exact OT (POT network simplex, ``num_iter_max`` default 1e6); exactly 0 for
    identical clouds; ``reg`` is ignored.

    ``method="sinkhorn"``: the value is the *linear* transport cost ``<pi_reg, C>`` of the entropic
    plan, as ``ot.sinkhorn2`` returns (it upper-bounds the exact OT cost and tends to it as
    ``reg -> 0``). How ``reg`` is read:

    * ``reg_relative=True`` (default): the POT regularisation is ``reg * mean(C)``, with the mean
      of the (detached) source-target cost matrix of this call. This makes the loss scale
      equivariant (scaling the features scales W by the same factor) and keeps Sinkhorn
      well-conditioned whatever the feature scale. ``reg=0.1`` means "a tenth of the mean
      pairwise cost". Its dependence on the target is not differentiated.
    * ``reg_relative=False``: ``reg`` is POT's absolute ``reg``, in units of the cost.

    ``debias=True`` (Sinkhorn only; exact OT has no bias) returns
    ``W(S,T) - 1/2 W(S,S) - 1/2 W(T,T)`` (costs before the ``1/p`` root, same regularisation for the
    three terms, clamped at 0), which removes the entropic bias so identical clouds give exactly 0;
    off by default (the paper does not debias). The self-terms are recomputed on every call.

    ``grad="envelope"`` (default) differentiates with the plan held fixed (POT's envelope mode; cheap);
    ``grad="autodiff"`` backpropagates through the unrolled log-domain iterations of
    ``ot.sinkhorn2`` (memory grows with the iteration count).

    Solver settings (``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module docstring;
    ``grad="autodiff"`` ignores ``eps_scaling``.
    """
    if method not in ("sinkhorn", "emd"):
        raise ValueError(f"method must be 'sinkhorn' or 'emd', got {method!r}")
    if grad not in ("envelope", "autodiff"):
        raise ValueError(f"grad must be 'envelope' or 'autodiff', got {grad!r}")
    if method == "sinkhorn" and (reg is None or reg <= 0):
        raise ValueError("method='sinkhorn' needs reg > 0 (use method='emd' for exact OT)")

    c_st = cost_matrix(source, target, p)
    if method == "emd":
        reg_abs = None
    elif reg_relative:
        scale = float(c_st.detach().mean())
        reg_abs = reg * scale if scale > 0 else reg
    else:
        reg_abs = float(reg)

    def value(cost: Tensor) -> Tensor:
        if method == "sinkhorn" and grad == "autodiff":
            m64 = cost.to(torch.float64)
            a, b = _uniform(cost.shape[0], cost), _uniform(cost.shape[1], cost)
            out = ot.sinkhorn2(a, b, m64, reg_abs, method="sinkhorn_log",
                               numItermax=num_iter_max or DEFAULT_SINKHORN_ITERS,
                               stopThr=DEFAULT_STOP_THR if stop_thr is None else stop_thr)
            return out.to(cost.dtype)
        return _ot_value(cost, reg_abs, objective="linear", num_iter_max=num_iter_max,
                         stop_thr=stop_thr, eps_scaling=eps_scaling)

    total = value(c_st)
    if debias and method == "sinkhorn":
        total = total - 0.5 * value(cost_matrix(source, source, p)) \
            - 0.5 * value(cost_matrix(target, target, p))
        total = total.clamp_min(0.0)
    if p != 1:
        # the root has an infinite slope at 0: clamp so identical clouds give a zero gradient
        total = total.clamp_min(torch.finfo(total.dtype).tiny) ** (1.0 / p)
    return epsilon * total


# --------------------------------------------------------------------------------------------
# "sinkhorn_div": the reference code's debiased Sinkhorn divergence
# --------------------------------------------------------------------------------------------

def sinkhorn_divergence(source: Tensor, target: Tensor, *, reg: float = 0.1,
                        source_self: Tensor | float | None = None,
                        num_iter_max: int | None = None, stop_thr: float | None = None,
                        eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """Debiased Sinkhorn divergence of the reference code (spec §3.2).

    ``S_eps(a, b) = OT_eps(a, b) - 1/2 OT_eps(a, a) - 1/2 OT_eps(b, b)`` with
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)``, ``C = 1/2 |x - y|^2``, ``eps = reg`` *absolute*
    (0.1 as in the code, i.e. geomloss ``SamplesLoss("sinkhorn", p=2, blur=0.1**0.5)``), uniform
    weights, log-domain Sinkhorn in float64. Exactly 0 for identical clouds (the three problems are
    then the same), not clamped (tiny negative values can come from solver tolerance).

    ``source_self``: the constant ``OT_eps(S, S)``, e.g. ``entropic_ot(S, S, reg=reg)`` computed
    once; recomputed when ``None`` (costly for 5000 source points).

    Note: ``ot.bregman.empirical_sinkhorn_divergence`` is *not* this quantity: it debiases the
    linear costs ``<pi, C>`` returned by ``ot.sinkhorn2`` (no KL term), uses ``|x - y|^2`` unless
    rescaled, clamps at 0 and backpropagates through every Sinkhorn iteration.

    Solver settings (``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module docstring. If
    POT warns that Sinkhorn did not converge, the value and the envelope gradient are approximate.
    """
    kw = dict(reg=reg, num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)
    cross = entropic_ot(source, target, **kw)
    if source_self is None:
        source_self = entropic_ot(source, source, **kw)
    tgt_self = entropic_ot(target, target, **kw)
    return cross - 0.5 * source_self - 0.5 * tgt_self


# --------------------------------------------------------------------------------------------
# "otdd": ORCA's class-conditional alignment
# --------------------------------------------------------------------------------------------

def _groups(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct labels and, per point, the index of its label in that list."""
    classes, index = torch.unique(labels, sorted=True, return_inverse=True)
    return classes, index


def _inner_divergences(sets_a: list[Tensor], sets_b: list[Tensor] | None, *, inner_reg: float,
                       self_a: Tensor | None, num_iter_max: int, eps_scaling: float | None,
                       stop_thr: float | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Inner label-to-label divergences ``W^2`` (debiased Sinkhorn, cost ``|a - b|^2``, no 1/2).

    Returns ``(self_a, dist, self_b)``: the self-terms ``OT(X, X)`` of each set and the matrix of
    ``W^2`` between ``sets_a`` and ``sets_b`` (``sets_b=None``: among ``sets_a``, zero diagonal).
    The inner problems are solved with a small iteration budget and without POT's
    non-convergence warning: they are constants that only shape the outer plan (the reference
    OTDD code also solves them approximately).
    """
    kw = dict(reg=inner_reg, p=2, cost_scale=1.0, num_iter_max=num_iter_max,
              eps_scaling=eps_scaling, stop_thr=stop_thr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sinkhorn did not converge")
        if self_a is None:
            self_a = torch.stack([entropic_ot(x, x, **kw) for x in sets_a])
        if sets_b is None:
            n = len(sets_a)
            dist = torch.zeros(n, n, dtype=self_a.dtype, device=self_a.device)
            for i in range(n):
                for j in range(i + 1, n):
                    dist[i, j] = dist[j, i] = (entropic_ot(sets_a[i], sets_a[j], **kw)
                                               - 0.5 * (self_a[i] + self_a[j]))
            return self_a, dist, None
        self_b = torch.stack([entropic_ot(x, x, **kw) for x in sets_b])
        dist = torch.stack([torch.stack([entropic_ot(x, y, **kw) - 0.5 * (self_a[i] + self_b[j])
                                         for j, y in enumerate(sets_b)])
                            for i, x in enumerate(sets_a)])
        return self_a, dist, self_b


@dataclass
class OTDDSourceTerms:
    """Everything in the OTDD loss that depends on the source only (computed once, no gradient).

    ``classes``: sorted distinct source labels; ``class_self[c] = OT_eps(S_c, S_c)`` (inner cost);
    ``class_distances[c, c'] = W^2(S_c, S_c')`` (debiased inner divergence, zero diagonal);
    ``self_value = OT_eps`` of the source against itself under the augmented cost (outer).
    """

    classes: Tensor
    class_self: Tensor
    class_distances: Tensor
    self_value: Tensor
    reg: float
    inner_reg: float


@dataclass
class LabelDistances:
    """Target-dependent label-to-label distances ``W^2`` (constants, ``requires_grad=False``).

    ``source_target[c, k] = W^2(S_c, T_k)``, ``target_target[k, k'] = W^2(T_k, T_k')`` (``None``
    when not computed, see ``target_pairs``), with ``target_classes`` the sorted distinct target
    cluster ids (rows/columns in that order).
    """

    target_classes: Tensor
    source_target: Tensor
    target_target: Tensor | None


@torch.no_grad()
def otdd_source_terms(source: Tensor, source_labels: Tensor, *, reg: float = 0.1,
                      inner_reg: float = 0.1, inner_num_iter_max: int = INNER_ITERS,
                      num_iter_max: int | None = None, stop_thr: float | None = None,
                      eps_scaling: float | None = EPS_SCALING) -> OTDDSourceTerms:
    """Precompute the source-only constants of :func:`class_conditional_alignment`."""
    source = source.detach()
    classes, index = _groups(source_labels)
    parts = [source[index == c] for c in range(len(classes))]
    self_vals, dist, _ = _inner_divergences(parts, None, inner_reg=inner_reg, self_a=None,
                                            num_iter_max=inner_num_iter_max,
                                            eps_scaling=eps_scaling, stop_thr=stop_thr)
    aug = 0.5 * cost_matrix(source, source, 2) + 0.5 * dist[index][:, index]
    self_value = _ot_value(aug, reg, num_iter_max=num_iter_max, stop_thr=stop_thr,
                           eps_scaling=eps_scaling)
    return OTDDSourceTerms(classes=classes, class_self=self_vals, class_distances=dist,
                           self_value=self_value, reg=reg, inner_reg=inner_reg)


@torch.no_grad()
def label_distances(source: Tensor, source_labels: Tensor, target: Tensor, target_clusters: Tensor,
                    *, inner_reg: float = 0.1, source_terms: OTDDSourceTerms | None = None,
                    target_pairs: bool = True, inner_num_iter_max: int = INNER_ITERS,
                    stop_thr: float | None = None,
                    eps_scaling: float | None = EPS_SCALING) -> LabelDistances:
    """Label-to-label distances between source classes and target clusters, without gradient.

    ``target_pairs=False`` skips the cluster-cluster distances (not needed per cluster).
    """
    source, target = source.detach(), target.detach()
    s_classes, s_index = _groups(source_labels)
    t_classes, t_index = _groups(target_clusters)
    s_parts = [source[s_index == c] for c in range(len(s_classes))]
    t_parts = [target[t_index == k] for k in range(len(t_classes))]
    s_self = None
    if source_terms is not None:
        if not torch.equal(source_terms.classes.cpu(), s_classes.cpu()):
            raise ValueError("source_terms were computed for other source classes")
        s_self = source_terms.class_self
    kw = dict(inner_reg=inner_reg, num_iter_max=inner_num_iter_max, eps_scaling=eps_scaling,
              stop_thr=stop_thr)
    _, st, t_self = _inner_divergences(s_parts, t_parts, self_a=s_self, **kw)
    tt = None
    if target_pairs:
        _, tt, _ = _inner_divergences(t_parts, None, self_a=t_self, **kw)
        tt = tt.to(target.dtype)
    return LabelDistances(target_classes=t_classes, source_target=st.to(target.dtype),
                          target_target=tt)


def class_conditional_alignment(source: Tensor, source_labels: Tensor, target: Tensor,
                                target_clusters: Tensor, *, reg: float = 0.1, inner_reg: float = 0.1,
                                per_cluster: bool = False, cluster_weights: Tensor | None = None,
                                source_terms: OTDDSourceTerms | None = None,
                                distances: LabelDistances | None = None,
                                inner_num_iter_max: int = INNER_ITERS,
                                num_iter_max: int | None = None,
                                stop_thr: float | None = None,
                                eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """ORCA-style OTDD surrogate between labelled source ``(S, y)`` and clustered target ``(T, k)``.

    Augmented cost ``d((s, y), (t, k)) = 1/2 |s - t|^2 + 1/2 W^2(S_y, T_k)`` where ``W^2`` is the
    debiased Sinkhorn divergence with cost ``|a - b|^2`` and ``eps = inner_reg`` between the
    class / cluster point sets, computed **without gradient** (``inner_num_iter_max`` iterations
    with epsilon scaling; approximate by design, see :func:`label_distances`). The loss is the
    debiased outer Sinkhorn divergence (entropic objective, ``eps = reg`` absolute) over the
    augmented costs:

    ``OT(S~, T~) - 1/2 OT(S~, S~) - 1/2 OT(T~, T~)``, the self-terms using the source-source
    (``W^2(S_y, S_y')``) and target-target (``W^2(T_k, T_k')``) label distances (zero on the
    diagonal). Gradients flow to ``target`` only through the ``1/2 |s - t|^2`` feature terms.

    ``per_cluster=False``: one OTDD between the two labelled clouds.
    ``per_cluster=True``: ORCA's loop, ``sum_k w_k * OTDD((S, y), (T_k, single label))``; clusters
    with fewer than 2 points are skipped (as ORCA does); ``cluster_weights`` indexed by cluster id
    (e.g. :func:`recraft.discretise.class_weights` over the whole train set), default the batch
    frequencies ``n_k / m``. Note that each cluster is then compared with the *whole* labelled
    source, so a cluster covering several source classes can cost less than a pure one.

    ``source_terms`` (:func:`otdd_source_terms`) and ``distances`` (:func:`label_distances`) can be
    passed to reuse precomputed constants.
    """
    okw = dict(num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)
    ikw = dict(inner_reg=inner_reg, inner_num_iter_max=inner_num_iter_max, stop_thr=stop_thr,
               eps_scaling=eps_scaling)
    if source_terms is None:
        source_terms = otdd_source_terms(source, source_labels, reg=reg, num_iter_max=num_iter_max,
                                         **ikw)
    elif source_terms.reg != reg or source_terms.inner_reg != inner_reg:
        raise ValueError("source_terms were computed with another reg / inner_reg")
    if distances is None:
        distances = label_distances(source, source_labels, target, target_clusters,
                                    source_terms=source_terms, target_pairs=not per_cluster, **ikw)
    _, s_index = _groups(source_labels)
    t_classes, t_index = _groups(target_clusters)
    if not torch.equal(t_classes.cpu(), distances.target_classes.cpu()):
        raise ValueError("distances were computed for other target clusters")
    st = distances.source_target.to(target.dtype)
    source_feat = source.detach()

    def otdd(t: Tensor, k_index: Tensor, tt: Tensor | None) -> Tensor:
        cross = 0.5 * cost_matrix(source_feat, t, 2) + 0.5 * st[s_index][:, k_index]
        own = 0.5 * cost_matrix(t, t, 2)
        if tt is not None:
            own = own + 0.5 * tt[k_index][:, k_index]
        return (_ot_value(cross, reg, **okw) - 0.5 * source_terms.self_value.to(t.dtype)
                - 0.5 * _ot_value(own, reg, **okw))

    if not per_cluster:
        if distances.target_target is None:
            raise ValueError("distances lack the target-target block (target_pairs=False)")
        return otdd(target, t_index, distances.target_target.to(target.dtype))

    # zero that stays on the graph: a batch whose clusters are all too small still backpropagates
    total = target.sum() * 0.0
    m = target.shape[0]
    for k_pos, k in enumerate(t_classes.tolist()):
        members = t_index == k_pos
        n_k = int(members.sum())
        if n_k < 2:
            continue
        w_k = n_k / m if cluster_weights is None else float(cluster_weights[k])
        # one target label per problem: the target self-term has no label cost
        total = total + w_k * otdd(target[members], t_index[members], None)
    return total


# --------------------------------------------------------------------------------------------
# picking a variant by name
# --------------------------------------------------------------------------------------------

class FAVariant(str, Enum):
    """FA variants by config string."""

    W1 = "w1"                      # paper: epsilon * W1 (eq. 14)
    SINKHORN_DIV = "sinkhorn_div"  # reference RECRAFT code: label-free debiased Sinkhorn divergence
    OTDD = "otdd"                  # ORCA: class-conditional OTDD surrogate

    @property
    def needs_labels(self) -> bool:
        return self is FAVariant.OTDD


class FeatureAlignment:
    """A FA loss bound to one fixed source cloud, with the source-only terms cached.

    >>> fa = FeatureAlignment("sinkhorn_div", source)          # doctest: +SKIP
    >>> loss = fa(target_features)                              # doctest: +SKIP
    >>> fa = FeatureAlignment("otdd", source, source_labels)     # doctest: +SKIP
    >>> loss = fa(target_features, target_clusters)             # doctest: +SKIP

    ``scale`` multiplies the result (e.g. the paper's epsilon for the non-W1 variants, or the
    reference code's ``m / #batches`` factor). ``loss_kwargs`` go to the variant's function:
    :func:`wasserstein_fa`, :func:`sinkhorn_divergence` or :func:`class_conditional_alignment`.
    """

    def __init__(self, variant: FAVariant | str, source: Tensor, source_labels: Tensor | None = None,
                 *, scale: float = 1.0, **loss_kwargs):
        self.variant = FAVariant(variant)
        self.source = source.detach()
        self.scale = scale
        self.loss_kwargs = loss_kwargs
        self._cache = None
        if self.variant.needs_labels:
            if source_labels is None:
                raise ValueError("the 'otdd' variant needs source_labels")
            self.source_labels = source_labels
        else:
            if source_labels is not None:
                warnings.warn(f"variant {self.variant.value!r} ignores source_labels", stacklevel=2)
            self.source_labels = None

    def source_terms(self):
        """The cached source-only constants (computed on first use)."""
        if self._cache is None:
            kw = self.loss_kwargs
            solver = dict(num_iter_max=kw.get("num_iter_max"), stop_thr=kw.get("stop_thr"),
                          eps_scaling=kw.get("eps_scaling", EPS_SCALING))
            if self.variant is FAVariant.SINKHORN_DIV:
                with torch.no_grad():
                    self._cache = entropic_ot(self.source, self.source, reg=kw.get("reg", 0.1),
                                              **solver)
            elif self.variant is FAVariant.OTDD:
                self._cache = otdd_source_terms(
                    self.source, self.source_labels, reg=kw.get("reg", 0.1),
                    inner_reg=kw.get("inner_reg", 0.1),
                    inner_num_iter_max=kw.get("inner_num_iter_max", INNER_ITERS), **solver)
        return self._cache

    def __call__(self, target: Tensor, target_clusters: Tensor | None = None) -> Tensor:
        if self.variant is FAVariant.W1:
            loss = wasserstein_fa(self.source, target, **self.loss_kwargs)
        elif self.variant is FAVariant.SINKHORN_DIV:
            loss = sinkhorn_divergence(self.source, target, source_self=self.source_terms(),
                                       **self.loss_kwargs)
        else:
            if target_clusters is None:
                raise ValueError("the 'otdd' variant needs target_clusters")
            loss = class_conditional_alignment(self.source, self.source_labels, target,
                                               target_clusters, source_terms=self.source_terms(),
                                               **self.loss_kwargs)
        return self.scale * loss
