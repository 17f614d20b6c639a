"""Ablation: RECRAFT with a plain (not ε-recalibrated) source head."""
from __future__ import annotations

from recraft.family import _Paper


class RecraftNoRecalibration(_Paper):
    name = "recraft-no-recal"
    version = "1"
    summary = "RECRAFT without ε-recalibration of the source head"
    variant_of = "recraft"
    space_module = "search_spaces.recraft_no_recal"
    recal = "none"
