"""Export a certified network to plain ``torch.nn`` layers computing the same function.

A layer that is not plain torch owns its export: an ``export_plain(self) -> nn.Module``
method (as it owns its ``lipschitz_bound``), so a new layer needs no branch here. Other
parametrizations are folded into their tensors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from .lipschitz import own_method


def plain_linear(m: nn.Linear) -> nn.Linear:
    """A plain :class:`torch.nn.Linear` with ``m``'s current weight and bias.

    The weight is read once (a parametrized one is computed as ``m`` computes it now) and
    copied, with its dtype and device. Call it under ``torch.no_grad()``, as
    :func:`~wgan_lip.layers.export_plain` does: otherwise the in-place copy into the new
    parameters raises ``RuntimeError``.

    Args:
        m: a linear layer (``nn.Linear`` or a parametrized subclass).

    Returns:
        A new ``nn.Linear`` of the same shape, computing ``m``'s function.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BjorckLinear
        >>> from wgan_lip.layers.export import plain_linear
        >>> layer = BjorckLinear(3, 2)
        >>> with torch.no_grad():
        ...     plain = plain_linear(layer)
        >>> type(plain).__name__, bool(torch.allclose(plain.weight, layer.weight))
        ('Linear', True)
    """
    out = nn.Linear(
        m.in_features,
        m.out_features,
        bias=m.bias is not None,
        device=m.weight.device,
        dtype=m.weight.dtype,
    )
    out.weight.copy_(m.weight)
    if m.bias is not None:
        out.bias.copy_(m.bias)
    return out


def plain_conv2d(m: nn.Conv2d) -> nn.Conv2d:
    """A plain :class:`torch.nn.Conv2d` with ``m``'s current weight, bias and options.

    The options are all of ``m``'s: stride, padding, dilation, groups, padding mode. Call
    it under ``torch.no_grad()``, as :func:`~wgan_lip.layers.export_plain` does: otherwise
    the in-place copy into the new parameters raises ``RuntimeError``.

    Args:
        m: a 2-D convolution (``nn.Conv2d`` or a parametrized subclass such as
            :class:`~wgan_lip.layers.BCOPConv2d`).

    Returns:
        A new ``nn.Conv2d`` computing ``m``'s function.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BCOPConv2d
        >>> from wgan_lip.layers.export import plain_conv2d
        >>> conv = BCOPConv2d(2, 2, 3)
        >>> with torch.no_grad():
        ...     plain = plain_conv2d(conv)
        ...     x = torch.randn(1, 2, 5, 5)
        ...     same = torch.allclose(plain(x), conv(x), atol=1e-6)
        >>> type(plain).__name__, plain.padding_mode, same
        ('Conv2d', 'circular', True)
    """
    w = m.weight
    out = nn.Conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=m.groups,
        bias=m.bias is not None,
        padding_mode=m.padding_mode,
        device=w.device,
        dtype=w.dtype,
    )
    out.weight.copy_(w)
    if m.bias is not None:
        out.bias.copy_(m.bias)
    return out


class Residual(nn.Module):
    """``x + body(x)``: the plain export of a residual layer (SLL).

    Its bound is the generic ``1 + bound(body)``, sound but loose: certify the original
    layer, not its export. Its own ``export_plain`` is a deep copy.

    Args:
        body: the residual branch; its output must have the shape of its input.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers import lipschitz_bound
        >>> from wgan_lip.layers.export import Residual
        >>> body = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = body.weight.copy_(-torch.eye(2))  # x + body(x) = 0
        >>> Residual(body)(torch.ones(1, 2)), round(lipschitz_bound(Residual(body)), 4)
        (tensor([[0., 0.]], grad_fn=<AddBackward0>), 2.0)
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)

    def lipschitz_bound(self) -> float:
        from .lipschitz import lipschitz_bound

        return 1.0 + lipschitz_bound(self.body)

    def export_plain(self) -> nn.Module:
        return copy.deepcopy(self)


def _convert(m: nn.Module) -> nn.Module:
    if own_method(m, "export_plain") is not None:
        return m.export_plain()
    if parametrize.is_parametrized(m):
        for name in list(m.parametrizations.keys()):
            parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    for name, child in list(m.named_children()):
        setattr(m, name, _convert(child))
    return m


def export_plain(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every parametrized layer replaced by its plain equivalent.

    ``BjorckLinear``/``SpectralLinear`` become ``nn.Linear`` with the constrained weight,
    ``BCOPConv2d``/``SpectralConv2d`` an ``nn.Conv2d`` with the composed or normalized kernel
    and the same padding (each through its own ``export_plain`` method), other
    parametrizations are folded into their tensors; activations are kept. The result is in
    eval mode, has no parametrizations and computes the same outputs (the weights are those
    of the module in eval mode: no power-iteration update happens).

    Args:
        module: any module; ``module`` itself is not modified.

    Returns:
        The plain copy, in eval mode.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BjorckLinear, export_plain
        >>> layer = BjorckLinear(4, 4).eval()
        >>> plain = export_plain(layer)
        >>> type(plain).__name__, bool(torch.allclose(plain.weight, layer.weight))
        ('Linear', True)
    """
    src = copy.deepcopy(module).eval()
    with torch.no_grad():
        return _convert(src).eval()
