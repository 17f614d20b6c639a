"""The calibration projection: the largest logit scale of a linear source head that meets ε.

Scaling a linear head's weight and bias by ``α ∈ (0, 1]`` scales its logits, keeps every argmax
(so proxy accuracy) and changes the per-sample gradient of CE w.r.t. the token-mean
representation to ``α·M_bᵀ(softmax(α·logits_b) − y_b)`` with ``M_b = ∂logits_b/∂r_b``, which is
computed once (one backward per class). :func:`calibration_scale` bisects for the largest ``α``
whose largest norm over the proxy set is at most ε (see ``recraft.source.recalibration``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..backbones import Backbone
from .features import _device, body_pooled_from_tokens, frozen, masked_mean
from .proxies import ProxyData

__all__ = ["calibration_scale"]


def _to(x: torch.Tensor | None, dev: torch.device) -> torch.Tensor | None:
    return None if x is None else x.to(dev)


def _logit_jacobians(head: nn.Linear, backbone: Backbone, proxy: ProxyData, batch_size: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(M (n, D, K) with M[b,:,k] = ∂logit_k/∂r_b, logits (n, K), labels (n,)), all on CPU."""
    dev = _device(backbone)
    ms, ls = [], []
    k = head.out_features
    with frozen(backbone), torch.enable_grad():
        for x, mask, _ in proxy.batches(batch_size):
            x, mask = x.to(dev), _to(mask, dev)
            with torch.no_grad():
                z0 = backbone.input_tokens(x, mask)
                r0 = masked_mean(z0, mask if backbone.spec.kind == "1d" else None)
                resid = z0 - r0[:, None, :]
            r = r0.clone().requires_grad_(True)
            logits = head(body_pooled_from_tokens(backbone, r[:, None, :] + resid, mask))
            cols = [torch.autograd.grad(logits[:, j].sum(), r, retain_graph=j < k - 1)[0] for j in range(k)]
            ms.append(torch.stack(cols, dim=2).detach().cpu())
            ls.append(logits.detach().cpu())
    return torch.cat(ms), torch.cat(ls), proxy.labels.clone()


def _scaled_max_norm(m: torch.Tensor, logits: torch.Tensor, onehot: torch.Tensor, alpha: float) -> float:
    resid = torch.softmax(alpha * logits, dim=1) - onehot  # (n, K)
    g = alpha * torch.einsum("ndk,nk->nd", m, resid)
    return float(g.norm(dim=1).max())


def calibration_scale(head: nn.Linear, backbone: Backbone, proxy: ProxyData, epsilon: float, *,
                      batch_size: int = 32, iters: int = 40) -> tuple[float, float]:
    """The largest found ``α ∈ (0, 1]`` with ``max_b ‖∂CE_b/∂r_b‖ ≤ ε`` for the head scaled by ``α``.

    Returns ``(α, max norm at α)``. Bisection keeps its lower end feasible, so the returned α always
    satisfies the bound (the map α ↦ max norm need not be monotone; α → 0 is always feasible).
    """
    m, logits, labels = _logit_jacobians(head, backbone, proxy, batch_size)
    m, logits = m.double(), logits.double()
    onehot = F.one_hot(labels, logits.shape[1]).double()
    target = epsilon * (1.0 - 1e-4)
    top = _scaled_max_norm(m, logits, onehot, 1.0)
    if top <= target:
        return 1.0, top
    lo, hi = 0.0, 1.0
    lo_val = 0.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        v = _scaled_max_norm(m, logits, onehot, mid)
        if v <= target:
            lo, lo_val = mid, v
        else:
            hi = mid
    return lo, lo_val
