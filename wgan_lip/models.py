"""Builders of certified networks from ``wgan_lip.layers``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from .layers import (
    AOLConv2d,
    AOLLinear,
    BCOPConv2d,
    BjorckConfig,
    BjorckLinear,
    FullSort,
    GroupSort,
    InvertibleDownsample,
    MaxMin,
    SLLConv2d,
    SLLLinear,
    SpectralLinear,
)


def make_activation(name: str, group_size: int = 2) -> nn.Module:
    """``"groupsort"`` (with ``group_size``), ``"maxmin"``, ``"fullsort"`` or ``"relu"``."""
    if name == "groupsort":
        return GroupSort(group_size)
    if name == "maxmin":
        return MaxMin()
    if name == "fullsort":
        return FullSort()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r}; use groupsort, maxmin, fullsort or relu")


LayerFactory = Callable[[int, int], nn.Module]  # (in, out) -> a layer
ActivationFactory = Callable[[int], nn.Module]  # width -> an activation


def mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int,
    *,
    linear: LayerFactory,
    activation: ActivationFactory,
) -> nn.Sequential:
    """``linear -> activation`` for each width, then a ``linear`` head: the one MLP builder
    behind certified critics and classifiers (:func:`lipschitz_mlp`), the baselines' critics
    and the generators. ``linear(i, o)`` builds a layer, ``activation(width)`` its
    activation."""
    if in_features < 1 or out_features < 1 or any(w < 1 for w in widths):
        raise ValueError(
            f"feature counts must be positive: in={in_features}, widths={list(widths)}, "
            f"out={out_features}"
        )
    layers: list[nn.Module] = []
    prev = in_features
    for w in widths:
        layers += [linear(prev, w), activation(w)]
        prev = w
    layers.append(linear(prev, out_features))
    return nn.Sequential(*layers)


def lipschitz_mlp(
    in_features: int,
    widths: Sequence[int],
    out_features: int = 1,
    *,
    activation: str | ActivationFactory = "groupsort",
    group_size: int = 2,
    bias: bool = True,
    linear: str | LayerFactory = "bjorck",
    config: BjorckConfig | None = None,
) -> nn.Sequential:
    """A 1-Lipschitz MLP: ``Linear -> activation`` for each width, then a linear head.

    ``linear="bjorck"`` (orthonormal, gradient-norm preserving with GroupSort),
    ``"spectral"`` (power-iteration spectral normalization, the baseline), or a factory
    ``(in, out) -> layer``; ``activation`` a name of :func:`make_activation` or a factory
    ``width -> module``. Widths must be multiples of ``group_size`` for GroupSort.

    Args:
        in_features, widths, out_features: the layer sizes.
        activation, group_size: the activation (name or factory) and GroupSort's group size.
        bias: biases in the Björck/spectral layers.
        linear: ``"bjorck"``, ``"spectral"`` or a factory ``(in, out) -> module``.
        config: Björck options.

    Returns:
        An ``nn.Sequential`` whose ``lipschitz_bound`` is at most 1 (up to rounding).

    Raises:
        ValueError: an unknown name, a non-positive size, or a width that is not a multiple
            of ``group_size``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.models import lipschitz_mlp
        >>> critic = lipschitz_mlp(8, [32, 32], 1)
        >>> critic(torch.randn(5, 8)).shape, round(lipschitz_bound(critic), 4)
        (torch.Size([5, 1]), 1.0)
    """
    if isinstance(linear, str) and linear not in ("bjorck", "spectral"):
        raise ValueError(f"unknown linear {linear!r}; use bjorck or spectral")
    if activation == "groupsort":
        bad = [w for w in widths if w % group_size]
        if bad:
            raise ValueError(f"widths {bad} are not multiples of group_size {group_size}")
    if linear == "bjorck":
        linear = lambda i, o: BjorckLinear(i, o, bias=bias, config=config)  # noqa: E731
    elif linear == "spectral":
        linear = lambda i, o: SpectralLinear(i, o, bias=bias)  # noqa: E731
    if isinstance(activation, str):
        name = activation
        activation = lambda w: make_activation(name, group_size)  # noqa: E731
    return mlp(in_features, widths, out_features, linear=linear, activation=activation)


def lipschitz_convnet(
    in_channels: int = 1,
    image_size: int = 28,
    channels: Sequence[int] = (32, 64),
    out_features: int = 10,
    *,
    blocks_per_stage: int = 1,
    kernel_size: int = 3,
    head_widths: Sequence[int] = (),
    group_size: int = 2,
    padding: str = "circular",
    config: BjorckConfig | None = None,
    conv: LayerFactory | None = None,
    linear: LayerFactory | None = None,
    activation: ActivationFactory | None = None,
) -> nn.Sequential:
    """A 1-Lipschitz, gradient-norm-preserving convnet.

    The layers come from factories, so another certified layer reaches every model without
    editing this builder: ``conv(in, out)`` (default BCOP, ``kernel_size``, ``padding``),
    ``linear(in, out)`` (default Björck) and ``activation(channels)`` (default GroupSort of
    ``group_size``).

    Each stage is ``blocks_per_stage`` x (BCOP conv + GroupSort) followed by a 2x
    ``InvertibleDownsample`` (channels x4, size /2); then ``Flatten``, optional Björck
    hidden layers with GroupSort, and a Björck head. ``image_size`` must be divisible by
    ``2 ** len(channels)``.

    Returns:
        An ``nn.Sequential`` from images ``(n, in_channels, image_size, image_size)`` to
        ``(n, out_features)``.

    Raises:
        ValueError: ``image_size`` not divisible by ``2 ** len(channels)``.

    Example:
        >>> import torch
        >>> from wgan_lip.models import lipschitz_convnet
        >>> net = lipschitz_convnet(1, 8, (4,), 3)
        >>> net(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 3])
    """
    stages = len(channels)
    if image_size % (2**stages):
        raise ValueError(
            f"image_size {image_size} is not divisible by 2**{stages} "
            f"(one 2x downsampling per stage); use fewer stages or pad the images"
        )
    if conv is None:
        conv = lambda i, o: BCOPConv2d(i, o, kernel_size, padding=padding, config=config)  # noqa: E731
    if linear is None:
        linear = lambda i, o: BjorckLinear(i, o, config=config)  # noqa: E731
    if activation is None:
        activation = lambda _: GroupSort(group_size)  # noqa: E731
    layers: list[nn.Module] = []
    prev, size = in_channels, image_size
    for c in channels:
        for _ in range(blocks_per_stage):
            layers += [conv(prev, c), activation(c)]
            prev = c
        layers.append(InvertibleDownsample(2))
        prev, size = prev * 4, size // 2
    layers.append(nn.Flatten())
    feat = prev * size * size
    for w in head_widths:
        layers += [linear(feat, w), activation(w)]
        feat = w
    layers.append(linear(feat, out_features))
    return nn.Sequential(*layers)


def aol_convnet(
    in_channels: int = 1,
    image_size: int = 28,
    channels: Sequence[int] = (32, 64),
    out_features: int = 10,
    *,
    blocks_per_stage: int = 1,
    kernel_size: int = 3,
    head_widths: Sequence[int] = (),
    group_size: int = 2,
) -> nn.Sequential:
    """:func:`lipschitz_convnet` with AOL layers (Prach & Lampert 2022): ``AOLConv2d``
    (zero padding) and ``AOLLinear`` + GroupSort. 1-Lipschitz, no iteration in the forward.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.models import aol_convnet
        >>> net = aol_convnet(1, 8, (4,), 3)
        >>> net(torch.rand(2, 1, 8, 8)).shape, lipschitz_bound(net) <= 1 + 1e-6
        (torch.Size([2, 3]), True)
    """
    return lipschitz_convnet(
        in_channels, image_size, channels, out_features,
        blocks_per_stage=blocks_per_stage, head_widths=head_widths, group_size=group_size,
        conv=lambda i, o: AOLConv2d(i, o, kernel_size), linear=AOLLinear,
    )  # fmt: skip


def sll_convnet(
    in_channels: int = 1,
    image_size: int = 28,
    channels: Sequence[int] = (32, 64),
    out_features: int = 10,
    *,
    blocks_per_stage: int = 2,
    kernel_size: int = 3,
    head_widths: Sequence[int] = (),
    group_size: int = 2,
) -> nn.Sequential:
    """A residual 1-Lipschitz convnet of SLL layers (Araujo et al. 2023), through
    :func:`lipschitz_convnet`'s factories, GroupSort after every layer.

    A convolution that changes the channel count (the first of each stage) is an
    ``AOLConv2d``; the other ``blocks_per_stage - 1`` of the stage are ``SLLConv2d`` residual
    layers. In the head, a width change is an ``AOLLinear`` and a repeated width an
    ``SLLLinear``: ``head_widths=(256, 256)`` gives ``AOLLinear(features, 256)``,
    ``SLLLinear(256)``, ``AOLLinear(256, out)``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.models import sll_convnet
        >>> net = sll_convnet(1, 8, (4,), 3, blocks_per_stage=2, head_widths=(8, 8))
        >>> net(torch.rand(2, 1, 8, 8)).shape, lipschitz_bound(net) <= 1 + 1e-6
        (torch.Size([2, 3]), True)
    """

    def conv(i: int, o: int) -> nn.Module:
        return SLLConv2d(o, kernel_size=kernel_size) if i == o else AOLConv2d(i, o, kernel_size)

    def linear(i: int, o: int) -> nn.Module:
        return SLLLinear(i) if i == o else AOLLinear(i, o)

    return lipschitz_convnet(
        in_channels, image_size, channels, out_features,
        blocks_per_stage=blocks_per_stage, head_widths=head_widths, group_size=group_size,
        conv=conv, linear=linear,
    )  # fmt: skip


# ----- generators (unconstrained: only the critic needs a Lipschitz bound) -----


def mlp_generator(
    latent_dim: int = 2, out_features: int = 2, widths: Sequence[int] = (512, 512, 512)
) -> nn.Sequential:
    """A ReLU MLP generator for low-dimensional data (the 2-D toys of Gulrajani et al.)."""
    return mlp(latent_dim, widths, out_features, linear=nn.Linear,
               activation=lambda _: nn.ReLU())  # fmt: skip


def _upsampling_plan(image_size: int) -> tuple[int, int]:
    """``(start, doublings)``: the smallest start side >= 4 that doubles up to ``image_size``."""
    doublings = 0
    while image_size % (2 ** (doublings + 1)) == 0 and image_size // 2 ** (doublings + 1) >= 4:
        doublings += 1
    if doublings == 0:
        raise ValueError(f"image_size {image_size} must be even and at least 8")
    return image_size // 2**doublings, doublings


def dcgan_generator(
    latent_dim: int = 128, channels: int = 1, image_size: int = 28, base_channels: int = 64
) -> nn.Sequential:
    """A DCGAN-style generator of ``(channels, image_size, image_size)`` images in [0, 1].

    A linear map to a ``start x start`` feature map (7x7 for 28x28, 4x4 for 32x32), then
    stride-2 transposed convolutions that halve the channels and double the side, with
    BatchNorm + ReLU (Radford et al. 2016), and a 3x3 convolution to ``channels`` with a
    sigmoid, since wgan_lip images live in [0, 1].
    """
    start, doublings = _upsampling_plan(image_size)
    width = base_channels * 2 ** (doublings - 1)
    layers: list[nn.Module] = [
        nn.Linear(latent_dim, width * start * start),
        nn.Unflatten(1, (width, start, start)),
        nn.BatchNorm2d(width),
        nn.ReLU(),
    ]
    for _ in range(doublings):
        out = max(width // 2, base_channels)
        layers += [
            nn.ConvTranspose2d(width, out, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(),
        ]
        width = out
    layers += [nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid()]
    return nn.Sequential(*layers)
