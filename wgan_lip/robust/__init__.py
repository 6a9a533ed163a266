"""Certified-robust classifiers on the shared layers: margins, certification, attacks."""

from .attacks import pgd_l2
from .certify import CertificationReport, RadiusResult, certify
from .data import ClassificationDataModule
from .margins import (
    certified_radius,
    hkr_loss,
    is_certified,
    kr_multiclass,
    label_margin,
    linf_to_l2,
    multiclass_hinge,
    prediction_margin,
    tempered_cross_entropy,
)
from .module import PRESETS, EvalRadii, LipschitzClassifier, Objective

__all__ = [
    "PRESETS",
    "CertificationReport",
    "ClassificationDataModule",
    "EvalRadii",
    "LipschitzClassifier",
    "Objective",
    "RadiusResult",
    "certified_radius",
    "certify",
    "hkr_loss",
    "is_certified",
    "kr_multiclass",
    "label_margin",
    "linf_to_l2",
    "multiclass_hinge",
    "pgd_l2",
    "prediction_margin",
    "tempered_cross_entropy",
]
