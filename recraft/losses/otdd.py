"""ORCA's Feature Alignment: the class-conditional OTDD surrogate (spec §8.2).

The augmented cost between a labelled source point ``(s, y)`` and a clustered target point
``(t, k)`` is ``1/2 |s - t|^2 + 1/2 W^2(S_y, T_k)``, where ``W^2`` is the label-to-label distance:
the debiased Sinkhorn divergence (cost ``|a - b|^2``, ``eps = inner_reg``) between the class's
and the cluster's point sets. The label distances are constants (no gradient) and are computed
here only, by :func:`label_divergences`: every pair of sets in one batched solve
(:func:`recraft.ot.batched_entropic_ot`). The loss is the debiased outer Sinkhorn divergence over
the augmented costs (:func:`class_conditional_alignment`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recraft.ot import (DEFAULT_SOLVER, EPS_SCALING, batched_entropic_ot, check_solver_args,
                        cost_matrix, ot_value)

__all__ = ["INNER_ITERS", "LabelDistances", "OTDDSourceTerms", "class_conditional_alignment",
           "label_distances", "label_divergences", "otdd_source_terms"]

INNER_ITERS = 100        # final-stage iterations for OTDD's inner label-to-label problems
INNER_STOP_THR = 1e-6    # their stopping threshold (L2 column error) when none is given


def _groups(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted distinct labels and, per point, the index of its label in that list."""
    classes, index = torch.unique(labels, sorted=True, return_inverse=True)
    return classes, index


