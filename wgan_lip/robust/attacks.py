"""An L2 PGD attack: the empirical upper bound that certificates must never beat."""

from __future__ import annotations

import torch
from torch import nn

from .margins import label_margin


def _l2_normalize(v: torch.Tensor) -> torch.Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(1e-12)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _project(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1)
    factor = (eps / norms.clamp_min(1e-12)).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))


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
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if eps == 0:
        return x.clone()
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
