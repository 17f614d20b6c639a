"""Ablation: RECRAFT without FA (its FLD phase alone, with the ε-recalibrated source head)."""
from __future__ import annotations

from recraft.family import _Paper
from search_spaces import fld_only as fld_only_space


class FeatureLabelDistortionOnly(_Paper):
    name = "fld-only"
    version = "2"
    summary = "RECRAFT without FA (H(Y_t|Y_s) FLD only)"
    variant_of = "recraft"
    space_module = fld_only_space
    ablates = ("fa",)
