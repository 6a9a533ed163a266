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

__all__ = [
    "CRITICS",
    "DEFAULT_WIDTHS",
    "W1_SIZES",
    "RawInputCritic",
    "build_critic",
    "check_critic_network",
    "critic_spec",
    "fit_shift_scale",
]

DEFAULT_WIDTHS = (128, 128, 128)
FAMILY_HAS_NO_NETWORK = (
    "network applies to a single critic; name a family member's layer in its name instead "
    "(e.g. mlp:128x3:maxmin:aol)"
)
W1_SIZES: dict[str, NetworkSpec] = {
    "mlp": NetworkSpec(widths=DEFAULT_WIDTHS),
    "convnet": NetworkSpec(channels=(8, 16), widths=(128,)),
}
"""The W1 critics' default sizes per network kind (a ``dcgan`` critic takes its
constraint's sizes, as in the WGAN)."""


def critic_spec(
    kind: str, input_shape: Sequence[int], network: NetworkSpec | Mapping | None = None
) -> NetworkSpec:
    """The complete network spec of the single critic ``kind`` on samples of ``input_shape``.

    The fields ``network`` sets win; the kind defaults to a convnet for ``bcop`` and to an
    MLP (on the flattened samples) for the others; the rest comes from :data:`W1_SIZES` for
    that kind, then the critic's constraint (its layers), then the library defaults.

    Args:
        kind: the critic's name, one of :data:`CRITICS` except ``"family"``.
        input_shape: shape of one sample.
        network: a :class:`~wgan_lip.networks.NetworkSpec` or a mapping of its fields.

    Returns:
        The complete spec, its layers admitted by the critic's constraint.

    Raises:
        InputError: an unknown ``kind``, a layer the constraint refuses, or a field the
            network does not use.

    Example:
        >>> from wgan_lip.w1.critics import critic_spec
        >>> critic_spec("bcop", (1, 8, 8)).channels, critic_spec("gp", (3,)).activation
        ((8, 16), 'relu')
    """
    if kind not in SINGLE_CRITICS:
        raise InputError(
            f"unknown critic {kind!r}; choose one of {', '.join(CRITICS[1:])} "
            "(the family is wgan_lip.w1.family.CriticFamily)"
        )
    constraint, architecture = SINGLE_CRITICS[kind]
    spec = NetworkSpec.of(network)
    if spec.kind is None:
        spec = replace(spec, kind="convnet" if architecture == "conv" else "mlp")
    shape = tuple(int(s) for s in input_shape)
    if spec.kind != "mlp" and len(shape) != 3:
        raise InputError(
            f"the {kind} critic needs images (C, H, W) for a {spec.kind}; these samples have "
            f"shape {shape}: use --critic groupsort"
        )
    full = get_constraint(constraint).critic_network(spec, shape, W1_SIZES)
    if full.kind == "mlp" and not full.widths:
        raise InputError(
            "network widths must name at least one hidden layer, got []; the linear "
            "critic is the family's closed-form member (critic={'family': ['linear']})"
        )
    return full


def check_critic_network(kind: str, network: NetworkSpec | Mapping | None) -> None:
    """Refuse, before any data is read, a ``network`` the single critic ``kind`` cannot use.

    Layer names, the constraint's admission, the fields the network uses and the hidden
    widths are checked on a probe shape (the data's shape is not known yet; sizes against
    it are checked when the critic is built).

    Args:
        kind: the single critic's name.
        network: its network spec or mapping.

    Raises:
        InputError: what :func:`critic_spec` refuses.

    Example:
        >>> from wgan_lip.w1.critics import check_critic_network
        >>> check_critic_network("groupsort", {"linear": "aol"})
        >>> check_critic_network("groupsort", {"linear": "plain"})
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: the hard constraint certifies only layers that are
        1-Lipschitz by construction; plain is not: use one of the linear layers aol, bjorck, sll
    """
    spec = NetworkSpec.of(network)
    image = (
        spec.kind or ("convnet" if SINGLE_CRITICS.get(kind, ("", ""))[1] == "conv" else "mlp")
    ) != "mlp"
    critic_spec(kind, (1, 8, 8) if image else (2,), spec)


def build_critic(
    kind: str, input_shape: Sequence[int], network: NetworkSpec | Mapping | None = None
) -> RawInputCritic:
    """A critic of type ``kind`` (one of :data:`CRITICS`) for samples of ``input_shape``.

    ``groupsort``: Björck MLP + GroupSort (vectors; images are flattened). ``bcop``: BCOP
    convnet + GroupSort for ``(C, H, W)`` images. ``gp``, ``lp``, ``clip``: plain ReLU MLPs
    trained with a gradient penalty, a one-sided penalty or clipping. ``sn``: spectral-norm
    ReLU MLP. ``network`` changes any of it: sizes, kind, layers (see :func:`critic_spec`).

    Args:
        kind: the critic's name, one of :data:`CRITICS` except ``"family"`` (which is
            :class:`~wgan_lip.w1.family.CriticFamily`).
        input_shape: shape of one sample: ``(d,)`` for vectors, ``(C, H, W)`` for images.
        network: a :class:`~wgan_lip.networks.NetworkSpec` (or mapping) whose set fields
            win over the defaults: widths, another registered layer (``{"linear": "aol"}``),
            kind or activation. The constraint of ``kind`` must admit its layers.

    Returns:
        A :class:`~wgan_lip.critic.RawInputCritic` mapping ``(n, *input_shape)`` float32
        samples to scores ``(n,)``, with ``certified`` True for ``groupsort`` and ``bcop``.
        Its normalization is the identity until ``fit_normalization`` is called.

    Raises:
        InputError: an unknown ``kind`` (or ``"family"``); a convnet for samples that are
            not ``(C, H, W)`` images with sides divisible by ``2 ** len(channels)``; a layer
            the critic's constraint does not admit.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import build_critic
        >>> critic = build_critic("groupsort", (3,), {"widths": (16, 16)})
        >>> critic(torch.randn(5, 3)).shape, critic.certified
        (torch.Size([5]), True)
        >>> critic.lipschitz_bound() < 1 + 1e-4  # 1, plus the float32 rounding term
        True
        >>> build_critic("bcop", (1, 12, 12)).net(torch.zeros(2, 1, 12, 12)).shape
        torch.Size([2, 1])
    """
    spec = critic_spec(kind, input_shape, network)
    shape = tuple(int(s) for s in input_shape)
    flatten = spec.kind == "mlp"
    net = build(spec, (math.prod(shape),) if flatten else shape, 1)
    return RawInputCritic(net, shape, flatten=flatten, kind=kind, certified=kind in CERTIFIED)
