"""A two-sample test from held-out critic scores: a p-value for H0: P = Q.

The critic ``f`` is trained (and chosen) on rows that are not held out, so given ``f`` the
held-out rows are independent draws. Under H0 the held-out scores ``f(x_1), ..., f(x_n)``
(from P) and ``f(y_1), ..., f(y_m)`` (from Q) are then i.i.d. from one distribution, hence
exchangeable: every relabelling of which scores are "P" is equally likely. The permutation
p-value ``(1 + #{T_pi >= T}) / (1 + B)`` of the statistic ``T = mean f(P') - mean f(Q')``
over ``B`` random relabellings is therefore valid at every sample size (its probability
of being <= alpha is at most alpha). The test is one-sided because the critic was trained
to make ``T`` large. It is exact, not asymptotic, whatever the critic.
"""

from __future__ import annotations

import math

import torch

PERMUTATIONS = 1999
EXACT_MAX_SCORES = 200_000  # above this many held-out scores: the normal approximation
_PERM_CHUNK = 50


def permutation_p_value(
    scores_p: torch.Tensor,
    scores_q: torch.Tensor,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> float:
    """One-sided permutation p-value of ``mean(scores_p) - mean(scores_q)``.

    With more than ``EXACT_MAX_SCORES`` scores the permutation distribution is replaced by
    its normal limit (mean 0, variance ``s^2 (1/n + 1/m)`` with ``s^2`` the pooled variance
    of all scores), which is accurate at that size.

    Args:
        scores_p: held-out critic scores of P, any shape (flattened), any real dtype.
        scores_q: held-out critic scores of Q.
        permutations: the number ``B`` of random relabellings, at least 1 (the smallest
            attainable p-value is ``1 / (1 + B)``).
        seed: seed of the relabellings (the result is deterministic given it).

    Returns:
        The p-value ``(1 + #{T_pi >= T}) / (1 + B)``, in ``(0, 1]``: small when P's scores
        are larger than Q's.

    Raises:
        ValueError: no scores on one side, NaN or infinite scores, or ``permutations``
            below 1.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.two_sample import permutation_p_value
        >>> g = torch.Generator().manual_seed(0)
        >>> same = permutation_p_value(torch.randn(50, generator=g), torch.randn(50, generator=g),
        ...                            permutations=199)
        >>> shifted = permutation_p_value(torch.randn(50, generator=g) + 2,
        ...                               torch.randn(50, generator=g), permutations=199)
        >>> same > 0.05, shifted  # the smallest p-value 199 relabellings can give
        (True, 0.005)
    """
    a = scores_p.detach().reshape(-1).to(torch.float64).cpu()
    b = scores_q.detach().reshape(-1).to(torch.float64).cpu()
    n, m = len(a), len(b)
    if n < 1 or m < 1:
        raise ValueError("permutation_p_value needs scores on both sides")
    if not (isinstance(permutations, int) and permutations >= 1):
        raise ValueError(f"permutations must be a positive integer, got {permutations}")
    pooled = torch.cat([a, b])
    if not bool(torch.isfinite(pooled).all()):  # NaN would compare as "never exceeds"
        raise ValueError("permutation_p_value: the scores contain NaN or infinite values")
    pooled = pooled - pooled.mean()  # the statistic is shift invariant: better conditioning
    observed = float(pooled[:n].mean() - pooled[n:].mean())
    if n + m > EXACT_MAX_SCORES:
        sd = float(pooled.std()) * math.sqrt(1 / n + 1 / m)
        if sd == 0:
            return 1.0 if observed <= 0 else 0.0
        return 0.5 * math.erfc(observed / sd / math.sqrt(2))
    gen = torch.Generator().manual_seed(seed)
    total = float(pooled.sum())
    exceed = 0
    tol = 1e-12 * (float(pooled.abs().max()) + 1e-300)  # ties within rounding count as >=
    for start in range(0, permutations, _PERM_CHUNK):
        k = min(_PERM_CHUNK, permutations - start)
        idx = torch.argsort(torch.rand(k, n + m, generator=gen), dim=1)[:, :n]
        sum_p = pooled[idx].sum(1)
        stat = sum_p / n - (total - sum_p) / m
        exceed += int((stat >= observed - tol).sum())
    return (1 + exceed) / (1 + permutations)


def combine_fold_p_values(p_values: list[float]) -> float:
    """One p-value from the folds of a cross-fit: ``min(1, K * min p_k)`` (Bonferroni).

    The folds' critics are trained on each other's rows, so their p-values are dependent;
    Bonferroni stays valid under any dependence.

    Args:
        p_values: the folds' p-values, at least one.

    Returns:
        The combined p-value, at most 1; NaN when a fold's p-value is NaN (unknown, never
        silently skipped).

    Raises:
        ValueError: an empty list.

    Example:
        >>> from wgan_lip.w1.two_sample import combine_fold_p_values
        >>> combine_fold_p_values([0.01, 0.2, 0.5])
        0.03
        >>> combine_fold_p_values([0.6, 0.9])
        1.0
    """
    if not p_values:
        raise ValueError("combine_fold_p_values needs at least one p-value")
    if any(math.isnan(p) for p in p_values):
        return math.nan
    return min(1.0, len(p_values) * min(p_values))
