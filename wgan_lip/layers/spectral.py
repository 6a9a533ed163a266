"""Spectral normalization by power iteration: the non-orthogonal baselines.

``SpectralLinear`` divides the weight by a power-iteration estimate of its largest singular
value (Miyato et al. 2018); ``SpectralConv2d`` does the same for the convolution *operator*
(power iteration through the convolution and its adjoint at the size of the latest input,
an 8x8 probe before the first forward pass), not for the reshaped kernel matrix, which can
under-estimate the operator norm by up to a factor of k. These layers are 1-Lipschitz up to
the power iteration's accuracy but not gradient-norm preserving: all singular values but the
top one are free to shrink. ``lipschitz_bound`` recomputes their norms exactly, never
trusting the estimate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..errors import InputError
from ._checks import check_float_input, check_positive_int
from ._linear import ConstrainedLinear
from .registry import LayerKind, LayerOptions, register_layer


def _check_power_iterations(n: object, layer: str) -> None:
    """Refuse a negative or non-integer step count by name (0 is allowed: the estimate
    then never moves, and ``lipschitz_bound`` is exact anyway)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"{layer}: n_power_iterations must be an integer >= 0, got {n!r}")


def _normalize(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm().clamp_min(torch.finfo(t.dtype).tiny)


class _MatrixSpectralNorm(nn.Module):
    """Parametrization ``W -> W / sigma(W)`` with a persistent power-iteration vector."""

    def __init__(self, weight: torch.Tensor, n_power_iterations: int) -> None:
        super().__init__()
        self.n_power_iterations = n_power_iterations
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(weight.shape[1], generator=gen).to(weight)
        self.register_buffer("_v", _normalize(v))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                v = self._v
                for _ in range(self.n_power_iterations):
                    v = _normalize(w.mT @ _normalize(w @ v))
                self._v.copy_(v)
        u = _normalize(w @ self._v).detach()
        sigma = u @ w @ self._v  # differentiable through w, as in Miyato et al.
        return w / sigma


class SpectralLinear(ConstrainedLinear):
    """:class:`torch.nn.Linear` normalized by its power-iteration spectral norm.

    ``weight`` is the raw weight divided by ``u^T W v`` for the power-iteration vectors
    (Miyato et al. 2018); ``n_power_iterations`` steps run at every forward in train mode
    and none in eval mode. The estimate is a lower bound of the norm, so the layer is
    1-Lipschitz only up to its accuracy; :func:`~wgan_lip.layers.lipschitz_bound` computes
    the exact norm.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear`.
        n_power_iterations: power-iteration steps per training forward.
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: in ``forward``, an input whose last dim is not ``in_features``.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import SpectralLinear, lipschitz_bound
        >>> _ = torch.manual_seed(0)
        >>> layer = SpectralLinear(8, 4, n_power_iterations=30)
        >>> layer(torch.randn(2, 8)).shape  # train mode: the power iteration runs
        torch.Size([2, 4])
        >>> round(lipschitz_bound(layer), 3)
        1.0
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        n_power_iterations: int = 1,
        device=None,
        dtype=None,
    ) -> None:
        check_positive_int(in_features, "in_features", "SpectralLinear")
        check_positive_int(out_features, "out_features", "SpectralLinear")
        _check_power_iterations(n_power_iterations, "SpectralLinear")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        parametrize.register_parametrization(
            self, "weight", _MatrixSpectralNorm(self.weight, n_power_iterations)
        )


class _ConvSpectralNorm(nn.Module):
    """Parametrization ``K -> K / ||conv_K||`` by power iteration on the operator."""

    def __init__(self, padding: int, n_power_iterations: int) -> None:
        super().__init__()
        self.padding = padding
        self.n_power_iterations = n_power_iterations
        self.register_buffer("_v", None)  # (1, C_in, H, W), created at the first forward

    def set_input_shape(self, shape: tuple[int, ...], like: torch.Tensor) -> None:
        if self._v is None or self._v.shape[1:] != tuple(shape):
            gen = torch.Generator().manual_seed(0)
            v = torch.randn(1, *shape, generator=gen).to(like)
            self._v = _normalize(v)
            for _ in range(20):  # converge the fresh vector once
                self._power_step(like.detach())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # the probe has the size of the inputs seen when it was saved (28x28 after training
        # on MNIST), a fresh layer an 8x8 one: take the saved size, then load its values
        saved = state_dict.get(prefix + "_v")
        if saved is not None and (self._v is None or self._v.shape != saved.shape):
            self._v = torch.empty_like(saved)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _power_step(self, k: torch.Tensor) -> None:
        with torch.no_grad():
            u = F.conv2d(self._v, k, padding=self.padding)
            self._v = _normalize(F.conv_transpose2d(_normalize(u), k, padding=self.padding))

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        if self._v is None:  # before any input was seen: a 8x8 probe
            self.set_input_shape((k.shape[1], 8, 8), k)
        if self.training:
            for _ in range(self.n_power_iterations):
                self._power_step(k.detach())
        sigma = F.conv2d(self._v, k, padding=self.padding).norm()
        return k / sigma


class SpectralConv2d(nn.Conv2d):
    """Zero-padded 'same' convolution normalized by a power-iteration operator norm.

    A zero-padded 'same' convolution (odd kernel, stride 1) normalized by the
    power-iteration norm of the convolution operator at the size of the latest input.

    The power-iteration vector has the shape of one input: it is created (and run for 20
    steps) on an 8x8 probe at construction, and again whenever a training-mode input has
    another size; ``n_power_iterations`` more steps run at every use of ``weight`` in train
    mode. Eval mode never changes it: the normalized kernel, hence the certified function,
    is the same for every input size (and ``lipschitz_bound`` leaves the layer as it was).

    Args:
        in_channels, out_channels: as :class:`torch.nn.Conv2d`.
        kernel_size: the square kernel's side, odd (padding ``kernel_size // 2``).
        bias: add a learned bias.
        n_power_iterations: power-iteration steps per training forward.
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: an even ``kernel_size``; in ``forward``, an input that is not 4-D or has
            the wrong number of channels.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import SpectralConv2d
        >>> conv = SpectralConv2d(2, 3, 3)
        >>> conv(torch.randn(1, 2, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        bias: bool = True,
        *,
        n_power_iterations: int = 1,
        device=None,
        dtype=None,
    ) -> None:
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
        ):
            check_positive_int(value, name, "SpectralConv2d")
        if kernel_size % 2 != 1:
            raise InputError(
                f"SpectralConv2d needs an odd kernel_size (same padding), got {kernel_size}"
            )
        _check_power_iterations(n_power_iterations, "SpectralConv2d")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            padding=kernel_size // 2,
            bias=bias,
            device=device,
            dtype=dtype,
        )
        parametrize.register_parametrization(
            self, "weight", _ConvSpectralNorm(kernel_size // 2, n_power_iterations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"SpectralConv2d: expected {self.in_channels} input channels, "
                f"got shape {tuple(x.shape)}"
            )
        if self.training:  # eval mode keeps its vector: the certified map never changes
            norm = self.parametrizations.weight[0]
            norm.set_input_shape(tuple(x.shape[1:]), self.parametrizations.weight.original)
        return super().forward(x)

    def lipschitz_bound(self) -> float:
        """The convolution operator's bound over every input size (transfer matrix), from
        the normalized kernel: the power iteration saw one size only."""
        from .lipschitz import _conv2d

        return _conv2d(self)

    def export_plain(self) -> nn.Conv2d:
        """A plain zero-padded :class:`torch.nn.Conv2d` with the normalized kernel."""
        from .export import plain_conv2d

        return plain_conv2d(self)


class _KernelSpectralNorm(_MatrixSpectralNorm):
    """``K -> K / sigma(K reshaped to (out, in * kh * kw))``: Miyato et al.'s normalization
    of a convolution (a heuristic: the operator norm can be larger, up to a factor of k)."""

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        return super().forward(k.flatten(1)).reshape(k.shape)


def spectral_normalize_kernel(conv: nn.Conv2d, n_power_iterations: int = 1) -> nn.Conv2d:
    """``conv`` with its kernel divided by the power-iteration norm of the reshaped kernel.

    Any stride and padding; the same power iteration as :class:`SpectralLinear`, on the
    kernel reshaped to ``(out, in * kh * kw)`` (Miyato et al.): the ``sn`` baseline's
    convolutions. A heuristic, not a certificate: the convolution's operator norm can exceed
    the reshaped kernel's. The parametrization is registered on ``conv`` itself (in place).

    Args:
        conv: the convolution to normalize (modified).
        n_power_iterations: power iterations per training forward.

    Returns:
        ``conv`` itself, now parametrized.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers.lipschitz import matrix_norm2
        >>> from wgan_lip.layers.spectral import spectral_normalize_kernel
        >>> _ = torch.manual_seed(0)
        >>> conv = nn.Conv2d(2, 4, 3, stride=2)
        >>> spectral_normalize_kernel(conv, n_power_iterations=20) is conv
        True
        >>> round(matrix_norm2(conv.weight.flatten(1)), 4)
        1.0
    """
    parametrize.register_parametrization(
        conv, "weight", _KernelSpectralNorm(conv.weight.flatten(1), n_power_iterations)
    )
    return conv


register_layer(
    LayerKind(
        "spectral",
        linear=lambda i, o, opts: SpectralLinear(i, o, bias=opts.bias),
        conv=lambda i, o, opts: SpectralConv2d(i, o, opts.kernel_size, bias=opts.bias),
        certified=False,
        options=frozenset({"kernel_size", "bias"}),
        summary="divided by a power-iteration estimate of the spectral norm (not a certificate)",
    )
)


def _sn_kernel_conv(i: int, o: int, opts: LayerOptions) -> nn.Module:
    k = opts.kernel_size
    padding = (k - 1) // 2 if opts.stride > 1 else "same"
    return spectral_normalize_kernel(nn.Conv2d(i, o, k, opts.stride, padding, bias=opts.bias))


register_layer(
    LayerKind(
        "sn_kernel",
        conv=_sn_kernel_conv,
        certified=False,
        strided=True,
        options=frozenset({"kernel_size", "bias"}),
        summary="SN-GAN: the reshaped kernel divided by its estimated norm (not a certificate)",
    )
)
