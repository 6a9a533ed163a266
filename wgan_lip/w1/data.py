"""Two sample sources with a seeded train / monitor / held-out split, as a LightningDataModule.

* **train**: what the critic is fitted on; batches of P and Q drawn independently (the two
  sides may have different sizes), reshuffled every pass.
* **monitor**: a slice of the training portion the optimizer never sees, used only to detect
  the plateau that stops training (the ``val`` loop). Small problems monitor on the training
  samples instead.
* **held-out** (``holdout`` fraction of each side): touched once, after training, to give the
  reported value and its confidence interval (the ``test`` loop).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..data.sources import Samples, load_pair
from ..errors import InputError

MIN_MONITOR_TRAIN = 200  # per side; below this, plateau detection uses the training samples


class PairBatches(IterableDataset):
    """``length`` batches ``(x_p, x_q)`` sampled without replacement within each pass."""

    def __init__(
        self, xp: torch.Tensor, xq: torch.Tensor, batch_size: int, length: int, seed: int
    ) -> None:
        self.xp, self.xq = xp, xq
        self.batch_size, self.length = batch_size, length
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.length

    def _indices(self, n: int) -> Iterator[torch.Tensor]:
        b = min(self.batch_size, n)
        while True:
            perm = torch.randperm(n, generator=self.gen)
            for start in range(0, n - b + 1, b):
                yield perm[start : start + b]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ip, iq = self._indices(len(self.xp)), self._indices(len(self.xq))
        for _ in range(self.length):
            yield self.xp[next(ip)], self.xq[next(iq)]


class SideChunks(IterableDataset):
    """All of P then all of Q in chunks, each tagged with its side (0 = P, 1 = Q)."""

    def __init__(self, xp: torch.Tensor, xq: torch.Tensor, chunk: int) -> None:
        self.xp, self.xq, self.chunk = xp, xq, chunk

    def __len__(self) -> int:
        return -(-len(self.xp) // self.chunk) - (-len(self.xq) // self.chunk)

    def __iter__(self):
        for side, x in ((0, self.xp), (1, self.xq)):
            for start in range(0, len(x), self.chunk):
                yield x[start : start + self.chunk], torch.tensor(side)


@dataclass(frozen=True)
class Split:
    """Index sets of one side: ``fit`` (trained on), ``monitor``, ``holdout``."""

    fit: torch.Tensor
    monitor: torch.Tensor
    holdout: torch.Tensor


def split_indices(n: int, holdout: float, monitor: float, seed: int, side: str) -> Split:
    """Seeded random split of ``range(n)``; refuses splits that leave a part too small."""
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"holdout must be in [0, 1), got {holdout}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_hold = round(holdout * n)
    if holdout > 0 and n_hold < 2:
        raise InputError(
            f"{side}: holdout={holdout} of {n} samples leaves {n_hold} held out; "
            "need at least 2 (use more samples, a larger holdout, or holdout=0)"
        )
    if n - n_hold < 2:
        raise InputError(f"{side}: holdout={holdout} leaves fewer than 2 training samples")
    hold, train = perm[:n_hold], perm[n_hold:]
    if n_hold == 0:  # in-sample mode: fit, monitor and evaluate on every sample
        return Split(train, train, train)
    n_mon = round(monitor * len(train))
    if len(train) - n_mon >= MIN_MONITOR_TRAIN and n_mon >= 2:
        return Split(train[n_mon:], train[:n_mon], hold)
    return Split(train, train, hold)


class TwoSampleDataModule(L.LightningDataModule):
    """P and Q (anything :func:`wgan_lip.data.sources.load_samples` reads) split by ``seed``.

    Args:
        p, q: sample sources: arrays, tensors, file paths, image folders, dataset names.
        data_root: where named datasets live (default ``$WGAN_LIP_DATA``).
        holdout: fraction of each side held out for the final estimate (0: evaluate on
            the training samples).
        monitor: fraction of the training portion kept aside to detect the plateau.
        batch_size: samples per side per step.
        eval_every: training steps between two plateau checks (one "epoch").
        seed: fixes the split and the batch order.
    """

    def __init__(
        self,
        p,
        q,
        *,
        data_root: str | None = None,
        holdout: float = 0.2,
        monitor: float = 0.1,
        batch_size: int = 512,
        eval_every: int = 100,
        eval_batch_size: int = 8192,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_every < 1:
            raise InputError("batch_size and eval_every must be positive")
        self.p_source, self.q_source = p, q
        self.data_root = data_root if data_root is not None else os.environ.get("WGAN_LIP_DATA")
        self.holdout, self.monitor = holdout, monitor
        self.batch_size, self.eval_every = batch_size, eval_every
        self.eval_batch_size, self.seed = eval_batch_size, seed
        self.p: Samples | None = None
        self.q: Samples | None = None

    def load(self) -> None:
        """Read both sources and split them (idempotent; called by ``setup``)."""
        if self.p is not None:
            return
        self.p, self.q = load_pair(self.p_source, self.q_source, data_root=self.data_root)
        self.split_p = split_indices(self.p.n, self.holdout, self.monitor, self.seed, "P")
        self.split_q = split_indices(self.q.n, self.holdout, self.monitor, self.seed + 1, "Q")

    def setup(self, stage: str | None = None) -> None:
        self.load()

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.load()
        return self.p.event_shape

    def part(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_p, x_q)`` of ``"fit"``, ``"monitor"`` or ``"holdout"``."""
        self.load()
        return (
            self.p.data[getattr(self.split_p, which)],
            self.q.data[getattr(self.split_q, which)],
        )

    def train_dataloader(self) -> DataLoader:
        # Built once per fit (Lightning does not reload it): the generator runs on across
        # "epochs" (one epoch = eval_every steps), so every pass draws fresh batches.
        ds = PairBatches(*self.part("fit"), self.batch_size, self.eval_every, self.seed)
        return DataLoader(ds, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SideChunks(*self.part("monitor"), self.eval_batch_size), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(SideChunks(*self.part("holdout"), self.eval_batch_size), batch_size=None)


class KnownW1DataModule(TwoSampleDataModule):
    """A synthetic pair with exact W1 (:mod:`wgan_lip.data.synthetic`), for configs.

    ``problem`` is ``translation`` (``shift``), ``sphere`` (``radius``) or ``gaussian_scale``
    (``scale_p``, ``scale_q``); ``n`` samples per side in ``dim`` dimensions.
    """

    def __init__(
        self,
        problem: str = "translation",
        dim: int = 2,
        n: int = 5000,
        shift: float = 1.0,
        radius: float = 1.0,
        scale_p: float = 1.0,
        scale_q: float = 2.0,
        holdout: float = 0.2,
        monitor: float = 0.1,
        batch_size: int = 512,
        eval_every: int = 100,
        seed: int = 0,
    ) -> None:
        from ..data.synthetic import GaussianScale, PointVsSphere, Translation

        makers = {
            "translation": lambda: Translation(dim, shift),
            "sphere": lambda: PointVsSphere(dim, radius),
            "gaussian_scale": lambda: GaussianScale(dim, scale_p, scale_q),
        }
        if problem not in makers:
            raise InputError(f"unknown problem {problem!r}; use {', '.join(makers)}")
        self.problem = makers[problem]()
        super().__init__(
            self.problem.sample_p(n, seed), self.problem.sample_q(n, seed), holdout=holdout,
            monitor=monitor, batch_size=batch_size, eval_every=eval_every, seed=seed,
        )  # fmt: skip
