"""WGAN critics by constraint: the hard-constrained one and the baselines it is compared to.

The constraints themselves (networks, penalties, clipping, paper optimizer settings) live in
:mod:`wgan_lip.constraints`, shared with W1 estimation; this module picks the vector or
image network for a data shape and returns scores of shape ``(n,)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from ..constraints import CONSTRAINTS as _REGISTRY
from ..constraints import ConstraintDefaults, get_constraint
from ..critic import RawInputCritic
from ..errors import InputError

CONSTRAINTS = tuple(_REGISTRY)
CONSTRAINT_DEFAULTS: dict[str, ConstraintDefaults] = {n: c.defaults for n, c in _REGISTRY.items()}

__all__ = ["CONSTRAINTS", "CONSTRAINT_DEFAULTS", "ConstraintDefaults", "build_gan_critic",
           "check_constraint"]  # fmt: skip


def check_constraint(constraint: str) -> str:
    """``constraint`` if it is registered; a one-line error naming the choices otherwise.

    Args:
        constraint: a constraint name (``"hard"``, ``"gp"``, ``"lp"``, ``"sn"``, ``"clip"``).

    Returns:
        The registered name (equal to ``constraint``).

    Raises:
        InputError: an unknown name (from :func:`~wgan_lip.constraints.get_constraint`).

    Example:
        >>> from wgan_lip.gan.critics import check_constraint
        >>> check_constraint("gp")
        'gp'
        >>> check_constraint("wgan")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: unknown constraint 'wgan'; choose one of hard, gp, lp, sn, clip
    """
    return get_constraint(constraint).name


def build_gan_critic(
    constraint: str,
    data_shape: Sequence[int],
    *,
    widths: Sequence[int] = (256, 256, 256),
    channels: Sequence[int] = (16, 32),
    head_width: int = 128,
    base_channels: int = 64,
    group_size: int = 2,
    image_net: Literal["conv", "mlp"] = "conv",
) -> RawInputCritic:
    """The critic for ``constraint`` on samples of ``data_shape``, returning scores ``(n,)``.

    Vectors (``data_shape = (d,)``) get the constraint's MLP of ``widths``; square images
    ``(C, H, H)`` its convnet (BCOP of ``channels`` + a Björck layer of ``head_width`` for
    ``hard``, DCGAN-style of ``base_channels`` for the baselines), or with
    ``image_net="mlp"`` the vector MLP on the flattened pixels. The wrapper is the one W1
    critics use, :class:`~wgan_lip.critic.RawInputCritic`, with its normalization left at
    the identity (the WGAN's data are already scaled).

    Args:
        constraint: a name of :data:`CONSTRAINTS` (``hard``, ``gp``, ``lp``, ``sn``,
            ``clip``).
        data_shape: shape of one sample: ``(d,)`` or ``(C, H, H)``.
        widths: hidden widths of the vector MLP.
        channels: ``hard`` images: channels of the BCOP stages (each followed by a 2x
            invertible downsampling, so ``H`` must be divisible by ``2 ** len(channels)``).
        head_width: ``hard`` images: width of the Björck layer before the score.
        base_channels: baseline images: channels of the first DCGAN-style convolution.
        group_size: GroupSort group size of the ``hard`` critic.
        image_net: ``"conv"`` (the convnets above) or ``"mlp"`` (the vector MLP on the
            flattened pixels); any other value is taken as ``"conv"``.

    Returns:
        A :class:`~wgan_lip.critic.RawInputCritic` mapping ``(n, *data_shape)`` samples to
        scores ``(n,)``; ``certified`` is True for ``hard`` only and ``kind`` is the
        constraint's name.

    Raises:
        InputError: an unknown constraint, a ``data_shape`` that is neither ``(d,)`` nor a
            square image (with ``image_net="conv"``), or a ``hard`` image side not divisible
            by ``2 ** len(channels)``.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import build_gan_critic
        >>> critic = build_gan_critic("hard", (2,), widths=(16, 16))
        >>> critic(torch.randn(4, 2)).shape, critic.certified, critic.kind
        (torch.Size([4]), True, 'hard')
        >>> build_gan_critic("gp", (1, 8, 8), base_channels=4)(torch.rand(3, 1, 8, 8)).shape
        torch.Size([3])
    """
    c = get_constraint(constraint)
    if image_net not in ("conv", "mlp"):
        raise InputError(f"image_net must be conv or mlp, got {image_net!r}")
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 1 or image_net == "mlp":
        net = c.mlp(math.prod(shape), widths, group_size=group_size)
        return RawInputCritic(net, shape, flatten=True, kind=c.name, certified=c.certified)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise InputError(f"WGAN data must be vectors (d,) or square images (C, H, H), got {shape}")
    net = c.convnet(shape[0], shape[1], channels=channels, head_width=head_width,
                    base_channels=base_channels, group_size=group_size)  # fmt: skip
    return RawInputCritic(net, shape, flatten=False, kind=c.name, certified=c.certified)
