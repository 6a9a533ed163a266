"""Exact and sliced W1 between empirical measures, through POT with safe settings.

``exact_w1`` is the ground truth the critic estimates are checked against: it uses the
Euclidean ground cost (``ot.dist(..., metric="euclidean")``; POT's default is the *squared*
distance), the exact 1-D solver in one dimension, a large ``numItermax``, and it raises
when the network-simplex solver reports anything but an optimal solution. It refuses,
before allocating, problems whose cost matrix would exceed ``max_bytes``.
"""

from __future__ import annotations

import numpy as np
import ot
import torch

from .errors import InputError, TooLargeError

DEFAULT_MAX_BYTES = 4 * 2**30


def as_samples(x, name: str = "samples") -> np.ndarray:
    """``x`` (numpy array, torch tensor or nested list, any real dtype) as float64 ``(n, d)``.

    A 1-D input is n samples in one dimension. A tensor is detached and copied to the CPU; a
    float64 array is returned without a copy.

    Args:
        x: the samples, ``(n, d)`` or ``(n,)``, of a numeric dtype (integers are converted;
            ``bool`` is refused).
        name: what to call ``x`` in error messages.

    Returns:
        A float64 numpy array ``(n, d)`` (``(n, 1)`` for a 1-D input) with finite entries.

    Raises:
        InputError: a non-numeric dtype, a rank other than 1 or 2, no samples, or rows with
            NaN or Inf (the message counts them).

    Example:
        >>> import torch
        >>> from wgan_lip.ot import as_samples
        >>> a = as_samples(torch.arange(3, dtype=torch.float32))
        >>> a.shape, a.dtype
        ((3, 1), dtype('float64'))
        >>> as_samples([[0.0, float("nan")], [1.0, 2.0]], name="P")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: P: 1 of 2 rows contain NaN or Inf
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name}: expected numeric samples, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(
            f"{name}: expected shape (n, d) or (n,), got {arr.shape}; flatten images first"
        )
    if arr.shape[0] < 1:
        raise InputError(f"{name}: no samples")
    bad = int((~np.isfinite(arr)).any(axis=1).sum())
    if bad:
        raise InputError(f"{name}: {bad} of {arr.shape[0]} rows contain NaN or Inf")
    return arr


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float64)
    if w.shape != (n,):
        raise InputError(f"{name}: expected {n} weights, got shape {w.shape}")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise InputError(f"{name}: weights must be finite, non-negative, with a positive sum")
    return w / w.sum()


def _exact_rows(x, name: str) -> torch.Tensor:
    """``x`` as a 2-D CPU tensor in a dtype that holds it exactly (float32/float64/int64)."""
    from .data.precision import exact_samples

    t = exact_samples(x, name)
    return t[:, None] if t.dim() == 1 else t


def _check_pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    """Both samples as float64 ``(n, d)``, centred by one common offset computed and
    subtracted in their own precision (int64 data exactly): distances, hence W1, are
    unchanged, and no cancellation at a large offset (1e8, a timestamp) eats them."""
    from .data.precision import centred, common_offset

    tp, tq = _exact_rows(p, "P"), _exact_rows(q, "Q")
    p, q = as_samples(tp, "P"), as_samples(tq, "Q")  # shape and finiteness checks
    if p.shape[1] != q.shape[1]:
        raise InputError(f"dimension mismatch: P has shape {p.shape}, Q has shape {q.shape}")
    offset = common_offset([tp, tq])
    return centred(tp, offset).numpy(), centred(tq, offset).numpy()


COST_BLOCK_ROWS = 1024  # rows of P per block of the cost matrix (bounds the temporaries)
COST_REL_ERROR = 1e-10  # entries the fast expansion cannot give to this accuracy: recomputed


def euclidean_cost(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Euclidean distances ``|p_i - q_j|``, accurate to about 1e-10 of each entry.

    The fast way, ``|x|^2 - 2 x.y + |y|^2`` with a matrix product (POT's ``ot.dist``),
    cancels when a distance is small compared with the points' norms: far from the origin
    (which centring removes) and for near-duplicate points (which it does not). Its error
    is at most ``(d + 3) eps (|x|^2 + |y|^2)`` (a dot product of length ``d`` and three more
    roundings); every entry where that could exceed ``COST_REL_ERROR`` of the distance is
    recomputed from the differences themselves. Small problems and those with at most 32
    coordinates take the differences directly (as fast there).

    Args:
        p: ``(n, d)`` float64.
        q: ``(m, d)`` float64.

    Returns:
        The ``(n, m)`` float64 cost matrix.

    Example:
        >>> import numpy as np
        >>> from wgan_lip.ot import euclidean_cost
        >>> euclidean_cost(np.array([[1e8, 0.0]]), np.array([[1e8 + 0.5, 0.0]]))
        array([[0.5]])
    """
    from scipy.spatial.distance import cdist

    n, d = p.shape
    m = len(q)
    if d <= 32 or n * m * d <= 2**22:  # few coordinates: the differences are cheapest
        return cdist(p, q, metric="euclidean")
    eps = np.finfo(np.float64).eps
    qq = np.einsum("ij,ij->i", q, q)
    out = np.empty((n, m))
    for s in range(0, n, COST_BLOCK_ROWS):
        pb = p[s : s + COST_BLOCK_ROWS]
        pp = np.einsum("ij,ij->i", pb, pb)
        norms = pp[:, None] + qq[None, :]
        sq = norms - 2.0 * (pb @ q.T)
        # |d_hat - d| <= err / (2 d): recompute where that is above COST_REL_ERROR * d
        unsure = sq * (2 * COST_REL_ERROR) <= (d + 3) * eps * norms
        np.sqrt(np.maximum(sq, 0.0, out=sq), out=sq)
        i, j = np.nonzero(unsure)
        for k in range(0, len(i), 2**20):  # in pieces: a block may be all near-duplicates
            ii, jj = i[k : k + 2**20], j[k : k + 2**20]
            sq[ii, jj] = np.linalg.norm(pb[ii] - q[jj], axis=1)
        out[s : s + len(pb)] = sq
    return out


