"""RECRAFT as the released code runs it (``recraft-ref``): debiased Sinkhorn divergence FA steps,
then FLD epochs of H(Y_s | Y_t) per target class with the source head trainable, τ = 0.4
recalibration for 2D only (source head at batch 4: 2D 10 CE + 10 penalty epochs, 1D 30 CE
epochs), the code's FA lr ×10 and StepLR schedule, FLD on per-class chunks (docs/divergences.md)."""
from __future__ import annotations

from recraft.family import FineTuningMethod
from search_spaces import recraft_ref as recraft_ref_space


class RecraftReference(FineTuningMethod):
    name = "recraft-ref"
    version = "2"
    summary = "RECRAFT as the reference code runs it: Sinkhorn FA steps, then H(Y_s|Y_t) FLD epochs"
    paper = "github:khiembk/RECRAFT @ abc2a046"
    variant_of = "recraft"
    space_module = recraft_ref_space
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
