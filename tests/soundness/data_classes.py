"""Generators of the data users feed a W1 tool, one per class, shared by the soundness tests
and ``scripts/bench_soundness.py``.

Every generator returns ``(p, q)`` exactly as a user would pass them (numpy arrays of the
user's dtype, or iterable datasets), drawn from a ``numpy`` generator, so a failing example
can be replayed from its seed. :func:`reference_w1` is the exact W1 of the *original*
values, computed independently of the library's own centring.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import ot
import torch
from scipy.spatial.distance import cdist
from torch.utils.data import IterableDataset


class FiniteStream(IterableDataset):
    """The rows of an array, once per pass, as a torch ``IterableDataset``."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __iter__(self):
        return iter(torch.from_numpy(self.rows))


def large_offset(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """float64 map coordinates / sensor readings: a large offset, a small spread."""
    d = int(rng.integers(1, 4))
    offset = float(rng.choice([1e6, 4.5e6, 1e8, -3e7, 1.7e9]))
    spread = float(rng.choice([0.01, 0.3, 1.0]))
    shift = rng.normal(size=d) * spread * rng.uniform(0, 2)
    p = offset + spread * rng.normal(size=(n, d))
    q = offset + shift + spread * rng.normal(size=(n + int(rng.integers(-5, 6)), d))
    return p, q


def integers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 timestamps and counts: an offset up to 1.7e18, small integer spreads."""
    d = int(rng.integers(1, 3))
    base = int(rng.choice([0, 1_700_000_000, 1_700_000_000_000_000_000]))
    width = int(rng.choice([3, 100, 10_000]))
    p = base + rng.integers(0, width, size=(n, d))
    q = base + rng.integers(0, width, size=(n, d)) + int(rng.integers(0, width // 3 + 1))
    dtype = np.int32 if base == 0 and rng.random() < 0.5 else np.int64
    return p.astype(dtype), q.astype(dtype)


def few_atoms(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Discrete data with ties: rows drawn from a handful of atoms (binary, categorical)."""
    d = int(rng.integers(1, 7))
    k = int(rng.integers(1, 6))
    atoms = rng.integers(0, 3, size=(k, d)).astype(np.float64)
    wp, wq = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
    p = atoms[rng.choice(k, size=n, p=wp)]
    q = atoms[rng.choice(k, size=n, p=wq)]
    return p.astype(np.float32), q.astype(np.float32)


def mixed_scales(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns whose scales run from 1e-6 to 1e6 in one array."""
    d = int(rng.integers(2, 5))
    scales = 10.0 ** rng.uniform(-6, 6, size=d)
    p = rng.normal(size=(n, d)) * scales
    q = (rng.normal(size=(n, d)) + rng.normal(size=d)) * scales
    return p, q


def heavy_tails(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cauchy-like samples: a few rows far out."""
    d = int(rng.integers(1, 3))
    p = rng.standard_t(1.5, size=(n, d))
    q = rng.standard_t(1.5, size=(n, d)) + rng.uniform(0, 1)
    return p, q


def same_data_twice(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The same array passed as P and as Q (W1 = 0)."""
    d = int(rng.integers(1, 4))
    x = rng.normal(size=(n, d)) * float(rng.choice([1.0, 1e-3])) + float(rng.choice([0, 1e8]))
    return x, x.copy()


def finite_streams(rng: np.random.Generator, n: int) -> tuple[FiniteStream, FiniteStream]:
    """Two finite ``IterableDataset`` streams of float64 rows."""
    p, q = large_offset(rng, n)
    return FiniteStream(p), FiniteStream(q)


CLASSES: dict[str, Callable[[np.random.Generator, int], tuple]] = {
    "large_offset": large_offset,
    "integers": integers,
    "few_atoms": few_atoms,
    "mixed_scales": mixed_scales,
    "heavy_tails": heavy_tails,
    "same_data_twice": same_data_twice,
    "finite_streams": finite_streams,
}


def as_array(x) -> np.ndarray:
    """The original values of a generated side as a 2-D array of their own dtype."""
    if isinstance(x, FiniteStream):
        x = x.rows
    x = np.asarray(x)
    return x[:, None] if x.ndim == 1 else x


def reference_w1(p, q) -> float:
    """Exact W1 of the original values: centred on P's first row in their own precision
    (integers in int64), then POT's network simplex on directly computed distances."""
    p, q = as_array(p), as_array(q)
    if p.dtype.kind in "iu":
        base = p[0].astype(np.int64)
        pc, qc = (p.astype(np.int64) - base).astype(np.float64), (q.astype(np.int64) - base)
        qc = qc.astype(np.float64)
    else:
        base = p[0].astype(np.float64)
        pc, qc = p.astype(np.float64) - base, q.astype(np.float64) - base
    a, b = np.full(len(pc), 1 / len(pc)), np.full(len(qc), 1 / len(qc))
    return float(ot.emd2(a, b, cdist(pc, qc), numItermax=100_000_000))


def data_scale(p, q) -> float:
    """Root-mean-square spread of the pooled data around its mean (for tolerances)."""
    x = np.concatenate([as_array(p), as_array(q)]).astype(np.float64)
    x = x - x[0]
    return float(np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean()))
