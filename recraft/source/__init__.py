"""The source side of RECRAFT/ORCA (spec §2, §4): proxy data, source features, the source head and
its ε-recalibration, bundled as a cached :class:`SourceSide`.

Modules: ``cifar10`` / ``conll`` (readers of the real proxy formats), ``synthetic`` (offline
stand-ins), ``proxies`` (selection and the ``ProxyData`` container), ``features`` (source features,
frozen-body pooled features), ``recalibration`` (head fitting, gradient penalty, measurements),
``side`` (``SourceSide`` and ``build_source_side``).
"""
from .features import POOLINGS, masked_mean, pooled_body_features, source_features
from .proxies import PROXIES, ProxyData, ProxyStandInWarning, load_proxy, resolve_proxy
from .recalibration import (
    LIPSCHITZ_TOLERANCE,
    REFERENCE_TAU,
    RecalibrationResult,
    calibration_scale,
    max_gradient_norm,
    per_sample_gradient_norms,
    proxy_accuracy,
    recalibrate_head,
    reference_gradient_norms,
    train_source_head,
)
from .side import LipschitzNotReachedWarning, SourceSide, build_source_side, source_code_version

__all__ = [
    "PROXIES",
    "ProxyData",
    "ProxyStandInWarning",
    "load_proxy",
    "resolve_proxy",
    "masked_mean",
    "source_features",
    "pooled_body_features",
    "REFERENCE_TAU",
    "RecalibrationResult",
    "train_source_head",
    "recalibrate_head",
    "max_gradient_norm",
    "per_sample_gradient_norms",
    "reference_gradient_norms",
    "proxy_accuracy",
    "calibration_scale",
    "LipschitzNotReachedWarning",
    "LIPSCHITZ_TOLERANCE",
    "POOLINGS",
    "SourceSide",
    "build_source_side",
    "source_code_version",
]
