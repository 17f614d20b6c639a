"""Ablation: RECRAFT with a source head trained without the ε-recalibration penalty (the same
epochs, batches and schedule, plain CE)."""
from __future__ import annotations

from recraft.family import _Paper
from search_spaces import recraft_no_recal as recraft_no_recal_space


class RecraftNoRecalibration(_Paper):
    name = "recraft-no-recal"
    version = "2"
    summary = "RECRAFT without ε-recalibration of the source head"
    variant_of = "recraft"
    space_module = recraft_no_recal_space
    ablates = ("recalibration",)
