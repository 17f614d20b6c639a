"""Stage-1 losses of RECRAFT and ORCA: Feature Alignment (FA) and Feature-Label Distortion (FLD).

Which variant is which:

* FA ``"w1"`` -> :func:`wasserstein_fa`: **the paper** (eq. 14), ``W1`` with Euclidean ground cost
  between the source and target feature clouds (entropic or exact); the ε weight is applied by
  stage 1's plan (:mod:`recraft.align`).
* FA ``"sinkhorn_div"`` -> :func:`sinkhorn_divergence`: **the reference RECRAFT code**, a
  label-free debiased Sinkhorn divergence with cost ``1/2 |x-y|^2`` and ``eps = 0.1``, no epsilon
  weight (spec §3.2).
* FA ``"otdd"`` -> :func:`class_conditional_alignment`: **ORCA**, the OTDD surrogate with real
  source labels and k-means target clusters; label-to-label distances are constants (spec §8.2),
  computed in one place (:func:`label_divergences`).
* FLD ``"tgt_given_src"`` -> ``H(Y_t | Y_s)``: **the paper's** meaning (eqs. 20-21), over the whole
  target set with :class:`RunningJoint`.
* FLD ``"src_given_tgt"`` -> ``H(Y_s | Y_t)``: **the reference code's** default
  (``label_matching_by_entropy``); minimised by collapsing all pseudo labels (spec §10.6).

:class:`FeatureAlignment` binds a variant (picked by string) to a fixed source cloud and caches the
source-only terms. The OT solvers are in :mod:`recraft.ot`; target discretisation for FLD/OTDD in
:mod:`recraft.discretise`.
"""
from recraft.ot import cost_matrix, entropic_ot

from .alignment import FAVariant, FeatureAlignment, sinkhorn_divergence, wasserstein_fa
from .fld import (FLDDirection, RunningJoint, conditional_entropy, fld_loss, leep_joint,
                  source_entropy)
from .otdd import (LabelDistances, OTDDSourceTerms, class_conditional_alignment, label_distances,
                   label_divergences, otdd_source_terms)

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
    "label_divergences",
    "leep_joint",
    "otdd_source_terms",
    "sinkhorn_divergence",
    "source_entropy",
    "wasserstein_fa",
]
