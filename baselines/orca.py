"""ORCA (Shen et al., ICML 2023): class-conditional OTDD alignment of the embedder, then refine."""
from __future__ import annotations

from recraft.family import FineTuningMethod
from search_spaces import orca as orca_space


class Orca(FineTuningMethod):
    name = "orca"
    version = "2"
    summary = "ORCA: label-aware OTDD alignment (k-means target clusters), then fine-tuning"
    paper = "Shen et al., ICML 2023"
    space_module = orca_space
    fa_loss = "otdd"
    fld = "none"
    combine = "sequential"
    recal = "none"
    embedder_init = "orca"
    reference_schedule = True
