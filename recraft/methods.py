"""RECRAFT as a method plugin, registered like any file in ``baselines/``.

* ``recraft`` — the paper's formulation: ε·W₁ FA + λ·H(Y_t | Y_s) FLD minimised jointly,
  source head recalibrated to level ε (paper eqs. 13, 14, 21, 22).
* ``recraft-ref`` — the released code's behaviour: debiased Sinkhorn divergence FA steps, then FLD
  epochs of H(Y_s | Y_t) per target class with the source head trainable, τ = 0.4 recalibration
  for 2D only, the code's FA lr ×10 and StepLR schedule (recraft-spec §3.2, §5.2, §10).
"""
from __future__ import annotations

from recraft.family import FineTuningMethod, _Paper


class Recraft(_Paper):
    name = "recraft"
    version = "1"
    summary = "RECRAFT, paper formulation: ε·FA + FLD jointly, ε-recalibrated source head"
    paper = "Tran et al., AISTATS 2026 (arXiv 2601.18231)"
    space_module = "search_spaces.recraft"


class RecraftReference(FineTuningMethod):
    name = "recraft-ref"
    version = "1"
    summary = "RECRAFT as the reference code runs it: Sinkhorn FA steps, then H(Y_s|Y_t) FLD epochs"
    paper = "github:khiembk/RECRAFT @ abc2a046"
    variant_of = "recraft"
    space_module = "search_spaces.recraft_ref"
    fa_loss = "sinkhorn_div"
    fld = "src_given_tgt"
    combine = "sequential"
    recal = "reference"
    train_source_head = True
    token_mode = "per_token"
    reference_schedule = True