EXACT_BYTES_PER_PAIR = 40  # measured: POT 0.9.7 peaked 4.0 GiB above baseline at 10^4 x 10^4


def exact_w1_bytes(n_p: int, n_q: int) -> int:
    """Memory the exact solver needs, about 40 bytes per pair of samples.

    The 40 bytes cover the float64 cost matrix, its temporaries, and the network simplex's
    arc arrays. (The process peaked at 4.8 GiB, 0.8 of them the interpreter and torch, on
    10^4 x 10^4; see bench_scale.) :func:`exact_w1` refuses a problem above its
    ``max_bytes``; the 1-D solver it uses for ``d = 1`` needs far less and is not checked.

    Args:
        n_p: number of samples of P.
        n_q: number of samples of Q.

    Returns:
        The estimate in bytes, ``40 * n_p * n_q``.

    Example:
        >>> from wgan_lip.ot import exact_w1_bytes
        >>> exact_w1_bytes(10_000, 10_000) / 2**30  # GiB
        3.725290298461914
    """
    return EXACT_BYTES_PER_PAIR * n_p * n_q


def exact_w1(
    p,
    q,
    p_weights=None,
    q_weights=None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    num_itermax: int = 100_000_000,
) -> float:
    """Exact W1 between the empirical measures of ``p`` and ``q`` (Euclidean ground cost).

    Args:
        p, q: samples ``(n, d)`` and ``(m, d)`` (numpy or torch, any float dtype).
        p_weights, q_weights: optional sample weights (normalized here); uniform if None.
        max_bytes: refuse, before allocating, problems needing more memory than this.
        num_itermax: network-simplex iteration cap; hitting it is an error, never a
            silently truncated value.

    Returns:
        The optimal transport cost, a float.

    Raises:
        InputError: mismatched dimensions, NaN/Inf entries, empty or bad weights.
        TooLargeError: the problem needs more than ``max_bytes``.
        RuntimeError: the network-simplex solver did not reach an optimum.

    Example:
        >>> import numpy as np
        >>> from wgan_lip import exact_w1
        >>> p = np.zeros((3, 2))
        >>> round(exact_w1(p, p + [3.0, 4.0]), 6)  # every point moves by (3, 4)
        5.0
        >>> round(exact_w1([[0.0], [1.0]], [[0.0], [3.0]]), 6)  # 1-D: half of |1 - 3|
        1.0
    """
    p, q = _check_pair(p, q)
    a = _weights(p_weights, len(p), "p_weights")
    b = _weights(q_weights, len(q), "q_weights")
    if p.shape[1] == 1:  # exact 1-D solver: integral of |F - G|
        return float(ot.wasserstein_1d(p[:, 0], q[:, 0], a, b, p=1))
    need = exact_w1_bytes(len(p), len(q))
    if need > max_bytes:
        raise TooLargeError(
            f"exact W1 for {len(p):,} x {len(q):,} samples needs about {need / 2**30:.1f} GiB "
            f"(limit {max_bytes / 2**30:.1f} GiB); subsample, or use estimate_w1 / sliced_w1"
        )
    cost = euclidean_cost(p, q)
    value, log = ot.emd2(a, b, cost, numItermax=num_itermax, log=True)
    if log.get("warning") is not None or log.get("result_code") != 1:
        raise RuntimeError(
            f"exact W1: the network-simplex solver did not reach an optimum "
            f"(result_code={log.get('result_code')}, warning={log.get('warning')!r}); "
            "raise num_itermax or subsample"
        )
    return float(value)


