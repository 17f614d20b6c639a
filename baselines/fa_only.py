"""Ablation: RECRAFT's ε-weighted FA without FLD."""
from __future__ import annotations

from recraft.family import _Paper


class FeatureAlignmentOnly(_Paper):
    name = "fa-only"
    version = "1"
    summary = "RECRAFT without FLD (ε·W₁ feature alignment only)"
    variant_of = "recraft"
    space_module = "search_spaces.fa_only"
    fld = "none"
