"""Björck orthonormalization and the orthogonal dense layer built on it.

Björck's iteration (order 1, beta = 1/2) is

    W <- W (I + 1/2 (I - W^T W)) = 3/2 W - 1/2 W W^T W,

a Newton–Schulz iteration that maps every singular value s to 3/2 s - 1/2 s^3 and so drives
all of them to 1 while keeping the singular vectors: the limit is the orthogonal polar factor
of the starting matrix. Order p uses p+1 terms of the series of (1 - x)^(-1/2) and converges
with order p+1. It converges when the starting spectral norm is below sqrt(3) (order 1), so
the input is first divided by an estimate of its spectral norm; if the iteration has not
converged at the end (a poor estimate, an extreme scale), it is rerun from the always-safe
Frobenius scaling. A raw weight scaled by 1e6 or 1e-6 thus gives the same orthonormal result.

Rectangular matrices give orthonormal columns (tall) or rows (wide), whichever side is
smaller: the iteration always works with the smaller Gram matrix.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._checks import check_positive_int, same_tensor
from ._linear import ConstrainedLinear
from .registry import LayerKind, register_layer

# Taylor coefficients of (1 - x)^(-1/2): 1, 1/2, 3/8, 5/16, 35/128, ...
_SERIES = [1.0]
for _k in range(1, 8):
    _SERIES.append(_SERIES[-1] * (2 * _k - 1) / (2 * _k))


@dataclass(frozen=True)
class BjorckConfig:
    """Options of the Björck orthonormalization, in one place (passed to layers whole).

    Args:
        order: terms of the (1 - x)^(-1/2) series per iteration (1 is classic Björck with
            beta = 1/2; order p converges with order p + 1 and costs p + 1 products).
        max_iters: hard cap on iterations.
        tol: stop once ``||W^T W - I||_F`` (which bounds ``max|s^2 - 1|``) after the step is
            predicted below ``tol``; ``None`` picks ``256 * eps(dtype)`` (3e-5 in float32).
        power_iters: power-iteration steps for the spectral-norm pre-scaling.
        backward: ``"tangent"`` (default) runs the iterations without autograd and
            back-propagates through the exact Jacobian of the polar factor at the nearest
            scaled orthogonal matrix (``s * Q``); it equals the true gradient when all singular
            values of the raw weight are equal and is a descent direction otherwise.
            ``"unroll"`` differentiates through every iteration (exact, slower).
        retract: with ``backward="tangent"``, replace the raw weight by ``s * Q`` after each
            re-orthonormalization in train mode. The layer's function is unchanged (the polar
            factor ignores scale) while the tangent gradient becomes exact and the next
            iteration starts near convergence (a few steps instead of many): a retraction
            onto the scaled Stiefel manifold, as in Riemannian optimization.

    Raises:
        ValueError: ``order`` outside ``1..7``, ``max_iters`` below 1, an unknown
            ``backward``, a ``tol`` outside ``(0, 1)`` (NaN included) or a negative
            ``power_iters``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BjorckConfig, bjorck
        >>> config = BjorckConfig(order=2, tol=1e-10)
        >>> q = bjorck(torch.randn(6, 4, dtype=torch.float64), config)
        >>> bool(torch.allclose(q.T @ q, torch.eye(4, dtype=torch.float64), atol=1e-8))
        True
        >>> BjorckConfig(order=9)
        Traceback (most recent call last):
        ...
        ValueError: order must be in 1..7, got 9
    """

    order: int = 1
    max_iters: int = 60
    tol: float | None = None
    power_iters: int = 10
    backward: Literal["tangent", "unroll"] = "tangent"
    retract: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.order < len(_SERIES):
            raise ValueError(f"order must be in 1..{len(_SERIES) - 1}, got {self.order}")
        if self.max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {self.max_iters}")
        if self.backward not in ("tangent", "unroll"):
            raise ValueError(f"backward must be 'tangent' or 'unroll', got {self.backward!r}")
        if self.tol is not None and not (
            isinstance(self.tol, (int, float))
            and not isinstance(self.tol, bool)
            and 0 < self.tol < 1
        ):
            raise ValueError(f"tol must be None or in (0, 1), got {self.tol!r}")
        if (
            isinstance(self.power_iters, bool)
            or not isinstance(self.power_iters, int)
            or self.power_iters < 0
        ):
            raise ValueError(f"power_iters must be an integer >= 0, got {self.power_iters!r}")


def _is_wide(w: torch.Tensor) -> bool:
    """True when ``w`` is wide (rows < cols): then we orthonormalize its transpose."""
    return w.shape[-2] < w.shape[-1]


def _auto_tol(w: torch.Tensor, tol: float | None) -> float:
    return tol if tol is not None else 256.0 * torch.finfo(w.dtype).eps


def power_sigma(w: torch.Tensor, iters: int, v: torch.Tensor | None = None):
    """Power-iteration estimate of the spectral norm of the tall matrix(es) ``w``.

    Returns ``(sigma, v)``: a lower estimate of the largest singular value (per batch
    element, shape ``(..., 1, 1)``) and the right singular vector estimate to warm-start the
    next call. Runs without autograd.

    Args:
        w: a matrix ``(m, n)`` or a batch ``(..., m, n)``, float.
        iters: power iterations (at least one is run).
        v: the starting right vector ``(..., n, 1)``; ``None`` draws a fixed (seeded)
            random one, so the result is deterministic.

    Returns:
        ``(sigma, v)``: ``sigma`` of shape ``(..., 1, 1)`` and the unit vector ``v`` of shape
        ``(..., n, 1)``, both of ``w``'s dtype and device.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.orthogonal import power_sigma
        >>> w = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
        >>> sigma, v = power_sigma(w, iters=20)
        >>> sigma, v.shape
        (tensor([[3.]]), torch.Size([2, 1]))
    """
    with torch.no_grad():
        n = w.shape[-1]
        if v is None:
            gen = torch.Generator(device="cpu").manual_seed(0)
            v = torch.randn(*w.shape[:-2], n, 1, generator=gen, dtype=torch.float64)
            v = v.to(device=w.device, dtype=w.dtype)
        for _ in range(max(iters, 1)):
            u = w @ v
            v = w.mT @ u
            v = v / v.norm(dim=-2, keepdim=True).clamp_min(torch.finfo(w.dtype).tiny)
        sigma = (w @ v).norm(dim=-2, keepdim=True)
    return sigma, v


@functools.lru_cache(maxsize=64)
def _eye(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.eye(n, dtype=dtype, device=device)


def _step(q: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One Björck step on tall ``q``; returns the new ``q`` and the residual ``I - q^T q``."""
    eye = _eye(q.shape[-1], q.dtype, q.device)
    r = eye - q.mT @ q
    if order == 1:  # q (I + r/2) = q + (q r)/2: one product, no n x n polynomial
        return q + 0.5 * (q @ r), r
    # Horner form of sum_k c_k r^k, k = 0..order.
    acc = _SERIES[order] * r + _SERIES[order - 1] * eye
    for k in range(order - 2, -1, -1):
        acc = _SERIES[k] * eye + r @ acc
    return q @ acc, r


