"""Floating-point rounding terms: a bound covers the forward pass *as computed*, in its dtype.

Every certified bound of this package is computed in float64 from the weights the forward
pass actually uses (the computed weight, in the layer's dtype). What is left is the rounding
of the forward pass itself, bounded here with the classical model of Higham (*Accuracy and
Stability of Numerical Algorithms*, 2nd ed., Sec. 2.2, 3.1, 3.5): ``fl(a op b) = (a op b)(1 + d)``
with ``|d| <= u``, the unit roundoff (half the dtype's ``eps``), and ``gamma_n = n u / (1 - n u)``.

* **A dot product of length n** (any summation order, blocked or pairwise) is computed as the
  exact dot product with each weight perturbed by a relative amount at most ``gamma_n``
  (Higham eq. 3.4). So ``fl(W x + b) = (W + dW) x + b'`` with ``|dW| <= gamma_{n+1} |W|``
  entrywise (the ``+1``: the bias add), and the computed map is, at each input, the exact map
  of an affine operator of norm at most ``||W|| + gamma_{n+1} || |W| ||`` (the spectral norm
  is monotone on nonnegative matrices). :func:`linear_rounding` is that bound; a bias
  perturbation changes no Lipschitz constant.
* **Half precision** (float16, bfloat16) matmuls and convolutions accumulate in float32 in
  PyTorch's CPU and CUDA kernels and round the result once: the dot product then uses the
  float32 ``gamma_n`` and the dtype's ``u`` enters through the output rounding. On CUDA,
  float32 products may run in TF32 (or bfloat16 with ``float32_matmul_precision="medium"``):
  the inputs' rounding to those formats is added, read from torch's flags at bound time.
* **Comparing two evaluations.** The per-evaluation statement above is exact (a backward
  error). A ratio ``|f(x) - f(y)| / |x - y|`` of two *float* evaluations also sees the
  difference of their rounding errors, which is not proportional to ``|x - y|`` (no finite
  relative term covers arbitrarily close pairs: two inputs one ulp apart can have outputs an
  output-ulp apart). ``ALLOWANCE`` extra roundings of the output (``gamma_ALLOWANCE`` in the
  dtype, a relative term of about ``32 u``) cover such pairs at separations of a fraction of
  their norm and their outputs' norm (a bias or a residual branch can make those larger);
  ``tests/soundness/test_layer_bounds.py`` attacks every layer at a quarter of it.

The terms are relative sizes of a few ``n u`` (1e-6 for a 16-wide float32 layer, 2e-16 in
float64), so they never hide a real violation and never make a bound absurdly loose.
"""

from __future__ import annotations

import math

import torch

from ._gram import matrix_norm2

# Extra output roundings allowed when two float evaluations are compared (see the module
# docstring): 32 covers the attacks of the soundness suite with a margin of about 2.
ALLOWANCE = 32
_HALF = (torch.float16, torch.bfloat16)


def unit_roundoff(dtype: torch.dtype) -> float:
    """``u = eps / 2`` of a floating-point (or complex) dtype: the largest relative rounding
    error of one correctly rounded operation.

    Example:
        >>> import torch
        >>> from wgan_lip.layers._rounding import unit_roundoff
        >>> unit_roundoff(torch.float32) == 2.0**-24, unit_roundoff(torch.complex128) == 2.0**-53
        (True, True)
    """
    if dtype.is_complex:
        dtype = torch.float32 if dtype == torch.complex64 else torch.float64
    return torch.finfo(dtype).eps / 2.0


def gamma(n: int, u: float) -> float:
    """Higham's ``gamma_n = n u / (1 - n u)``: the relative error of ``n`` chained roundings.

    Raises:
        ValueError: ``n u >= 1``, where no relative bound exists (a reduction far too long
            for the precision): refused rather than certified.

    Example:
        >>> from wgan_lip.layers._rounding import gamma
        >>> gamma(0, 2.0**-24), round(gamma(16, 2.0**-24) * 2**24, 6)
        (0.0, 16.000015)
    """
    nu = n * u
    if nu >= 1.0:
        raise ValueError(
            f"lipschitz_bound: a reduction of length {n} has no rounding bound at unit "
            f"roundoff {u:.3g} (n u >= 1); compute this layer in a wider dtype"
        )
    return nu / (1.0 - nu)


def product_roundoff(
    dtype: torch.dtype, device: torch.device | str = "cpu", conv: bool = False
) -> float:
    """Relative error of one product ``w x`` inside a matmul or convolution of ``dtype``.

    ``u`` of the accumulation precision (float32 for half dtypes), plus the rounding of both
    factors to TF32 (``u = 2^-11``) or bfloat16 (``2^-8``) where torch's flags let float32
    CUDA kernels use them (``torch.backends.cudnn.allow_tf32`` for convolutions,
    ``torch.get_float32_matmul_precision()`` for matmuls).
    """
    u = unit_roundoff(torch.float32 if dtype in _HALF else dtype)
    if dtype not in (torch.float32, torch.complex64) or torch.device(device).type != "cuda":
        return u
    if conv:
        reduced = 2.0**-11 if torch.backends.cudnn.allow_tf32 else 0.0
    else:
        precision = torch.get_float32_matmul_precision()
        reduced = {"highest": 0.0, "high": 2.0**-11, "medium": 2.0**-8}.get(precision, 2.0**-8)
        if torch.backends.cuda.matmul.allow_tf32:
            reduced = max(reduced, 2.0**-11)
    return u + 2.0 * reduced + reduced * reduced  # (1 + r)^2 (1 + u) - 1, to first order and up


