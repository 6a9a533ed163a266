"""AOL: almost-orthogonal layers by diagonal rescaling (Prach & Lampert, ECCV 2022).

A free weight ``P`` is rescaled column-wise (per input unit or input channel):
``W = P diag(d)`` with ``d_i = (sum_j |(P^T P)_ij|)^(-1/2)``. Then ``D (P^T P) D <= I`` by the
Schur test (see :mod:`._gram`), so ``||W||_2 <= 1`` whatever ``P`` is: no iteration, one Gram
matrix per forward pass. For a convolution ``P^T P`` is the Gram *kernel* and the sum runs over
its taps, so the bound holds for every input size, zero or circular padding. ``W`` is
orthogonal exactly when ``P^T P`` is diagonal, and training tends to move it there, but an
AOL layer is only guaranteed 1-Lipschitz, not gradient-norm preserving.

A layer with fewer outputs than inputs is rescaled on its output side instead,
``W = diag(d) P`` with ``d_i = (sum_j |(P P^T)_ij|)^(-1/2)`` (the same lemma for ``W^T``, which
has the same norm): the Gram matrix is then the smaller one (``out x out``: 256 x 256 rather
than 6272 x 6272 for a classifier head on flattened features), and a weight with orthonormal
rows, the usual start, is left exactly as it is.

``lipschitz_bound`` recomputes the norm from the rescaled weight in float64 (exact singular
values for the dense layer; for the convolution the smaller of the Schur bound and the
transfer-matrix bound), so a certificate never relies on the lemma holding in float32.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import InputError
from ._checks import check_float_input, check_positive_int
from ._gram import abs_row_sums, conv_gram, dense_gram, schur_bound
from ._linear import ConstrainedLinear
from .registry import LayerKind, register_layer

# a zero column would divide by zero; a larger sum only shrinks the column (still sound)
_EPS = 1e-12


def scaled_dim(weight: torch.Tensor) -> int:
    """The dimension AOL rescales: 1 (inputs), or 0 (outputs) when there are fewer outputs.

    Rescaling the smaller side is the tighter choice: AOL's Gram is then the smaller one.

    Args:
        weight: a dense ``(out, in)`` or convolution ``(out, in, kh, kw)`` weight.

    Returns:
        ``0`` when ``out < in``, else ``1``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.aol import scaled_dim
        >>> scaled_dim(torch.ones(2, 5)), scaled_dim(torch.ones(5, 2, 3, 3))
        (0, 1)
    """
    return 0 if weight.shape[0] < weight.shape[1] else 1


def aol_scale(weight: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The AOL rescaling ``d`` of a dense ``(out, in)`` or convolution ``(out, in, kh, kw)`` weight.

    One factor per unit or channel of dimension ``dim``: inputs (1) from the Gram of the
    columns, outputs (0) from the Gram of the rows, ``d_i = (sum_j |G_ij|)^(-1/2)`` (the
    taps of a convolution's Gram kernel summed); ``W diag(d)`` (or ``diag(d) W``) then has
    spectral norm at most 1 (Prach & Lampert 2022). Differentiable.

    Args:
        weight: the free weight, dense ``(out, in)`` or convolution ``(out, in, kh, kw)``.
        dim: ``1`` (rescale inputs) or ``0`` (rescale outputs); ``None``:
            :func:`scaled_dim`. Any value other than 1 is taken as 0.

    Returns:
        The factors, ``(in,)`` for ``dim=1`` or ``(out,)`` for ``dim=0``, of ``weight``'s
        dtype; a zero row sum is clamped to ``1e-12`` first.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.aol import aol_scale
        >>> from wgan_lip.layers.lipschitz import matrix_norm2
        >>> w = torch.ones(2, 2)  # spectral norm 2
        >>> d = aol_scale(w)
        >>> d, matrix_norm2(w * d)
        (tensor([0.5000, 0.5000]), 1.0)
        >>> aol_scale(torch.randn(3, 2, 3, 3)).shape  # a convolution: one per input channel
        torch.Size([2])
    """
    dim = scaled_dim(weight) if dim is None else dim
    w = weight if dim == 1 else weight.transpose(0, 1)
    gram = dense_gram(w) if w.dim() == 2 else conv_gram(w)
    return abs_row_sums(gram).clamp_min(_EPS).rsqrt()


def _broadcast(d: torch.Tensor, dim: int, ndim: int) -> torch.Tensor:
    shape = [1] * ndim
    shape[dim] = -1
    return d.reshape(shape)


class _AOLRescale(nn.Module):
    """Parametrization ``P -> P diag(d(P))``, or ``diag(d(P)) P`` for fewer outputs."""

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        dim = scaled_dim(p)
        return p * _broadcast(aol_scale(p, dim), dim, p.dim())


