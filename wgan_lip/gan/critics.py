"""WGAN critics by constraint: the hard-constrained one and the baselines it is compared to.

The constraints themselves (networks, penalties, clipping, paper optimizer settings) live in
:mod:`wgan_lip.constraints`, shared with W1 estimation; this module picks the vector or
image network for a data shape and returns scores of shape ``(n,)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..constraints import CONSTRAINTS as _REGISTRY
from ..constraints import ConstraintDefaults, get_constraint
from ..critic import RawInputCritic
from ..errors import InputError
from ..networks import NetworkSpec, build

CONSTRAINTS = tuple(_REGISTRY)
CONSTRAINT_DEFAULTS: dict[str, ConstraintDefaults] = {n: c.defaults for n, c in _REGISTRY.items()}

__all__ = [
    "CONSTRAINTS",
    "CONSTRAINT_DEFAULTS",
    "GAN_SIZES",
    "ConstraintDefaults",
    "build_gan_critic",
    "check_constraint",
]


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


GAN_SIZES: dict[str, NetworkSpec] = {
    "mlp": NetworkSpec(widths=(256, 256, 256)),
    "convnet": NetworkSpec(channels=(16, 32), widths=(128,)),
}
"""The WGAN critics' default sizes per network kind (the ``dcgan`` sizes are the
baselines' own, from :meth:`~wgan_lip.constraints.Constraint.network`)."""


def build_gan_critic(
    constraint: str, data_shape: Sequence[int], network: NetworkSpec | Mapping | None = None
) -> RawInputCritic:
    """The critic for ``constraint`` on samples of ``data_shape``, returning scores ``(n,)``.

    The network is ``network`` with its unset fields from :data:`GAN_SIZES` and the
    constraint's layers: a ``hard`` critic is a Björck MLP for vectors and a BCOP convnet for
    images, a baseline's a ReLU MLP or its paper's DCGAN-style convnet. An ``mlp`` on images
    scores the flattened pixels. The wrapper is the one W1 critics use,
    :class:`~wgan_lip.critic.RawInputCritic`, with its normalization left at the identity
    (the WGAN's data are already scaled).

    Args:
        constraint: a name of :data:`CONSTRAINTS` (``hard``, ``gp``, ``lp``, ``sn``,
            ``clip``).
        data_shape: shape of one sample: ``(d,)`` or ``(C, H, W)``.
        network: the critic's :class:`~wgan_lip.networks.NetworkSpec` (or a mapping of its
            fields); None: the defaults.

    Returns:
        A :class:`~wgan_lip.critic.RawInputCritic` mapping ``(n, *data_shape)`` samples to
        scores ``(n,)``; ``certified`` is True for ``hard`` only and ``kind`` is the
        constraint's name.

    Raises:
        InputError: an unknown constraint, a layer the constraint does not admit, or a
            network that does not fit ``data_shape`` (from :func:`~wgan_lip.networks.build`).

    Example:
        >>> import torch
        >>> from wgan_lip.gan import build_gan_critic
        >>> critic = build_gan_critic("hard", (2,), {"widths": [16, 16]})
        >>> critic(torch.randn(4, 2)).shape, critic.certified, critic.kind
        (torch.Size([4]), True, 'hard')
        >>> gp = build_gan_critic("gp", (1, 8, 8), {"channels": [4, 8, 16]})
        >>> gp(torch.rand(3, 1, 8, 8)).shape
        torch.Size([3])
    """
    c = get_constraint(constraint)
    shape = tuple(int(s) for s in data_shape)
    if len(shape) not in (1, 3) or (len(shape) == 3 and shape[1] != shape[2]):
        # the generators make square images
        raise InputError(
            f"WGAN data must be vectors (d,) or images (C, H, W) with H = W, got {shape}"
        )
    spec = c.critic_network(network, shape, GAN_SIZES)
    flatten = spec.kind == "mlp"
    net = build(spec, (math.prod(shape),) if flatten else shape, 1)
    return RawInputCritic(net, shape, flatten=flatten, kind=c.name, certified=c.certified)
