"""RECRAFT as a method plugin, registered like any file in ``baselines/``.

* ``recraft`` — the paper's formulation: ε·W₁ FA steps, then H(Y_t | Y_s) FLD epochs estimated
  over the whole target training set, source head recalibrated to level ε (paper eqs. 13, 14,
  19–22, App. I; ``combine = "joint"`` sums ε·FA + FLD instead, see docs/divergences.md).
* ``recraft-ref`` — the released code's behaviour: debiased Sinkhorn divergence FA steps, then FLD
  epochs of H(Y_s | Y_t) per target class with the source head trainable, τ = 0.4 recalibration
  for 2D only (source head at batch 4: 2D 10 CE + 10 penalty epochs, 1D 30 CE epochs), the
  code's FA lr ×10 and StepLR schedule, FLD on per-class chunks (docs/divergences.md).
"""
from __future__ import annotations

from recraft.family import FineTuningMethod, _Paper


class Recraft(_Paper):
    name = "recraft"
    version = "2"
    summary = "RECRAFT, paper formulation: ε·FA then whole-set FLD, ε-recalibrated source head"
    paper = "Tran et al., AISTATS 2026 (arXiv 2601.18231)"
    space_module = "search_spaces.recraft"


class RecraftReference(FineTuningMethod):
    name = "recraft-ref"
    version = "2"
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
    fld_estimator = "batch"
    #: not an ablation: the released code's whole behaviour, compared with the paper's
    reproduction = True
