"""RECRAFT, the paper's formulation: ε·W₁ FA steps, then H(Y_t | Y_s) FLD epochs estimated over
the whole target training set, source head recalibrated to level ε (paper eqs. 13, 14, 19–22,
App. I; ``combine = "joint"`` sums ε·FA + FLD instead, see docs/divergences.md)."""
from __future__ import annotations

from recraft.family import _Paper
from search_spaces import recraft as recraft_space


class Recraft(_Paper):
    name = "recraft"
    version = "2"
    summary = "RECRAFT, paper formulation: ε·FA then whole-set FLD, ε-recalibrated source head"
    paper = "Tran et al., AISTATS 2026 (arXiv 2601.18231)"
    space_module = recraft_space
