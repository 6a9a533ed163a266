"""``StackedLinear``: ``K`` independent Björck dense layers stored as one ``(K, out, in)``
weight, orthonormalized together (batched Björck) and applied with one batched matmul.

The W1 critic family (:mod:`wgan_lip.w1.family`) trains its networks of one width and
depth as a stack of such layers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._checks import check_float_input
from ._gram import matrix_norm2
from ._rounding import linear_rounding
from .orthogonal import Orthonormal


class StackedLinear(nn.Module):
    """``K`` independent dense layers ``(K, out, in)``, orthonormalized as a batch.

    The weight is parametrized by Björck orthonormalization (each ``(out, in)`` slice has
    orthonormal rows or columns); the bias ``(K, out)`` starts at 0. ``forward`` maps
    ``(B, K, in)`` to ``(B, K, out)`` (layer ``k`` on column ``k``); :meth:`stacked` maps
    ``(K, B, in)`` to ``(K, B, out)``, the layout the critic family trains in. As a map of
    one sample ``(K, in)`` it is block diagonal, so its Lipschitz constant is the largest
    norm of the ``K`` slices.

    Args:
        k: the number of layers.
        in_features: inputs of each layer.
        out_features: outputs of each layer.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import StackedLinear
        >>> layer = StackedLinear(3, 4, 2)
        >>> layer.stacked(torch.randn(3, 5, 4)).shape, layer(torch.randn(5, 3, 4)).shape
        (torch.Size([3, 5, 2]), torch.Size([5, 3, 2]))
        >>> w = layer.weight.detach()
        >>> torch.allclose(w @ w.mT, torch.eye(2).expand(3, 2, 2), atol=1e-4)
        True
        >>> round(layer.lipschitz_bound(), 4)
        1.0
    """

    def __init__(self, k: int, in_features: int, out_features: int) -> None:
        super().__init__()
        w = torch.empty(k, out_features, in_features)
        for i in range(k):
            nn.init.orthogonal_(w[i])
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(k, out_features))
        parametrize.register_parametrization(self, "weight", Orthonormal())

    def stacked(self, h: torch.Tensor) -> torch.Tensor:
        """``(K, B, in)`` to ``(K, B, out)``: every layer on its own batch, one ``baddbmm``."""
        return torch.baddbmm(self.bias.unsqueeze(1), h, self.weight.mT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        check_float_input(x, name, ndim=3)
        k, _, in_features = self.weight.shape
        if tuple(x.shape[1:]) != (k, in_features):
            raise ValueError(
                f"{name}: expected inputs (B, {k}, {in_features}), got shape {tuple(x.shape)}"
            )
        return self.stacked(x.transpose(0, 1)).transpose(0, 1)

    def lipschitz_bound(self) -> float:
        """The largest exact norm (float64) of the ``K`` constrained slices, plus the
        rounding of ``x W^T + b`` in the layer's dtype."""
        w = self.weight.detach()
        return max(
            linear_rounding(matrix_norm2(s), matrix_norm2(s.abs()), w.shape[2], w.dtype, w.device)
            for s in w
        )

    def export_plain(self) -> nn.Module:
        """A plain-torch copy: one ``nn.Linear`` per slice (in :class:`PlainStacked`)."""
        w, b = self.weight.detach(), self.bias.detach()
        linears = []
        for i in range(w.shape[0]):
            lin = nn.Linear(w.shape[2], w.shape[1], dtype=w.dtype, device=w.device)
            lin.weight.copy_(w[i])
            lin.bias.copy_(b[i])
            linears.append(lin)
        return PlainStacked(linears).eval()


class PlainStacked(nn.Module):
    """``(B, K, in)`` to ``(B, K, out)`` with one plain ``nn.Linear`` per column.

    The export of :class:`StackedLinear`.

    Args:
        linears: the ``K`` layers.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers.stacked import PlainStacked
        >>> PlainStacked([nn.Linear(4, 2), nn.Linear(4, 2)])(torch.randn(5, 2, 4)).shape
        torch.Size([5, 2, 2])
    """

    def __init__(self, linears: list[nn.Linear]) -> None:
        super().__init__()
        self.linears = nn.ModuleList(linears)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([lin(x[:, i]) for i, lin in enumerate(self.linears)], dim=1)
