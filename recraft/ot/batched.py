"""Many small entropic OT problems at once, without gradient (OTDD's label-to-label distances)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

__all__ = ["batched_entropic_ot"]


@torch.no_grad()
def batched_entropic_ot(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor], reg: float, *,
                        num_iter_max: int = 1000, stop_thr: float = 1e-7, eps_scaling: float = 0.5,
                        scaling_iters: int = 10, max_entries: int = 1 << 24) -> torch.Tensor:
    """``OT_eps(x_b, y_b)`` for many point-set pairs at once (no gradient), float64, shape ``(B,)``.

    ``OT_eps = min <π, C> + reg · KL(π | a ⊗ b)`` with ``C = |x - y|²``, uniform weights and an
    absolute ``reg``: the inner label-to-label problem of OTDD (spec §3.2, §8.2), the quantity
    :func:`recraft.losses.entropic_ot` computes with ``p=2, cost_scale=1``. The pairs are padded
    into one ``(B, n, m)`` problem (padded points get zero weight, ``log a = -inf``) and solved by
    log-domain Sinkhorn with ε-scaling (``scaling_iters`` iterations at each of
    ``max(C) · eps_scaling^k``, then up to ``num_iter_max`` at ``reg`` until every problem's L2
    row-marginal error is below ``stop_thr``), in chunks of at most ``max_entries`` cost entries;
    problems of very different sizes are solved in groups of similar size (:func:`_size_groups`).
    """
    if len(xs) != len(ys):
        raise ValueError("xs and ys must pair up")
    if not xs:
        return torch.zeros(0, dtype=torch.float64)
    n_max, m_max = max(len(x) for x in xs), max(len(y) for y in ys)
    per = max(1, max_entries // max(1, n_max * m_max))
    if len(xs) > per:
        return torch.cat([batched_entropic_ot(xs[i:i + per], ys[i:i + per], reg,
                                              num_iter_max=num_iter_max, stop_thr=stop_thr,
                                              eps_scaling=eps_scaling, scaling_iters=scaling_iters,
                                              max_entries=max_entries)
                          for i in range(0, len(xs), per)])
    groups = _size_groups(xs, ys, n_max, m_max)
    if len(groups) > 1:
        out = torch.empty(len(xs), dtype=torch.float64, device=xs[0].device)
        for idx in groups:
            out[idx] = batched_entropic_ot([xs[i] for i in idx], [ys[i] for i in idx], reg,
                                           num_iter_max=num_iter_max, stop_thr=stop_thr,
                                           eps_scaling=eps_scaling, scaling_iters=scaling_iters,
                                           max_entries=max_entries)
        return out
    dev = xs[0].device
    d = xs[0].shape[1]
    bsz = len(xs)
    X = torch.zeros(bsz, n_max, d, dtype=torch.float64, device=dev)
    Y = torch.zeros(bsz, m_max, d, dtype=torch.float64, device=dev)
    la = torch.full((bsz, n_max), -math.inf, dtype=torch.float64, device=dev)
    lb = torch.full((bsz, m_max), -math.inf, dtype=torch.float64, device=dev)
    for i, (x, y) in enumerate(zip(xs, ys)):
        if len(x) == 0 or len(y) == 0:
            raise ValueError("every point set needs at least one point")
        X[i, :len(x)] = x.detach().double()
        Y[i, :len(y)] = y.detach().double()
        la[i, :len(x)] = -math.log(len(x))
        lb[i, :len(y)] = -math.log(len(y))
    va, vb = torch.isfinite(la), torch.isfinite(lb)
    C = torch.cdist(X, Y, compute_mode="donot_use_mm_for_euclid_dist") ** 2
    valid = va[:, :, None] & vb[:, None, :]
    c_max = float(C[valid].max()) if bool(valid.any()) else 0.0
    f = torch.zeros(bsz, n_max, dtype=torch.float64, device=dev)
    g = torch.zeros(bsz, m_max, dtype=torch.float64, device=dev)

    def g_update(eps: float) -> torch.Tensor:
        return -eps * torch.logsumexp(la[:, :, None] + (f[:, :, None] - C) / eps, dim=1)

    def f_update(eps: float) -> torch.Tensor:
        return -eps * torch.logsumexp(lb[:, None, :] + (g[:, None, :] - C) / eps, dim=2)

    eps = max(c_max, reg)
    if eps_scaling is not None and 0 < eps_scaling < 1:
        while eps > reg:
            for _ in range(scaling_iters):
                g = g_update(eps)
                f = f_update(eps)
            eps = max(eps * eps_scaling, reg)
    eps = reg
    for it in range(num_iter_max):
        g = g_update(eps)
        f = f_update(eps)
        if it % 10 == 9 or it == num_iter_max - 1:
            # after the f-update the rows are exact; check the column marginals
            logcol = lb + g / eps + torch.logsumexp(la[:, :, None] + (f[:, :, None] - C) / eps, dim=1)
            err = torch.where(vb, logcol.exp() - lb.exp(), torch.zeros_like(g)).norm(dim=1)
            if float(err.max()) < stop_thr:
                break
    log_pi = la[:, :, None] + lb[:, None, :] + (f[:, :, None] + g[:, None, :] - C) / eps
    pi = torch.where(valid, log_pi.exp(), torch.zeros_like(C))
    # primal entropic objective <π, C> + reg · KL(π | a ⊗ b) = Σ π (f_i + g_j) exactly
    fg = torch.where(valid, f[:, :, None] + g[:, None, :], torch.zeros_like(C))
    return (pi * fg).sum(dim=(1, 2))


#: padding waste (padded cost entries / real ones) above which problems are solved by size group
PAD_WASTE = 4.0


def _size_groups(xs, ys, n_max: int, m_max: int) -> list[list[int]]:
    """Indices of the problems grouped by size (powers of two), when padding all of them to one
    ``(n_max, m_max)`` shape would waste more than :data:`PAD_WASTE` times the real entries (e.g.
    ORCA's OTDD on Cosmic, where one k-means cluster holds most of the targets and every small
    problem was padded to its size, ~40x the work); otherwise one group (a single batched solve)."""
    sizes = [(len(x), len(y)) for x, y in zip(xs, ys)]
    if len(sizes) * n_max * m_max <= PAD_WASTE * sum(n * m for n, m in sizes):
        return [list(range(len(sizes)))]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (n, m) in enumerate(sizes):
        groups.setdefault((max(n - 1, 0).bit_length(), max(m - 1, 0).bit_length()), []).append(i)
    return list(groups.values())