def _iterate(
    q: torch.Tensor, cfg: BjorckConfig, tol: float, max_iters: int
) -> tuple[torch.Tensor, float, int]:
    """Iterate until converged or ``max_iters``; returns ``(q, residual Frobenius norm, steps)``."""
    err, n = math.inf, 0
    for n in range(1, max_iters + 1):  # noqa: B007
        q, r = _step(q, cfg.order)
        # ||r||_F bounds ||r||_2 = max|s^2 - 1|; one host sync per step, the Gram is needed anyway.
        err = float(torch.linalg.matrix_norm(r).amax())
        # After a step the residual is about err^(order+1): stop once that is below tol.
        if not math.isfinite(err) or err ** (cfg.order + 1) <= tol:
            break
    return q, err, n


def _solve_tall(
    x: torch.Tensor, cfg: BjorckConfig, v: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor, bool]:
    """Björck on tall ``x`` without autograd.

    Returns ``(q, scale, steps, v, converged)``: replaying ``steps`` steps from
    ``x / scale`` reproduces ``q``; ``v`` warm-starts the next power iteration.
    """
    tol = _auto_tol(x, cfg.tol)
    tiny = torch.finfo(x.dtype).tiny
    with torch.no_grad():
        # The polar factor ignores scale: bring the entries to O(1) first, so the squares in
        # the power iteration and the Frobenius norm neither overflow (1e19 in float32) nor
        # underflow (1e-30).
        amax = x.abs().amax(dim=(-2, -1), keepdim=True)
        amax = torch.where(torch.isfinite(amax) & (amax > 0), amax, torch.ones_like(amax))
        xn = x / amax
        sigma, v = power_sigma(xn, cfg.power_iters if v is None else 1, v)
        # 1.01: a margin above the (lower) power estimate keeps the start inside the basin.
        scale = (1.01 * sigma).clamp_min(tiny)
        q, err, n = _iterate(xn / scale, cfg, tol, cfg.max_iters)
        if not (math.isfinite(err) and err < 1e-2):
            # The estimate was far off: the Frobenius norm bounds the spectral norm, always safe.
            scale = torch.linalg.matrix_norm(xn, keepdim=True).clamp_min(tiny)
            q, err, n = _iterate(xn / scale, cfg, tol, 2 * cfg.max_iters)
    converged = math.isfinite(err) and err < max(1e-3, math.sqrt(tol))
    return q, amax * scale, n, v, converged


