"""Critics for W1 estimation: the certified ones and the baselines, on raw inputs.

Every critic is a :class:`RawInputCritic` (the WGAN's too: one wrapper for every critic that
scores samples): it takes samples exactly as the user gave them
(float32, vectors or images), centres and rescales them inside, and rescales the score back,
so ``lipschitz_bound`` of the whole module is the bound in the user's own units:
``f(x) = s * g((x - mu) / s)`` has ``Lip(f) = Lip(g)``, and the bound is computed that way
from the stored ``mu`` and ``s`` rather than assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..constraints import get_constraint
from ..errors import InputError
from ..layers import lipschitz_bound
from .names import CERTIFIED, CRITICS, SINGLE_CRITICS

DEFAULT_WIDTHS = (128, 128, 128)


@torch.no_grad()
def fit_shift_scale(shift: torch.Tensor, scale: torch.Tensor, x: torch.Tensor) -> None:
    """Set the buffers ``shift`` to the mean of ``x`` and ``scale`` to its pooled
    per-coordinate standard deviation (1 when that is 0 or not finite), in float64."""
    x = x.to(torch.float64)
    mu = x.mean(dim=0)
    s = float((x - mu).pow(2).mean().sqrt())
    shift.copy_(mu.to(shift))
    scale.fill_(s if s > 0 and math.isfinite(s) else 1.0)


class RawInputCritic(nn.Module):
    """``f(x) = scale * net((x - shift) / scale)`` with ``x`` flattened first if asked.

    ``shift`` (a point in input space) and ``scale`` (a positive scalar) are buffers, so they
    travel in the state dict. Translation and a scalar rescaling undone at the output leave
    the Lipschitz constant unchanged: the bound is ``(1/scale) * Lip(net) * scale``. Until
    :meth:`fit_normalization` is called they are 0 and 1, and the scores are ``net``'s
    exactly (the WGAN's critic stays so).

    ``kind`` names the critic (a W1 critic name or a constraint name); ``certified`` says
    whether ``net`` is 1-Lipschitz by construction (default: ``kind`` is a certified W1
    critic).
    """

    def __init__(
        self,
        net: nn.Module,
        input_shape: Sequence[int],
        flatten: bool,
        kind: str,
        certified: bool | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(int(s) for s in input_shape)
        self.flatten = flatten
        self.kind = kind
        self.certified = kind in CERTIFIED if certified is None else bool(certified)
        self.register_buffer("shift", torch.zeros(self.input_shape))
        self.register_buffer("scale", torch.ones(()))

    def fit_normalization(self, x: torch.Tensor) -> None:
        """Centre on the mean of ``x`` and scale by its pooled per-coordinate std."""
        fit_shift_scale(self.shift, self.scale, x)

    def normalized_scores(self, x: torch.Tensor) -> torch.Tensor:
        """``net((x - shift) / scale)``: the scores in normalized units, which training
        optimizes (so the loss, Adam's steps and its epsilon do not depend on the data's
        units)."""
        if tuple(x.shape[1:]) != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        z = (x - self.shift) / self.scale
        if self.flatten:
            z = z.flatten(1)
        return self.net(z).reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalized_scores(x) * self.scale

    def lipschitz_bound(self) -> float:
        s = float(self.scale.double())
        return (1.0 / s) * lipschitz_bound(self.net) * s


def build_critic(
    kind: str,
    input_shape: Sequence[int],
    *,
    widths: Sequence[int] | None = None,
    group_size: int = 2,
    channels: Sequence[int] = (8, 16),
) -> RawInputCritic:
    """A critic of type ``kind`` (one of :data:`CRITICS`) for samples of ``input_shape``.

    ``groupsort``: Björck MLP + GroupSort (vectors; images are flattened). ``bcop``: BCOP
    convnet + GroupSort for ``(C, H, W)`` images. ``gp``, ``lp``, ``clip``: plain ReLU MLPs
    trained with a gradient penalty, a one-sided penalty or clipping. ``sn``: spectral-norm
    ReLU MLP.
    """
    if kind not in SINGLE_CRITICS:
        raise InputError(f"unknown critic {kind!r}; choose one of {', '.join(CRITICS[1:])} "
                         "(the family is wgan_lip.w1.family.CriticFamily)")  # fmt: skip
    constraint, architecture = SINGLE_CRITICS[kind]
    input_shape = tuple(int(s) for s in input_shape)
    widths = tuple(widths) if widths is not None else DEFAULT_WIDTHS
    if architecture == "conv":
        if len(input_shape) != 3:
            raise InputError(
                f"the {kind} critic needs images (C, H, W); these samples have shape "
                f"{input_shape}: use --critic groupsort"
            )
        c, h, w = input_shape
        stages = len(channels)
        if h != w or h % (2**stages):
            raise InputError(
                f"the {kind} critic needs square images with a side divisible by {2**stages}, "
                f"got {h}x{w}: use --critic groupsort"
            )
        net = get_constraint(constraint).convnet(c, h, channels=channels, head_width=widths[0],
                                                 group_size=group_size)  # fmt: skip
        return RawInputCritic(net, input_shape, flatten=False, kind=kind)
    net = get_constraint(constraint).mlp(math.prod(input_shape), widths, group_size=group_size)
    return RawInputCritic(net, input_shape, flatten=True, kind=kind)
