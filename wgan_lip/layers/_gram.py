"""Gram matrices of dense and convolutional weights, and the Schur-test bound on them.

AOL and SLL both rest on one lemma (Prach & Lampert 2022, Araujo et al. 2023): for a
symmetric ``G`` and positive weights ``q``, the diagonal matrix ``T`` with
``T_ii = sum_j |G_ij| q_j / q_i`` satisfies ``T - G >= 0`` (positive semidefinite).
For a convolution the Gram operator is itself a convolution whose kernel has ``2k - 1`` taps
per axis; summing ``|G|`` over all its taps bounds every input size and both zero and
circular padding (a principal submatrix, or offsets aliased modulo the input size, can only
lower the row sums).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dense_gram(w: torch.Tensor) -> torch.Tensor:
    """``w^T w`` for ``w`` of shape ``(out, in)``: the ``(in, in)`` Gram of the columns."""
    return w.mT @ w


def conv_gram(kernel: torch.Tensor) -> torch.Tensor:
    """Kernel ``(in, in, 2kh - 1, 2kw - 1)`` of ``conv^T conv`` for a stride-1 convolution
    kernel ``(out, in, kh, kw)``: entry ``[i, j]`` is the full cross-correlation of input
    channel ``i``'s filters with channel ``j``'s, summed over the output channels."""
    kh, kw = kernel.shape[-2:]
    x = kernel.transpose(0, 1)  # (in, out, kh, kw): a batch of `in` images with `out` channels
    return F.conv2d(x, x, padding=(kh - 1, kw - 1))


def abs_row_sums(gram: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_j |G_ij| q_j / q_i`` for a dense ``(n, n)`` or convolutional ``(n, n, h, w)``
    Gram (taps summed); ``q`` positive, all ones when None."""
    a = gram.abs()
    if a.dim() == 4:
        a = a.sum((2, 3))
    if q is None:
        return a.sum(1)
    return (a @ q) / q


def schur_bound(gram: torch.Tensor, q: torch.Tensor | None = None) -> float:
    """A certified bound of the largest eigenvalue of a positive semidefinite ``G`` (dense or a
    Gram kernel), in float64: Schur's test ``max_i sum_j |G_ij| q_j / q_i``, any ``q > 0``."""
    g = gram.detach().to(torch.float64)
    qq = None if q is None else q.detach().to(torch.float64)
    return float(abs_row_sums(g, qq).max())


def perron_schur_bound(gram: torch.Tensor, iters: int = 200) -> float:
    """Schur's test with the best weights, found by power iteration: the Perron vector of
    ``A = |G|`` (taps summed). Any positive weights give a certified bound
    ``max_i (A w)_i / w_i``, so an unconverged ``w`` is only looser, never wrong; converged,
    the bound is the Perron root of ``A``, at most every weighted row sum (1 for an AOL- or
    SLL-normalized weight, whatever weights its construction used)."""
    a = gram.detach().to(torch.float64).abs()
    if a.dim() == 4:
        a = a.sum((2, 3))
    w = torch.ones(a.shape[0], dtype=torch.float64, device=a.device)
    for _ in range(iters):
        w = a @ w
        w = w / w.max().clamp_min(torch.finfo(torch.float64).tiny)
    w = w.clamp_min(1e-12)  # positive weights (a reducible A may leave zeros)
    return float(((a @ w) / w).max())


def matrix_norm2(w: torch.Tensor) -> float:
    """Exact spectral norm (largest singular value) of a matrix, in float64.

    Computed by an SVD of a detached float64 copy (no autograd). For a batch of matrices,
    the largest over the batch.

    Args:
        w: a matrix ``(m, n)`` (or a batch ``(..., m, n)``), any float dtype and device.

    Returns:
        The largest singular value, a Python float.

    Example:
        >>> import torch
        >>> from wgan_lip.layers.lipschitz import matrix_norm2
        >>> matrix_norm2(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        4.0
    """
    return float(torch.linalg.svdvals(w.detach().to(torch.float64)).max())
