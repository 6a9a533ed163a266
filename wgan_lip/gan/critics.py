"""WGAN critics by constraint: the hard-constrained one and the baselines it is compared to.

The constraints themselves (networks, penalties, clipping, paper optimizer settings) live in
:mod:`wgan_lip.constraints`, shared with W1 estimation; this module picks the vector or
image network for a data shape and returns scores of shape ``(n,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..constraints import CONSTRAINTS as _REGISTRY
from ..constraints import ConstraintDefaults, get_constraint
from ..errors import InputError
from ..layers import lipschitz_bound

CONSTRAINTS = tuple(_REGISTRY)
CONSTRAINT_DEFAULTS: dict[str, ConstraintDefaults] = {n: c.defaults for n, c in _REGISTRY.items()}

__all__ = ["CONSTRAINTS", "CONSTRAINT_DEFAULTS", "ConstraintDefaults", "build_gan_critic",
           "check_constraint"]  # fmt: skip


def check_constraint(constraint: str) -> str:
    """``constraint`` if it is registered; a one-line error naming the choices otherwise."""
    return get_constraint(constraint).name


class _Flat(nn.Module):
    """Flatten the input, score it, return shape ``(n,)``."""

    def __init__(self, net: nn.Module, flatten: bool) -> None:
        super().__init__()
        self.net = net
        self.flatten = flatten

    def forward(self, x):
        return self.net(x.flatten(1) if self.flatten else x).reshape(-1)

    def lipschitz_bound(self) -> float:
        """Flattening is an isometry: the bound is the network's."""
        return lipschitz_bound(self.net)


def build_gan_critic(
    constraint: str,
    data_shape: Sequence[int],
    *,
    widths: Sequence[int] = (256, 256, 256),
    channels: Sequence[int] = (16, 32),
    head_width: int = 128,
    base_channels: int = 64,
    group_size: int = 2,
) -> nn.Module:
    """The critic for ``constraint`` on samples of ``data_shape``, returning scores ``(n,)``.

    Vectors (``data_shape = (d,)``) get the constraint's MLP of ``widths``; square images
    ``(C, H, H)`` its convnet (BCOP of ``channels`` + a Björck layer of ``head_width`` for
    ``hard``, DCGAN-style of ``base_channels`` for the baselines).
    """
    c = get_constraint(constraint)
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 1:
        return _Flat(c.mlp(shape[0], widths, group_size=group_size), flatten=True)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise InputError(f"WGAN data must be vectors (d,) or square images (C, H, H), got {shape}")
    net = c.convnet(shape[0], shape[1], channels=channels, head_width=head_width,
                    base_channels=base_channels, group_size=group_size)  # fmt: skip
    return _Flat(net, flatten=False)
