"""Offline WGAN metrics: exact W1, an independent certified W1 estimate, classifier-FID/KID.

Each is a plain function of generated and real samples, so the numbers the WGAN logs can
be recomputed by hand. Nothing is downloaded: W1 uses POT and :func:`wgan_lip.estimate_w1`,
classifier-FID/KID use torchmetrics over a :class:`~wgan_lip.gan.features.FeatureNet`
trained on the dataset itself (see that module for why it is not "FID").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from ..ot import exact_w1
from ..w1 import W1Estimate, estimate_w1
from .features import ClassifierFeatures, FeatureNet


@torch.no_grad()
def generate(
    generator: nn.Module,
    n: int,
    latent_dim: int,
    *,
    seed: int = 0,
    batch_size: int = 1000,
    move_latents: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``n`` samples from ``generator`` (eval mode) for the fixed latent seed ``seed``, on CPU.

    The latents are ``n`` standard normal vectors drawn on the CPU from ``seed``, so the
    same seed gives the same latents on any device; the generator's train/eval flag is
    restored afterwards.

    Args:
        generator: maps latents ``(b, latent_dim)`` to samples; must have a parameter
            (its device is where the latents are sent).
        n: number of samples (at least 1).
        latent_dim: size of a latent vector.
        seed: seed of the latents.
        batch_size: latents per forward pass.
        move_latents: applied to each batch of latents (on the generator's device, with the
            generator in eval mode) before it is decoded, e.g. critic-guided refinement
            (:func:`~wgan_lip.gan.refine.refine_latents`).

    Returns:
        The samples ``(n, ...)`` on the CPU, without gradient.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import generate
        >>> from wgan_lip.models import mlp_generator
        >>> generator = mlp_generator(latent_dim=2, out_features=3, widths=(8,))
        >>> x = generate(generator, 5, latent_dim=2, seed=1)
        >>> x.shape, bool(torch.equal(x, generate(generator, 5, latent_dim=2, seed=1)))
        (torch.Size([5, 3]), True)
    """
    was_training = generator.training
    generator.eval()
    device = next(generator.parameters()).device
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    out = []
    try:
        for batch in z.split(batch_size):
            batch = batch.to(device)
            if move_latents is not None:
                batch = move_latents(batch)
            out.append(generator(batch).cpu())
    finally:
        generator.train(was_training)
    return torch.cat(out)


def subsample(x: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """At most ``n`` rows of ``x``, chosen by a fixed seed (all of them, in order, if fewer).

    Args:
        x: a tensor of rows ``(N, ...)``.
        n: the most rows to keep.
        seed: seed of the random choice.

    Returns:
        ``x`` itself when ``N <= n``, else ``n`` distinct rows in random order.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import subsample
        >>> x = torch.arange(10).reshape(5, 2)
        >>> subsample(x, 3).shape, subsample(x, 8) is x
        (torch.Size([3, 2]), True)
    """
    if len(x) <= n:
        return x
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx]


