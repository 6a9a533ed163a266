"""Orthogonal convolution (BCOP), invertible downsampling and L2-norm pooling.

BCOP (block convolution orthogonal parameterization, Li et al., NeurIPS 2019) builds a
k x k orthogonal convolution on ``c`` channels as a product of orthogonal convolutions:

* a 1x1 convolution by an orthogonal ``c x c`` matrix ``H``;
* ``k - 1`` two-tap convolutions along the width, ``[P, I - P]``, and ``k - 1`` along the
  height, ``[[P'], [I - P']]``, where each ``P = U U^T`` is a symmetric projector from a
  ``c x c/2`` matrix ``U`` with orthonormal columns.

The transfer matrix of a two-tap block is ``P + (I - P) e^{-i w}``: unitary at every
frequency, so the block is an orthogonal circular convolution. All matrices are
orthonormalized by Björck (``wgan_lip.layers.orthogonal``), batched in one call, and the
k x k kernel is their composition. With circular padding the operator on any H x W input
is exactly orthogonal (``in == out``); with zero padding it is a compression of the same
operator, hence 1-Lipschitz. ``in != out`` takes rows or columns of the
``max(in, out)``-channel orthogonal kernel: an orthonormal-row (1-Lipschitz) or
orthonormal-column (isometric) operator.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ._checks import check_float_input
from .orthogonal import BjorckConfig, Orthonormal


def compose_kernels(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Kernel of ``conv(conv(x, inner), outer)`` (cross-correlation, no padding, stride 1).

    ``inner``: ``(m, i, ha, wa)``, ``outer``: ``(o, m, hb, wb)``; returns
    ``(o, i, ha + hb - 1, wa + wb - 1)``, ``K[w] = sum_{u + v = w} outer[v] @ inner[u]``.
    """
    hb, wb = outer.shape[-2:]
    x = inner.transpose(0, 1)  # (i, m, ha, wa): each input channel is a batch element
    x = F.pad(x, (wb - 1, wb - 1, hb - 1, hb - 1))
    out = F.conv2d(x, outer.flip(-1, -2))
    return out.transpose(0, 1)


def _same_pads(k: int) -> tuple[int, int]:
    left = (k - 1) // 2
    return left, k - 1 - left


