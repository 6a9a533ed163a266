"""The Kantorovich-Rubinstein objective, one definition shared by W1 estimation and WGANs.

Sign convention (GUIDE §3): the critic ``f`` maximizes ``E_P f - E_Q f``; the reported
dual value is that difference (positive when ``f`` separates P above Q) and the loss
minimized is its negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def kr_dual(f_p: torch.Tensor, f_q: torch.Tensor) -> torch.Tensor:
    """``mean f(P) - mean f(Q)``: the Kantorovich-Rubinstein dual value of the scores.

    Args:
        f_p: the critic's scores on samples of P, any shape (all entries are averaged).
        f_q: the critic's scores on samples of Q, any shape; its size may differ from
            ``f_p``'s.

    Returns:
        A 0-d tensor, differentiable through both scores.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import kr_dual
        >>> kr_dual(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0, 1.0]))
        tensor(2.)
    """
    return f_p.mean() - f_q.mean()


def global_kr_dual(f_p: torch.Tensor, f_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The KR dual value over the *global* batch when each process holds part of it.

    Returns ``(objective, value)``. ``value`` (detached) is ``mean f(P) - mean f(Q)`` over
    the samples of every process, however unevenly P and Q are split among them (a process
    may even hold no sample of one side). ``objective`` is what this process maximizes:
    ``world * (sum_local f(P) / N_P - sum_local f(Q) / N_Q)`` with the global counts
    ``N_P``, ``N_Q``; DDP averages gradients over the ``world`` processes, so the averaged
    gradient is exactly the gradient of the global dual value. With one process both are
    ``kr_dual(f_p, f_q)``. Scores of shape ``(n, K)`` (a family of ``K`` critics) give ``K``
    values and the sum of the ``K`` objectives (independent parameters: each critic gets
    the gradient of its own objective).

    Args:
        f_p: this process's scores on samples of P, ``(n_p,)`` or ``(n_p, K)``.
        f_q: this process's scores on samples of Q, ``(n_q,)`` or ``(n_q, K)``.

    Returns:
        ``(objective, value)``: ``objective`` a 0-d tensor to maximize (differentiable),
        ``value`` the detached global dual value, 0-d or ``(K,)``, in ``f_p``'s dtype.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import global_kr_dual
        >>> global_kr_dual(torch.tensor([2.0, 4.0]), torch.tensor([1.0]))  # one process
        (tensor(2.), tensor(2.))
        >>> f_p, f_q = torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.zeros(3, 2)
        >>> global_kr_dual(f_p, f_q)[1]  # a family of K = 2 critics
        tensor([2., 0.])
    """
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        dual = f_p.mean(0) - f_q.mean(0)
        return dual.sum(), dual.detach()
    world = dist.get_world_size()
    sum_p, sum_q = f_p.sum(0), f_q.sum(0)  # per critic when the scores are (n, K)
    k = sum_p.numel()
    counts = torch.tensor(
        [float(len(f_p)), float(len(f_q))], dtype=torch.float64, device=f_p.device
    )
    # one all-reduce per step: the counts and the (detached) sums of both sides
    totals = torch.cat(
        [counts, sum_p.detach().double().reshape(-1), sum_q.detach().double().reshape(-1)]
    )
    dist.all_reduce(totals)
    n_p, n_q = totals[0], totals[1]
    objective = (sum_p / n_p.to(f_p.dtype) - sum_q / n_q.to(f_q.dtype)).sum()
    value = (totals[2 : 2 + k] / n_p - totals[2 + k :] / n_q).to(f_p.dtype).reshape(sum_p.shape)
    return world * objective, value


def kr_loss(f_p: torch.Tensor, f_q: torch.Tensor) -> torch.Tensor:
    """The loss a critic minimizes: ``-(mean f(P) - mean f(Q))``.

    Args:
        f_p: the critic's scores on samples of P, any shape.
        f_q: the critic's scores on samples of Q, any shape.

    Returns:
        A 0-d tensor, the negated :func:`kr_dual`.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import kr_loss
        >>> kr_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0]))
        tensor(-2.)
    """
    return -kr_dual(f_p, f_q)


@dataclass
class DualStats:
    """Streaming sums of a critic's scores on P and Q, in float64.

    ``update`` takes scores batch by batch; ``value`` is the dual value, ``stderr`` its
    standard error under independent samples (``sqrt(var_P/n_P + var_Q/n_Q)``), so
    ``value +- 1.96 stderr`` is a 95% interval for the critic's population dual value.

    Args:
        n_p: number of scores of P seen so far.
        sum_p: their sum.
        sq_p: the sum of their squares.
        n_q: number of scores of Q seen so far.
        sum_q: their sum.
        sq_q: the sum of their squares.

    Raises:
        ValueError: ``update`` with a ``side`` other than ``"p"`` or ``"q"``; ``value``
            (hence ``interval``) before both sides have a score.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import DualStats
        >>> stats = DualStats()
        >>> stats.update(torch.tensor([1.0, 3.0]), "p")
        >>> stats.update(torch.tensor([0.0, 0.0, 0.0]), "q")
        >>> stats.value, stats.n_p, stats.n_q
        (2.0, 2, 3)
        >>> [round(v, 4) for v in stats.interval(scale=2.0)]  # divided by a bound of 2
        [1.0, 0.02, 1.98]
    """

    n_p: int = 0
    sum_p: float = 0.0
    sq_p: float = 0.0
    n_q: int = 0
    sum_q: float = 0.0
    sq_q: float = 0.0

    def update(self, scores: torch.Tensor, side: str) -> None:
        s = scores.detach().to(torch.float64).reshape(-1)
        n, total, sq = len(s), float(s.sum()), float((s * s).sum())
        if side == "p":
            self.n_p, self.sum_p, self.sq_p = self.n_p + n, self.sum_p + total, self.sq_p + sq
        elif side == "q":
            self.n_q, self.sum_q, self.sq_q = self.n_q + n, self.sum_q + total, self.sq_q + sq
        else:
            raise ValueError(f"side must be 'p' or 'q', got {side!r}")

    def as_tensor(self) -> torch.Tensor:
        """The six sums as one float64 tensor (for all-reduce across processes)."""
        return torch.tensor(
            [self.n_p, self.sum_p, self.sq_p, self.n_q, self.sum_q, self.sq_q],
            dtype=torch.float64,
        )

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> DualStats:
        v = [float(x) for x in t.tolist()]
        return cls(int(v[0]), v[1], v[2], int(v[3]), v[4], v[5])

    @staticmethod
    def _mean_var(n: int, total: float, sq: float) -> tuple[float, float]:
        mean = total / n
        var = max(sq / n - mean * mean, 0.0) * n / max(n - 1, 1)
        return mean, var

    @property
    def value(self) -> float:
        if not self.n_p or not self.n_q:
            raise ValueError("DualStats: no scores for P or Q yet")
        return self.sum_p / self.n_p - self.sum_q / self.n_q

    @property
    def stderr(self) -> float:
        if not self.n_p or not self.n_q:
            raise ValueError("DualStats: no scores for P or Q yet")
        _, vp = self._mean_var(self.n_p, self.sum_p, self.sq_p)
        _, vq = self._mean_var(self.n_q, self.sum_q, self.sq_q)
        return math.sqrt(vp / self.n_p + vq / self.n_q)

    def interval(self, scale: float = 1.0) -> tuple[float, float, float]:
        """``(value, ci_low, ci_high)`` divided by ``scale`` (the Lipschitz bound)."""
        v, h = self.value / scale, Z95 * self.stderr / scale
        return v, v - h, v + h
