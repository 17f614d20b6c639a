"""The source head: fitting on frozen-body features, and ε (Lipschitz) recalibration (spec §2, §4).

**Fitting** (:func:`train_source_head`). ``Linear(hidden_dim → n_classes)`` on the frozen body's
pooled features of the proxy data; AdamW (lr 1e-4, wd 0.05), cosine schedule stepped per epoch,
batch 4 by default. The body is frozen and there is no augmentation, so the pooled features are
computed once and the head trains on them directly (same result, far cheaper).

**Recalibration** (:func:`recalibrate_head`), a squared-hinge gradient penalty with ρ = 100, trained
by double backprop (``create_graph=True``) through the frozen body into the head only.

* ``mode="paper"`` (1D and 2D). The representation is the one FA measures: the token-mean ``r`` of
  the body's input tokens ``z``. We write ``z = r·1ᵀ + (z − mean(z))`` with the residual held fixed,
  so ``r`` is broadcast over the tokens and ``∂ℓ/∂r = Σ_t ∂ℓ/∂z_t``: the change of the source loss
  when every token moves by the same vector, which is exactly how the target's pooled embedding
  moves under FA's transport. The per-sample loss ``CE_b`` is differentiated w.r.t. its own ``r_b``
  (samples do not interact in the eval-mode body, so one ``grad`` of ``Σ_b CE_b`` gives every
  per-sample gradient exactly). Loss: ``mean_b CE_b + (ρ/B)·Σ_b max(0, ‖∂CE_b/∂r_b‖₂ − ε)²``.

  The penalty is soft and acts only on the samples of each batch, so the *maximum* over the proxy
  set can stay far above ε (measured in a small run: 0.694 → 0.691 against ε = 0.3). So paper mode
  enforces the level by default (``enforce=None`` → on): when the achieved level (the maximum above)
  exceeds ``LIPSCHITZ_TOLERANCE · ε`` (1.1 ε), a *calibration projection* makes the constraint hold
  exactly on the proxy set: the head's weight and bias are scaled by the largest ``α ∈ (0, 1]``
  found by bisection with ``max_b ‖∂CE_b/∂r_b‖ ≤ ε``. Scaling a linear head's logits by ``α > 0``
  keeps every argmax, so proxy accuracy is unchanged, and the search is exact and cheap (with
  ``M_b = ∂logits_b/∂r_b``, one backward per class, the scaled head's gradient is
  ``α·M_bᵀ(softmax(α·logits_b) − y_b)``). Caveat: the norm is not monotone in ``α`` (a less
  confident head has larger ``p − y``), so closing even a small gap can need a small ``α``, i.e. a
  much flatter head (which matters for FLD's entropies); a warning is logged when ``α < 0.5`` and
  ``RecalibrationResult.scale`` records it. ``enforce=False`` keeps the soft penalty only; the
  achieved level is then reported and a warning says when it is above 1.1 ε.
* ``mode="reference"`` (the released code, 2D only): τ = 0.4 fixed, the gradient of the
  **batch-mean** CE w.r.t. the token tensor ``z`` (B, T, D), its norm taken over the token axis
  separately per channel, penalty ``(ρ/B)·Σ_b Σ_c max(0, n_bc − τ)²``. For 1D the reference does
  no recalibration, and neither do we. The batch-mean gradient scales as ``1/B``, so τ binds only at
  the code's batch size (4): a batch of 8 halves every norm (a looser bound).
* ``mode="none"`` (no recalibration, e.g. ``recraft-no-recal``): the same epochs, batches (same
  order) and cosine schedule with the penalty left out, i.e. plain CE. An ablation of the penalty
  must keep the head's training otherwise equal.

:func:`max_gradient_norm` measures ``max_b ‖∂CE_b/∂r_b‖₂`` over the proxy data (``measure="paper"``),
or the reference quantity ``max_{b,c} n_bc`` (``measure="reference"``, batch-size dependent).
"""
from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from ..backbones import Backbone
from .features import body_pooled_from_tokens, frozen, masked_mean, pooled_body_features
from .projection import calibration_scale
from .proxies import ProxyData

__all__ = [
    "RecalibrationResult",
    "REFERENCE_TAU",
    "LIPSCHITZ_TOLERANCE",
    "MODES",
    "train_source_head",
    "recalibrate_head",
    "per_sample_gradient_norms",
    "reference_gradient_norms",
    "max_gradient_norm",
    "proxy_accuracy",
    "calibration_scale",
]

