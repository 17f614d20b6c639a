"""Ablation: RECRAFT's FLD with the ε-recalibrated source head, without FA."""
from __future__ import annotations

from recraft.family import _Paper


class FeatureLabelDistortionOnly(_Paper):
    name = "fld-only"
    version = "1"
    summary = "RECRAFT without FA (H(Y_t|Y_s) FLD only)"
    variant_of = "recraft"
    space_module = "search_spaces.fld_only"
    fa_loss = "none"
