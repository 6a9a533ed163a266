"""An L2 PGD attack: the empirical upper bound that certificates must never beat."""

from __future__ import annotations

import math

import torch
from torch import nn

from .margins import label_margin


def _norms(v: torch.Tensor) -> torch.Tensor:
    """Per-row L2 norms without overflow: entries of 1e20 square to infinity in float32,
    so each row is divided by its largest entry first."""
    flat = v.flatten(1)
    top = flat.abs().amax(dim=1).clamp_min(torch.finfo(v.dtype).tiny)
    return (flat / top[:, None]).norm(dim=1) * top


def _l2_normalize(v: torch.Tensor) -> torch.Tensor:
    norms = _norms(v).clamp_min(1e-12)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _project(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norms = _norms(delta)
    factor = (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


def effective_radius(eps: float, x: torch.Tensor, bounds: tuple[float, float] | None) -> float:
    """``eps``, or the diameter of the box ``bounds`` when that is smaller.

    Inside a box every point is within ``sqrt(d) (high - low)`` of every other, so a larger
    ball adds nothing; attacking with the smaller radius keeps every step finite however
    large ``eps`` is (a radius of 1e20 would otherwise overflow float32).

    Args:
        eps: the L2 radius asked for.
        x: the inputs ``(n, ...)`` (their per-sample size ``d`` is used).
        bounds: the valid input range, or None (then ``eps`` is returned).

    Returns:
        ``min(eps, sqrt(d) * (high - low))``.

    Example:
        >>> import torch
        >>> from wgan_lip.robust.attacks import effective_radius
        >>> x = torch.zeros(3, 4)
        >>> effective_radius(1e20, x, (0.0, 1.0)), effective_radius(0.5, x, (0.0, 1.0))
        (2.0, 0.5)
    """
    if bounds is None:
        return eps
    d = x[0].numel() if len(x) else 1
    return min(eps, math.sqrt(d) * (bounds[1] - bounds[0]))


def pgd_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    steps: int = 50,
    restarts: int = 3,
    step_size: float | None = None,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
) -> torch.Tensor:
    """Adversarial examples within L2 distance ``eps`` of ``x`` (and inside ``bounds``).

    Maximizes the negative label margin ``max_{j != y} f_j - f_y`` by normalized-gradient
    ascent with projection onto the ball and the valid pixel range, from the clean point and
    ``restarts - 1`` random starts; per example, the run that breaks the prediction (or gets
    the lowest margin) wins. Returns the adversarial inputs (``x`` itself where ``eps == 0``).

    The model runs in eval mode (its flag is restored); the random starts are drawn on the
    CPU from ``seed``, so the attack is reproducible.

    Args:
        model: the classifier, inputs ``x`` to logits ``(n, k)``.
        x: clean inputs ``(n, ...)``, floating point.
        y: int64 labels ``(n,)``.
        eps: the L2 radius of the attack, non-negative.
        steps: ascent steps per start (at least 1 when ``eps > 0`` and ``step_size`` is
            None).
        restarts: starts per example: the clean point, then ``restarts - 1`` random points
            of the ball (0: no attack, ``x`` is returned).
        step_size: the L2 length of each step (default ``2.5 * eps / steps``).
        bounds: the valid input range ``(low, high)`` every iterate is clamped to, or None.
        seed: seed of the random starts.

    Returns:
        The adversarial inputs, shaped like ``x``, detached; each within ``eps`` of its
        clean input (and inside ``bounds``), and no better for the model than ``x``
        itself: where no start lowers the margin, the clean input is kept.

    Raises:
        ValueError: a negative or infinite ``eps``, or ``steps`` or ``restarts`` below 1.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.robust import pgd_l2
        >>> model = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.copy_(torch.eye(2))  # logits = inputs
        >>> x, y = torch.tensor([[0.6, 0.4]]), torch.tensor([0])  # margin 0.2
        >>> adv = pgd_l2(model, x, y, eps=0.3, steps=10, restarts=1, bounds=None)
        >>> model(adv).argmax(1), round(float((adv - x).norm()), 4)
        (tensor([1]), 0.3)
    """
    if not 0 <= eps < math.inf:
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"pgd_l2 needs steps >= 1 and restarts >= 1, got {steps} and {restarts}")
    if eps == 0:
        return x.clone()
    eps = effective_radius(eps, x, bounds)
    step_size = step_size if step_size is not None else 2.5 * eps / steps
    was_training = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    best = x.clone()
    with torch.no_grad():
        best_margin = label_margin(model(x), y)
    try:
        for restart in range(restarts):
            if restart == 0:
                delta = torch.zeros_like(x)
            else:
                noise = torch.randn(x.shape, generator=gen).to(x)
                radius = torch.rand(len(x), generator=gen).to(x).view(-1, *([1] * (x.dim() - 1)))
                delta = _l2_normalize(noise) * radius * eps
            for _ in range(steps):
                delta.requires_grad_(True)
                adv = x + delta
                loss = -label_margin(model(adv), y).sum()
                (grad,) = torch.autograd.grad(loss, delta)
                with torch.no_grad():
                    delta = _project(delta + step_size * _l2_normalize(grad), eps)
                    if bounds is not None:
                        delta = (x + delta).clamp(*bounds) - x
            with torch.no_grad():
                adv = x + delta
                margin = label_margin(model(adv), y)
                better = margin < best_margin
                best[better] = adv[better]
                best_margin = torch.minimum(best_margin, margin)
    finally:
        model.train(was_training)
    return best.detach()