def bjorck(
    w: torch.Tensor,
    config: BjorckConfig | None = None,
    *,
    iters: int | None = None,
    tol: float | None = None,
    order: int | None = None,
) -> torch.Tensor:
    """Return the orthonormalized ``w`` (its polar factor), differentiable through the iterations.

    Args:
        w: matrix ``(m, n)`` or a batch ``(..., m, n)``, floating point. Tall matrices get
            orthonormal columns, wide ones orthonormal rows.
        config: options (:class:`BjorckConfig`); the keywords below override it.
        iters: a fixed number of iterations (no convergence check) instead of ``tol``;
            a positive integer.
        tol: residual tolerance on ``||Q^T Q - I||_F`` (see :class:`BjorckConfig`).
        order: series order of each step.

    Raises ``ValueError`` for NaN/Inf entries, an all-zero matrix (no polar factor), an
    empty one or bad ``iters``/``tol``; warns (``RuntimeWarning``) when the iteration does
    not converge (a rank-deficient matrix). Any finite non-zero scale works: the entries are
    brought to O(1) before the power iteration, since the polar factor ignores scale.

    Autograd flows through every iteration, so the gradient is that of the function
    computed. The pre-scaling and the convergence checks are planned without autograd, then
    the same steps are replayed in the graph.

    Returns:
        A tensor of ``w``'s shape and dtype with orthonormal columns (tall) or rows (wide).

    Raises:
        TypeError: ``w`` is not a floating-point tensor.
        ValueError: ``w`` has fewer than 2 dims, is empty, has NaN/Inf entries or an
            all-zero matrix; ``iters`` is not a positive integer or ``tol`` not in (0, 1).

    Example:
        >>> import torch
        >>> from wgan_lip.layers import bjorck
        >>> q = bjorck(torch.randn(5, 3, dtype=torch.float64))
        >>> bool(torch.allclose(q.T @ q, torch.eye(3, dtype=torch.float64), atol=1e-6))
        True
        >>> bjorck(torch.randn(2, 4)).shape  # wide: orthonormal rows
        torch.Size([2, 4])
    """
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        got = w.dtype if isinstance(w, torch.Tensor) else type(w).__name__
        raise TypeError(f"bjorck: expected a floating-point tensor, got {got}")
    if w.dim() < 2:
        raise ValueError(f"bjorck: expected a matrix (..., m, n), got shape {tuple(w.shape)}")
    if iters is not None and (isinstance(iters, bool) or not isinstance(iters, int) or iters < 1):
        raise ValueError(f"bjorck: iters must be a positive integer or None, got {iters!r}")
    if tol is not None and not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise ValueError(f"bjorck: tol must be in (0, 1), got {tol!r}")
    if w.numel() == 0:
        raise ValueError(f"bjorck: the matrix is empty, shape {tuple(w.shape)}")
    with torch.no_grad():
        if not bool(torch.isfinite(w).all()):
            raise ValueError("bjorck: the matrix has NaN or Inf entries")
        if bool((w.abs().amax(dim=(-2, -1)) == 0).any()):
            raise ValueError("bjorck: a zero matrix has no orthonormal polar factor")
    cfg = config or BjorckConfig()
    if order is not None or tol is not None:
        cfg = replace(cfg, order=order or cfg.order, tol=tol if tol is not None else cfg.tol)
    wide = _is_wide(w)
    x = w.mT if wide else w
    if iters is None:
        q, scale, steps, _, converged = _solve_tall(x.detach(), cfg)
        if not converged:
            warnings.warn(
                f"bjorck did not converge for a {tuple(w.shape)} matrix (rank deficient or "
                "nearly so?): the result is not orthonormal",
                RuntimeWarning,
                stacklevel=2,
            )
        if not x.requires_grad or not torch.is_grad_enabled():
            return q.mT if wide else q
    else:
        xd = x.detach()
        amax = xd.abs().amax(dim=(-2, -1), keepdim=True)
        sigma, _ = power_sigma(xd / amax, cfg.power_iters)
        scale, steps = amax * (1.01 * sigma).clamp_min(torch.finfo(x.dtype).tiny), iters
    q = x / scale
    for _ in range(steps):
        q, _ = _step(q, cfg.order)
    return q.mT if wide else q


