"""Task heads (spec §1.2, §1.3).

* :class:`DensePooler1D` — the 1D dense head: **no parameters**. Each token's hidden vector is
  adaptively average-pooled to ``C_out * b`` values (``b`` bins per token), and the result is laid out
  as ``(B, C_out, T * b)``: token ``t``'s ``b`` values for channel ``c`` become positions
  ``t*b .. t*b + b - 1`` of channel ``c``. With ``b = s`` (the embedder stride) and ``T * s = L_out``
  this is exactly the reference ``adaptive_pooler``. When ``L_out`` is not a multiple of ``T``,
  ``b = ceil(L_out / T)`` and the sequence is then average-pooled to ``L_out``.
* :class:`DenseDecoder2D` — the 2D dense head: a 1×1 conv from the last Swin stage to
  ``u² · k`` channels (``u = image_size / final_grid``, ``k = max(3, C_out)``), PixelShuffle(u) back to
  the body's image size, then the channel axis average-pooled to ``C_out`` (for ``C_out = 1``: the
  mean of the 3 channels, as in the reference), then ``AdaptiveAvgPool2d`` to the target ``(H', W')``.
  The conv is randomly initialised (normal, std 0.02, zero bias: the in22k checkpoint has no MIM
  decoder, and this is what transformers' ``SwinForMaskedImageModeling`` init does).
* :class:`LinearHead1D` — the 1D dense head with parameters: each token's hidden vector goes
  through ``Linear(hidden, C_out * b)`` (zero-initialised, so the model starts at its output
  offset, e.g. the train-mean field) and is laid out as :class:`DensePooler1D` lays out its pools.
  The pooler can only read the body through its last LayerNorm's weights (a random body starts at
  exactly 0 output and moves by about the learning rate per step); profiles that train tiny bodies
  for a few hundred steps use this head instead (``Profile.dense_head_1d``).
* :class:`PointHead` — classification/scalar: mean over tokens, then ``Linear(dim, n_out)``.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .grid import tokens_to_grid

__all__ = ["DensePooler1D", "LinearHead1D", "DenseDecoder2D", "PointHead", "DENSE_HEADS_1D"]

#: the 1D dense heads a profile may choose: the reference's parameter-free pooler, or a linear map
DENSE_HEADS_1D = ("pooler", "linear")


def _lay_out_1d(v: torch.Tensor, out_channels: int, bins: int, out_length: int) -> torch.Tensor:
    """``(B, T, C*b)`` per-token values -> ``(B, C, L_out)``: token t's b values go to t*b..t*b+b-1."""
    b, t, _ = v.shape
    v = v.reshape(b, t, out_channels, bins).permute(0, 2, 1, 3).reshape(b, out_channels, t * bins)
    if t * bins != out_length:
        v = F.adaptive_avg_pool1d(v, out_length)
    return v


class DensePooler1D(nn.Module):
    """Parameter-free 1D dense head: ``(B, T, H)`` → ``(B, C_out, L_out)``."""

    def __init__(self, num_tokens: int, out_channels: int, out_length: int):
        super().__init__()
        self.num_tokens = int(num_tokens)
        self.out_channels = int(out_channels)
        self.out_length = int(out_length)
        self.bins = max(1, math.ceil(self.out_length / self.num_tokens))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, _ = h.shape
        if t != self.num_tokens:
            raise ValueError(f"DensePooler1D built for {self.num_tokens} tokens, got {t}")
        v = F.adaptive_avg_pool1d(h, self.out_channels * self.bins)  # pools the hidden axis: (B, T, C*b)
        return _lay_out_1d(v, self.out_channels, self.bins, self.out_length)


class LinearHead1D(nn.Module):
    """1D dense head with a zero-initialised ``Linear(hidden, C_out * b)`` per token."""

    def __init__(self, hidden_dim: int, num_tokens: int, out_channels: int, out_length: int):
        super().__init__()
        self.num_tokens = int(num_tokens)
        self.out_channels = int(out_channels)
        self.out_length = int(out_length)
        self.bins = max(1, math.ceil(self.out_length / self.num_tokens))
        self.linear = nn.Linear(int(hidden_dim), self.out_channels * self.bins)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.shape[1] != self.num_tokens:
            raise ValueError(f"LinearHead1D built for {self.num_tokens} tokens, got {h.shape[1]}")
        return _lay_out_1d(self.linear(h), self.out_channels, self.bins, self.out_length)


class DenseDecoder2D(nn.Module):
    """2D dense head: 1×1 conv + PixelShuffle to the body resolution, channel pooling, resize.

    Input: final-stage tokens ``(B, h*w, C)`` (row-major) or an NHWC map ``(B, h, w, C)``.
    Output: ``(B, C_out, H', W')``.
    """

    def __init__(self, in_dim: int, final_grid: tuple[int, int], image_size: int, out_channels: int,
                 out_size: tuple[int, int]):
        super().__init__()
        gh, gw = int(final_grid[0]), int(final_grid[1])
        if image_size % gh or image_size % gw or image_size // gh != image_size // gw:
            raise ValueError(f"cannot upsample grid {final_grid} to {image_size} by one integer factor")
        self.final_grid = (gh, gw)
        self.upscale = image_size // gh
        self.out_channels = int(out_channels)
        self.decoder_channels = max(3, self.out_channels)
        self.out_size = (int(out_size[0]), int(out_size[1]))
        self.conv = nn.Conv2d(in_dim, self.upscale**2 * self.decoder_channels, kernel_size=1)
        self.shuffle = nn.PixelShuffle(self.upscale)
        nn.init.normal_(self.conv.weight, std=0.02)
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = tokens_to_grid(h, self.final_grid, "DenseDecoder2D")
        x = h.permute(0, 3, 1, 2).contiguous()  # NCHW
        x = self.shuffle(self.conv(x))  # (B, k, image, image)
        if x.shape[1] != self.out_channels:
            b, k, hh, ww = x.shape
            x = F.adaptive_avg_pool1d(x.permute(0, 2, 3, 1).reshape(b, hh * ww, k), self.out_channels)
            x = x.reshape(b, hh, ww, self.out_channels).permute(0, 3, 1, 2)
        return F.adaptive_avg_pool2d(x, self.out_size)


class PointHead(nn.Module):
    """Mean over tokens + ``Linear(in_dim, n_out)`` (classification or scalar output)."""

    def __init__(self, in_dim: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(in_dim, n_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 4:  # NHWC
            h = h.flatten(1, 2)
        return self.linear(h.mean(dim=1))
