"""Source features (spec §2) and frozen-body pooled features for the source head.

* :func:`source_features` — **2D**: the pretrained Swin patch-embedding output (conv + norm) on the
  proxy images bilinearly resized to the body's image size, mean over tokens → ``(n, embed_dim)``
  (128 for Swin-B). **1D**: the body's embedding-layer output on the proxy sentences (word +
  position [+ token-type] embeddings and the embedding LayerNorm, i.e. what
  ``model.embeddings(input_ids)`` returns, as in ORCA issue #4), mean over the real (non-pad)
  tokens (``pooling="real_tokens"``) or over all positions, padding included (``"all_positions"``,
  the reference code) → ``(n, hidden)``. This is the space the target embedder's token-mean lives in.
* :func:`pooled_body_features` — the frozen body run on those tokens, last hidden state averaged
  over (real) tokens → ``(n, hidden_dim)``: the source head's input (spec §2, "tokens mean-pooled").
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..backbones import Backbone
from .proxies import ProxyData

__all__ = ["POOLINGS", "masked_mean", "frozen", "source_features", "pooled_body_features", "body_pooled_from_tokens"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of ``(B, T, D)``, counting only ``mask == 1`` tokens when a mask is given."""
    if mask is None:
        return x.mean(dim=1)
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


@contextlib.contextmanager
def frozen(backbone: Backbone) -> Iterator[Backbone]:
    """Eval mode and ``requires_grad=False`` on the body and its input layer, restored afterwards."""
    mods = (backbone.body, backbone.input_embedding)
    params = [p for m in mods for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    modes = [m.training for m in mods]
    for p in params:
        p.requires_grad_(False)
    for m in mods:
        m.eval()
    try:
        yield backbone
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
        for m, t in zip(mods, modes):
            m.train(t)


def _device(backbone: Backbone) -> torch.device:
    for p in backbone.body.parameters():
        return p.device
    return torch.device("cpu")


def body_pooled_from_tokens(backbone: Backbone, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Pooled last hidden state of the body run on ``tokens`` (differentiable w.r.t. ``tokens``)."""
    h = backbone.body(tokens, mask) if mask is not None else backbone.body(tokens)
    return masked_mean(h, mask if backbone.spec.kind == "1d" else None)


@torch.no_grad()
def _over_proxy(backbone: Backbone, proxy: ProxyData, batch_size: int, pool) -> torch.Tensor:
    """``pool(tokens, mask)`` of the body's input tokens for every proxy batch, on CPU."""
    dev = _device(backbone)
    out = []
    with frozen(backbone):
        for x, mask, _ in proxy.batches(batch_size):
            x = x.to(dev)
            mask = mask.to(dev) if mask is not None else None
            z = backbone.input_tokens(x, mask)
            out.append(pool(z, mask).float().cpu())
    return torch.cat(out)


#: how 1D source features average the token positions (2D images have no padding)
POOLINGS = ("real_tokens", "all_positions")


def source_features(backbone: Backbone, proxy: ProxyData, batch_size: int = 64, *,
                    pooling: str = "real_tokens") -> torch.Tensor:
    """Token-mean of the body's own input layer on the proxy data, ``(n, embed_dim)``, on CPU.

    ``pooling="real_tokens"`` averages the real (non-pad) tokens of a sentence;
    ``"all_positions"`` averages all ``max_length`` positions, padding included, which is what the
    reference code does with its precomputed 32-position arrays (spec §2: "mean over the 32
    tokens").
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if pooling == "all_positions":
        return _over_proxy(backbone, proxy, batch_size, lambda z, mask: z.mean(dim=1))
    return _over_proxy(backbone, proxy, batch_size, masked_mean)


def pooled_body_features(backbone: Backbone, proxy: ProxyData, batch_size: int = 64) -> torch.Tensor:
    """Frozen-body pooled last hidden state on the proxy data, ``(n, hidden_dim)``, on CPU."""
    return _over_proxy(backbone, proxy, batch_size,
                       lambda z, mask: body_pooled_from_tokens(backbone, z, mask))
