"""Builders of certified networks from ``wgan_lip.layers``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from .errors import InputError
from .layers import (
    BjorckConfig,
    BjorckLinear,
    SpectralLinear,
)


def make_activation(name: str, group_size: int = 2) -> nn.Module:
    """The registered activation called ``name`` (groupsort, maxmin, fullsort, relu...).

    Any name of :data:`wgan_lip.layers.registry.ACTIVATIONS`. The sorts are 1-Lipschitz and
    gradient-norm preserving; ReLU is 1-Lipschitz but not gradient-norm preserving.

    Args:
        name: the activation's name.
        group_size: GroupSort's group size (ignored by the other activations).

    Returns:
        A new module, e.g. ``GroupSort(group_size)``, ``MaxMin()`` or ``nn.ReLU()``.

    Raises:
        ValueError: an unknown ``name``, or (from ``GroupSort``) a ``group_size`` that is not a
            positive integer.

    Example:
        >>> import torch
        >>> from wgan_lip.models import make_activation
        >>> make_activation("groupsort", 4)
        GroupSort(group_size=4)
        >>> make_activation("maxmin")(torch.tensor([[3.0, 1.0]]))  # each pair as (min, max)
        tensor([[1., 3.]])
    """
    from .layers.registry import LayerOptions, activation_kind

    return activation_kind(name).make(0, LayerOptions(group_size=group_size))


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
    """``linear -> activation`` for each width, then a ``linear`` head.

    The one MLP builder behind certified critics and classifiers (:func:`lipschitz_mlp`), the
    baselines' critics and the generators. It certifies nothing by itself: the network is
    1-Lipschitz only if the layers and activations are.

    Args:
        in_features: the input's size.
        widths: the hidden layers' sizes, in order (empty: a single ``linear`` layer).
        out_features: the output's size.
        linear: ``linear(i, o)`` builds a layer from ``i`` to ``o`` features.
        activation: ``activation(width)`` builds the activation after a hidden layer of
            ``width`` features.

    Returns:
        An ``nn.Sequential`` of ``2 * len(widths) + 1`` modules, from ``(n, in_features)`` to
        ``(n, out_features)``.

    Raises:
        ValueError: ``in_features``, ``out_features`` or a width below 1.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.models import mlp
        >>> mlp(3, [8], 1, linear=nn.Linear, activation=lambda w: nn.ReLU())
        Sequential(
          (0): Linear(in_features=3, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=1, bias=True)
        )
    """
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
    conv: str | LayerFactory = "bcop",
    linear: str | LayerFactory = "bjorck",
    activation: str | ActivationFactory = "groupsort",
) -> nn.Sequential:
    """A 1-Lipschitz, gradient-norm-preserving convnet: :func:`wgan_lip.networks.convnet`.

    Each layer is a registered name (:mod:`wgan_lip.layers.registry`) or a factory, so
    another certified layer reaches every model without editing this builder: ``conv``
    (default BCOP of ``kernel_size`` with ``padding``), ``linear`` (default Björck) and
    ``activation`` (default GroupSort of ``group_size``). For Björck options other than the
    defaults, pass factories (``conv=lambda i, o: BCOPConv2d(i, o, 3, config=cfg)``).

    Each stage is ``blocks_per_stage`` x (conv + activation) followed by a 2x
    ``InvertibleDownsample`` (channels x4, size /2); then ``Flatten``, hidden ``linear``
    layers of ``head_widths`` with the activation, and a ``linear`` head.

    Args:
        in_channels: channels of the input images.
        image_size: side of the (square) input images; divisible by ``2 ** len(channels)``.
        channels: output channels of each stage's convolutions, one entry per stage. With a
            registered sorting activation they (and ``head_widths``) must be multiples of its
            group size.
        out_features: size of the output (e.g. the number of classes).
        blocks_per_stage: convolution + activation blocks per stage.
        kernel_size: kernel size of registered convolutions.
        head_widths: widths of the hidden linear layers after ``Flatten``.
        group_size: GroupSort's group size (the ``groupsort`` activation).
        padding: padding mode of a registered BCOP convolution (``"circular"`` keeps it
            orthogonal).
        conv: a registered convolution's name or a factory ``(in, out) -> module``.
        linear: a registered dense layer's name or a factory ``(in, out) -> module``.
        activation: a registered activation's name or a factory ``width -> module``.

    Returns:
        An ``nn.Sequential`` from images ``(n, in_channels, image_size, image_size)`` to
        ``(n, out_features)``.

    Raises:
        ValueError: (an :class:`~wgan_lip.errors.InputError`) ``image_size`` not divisible
            by ``2 ** len(channels)``, an unknown layer name, or (with a registered sorting
            activation) a channel count or head width that is not a positive multiple of
            its group size.

    Example:
        >>> import torch
        >>> from wgan_lip.models import lipschitz_convnet
        >>> net = lipschitz_convnet(1, 8, (4,), 3)
        >>> net(torch.rand(2, 1, 8, 8)).shape
        torch.Size([2, 3])
    """
    from .layers.registry import LayerOptions, activation_kind, layer_kind
    from .networks import convnet

    opts = LayerOptions(kernel_size=kernel_size, padding=padding, group_size=group_size)
    if isinstance(conv, str):
        conv = partial(layer_kind(conv, "conv").conv, opts=opts)
    if isinstance(linear, str):
        linear = partial(layer_kind(linear, "linear").linear, opts=opts)
    if isinstance(activation, str):
        kind = activation_kind(activation)
        group = kind.group_size(opts)
        bad = [w for w in (*channels, *head_widths) if group < 1 or w < 1 or w % group]
        if bad:
            raise InputError(
                f"lipschitz_convnet: channels and head widths must be positive multiples of "
                f"group_size {group} ({activation} sorts within groups); got {bad}"
            )
        activation = partial(kind.make, opts=opts)
    return convnet(
        (in_channels, image_size, image_size),
        channels,
        out_features,
        conv=conv,
        linear=linear,
        activation=activation,
        blocks_per_stage=blocks_per_stage,
        head_widths=head_widths,
    )


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
    """A convnet of AOL layers (Prach & Lampert 2022) and GroupSort.

    ``AOLConv2d`` (zero padding) and ``AOLLinear`` + GroupSort: 1-Lipschitz, no iteration in
    the forward. The ``convnet`` of :func:`wgan_lip.networks.build` with the registered
    ``aol`` layers (``NetworkSpec("convnet", conv="aol", linear="aol")``).

    Args:
        in_channels: channels of the input images.
        image_size: side of the (square) input images; divisible by ``2 ** len(channels)``.
        channels: output channels of each stage's convolutions, one entry per stage
            (multiples of ``group_size``).
        out_features: size of the output.
        blocks_per_stage: convolution + GroupSort blocks per stage.
        kernel_size: kernel size of the ``AOLConv2d`` layers.
        head_widths: widths of the hidden ``AOLLinear`` layers after ``Flatten``.
        group_size: GroupSort's group size.

    Returns:
        An ``nn.Sequential`` from ``(n, in_channels, image_size, image_size)`` to
        ``(n, out_features)``.

    Raises:
        InputError: (a ``ValueError``) ``image_size`` not divisible by
            ``2 ** len(channels)``, or a channel count or width not a multiple of
            ``group_size``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.models import aol_convnet
        >>> net = aol_convnet(1, 8, (4,), 3)
        >>> net(torch.rand(2, 1, 8, 8)).shape, lipschitz_bound(net) <= 1 + 1e-4  # + rounding
        (torch.Size([2, 3]), True)
    """
    shape = (in_channels, image_size, image_size)
    sizes = dict(channels=channels, widths=head_widths, blocks_per_stage=blocks_per_stage)
    return _registry_convnet("aol", shape, out_features, kernel_size, group_size, **sizes)


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
    """A residual 1-Lipschitz convnet of SLL layers (Araujo et al. 2023), GroupSort after each.

    The ``convnet`` of :func:`wgan_lip.networks.build` with the registered ``sll`` layers
    (``NetworkSpec("convnet", conv="sll", linear="sll")``), whose registration in
    :mod:`wgan_lip.layers.sll` holds the width rule: a convolution that changes the
    channel count (normally the first of each stage) is an ``AOLConv2d``; one that keeps it
    (the other ``blocks_per_stage - 1`` of the stage) is an ``SLLConv2d`` residual layer. In
    the head, a width change is an ``AOLLinear`` and a repeated width an ``SLLLinear``:
    ``head_widths=(256, 256)`` gives ``AOLLinear(features, 256)``, ``SLLLinear(256)``,
    ``AOLLinear(256, out)``.

    Args:
        in_channels: channels of the input images.
        image_size: side of the (square) input images; divisible by ``2 ** len(channels)``.
        channels: output channels of each stage's convolutions, one entry per stage
            (multiples of ``group_size``).
        out_features: size of the output.
        blocks_per_stage: convolution + GroupSort blocks per stage.
        kernel_size: kernel size of the convolutions.
        head_widths: widths of the hidden layers after ``Flatten``.
        group_size: GroupSort's group size.

    Returns:
        An ``nn.Sequential`` from ``(n, in_channels, image_size, image_size)`` to
        ``(n, out_features)``.

    Raises:
        InputError: (a ``ValueError``) ``image_size`` not divisible by
            ``2 ** len(channels)``, or a channel count or width not a multiple of
            ``group_size``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.models import sll_convnet
        >>> net = sll_convnet(1, 8, (4,), 3, blocks_per_stage=2, head_widths=(8, 8))
        >>> net(torch.rand(2, 1, 8, 8)).shape, lipschitz_bound(net) <= 1 + 1e-4  # + rounding
        (torch.Size([2, 3]), True)
    """
    shape = (in_channels, image_size, image_size)
    sizes = dict(channels=channels, widths=head_widths, blocks_per_stage=blocks_per_stage)
    return _registry_convnet("sll", shape, out_features, kernel_size, group_size, **sizes)


def _registry_convnet(
    layer: str,
    input_shape: tuple[int, int, int],
    out_features: int,
    kernel_size: int,
    group_size: int,
    **sizes: object,
) -> nn.Sequential:
    """The ``convnet`` of :func:`wgan_lip.networks.build` with the registered ``layer`` as
    its convolutions and dense layers, GroupSort of ``group_size``, and the ``sizes``."""
    from .networks import NetworkSpec, build

    layers = dict(linear=layer, conv=layer, activation="groupsort", group_size=group_size)
    spec = NetworkSpec("convnet", kernel_size=kernel_size, **layers, **sizes)
    return build(spec, input_shape, out_features)


# ----- generators (unconstrained: only the critic needs a Lipschitz bound) -----


def mlp_generator(
    latent_dim: int = 2, out_features: int = 2, widths: Sequence[int] = (512, 512, 512)
) -> nn.Sequential:
    """A ReLU MLP generator for low-dimensional data (the 2-D toys of Gulrajani et al.).

    ``nn.Linear`` + ReLU for each width, then a linear output layer (no output activation).
    Unconstrained: only the critic needs a Lipschitz bound.

    Args:
        latent_dim: size of the latent codes.
        out_features: dimension of the generated samples.
        widths: the hidden layers' sizes.

    Returns:
        An ``nn.Sequential`` from ``(n, latent_dim)`` to ``(n, out_features)``.

    Raises:
        ValueError: a size below 1.

    Example:
        >>> import torch
        >>> from wgan_lip.models import mlp_generator
        >>> g = mlp_generator(latent_dim=4, out_features=2, widths=(16, 16))
        >>> g(torch.randn(5, 4)).shape, len(g)
        (torch.Size([5, 2]), 5)
    """
    return mlp(latent_dim, widths, out_features, linear=nn.Linear, activation=lambda _: nn.ReLU())


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
    stride-2 transposed convolutions that halve the channels (never below
    ``base_channels``) and double the side, with BatchNorm + ReLU (Radford et al. 2016), and
    a 3x3 convolution to ``channels`` with a sigmoid, since wgan_lip images live in [0, 1].
    The start side is the smallest one >= 4 that doubles up to ``image_size``.

    Args:
        latent_dim: size of the latent codes.
        channels: channels of the generated images.
        image_size: side of the (square) generated images: even and at least 8.
        base_channels: channels of the last feature map; the first has ``base_channels *
            2 ** (doublings - 1)``.

    Returns:
        An ``nn.Sequential`` from ``(n, latent_dim)`` to ``(n, channels, image_size,
        image_size)``, with values in ``(0, 1)``. It has BatchNorm layers: call it on batches
        of two or more in training mode.

    Raises:
        ValueError: ``image_size`` odd or below 8.

    Example:
        >>> import torch
        >>> from wgan_lip.models import dcgan_generator
        >>> g = dcgan_generator(latent_dim=8, channels=3, image_size=16, base_channels=4)
        >>> x = g(torch.randn(2, 8))
        >>> x.shape, bool(((x > 0) & (x < 1)).all())
        (torch.Size([2, 3, 16, 16]), True)
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
