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
    """A plain :class:`torch.nn.Linear` with ``m``'s current weight and bias."""
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
    """A plain :class:`torch.nn.Conv2d` with ``m``'s current weight and bias and all of its
    options (stride, padding, dilation, groups, padding mode)."""
    w = m.weight
    out = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride,
                    padding=m.padding, dilation=m.dilation, groups=m.groups,
                    bias=m.bias is not None, padding_mode=m.padding_mode, device=w.device,
                    dtype=w.dtype)  # fmt: skip
    out.weight.copy_(w)
    if m.bias is not None:
        out.bias.copy_(m.bias)
    return out


class Residual(nn.Module):
    """``x + body(x)``: the plain export of a residual layer (SLL). Its bound is the generic
    ``1 + bound(body)``, sound but loose: certify the original layer, not its export."""

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
