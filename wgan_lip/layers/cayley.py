"""An exactly orthogonal convolution by the Cayley transform in the Fourier domain.

A circular convolution on an ``H x W`` input is diagonalized by the 2-D DFT: at each of the
``H W`` frequencies ``w`` it multiplies the channel vector by the matrix ``V_hat(w)`` of its
kernel. Trockman & Kolter (ICLR 2021) make every such matrix unitary with the Cayley
transform of its skew-Hermitian part, ``A = V_hat - V_hat^H`` and
``Q = (I + A)^-1 (I - A)``: ``I + A`` is always invertible (``A``'s eigenvalues are
imaginary) and ``Q`` is unitary for every ``V``. Then the layer is an orthogonal map of the
``C x H x W`` input for every parameter value, exactly (up to rounding), with no iteration.
A real kernel gives ``V_hat(-w) = conj(V_hat(w))``, hence ``Q(-w) = conj(Q(w))`` and real
outputs: only the ``H (W // 2 + 1)`` frequencies of ``rfft2`` are computed.

The map depends on the input size (``Q`` is computed on the input's own frequency grid), so
the layer is orthogonal on *each* size and its certified bound needs the size:
``lipschitz_bound(model, input_shape=...)``; without one it is refused by name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import InputError
from ._checks import check_float_input, check_positive_int, same_tensor
from .registry import LayerKind, register_layer


def cayley_frequency_matrices(
    kernel: torch.Tensor, size: tuple[int, int], out_channels: int, in_channels: int
) -> torch.Tensor:
    """The layer's matrices ``Q(w)``, shape ``(H, W // 2 + 1, out, in)``, complex.

    Args:
        kernel: the free kernel ``(c, c, kh, kw)``, ``c = max(out, in)``.
        size: the input's ``(H, W)``.
        out_channels, in_channels: the block of the unitary ``c x c`` matrices kept (the
            first ``in`` columns: an isometry; or the first ``out`` rows: orthonormal rows).

    Returns:
        ``Q`` on the ``rfft2`` frequency grid of an ``H x W`` input.

    Example:
        >>> import torch
        >>> q = cayley_frequency_matrices(torch.randn(3, 3, 3, 3), (4, 4), 3, 3)
        >>> q.shape, bool(torch.allclose(q @ q.mH, torch.eye(3, dtype=q.dtype), atol=1e-5))
        (torch.Size([4, 3, 3, 3]), True)
    """
    h, w = size
    spectrum = torch.fft.rfft2(kernel, s=(h, w))  # (c, c, H, W//2+1)
    v = spectrum.permute(2, 3, 0, 1)  # (H, W//2+1, c, c)
    a = v - v.mH
    eye = torch.eye(v.shape[-1], dtype=v.dtype, device=v.device)
    q = torch.linalg.solve(eye + a, eye - a)
    return q[..., :out_channels, :in_channels]


def _apply(x: torch.Tensor, q: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    h, w = x.shape[-2:]
    xf = torch.fft.rfft2(x)  # (n, in, H, W//2+1)
    yf = torch.einsum("hwoi,nihw->nohw", q, xf)
    y = torch.fft.irfft2(yf, s=(h, w))
    return y if bias is None else y + bias[:, None, None]


def _bound_on_sizes(module: nn.Module, kernel: torch.Tensor, out_c: int, in_c: int) -> float:
    """The exact norm of the layer on each recorded input size, plus rounding.

    The exact part is the largest singular value of the matrices ``Q`` the forward pass
    uses (computed in the layer's dtype, measured in complex128). The forward pass as
    computed is ``irfft2((Q + dQ) rfft2(x)) + b`` with each FFT's normwise relative error at
    most ``eta_H`` and ``eta_W`` per axis (:func:`~wgan_lip.layers._rounding.fft_eta`) and
    the complex products of length ``in`` perturbed entrywise by ``sqrt(2) gamma_{in + 2}``
    (Higham Sec. 3.6), so the computed map's norm is at most ``(1 + eta_H)^2 (1 + eta_W)^2
    (||Q|| + sqrt(2) gamma_{in+2} || |Q| ||)``; then the output roundings.
    """
    from ._rounding import fft_eta, gamma, output_factor, product_roundoff, unit_roundoff
    from .lipschitz import known_input_sizes

    sizes = known_input_sizes(module)
    if not sizes:
        raise TypeError(
            f"lipschitz_bound: {type(module).__name__} is orthogonal on each input size but its "
            "map depends on the size; pass input_shape= to lipschitz_bound (certify does)"
        )
    u = unit_roundoff(kernel.dtype)
    g = math.sqrt(2.0) * gamma(in_c + 2, product_roundoff(kernel.dtype, kernel.device))
    best = 0.0
    for h, w in sizes:
        q = module_q(module, kernel, (h, w), out_c, in_c).to(torch.complex128)
        exact = float(torch.linalg.matrix_norm(q, ord=2).max())
        abs_norm = float(torch.linalg.matrix_norm(q.abs(), ord=2).max())
        ffts = ((1.0 + fft_eta(h, u)) * (1.0 + fft_eta(w, u))) ** 2
        best = max(best, ffts * (exact + g * abs_norm))
    return output_factor(kernel.dtype) * best


def module_q(
    module: nn.Module, kernel: torch.Tensor, size: tuple[int, int], out_c: int, in_c: int
) -> torch.Tensor:
    """The ``Q`` the module's forward pass uses on ``size``, without autograd.

    It is the cache's (which equals a fresh computation, see :class:`_FrequencyCache`).

    Args:
        module: a :class:`CayleyConv2d` or :class:`FourierConv2d`.
        kernel: the kernel it transforms.
        size: the input's ``(H, W)``.
        out_c: output channels.
        in_c: input channels.

    Returns:
        The per-frequency orthogonal matrices, ``(H, W // 2 + 1, out_c, in_c)`` complex.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import CayleyConv2d
        >>> from wgan_lip.layers.cayley import module_q
        >>> conv = CayleyConv2d(2, 2)
        >>> module_q(conv, conv.weight, (4, 4), 2, 2).shape
        torch.Size([4, 3, 2, 2])
    """
    with torch.no_grad():
        return module._cache.get(kernel, size, out_c, in_c)


class _FrequencyCache:
    """The last ``Q`` computed without gradient, keyed by input size and kernel *contents*.

    Evaluation (certifying, scoring) calls a layer on many batches of one size with an
    unchanged kernel: the Cayley transform, ``H (W // 2 + 1)`` small solves, is then done
    once. The key is a copy of the kernel compared entry by entry: writes through ``.data``
    (a hand-written EMA), which do not bump the tensor's version counter, and
    ``load_state_dict`` miss the cache like an optimizer step does. The comparison reads
    the kernel once, far cheaper than the solves; with gradients on, nothing is cached.
    """

    def __init__(self) -> None:
        self.snapshot: torch.Tensor | None = None  # the kernel Q was computed from
        self.size: tuple[int, int] | None = None
        self.q: torch.Tensor | None = None

    def get(
        self, kernel: torch.Tensor, size: tuple[int, int], out_c: int, in_c: int
    ) -> torch.Tensor:
        if torch.is_grad_enabled() and kernel.requires_grad:
            return cayley_frequency_matrices(kernel, size, out_c, in_c)
        if self.q is None or size != self.size or not same_tensor(self.snapshot, kernel):
            with torch.no_grad():
                self.q = cayley_frequency_matrices(kernel, size, out_c, in_c)
            self.snapshot, self.size = kernel.detach().clone(), size
        return self.q

    def __reduce__(self):
        return (_FrequencyCache, ())  # copies and pickles start empty: no stale kernel


class CayleyConv2d(nn.Module):
    """Orthogonal circular convolution by the Cayley transform per frequency.

    After Trockman & Kolter 2021: stride 1, the input size kept, norm preserving when
    ``out >= in``.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output. With more outputs than inputs the map is an
            isometry; with fewer, its rows are orthonormal (norm at most 1).
        kernel_size: taps of the free kernel per axis (the layer's effective kernel spans
            the whole input, as the inverse couples every frequency's channels).
        bias: add a learnable bias per output channel.
        device, dtype: of the parameters.

    Raises:
        ValueError: a non-positive channel count or kernel size; at call time an input
            that is not ``(N, in_channels, H, W)``.
        TypeError: a non-floating input.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import CayleyConv2d, lipschitz_bound
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> layer = CayleyConv2d(4, 4)
        >>> x = torch.randn(2, 4, 8, 8)
        >>> y = layer(x)
        >>> y.shape, bool(torch.allclose(y.flatten(1).norm(dim=1), x.flatten(1).norm(dim=1),
        ...                              rtol=1e-4))
        (torch.Size([2, 4, 8, 8]), True)
        >>> round(lipschitz_bound(layer, input_shape=(4, 8, 8)), 4)
        1.0
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = True,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            check_positive_int(value, name, "CayleyConv2d")
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            kernel_size,
        )
        c = max(in_channels, out_channels)
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(c, c, kernel_size, kernel_size, **kw))
        self.bias = nn.Parameter(torch.zeros(out_channels, **kw)) if bias else None
        # V_hat entries of variance about 1/c: the Cayley matrices start as generic unitary
        # matrices, neither near the identity nor near -I
        nn.init.normal_(self.weight, std=1.0 / (c**0.5 * kernel_size))
        self._cache = _FrequencyCache()

    def frequency_matrices(self, size: tuple[int, int]) -> torch.Tensor:
        """``Q(w)`` on the ``rfft2`` grid of an input of spatial ``size`` (see
        :func:`cayley_frequency_matrices`)."""
        return cayley_frequency_matrices(self.weight, size, self.out_channels, self.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4, channels=self.in_channels)
        q = self._cache.get(self.weight, tuple(x.shape[-2:]), self.out_channels, self.in_channels)
        return _apply(x, q, self.bias)

    def lipschitz_bound(self) -> float:
        """The exact norm on each input size ``lipschitz_bound`` was given (1 up to
        rounding; below 1 with fewer outputs than inputs, where the rows are orthonormal).
        Refused without an input size: the map depends on it."""
        return _bound_on_sizes(self, self.weight.detach(), self.out_channels, self.in_channels)

    def export_plain(self) -> nn.Module:
        """A :class:`FourierConv2d` with this layer's kernel and bias as buffers: the same
        outputs with no parameters of ours."""
        return FourierConv2d(
            self.weight.detach(),
            self.in_channels,
            self.out_channels,
            None if self.bias is None else self.bias.detach(),
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"bias={self.bias is not None}"
        )


class FourierConv2d(nn.Module):
    """The plain export of :class:`CayleyConv2d`.

    The same frequency-domain map from a fixed kernel and bias (buffers), for every input
    size.

    Args:
        kernel: the free kernel ``(c, c, kh, kw)``.
        in_channels, out_channels: as in the layer.
        bias: ``(out_channels,)`` or None.

    Raises:
        ValueError: (an :class:`~wgan_lip.errors.InputError`) a non-positive channel count,
            a kernel that is not ``(c, c, kh, kw)`` or a bias that is not
            ``(out_channels,)``; at call time, an input that is not
            ``(N, in_channels, H, W)``.
        TypeError: a non-floating input.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import CayleyConv2d, export_plain
        >>> layer = CayleyConv2d(2, 3).eval()
        >>> x = torch.randn(1, 2, 5, 5)
        >>> bool(torch.allclose(export_plain(layer)(x), layer(x)))
        True
    """

    def __init__(
        self,
        kernel: torch.Tensor,
        in_channels: int,
        out_channels: int,
        bias: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels", "FourierConv2d")
        check_positive_int(out_channels, "out_channels", "FourierConv2d")
        c = max(in_channels, out_channels)
        if (
            kernel.dim() != 4
            or tuple(kernel.shape[:2]) != (c, c)
            or kernel.shape[2] < 1
            or kernel.shape[3] < 1
            or not kernel.is_floating_point()
        ):
            raise InputError(
                f"FourierConv2d: kernel must be a floating (c, c, kh, kw) tensor with c = "
                f"max(in_channels, out_channels) = {c}, got {tuple(kernel.shape)} {kernel.dtype}"
            )
        if bias is not None and tuple(bias.shape) != (out_channels,):
            raise InputError(
                f"FourierConv2d: bias must have shape ({out_channels},), got {tuple(bias.shape)}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.register_buffer("kernel", kernel.clone())
        self.register_buffer("bias", None if bias is None else bias.clone())
        self._cache = _FrequencyCache()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4, channels=self.in_channels)
        q = self._cache.get(self.kernel, tuple(x.shape[-2:]), self.out_channels, self.in_channels)
        return _apply(x, q, self.bias)

    def lipschitz_bound(self) -> float:
        """As :meth:`CayleyConv2d.lipschitz_bound`."""
        return _bound_on_sizes(self, self.kernel, self.out_channels, self.in_channels)

    def export_plain(self) -> nn.Module:
        return self


register_layer(
    LayerKind(
        "cayley",
        conv=lambda i, o, opts: CayleyConv2d(i, o, opts.kernel_size, bias=opts.bias),
        certified=True,
        options=frozenset({"kernel_size", "bias"}),
        summary="orthogonal circular convolution by the Cayley transform per frequency",
    )
)
