"""Swin-style token grids: row-major tokens ``(B, h*w, C)`` and the NHWC map ``(B, h, w, C)``."""
from __future__ import annotations

import torch


def tokens_to_grid(tokens: torch.Tensor, grid: tuple[int, int], owner: str) -> torch.Tensor:
    """Row-major tokens ``(B, gh*gw, C)`` as an NHWC map ``(B, gh, gw, C)``; a 4-D map passes through.

    ``owner`` names the module that expects the grid, for the error when the token count is not
    ``gh * gw``.
    """
    if tokens.dim() != 3:
        return tokens
    b, n, c = tokens.shape
    gh, gw = grid
    if n != gh * gw:
        raise ValueError(f"{owner} expects a {gh}x{gw} grid ({gh * gw} tokens), got {n} tokens")
    return tokens.reshape(b, gh, gw, c)
