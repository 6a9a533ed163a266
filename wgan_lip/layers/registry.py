"""Layers and activations by name: the one vocabulary every network spec is written in.

Each layer module registers what it offers at its bottom, so a new layer reaches every job
(W1 critics, WGAN critics, robust classifiers, from YAML and the W1 command line) with one
class, its export in ``wgan_lip/layers/__init__.py`` and one row of the layer contract test.

A :class:`LayerKind` holds up to two factories, ``linear(in, out, opts)`` for dense layers
and ``conv(in, out, opts)`` for stride-1 convolutions that keep the image size, where
``opts`` is the :class:`LayerOptions` of the network spec (kernel size, bias, padding...).
Its ``certified`` flag says whether every value of its parameters gives a 1-Lipschitz map;
a constraint that certifies (``hard``) admits only those. Activations are registered the
same way (:class:`ActivationKind`), each a factory ``(width, opts) -> module``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LayerOptions:
    """The options a layer factory may read; each factory uses those that apply to it.

    Attributes:
        kernel_size: side of a convolution's kernel.
        bias: learn a bias in the layers that have one.
        padding: ``"circular"`` or ``"zeros"`` for the convolutions that choose (BCOP, AOL);
            None: each layer's own default (circular for BCOP, zeros for AOL).
        stride: a strided convolution's stride (the ``dcgan`` network kind).
        group_size: GroupSort's group size.
        negative_slope: LeakyReLU's slope.
        bjorck: Björck options of the orthonormalized layers (None: their defaults).

    Example:
        >>> from wgan_lip.layers.registry import LayerOptions
        >>> LayerOptions(kernel_size=5).kernel_size
        5
    """

    kernel_size: int = 3
    bias: bool = True
    padding: str | None = None
    stride: int = 1
    group_size: int = 2
    negative_slope: float = 0.2
    bjorck: Any = None  # a BjorckConfig (not imported: the layer modules import this one)


LayerFactory = Callable[[int, int, LayerOptions], "nn.Module"]
ActivationFactory = Callable[[int, LayerOptions], "nn.Module"]


@dataclass(frozen=True)
class LayerKind:
    """A registered layer: its dense and/or convolution factory and whether it certifies.

    Attributes:
        name: the registry name (``"bjorck"``, ``"bcop"``...), what specs and configs write.
        linear: ``linear(in_features, out_features, opts)``, or None when it has no dense form.
        conv: ``conv(in_channels, out_channels, opts)`` for a convolution that keeps the
            image size, or None when it has no convolution form.
        certified: 1-Lipschitz for every value of its parameters (say so: False by default,
            and a constraint that certifies admits only certified layers).
        strided: its convolution honours ``opts.stride`` (the ``dcgan`` network kind).
        options: the :class:`LayerOptions` its factories read (``kernel_size``, ``padding``:
            the convolution only); a spec that sets another is refused by name.
        summary: one line for ``--help`` and the docs.

    Example:
        >>> from wgan_lip.layers.registry import LAYERS
        >>> import wgan_lip.layers  # registers the layers
        >>> LAYERS["bcop"].certified, LAYERS["bcop"].linear is None
        (True, True)
    """

    name: str
    linear: LayerFactory | None = None
    conv: LayerFactory | None = None
    certified: bool = False
    strided: bool = False
    options: frozenset[str] = frozenset()
    summary: str = ""


@dataclass(frozen=True)
class ActivationKind:
    """A registered activation.

    Attributes:
        name: the registry name (``"maxmin"``, ``"groupsort"``...).
        make: ``make(width, opts)`` builds the activation after ``width`` units or channels.
        group_size: the units it sorts together: a callable of the options (``"groupsort"``:
            ``opts.group_size``), 1 when units are independent; widths must be multiples.
        norm_preserving: its Jacobian is a permutation (sorts), not only 1-Lipschitz.
        options: the :class:`LayerOptions` it reads (``group_size``, ``negative_slope``).
        summary: one line for ``--help`` and the docs.

    Example:
        >>> import wgan_lip.layers
        >>> from wgan_lip.layers.registry import ACTIVATIONS, LayerOptions
        >>> ACTIVATIONS["groupsort"].group_size(LayerOptions(group_size=4))
        4
    """

    name: str
    make: ActivationFactory
    group_size: Callable[[LayerOptions], int] = lambda opts: 1
    norm_preserving: bool = False
    options: frozenset[str] = frozenset()
    summary: str = ""


LAYERS: dict[str, LayerKind] = {}
ACTIVATIONS: dict[str, ActivationKind] = {}


def register_layer(kind: LayerKind) -> LayerKind:
    """Add ``kind`` to :data:`LAYERS` under its name (replacing one of the same name).

    Args:
        kind: the layer's factories and flags.

    Returns:
        ``kind``, so that a module can keep it.

    Raises:
        InputError: a ``kind`` with neither a dense nor a convolution factory.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.layers.registry import LAYERS, LayerKind, register_layer
        >>> _ = register_layer(LayerKind("doc_plain", linear=lambda i, o, opts: nn.Linear(i, o)))
        >>> LAYERS.pop("doc_plain").certified
        False
    """
    if kind.linear is None and kind.conv is None:
        raise InputError(f"layer {kind.name!r} needs a linear or a conv factory")
    LAYERS[kind.name] = kind
    return kind


def register_activation(kind: ActivationKind) -> ActivationKind:
    """Add ``kind`` to :data:`ACTIVATIONS` under its name (replacing one of the same name).

    Args:
        kind: the activation's factory and flags.

    Returns:
        ``kind``.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.layers.registry import ACTIVATIONS, ActivationKind
        >>> from wgan_lip.layers.registry import register_activation
        >>> _ = register_activation(ActivationKind("doc_tanh", lambda w, opts: nn.Tanh()))
        >>> ACTIVATIONS.pop("doc_tanh").name
        'doc_tanh'
    """
    ACTIVATIONS[kind.name] = kind
    return kind


def layer_kind(name: str, role: str) -> LayerKind:
    """The registered layer ``name`` that has a ``role`` (``"linear"`` or ``"conv"``) factory.

    Args:
        name: a name of :data:`LAYERS`.
        role: ``"linear"`` or ``"conv"``.

    Returns:
        The :class:`LayerKind`.

    Raises:
        InputError: an unknown name, or a layer without that role; the message lists the
            layers that have it.

    Example:
        >>> import wgan_lip.layers
        >>> from wgan_lip.layers.registry import layer_kind
        >>> layer_kind("aol", "conv").name
        'aol'
        >>> layer_kind("bcop", "linear")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: bcop has no linear form; choose linear from aol, bjorck,
        plain, sll, spectral
    """
    choices = ", ".join(sorted(n for n, k in LAYERS.items() if getattr(k, role) is not None))
    kind = LAYERS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InputError(f"unknown {role} layer {name!r}; choose one of {choices}")
    if getattr(kind, role) is None:
        raise InputError(f"{name} has no {role} form; choose {role} from {choices}")
    return kind


def activation_kind(name: str) -> ActivationKind:
    """The registered activation ``name``; a one-line error naming the choices otherwise.

    Args:
        name: a name of :data:`ACTIVATIONS`.

    Returns:
        The :class:`ActivationKind`.

    Raises:
        InputError: an unknown name.

    Example:
        >>> import wgan_lip.layers
        >>> from wgan_lip.layers.registry import activation_kind
        >>> activation_kind("maxmin").norm_preserving
        True
    """
    kind = ACTIVATIONS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InputError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return kind


# ----- torch's own layers and activations: unconstrained, for the baselines -----


def _plain_conv(i: int, o: int, opts: LayerOptions) -> nn.Module:
    from torch import nn

    k = opts.kernel_size
    padding = (k - 1) // 2 if opts.stride > 1 else "same"
    return nn.Conv2d(i, o, k, opts.stride, padding, bias=opts.bias)


def _plain_linear(i: int, o: int, opts: LayerOptions) -> nn.Module:
    from torch import nn

    return nn.Linear(i, o, bias=opts.bias)


def _relu(width: int, opts: LayerOptions) -> nn.Module:
    from torch import nn

    return nn.ReLU()


def _leaky_relu(width: int, opts: LayerOptions) -> nn.Module:
    from torch import nn

    if not 0 <= opts.negative_slope <= 1:
        raise InputError(
            f"negative_slope must be in [0, 1] (a 1-Lipschitz LeakyReLU), got {opts.negative_slope}"
        )
    return nn.LeakyReLU(opts.negative_slope)


register_layer(
    LayerKind(
        "plain",
        linear=_plain_linear,
        conv=_plain_conv,
        strided=True,
        options=frozenset({"kernel_size", "bias"}),
        summary="torch's nn.Linear / nn.Conv2d, unconstrained (the penalty and clipping baselines)",
    )
)
register_activation(ActivationKind("relu", _relu, summary="ReLU: 1-Lipschitz, not norm preserving"))
register_activation(
    ActivationKind(
        "leaky_relu",
        _leaky_relu,
        options=frozenset({"negative_slope"}),
        summary="LeakyReLU of negative_slope (the DCGAN critics)",
    )
)
