"""Soft Lipschitz constraints of the baseline critics, shared by W1 estimation and WGANs.

These are what the hard-constrained critics replace: a gradient penalty (Gulrajani et al.
2017), its one-sided variant (Petzka et al. 2018) and weight clipping (Arjovsky et al. 2017).
None of them makes a critic 1-Lipschitz; their dual values are not certified.
"""

from __future__ import annotations

import torch
from torch import nn


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator=None) -> torch.Tensor:
    """Per-sample random points on the segments between paired ``real`` and ``fake``."""
    n = min(len(real), len(fake))
    real, fake = real[:n], fake[:n]
    t = torch.rand((n,) + (1,) * (real.dim() - 1), generator=generator, device=real.device)
    return (t * real + (1 - t) * fake).detach().requires_grad_(True)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    *,
    one_sided: bool = False,
) -> torch.Tensor:
    """``weight * mean_i (|grad f(x_i)| - 1)^2`` at per-sample interpolates ``x_i``.

    ``one_sided=True`` penalizes only norms above 1 (``max(0, |grad| - 1)^2``, the
    Lipschitz penalty of Petzka et al.). The graph is kept so the penalty trains the critic.
    """
    x = interpolate(real, fake)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    excess = (norms - 1).clamp_min(0) if one_sided else norms - 1
    return weight * excess.pow(2).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, value: float = 0.01) -> None:
    """Clamp every parameter of ``module`` to ``[-value, value]`` (WGAN weight clipping)."""
    for p in module.parameters():
        p.clamp_(-value, value)
