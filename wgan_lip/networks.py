"""One network vocabulary for every job: a :class:`NetworkSpec` and the one :func:`build`.

A W1 critic, a WGAN critic and a robust classifier are all one of three shapes of network,
written with the layers and activations registered in :mod:`wgan_lip.layers.registry`:

- ``mlp``: ``linear -> activation`` per hidden width, then a ``linear`` head (inputs of any
  shape are flattened first).
- ``convnet``: per stage, ``blocks_per_stage`` x (``conv`` + activation) at the input size,
  then a 2x :class:`~wgan_lip.layers.InvertibleDownsample` (channels x4, side /2); then
  ``Flatten``, hidden ``linear`` layers of ``widths`` and a ``linear`` head. The image sides
  must be divisible by ``2 ** len(channels)``.
- ``dcgan``: the baselines' critic (Radford et al.; Gulrajani et al.): stride-2
  convolutions of ``channels`` (kernel 4, the last 3, padding 1) with the activation, then
  ``Flatten``, hidden ``linear`` layers of ``widths`` and a ``linear`` head. Only layers with
  a strided convolution (``plain``, ``sn_kernel``) fit it.

A field left ``None`` is filled by :meth:`NetworkSpec.over` from a default spec: the job's
sizes and the constraint's layers (see :meth:`wgan_lip.constraints.Constraint.network`),
then :data:`LIBRARY_DEFAULTS`. The checks of sizes against the input shape live in
:func:`build`, once, for every job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from torch import nn

from .errors import InputError
from .layers import InvertibleDownsample
from .layers.registry import LayerOptions, activation_kind, layer_kind
from .options import dataclass_of

NetworkKind = Literal["mlp", "convnet", "dcgan"]
NETWORK_KINDS: tuple[str, ...] = ("mlp", "convnet", "dcgan")


def _positive_ints(values: object, name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"{name} must be a list of positive integers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be positive integers, got {list(values)!r}")
        out.append(int(v))
    return tuple(out)


@dataclass(frozen=True)
class NetworkSpec:
    """The shape and the layers of one network, by registered names; ``None``: a default.

    Args:
        kind: ``"mlp"``, ``"convnet"`` or ``"dcgan"`` (see the module docstring).
        widths: ``mlp``: the hidden widths; ``convnet`` and ``dcgan``: the hidden widths of
            the head after ``Flatten``.
        channels: the convolutions' output channels, one entry per stage (``convnet``) or
            per strided convolution (``dcgan``).
        blocks_per_stage: ``convnet``: convolution + activation blocks per stage.
        kernel_size: kernel side of the stride-1 convolutions.
        linear: the dense layers' registered name (``bjorck``, ``aol``, ``sll``, ``plain``...).
        conv: the convolutions' registered name (``bcop``, ``cayley``, ``aol``, ``sll``...).
        activation: the activation's registered name (``groupsort``, ``maxmin``, ``relu``...).
        group_size: GroupSort's group size (``groupsort`` only).
        negative_slope: LeakyReLU's slope (``leaky_relu`` only).
        bias: biases in the layers that have one.
        padding: ``"circular"`` or ``"zeros"``, for the convolutions that choose (BCOP).

    Raises:
        InputError: an unknown ``kind``, a size that is not a positive integer, or a value
            of the wrong type (from :meth:`of`, also an unknown key).

    Example:
        >>> from wgan_lip.networks import NetworkSpec, build
        >>> spec = NetworkSpec("convnet", widths=(16,), channels=(4,), conv="cayley")
        >>> net = build(spec.over(NetworkSpec(linear="bjorck", activation="maxmin")),
        ...             (1, 8, 8), 3)
        >>> [type(m).__name__ for m in net][:4]
        ['CayleyConv2d', 'MaxMin', 'InvertibleDownsample', 'Flatten']
    """

    kind: NetworkKind | None = None
    widths: tuple[int, ...] | None = None
    channels: tuple[int, ...] | None = None
    blocks_per_stage: int | None = None
    kernel_size: int | None = None
    linear: str | None = None
    conv: str | None = None
    activation: str | None = None
    group_size: int | None = None
    negative_slope: float | None = None
    bias: bool | None = None
    padding: Literal["circular", "zeros"] | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in NETWORK_KINDS:
            raise InputError(
                f"unknown network kind {self.kind!r}; choose one of {', '.join(NETWORK_KINDS)}"
            )
        for name in ("widths", "channels"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive_ints(value, name))
        for name in ("blocks_per_stage", "kernel_size", "group_size"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive_ints([value], name)[0])
        if self.padding is not None and self.padding not in ("circular", "zeros"):
            raise InputError(f"padding must be circular or zeros, got {self.padding!r}")
        for name in ("linear", "conv", "activation"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a registered name, got {value!r}")
        if self.bias is not None and not isinstance(self.bias, bool):
            raise InputError(f"bias must be true or false, got {self.bias!r}")
        slope = self.negative_slope
        if slope is not None and (
            isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope <= 1
        ):
            raise InputError(f"negative_slope must be a number in [0, 1], got {slope!r}")

    @classmethod
    def of(cls, value: NetworkSpec | Mapping[str, Any] | None) -> NetworkSpec:
        """``value`` as a spec: itself, an empty spec for None, or from a mapping (YAML, a
        checkpoint); an unknown key is a one-line error naming the known ones.

        Args:
            value: a spec, a mapping of its fields, or None.

        Returns:
            The :class:`NetworkSpec`.

        Raises:
            InputError: not a mapping, or an unknown key.

        Example:
            >>> from wgan_lip.networks import NetworkSpec
            >>> NetworkSpec.of({"kind": "mlp", "widths": [8, 8]}).widths
            (8, 8)
        """
        return dataclass_of(cls, value, "network")

    def over(self, *defaults: NetworkSpec | None) -> NetworkSpec:
        """This spec with each ``None`` field taken from the first default that sets it.

        Args:
            defaults: specs in order of precedence (None entries are skipped).

        Returns:
            A new spec (this one unchanged).

        Example:
            >>> from wgan_lip.networks import NetworkSpec
            >>> NetworkSpec(widths=(8,)).over(NetworkSpec(widths=(4,), linear="aol")).linear
            'aol'
        """
        values = {}
        for f in SPEC_FIELDS:
            value = getattr(self, f)
            for d in defaults:
                if value is not None:
                    break
                if d is not None:
                    value = getattr(d, f)
            values[f] = value
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, as plain values: what a checkpoint and a YAML file hold.

        Returns:
            A dict of the non-None fields (tuples as lists).

        Example:
            >>> from wgan_lip.networks import NetworkSpec
            >>> NetworkSpec("mlp", widths=(8,)).as_dict()
            {'kind': 'mlp', 'widths': [8]}
        """
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in asdict(self).items()
            if v is not None
        }

    def options(self) -> LayerOptions:
        """The layer factories' options of this (complete) spec."""
        spec = self.over(LIBRARY_DEFAULTS)
        return LayerOptions(
            kernel_size=spec.kernel_size,
            bias=spec.bias,
            padding=spec.padding,
            group_size=spec.group_size,
            negative_slope=spec.negative_slope,
        )


SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(NetworkSpec))

LIBRARY_DEFAULTS = NetworkSpec(
    kind="mlp",
    widths=(128, 128, 128),
    channels=(16, 32),
    blocks_per_stage=1,
    kernel_size=3,
    linear="bjorck",
    conv="bcop",
    activation="groupsort",
    group_size=2,
    negative_slope=0.2,
    bias=True,
)
"""What :func:`build` uses for a field no other default sets: a certified Björck/BCOP +
GroupSort network (``padding`` stays unset: each convolution's own default)."""


def used_fields(spec: NetworkSpec) -> frozenset[str]:
    """The fields of a complete ``spec`` that its network reads.

    The kind's own (an ``mlp`` has no convolutions; a ``dcgan`` fixes its kernels and
    padding), and the options its layers and activation read (``kernel_size`` and
    ``padding`` only where a convolution is).

    Args:
        spec: a complete spec (every field the network needs set).

    Returns:
        The names of the fields the network uses.

    Raises:
        InputError: an unknown layer or activation name.

    Example:
        >>> from wgan_lip.networks import LIBRARY_DEFAULTS, NetworkSpec, used_fields
        >>> sorted(used_fields(NetworkSpec("mlp", activation="relu").over(LIBRARY_DEFAULTS)))
        ['activation', 'bias', 'kind', 'linear', 'widths']
    """
    used = {"kind", "widths", "linear", "activation"}
    used |= layer_kind(spec.linear, "linear").options - {"kernel_size", "padding"}
    used |= activation_kind(spec.activation).options
    if spec.kind != "mlp":
        used |= {"channels", "conv"} | layer_kind(spec.conv, "conv").options
    if spec.kind == "convnet":
        used.add("blocks_per_stage")
    if spec.kind == "dcgan":  # kernels 4, 4, ..., 3 with padding 1
        used -= {"kernel_size", "padding"}
    return frozenset(used)