@torch.no_grad()
def label_divergences(sets_a: list[Tensor], sets_b: list[Tensor] | None = None, *, reg: float,
                      self_a: Tensor | None = None, num_iter_max: int = INNER_ITERS,
                      stop_thr: float | None = None, eps_scaling: float | None = EPS_SCALING
                      ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Label-to-label divergences ``W^2`` (debiased Sinkhorn, cost ``|a - b|^2``, no 1/2).

    Returns ``(self_a, dist, self_b)``: the self-terms ``OT(X, X)`` of each set and the matrix of
    ``W^2`` between ``sets_a`` and ``sets_b`` (``sets_b=None``: among ``sets_a``, zero diagonal;
    ``self_b`` is then None). All problems (the missing self-terms and every pair) go to one
    batched solve with a small iteration budget: they are constants that only shape the outer plan
    (the reference OTDD code also solves them approximately). ``self_a`` may be passed to reuse it.
    """
    kw = dict(num_iter_max=num_iter_max, eps_scaling=eps_scaling,
              stop_thr=INNER_STOP_THR if stop_thr is None else stop_thr)
    sets_a = [x.detach() for x in sets_a]
    na = len(sets_a)
    xs: list[Tensor] = []
    ys: list[Tensor] = []
    if self_a is None:
        xs += sets_a
        ys += sets_a
    if sets_b is None:
        pairs = [(i, j) for i in range(na) for j in range(i + 1, na)]
        xs += [sets_a[i] for i, _ in pairs]
        ys += [sets_a[j] for _, j in pairs]
    else:
        sets_b = [y.detach() for y in sets_b]
        nb = len(sets_b)
        xs += sets_b + [x for x in sets_a for _ in range(nb)]
        ys += sets_b + [y for _ in range(na) for y in sets_b]
    vals = batched_entropic_ot(xs, ys, reg, **kw)
    pos = 0
    if self_a is None:
        self_a, pos = vals[:na], na
    self_a = self_a.to(torch.float64)
    if sets_b is None:
        dist = torch.zeros(na, na, dtype=torch.float64, device=vals.device)
        for (i, j), v in zip(pairs, vals[pos:]):
            dist[i, j] = dist[j, i] = v - 0.5 * (self_a[i] + self_a[j])
        return self_a, dist, None
    self_b = vals[pos:pos + nb]
    cross = vals[pos + nb:].reshape(na, nb)
    return self_a, cross - 0.5 * self_a[:, None] - 0.5 * self_b[None, :], self_b


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
                      solver: str = DEFAULT_SOLVER, num_iter_max: int | None = None,
                      stop_thr: float | None = None,
                      eps_scaling: float | None = EPS_SCALING) -> OTDDSourceTerms:
    """Precompute the source-only constants of :func:`class_conditional_alignment` (``solver``,
    ``num_iter_max``: the outer self-term's; the inner distances use :func:`label_divergences`)."""
    source = source.detach()
    classes, index = _groups(source_labels)
    parts = [source[index == c] for c in range(len(classes))]
    self_vals, dist, _ = label_divergences(parts, reg=inner_reg, num_iter_max=inner_num_iter_max,
                                           stop_thr=stop_thr, eps_scaling=eps_scaling)
    # symmetric by construction (the class distances are a symmetric matrix)
    aug = 0.5 * cost_matrix(source, source, 2) + 0.5 * dist.to(source.dtype)[index][:, index]
    self_value = ot_value(aug, reg, solver=solver, symmetric=True, num_iter_max=num_iter_max,
                          stop_thr=stop_thr, eps_scaling=eps_scaling)
    return OTDDSourceTerms(classes=classes, class_self=self_vals, class_distances=dist,
                           self_value=self_value, reg=reg, inner_reg=inner_reg)


@torch.no_grad()
def label_distances(source: Tensor, source_labels: Tensor, target: Tensor, target_clusters: Tensor,
                    *, inner_reg: float = 0.1, source_terms: OTDDSourceTerms | None = None,
                    target_pairs: bool = True, inner_num_iter_max: int = INNER_ITERS,
                    stop_thr: float | None = None,
                    eps_scaling: float | None = EPS_SCALING) -> LabelDistances:
    """Label-to-label distances between source classes and target clusters, without gradient.

    ``source_terms`` supplies the source classes' self-terms (computed once per run);
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
    kw = dict(reg=inner_reg, num_iter_max=inner_num_iter_max, eps_scaling=eps_scaling,
              stop_thr=stop_thr)
    _, st, t_self = label_divergences(s_parts, t_parts, self_a=s_self, **kw)
    tt = None
    if target_pairs:
        _, tt, _ = label_divergences(t_parts, self_a=t_self, **kw)
        tt = tt.to(target.dtype)
    return LabelDistances(target_classes=t_classes, source_target=st.to(target.dtype),
                          target_target=tt)


def class_conditional_alignment(source: Tensor, source_labels: Tensor, target: Tensor,
                                target_clusters: Tensor, *, reg: float = 0.1, inner_reg: float = 0.1,
                                per_cluster: bool = False, cluster_weights: Tensor | None = None,
                                source_terms: OTDDSourceTerms | None = None,
                                distances: LabelDistances | None = None,
                                inner_num_iter_max: int = INNER_ITERS,
                                solver: str = DEFAULT_SOLVER,
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
    passed to reuse precomputed constants. Solver settings (``solver``, ``num_iter_max``,
    ``stop_thr``, ``eps_scaling``): see the module docstring; the self-terms (symmetric augmented
    costs) use the torch solver's symmetric iteration.
    """
    check_solver_args(solver, num_iter_max, stop_thr, eps_scaling)
    okw = dict(solver=solver, num_iter_max=num_iter_max, stop_thr=stop_thr, eps_scaling=eps_scaling)
    ikw = dict(inner_reg=inner_reg, inner_num_iter_max=inner_num_iter_max, stop_thr=stop_thr,
               eps_scaling=eps_scaling)
    if source_terms is None:
        source_terms = otdd_source_terms(source, source_labels, reg=reg, num_iter_max=num_iter_max,
                                         solver=solver, **ikw)
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
        # own: symmetric by construction (tt is a symmetric matrix)
        return (ot_value(cross, reg, **okw) - 0.5 * source_terms.self_value.to(t.dtype)
                - 0.5 * ot_value(own, reg, symmetric=True, **okw))

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
