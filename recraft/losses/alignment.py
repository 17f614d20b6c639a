"""Feature Alignment (FA) losses between a fixed source feature cloud and a trainable target cloud.

Three variants, selectable by string through :class:`FAVariant` / :class:`FeatureAlignment`:

``"w1"`` (the paper, eq. 14)
    ``W_p(mu_S, mu_T)`` between the uniform empirical measures, Euclidean ground metric raised
    to ``p`` (``p = 1`` is the paper's W1); the paper's ε weight is applied by stage 1's plan
    (``recraft.align``), the one place ε enters FA. Solved exactly (``method="emd"``) or with
    entropic Sinkhorn (``method="sinkhorn"``; the paper says POT Sinkhorn with "default
    regularisation", which POT does not define, so ``reg`` is a parameter, see
    :func:`wasserstein_fa`; the default solver is the torch one, ``solver="pot"`` is POT's).

``"sinkhorn_div"`` (the reference RECRAFT code)
    The debiased Sinkhorn divergence ``S_eps = OT_eps(a,b) - 1/2 OT_eps(a,a) - 1/2 OT_eps(b,b)``
    with cost ``1/2 |x-y|^2`` and absolute ``eps = 0.1`` (spec §3.2), where
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)`` is the full entropic objective (geomloss's
    convention, which the reference code goes through), not only its linear part.

``"otdd"`` (ORCA)
    The OTDD surrogate of spec §8.2: a debiased outer Sinkhorn divergence over the label-augmented
    cost ``1/2 |s-t|^2 + 1/2 W^2(S_y, T_k)``; the label-to-label distances are constants (no
    gradient), so the labels only shape the transport plan. In :mod:`recraft.losses.otdd`.

The OT solvers (the torch log-domain Sinkhorn, POT's, exact OT) are in :mod:`recraft.ot`.
"""
from __future__ import annotations

import warnings
from enum import Enum
from typing import Literal

import torch
from torch import Tensor

from recraft.ot import (DEFAULT_SOLVER, EPS_SCALING, check_solver_args, cost_matrix, entropic_ot,
                        ot_value, same_points)
from recraft.ot.cost import uniform
from recraft.ot.pot import DEFAULT_STOP_THR, pot
from recraft.ot.sinkhorn import DEFAULT_SINKHORN_ITERS

from .otdd import INNER_ITERS, class_conditional_alignment, otdd_source_terms

__all__ = ["FAVariant", "FeatureAlignment", "sinkhorn_divergence", "wasserstein_fa"]


def wasserstein_fa(source: Tensor, target: Tensor, *, p: int = 1,
                   reg: float | None = 0.1, method: Literal["sinkhorn", "emd"] = "sinkhorn",
                   reg_relative: bool = True, debias: bool = False,
                   grad: Literal["envelope", "autodiff"] = "envelope",
                   solver: str = DEFAULT_SOLVER, num_iter_max: int | None = None,
                   stop_thr: float | None = None, eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """The paper's FA surrogate (eq. 14) without its ε weight: ``W_p(mu_S, mu_T)``, uniform weights.

    ``W_p = (OT with cost |x - y|_2^p) ** (1/p)``; ``p = 1`` (the paper) is Euclidean W1.

    ``method="emd"``: exact OT (POT network simplex, ``num_iter_max`` default 1e6); exactly 0 for
    identical clouds; ``reg`` is ignored.

    ``method="sinkhorn"``: the value is the *linear* transport cost ``<pi_reg, C>`` of the entropic
    plan, as ``ot.sinkhorn2`` returns (it upper-bounds the exact OT cost and tends to it as
    ``reg -> 0``). How ``reg`` is read:

    * ``reg_relative=True`` (default): the regularisation is ``reg * mean(C)``, with the mean
      of the (detached) source-target cost matrix of this call. This makes the loss scale
      equivariant (scaling the features scales W by the same factor) and keeps Sinkhorn
      well-conditioned whatever the feature scale. ``reg=0.1`` means "a tenth of the mean
      pairwise cost". Its dependence on the target is not differentiated.
    * ``reg_relative=False``: ``reg`` is the absolute regularisation, in units of the cost.

    ``debias=True`` (Sinkhorn only; exact OT has no bias) returns
    ``W(S,T) - 1/2 W(S,S) - 1/2 W(T,T)`` (costs before the ``1/p`` root, same regularisation for the
    three terms, clamped at 0), which removes the entropic bias so identical clouds give exactly 0;
    off by default (the paper does not debias). The self-terms are recomputed on every call (with
    the torch solver's symmetric iteration).

    ``grad="envelope"`` (default) differentiates with the plan held fixed (POT's envelope mode; cheap);
    ``grad="autodiff"`` backpropagates through the unrolled log-domain iterations of
    ``ot.sinkhorn2`` (memory grows with the iteration count); it always uses POT.

    Solver settings (``solver``, ``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module
    docstring; ``grad="autodiff"`` ignores ``solver`` and ``eps_scaling``.
    """
    if method not in ("sinkhorn", "emd"):
        raise ValueError(f"method must be 'sinkhorn' or 'emd', got {method!r}")
    if grad not in ("envelope", "autodiff"):
        raise ValueError(f"grad must be 'envelope' or 'autodiff', got {grad!r}")
    if method == "sinkhorn" and (reg is None or reg <= 0):
        raise ValueError("method='sinkhorn' needs reg > 0 (use method='emd' for exact OT)")
    check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)

    c_st = cost_matrix(source, target, p)
    if method == "emd":
        reg_abs = None
    elif reg_relative:
        scale = float(c_st.detach().mean())
        reg_abs = reg * scale if scale > 0 else reg
    else:
        reg_abs = float(reg)

    def value(cost: Tensor, symmetric: bool) -> Tensor:
        if method == "sinkhorn" and grad == "autodiff":
            m64 = cost.to(torch.float64)
            a, b = uniform(cost.shape[0], cost), uniform(cost.shape[1], cost)
            out = pot().sinkhorn2(a, b, m64, reg_abs, method="sinkhorn_log",
                               numItermax=num_iter_max or DEFAULT_SINKHORN_ITERS,
                               stopThr=DEFAULT_STOP_THR if stop_thr is None else stop_thr)
            return out.to(cost.dtype)
        return ot_value(cost, reg_abs, objective="linear", solver=solver, symmetric=symmetric,
                         num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)

    total = value(c_st, same_points(source, target))
    if debias and method == "sinkhorn":
        total = total - 0.5 * value(cost_matrix(source, source, p), True) \
            - 0.5 * value(cost_matrix(target, target, p), True)
        total = total.clamp_min(0.0)
    if p != 1:
        # the root has an infinite slope at 0: clamp so identical clouds give a zero gradient
        total = total.clamp_min(torch.finfo(total.dtype).tiny) ** (1.0 / p)
    return total