def only_used(spec: NetworkSpec) -> NetworkSpec:
    """``spec`` with the fields its network does not read unset: what a checkpoint keeps.

    Args:
        spec: a complete spec.

    Returns:
        The spec without the fields :func:`used_fields` leaves out.

    Example:
        >>> from wgan_lip.networks import LIBRARY_DEFAULTS, NetworkSpec, only_used
        >>> only_used(NetworkSpec("mlp", activation="relu").over(LIBRARY_DEFAULTS)).as_dict()
        {'kind': 'mlp', 'widths': [128, 128, 128], 'linear': 'bjorck', 'activation': 'relu', \
'bias': True}
    """
    used = used_fields(spec)
    return replace(spec, **{f: None for f in SPEC_FIELDS if f not in used})


def check_fields(given: NetworkSpec | Mapping[str, Any] | None, complete: NetworkSpec) -> None:
    """Refuse a field the user set that the network of ``complete`` does not read.

    A kernel size on an MLP, a group size with ReLU, a padding on a Cayley convolution would
    otherwise be ignored without a word.

    Args:
        given: the user's spec (only its set fields are checked).
        complete: the complete spec the network is built from.

    Raises:
        InputError: the unused fields, named, with the network they do not fit.

    Example:
        >>> from wgan_lip.networks import LIBRARY_DEFAULTS, NetworkSpec, check_fields
        >>> user = NetworkSpec(kernel_size=5)
        >>> check_fields(user, user.over(LIBRARY_DEFAULTS))
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: network: kernel_size is not used by an mlp of bjorck \
layers and groupsort; remove it
    """
    given = NetworkSpec.of(given)
    unused = [f for f in SPEC_FIELDS if getattr(given, f) is not None]
    unused = [f for f in unused if f not in used_fields(complete)]
    if unused:
        layers = complete.linear if complete.kind == "mlp" else f"{complete.conv}/{complete.linear}"
        raise InputError(
            f"network: {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used by "
            f"an {complete.kind} of {layers} layers and {complete.activation}; remove it"
        )


def require_certified(spec: NetworkSpec, who: str) -> None:
    """Refuse a complete ``spec`` whose network is not 1-Lipschitz by construction.

    Args:
        spec: a complete spec.
        who: the job that certifies, for the message (``"the hard constraint"``...).

    Raises:
        InputError: an uncertified layer (naming the certified ones of its role), or the
            ``dcgan`` kind (its strided convolutions are not certified layers).

    Example:
        >>> from wgan_lip.networks import LIBRARY_DEFAULTS, NetworkSpec, require_certified
        >>> require_certified(NetworkSpec(linear="plain").over(LIBRARY_DEFAULTS), "a critic")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: a critic certifies only layers that are 1-Lipschitz by \
construction; plain is not: use one of the linear layers aol, bjorck, sll
    """
    from .layers.registry import LAYERS

    if spec.kind == "dcgan":
        raise InputError(
            f"{who} has no dcgan network (its strided convolutions are not 1-Lipschitz by "
            "construction): use kind convnet"
        )
    roles = ([("conv", spec.conv)] if spec.kind != "mlp" else []) + [("linear", spec.linear)]
    for role, name in roles:
        if not layer_kind(name, role).certified:
            choices = sorted(
                n for n, k in LAYERS.items() if k.certified and getattr(k, role) is not None
            )
            raise InputError(
                f"{who} certifies only layers that are 1-Lipschitz by construction; {name} is "
                f"not: use one of the {role} layers {', '.join(choices)}"
            )


