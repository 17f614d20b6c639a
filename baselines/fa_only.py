"""Ablation: RECRAFT without FLD (its FA phase alone, same steps, lr and weights)."""
from __future__ import annotations

from recraft.family import _Paper


class FeatureAlignmentOnly(_Paper):
    name = "fa-only"
    version = "2"
    summary = "RECRAFT without FLD (ε·W₁ feature alignment only)"
    variant_of = "recraft"
    space_module = "search_spaces.fa_only"
    ablates = ("fld",)
