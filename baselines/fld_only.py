"""Ablation: RECRAFT without FA (its FLD phase alone, with the ε-recalibrated source head)."""
from __future__ import annotations

from recraft.family import _Paper


class FeatureLabelDistortionOnly(_Paper):
    name = "fld-only"
    version = "2"
    summary = "RECRAFT without FA (H(Y_t|Y_s) FLD only)"
    variant_of = "recraft"
    space_module = "search_spaces.fld_only"
    ablates = ("fa",)