def build(spec: NetworkSpec, input_shape: Sequence[int], out_features: int) -> nn.Sequential:
    """The network of ``spec`` for samples of ``input_shape``, with ``out_features`` outputs.

    Unset fields of ``spec`` take :data:`LIBRARY_DEFAULTS`. Every size is checked here
    against the input shape, with one-line errors that say what to change.

    Args:
        spec: the network (see :class:`NetworkSpec`).
        input_shape: one sample's shape: ``(d,)`` (or any shape, for ``mlp``, which
            flattens) or ``(C, H, W)`` images for ``convnet`` and ``dcgan``.
        out_features: the output size (1 for a critic, the class count for a classifier).

    Returns:
        An ``nn.Sequential`` from ``(n, *input_shape)`` to ``(n, out_features)``. An ``mlp``
        on inputs of more than one dimension starts with ``nn.Flatten()``.

    Raises:
        InputError: an unknown layer or activation name, a layer without the form the kind
            needs, a width not a multiple of the activation's group size, images whose side
            is not divisible by the downsampling, or an input shape the kind cannot take.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.networks import NetworkSpec, build
        >>> net = build(NetworkSpec("mlp", widths=(16, 16), linear="aol"), (4,), 1)
        >>> net(torch.randn(3, 4)).shape, lipschitz_bound(net) <= 1 + 1e-4
        (torch.Size([3, 1]), True)
        >>> build(NetworkSpec("convnet", channels=(4, 8)), (1, 6, 6), 1)
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: a convnet of 2 stages halves the image side 2 times; \
6x6 is not divisible by 2**2: use fewer stages (channels) or pad the images
    """
    spec = spec.over(LIBRARY_DEFAULTS)
    shape = tuple(int(s) for s in input_shape)
    out_features = _positive_ints([out_features], "out_features")[0]
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"input_shape must be positive sizes, got {shape}")
    opts = spec.options()
    act = activation_kind(spec.activation)
    group = act.group_size(opts)
    if spec.kind == "mlp":
        _check_groups(spec.widths, group, spec.activation, "widths")
        linear = layer_kind(spec.linear, "linear").linear
        layers: list[nn.Module] = [nn.Flatten()] if len(shape) > 1 else []
        layers += _dense_stack(
            math.prod(shape),
            spec.widths,
            out_features,
            lambda i, o: linear(i, o, opts),
            lambda w: act.make(w, opts),
        )
        return nn.Sequential(*layers)
    if len(shape) != 3:
        raise InputError(
            f"a {spec.kind} network takes images (C, H, W); these samples have shape {shape}: "
            "use kind mlp"
        )
    _check_groups((*spec.channels, *spec.widths), group, spec.activation, "channels and widths")
    linear = layer_kind(spec.linear, "linear").linear
    if spec.kind == "convnet":
        conv = layer_kind(spec.conv, "conv").conv
        return convnet(
            shape,
            spec.channels,
            out_features,
            conv=lambda i, o: conv(i, o, opts),
            linear=lambda i, o: linear(i, o, opts),
            activation=lambda w: act.make(w, opts),
            blocks_per_stage=spec.blocks_per_stage,
            head_widths=spec.widths,
        )
    layers, feat = _dcgan_body(spec, shape, opts, act)
    layers.append(nn.Flatten())
    layers += _dense_stack(
        feat,
        spec.widths,
        out_features,
        lambda i, o: linear(i, o, opts),
        lambda w: act.make(w, opts),
    )
    return nn.Sequential(*layers)


