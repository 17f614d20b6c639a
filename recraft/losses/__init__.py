"""Stage-1 losses of RECRAFT and ORCA: Feature Alignment (FA) and Feature-Label Distortion (FLD).

Which variant is which:

* FA ``"w1"`` -> :func:`wasserstein_fa`: **the paper** (eq. 14), ``epsilon * W1`` with Euclidean
  ground cost between the source and target feature clouds (POT Sinkhorn or exact EMD).
* FA ``"sinkhorn_div"`` -> :func:`sinkhorn_divergence`: **the reference RECRAFT code**, a
  label-free debiased Sinkhorn divergence with cost ``1/2 |x-y|^2`` and ``eps = 0.1``, no epsilon
  weight (spec §3.2).
* FA ``"otdd"`` -> :func:`class_conditional_alignment`: **ORCA**, the OTDD surrogate with real
  source labels and k-means target clusters; label-to-label distances are constants (spec §8.2).
* FLD ``"tgt_given_src"`` -> ``H(Y_t | Y_s)``: **the paper's** meaning (eqs. 20-21).
* FLD ``"src_given_tgt"`` -> ``H(Y_s | Y_t)``: **the reference code's** default
  (``label_matching_by_entropy``); minimised by collapsing all pseudo labels (spec §10.6).

:class:`FeatureAlignment` binds a variant (picked by string) to a fixed source cloud and caches the
source-only terms. Target discretisation for FLD/OTDD lives in :mod:`recraft.discretise`.
"""
from .alignment import (FAVariant, FeatureAlignment, LabelDistances, OTDDSourceTerms,
                        class_conditional_alignment, cost_matrix, entropic_ot, label_distances,
                        otdd_source_terms, sinkhorn_divergence, wasserstein_fa)
from .fld import (FLDDirection, RunningJoint, conditional_entropy, fld_loss, leep_joint,
                  source_entropy)

__all__ = [
    "FAVariant",
    "FLDDirection",
    "FeatureAlignment",
    "LabelDistances",
    "OTDDSourceTerms",
    "RunningJoint",
    "class_conditional_alignment",
    "conditional_entropy",
    "cost_matrix",
    "entropic_ot",
    "fld_loss",
    "label_distances",
    "leep_joint",
    "otdd_source_terms",
    "sinkhorn_divergence",
    "source_entropy",
    "wasserstein_fa",
]
