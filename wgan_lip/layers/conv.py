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

:class:`BCOPConv2d` is a real :class:`torch.nn.Conv2d` whose ``weight`` is that composition,
a ``torch.nn.utils.parametrize`` parametrization (:class:`BCOPKernel`) of the raw factors.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ._checks import check_float_input, check_nonnegative_float, check_positive_int
from ._gram import matrix_norm2
from .orthogonal import BjorckConfig, Orthonormal
from .registry import LayerKind, register_layer


def compose_kernels(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Kernel of ``conv(conv(x, inner), outer)`` (cross-correlation, no padding, stride 1).

    ``inner``: ``(m, i, ha, wa)``, ``outer``: ``(o, m, hb, wb)``; returns
    ``(o, i, ha + hb - 1, wa + wb - 1)``, ``K[w] = sum_{u + v = w} outer[v] @ inner[u]``.

    Args:
        outer: the kernel applied second, ``(o, m, hb, wb)``.
        inner: the kernel applied first, ``(m, i, ha, wa)``, same dtype and device.

    Returns:
        The composed kernel ``(o, i, ha + hb - 1, wa + wb - 1)``, differentiable in both.

    Example:
        >>> import torch
        >>> import torch.nn.functional as F
        >>> from wgan_lip.layers import compose_kernels
        >>> inner = torch.tensor([1.0, 2.0]).reshape(1, 1, 1, 2)
        >>> outer = torch.tensor([3.0, 4.0]).reshape(1, 1, 1, 2)
        >>> compose_kernels(outer, inner).flatten()  # (1 + 2z)(3 + 4z) = 3 + 10z + 8z^2
        tensor([ 3., 10.,  8.])
        >>> x = torch.randn(1, 1, 3, 6)
        >>> both = F.conv2d(F.conv2d(x, inner), outer)
        >>> bool(torch.allclose(both, F.conv2d(x, compose_kernels(outer, inner))))
        True
    """
    hb, wb = outer.shape[-2:]
    x = inner.transpose(0, 1)  # (i, m, ha, wa): each input channel is a batch element
    x = F.pad(x, (wb - 1, wb - 1, hb - 1, hb - 1))
    out = F.conv2d(x, outer.flip(-1, -2))
    return out.transpose(0, 1)


def _two_tap_bound(a: torch.Tensor, b: torch.Tensor) -> float:
    """``sup_{|z|=1} ||A + z B||_2`` bound: ``sqrt(||A^T A + B^T B|| + 2 ||A^T B||)``."""

    return math.sqrt(matrix_norm2(a.mT @ a + b.mT @ b) + 2.0 * matrix_norm2(a.mT @ b))


class BCOPKernel(nn.Module):
    """``torch.nn.utils.parametrize`` parametrization of a BCOP convolution's ``weight``.

    Maps the raw factors ``(ortho, proj)`` (``original0``: a ``c x c`` matrix, ``original1``:
    ``2(k-1)`` matrices ``c x c/2``) to the composed ``(out, in, k, k)`` kernel: each factor is
    orthonormalized by its own :class:`~wgan_lip.layers.orthogonal.Orthonormal` (cached until
    the raw factor changes), then the convolutions are composed. ``init`` holds the initial
    raw factors, handed to ``register_parametrization`` once by :meth:`right_inverse`; a
    kernel cannot be decomposed back into factors, so assigning ``weight`` afterwards is an
    error (load a state dict instead). :class:`BCOPConv2d` creates and registers it.

    Args:
        in_channels: input channels of the convolution.
        out_channels: output channels; the factors are ``c x c`` with
            ``c = max(in_channels, out_channels)`` and the kernel keeps the first
            ``out_channels`` rows and ``in_channels`` columns.
        kernel_size: the square kernel's side ``k`` (``k - 1`` two-tap factors per axis).
        config: :class:`~wgan_lip.layers.orthogonal.BjorckConfig` of both
            orthonormalizations (None: the default).
        init: the initial raw factors ``(ortho, proj)``, returned once by
            :meth:`right_inverse` when the parametrization is registered.

    Raises:
        RuntimeError: from :meth:`right_inverse`, once ``init`` has been used (or when it
            is None): a kernel cannot be assigned.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BCOPConv2d
        >>> from wgan_lip.layers.conv import BCOPKernel
        >>> conv = BCOPConv2d(2, 4, 3)
        >>> param = conv.parametrizations.weight
        >>> isinstance(param[0], BCOPKernel), param.original0.shape, param.original1.shape
        (True, torch.Size([4, 4]), torch.Size([4, 4, 2]))
        >>> kernel = param[0](param.original0, param.original1)
        >>> kernel.shape, bool(torch.allclose(kernel, conv.weight))
        (torch.Size([4, 2, 3, 3]), True)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        config: BjorckConfig | None = None,
        init: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, kernel_size
        self.ortho = Orthonormal(config)
        self.proj = Orthonormal(config)
        self._init = init

    def factors(
        self, ortho: torch.Tensor, proj: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The 1x1 orthogonal matrix and the list of two-tap factor kernels, in order."""
        h = self.ortho(ortho)
        c = h.shape[0]
        if self.k == 1:
            return h, []
        u = self.proj(proj)
        projectors = u @ u.mT  # (2(k-1), c, c)
        eye = torch.eye(c, dtype=h.dtype, device=h.device)
        taps = torch.stack((projectors, eye - projectors), dim=-1)  # (2(k-1), c, c, 2)
        k1 = self.k - 1
        blocks = [t.unsqueeze(-2) for t in taps[:k1]]  # (c, c, 1, 2): along the width
        blocks += [t.unsqueeze(-1) for t in taps[k1:]]  # (c, c, 2, 1): along the height
        return h, blocks

    def forward(self, ortho: torch.Tensor, proj: torch.Tensor) -> torch.Tensor:
        h, blocks = self.factors(ortho, proj)
        kernel = h[:, :, None, None]
        for block in blocks:
            kernel = compose_kernels(block, kernel)
        return kernel[: self.out_channels, : self.in_channels]

    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._init is None:
            raise RuntimeError(
                "BCOPConv2d: the weight is composed from orthogonal factors and cannot be "
                "assigned; load a state dict, or write parametrizations.weight.original0 "
                "(the 1x1 matrix) and original1 (the projector factors)"
            )
        init, self._init = self._init, None
        return init

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.k}"


# State-dict keys of the versions whose factors were separate parametrized tensors.
_OLD_KEYS = {
    "parametrizations.ortho.original": "parametrizations.weight.original0",
    "parametrizations.proj.original": "parametrizations.weight.original1",
    "proj": "parametrizations.weight.original1",  # kernel_size 1: an unparametrized placeholder
}


class BCOPConv2d(nn.Conv2d):
    """Orthogonal k x k convolution by BCOP, stride 1, output size equal to input size.

    A real :class:`torch.nn.Conv2d` whose ``weight`` is a ``torch.nn.utils.parametrize``
    parametrization (:class:`BCOPKernel`) of orthonormalized factors, so ``isinstance``
    holds, ``weight`` is the composed orthogonal kernel and the forward pass is
    :class:`torch.nn.Conv2d`'s own with the layer's ``padding`` and ``padding_mode``
    (``"circular"`` or ``"zeros"``): symmetric ``(k-1)//2`` for odd kernels, ``"same"``
    (one more pixel at the bottom/right) for even ones.

    Args:
        in_channels, out_channels, kernel_size: as :class:`torch.nn.Conv2d` (square kernel),
            positive integers.
        bias: add a learned bias, initialized to zero (it does not change the Lipschitz
            constant).
        padding: ``"circular"`` (exactly orthogonal when ``in == out``) or ``"zeros"``
            (1-Lipschitz).
        config: :class:`BjorckConfig` of the orthonormalization.
        stride: must be 1 (accepted so that a ``stride`` keyword gets a clear error).
        device, dtype: factory keywords of the parameters.

    The raw parameters are ``parametrizations.weight.original0`` (the ``c x c`` 1x1 matrix,
    ``c = max(in, out)``) and ``original1`` (the ``2(k-1)`` projector factors); state dicts
    of the earlier layout (``parametrizations.ortho.original``, ``...proj.original``) still
    load. For strided downsampling use :class:`InvertibleDownsample` after this layer.

    Raises:
        ValueError: ``stride`` other than 1, an unknown ``padding``, or a size that is not a
            positive integer; in ``forward``, an input that is not 4-D or has the wrong
            number of channels.
        TypeError: in ``forward``, an input that is not a floating-point tensor.
        RuntimeError: assigning ``weight`` (load a state dict instead).

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BCOPConv2d, lipschitz_bound
        >>> conv = BCOPConv2d(4, 4, 3)  # circular padding, in == out: orthogonal
        >>> x = torch.randn(2, 4, 8, 8)
        >>> y = conv(x)
        >>> y.shape, bool(torch.allclose(y.norm(), x.norm(), rtol=1e-4))
        (torch.Size([2, 4, 8, 8]), True)
        >>> lipschitz_bound(conv) < 1 + 1e-4
        True
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
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"BCOPConv2d: {name} must be a positive integer, got {v!r}")
        # nn.Conv2d's attributes and checks, with its weight on the meta device: no memory and
        # no draw from the random generator (initializations stay those of earlier versions).
        k = kernel_size
        super().__init__(
            in_channels,
            out_channels,
            k,
            padding=(k - 1) // 2 if k % 2 else "same",
            padding_mode=padding,
            bias=False,
            device="meta",
            dtype=dtype,
        )
        c = max(in_channels, out_channels)
        rank = max(c // 2, 1)
        factory = {"device": device, "dtype": dtype}
        ortho = torch.empty(c, c, **factory)
        proj = torch.empty(2 * (kernel_size - 1), c, rank, **factory)
        with torch.no_grad():
            nn.init.orthogonal_(ortho)
            for p in proj:
                nn.init.orthogonal_(p)
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels, **factory))
        kernel = BCOPKernel(in_channels, out_channels, k, config, init=(ortho, proj))
        parametrize.register_parametrization(self, "weight", kernel, unsafe=True)
        # Orthonormalize each factor once, as torch's registration check of a shape-preserving
        # parametrization (BjorckLinear's) does: in train mode this retracts the raw factors
        # and warms the power iteration up, so initial values equal earlier versions' bits.
        originals = self.parametrizations.weight
        kernel.ortho(originals.original0)
        if k > 1:
            kernel.proj(originals.original1)

    def factors(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The 1x1 orthogonal matrix and the list of two-tap factor kernels, in order."""
        p = self.parametrizations.weight
        return p[0].factors(p.original0, p.original1)

    def reset_parameters(self) -> None:
        """Nothing to do: the factors are initialized orthogonal in ``__init__``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:class:`torch.nn.Conv2d`'s forward, after checking the input."""
        check_float_input(x, type(self).__name__, ndim=4, channels=self.in_channels)
        return super().forward(x)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Rename the keys of the earlier layout (see ``_OLD_KEYS``) before loading."""
        for old, new in _OLD_KEYS.items():
            if prefix + old in state_dict and prefix + new not in state_dict:
                state_dict[prefix + new] = state_dict.pop(prefix + old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def lipschitz_bound(self) -> float:
        """The product of the factors' bounds, plus the float rounding of the composed kernel.

        The transfer matrix of the composition is the product of the factors' transfer
        matrices, so ``sup ||K_hat|| <= prod sup ||factor_hat||`` (the 1x1 matrix: its
        spectral norm; a two-tap block ``[A, B]``: :func:`_two_tap_bound`). The forward pass
        uses the kernel composed in the layer's dtype; its distance to the float64
        composition (summed tap-wise spectral norms, a bound of that difference's operator
        norm) is added, and then the rounding of the convolution itself in that dtype
        (:func:`~wgan_lip.layers.lipschitz.round_conv`). Taking a subset of rows or columns
        (``in != out``) cannot increase the norm, nor can zero padding (a compression of the
        circular convolution).
        """
        from .lipschitz import _conv2d, matrix_norm2, round_conv

        if not parametrize.is_parametrized(self, "weight"):  # parametrization removed
            return _conv2d(self)
        h, blocks = self.factors()
        h64 = h.detach().to(torch.float64)
        bound = matrix_norm2(h64)
        kernel64 = h64[:, :, None, None]
        for block in blocks:
            blk = block.detach().to(torch.float64)
            taps = blk.flatten(2)
            bound *= _two_tap_bound(taps[..., 0], taps[..., 1])
            kernel64 = compose_kernels(blk, kernel64)
        kernel64 = kernel64[: self.out_channels, : self.in_channels]
        diff = (self.weight.detach().to(torch.float64) - kernel64).permute(2, 3, 0, 1)
        rounding = float(torch.linalg.matrix_norm(diff, ord=2).sum())
        return round_conv(self, bound + rounding)

    def export_plain(self) -> nn.Conv2d:
        """A plain :class:`torch.nn.Conv2d` with the composed kernel, the same padding and
        padding mode: the same map."""
        from .export import plain_conv2d

        return plain_conv2d(self)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.k}, "
            f"padding={self.padding_mode!r}, bias={self.bias is not None}"
        )

    @property
    def k(self) -> int:
        """The (square) kernel size."""
        return self.kernel_size[0]


class InvertibleDownsample(nn.Module):
    """Space-to-depth (pixel unshuffle): ``(N, C, H, W) -> (N, C f^2, H/f, W/f)``.

    A permutation of the entries, hence orthogonal: downsampling without losing norm.

    Args:
        factor: the downsampling factor ``f``, a positive integer; ``H`` and ``W`` must be
            divisible by it.

    Raises:
        ValueError: a ``factor`` that is not a positive integer; in ``forward``, an input
            that is not 4-D or whose ``H`` or ``W`` is not divisible by ``factor``.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import InvertibleDownsample
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> y = InvertibleDownsample(2)(x)
        >>> y.shape, bool(y.norm() == x.norm())
        (torch.Size([1, 4, 2, 2]), True)
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = check_positive_int(factor, "factor", "InvertibleDownsample")

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
        """A permutation of the entries: an isometry, computed exactly (no rounding)."""
        return 1.0

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


class L2NormPool2d(nn.Module):
    """L2-norm pooling scaled to be 1-Lipschitz: ``sqrt(sum_window x^2 + eps) / ceil(k/s)``.

    Each window's norm is 1-Lipschitz (``sqrt(|x|^2 + eps)`` is the norm of ``(x, sqrt(eps))``,
    smooth at 0), and a pixel lies in at most ``ceil(k/s)^2`` windows, so the pooled map has
    Lipschitz constant at most ``ceil(k/s)``; dividing by it makes it 1-Lipschitz. With
    non-overlapping windows (the default ``stride = kernel_size``) no scaling is needed.

    Windows have no padding: rows and columns that do not fill a last window are dropped.

    Half-precision inputs (float16, bfloat16) are pooled in float32 and the result rounded
    once: squares of float16 values would otherwise underflow (``|x| < 2.4e-4``), an absolute
    error no relative rounding term covers.

    Args:
        kernel_size: the square window's side ``k``, a positive integer.
        stride: the step ``s`` between windows, a positive integer (None or 0:
            ``kernel_size``).
        eps: the smoothing term under the square root, finite and ``>= 0`` (a pooled
            all-zero window gives ``sqrt(eps) / ceil(k/s)``; a negative one would take the
            square root of a negative number near 0).

    Raises:
        ValueError: (an :class:`~wgan_lip.errors.InputError`) a ``kernel_size`` or
            ``stride`` that is not a positive integer, or an ``eps`` that is negative, NaN or
            infinite; in ``forward``, an input that is not 4-D.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import L2NormPool2d
        >>> x = torch.tensor([[[[3.0, 4.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
        >>> L2NormPool2d(2)(x)  # norms of the 2x2 windows
        tensor([[[[5., 1.]]]])
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None, eps: float = 1e-12):
        super().__init__()
        self.kernel_size = check_positive_int(kernel_size, "kernel_size", "L2NormPool2d")
        self.stride = (
            kernel_size
            if stride in (None, 0)
            else check_positive_int(stride, "stride", "L2NormPool2d")
        )
        self.eps = check_nonnegative_float(eps, "eps", "L2NormPool2d")
        self.scale = 1.0 / math.ceil(kernel_size / self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4)
        k = self.kernel_size
        xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        sq = F.avg_pool2d(xc * xc, k, self.stride) * (k * k)
        return (torch.sqrt(sq + self.eps) * self.scale).to(x.dtype)

    def lipschitz_bound(self) -> float:
        """Scaled by ``1/ceil(k/s)``, the most windows a pixel lies in: 1, plus rounding.

        As computed, a window's output is ``sqrt(sum_i x_i^2 (1 + t_i) + eps') (1 + t) s``
        with ``|t_i| <= gamma_{k^2 + 4}`` (the square, the pooled sum, its division by and
        multiplication with ``k^2``, the ``eps`` add) and ``|t| <= gamma_2`` (square root
        and scale): a weighted norm, Lipschitz at most ``sqrt(1 + gamma_{k^2+4}) (1 +
        gamma_2)`` times the exact map's, in the compute precision; then the output
        roundings of the model's dtype (:func:`~wgan_lip.layers.lipschitz.model_dtype`).
        """
        from ._rounding import gamma, output_factor, unit_roundoff
        from .lipschitz import model_dtype

        dtype = model_dtype()
        u = unit_roundoff(torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype)
        k2 = self.kernel_size**2
        inner = math.sqrt(1.0 + gamma(k2 + 4, u)) * (1.0 + gamma(2, u))
        return output_factor(dtype) * inner

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


register_layer(
    LayerKind(
        "bcop",
        conv=lambda i, o, opts: BCOPConv2d(
            i,
            o,
            opts.kernel_size,
            bias=opts.bias,
            padding=opts.padding or "circular",
            config=opts.bjorck,
        ),
        certified=True,
        options=frozenset({"kernel_size", "bias", "padding"}),
        summary="orthogonal convolution by block convolutions of orthogonal parts (BCOP)",
    )
)
