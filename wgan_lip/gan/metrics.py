"""Offline WGAN metrics: exact W1, an independent certified W1 estimate, classifier-FID/KID.

Each is a plain function of generated and real samples, so the numbers the WGAN logs can
be recomputed by hand. Nothing is downloaded: W1 uses POT and :func:`wgan_lip.estimate_w1`,
classifier-FID/KID use torchmetrics over a :class:`~wgan_lip.gan.features.FeatureNet`
trained on the dataset itself (see that module for why it is not "FID").
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..ot import exact_w1
from ..w1 import W1Estimate, estimate_w1
from .features import ClassifierFeatures, FeatureNet


@torch.no_grad()
def generate(
    generator: nn.Module, n: int, latent_dim: int, *, seed: int = 0, batch_size: int = 1000
) -> torch.Tensor:
    """``n`` samples from ``generator`` (eval mode) for the fixed latent seed ``seed``, on CPU."""
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    try:
        out = [generator(z[s : s + batch_size].to(device)).cpu() for s in range(0, n, batch_size)]
    finally:
        generator.train(was_training)
    return torch.cat(out)


def subsample(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """At most ``n`` rows of ``x``, chosen by a fixed seed (all of them, in order, if fewer)."""
    if len(x) <= n:
        return x
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx]


def exact_w1_metric(
    fake: torch.Tensor, real: torch.Tensor, *, max_samples: int = 5000, seed: int = 0
) -> float:
    """Exact W1 (POT, Euclidean cost) between fixed-seed subsamples of at most ``max_samples``."""
    f = subsample(fake, max_samples, seed).flatten(1).double().numpy()
    r = subsample(real, max_samples, seed + 1).flatten(1).double().numpy()
    return exact_w1(f, r)


def certified_w1_metric(
    fake: torch.Tensor,
    real: torch.Tensor,
    *,
    steps: int = 500,
    max_samples: int = 5000,
    seed: int = 0,
) -> W1Estimate:
    """W1(real, fake) by a *fresh* certified GroupSort critic trained for at most ``steps``.

    Independent of the WGAN's own critic: a lower bound with a 95% interval, in the same
    units as :func:`exact_w1_metric`.
    """
    r = subsample(real, max_samples, seed + 1).flatten(1)
    f = subsample(fake, max_samples, seed).flatten(1)
    return estimate_w1(r, f, critic="groupsort", steps=steps, seed=seed, progress=False,
                       accelerator="cpu", devices=1)  # fmt: skip


@torch.no_grad()
def classifier_fid_kid(
    fake: torch.Tensor,
    real: torch.Tensor,
    feature_net: FeatureNet,
    *,
    kid_subset_size: int = 500,
    batch_size: int = 500,
) -> dict[str, float]:
    """Classifier-FID and KID (mean, std) in the feature space of ``feature_net``.

    Images must be in [0, 1] with the shape the feature net was trained on.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    feats = ClassifierFeatures(feature_net)
    subset = max(2, min(kid_subset_size, len(fake), len(real)))
    fid = FrechetInceptionDistance(feature=feats, normalize=True)
    with warnings.catch_warnings():  # "will save all extracted features": intended here
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=feats, normalize=True, subset_size=subset)
    for x, is_real in ((real, True), (fake, False)):
        for s in range(0, len(x), batch_size):
            chunk = x[s : s + batch_size].float()
            fid.update(chunk, real=is_real)
            kid.update(chunk, real=is_real)
    with torch.random.fork_rng(devices=[]):  # KID draws random subsets: make them fixed
        torch.manual_seed(0)
        kid_mean, kid_std = kid.compute()
    return {"classifier_fid": float(fid.compute()), "kid": float(kid_mean),
            "kid_std": float(kid_std)}  # fmt: skip


@torch.no_grad()
def confident_classes(
    fake: torch.Tensor, feature_net: nn.Module, *, threshold: float = 0.9, batch_size: int = 1000
) -> dict[str, float | list[float]]:
    """How recognizable generated images are to a classifier of the real data.

    Returns ``confident``: the share of ``fake`` whose top softmax probability exceeds
    ``threshold``; ``class_shares``: per class, the share of all samples classified (argmax)
    as that class; ``min_class_share``: the smallest of those (mode coverage: 0.1 for a
    generator that covers ten classes evenly).
    """
    if len(fake) == 0:
        raise ValueError("confident_classes: no samples")
    was_training = feature_net.training
    feature_net.eval()
    probs = torch.cat([feature_net(c.float()).softmax(dim=1) for c in fake.split(batch_size)])
    feature_net.train(was_training)
    top, label = probs.max(dim=1)
    shares = torch.bincount(label, minlength=probs.shape[1]).double() / len(fake)
    return {"confident": float((top > threshold).double().mean()),
            "class_shares": [float(s) for s in shares],
            "min_class_share": float(shares.min())}  # fmt: skip