class BCOPConv2d(nn.Conv2d):
    """Orthogonal k x k convolution by BCOP, stride 1, output size equal to input size.

    A real :class:`torch.nn.Conv2d` (``isinstance`` holds, ``padding_mode`` is
    ``"circular"`` or ``"zeros"``, odd kernels keep the symmetric ``padding`` of a 'same'
    convolution) whose ``weight`` is computed from orthonormalized factors.

    Args:
        in_channels, out_channels, kernel_size: as :class:`torch.nn.Conv2d` (square kernel).
        bias: add a learned bias (it does not change the Lipschitz constant).
        padding: ``"circular"`` (exactly orthogonal when ``in == out``) or ``"zeros"``
            (1-Lipschitz).
        config: :class:`BjorckConfig` of the orthonormalization.

    ``weight`` is the composed ``(out, in, k, k)`` kernel; the raw parameters are
    ``ortho`` (the 1x1 matrix) and ``proj`` (the ``2(k-1)`` projector factors), each
    orthonormalized through a ``torch.nn.utils.parametrize`` parametrization. For strided
    downsampling use :class:`InvertibleDownsample` after this layer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        *,
        padding: Literal["circular", "zeros"] = "circular",
        config: BjorckConfig | None = None,
        stride: int = 1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if stride != 1:
            raise ValueError(
                f"BCOPConv2d is stride 1 (got stride={stride}); downsample with "
                "InvertibleDownsample(factor) after it, which is norm preserving"
            )
        if padding not in ("circular", "zeros"):
            raise ValueError(f"padding must be 'circular' or 'zeros', got {padding!r}")
        for name, v in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"BCOPConv2d: {name} must be a positive integer, got {v!r}")
        # nn.Conv2d's attributes and checks, built on the meta device: no memory and no draw
        # from the random generator (initializations stay those of the previous versions).
        k = kernel_size
        super().__init__(in_channels, out_channels, k, padding=(k - 1) // 2 if k % 2 else 0,
                         padding_mode=padding, bias=False, device="meta")  # fmt: skip
        del self.weight  # the composed kernel (the property below) replaces the parameter
        self.k = k
        c = max(in_channels, out_channels)
        rank = max(c // 2, 1)
        factory = {"device": device, "dtype": dtype}
        self.ortho = nn.Parameter(torch.empty(c, c, **factory))
        self.proj = nn.Parameter(torch.empty(2 * (kernel_size - 1), c, rank, **factory))
        with torch.no_grad():
            nn.init.orthogonal_(self.ortho)
            for p in self.proj:
                nn.init.orthogonal_(p)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels, **factory))
        parametrize.register_parametrization(self, "ortho", Orthonormal(config))
        if kernel_size > 1:
            parametrize.register_parametrization(self, "proj", Orthonormal(config))

    def factors(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The 1x1 orthogonal matrix and the list of two-tap factor kernels, in order."""
        h = self.ortho
        c = h.shape[0]
        if self.k == 1:
            return h, []
        u = self.proj
        projectors = u @ u.mT  # (2(k-1), c, c)
        eye = torch.eye(c, dtype=h.dtype, device=h.device)
        taps = torch.stack((projectors, eye - projectors), dim=-1)  # (2(k-1), c, c, 2)
        k1 = self.k - 1
        blocks = [t.unsqueeze(-2) for t in taps[:k1]]  # (c, c, 1, 2): along the width
        blocks += [t.unsqueeze(-1) for t in taps[k1:]]  # (c, c, 2, 1): along the height
        return h, blocks

    @property
    def weight(self) -> torch.Tensor:
        """The composed ``(out_channels, in_channels, k, k)`` kernel."""
        h, blocks = self.factors()
        kernel = h[:, :, None, None]
        for block in blocks:
            kernel = compose_kernels(block, kernel)
        return kernel[: self.out_channels, : self.in_channels]

    def pads(self) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` padding of the 'same' output size."""
        left, right = _same_pads(self.k)
        return left, right, left, right

    def reset_parameters(self) -> None:
        """Nothing to do: the factors are initialized orthogonal in ``__init__``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"BCOPConv2d: expected {self.in_channels} input channels, got shape "
                f"{tuple(x.shape)}"
            )
        mode = "circular" if self.padding_mode == "circular" else "constant"
        x = F.pad(x, self.pads(), mode=mode)
        return F.conv2d(x, self.weight, self.bias)

    def lipschitz_bound(self) -> float:
        """The product of the factors' bounds plus the rounding of the composed kernel
        (:func:`~wgan_lip.layers.lipschitz.bcop_bound`)."""
        from .lipschitz import bcop_bound

        return bcop_bound(self)

    def export_plain(self) -> nn.Sequential:
        """The same map as plain torch: a padding layer and an :class:`torch.nn.Conv2d` with
        the composed kernel."""
        weight = self.weight
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.k,
                         bias=self.bias is not None, device=weight.device,
                         dtype=weight.dtype)  # fmt: skip
        conv.weight.copy_(weight)
        if self.bias is not None:
            conv.bias.copy_(self.bias)
        pads = self.pads()
        pad = nn.CircularPad2d(pads) if self.padding_mode == "circular" else nn.ZeroPad2d(pads)
        return nn.Sequential(pad, conv)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.k}, "
            f"padding={self.padding_mode!r}, bias={self.bias is not None}"
        )


class InvertibleDownsample(nn.Module):
    """Space-to-depth (pixel unshuffle): ``(N, C, H, W) -> (N, C f^2, H/f, W/f)``.

    A permutation of the entries, hence orthogonal: downsampling without losing norm.
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        if not isinstance(factor, int) or factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor!r}")
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4)
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(
                f"InvertibleDownsample: spatial size {h}x{w} is not divisible by factor "
                f"{self.factor}; pad or crop the input first"
            )
        return F.pixel_unshuffle(x, self.factor)

    def lipschitz_bound(self) -> float:
        """A permutation of the entries: an isometry."""
        return 1.0

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class L2NormPool2d(nn.Module):
    """L2-norm pooling scaled to be 1-Lipschitz: ``sqrt(sum_window x^2 + eps) / ceil(k/s)``.

    Each window's norm is 1-Lipschitz (``sqrt(|x|^2 + eps)`` is the norm of ``(x, sqrt(eps))``,
    smooth at 0), and a pixel lies in at most ``ceil(k/s)^2`` windows, so the pooled map has
    Lipschitz constant at most ``ceil(k/s)``; dividing by it makes it 1-Lipschitz. With
    non-overlapping windows (the default ``stride = kernel_size``) no scaling is needed.
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None, eps: float = 1e-12):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size
        self.eps = eps
        self.scale = 1.0 / math.ceil(kernel_size / self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4)
        k = self.kernel_size
        sq = F.avg_pool2d(x * x, k, self.stride) * (k * k)
        return torch.sqrt(sq + self.eps) * self.scale

    def lipschitz_bound(self) -> float:
        """Scaled by ``1/ceil(k/s)``, the most windows a pixel lies in: 1."""
        return 1.0

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
