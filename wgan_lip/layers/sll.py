"""SLL: SDP-based Lipschitz residual layers (Araujo, Havens, Delattre, Allauzen, Hu; ICLR 2023).

One layer is the residual map ``h(x) = x - 2 W T^-1 relu(W^T x + b)`` with a free weight ``W``
(``W^T`` maps the input to ``hidden`` units) and the diagonal ``T_ii = sum_j |(W^T W)_ij|
q_j / q_i`` built from it and from learnable positive ``q``. Since ``T >= W^T W`` (Schur's
test, :mod:`._gram`), ``V = W T^-1/2`` has ``||V|| <= 1``, and the Jacobian
``I - 2 V D V^T`` (``D`` = the ReLU slopes, in [0, 1]) is symmetric with eigenvalues in
``[1 - 2 ||V||^2, 1]``: the layer is 1-Lipschitz. In the convolutional layer ``W^T`` is a
stride-1 'same' convolution (zero padding) and ``W`` its adjoint, a transposed convolution;
the sum defining ``T`` runs over the Gram kernel's taps, so every input size is covered.

``lipschitz_bound`` returns ``max(1, 2 rho - 1)`` with ``rho`` a float64 bound of
``||V||^2`` recomputed from the weights and the ``T`` the forward pass computes (exact
singular values for the dense layer; the smaller of the Schur and transfer-matrix bounds for
the convolution), plus the rounding of the forward pass in the layer's dtype
(:func:`sll_rounding`).

``T`` is computed in log space, ``log T_i = logsumexp_j(log |G_ij| + log q_j) - log q_i``, so
no finite ``log q`` overflows: ``q = exp(log q)`` itself overflows float32 from ``log q >
88.7`` (and underflows below ``-103``), and ``(|G| q) / q`` was then ``inf / inf`` = NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ._checks import check_float_input, check_positive_int
from ._gram import conv_gram, perron_schur_bound, schur_bound
from .aol import AOLConv2d, AOLLinear
from .registry import LayerKind, LayerOptions, register_layer

_EPS = 1e-12  # a larger T only shrinks the update (still sound)


def sll_t(weight: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """The diagonal ``T`` of an SLL layer, one entry per hidden unit or channel.

    ``T_i = sum_j |G_ij| q_j / q_i`` (Araujo et al. 2023) with ``G`` the Gram of ``weight``
    over its hidden units (for a convolution, the Gram kernel with its taps summed) and
    ``q = exp(log_q)``; entries are clamped to at least ``1e-12``. Differentiable.

    Args:
        weight: the input-to-hidden weight, ``(hidden, in)`` or ``(hidden, in, kh, kw)``.
        log_q: the logarithms of the positive weights ``q``, ``(hidden,)``.

    Returns:
        ``T``, of shape ``(hidden,)``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.sll import sll_t
        >>> sll_t(torch.eye(2), torch.zeros(2))
        tensor([1., 1.])
        >>> sll_t(torch.ones(2, 3), torch.zeros(2))  # Gram [[3, 3], [3, 3]]
        tensor([6., 6.])
    """
    if weight.dim() == 2:
        gram = weight @ weight.mT
    else:
        gram = conv_gram(weight.transpose(0, 1)).abs().sum((2, 3))  # over the hidden channels
    # log space: exp(log_q) overflows (or underflows) long before T does. A zero entry is
    # raised to the smallest normal number: T only grows, which is still sound, and the
    # logarithm keeps a finite gradient.
    log_a = gram.abs().clamp_min(torch.finfo(gram.dtype).tiny).log()
    log_t = torch.logsumexp(log_a + log_q[None, :], dim=1) - log_q
    return log_t.exp().clamp_min(_EPS)


def sll_rounding(
    rho: float, abs_norm: float, n_in: int, n_hidden: int, weight: torch.Tensor
) -> float:
    """The bound of an SLL layer as computed in ``weight``'s dtype.

    Higham's model, see :mod:`wgan_lip.layers._rounding`. The forward pass computes ``x - 2 B
    (T^-1 relu(A x + b))`` with ``A = W^T``-side products of length ``n_in`` (plus the bias) and
    ``B`` products of length ``n_hidden``: each output is the exact map with ``A + dA``, ``B +
    dB`` (``|dA| <= g1 |A|``, ``|dB| <= g2 |B|``) and ``T^-1`` perturbed by ``u`` entrywise.
    With ``V = T^-1/2 A``, ``||V||^2 <= rho`` and ``|| |V| || <= nu``, the Jacobian ``I - 2 M``
    moves by at most ``2 e``, ``e = g2 nu (1 + u) (sqrt(rho) + g1 nu) + u nu (sqrt(rho) + g1 nu)
    + sqrt(rho) g1 nu``; the final subtraction's rounding is in the output factor.

    Args:
        rho: a float64 bound of ``||T^-1/2 A||^2``.
        abs_norm: ``nu``, a float64 bound of the norm of ``|T^-1/2 A|``.
        n_in, n_hidden: the two reduction lengths.
        weight: the layer's weight (its dtype and device).

    Returns:
        ``(1 + gamma_ALLOWANCE) (max(1, 2 rho - 1) + 2 e)``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.sll import sll_rounding
        >>> w = torch.zeros(4, 4)
        >>> 1.0 < sll_rounding(1.0, 1.0, 4, 4, w) < 1.0 + 1e-5
        True
    """
    from ._rounding import output_factor, reduction_gamma, unit_roundoff

    conv = weight.dim() == 4
    g1 = reduction_gamma(n_in + 1, weight.dtype, weight.device, conv)
    g2 = reduction_gamma(n_hidden, weight.dtype, weight.device, conv)
    u, sr, nu = unit_roundoff(weight.dtype), math.sqrt(rho), abs_norm
    e = g2 * nu * (1 + u) * (sr + g1 * nu) + u * nu * (sr + g1 * nu) + sr * g1 * nu
    return output_factor(weight.dtype) * (max(1.0, 2.0 * rho - 1.0) + 2.0 * e)


def sll_block_bound(
    kernel: torch.Tensor,
    q: torch.Tensor | None = None,
    input_sizes: set[tuple[int, int]] | None = None,
) -> float:
    """Certified bound of the block ``x - 2 conv_K^T relu(conv_K x + b)`` of an SLL layer.

    For a stride-1 'same' zero-padded convolution with kernel ``(hidden, in, kh, kw)`` and
    its adjoint (the transposed convolution with the same padding): ``max(1, 2 rho - 1)``
    with ``rho`` the
    smallest of three float64 bounds of ``||conv_K||^2``: Schur's test on the hidden Gram
    kernel with the Perron weights, with the weights ``q`` when given, and the
    transfer-matrix bound. The Schur bounds are 1 up to rounding for a normalized kernel;
    the transfer bound is inflated for soundness, and ``2 rho - 1`` would double that.

    An SLL layer is such a block with ``K = T^-1/2 W^T`` (``relu`` commutes with a positive
    diagonal), and so is orthogonium's ``SDPBasedLipschitzResBlock`` with its normalized
    kernel. With ``input_sizes`` (the block's input ``(H, W)``, see
    :func:`~wgan_lip.layers.lipschitz.known_input_sizes`) the transfer bound is replaced by
    the exact norm on the circular grid the zero-padded input embeds into.

    Args:
        kernel: the block's kernel ``K``, ``(hidden, in, kh, kw)``, any float dtype.
        q: the Schur weights of the layer's normalization, ``(hidden,)`` positive, or None.
        input_sizes: the input sizes ``(H, W)`` the block is used on, or None (every size).

    Returns:
        The bound, a float of at least 1.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.sll import sll_block_bound
        >>> eye = torch.eye(3)[:, :, None, None]  # a 1x1 identity kernel: ||conv_K|| = 1
        >>> sll_block_bound(eye), sll_block_bound(2 * eye)  # max(1, 2 * 4 - 1)
        (1.0, 7.0)
    """
    return max(1.0, 2.0 * sll_block_rho(kernel, q, input_sizes) - 1.0)


def sll_block_rho(
    kernel: torch.Tensor,
    q: torch.Tensor | None = None,
    input_sizes: set[tuple[int, int]] | None = None,
) -> float:
    """The ``rho`` of :func:`sll_block_bound`: a float64 bound of ``||conv_K||^2``.

    Args:
        kernel: the convolution kernel ``K`` (already scaled by ``T^-1/2``, or not).
        q: optional positive weights of the Schur test (a tighter bound when given).
        input_sizes: the input sizes the layer has seen (exact on their grids).

    Returns:
        The bound ``rho``, a float.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.sll import sll_block_rho
        >>> k = torch.zeros(1, 1, 3, 3)
        >>> k[0, 0, 1, 1] = 0.5
        >>> sll_block_rho(k)  # the identity conv times 0.5: squared norm 0.25
        0.25
    """
    from .lipschitz import conv_grid_bound, conv_transfer_bound

    k = kernel.detach().to(torch.float64)
    gram = conv_gram(k.transpose(0, 1))
    kh, kw = k.shape[-2:]
    if input_sizes:
        grids = {(max(h + kh - 1, kh), max(w + kw - 1, kw)) for h, w in input_sizes}
        transfer = max(conv_grid_bound(k, g) for g in grids)
    else:
        transfer = conv_transfer_bound(k)
    rho = min(transfer**2, perron_schur_bound(gram))
    if q is not None:
        rho = min(rho, schur_bound(gram, q))
    return rho


def _forward_t(layer: nn.Module, w: torch.Tensor) -> torch.Tensor:
    """The ``T`` the forward pass computes (in the layer's dtype), as float64.

    An infinite entry (a ``log_q`` spread beyond the dtype's range) switches its unit off,
    ``z / inf = 0``: still a certified map, and ``W / sqrt(inf) = 0`` in the bound. A NaN
    entry (the Gram of weights too large overflowed, ``inf - inf`` in the log-sum-exp) makes
    the forward pass NaN: refused.
    """
    from .lipschitz import NonFiniteWeightsError

    t = sll_t(w, layer.log_q.detach())
    if bool(torch.isnan(t).any()):
        raise NonFiniteWeightsError(
            f"lipschitz_bound: {type(layer).__name__}'s T = sum_j |G_ij| q_j / q_i is NaN in "
            f"{w.dtype} (the Gram of its weights overflows); its forward pass returns NaN, so "
            "it has no certificate"
        )
    return t.to(torch.float64)


class _SLLBase(nn.Module):
    @staticmethod
    def _bound_from_rho(rho: float) -> float:
        """Norm bound of ``I - 2 V D V^T`` given ``||V||^2 <= rho`` and ``0 <= D <= I``."""
        return max(1.0, 2.0 * rho - 1.0)


class SLLLinear(_SLLBase):
    """Dense SLL residual layer: 1-Lipschitz for every value of its parameters.

    Dense SLL residual layer on ``features`` units with ``hidden_features`` hidden ReLU
    units (default ``features``): 1-Lipschitz for every value of its parameters.

    Args:
        features: input and output size (the last dim of the input).
        hidden_features: hidden ReLU units (None: ``features``).
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: ``features`` or ``hidden_features`` below 1; in ``forward``, an input
            whose last dim is not ``features``.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import SLLLinear, lipschitz_bound
        >>> layer = SLLLinear(16)
        >>> layer(torch.randn(4, 16)).shape, round(lipschitz_bound(layer), 4)  # 1 + rounding
        (torch.Size([4, 16]), 1.0)
    """

    def __init__(
        self, features: int, hidden_features: int | None = None, *, device=None, dtype=None
    ) -> None:
        super().__init__()
        check_positive_int(features, "features", "SLLLinear")
        hidden = features if hidden_features is None else hidden_features
        check_positive_int(hidden, "hidden_features", "SLLLinear")
        self.features, self.hidden_features = features, hidden
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(hidden, features, **kw))
        self.bias = nn.Parameter(torch.empty(hidden, **kw))
        self.log_q = nn.Parameter(torch.zeros(hidden, **kw))
        nn.init.xavier_normal_(self.weight)
        bound = 1.0 / math.sqrt(features)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, min_dim=1)
        if x.shape[-1] != self.features:
            raise ValueError(
                f"SLLLinear: expected {self.features} input features in the last dim, "
                f"got shape {tuple(x.shape)}"
            )
        t = sll_t(self.weight, self.log_q)
        z = F.relu(F.linear(x, self.weight, self.bias))
        return x - 2.0 * F.linear(z / t, self.weight.mT)

    def lipschitz_bound(self) -> float:
        """``max(1, 2 rho - 1)``, ``rho = ||T^-1/2 W||^2`` from exact singular values
        (float64) with the ``T`` the forward pass computes in its dtype: 1 for a layer that
        keeps its promise; plus the rounding of the forward pass (:func:`sll_rounding`)."""
        from .lipschitz import matrix_norm2

        w = self.weight.detach()
        t = _forward_t(self, w)
        v = w.to(torch.float64) / t.sqrt()[:, None]
        rho, nu = matrix_norm2(v) ** 2, matrix_norm2(v.abs())
        return sll_rounding(rho, nu, self.features, self.hidden_features, w)

    def export_plain(self) -> nn.Module:
        """``x + B relu(A x + b)`` with plain :class:`torch.nn.Linear` layers ``A`` and ``B``
        (a :class:`~wgan_lip.layers.export.Residual`)."""
        from .export import Residual

        w = self.weight.detach()
        t = sll_t(w, self.log_q.detach())
        first = nn.Linear(self.features, self.hidden_features, device=w.device, dtype=w.dtype)
        second = nn.Linear(
            self.hidden_features, self.features, bias=False, device=w.device, dtype=w.dtype
        )
        with torch.no_grad():
            first.weight.copy_(w)
            first.bias.copy_(self.bias)
            second.weight.copy_(-2.0 * (w / t[:, None]).mT)
        return Residual(nn.Sequential(first, nn.ReLU(), second))

    def extra_repr(self) -> str:
        return f"features={self.features}, hidden_features={self.hidden_features}"


class SLLConv2d(_SLLBase):
    """Convolutional SLL residual layer: 1-Lipschitz on every input size.

    Convolutional SLL residual layer on ``channels`` channels with ``hidden_channels``
    hidden ReLU channels (default ``channels``), an odd ``kernel_size`` and zero padding:
    1-Lipschitz on every input size.

    Args:
        channels: input and output channels.
        hidden_channels: hidden ReLU channels (None: ``channels``).
        kernel_size: the square kernel's side, odd (padding ``kernel_size // 2``).
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: an even or non-positive ``kernel_size``, ``channels`` or
            ``hidden_channels`` below 1; in ``forward``, an input that is not 4-D or has the
            wrong number of channels.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import SLLConv2d
        >>> SLLConv2d(4)(torch.randn(2, 4, 8, 8)).shape
        torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        channels: int,
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_positive_int(kernel_size, "kernel_size", "SLLConv2d")
        if kernel_size % 2 != 1:
            raise InputError(f"SLLConv2d needs an odd kernel_size, got {kernel_size}")
        check_positive_int(channels, "channels", "SLLConv2d")
        hidden = channels if hidden_channels is None else hidden_channels
        check_positive_int(hidden, "hidden_channels", "SLLConv2d")
        self.channels, self.hidden_channels, self.kernel_size = channels, hidden, kernel_size
        self.padding = kernel_size // 2
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(hidden, channels, kernel_size, kernel_size, **kw))
        self.bias = nn.Parameter(torch.zeros(hidden, **kw))
        self.log_q = nn.Parameter(torch.zeros(hidden, **kw))
        nn.init.xavier_normal_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_input(x, type(self).__name__, ndim=4, channels=self.channels)
        t = sll_t(self.weight, self.log_q)
        z = F.relu(F.conv2d(x, self.weight, self.bias, padding=self.padding))
        return x - 2.0 * F.conv_transpose2d(z / t[:, None, None], self.weight, padding=self.padding)

    def lipschitz_bound(self) -> float:
        """``max(1, 2 rho - 1)`` with ``rho`` the smaller of two float64 bounds of
        ``||T^-1/2 conv_W||^2``: Schur's test on the hidden Gram kernel and the
        transfer-matrix bound. 1 for a layer that keeps its promise."""
        from ._rounding import conv_abs_norm
        from .lipschitz import known_input_sizes

        w = self.weight.detach()
        log_q = self.log_q.detach().to(torch.float64)
        t = _forward_t(self, w)
        scaled = w.to(torch.float64) / t.sqrt()[:, None, None, None]  # K = T^-1/2 W^T
        # Schur weights q sqrt(t) make the rows of K's Gram sum to 1 (the SLL lemma); shifted
        # by the largest log q (any positive multiple gives the same bound) so exp is finite
        q = (log_q - log_q.max()).exp() * t.sqrt()
        rho = sll_block_rho(scaled, q if bool((q > 0).all()) else None, known_input_sizes(self))
        k2 = self.kernel_size**2
        return sll_rounding(
            rho, conv_abs_norm(scaled), self.channels * k2, self.hidden_channels * k2, w
        )

    def export_plain(self) -> nn.Module:
        """``x + B relu(A x + b)``: a plain zero-padded :class:`torch.nn.Conv2d` ``A`` and a
        :class:`torch.nn.ConvTranspose2d` ``B`` (a :class:`~wgan_lip.layers.export.Residual`)."""
        from .export import Residual

        w = self.weight.detach()
        t = sll_t(w, self.log_q.detach())
        k, p = self.kernel_size, self.padding
        first = nn.Conv2d(
            self.channels, self.hidden_channels, k, padding=p, device=w.device, dtype=w.dtype
        )
        second = nn.ConvTranspose2d(
            self.hidden_channels,
            self.channels,
            k,
            padding=p,
            bias=False,
            device=w.device,
            dtype=w.dtype,
        )
        with torch.no_grad():
            first.weight.copy_(w)
            first.bias.copy_(self.bias)
            second.weight.copy_(-2.0 * w / t[:, None, None, None])
        return Residual(nn.Sequential(first, nn.ReLU(), second))

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, hidden_channels={self.hidden_channels}, "
            f"kernel_size={self.kernel_size}"
        )


def _sll_linear(i: int, o: int, opts: LayerOptions) -> nn.Module:
    # a residual SLL layer keeps the width; a width change is an AOL layer
    return SLLLinear(i) if i == o else AOLLinear(i, o, bias=opts.bias)


def _sll_conv(i: int, o: int, opts: LayerOptions) -> nn.Module:
    if i == o:
        return SLLConv2d(o, kernel_size=opts.kernel_size)
    return AOLConv2d(i, o, opts.kernel_size, bias=opts.bias)


register_layer(
    LayerKind(
        "sll",
        linear=_sll_linear,
        conv=_sll_conv,
        certified=True,
        options=frozenset({"kernel_size"}),
        summary="residual SDP-based Lipschitz layers (SLL); AOL where the width changes",
    )
)