SLICED_BATCH = 50  # projections at a time in sliced_w1


def sliced_w1(
    p, q, p_weights=None, q_weights=None, *, n_projections: int = 500, seed: int = 0
) -> float:
    """Sliced W1: the mean over random directions of the 1-D W1 of the projections.

    Each projection is 1-Lipschitz, so every term, and the mean, is a lower bound of W1.
    Directions are processed ``SLICED_BATCH`` at a time, which bounds the memory.

    Args:
        p, q: samples ``(n, d)`` and ``(m, d)`` (numpy or torch).
        p_weights, q_weights: optional sample weights; uniform if None.
        n_projections: random directions (uniform on the sphere).
        seed: seed of the directions.

    Returns:
        The sliced W1, a float at most ``exact_w1(p, q)``.

    Raises:
        InputError: mismatched dimensions, NaN/Inf entries, empty or bad weights, or
            ``n_projections`` below 1.

    Example:
        >>> import numpy as np
        >>> from wgan_lip import exact_w1, sliced_w1
        >>> p = np.random.default_rng(0).normal(size=(300, 3))
        >>> q = p + [1.0, 0.0, 0.0]
        >>> sliced_w1(p, q) <= exact_w1(p, q) + 1e-9
        True
    """
    if not (n_projections >= 1 and int(n_projections) == n_projections):
        raise InputError(f"n_projections must be a positive integer, got {n_projections}")
    p, q = _check_pair(p, q)
    a = _weights(p_weights, len(p), "p_weights")
    b = _weights(q_weights, len(q), "q_weights")
    if p.shape[1] == 1:
        return float(ot.wasserstein_1d(p[:, 0], q[:, 0], a, b, p=1))
    directions = np.random.default_rng(seed).standard_normal((p.shape[1], n_projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    total = 0.0
    for k in range(0, n_projections, SLICED_BATCH):
        batch = directions[:, k : k + SLICED_BATCH]
        mean = ot.sliced_wasserstein_distance(p, q, a, b, p=1, projections=batch)
        total += float(mean) * batch.shape[1]
    return total / n_projections