def convnet(
    input_shape: Sequence[int],
    channels: Sequence[int],
    out_features: int,
    *,
    conv: Callable[[int, int], nn.Module],
    linear: Callable[[int, int], nn.Module],
    activation: Callable[[int], nn.Module],
    blocks_per_stage: int = 1,
    head_widths: Sequence[int] = (),
) -> nn.Sequential:
    """The ``convnet`` of :func:`build`, from layer factories rather than registered names.

    Per stage, ``blocks_per_stage`` x (``conv(in, out)`` + ``activation(out)``) at the input
    size, then a 2x :class:`~wgan_lip.layers.InvertibleDownsample`; then ``Flatten``,
    ``linear`` + ``activation`` per head width and a ``linear`` head. It certifies nothing by
    itself: the network is 1-Lipschitz when its layers are.

    Args:
        input_shape: one image ``(C, H, W)``; ``H`` and ``W`` divisible by
            ``2 ** len(channels)``.
        channels: the convolutions' output channels, one entry per stage.
        out_features: the output size.
        conv: ``conv(in_channels, out_channels)``, a convolution that keeps the image size.
        linear: ``linear(in_features, out_features)``.
        activation: ``activation(width_or_channels)``.
        blocks_per_stage: convolution + activation blocks per stage.
        head_widths: the hidden widths after ``Flatten``.

    Returns:
        An ``nn.Sequential`` from ``(n, C, H, W)`` to ``(n, out_features)``.

    Raises:
        InputError: an image side not divisible by ``2 ** len(channels)``.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.networks import convnet
        >>> net = convnet((1, 4, 4), (2,), 3, conv=lambda i, o: nn.Conv2d(i, o, 3, padding=1),
        ...               linear=nn.Linear, activation=lambda w: nn.ReLU())
        >>> net[-1]
        Linear(in_features=32, out_features=3, bias=True)
    """
    c, h, w = (int(s) for s in input_shape)
    stages = len(channels)
    if h % 2**stages or w % 2**stages:
        raise InputError(
            f"a convnet of {stages} stages halves the image side {stages} times; {h}x{w} is "
            f"not divisible by 2**{stages}: use fewer stages (channels) or pad the images"
        )
    layers: list[nn.Module] = []
    prev = c
    for out in channels:
        for _ in range(blocks_per_stage):
            layers += [conv(prev, out), activation(out)]
            prev = out
        layers.append(InvertibleDownsample(2))
        prev, h, w = prev * 4, h // 2, w // 2
    layers.append(nn.Flatten())
    layers += _dense_stack(prev * h * w, head_widths, out_features, linear, activation)
    return nn.Sequential(*layers)


def _dense_stack(features, widths, out_features, linear, activation) -> list[nn.Module]:
    """``linear -> activation`` per width, then a ``linear`` head: every kind's dense part."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [linear(features, w), activation(w)]
        features = w
    layers.append(linear(features, out_features))
    return layers


def _dcgan_body(spec, shape, opts, act) -> tuple[list[nn.Module], int]:
    kind = layer_kind(spec.conv, "conv")
    if not kind.strided:
        raise InputError(
            f"the dcgan network needs a strided convolution; {spec.conv} has none: use conv "
            "plain or sn_kernel, or kind convnet"
        )
    c, h, w = shape
    layers: list[nn.Module] = []
    prev = c
    for i, out in enumerate(spec.channels):
        k = 3 if i == len(spec.channels) - 1 else 4
        h, w = (h + 2 - k) // 2 + 1, (w + 2 - k) // 2 + 1
        if h < 1 or w < 1:
            raise InputError(
                f"the dcgan network's {len(spec.channels)} stride-2 convolutions need larger "
                f"images than {shape[1]}x{shape[2]}: use fewer channels entries"
            )
        layers += [
            kind.conv(prev, out, replace(opts, kernel_size=k, stride=2)),
            act.make(out, opts),
        ]
        prev = out
    return layers, prev * h * w


def _check_groups(widths: Sequence[int], group: int, activation: str, what: str) -> None:
    bad = [w for w in widths if w % group]
    if bad:
        raise InputError(
            f"{what} {bad} are not multiples of {group}, the group size of {activation}; "
            "use multiples or another group size"
        )