def output_factor(dtype: torch.dtype) -> float:
    """``1 + gamma_ALLOWANCE(u)``: the output roundings of a layer (one rounding per stored
    result, and the comparison of two evaluations, see the module docstring)."""
    return 1.0 + gamma(ALLOWANCE, unit_roundoff(dtype))


def reduction_gamma(
    n: int, dtype: torch.dtype, device: torch.device | str = "cpu", conv: bool = False
) -> float:
    """``gamma`` of a dot product of length ``n`` in ``dtype``: ``n`` roundings in the
    accumulation precision, each product's own error included (Higham eq. 3.4), the
    reduced-precision rounding of the factors where it applies, and for a half dtype the
    rounding of the float32 result to it (an intermediate result of a layer is stored)."""
    u_acc = unit_roundoff(torch.float32 if dtype in _HALF else dtype)
    extra = product_roundoff(dtype, device, conv) - u_acc
    acc = gamma(n, u_acc) + extra * (1.0 + gamma(n, u_acc))
    if dtype in _HALF:
        acc += unit_roundoff(dtype) * (1.0 + acc)
    return acc


def linear_rounding(
    norm: float,
    abs_norm: float,
    n: int,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
    conv: bool = False,
) -> float:
    """The bound of an affine layer ``x -> W x + b`` as computed in ``dtype``.

    ``(1 + gamma_ALLOWANCE) (norm + gamma_{n+1} abs_norm)``: the exact operator bound
    ``norm`` of the computed weight, the backward error of each length-``n`` dot product and
    the bias add (``abs_norm`` bounds ``|| |W| ||``), then the output roundings
    (:func:`output_factor`).

    Args:
        norm: a float64 bound of ``||W||`` (of the weight in ``dtype``).
        abs_norm: a float64 bound of the entrywise absolute value's norm ``|| |W| ||``.
        n: the reduction length (inputs per output: ``in_features``, or
            ``in_channels / groups * kh * kw`` for a convolution).
        dtype, device: where the layer computes.
        conv: the product is a convolution (cuDNN's TF32 flag applies) rather than a matmul.

    Returns:
        The rounded bound, a float at least ``norm``.

    Example:
        >>> import torch
        >>> from wgan_lip.layers._rounding import linear_rounding
        >>> linear_rounding(1.0, 1.0, 16, torch.float64) - 1.0 < 1e-14
        True
        >>> 1e-6 < linear_rounding(1.0, 1.0, 16, torch.float32) - 1.0 < 1e-5
        True
    """
    return output_factor(dtype) * (norm + reduction_gamma(n + 1, dtype, device, conv) * abs_norm)


def conv_abs_norm(kernel: torch.Tensor, groups: int = 1) -> float:
    """``|| |conv_K| ||``: the norm of the convolution by ``|K|``, any stride, padding, size.

    A nonnegative kernel's transfer matrices are entrywise at most their value at frequency
    0 in modulus, so the supremum is the norm of the tap-summed matrix ``sum_taps |K|`` (per
    group: the blocks act on disjoint channels); zero padding and strides select a subset of
    the circular convolution's rows and columns, which cannot increase it.

    Example:
        >>> import torch
        >>> from wgan_lip.layers._rounding import conv_abs_norm
        >>> conv_abs_norm(torch.tensor([1.0, -1.0]).reshape(1, 1, 1, 2))
        2.0
    """

    k = kernel.detach().to(torch.float64).abs().sum((-2, -1))  # (out, in / groups)
    per_group = k.shape[0] // groups
    return max(matrix_norm2(k[g * per_group : (g + 1) * per_group]) for g in range(groups))


def fft_eta(n: int, u: float) -> float:
    """Normwise relative error of a length-``n`` FFT (forward or inverse, real or complex).

    Higham Thm 24.2: ``log2(n) eta / (1 - log2(n) eta)`` with ``eta = mu + gamma_4 (sqrt 2 +
    mu)`` per radix-2 stage and ``mu`` the twiddle factors' error. PocketFFT also uses radix
    3, 4, 5, 7, 11 passes and Bluestein's algorithm (two FFTs of a padded length and chirp
    products) for large prime factors, so we charge ``24`` roundings per doubling of
    ``2 n``: at least three times the radix-2 count, conservative for every plan.

    Example:
        >>> from wgan_lip.layers._rounding import fft_eta
        >>> fft_eta(1, 2.0**-53) > 0, fft_eta(64, 2.0**-24) < 1e-4
        (True, True)
    """
    stages = math.ceil(math.log2(2 * max(n, 1)))
    return gamma(24 * stages, u)
