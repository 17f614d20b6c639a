"""A U-Net (Ronneberger et al. 2015, as PDEBench uses it for field-to-field maps), 1D and 2D.

``levels`` times (two conv-norm-GELU blocks, then a 2× max-pool) down, a bottleneck, and back up
with 2× transposed convolutions, each level concatenating the encoder's features of the same size.
The channels double per level from ``features``. GroupNorm (not PDEBench's BatchNorm) keeps the
model independent of the batch size, which is small here and split across data-parallel workers.
A grid that is not a multiple of ``2**levels`` is padded (replicating the edge) and cropped back.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(conv, cin: int, cout: int) -> nn.Sequential:
    """Two (conv 3, GroupNorm, GELU) layers."""
    def norm(c: int) -> nn.GroupNorm:
        return nn.GroupNorm(min(8, c), c)
    return nn.Sequential(conv(cin, cout, 3, padding=1), norm(cout), nn.GELU(),
                         conv(cout, cout, 3, padding=1), norm(cout), nn.GELU())


class UNet(nn.Module):
    """U-Net for ``dim``-D fields: ``(N, in_channels, *grid) -> (N, out_channels, *grid)``."""

    def __init__(self, in_channels: int, out_channels: int, dim: int, features: int = 16,
                 levels: int = 3):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"UNet: dim must be 1 or 2, got {dim}")
        conv = nn.Conv1d if dim == 1 else nn.Conv2d
        up = nn.ConvTranspose1d if dim == 1 else nn.ConvTranspose2d
        self.dim, self.levels = dim, levels
        self.pool = nn.MaxPool1d(2) if dim == 1 else nn.MaxPool2d(2)
        widths = [features * 2 ** i for i in range(levels + 1)]
        self.down = nn.ModuleList(_block(conv, c_in, c_out) for c_in, c_out
                                  in zip([in_channels] + widths[:levels - 1], widths[:levels]))
        self.bottleneck = _block(conv, widths[levels - 1], widths[levels])
        self.up = nn.ModuleList(up(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(levels)))
        self.decode = nn.ModuleList(_block(conv, 2 * widths[i], widths[i])
                                    for i in reversed(range(levels)))
        self.out = conv(features, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-self.dim:]
        step = 2 ** self.levels
        pad = []
        for n in reversed(size):               # F.pad lists the last axis first
            pad += [0, -n % step]
        h = F.pad(x, pad, mode="replicate") if any(pad) else x
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottleneck(h)
        for up, decode, skip in zip(self.up, self.decode, reversed(skips)):
            h = decode(torch.cat([up(h), skip], dim=1))
        h = self.out(h)
        return h[(..., *(slice(0, n) for n in size))]
