"""Wasserstein GANs with a hard-constrained (certified) critic and the usual baselines."""

from .architecture import GANArchitecture, GANEvaluation, GANOptimizer, GANSampling
from .critics import CONSTRAINT_DEFAULTS, CONSTRAINTS, build_gan_critic
from .data import ImageDataModule, ToyDataModule
from .features import FeatureNet, load_feature_net, save_feature_net, train_feature_net
from .metrics import (
    certified_w1_metric,
    classifier_fid_kid,
    confident_classes,
    exact_w1_metric,
    generate,
    subsample,
)
from .module import WGAN
from .refine import latent_lipschitz, refine_latents

__all__ = [
    "CONSTRAINTS",
    "CONSTRAINT_DEFAULTS",
    "WGAN",
    "FeatureNet",
    "GANArchitecture",
    "GANEvaluation",
    "GANOptimizer",
    "GANSampling",
    "ImageDataModule",
    "ToyDataModule",
    "build_gan_critic",
    "certified_w1_metric",
    "classifier_fid_kid",
    "confident_classes",
    "exact_w1_metric",
    "generate",
    "latent_lipschitz",
    "load_feature_net",
    "refine_latents",
    "save_feature_net",
    "subsample",
    "train_feature_net",
]
