"""Critics for W1 estimation: the certified ones and the baselines, on raw inputs.

Every critic is a :class:`~wgan_lip.critic.RawInputCritic` (shared with the WGAN): it takes
samples exactly as the user gave them
(float32, vectors or images), centres and rescales them inside, and rescales the score back,
so ``lipschitz_bound`` of the whole module is the bound in the user's own units:
``f(x) = s * g((x - mu) / s)`` has ``Lip(f) = Lip(g)``, and the bound is computed that way
from the stored ``mu`` and ``s`` rather than assumed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..constraints import get_constraint
from ..critic import RawInputCritic, fit_shift_scale
from ..errors import InputError
from ..networks import NetworkSpec, build
from .names import CERTIFIED, CRITICS, SINGLE_CRITICS

__all__ = ["CRITICS", "DEFAULT_WIDTHS", "RawInputCritic", "build_critic", "fit_shift_scale"]

DEFAULT_WIDTHS = (128, 128, 128)


def build_critic(
    kind: str,
    input_shape: Sequence[int],
    *,
    widths: Sequence[int] | None = None,
    group_size: int = 2,
    channels: Sequence[int] = (8, 16),
    network: NetworkSpec | Mapping | None = None,
) -> RawInputCritic:
    """A critic of type ``kind`` (one of :data:`CRITICS`) for samples of ``input_shape``.

    ``groupsort``: Björck MLP + GroupSort (vectors; images are flattened). ``bcop``: BCOP
    convnet + GroupSort for ``(C, H, W)`` images. ``gp``, ``lp``, ``clip``: plain ReLU MLPs
    trained with a gradient penalty, a one-sided penalty or clipping. ``sn``: spectral-norm
    ReLU MLP.

    Args:
        kind: the critic's name, one of :data:`CRITICS` except ``"family"`` (which is
            :class:`~wgan_lip.w1.family.CriticFamily`).
        input_shape: shape of one sample: ``(d,)`` for vectors, ``(C, H, W)`` for images.
        widths: hidden widths of the MLP critics (default ``(128, 128, 128)``); ``bcop``
            uses ``widths[0]`` as its Björck head width.
        group_size: GroupSort group size of the certified critics.
        channels: ``bcop`` only: channels of the BCOP stages, each followed by a 2x
            invertible downsampling.
        network: a :class:`~wgan_lip.networks.NetworkSpec` (or mapping) whose set fields
            win over the above: another registered layer (``{"linear": "aol"}``), kind or
            activation. The constraint of ``kind`` must admit its layers.

    Returns:
        A :class:`~wgan_lip.critic.RawInputCritic` mapping ``(n, *input_shape)`` float32
        samples to scores ``(n,)``, with ``certified`` True for ``groupsort`` and ``bcop``.
        Its normalization is the identity until ``fit_normalization`` is called.

    Raises:
        InputError: an unknown ``kind`` (or ``"family"``); ``bcop`` for samples that are not
            ``(C, H, W)`` images with sides divisible by ``2 ** len(channels)``; a layer the
            critic's constraint does not admit.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import build_critic
        >>> critic = build_critic("groupsort", (3,), widths=(16, 16))
        >>> critic(torch.randn(5, 3)).shape, critic.certified
        (torch.Size([5]), True)
        >>> critic.lipschitz_bound() < 1 + 1e-4  # 1, plus the float32 rounding term
        True
        >>> build_critic("bcop", (1, 12, 12)).net(torch.zeros(2, 1, 12, 12)).shape
        torch.Size([2, 1])
    """
    if kind not in SINGLE_CRITICS:
        raise InputError(
            f"unknown critic {kind!r}; choose one of {', '.join(CRITICS[1:])} "
            "(the family is wgan_lip.w1.family.CriticFamily)"
        )
    constraint, architecture = SINGLE_CRITICS[kind]
    input_shape = tuple(int(s) for s in input_shape)
    widths = tuple(widths) if widths is not None else DEFAULT_WIDTHS
    if architecture == "conv":
        if len(input_shape) != 3:
            raise InputError(
                f"the {kind} critic needs images (C, H, W); these samples have shape "
                f"{input_shape}: use --critic groupsort"
            )
        base = NetworkSpec("convnet", channels=tuple(channels), widths=widths[:1])
    else:
        base = NetworkSpec("mlp", widths=widths)
    spec = get_constraint(constraint).critic_network(
        NetworkSpec.of(network).over(replace(base, group_size=group_size)), input_shape
    )
    flatten = spec.kind == "mlp"
    net = build(spec, (math.prod(input_shape),) if flatten else input_shape, 1)
    return RawInputCritic(net, input_shape, flatten=flatten, kind=kind, certified=kind in CERTIFIED)
