"""Soft Lipschitz constraints of the baseline critics, shared by W1 estimation and WGANs.

These are what the hard-constrained critics replace: a gradient penalty (Gulrajani et al.
2017), its one-sided variant (Petzka et al. 2018) and weight clipping (Arjovsky et al. 2017).
None of them makes a critic 1-Lipschitz; their dual values are not certified.
"""

from __future__ import annotations

import torch
from torch import nn


def interpolate(real: torch.Tensor, fake: torch.Tensor, generator=None) -> torch.Tensor:
    """Per-sample random points on the segments between paired ``real`` and ``fake``.

    The ``i``-th point is ``t_i * real[i] + (1 - t_i) * fake[i]`` with ``t_i ~ U[0, 1)``; only
    the first ``min(len(real), len(fake))`` pairs are used.

    Args:
        real: a batch ``(n, ...)`` of real samples.
        fake: a batch ``(m, ...)`` of generated samples, of the same trailing shape.
        generator: an optional ``torch.Generator`` (on ``real``'s device) for ``t``; ``None``
            uses the global RNG.

    Returns:
        A leaf tensor ``(min(n, m), ...)``, detached from ``real`` and ``fake`` and with
        ``requires_grad=True`` (ready for a gradient of the critic with respect to it).

    Example:
        >>> import torch
        >>> from wgan_lip.penalties import interpolate
        >>> g = torch.Generator().manual_seed(0)
        >>> x = interpolate(torch.zeros(5, 2), torch.ones(4, 2), generator=g)
        >>> x.shape, x.requires_grad, bool(((x >= 0) & (x <= 1)).all())
        (torch.Size([4, 2]), True, True)
        >>> bool((x[:, 0] == x[:, 1]).all())  # one t per sample
        True
    """
    n = min(len(real), len(fake))
    real, fake = real[:n], fake[:n]
    t = torch.rand((n,) + (1,) * (real.dim() - 1), generator=generator, device=real.device)
    return (t * real + (1 - t) * fake).detach().requires_grad_(True)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float,
    *,
    one_sided: bool = False,
) -> torch.Tensor:
    """``weight * mean_i (|grad f(x_i)| - 1)^2`` at per-sample interpolates ``x_i``.

    ``one_sided=True`` penalizes only norms above 1 (``max(0, |grad| - 1)^2``, the
    Lipschitz penalty of Petzka et al.). The graph is kept so the penalty trains the critic.
    The interpolates use the global RNG (seed it for reproducibility).

    Args:
        critic: the critic; called on a batch ``(n, ...)`` of interpolates.
        real: a batch of real samples ``(n, ...)``.
        fake: a batch of generated samples of the same trailing shape (only the first
            ``min(len(real), len(fake))`` pairs are used).
        weight: the penalty's coefficient (10 in Gulrajani et al.).
        one_sided: penalize only gradient norms above 1.

    Returns:
        A scalar tensor, differentiable with respect to the critic's parameters.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.penalties import gradient_penalty
        >>> critic = nn.Linear(3, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))  # gradient norm 2
        >>> real, fake = torch.randn(8, 3), torch.randn(8, 3)
        >>> gradient_penalty(critic, real, fake, 10.0).item()  # 10 * (2 - 1)^2
        10.0
        >>> gp = gradient_penalty(critic, real, fake, weight=1.0, one_sided=True)
        >>> gp.backward(); critic.weight.grad.shape
        torch.Size([1, 3])
    """
    x = interpolate(real, fake)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    excess = (norms - 1).clamp_min(0) if one_sided else norms - 1
    return weight * excess.pow(2).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, value: float) -> None:
    """Clamp every parameter of ``module`` to ``[-value, value]`` (WGAN weight clipping).

    In place and without autograd; biases are clipped too.

    Args:
        module: the critic whose parameters to clip.
        value: the clipping bound ``c`` (0.01 in Arjovsky et al.), positive.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.penalties import clip_weights
        >>> layer = nn.Linear(4, 4)
        >>> clip_weights(layer, 0.05)
        >>> all(bool(p.abs().max() <= 0.05) for p in layer.parameters())
        True
    """
    if not value > 0:
        raise ValueError(f"clip_weights: the clipping bound must be positive, got {value}")
    for p in module.parameters():
        p.clamp_(-value, value)
