"""Ablation: RECRAFT without FLD (its FA phase alone, same steps, lr and weights)."""
from __future__ import annotations

from recraft.family import _Paper
from search_spaces import fa_only as fa_only_space


class FeatureAlignmentOnly(_Paper):
    name = "fa-only"
    version = "2"
    summary = "RECRAFT without FLD (ε·W₁ feature alignment only)"
    variant_of = "recraft"
    space_module = fa_only_space
    ablates = ("fld",)
