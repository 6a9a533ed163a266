"""Certified upper bounds and empirical lower bounds of L2 Lipschitz constants.

``lipschitz_bound(module)`` multiplies per-layer bounds computed from the actual weights, in
float64: each layer's own ``lipschitz_bound()`` method (BCOP: the factor-wise bound), exact
singular values for dense layers, and for a generic convolution the maximum of its transfer
matrix's norm over a frequency grid inflated by Bernstein's inequality so that it bounds the
supremum over *all* frequencies (hence every input size and both circular and zero
padding). Given the input shape, ``lipschitz_bound(module, input_shape=...)`` bounds the
function on that shape only, and a convolution's bound becomes the exact norm of the
circular convolution its zero padding embeds into: no inflation. A module it does not know
is an error naming its type: nothing is assumed to be 1-Lipschitz, and so is an option a
rule does not cover (reflect padding, batch statistics, a subclass that overrides
``forward``, a module with forward hooks). Add a rule with :func:`register_lipschitz_bound`,
or give a module a ``lipschitz_bound(self) -> float`` method.
``tests/layers/test_bound_audit.py`` checks every rule against the exact operator norm over
its options and input sizes.

``empirical_lipschitz(module, x)`` is the matching lower bound: gradient ascent on
``|f(a) - f(b)| / |a - b|`` from pairs near the given points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextvars import ContextVar

import torch
from torch import nn

from ._gram import matrix_norm2
from ._rounding import conv_abs_norm, linear_rounding

_RULES: dict[type, Callable[[nn.Module], float]] = {}
# id(module) -> the spatial sizes (H, W) of its 4-D inputs, while lipschitz_bound runs with
# an input_shape; None otherwise (bounds then hold for every input size)
_INPUT_SIZES: ContextVar[dict[int, set[tuple[int, int]]] | None] = ContextVar(
    "wgan_lip_input_sizes", default=None
)
# the dtype the model being bounded computes in (its least precise floating tensor), for the
# rounding terms of modules without weights of their own (pooling); None outside a call
_MODEL_DTYPE: ContextVar[torch.dtype | None] = ContextVar("wgan_lip_model_dtype", default=None)


def register_lipschitz_bound(cls: type) -> Callable:
    """Decorator registering ``fn(module) -> float`` as the certified bound of ``cls``.

    For a module class you cannot change (for your own layers, give them a
    ``lipschitz_bound(self)`` method instead). The rule must be sound for every option of the
    class it accepts; refuse the others with ``TypeError``. A subclass that overrides
    ``forward`` does not inherit the rule.

    Args:
        cls: the module class the rule bounds.

    Returns:
        The decorator; it returns the function unchanged.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.layers import lipschitz_bound, register_lipschitz_bound
        >>> @register_lipschitz_bound(nn.Hardswish)
        ... def _hardswish(m):
        ...     return 1.5  # the slope (2x + 3) / 6 peaks at 1.5
        >>> lipschitz_bound(nn.Sequential(nn.Hardswish(), nn.ReLU()))
        1.5
    """

    def deco(fn: Callable[[nn.Module], float]) -> Callable[[nn.Module], float]:
        _RULES[cls] = fn
        return fn

    return deco


class NonFiniteWeightsError(ValueError, FloatingPointError):
    """A weight of the model is NaN or infinite: a diverged model, which has no certificate.

    A ``ValueError`` (the argument is unusable) and a ``FloatingPointError`` (what a diverged
    training run raises, which the CLI reports in one line).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers import NonFiniteWeightsError, lipschitz_bound
        >>> lin = nn.Linear(2, 2)
        >>> _ = torch.nn.init.constant_(lin.bias, float("nan"))
        >>> try:
        ...     lipschitz_bound(lin)
        ... except NonFiniteWeightsError as e:
        ...     print(str(e)[:50])
        lipschitz_bound: bias is not finite (NaN or inf);
    """


def lipschitz_bound(module: nn.Module, input_shape: Sequence[int] | None = None) -> float:
    """A certified upper bound of ``module``'s L2 Lipschitz constant, from its weights.

    The bound is that of the module in eval mode (the function that is certified: no
    power-iteration update or dropout); train/eval flags are restored afterwards, and
    computing it changes nothing else in the module either. Each layer's bound covers its
    forward pass as computed in its dtype: the exact norm of the weights it uses plus the
    rounding of its arithmetic (:mod:`wgan_lip.layers._rounding`).
    ``nn.Sequential`` multiplies its children's bounds. Raises ``TypeError`` for a module
    with no known rule (residual blocks, custom forwards), or an option its rule does not
    cover, rather than assuming 1.

    Args:
        module: the network (or layer) to bound.
        input_shape: the shape of one input without the batch axis, e.g. ``(1, 28, 28)``.
            When given, the bound holds for inputs of that shape only and convolutions are
            bounded exactly on their actual sizes (one forward pass of zeros records
            them): tighter than the default, which holds for every input size.

    Returns:
        The bound, a float.

    Raises:
        TypeError: a module (or an option of one) without a certified rule, a subclass that
            overrides ``forward``, or forward hooks.
        ValueError: ``input_shape`` does not fit the module.
        NonFiniteWeightsError: a weight, or one computed by a parametrization, is NaN or
            infinite (a diverged model has no certificate); a ``ValueError`` too.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers import lipschitz_bound
        >>> lin = nn.Linear(2, 2, bias=False)
        >>> with torch.no_grad():
        ...     _ = lin.weight.copy_(torch.diag(torch.tensor([3.0, 0.5])))
        >>> bound = lipschitz_bound(nn.Sequential(lin, nn.ReLU(), lin))  # 3 x 1 x 3
        >>> 9.0 < bound < 9.0 * (1 + 1e-5)  # and the float32 rounding of the forward pass
        True
        >>> lipschitz_bound(nn.GELU())
        Traceback (most recent call last):
        ...
        TypeError: lipschitz_bound: no certified bound for module type GELU; ...
    """
    _refuse_non_finite(module)
    flags = [(m, m.training) for m in module.modules()]
    buffers = [(m, dict(m._buffers)) for m in module.modules()]
    module.eval()
    dtype_token = _MODEL_DTYPE.set(_least_precise_dtype(module))
    try:
        if input_shape is None:
            bound = _bound(module)
        else:
            token = _INPUT_SIZES.set(_record_input_sizes(module, tuple(input_shape)))
            try:
                bound = _bound(module)
            finally:
                _INPUT_SIZES.reset(token)
        if not math.isfinite(bound):  # a rule on weights a parametrization made NaN or inf
            raise NonFiniteWeightsError(
                f"lipschitz_bound: the bound is {bound} (a weight computed by the model is not "
                "finite, or its forward pass overflows); a diverged model has no certificate, "
                "retrain it"
            )
        return bound
    except torch.linalg.LinAlgError as e:  # an SVD of weights a parametrization made NaN
        raise NonFiniteWeightsError(
            f"lipschitz_bound: a linear-algebra routine failed on the model's weights, most "
            f"likely a non-finite computed weight ({str(e).splitlines()[0]}); a diverged model "
            "has no certificate, retrain it"
        ) from None
    finally:
        _MODEL_DTYPE.reset(dtype_token)
        for m, training in flags:
            m.training = training
        for m, saved in buffers:  # computing a bound never changes a module: no buffer swaps
            if m._buffers.keys() != saved.keys() or any(
                m._buffers[k] is not v for k, v in saved.items()
            ):
                m._buffers.clear()
                m._buffers.update(saved)


def _least_precise_dtype(module: nn.Module) -> torch.dtype:
    """The floating dtype of ``module``'s tensors with the largest unit roundoff (the
    default dtype for a module without floating tensors)."""
    dtypes = {t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()}
    if not dtypes:
        return torch.get_default_dtype()
    return max(dtypes, key=lambda d: torch.finfo(d).eps)


def model_dtype() -> torch.dtype:
    """The dtype whose rounding a weightless module's bound covers.

    Inside :func:`lipschitz_bound`, the least precise floating dtype of the model being
    bounded (a pooling layer computes in its model's dtype); outside, or for a model with no
    floating tensors, ``torch.get_default_dtype()``.

    Returns:
        A floating ``torch.dtype``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.lipschitz import model_dtype
        >>> model_dtype() == torch.get_default_dtype()
        True
    """
    dtype = _MODEL_DTYPE.get()
    return torch.get_default_dtype() if dtype is None else dtype


def _refuse_non_finite(module: nn.Module) -> None:
    """A NaN or infinite parameter or buffer makes every bound meaningless: refuse by name."""
    named = [*module.named_parameters(), *module.named_buffers()]
    for name, t in named:
        if t.is_floating_point() or t.is_complex():
            if not bool(torch.isfinite(t).all()):
                raise NonFiniteWeightsError(
                    f"lipschitz_bound: {name or 'the weight'} is not finite (NaN or inf); a "
                    "diverged model has no certificate, retrain it (a lower learning rate)"
                )


def known_input_sizes(module: nn.Module) -> set[tuple[int, int]] | None:
    """The input sizes :func:`lipschitz_bound` recorded for ``module``, or None.

    The spatial sizes ``(H, W)`` of ``module``'s 4-D inputs when :func:`lipschitz_bound`
    runs with an ``input_shape`` (for a layer's own ``lipschitz_bound()`` method), or None:
    then the bound must hold for every input size.

    Args:
        module: the (sub)module being bounded.

    Returns:
        The set of ``(H, W)`` its 4-D inputs had in :func:`lipschitz_bound`'s forward pass
        of zeros (one per call of a shared module), or None outside such a call. Inside
        one, a module that got no 4-D input also gives None.

    Example:
        >>> from torch import nn
        >>> from wgan_lip.layers import known_input_sizes, lipschitz_bound
        >>> class Probe(nn.Identity):
        ...     def lipschitz_bound(self):
        ...         seen.append(known_input_sizes(self))
        ...         return 1.0
        >>> seen = []
        >>> lipschitz_bound(Probe(), input_shape=(3, 8, 6)), lipschitz_bound(Probe())
        (1.0, 1.0)
        >>> seen
        [{(8, 6)}, None]
    """
    sizes = _INPUT_SIZES.get()
    return None if sizes is None else sizes.get(id(module))


def _record_input_sizes(
    module: nn.Module, input_shape: tuple[int, ...]
) -> dict[int, set[tuple[int, int]]]:
    """One forward pass of zeros of ``input_shape`` that records each submodule's 4-D input
    sizes (every call of a shared module)."""
    for m in module.modules():
        _refuse_hooks(m)  # the bound refuses them anyway; ours are removed before it runs
    sizes: dict[int, set[tuple[int, int]]] = {}

    def record(m: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor) and args[0].dim() == 4:
            sizes.setdefault(id(m), set()).add(tuple(args[0].shape[-2:]))

    tensors = [*module.parameters(), *(b for b in module.buffers() if b.is_floating_point())]
    kw = {"dtype": tensors[0].dtype, "device": tensors[0].device} if tensors else {}
    handles = [m.register_forward_pre_hook(record) for m in module.modules()]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *input_shape, **kw))
    except (RuntimeError, ValueError) as e:
        raise ValueError(
            f"lipschitz_bound: input_shape {input_shape} does not fit the module "
            f"({str(e).splitlines()[0]}); pass the shape of one input without the batch axis"
        ) from None
    finally:
        for h in handles:
            h.remove()
    return sizes


def _bound(module: nn.Module) -> float:
    _refuse_hooks(module)
    owner = own_method(module, "lipschitz_bound")
    if owner is not None:
        with torch.no_grad():
            return float(module.lipschitz_bound())
    rule = _rule(module)
    if rule is None:
        raise TypeError(
            f"lipschitz_bound: no certified bound for module type {type(module).__qualname__}; "
            "register one with wgan_lip.layers.register_lipschitz_bound or give the module a "
            "lipschitz_bound() method"
        )
    with torch.no_grad():
        return float(rule(module))


def own_method(module: nn.Module, name: str) -> type | None:
    """The class that gives ``module`` its own ``name`` method, or None.

    Layers own their bound and export this way (``lipschitz_bound``, ``export_plain``); a
    subclass that overrides ``forward`` computes something else and may not inherit them
    (refused).

    Args:
        module: the module to look at.
        name: the method's name.

    Returns:
        The first class of ``type(module)``'s MRO that defines a callable ``name``, or
        ``None`` when none does.

    Raises:
        TypeError: that class is not the one that defines ``forward`` (a subclass that
            overrides ``forward`` but inherits the method).

    Example:
        >>> from torch import nn
        >>> from wgan_lip.layers import BjorckLinear
        >>> from wgan_lip.layers.lipschitz import own_method
        >>> own_method(BjorckLinear(2, 2), "lipschitz_bound").__name__
        'ConstrainedLinear'
        >>> own_method(nn.Linear(2, 2), "lipschitz_bound") is None  # bounded by a rule instead
        True
        >>> class Doubled(BjorckLinear):
        ...     def forward(self, x):
        ...         return 2 * super().forward(x)
        >>> own_method(Doubled(2, 2), "lipschitz_bound")
        Traceback (most recent call last):
            ...
        TypeError: lipschitz_bound: ParametrizedDoubled overrides forward() but inherits
        lipschitz_bound() from ConstrainedLinear, which does not cover it; ...
    """
    cls_ = type(module)
    owner = next((c for c in cls_.__mro__ if name in c.__dict__), None)
    if owner is None or not callable(owner.__dict__[name]):
        return None
    if cls_.forward is not owner.forward:
        raise TypeError(
            f"{name}: {cls_.__qualname__} overrides forward() but inherits {name}() from "
            f"{owner.__qualname__}, which does not cover it; give {cls_.__qualname__} its own "
            f"{name}() method"
        )
    return owner


def _rule(module: nn.Module) -> Callable[[nn.Module], float] | None:
    """The rule registered for ``module``'s class or the nearest base class, provided the
    module computes what that class computes: a subclass that overrides ``forward`` (a
    residual ``nn.Sequential``, a rescaled ``nn.Linear``) is refused, not bounded as its base.
    Subclasses whose forward only validates its input are registered by name below."""
    cls_ = type(module)
    for cls in cls_.__mro__:
        rule = _RULES.get(cls)
        if rule is None:
            continue
        if cls_.forward is not cls.forward:
            raise TypeError(
                f"lipschitz_bound: {cls_.__qualname__} subclasses {cls.__qualname__} but "
                f"overrides forward(), which the {cls.__qualname__} bound does not cover; "
                "register a bound for it with register_lipschitz_bound or give it a "
                "lipschitz_bound() method"
            )
        return rule
    return None


def _refuse_hooks(module: nn.Module) -> None:
    """Forward hooks can change a module's output (and old-style ``nn.utils.spectral_norm``
    recomputes the weight in one, so the stored ``weight`` can be stale): refused."""
    if module._forward_hooks or module._forward_pre_hooks:
        raise TypeError(
            f"lipschitz_bound: {type(module).__qualname__} has forward hooks or pre-hooks, "
            "which can change its output; remove them (use torch.nn.utils.parametrize for "
            "weight constraints) before certifying"
        )


@register_lipschitz_bound(nn.Sequential)
def _sequential(m: nn.Sequential) -> float:
    """Product of the children's bounds.

    ``nn.CircularPad2d`` followed by an unpadded ``nn.Conv2d`` is bounded as one circular
    convolution (see :func:`_circular_copies`), far tighter than the product: circular
    padding alone duplicates pixels.
    """
    bound = 1.0
    children = list(m)
    i = 0
    while i < len(children):
        child = children[i]
        nxt = children[i + 1] if i + 1 < len(children) else None
        if (
            isinstance(child, nn.CircularPad2d)
            and _rule(child) is _circular_pad
            and isinstance(nxt, nn.Conv2d)
            and own_method(nxt, "lipschitz_bound") is None
            and _rule(nxt) is _conv2d
            and not any(_conv_pads(nxt))
        ):
            _refuse_hooks(child)
            _refuse_hooks(nxt)
            left, right, top, bottom = _circular_pads(child)
            eff_h, eff_w = _effective_kernel(nxt)
            copies = _circular_copies(top, bottom, eff_h) * _circular_copies(left, right, eff_w)
            with torch.no_grad():
                exact = math.sqrt(copies) * _conv_kernel_bound(nxt, known_input_sizes(child))
                bound *= round_conv(nxt, exact, copies)
            i += 2
            continue
        bound *= _bound(child)
        i += 1
    return bound


def _one(_: nn.Module) -> float:
    return 1.0


# Permutations, sorts, reshapes and 1-Lipschitz pointwise maps.
for _cls in (
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.PixelUnshuffle,
    nn.PixelShuffle,
    nn.ReLU,
    nn.Tanh,
    nn.Hardtanh,
    nn.Softsign,
    nn.ReLU6,
    nn.ZeroPad2d,
):
    _RULES[_cls] = _one
_RULES[nn.Sigmoid] = lambda m: 0.25
_RULES[nn.LeakyReLU] = lambda m: max(1.0, abs(m.negative_slope))
_RULES[nn.ELU] = lambda m: max(1.0, abs(m.alpha))  # slope alpha e^x for x < 0
_RULES[nn.Dropout] = _one  # identity in eval mode


@register_lipschitz_bound(nn.AvgPool2d)
def _avg_pool(m: nn.AvgPool2d) -> float:
    """Every option of ``nn.AvgPool2d``: the pooling is separable (the divisor is the product
    of the per-axis window counts, whether or not they count padding and however ``ceil_mode``
    clips the last window), so its norm is the product of two 1-D averaging matrices' norms.
    Each is bounded by Schur's test, ``sqrt(max row sum * max column sum)``, taken over every
    input length up to ``3 (k + 2p + s)``: a longer input only repeats the interior and edge
    windows that these lengths already contain, so the bound holds for every input size."""
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    (kh, kw), (ph, pw) = pair(m.kernel_size), pair(m.padding)
    sh, sw = pair(m.stride or m.kernel_size)
    override = m.divisor_override
    bound = 1.0
    for k, s, p in ((kh, sh, ph), (kw, sw, pw)):
        bound *= _avg_pool_axis_bound(
            k, s, p, m.ceil_mode, m.count_include_pad, override is not None
        )
    if override is not None:  # uniform weights 1 / override instead of 1 / (kh kw)
        bound *= kh * kw / override
    return bound


def _avg_pool_axis_bound(
    k: int, s: int, p: int, ceil: bool, include_pad: bool, plain_sum: bool
) -> float:
    """Schur bound of 1-D average pooling, the maximum over input lengths 1..3 (k + 2p + s)."""
    import torch.nn.functional as F

    worst = 0.0
    for n in range(1, 3 * (k + 2 * p + s) + 1):
        eye = torch.eye(n, dtype=torch.float64).reshape(n, 1, n, 1)
        try:
            out = F.avg_pool2d(
                eye,
                (k, 1),
                (s, 1),
                (p, 0),
                ceil_mode=ceil,
                count_include_pad=include_pad,
                divisor_override=k if plain_sum else None,
            )
        except RuntimeError:  # the input is too short for this window
            continue
        a = out[:, 0, :, 0].T.abs()  # (outputs, inputs)
        if a.numel():
            worst = max(worst, math.sqrt(float(a.sum(1).max()) * float(a.sum(0).max())))
    return worst


@register_lipschitz_bound(nn.Linear)
def _linear(m: nn.Linear) -> float:
    """The exact norm of the weight plus the rounding of the forward pass in its dtype
    (:func:`~wgan_lip.layers._rounding.linear_rounding`)."""
    w = m.weight.detach()
    return linear_rounding(matrix_norm2(w), matrix_norm2(w.abs()), w.shape[1], w.dtype, w.device)


def conv_transfer_bound(
    kernel: torch.Tensor, dilation: int | tuple[int, int] = 1, grid: int | None = None
) -> float:
    """Upper bound of ``sup_w ||K_hat(w)||_2`` for a 2-D kernel ``(out, in, kh, kw)``.

    ``K_hat`` is a matrix trigonometric polynomial of degree ``n = k // 2`` per axis (after
    centering, which changes only a phase). By Bernstein's inequality
    ``|p'| <= n sup|p|`` for each scalar ``a^H K_hat b``, so on a grid of ``m`` points per axis
    ``sup <= max_grid / (1 - n pi / m)`` per axis. The supremum bounds the circular
    convolution on every input size, and zero padding is a compression of a circular one.
    ``dilation`` (one or one per axis) spreads the taps: a sparse larger kernel.

    Args:
        kernel: the kernel ``(out, in, kh, kw)``, any float dtype (computed in float64).
        dilation: the dilation, one int or ``(dh, dw)``.
        grid: frequencies per axis (default: the finest power of two from 64 to 512 whose
            spectrum keeps about 2**24 matrix entries); at least ``8 * max(kh, kw)`` is used.

    Returns:
        The bound, a float: the maximum over the ``m x m`` grid times the inflation
        ``prod_axes 1 / (1 - n pi / m)``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import conv_transfer_bound
        >>> mean = torch.ones(1, 1, 3, 3) / 9  # norm 1, at frequency 0
        >>> 1.0 <= conv_transfer_bound(mean) < 1.02
        True
        >>> conv_transfer_bound(torch.eye(2)[:, :, None, None])  # 1x1: no inflation
        1.0
    """
    k = kernel.detach().to(torch.float64)
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    if (dh, dw) != (1, 1):
        out_c, in_c, kh, kw = k.shape
        big = k.new_zeros(out_c, in_c, (kh - 1) * dh + 1, (kw - 1) * dw + 1)
        big[:, :, ::dh, ::dw] = k
        k = big
    kh, kw = k.shape[-2:]
    if grid is None:  # the finest power-of-two grid within about 2**24 matrix entries
        grid = 64
        while grid < 512 and (2 * grid) ** 2 * k.shape[0] * k.shape[1] <= 2**24:
            grid *= 2
    m = max(grid, 8 * max(kh, kw))
    spectrum = torch.fft.fft2(k, s=(m, m))  # (out, in, m, m)
    mats = spectrum.permute(2, 3, 0, 1).reshape(m * m, k.shape[0], k.shape[1])
    top = float(torch.linalg.matrix_norm(mats, ord=2).max())
    inflate = 1.0
    for size in (kh, kw):
        n = size // 2
        inflate /= 1.0 - n * math.pi / m
    return top * inflate


def conv_grid_bound(
    kernel: torch.Tensor, size: tuple[int, int], dilation: int | tuple[int, int] = 1
) -> float:
    """Exact norm of the circular convolution with ``kernel`` on an ``N_h x N_w`` grid.

    For a 2-D kernel ``(out, in, kh, kw)`` and a ``size = (N_h, N_w)`` grid it is the
    largest ``||K_hat(w)||_2`` over its ``N_h x N_w`` discrete frequencies, in float64. A
    zero-padded convolution of an ``H x W`` input with padding ``p`` is a restriction of the
    circular one on ``N >= H + 2p`` (no window wraps), so this bounds it with no inflation. A
    kernel wider than the grid folds its taps modulo the grid size, as the circular
    convolution does.

    Args:
        kernel: the kernel ``(out, in, kh, kw)``, any float dtype (computed in float64).
        size: the grid ``(N_h, N_w)``, positive.
        dilation: the dilation, one int or ``(dh, dw)``.

    Returns:
        The operator norm, a float.

    Example:
        >>> import torch
        >>> from wgan_lip.layers import conv_grid_bound
        >>> diff = torch.tensor([1.0, -1.0]).reshape(1, 1, 1, 2)  # x[j] - x[j+1]
        >>> round(conv_grid_bound(diff, (1, 8)), 6)  # the alternating signal doubles
        2.0
        >>> round(conv_grid_bound(diff, (1, 5)), 6)  # an odd cycle has none: 2 sin(2 pi / 5)
        1.902113
    """
    k = kernel.detach().to(torch.float64)
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    out_c, in_c, kh, kw = k.shape
    nh, nw = size
    folded = k.new_zeros(out_c, in_c, nh, nw)
    for i in range(kh):
        for j in range(kw):
            folded[:, :, (i * dh) % nh, (j * dw) % nw] += k[:, :, i, j]
    spectrum = torch.fft.fft2(folded)  # (out, in, nh, nw)
    mats = spectrum.permute(2, 3, 0, 1).reshape(nh * nw, out_c, in_c)
    chunk = max(1, 2**22 // max(1, out_c * in_c))  # frequencies per batch, bounded memory
    return max(
        float(torch.linalg.matrix_norm(mats[s : s + chunk], ord=2).max())
        for s in range(0, nh * nw, chunk)
    )


@register_lipschitz_bound(nn.Conv2d)
def _conv2d(m: nn.Conv2d) -> float:
    """:func:`conv2d_exact_bound` plus the rounding of the forward pass in its dtype."""
    bound, copies = conv2d_exact_bound(m)
    return round_conv(m, bound, copies)


def round_conv(m: nn.Conv2d, bound: float, copies: int = 1) -> float:
    """``bound`` of a convolution's exact map, plus the rounding of its forward pass.

    ``bound`` is for the kernel ``m`` computes with. Each output is a dot product of length
    ``in / groups * kh * kw`` plus the bias
    (:func:`~wgan_lip.layers._rounding.linear_rounding`, with the norm of the convolution by
    ``|K|``, times ``sqrt(copies)`` when circular padding repeats pixels).

    Args:
        m: the convolution (any ``nn.Conv2d``, parametrized or not).
        bound: a float64 bound of the exact map with ``m``'s kernel.
        copies: the most copies of one pixel circular padding makes (1 otherwise).

    Returns:
        The bound of the map as computed in ``m``'s dtype.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers.lipschitz import round_conv
        >>> conv = nn.Conv2d(4, 4, 3)
        >>> 1.0 < round_conv(conv, 1.0) < 1.0 + 1e-4  # float32: a few n u
        True
    """

    w = m.weight.detach()
    abs_norm = math.sqrt(copies) * conv_abs_norm(w, m.groups)
    n = w.shape[1] * w.shape[2] * w.shape[3]
    return linear_rounding(bound, abs_norm, n, w.dtype, w.device, conv=True)


def conv2d_exact_bound(m: nn.Conv2d) -> tuple[float, int]:
    """A bound of the exact map of ``m``'s kernel and the copies circular padding makes.

    Every stride, dilation, group count, kernel shape and padding size, zeros or circular
    (reflect or replicate only with no padding). A convolution whose stride equals its kernel
    size is bounded exactly, patch by patch.

    Zero padding (any amount) and stride take a subset of the outputs of a circular
    convolution of a zero-extended input: bounded by the transfer-matrix supremum. Circular
    padding of ``a + b`` pixels on an axis where the kernel spans ``e`` makes ``a + b - e + 1``
    more outputs than the circular convolution has, which repeat some of them: the factor
    ``sqrt(copies)`` of :func:`_circular_copies` (1 for 'same' padding or less).

    With known input sizes (:func:`known_input_sizes`) the transfer-matrix supremum becomes
    the exact maximum over the circular grid the input embeds into (:func:`conv_grid_bound`).

    Args:
        m: the convolution.

    Returns:
        ``(bound, copies)``: a float64 bound of the exact map (no rounding) and the most
        copies of one pixel that circular padding makes (1 otherwise).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers.lipschitz import conv2d_exact_bound
        >>> conv = nn.Conv2d(1, 1, 1, bias=False)
        >>> _ = conv.weight.data.fill_(0.5)
        >>> conv2d_exact_bound(conv)
        (0.5, 1)
    """
    top, bottom, left, right = _conv_pads(m)
    padded = any((top, bottom, left, right))
    if (
        tuple(m.stride) == tuple(m.kernel_size)
        and tuple(m.dilation) == (1, 1)
        and (m.padding_mode == "zeros" or not padded)
        and min(top, bottom, left, right) >= 0
    ):
        # Non-overlapping patches (a "patchify" or RKO downsampling): the map applies the
        # reshaped kernel to each patch of the zero-extended input separately, so its norm
        # is exactly the matrix norm (per group), up to k-fold tighter than the transfer bound.
        w = m.weight
        per_group = w.shape[0] // m.groups
        return max(
            matrix_norm2(w[g * per_group : (g + 1) * per_group].flatten(1)) for g in range(m.groups)
        ), 1
    if m.padding_mode not in ("zeros", "circular") and padded:
        raise TypeError(
            f"lipschitz_bound: Conv2d with padding_mode={m.padding_mode!r} has no certified "
            "bound here (reflect/replicate padding duplicates pixels); use zeros or circular"
        )
    copies = 1
    if m.padding_mode == "circular":
        if min(top, bottom, left, right) < 0:
            raise TypeError(
                "lipschitz_bound: Conv2d with padding_mode='circular' and negative padding "
                f"{m.padding} is not supported (torch crops before wrapping)"
            )
        eff_h, eff_w = _effective_kernel(m)
        copies = _circular_copies(top, bottom, eff_h) * _circular_copies(left, right, eff_w)
        # the circular convolution on the input's own grid (outputs repeat at most `copies`)
        return math.sqrt(copies) * _conv_kernel_bound(m, known_input_sizes(m)), copies
    if min(top, bottom, left, right) < 0:  # cropping: the generic bound only
        return _conv_kernel_bound(m), 1
    eff_h, eff_w = _effective_kernel(m)
    sizes = known_input_sizes(m)
    grids = (
        None
        if sizes is None
        else {(max(h + top + bottom, eff_h), max(w + left + right, eff_w)) for h, w in sizes}
    )
    return _conv_kernel_bound(m, grids), 1


def _conv_kernel_bound(m: nn.Conv2d, grids: set[tuple[int, int]] | None = None) -> float:
    """``sup ||K_hat||`` of the convolution's kernel with its groups and dilation: groups act
    on disjoint channel blocks (a block-diagonal operator), hence the maximum over blocks.
    With circular ``grids`` (the zero-extended or periodic input sizes), the exact maximum
    over each grid's frequencies instead (:func:`conv_grid_bound`)."""
    w = m.weight
    per_group = w.shape[0] // m.groups
    blocks = [w[g * per_group : (g + 1) * per_group] for g in range(m.groups)]
    dilation = tuple(m.dilation)
    if not grids:
        return max(conv_transfer_bound(b, dilation=dilation) for b in blocks)
    return max(conv_grid_bound(b, g, dilation) for b in blocks for g in grids)