class AOLLinear(ConstrainedLinear):
    """AOL dense layer: 1-Lipschitz for every value of its parameters.

    :class:`torch.nn.Linear` whose weight is the AOL rescaling of a free matrix:
    ``||weight||_2 <= 1`` for every value of the parameters.

    Initialized with an orthogonal free matrix, which the rescaling leaves as it is.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: in ``forward``, an input whose last dim is not ``in_features``.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import AOLLinear, lipschitz_bound
        >>> layer = AOLLinear(8, 4)
        >>> lipschitz_bound(layer) <= 1 + 1e-5  # 1 up to float32 rounding
        True
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, device=None, dtype=None
    ) -> None:
        check_positive_int(in_features, "in_features", "AOLLinear")
        check_positive_int(out_features, "out_features", "AOLLinear")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        with torch.no_grad():  # an orthogonal start: P^T P diagonal, so W = P's polar factor
            nn.init.orthogonal_(self.weight)
        parametrize.register_parametrization(self, "weight", _AOLRescale())


class AOLConv2d(nn.Conv2d):
    """AOL convolution: 1-Lipschitz on every input size.

    Stride-1 'same' convolution (odd kernel; zero or circular padding) whose kernel is the
    AOL rescaling of a free kernel: 1-Lipschitz on every input size.

    Args:
        in_channels, out_channels: as :class:`torch.nn.Conv2d`.
        kernel_size: the square kernel's side, odd (padding ``kernel_size // 2``).
        bias: add a learned bias.
        padding_mode: ``"zeros"`` or ``"circular"``.
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: an even ``kernel_size`` or another ``padding_mode``; in ``forward``, an
            input that is not 4-D or has the wrong number of channels.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import AOLConv2d
        >>> conv = AOLConv2d(3, 8, 3)
        >>> conv(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = True,
        *,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            check_positive_int(value, name, "AOLConv2d")
        if kernel_size % 2 != 1:
            raise InputError(
                f"AOLConv2d needs an odd kernel_size (same padding), got {kernel_size}"
            )
        if padding_mode not in ("zeros", "circular"):
            raise InputError(
                f"AOLConv2d: padding_mode must be 'zeros' or 'circular', got {padding_mode!r} "
                "(reflect/replicate padding duplicates pixels: no 1-Lipschitz guarantee)"
            )
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        with torch.no_grad():  # a centred orthogonal start (the AOL paper's identity-like init)
            w = torch.zeros_like(self.weight)
            centre = torch.empty(out_channels, in_channels, device=w.device, dtype=w.dtype)
            nn.init.orthogonal_(centre)
            w[:, :, kernel_size // 2, kernel_size // 2] = centre
            self.weight.copy_(w + 1e-3 * torch.randn_like(w) / math.sqrt(kernel_size**2))
        parametrize.register_parametrization(self, "weight", _AOLRescale())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4, channels=self.in_channels)
        return super().forward(x)

    def lipschitz_bound(self) -> float:
        """The smaller of two certified bounds of the rescaled convolution, in float64: the
        Schur bound on its Gram kernel and the transfer-matrix bound (at most 1 up to
        rounding), plus the rounding of the convolution in the layer's dtype."""
        from .lipschitz import conv2d_exact_bound, round_conv

        w = self.weight.detach().to(torch.float64)  # the kernel the forward pass uses
        raw = self.parametrizations.weight.original.detach().to(torch.float64)
        dim = scaled_dim(raw)
        d = aol_scale(raw, dim)
        # Schur weights 1/d make the row sums of W's Gram (on the scaled side) equal to 1
        gram = conv_gram(w if dim == 1 else w.transpose(0, 1))
        return round_conv(
            self, min(math.sqrt(schur_bound(gram, 1.0 / d)), conv2d_exact_bound(self)[0])
        )

    def export_plain(self) -> nn.Conv2d:
        """A plain :class:`torch.nn.Conv2d` with the rescaled kernel and the same padding."""
        from .export import plain_conv2d

        return plain_conv2d(self)


register_layer(
    LayerKind(
        "aol",
        linear=lambda i, o, opts: AOLLinear(i, o, bias=opts.bias),
        conv=lambda i, o, opts: AOLConv2d(
            i, o, opts.kernel_size, bias=opts.bias, padding_mode=opts.padding or "zeros"
        ),
        certified=True,
        options=frozenset({"kernel_size", "bias", "padding"}),
        summary="almost-orthogonal layers (AOL): rescaled, 1-Lipschitz without iterations",
    )
)