class _TangentPolar(torch.autograd.Function):
    """Identity on the precomputed polar factor ``q`` of ``w``; backward through ``s * q``.

    For ``w = s q`` with ``q`` having orthonormal columns, the Jacobian of the polar factor
    is ``dq = (dw - q sym(q^T dw)) / s``; its adjoint maps the output gradient ``g`` to
    ``(g - q sym(q^T g)) / s``. We take ``s`` as the mean singular value of ``w``,
    ``trace(q^T w) / n``.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(q, s)
        return q.clone()

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        q, s = ctx.saved_tensors
        qtg = q.mT @ g
        grad = (g - q @ (0.5 * (qtg + qtg.mT))) / s
        return grad, None, None


class Orthonormal(nn.Module):
    """``torch.nn.utils.parametrize`` parametrization: a matrix to its orthonormal polar factor.

    Keeps a warm power-iteration vector (a buffer) so the pre-scaling costs two
    matrix-vector products per update. The result is cached against a copy of the raw
    weight, compared entry by entry: it is recomputed only after the weight changes (an
    optimizer step, ``load_state_dict``, ``copy_``, or a write through ``.data`` such as a
    hand-written EMA, which does not bump the version counter), so repeated forward passes
    within a training step and every evaluation forward cost what a plain layer costs. With
    ``backward="unroll"`` nothing is cached in train mode (each forward builds its own graph).

    Tall weights get orthonormal columns, wide ones orthonormal rows. In train mode with
    ``retract`` (the default), recomputing the factor also overwrites the raw weight with
    the scaled factor ``s * Q`` (same polar factor). ``converged`` is False after an update
    that did not converge (a ``RuntimeWarning`` is issued).

    Args:
        config: :class:`BjorckConfig` options (None: the defaults).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from torch.nn.utils import parametrize
        >>> from wgan_lip.layers import Orthonormal
        >>> layer = nn.Linear(3, 5)
        >>> _ = parametrize.register_parametrization(layer, "weight", Orthonormal())
        >>> w = layer.weight  # (5, 3): orthonormal columns
        >>> bool(torch.allclose(w.T @ w, torch.eye(3), atol=1e-5))
        True
    """

    def __init__(self, config: BjorckConfig | None = None) -> None:
        super().__init__()
        self.config = config or BjorckConfig()
        self.register_buffer("_v", None, persistent=False)
        self._raw: torch.Tensor | None = None  # the raw weight _q was computed from
        self._q: torch.Tensor | None = None
        self._s: torch.Tensor | None = None
        self.converged = True

    def _tall_polar(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._q is None or not same_tensor(self._raw, w):
            xd = x.detach()
            v = self._v
            if v is None or v.shape != (*xd.shape[:-2], xd.shape[-1], 1) or v.dtype != xd.dtype:
                v = None
            q, _, _, self._v, self.converged = _solve_tall(xd, self.config, v)
            if not self.converged:
                warnings.warn(
                    f"Björck did not converge in {self.config.max_iters} iterations for a "
                    f"{tuple(w.shape)} weight (rank deficient?); the layer is still certified by "
                    "lipschitz_bound, which uses the actual weight",
                    RuntimeWarning,
                    stacklevel=2,
                )
            with torch.no_grad():
                # Mean singular value of w: trace(q^T w) / n (q^T w is the polar's P factor).
                s = (q * xd).sum(dim=(-2, -1), keepdim=True) / xd.shape[-1]
            self._q, self._s = q, s.clamp_min(torch.finfo(xd.dtype).tiny)
            if self.config.retract and self.training and w.is_leaf:
                with torch.no_grad():
                    w.copy_((self._s * q).mT if x is not w else self._s * q)
            self._raw = w.detach().clone()  # after the retraction: what the next call sees
        return self._q, self._s

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        wide = _is_wide(w)
        x = w.mT if wide else w
        if self.config.backward == "unroll" and self.training and torch.is_grad_enabled():
            q = bjorck(x, self.config)
        else:
            q, s = self._tall_polar(x, w)
            q = _TangentPolar.apply(x, q, s) if (w.requires_grad and torch.is_grad_enabled()) else q
        return q.mT if wide else q

    def extra_repr(self) -> str:
        return repr(self.config)


class BjorckLinear(ConstrainedLinear):
    """Drop-in :class:`torch.nn.Linear` whose ``weight`` has orthonormal rows or columns.

    ``weight`` is the Björck-orthonormalized raw parameter
    (``parametrizations.weight.original``), so the layer is 1-Lipschitz and, when square,
    norm preserving (gradient-norm preserving in both directions). Initialized orthogonal,
    which keeps the raw weight well conditioned and the iteration short.

    Args:
        in_features, out_features, bias: as :class:`torch.nn.Linear` (the bias starts at
            zero).
        config: :class:`BjorckConfig` options of the orthonormalization.
        device, dtype: factory keywords of the parameters.

    Raises:
        ValueError: in ``forward``, an input whose last dim is not ``in_features``.
        TypeError: in ``forward``, an input that is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BjorckLinear, lipschitz_bound
        >>> layer = BjorckLinear(4, 4)
        >>> x = torch.randn(3, 4)
        >>> bool(torch.allclose(layer(x).norm(dim=1), x.norm(dim=1), atol=1e-5))  # square
        True
        >>> lipschitz_bound(layer) < 1 + 1e-5
        True
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        config: BjorckConfig | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        check_positive_int(in_features, "in_features", "BjorckLinear")
        check_positive_int(out_features, "out_features", "BjorckLinear")
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        with torch.no_grad():
            nn.init.orthogonal_(self.weight)
            if self.bias is not None:
                self.bias.zero_()
        parametrize.register_parametrization(self, "weight", Orthonormal(config))


register_layer(
    LayerKind(
        "bjorck",
        linear=lambda i, o, opts: BjorckLinear(i, o, bias=opts.bias, config=opts.bjorck),
        certified=True,
        options=frozenset({"bias"}),
        summary="orthonormal dense layer (Björck), gradient-norm preserving",
    )
)