def _conv_pads(m: nn.Conv2d) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` padding, as torch applies it ('same' may be uneven)."""
    if m.padding == "valid":
        return 0, 0, 0, 0
    if m.padding == "same":
        pads = []
        for d, k in zip(m.dilation, m.kernel_size, strict=True):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)  # type: ignore[return-value]
    ph, pw = m.padding
    return ph, ph, pw, pw


def _effective_kernel(m: nn.Conv2d) -> tuple[int, int]:
    """Span ``d (k - 1) + 1`` of the dilated kernel along height and width."""
    (dh, dw), (kh, kw) = m.dilation, m.kernel_size
    return dh * (kh - 1) + 1, dw * (kw - 1) + 1


def _circular_copies(a: int, b: int, span: int) -> int:
    """Most copies of one output of the circular convolution along an axis of length ``n``,
    after circular padding ``a`` and ``b`` (torch needs ``a, b <= n``) and a valid
    convolution of span ``span``.

    The padded signal is a window of the ``n``-periodic extension, so output ``i`` is the
    circular convolution's output ``(i - a) mod n``; the ``n + a + b - span + 1`` outputs
    repeat each at most ``1 + ceil(excess / n) <= 1 + excess`` times, ``excess =
    a + b - span + 1``. Each input pixel is also copied at most once into each nonempty pad,
    hence at most ``1 + [a > 0] + [b > 0]`` outputs of the padding alone.
    """
    excess = a + b - span + 1
    if excess <= 0:
        return 1
    return min(1 + excess, 1 + (a > 0) + (b > 0))


@register_lipschitz_bound(nn.CircularPad2d)
def _circular_pad(m: nn.CircularPad2d) -> float:
    """Alone, circular padding copies a pixel into each nonempty pad at most once (torch
    refuses to wrap around more than once): ``sqrt`` of the copies along both axes. Followed
    by an unpadded convolution, :func:`_sequential` bounds the pair much more tightly."""
    left, right, top, bottom = _circular_pads(m)
    return math.sqrt(_circular_copies(top, bottom, 1) * _circular_copies(left, right, 1))


def _circular_pads(m: nn.CircularPad2d) -> tuple[int, int, int, int]:
    left, right, top, bottom = m.padding
    if min(m.padding) < 0:
        raise TypeError(
            f"lipschitz_bound: nn.CircularPad2d with negative padding {tuple(m.padding)} is "
            "not supported (torch crops before wrapping)"
        )
    return left, right, top, bottom


@register_lipschitz_bound(nn.BatchNorm2d)
def _batchnorm(m: nn.BatchNorm2d) -> float:
    """In eval mode, a per-channel affine map ``gamma (x - mean) / sqrt(var + eps) + beta``.
    Without running statistics it normalizes by the batch's even in eval mode: refused."""
    if m.running_var is None or m.running_mean is None:
        raise TypeError(
            f"lipschitz_bound: nn.{type(m).__name__} with track_running_stats=False "
            "normalizes by batch statistics even in eval mode (not a function of one sample) "
            "and has no certified bound; use track_running_stats=True"
        )
    var = m.running_var.detach().to(torch.float64)
    gamma = m.weight.detach().to(torch.float64) if m.weight is not None else torch.ones_like(var)
    return float((gamma.abs() / torch.sqrt(var + m.eps)).max())


_RULES[nn.BatchNorm1d] = _batchnorm


def empirical_lipschitz(
    module: nn.Module,
    x: torch.Tensor,
    *,
    steps: int = 100,
    lr: float = 1e-2,
    init_radius: float = 1e-1,
    min_distance: float = 1e-3,
    seed: int = 0,
) -> float:
    """Lower bound of the Lipschitz constant: the best ``|f(a)-f(b)| / |a-b|`` found.

    Starts from pairs ``(x_i, x_i + delta_i)`` and runs Adam on both points to maximize each
    pair's ratio; the largest ratio ever evaluated is returned (every one is a valid lower
    bound). Pairs closer than ``min_distance`` are pushed apart so float rounding cannot
    inflate a ratio.

    Args:
        module: the map to probe (evaluated in eval mode; the flag is restored).
        x: starting points ``(n, ...)``, floating point.
        steps, lr: Adam steps and learning rate of the ascent.
        init_radius: initial distance between the points of a pair.
        min_distance: the smallest distance a pair may reach.
        seed: seed of the initial offsets.

    Returns:
        The largest ratio found: a lower bound of the Lipschitz constant.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.layers import empirical_lipschitz
        >>> round(empirical_lipschitz(nn.Tanh(), torch.zeros(4, 1)), 2)  # the slope at 0
        1.0
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError("empirical_lipschitz: x must be a floating-point tensor")
    was_training = module.training
    module.eval()
    gen = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x)
    noise = noise / noise.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1)) * init_radius
    a = x.detach().clone().requires_grad_(True)
    b = (x.detach() + noise).requires_grad_(True)
    opt = torch.optim.Adam([a, b], lr=lr)
    best = 0.0
    try:
        for _ in range(steps + 1):
            diff_in = (a - b).flatten(1).norm(dim=1)
            diff_out = (module(a) - module(b)).flatten(1).norm(dim=1)
            ratio = diff_out / diff_in
            best = max(best, float(ratio.detach().max()))
            opt.zero_grad()
            (-ratio.sum()).backward()
            opt.step()
            with torch.no_grad():
                d = b - a
                dn = d.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
                b.copy_(
                    torch.where(dn < min_distance, a + d / dn.clamp_min(1e-12) * min_distance, b)
                )
    finally:
        module.train(was_training)
    return best