def exact_w1_metric(
    fake: torch.Tensor, real: torch.Tensor, *, max_samples: int = 5000, seed: int = 0
) -> float:
    """Exact W1 (POT, Euclidean cost) between fixed-seed subsamples of at most ``max_samples``.

    Samples are flattened, so images are compared as vectors of pixels.

    Args:
        fake: generated samples ``(n, ...)``, a CPU tensor without gradient.
        real: real samples with the same per-sample shape, a CPU tensor.
        max_samples: the most rows of each side used (:func:`subsample`).
        seed: seed of the subsample of ``fake`` (``seed + 1`` for ``real``).

    Returns:
        W1 between the two empirical measures, a float (see :func:`~wgan_lip.ot.exact_w1`).

    Raises:
        InputError: samples of different sizes, or NaN/Inf rows.
        TooLargeError: the problem needs more memory than :func:`~wgan_lip.ot.exact_w1`
            allows.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import exact_w1_metric
        >>> real = torch.zeros(4, 2)
        >>> round(exact_w1_metric(real + torch.tensor([3.0, 4.0]), real), 6)
        5.0
    """
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

    Samples are flattened; training runs on one CPU process with the default hold-out
    split of :func:`~wgan_lip.w1.estimate.estimate_w1` (the reported value is held out).

    Args:
        fake: generated samples ``(n, ...)``.
        real: real samples with the same per-sample size.
        steps: the most training steps of the fresh critic.
        max_samples: the most rows of each side used (:func:`subsample`).
        seed: seed of the subsamples (``seed`` for ``fake``, ``seed + 1`` for ``real``), the
            split and the critic.

    Returns:
        The :class:`~wgan_lip.w1.estimate.W1Estimate` of W1(real, fake).

    Raises:
        InputError: samples of different sizes, NaN/Inf rows, or too few samples for the
            split.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import certified_w1_metric
        >>> _ = torch.manual_seed(0)
        >>> est = certified_w1_metric(torch.randn(100, 2) + 2, torch.randn(100, 2), steps=5)
        >>> est.certified, est.critic_type, est.steps
        (True, 'groupsort', 5)
    """
    # Lightning's validate and test run under inference_mode, whose tensors autograd cannot
    # use: train outside it, on normal copies of the samples.
    with torch.inference_mode(False), torch.enable_grad():
        r = subsample(real, max_samples, seed + 1).flatten(1).clone()
        f = subsample(fake, max_samples, seed).flatten(1).clone()
        return estimate_w1(
            r,
            f,
            critic="groupsort",
            steps=steps,
            seed=seed,
            progress=False,
            trainer={"accelerator": "cpu", "devices": 1},
        )


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

    Needs torchmetrics. KID uses random subsets of ``min(kid_subset_size, len(fake),
    len(real))`` (at least 2) images, drawn with a fixed seed; the global generator's state
    is restored.

    Args:
        fake: generated images ``(n, C, H, W)``.
        real: real images ``(m, C, H, W)``.
        feature_net: the trained :class:`~wgan_lip.gan.features.FeatureNet` whose
            penultimate layer is the feature space.
        kid_subset_size: images per KID subset (capped as above).
        batch_size: images per forward pass of the feature net.

    Returns:
        A dict with the float entries ``classifier_fid``, ``kid`` (the mean over subsets)
        and ``kid_std``.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import FeatureNet, classifier_fid_kid
        >>> _ = torch.manual_seed(0)
        >>> net = FeatureNet(image_size=8, feature_dim=16).eval()
        >>> scores = classifier_fid_kid(torch.rand(20, 1, 8, 8), torch.rand(20, 1, 8, 8), net)
        >>> sorted(scores), all(isinstance(v, float) for v in scores.values())
        (['classifier_fid', 'kid', 'kid_std'], True)
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
    return {
        "classifier_fid": float(fid.compute()),
        "kid": float(kid_mean),
        "kid_std": float(kid_std),
    }


@torch.no_grad()
def confident_classes(
    fake: torch.Tensor, feature_net: nn.Module, *, threshold: float = 0.9, batch_size: int = 1000
) -> dict[str, float | list[float]]:
    """How recognizable generated images are to a classifier of the real data.

    Returns ``confident``: the share of ``fake`` whose top softmax probability exceeds
    ``threshold``; ``class_shares``: per class, the share of all samples classified (argmax)
    as that class; ``min_class_share``: the smallest of those (mode coverage: 0.1 for a
    generator that covers ten classes evenly).

    Args:
        fake: generated images, in the shape ``feature_net`` takes.
        feature_net: a classifier returning logits ``(n, classes)`` (its train/eval flag
            is restored).
        threshold: the top-probability level that counts as confident.
        batch_size: images per forward pass.

    Returns:
        A dict: ``confident`` and ``min_class_share`` floats, ``class_shares`` a list of
        one float per class.

    Raises:
        ValueError: ``fake`` is empty.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.gan import confident_classes
        >>> classifier = nn.Identity()  # the "images" below are already logits
        >>> logits = torch.tensor([[9.0, 0.0], [0.0, 9.0], [0.0, 0.1], [5.0, 0.0]])
        >>> confident_classes(logits, classifier)
        {'confident': 0.75, 'class_shares': [0.5, 0.5], 'min_class_share': 0.5}
    """
    if len(fake) == 0:
        raise ValueError("confident_classes: no samples")
    was_training = feature_net.training
    feature_net.eval()
    probs = torch.cat([feature_net(c.float()).softmax(dim=1) for c in fake.split(batch_size)])
    feature_net.train(was_training)
    top, label = probs.max(dim=1)
    shares = torch.bincount(label, minlength=probs.shape[1]).double() / len(fake)
    return {
        "confident": float((top > threshold).double().mean()),
        "class_shares": [float(s) for s in shares],
        "min_class_share": float(shares.min()),
    }