REFERENCE_TAU = 0.4
#: paper mode counts ε as reached when the achieved level is at most this multiple of it
LIPSCHITZ_TOLERANCE = 1.1
MODES = ("paper", "reference", "none")

log = logging.getLogger(__name__)


@dataclass
class RecalibrationResult:
    head: nn.Linear
    mode: str
    epsilon: float | None
    rho: float
    epochs: int
    max_norm_after_penalty: float | None = None  # paper measure, before the projection
    scale: float = 1.0  # calibration projection factor (1.0 = not needed / not applied)
    history: list[dict[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _device(backbone: Backbone) -> torch.device:
    for p in backbone.body.parameters():
        return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def _math_attention() -> Iterator[None]:
    """Double backward needs the math SDPA kernel (fused CUDA kernels have no second derivative)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover
        yield
        return
    with sdpa_kernel(SDPBackend.MATH):
        yield


def _cosine(base_lr: float, epoch: int, t_max: int) -> float:
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(epoch, t_max) / max(t_max, 1)))


def _new_head(in_dim: int, n_classes: int, seed: int) -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(in_dim, n_classes)


def _to(x: torch.Tensor | None, dev: torch.device) -> torch.Tensor | None:
    return None if x is None else x.to(dev)


def _paper_grads(head: nn.Module, backbone: Backbone, x: torch.Tensor, mask: torch.Tensor | None,
                 y: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-sample ∂CE_b/∂r_b (B, D), per-sample CE (B,), logits (B, K)) with r the token mean."""
    with torch.no_grad():
        z0 = backbone.input_tokens(x, mask)
        m = mask if backbone.spec.kind == "1d" else None
        r0 = masked_mean(z0, m)
        resid = z0 - r0[:, None, :]
    r = r0.clone().requires_grad_(True)
    z = r[:, None, :] + resid
    logits = head(body_pooled_from_tokens(backbone, z, mask))
    ce = F.cross_entropy(logits, y, reduction="none")
    (g,) = torch.autograd.grad(ce.sum(), r, create_graph=create_graph)
    return g, ce, logits


# --------------------------------------------------------------------------------------------------
# fitting and measuring
# --------------------------------------------------------------------------------------------------


def train_source_head(
    backbone: Backbone,
    proxy: ProxyData,
    *,
    epochs: int = 10,
    lr: float = 1e-4,
    weight_decay: float = 0.05,
    batch_size: int = 4,
    seed: int = 0,
    t_max: int | None = None,
    head: nn.Linear | None = None,
    features: torch.Tensor | None = None,
) -> nn.Linear:
    """Fit ``Linear(hidden_dim → n_classes)`` with plain CE on frozen-body pooled proxy features.

    ``t_max``: cosine period in epochs (default ``epochs``; the 2D reference uses 20 across the CE
    and penalty phases). ``features``: precomputed :func:`pooled_body_features` to reuse.
    """
    dev = _device(backbone)
    if features is None:
        features = pooled_body_features(backbone, proxy)
    feats = features.to(dev)
    labels = proxy.labels.to(dev)
    if head is None:
        head = _new_head(feats.shape[1], proxy.n_classes, seed)
    head = head.to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    t_max = t_max or epochs
    head.train()
    for epoch in range(epochs):
        for grp in opt.param_groups:
            grp["lr"] = _cosine(lr, epoch, t_max)
        order = torch.randperm(len(labels), generator=gen).to(dev)
        for i in range(0, len(order), batch_size):
            idx = order[i: i + batch_size]
            loss = F.cross_entropy(head(feats[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    head.eval()
    return head


@torch.no_grad()
def proxy_accuracy(head: nn.Module, backbone: Backbone, proxy: ProxyData, *, batch_size: int = 64,
                   features: torch.Tensor | None = None) -> float:
    """Accuracy of ``head`` on the frozen body's pooled proxy features."""
    if features is None:
        features = pooled_body_features(backbone, proxy, batch_size)
    dev = next(head.parameters()).device
    pred = head(features.to(dev)).argmax(dim=1).cpu()
    return float((pred == proxy.labels).float().mean())


def per_sample_gradient_norms(head: nn.Module, backbone: Backbone, inputs: torch.Tensor, labels: torch.Tensor,
                              attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``‖∂CE_b/∂r_b‖₂`` for each sample (paper measure; ``r`` = token-mean representation), ``(B,)``."""
    dev = _device(backbone)
    with frozen(backbone), torch.enable_grad():
        g, _, _ = _paper_grads(head, backbone, inputs.to(dev), _to(attention_mask, dev), labels.to(dev), False)
    return g.norm(dim=1).detach()


def reference_gradient_norms(head: nn.Module, backbone: Backbone, inputs: torch.Tensor, labels: torch.Tensor,
                             attention_mask: torch.Tensor | None = None, create_graph: bool = False
                             ) -> torch.Tensor:
    """Reference quantity: norms over the token axis, per channel, of ``∂CE_mean/∂z``, ``(B, D)``."""
    dev = _device(backbone)
    x, mask, y = inputs.to(dev), _to(attention_mask, dev), labels.to(dev)
    with torch.no_grad():
        z0 = backbone.input_tokens(x, mask)
    z = z0.detach().requires_grad_(True)
    ce = F.cross_entropy(head(body_pooled_from_tokens(backbone, z, mask)), y)
    (g,) = torch.autograd.grad(ce, z, create_graph=create_graph)
    return g.norm(dim=1)


def max_gradient_norm(head: nn.Module, backbone: Backbone, proxy: ProxyData, *, measure: str = "paper",
                      batch_size: int = 32) -> float:
    """Largest gradient norm over the proxy data.

    ``measure="paper"``: ``max_b ‖∂CE_b/∂r_b‖₂`` (independent of ``batch_size``).
    ``measure="reference"``: ``max_{b,c}`` of the reference's per-channel token-axis norm of the
    batch-mean CE gradient (depends on ``batch_size``; the reference trains with 4).
    """
    if measure not in ("paper", "reference"):
        raise ValueError(f"measure must be 'paper' or 'reference', got {measure!r}")
    best = 0.0
    with frozen(backbone):
        for x, mask, y in proxy.batches(batch_size):
            if measure == "paper":
                n = per_sample_gradient_norms(head, backbone, x, y, mask)
            else:
                with torch.enable_grad():
                    n = reference_gradient_norms(head, backbone, x, y, mask).detach()
            best = max(best, float(n.max()))
    return best


# --------------------------------------------------------------------------------------------------
# recalibration
# --------------------------------------------------------------------------------------------------


def recalibrate_head(
    head: nn.Linear,
    backbone: Backbone,
    proxy: ProxyData,
    *,
    epsilon: float | None,
    rho: float = 100.0,
    mode: str = "paper",
    epochs: int = 10,
    lr: float = 1e-4,
    weight_decay: float = 0.05,
    batch_size: int = 4,
    seed: int = 0,
    t_max: int | None = None,
    start_epoch: int = 0,
    enforce: bool | None = None,
    features: torch.Tensor | None = None,
) -> RecalibrationResult:
    """Refit ``head`` (in place) so the proxy loss is about ε-Lipschitz in the representation.

    Args:
        epsilon: ε (paper mode). Reference mode uses τ = 0.4 whatever is passed here (pass None);
            ``"none"`` ignores it.
        rho: penalty weight ρ.
        mode: ``"paper"``, ``"reference"`` or ``"none"`` (see the module docstring). Reference 1D:
            no-op.
        epochs, lr, weight_decay, batch_size: the penalty phase (AdamW, cosine per epoch).
        t_max, start_epoch: cosine period and offset, to continue a schedule begun by
            :func:`train_source_head` (reference 2D: 10 CE epochs then 10 penalty epochs, T_max 20).
        enforce: apply the calibration projection when the achieved level exceeds
            ``LIPSCHITZ_TOLERANCE · ε`` (default: on in paper mode, off otherwise; see the module
            docstring). Uses the paper measure, also in reference mode.
        features: precomputed :func:`pooled_body_features` (``"none"`` mode trains on them).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    kind = backbone.spec.kind
    if mode == "reference":
        if kind == "1d":
            return RecalibrationResult(head, mode, None, rho, 0)
        epsilon = REFERENCE_TAU
    if mode == "none":
        return _continue_plain(head, backbone, proxy, epochs=epochs, lr=lr, weight_decay=weight_decay,
                               batch_size=batch_size, seed=seed, t_max=t_max, start_epoch=start_epoch,
                               rho=rho, features=features)
    if epsilon is None or epsilon <= 0:
        raise ValueError(f"epsilon must be positive in paper mode, got {epsilon!r}")
    enforce = (mode == "paper") if enforce is None else bool(enforce)
    dev = _device(backbone)
    head = head.to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed + 1)
    t_max = t_max or (start_epoch + epochs)
    history: list[dict[str, float]] = []
    with frozen(backbone), _math_attention():
        head.train()
        for epoch in range(epochs):
            for grp in opt.param_groups:
                grp["lr"] = _cosine(lr, start_epoch + epoch, t_max)
            tot_ce = tot_pen = tot_max = 0.0
            nb = 0
            for idx in proxy.batch_indices(batch_size, shuffle=True, generator=gen):
                mask = proxy.attention_mask[idx] if proxy.attention_mask is not None else None
                x, mask, y = proxy.inputs[idx].to(dev), _to(mask, dev), proxy.labels[idx].to(dev)
                b = x.shape[0]
                if mode == "paper":
                    g, ce, _ = _paper_grads(head, backbone, x, mask, y, create_graph=True)
                    norms = g.norm(dim=1)
                    ce_mean = ce.mean()
                else:
                    with torch.no_grad():
                        z0 = backbone.input_tokens(x, mask)
                    z = z0.detach().requires_grad_(True)
                    ce_mean = F.cross_entropy(head(body_pooled_from_tokens(backbone, z, mask)), y)
                    (gz,) = torch.autograd.grad(ce_mean, z, create_graph=True)
                    norms = gz.norm(dim=1)  # (B, D): over tokens, per channel
                penalty = (rho / b) * F.relu(norms - epsilon).pow(2).sum()
                loss = ce_mean + penalty
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot_ce += float(ce_mean.detach())
                tot_pen += float(penalty.detach())
                tot_max = max(tot_max, float(norms.detach().max()))
                nb += 1
            history.append({"epoch": start_epoch + epoch, "ce": tot_ce / max(nb, 1),
                            "penalty": tot_pen / max(nb, 1), "max_norm_seen": tot_max})
        head.eval()
    result = RecalibrationResult(head, mode, float(epsilon), rho, epochs, history=history)
    if mode == "paper" or enforce:
        result.max_norm_after_penalty = max_gradient_norm(head, backbone, proxy)
    if enforce and result.max_norm_after_penalty is not None and \
            result.max_norm_after_penalty > LIPSCHITZ_TOLERANCE * epsilon:
        alpha, _ = calibration_scale(head, backbone, proxy, float(epsilon))
        with torch.no_grad():
            head.weight.mul_(alpha)
            head.bias.mul_(alpha)
        result.scale = alpha
        if alpha < 0.5:
            log.warning("calibration projection scaled the source head by %.3g to reach eps=%.4g "
                        "(max norm after the penalty was %.4g); consider more penalty epochs or a larger eps",
                        alpha, epsilon, result.max_norm_after_penalty)
    return result


def _continue_plain(head: nn.Linear, backbone: Backbone, proxy: ProxyData, *, epochs: int, lr: float,
                    weight_decay: float, batch_size: int, seed: int, t_max: int | None,
                    start_epoch: int, rho: float, features: torch.Tensor | None) -> RecalibrationResult:
    """``mode="none"``: the recalibration epochs with the penalty left out (plain CE).

    Same optimizer, cosine schedule, seed and batch order as the penalty phase, so that a method
    without recalibration differs from one with it by the penalty alone. The body is frozen and
    the head is linear, so CE on the precomputed pooled features is CE through the body.
    """
    dev = _device(backbone)
    if features is None:
        features = pooled_body_features(backbone, proxy)
    feats, labels = features.to(dev), proxy.labels.to(dev)
    head = head.to(dev)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed + 1)
    t_max = t_max or (start_epoch + epochs)
    history: list[dict[str, float]] = []
    head.train()
    for epoch in range(epochs):
        for grp in opt.param_groups:
            grp["lr"] = _cosine(lr, start_epoch + epoch, t_max)
        tot_ce, nb = 0.0, 0
        for idx in proxy.batch_indices(batch_size, shuffle=True, generator=gen):
            idx = idx.to(dev)
            loss = F.cross_entropy(head(feats[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_ce += float(loss.detach())
            nb += 1
        history.append({"epoch": start_epoch + epoch, "ce": tot_ce / max(nb, 1), "penalty": 0.0})
    head.eval()
    return RecalibrationResult(head, "none", None, rho, epochs, history=history)
