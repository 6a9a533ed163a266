"""Export a certified network to plain ``torch.nn`` layers computing the same function."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize

from .conv import BCOPConv2d


def _plain_linear(m: nn.Linear) -> nn.Linear:
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


def _plain_bcop(m: BCOPConv2d) -> nn.Module:
    weight = m.weight
    conv = nn.Conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        bias=m.bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    conv.weight.copy_(weight)
    if m.bias is not None:
        conv.bias.copy_(m.bias)
    pad = nn.CircularPad2d(m.pads()) if m.padding == "circular" else nn.ZeroPad2d(m.pads())
    return nn.Sequential(pad, conv)


def _convert(m: nn.Module) -> nn.Module:
    if isinstance(m, BCOPConv2d):
        return _plain_bcop(m)
    if isinstance(m, nn.Linear) and parametrize.is_parametrized(m):
        return _plain_linear(m)
    if parametrize.is_parametrized(m):
        for name in list(m.parametrizations.keys()):
            parametrize.remove_parametrizations(m, name, leave_parametrized=True)
    for name, child in list(m.named_children()):
        setattr(m, name, _convert(child))
    return m


def export_plain(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every parametrized layer replaced by its plain equivalent.

    ``BjorckLinear``/``SpectralLinear`` become ``nn.Linear`` with the constrained weight,
    ``BCOPConv2d`` becomes a padding layer and an ``nn.Conv2d`` with the composed kernel,
    other parametrizations are folded into their tensors; activations are kept. The result
    is in eval mode, has no parametrizations and computes the same outputs (the weights are
    those of the module in eval mode: no power-iteration update happens).
    """
    src = copy.deepcopy(module).eval()
    with torch.no_grad():
        return _convert(src).eval()