def sinkhorn_divergence(source: Tensor, target: Tensor, *, reg: float = 0.1,
                        source_self: Tensor | float | None = None, solver: str = DEFAULT_SOLVER,
                        num_iter_max: int | None = None, stop_thr: float | None = None,
                        eps_scaling: float | None = EPS_SCALING) -> Tensor:
    """Debiased Sinkhorn divergence of the reference code (spec §3.2).

    ``S_eps(a, b) = OT_eps(a, b) - 1/2 OT_eps(a, a) - 1/2 OT_eps(b, b)`` with
    ``OT_eps = min <pi, C> + eps * KL(pi | a x b)``, ``C = 1/2 |x - y|^2``, ``eps = reg`` *absolute*
    (0.1 as in the code, i.e. geomloss ``SamplesLoss("sinkhorn", p=2, blur=0.1**0.5)``), uniform
    weights, log-domain Sinkhorn in float64. The self-terms use the torch solver's symmetric
    iteration (a few iterations where the two-sided one needs thousands). Exactly 0 for identical
    clouds (the three problems are then the same), not clamped (tiny negative values can come
    from solver tolerance).

    ``source_self``: the constant ``OT_eps(S, S)``, e.g. ``entropic_ot(S, S, reg=reg)`` computed
    once (with the same solver settings); recomputed when ``None``.

    Note: ``ot.bregman.empirical_sinkhorn_divergence`` is *not* this quantity: it debiases the
    linear costs ``<pi, C>`` returned by ``ot.sinkhorn2`` (no KL term), uses ``|x - y|^2`` unless
    rescaled, clamps at 0 and backpropagates through every Sinkhorn iteration.

    Solver settings (``solver``, ``num_iter_max``, ``stop_thr``, ``eps_scaling``): see the module
    docstring. After a "Sinkhorn did not converge" warning, the value and the envelope gradient
    are approximate.
    """
    kw = dict(reg=reg, solver=solver, num_iter_max=num_iter_max, stop_thr=stop_thr,
              eps_scaling=eps_scaling)
    cross = entropic_ot(source, target, **kw)
    if source_self is None:
        source_self = entropic_ot(source, source, **kw)
    tgt_self = entropic_ot(target, target, **kw)
    return cross - 0.5 * source_self - 0.5 * tgt_self


class FAVariant(str, Enum):
    """FA variants by config string."""

    W1 = "w1"                      # paper: W1 (eq. 14; the plan weights it by ε)
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

    ``loss_kwargs`` go to the variant's function:
    :func:`wasserstein_fa`, :func:`sinkhorn_divergence` or :func:`class_conditional_alignment`,
    e.g. ``solver="pot"`` (default ``"torch"``), ``stop_thr``, ``num_iter_max``; the cached source
    terms are computed with the same solver settings.
    """

    def __init__(self, variant: FAVariant | str, source: Tensor, source_labels: Tensor | None = None,
                 **loss_kwargs):
        self.variant = FAVariant(variant)
        self.source = source.detach()
        self.loss_kwargs = loss_kwargs
        check_solver_args(loss_kwargs.get("solver", DEFAULT_SOLVER), loss_kwargs.get("num_iter_max"),
                           loss_kwargs.get("stop_thr"), loss_kwargs.get("eps_scaling", EPS_SCALING))
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
            solver = dict(solver=kw.get("solver", DEFAULT_SOLVER), num_iter_max=kw.get("num_iter_max"),
                          stop_thr=kw.get("stop_thr"), eps_scaling=kw.get("eps_scaling", EPS_SCALING))
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
        return loss
