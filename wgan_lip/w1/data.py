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

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..data.rows import Rows, TensorRows
from ..data.sources import Samples, load_pair
from ..errors import InputError

NORMALIZATION_ROWS = 10_000  # per side: rows the critic's input centring/scale is fitted on
MAX_MONITOR_ROWS = 20_000  # per side: enough to see a plateau, cheap to score every check
MIN_MONITOR_TRAIN = 200  # per side; below this, plateau detection uses the training samples


WINDOW_BYTES = 32 * 2**20  # streamed sources: rows read per shuffling window, per side
BLOCK_ROWS = 256  # streamed sources: consecutive rows read together


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (``(0, 1)`` outside DDP).

    Returns:
        ``(rank, world_size)`` of the initialized ``torch.distributed`` process group, or
        ``(0, 1)`` when there is none.

    Example:
        >>> from wgan_lip.w1.data import rank_and_world
        >>> rank_and_world()  # a single process
        (0, 1)
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shuffled_batches(
    rows: Rows,
    index: torch.Tensor,
    batch_size: int,
    gen: torch.Generator,
    rank: int = 0,
    world: int = 1,
    window_rows: int | None = None,
) -> Iterator[torch.Tensor]:
    """Endless batches of ``rows[index]``, each pass over ``index`` in a new random order.

    Every process draws the same *global* batch of ``batch_size`` rows (same generator)
    and reads only its own share, ``tensor_split(batch, world)[rank]``, so the processes
    together see exactly the batch one process would.

    In-memory rows are shuffled as one window (sampling without replacement within a
    pass). Streamed rows are read in windows of about ``WINDOW_BYTES``: the index is cut
    into blocks of ``BLOCK_ROWS`` neighbouring rows, the blocks are visited in random
    order, and the rows of each window are shuffled together; reads stay sequential and
    memory bounded, and batches mix dozens of places in the file. Every global batch has
    exactly ``min(batch_size, len(index))`` rows: the rows left over at the end of a window
    open the next one.

    Args:
        rows: the side's rows.
        index: the row indices to draw from (e.g. the ``fit`` part of a :class:`Split`);
            at least one.
        batch_size: rows per global batch (capped at ``len(index)``).
        gen: the generator of the order; advanced as batches are drawn.
        rank: this process's rank.
        world: the number of processes.
        window_rows: rows per shuffling window; ``None`` picks about ``WINDOW_BYTES`` of
            float32 rows for streamed sources and the whole index in memory.

    Returns:
        An endless iterator of float32 batches ``(share, *rows.event_shape)``, ``share``
        being this process's part of the global batch.

    Raises:
        ValueError: ``batch_size`` or ``window_rows`` below 1, or an empty ``index``
            (when called, not at the first batch).

    Example:
        >>> import itertools
        >>> import torch
        >>> from wgan_lip.data.rows import TensorRows
        >>> from wgan_lip.w1.data import shuffled_batches
        >>> rows = TensorRows(torch.arange(10.0)[:, None])
        >>> batches = shuffled_batches(rows, torch.arange(10), 5, torch.Generator().manual_seed(0))
        >>> first_pass = torch.cat(list(itertools.islice(batches, 2)))
        >>> first_pass.shape, sorted(first_pass.reshape(-1).tolist()) == list(range(10))
        (torch.Size([10, 1]), True)
    """
    if batch_size < 1 or len(index) == 0 or (window_rows is not None and window_rows < 1):
        raise ValueError(
            f"shuffled_batches: needs batch_size >= 1 (got {batch_size}), at least one row "
            f"(got {len(index)}) and window_rows >= 1 (got {window_rows})"
        )
    return _batches(rows, index, batch_size, gen, rank, world, window_rows)


def _batches(
    rows: Rows,
    index: torch.Tensor,
    batch_size: int,
    gen: torch.Generator,
    rank: int,
    world: int,
    window_rows: int | None,
) -> Iterator[torch.Tensor]:
    n = len(index)
    b = min(batch_size, n)
    index = index.sort().values
    if window_rows is None:
        row_bytes = 4 * math.prod(rows.event_shape)
        window_rows = max(b, WINDOW_BYTES // row_bytes) if rows.streamed else n
    block = min(BLOCK_ROWS, n) if window_rows < n else n
    per_window = max(1, window_rows // block)
    while True:
        order = torch.randperm(-(-n // block), generator=gen)
        carry = index[:0]
        for w in range(0, len(order), per_window):
            ids = torch.cat(
                [index[k * block : (k + 1) * block] for k in order[w : w + per_window].tolist()]
            )
            ids = torch.cat([carry, ids[torch.randperm(len(ids), generator=gen)]])
            full = len(ids) // b * b
            mine = [torch.tensor_split(ids[s : s + b], world)[rank] for s in range(0, full, b)]
            if mine:
                data = rows.take(torch.cat(mine))  # one read per window
                yield from torch.split(data, [len(m) for m in mine])
            carry = ids[full:]


class PairBatches(IterableDataset):
    """``length`` batches ``(x_p, x_q)``: rows of P at ``p_index`` and of Q at ``q_index``.

    See :func:`shuffled_batches`; under DDP each process yields its share of every global
    batch (the shares of P and Q may differ in size across processes). The batch streams run
    on across passes: iterating again continues with fresh batches, not a replay.

    Args:
        p: the rows of P (a tensor is wrapped in a ``TensorRows``).
        q: the rows of Q.
        batch_size: rows per side in a global batch.
        length: batches per pass (``len(self)``).
        seed: seed of the batch order.
        p_index: the rows of P to draw from (default: all).
        q_index: the rows of Q to draw from (default: all).

    Example:
        >>> import torch
        >>> from wgan_lip.w1.data import PairBatches
        >>> ds = PairBatches(torch.randn(20, 2), torch.randn(30, 2), batch_size=4, length=3,
        ...                  seed=0)
        >>> [(tuple(xp.shape), tuple(xq.shape)) for xp, xq in ds]
        [((4, 2), (4, 2)), ((4, 2), (4, 2)), ((4, 2), (4, 2))]
    """

    def __init__(
        self,
        p: Rows | torch.Tensor,
        q: Rows | torch.Tensor,
        batch_size: int,
        length: int,
        seed: int,
        p_index: torch.Tensor | None = None,
        q_index: torch.Tensor | None = None,
    ) -> None:
        self.p, self.q = _rows(p), _rows(q)
        self.p_index = p_index if p_index is not None else torch.arange(self.p.n)
        self.q_index = q_index if q_index is not None else torch.arange(self.q.n)
        self.batch_size, self.length = batch_size, length
        self.gen = torch.Generator().manual_seed(seed)
        self._iters = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._iters is None:  # the batch streams run on across passes ("epochs")
            rank, world = rank_and_world()
            self._iters = tuple(
                shuffled_batches(rows, idx, self.batch_size, self.gen, rank, world)
                for rows, idx in ((self.p, self.p_index), (self.q, self.q_index))
            )
        ip, iq = self._iters
        for _ in range(self.length):
            yield next(ip), next(iq)


class SideChunks(IterableDataset):
    """All of P then all of Q (rows at the given indices, in file order) in tagged chunks.

    Each chunk is yielded as ``(rows, side)`` with ``side`` a 0-d tensor (0 = P, 1 = Q).
    With ``shard=True`` (the evaluation loaders) chunk ``i`` goes to process ``i % world``
    under DDP, so the processes share the work and together score every row once (a
    process with no chunk yields one empty chunk); otherwise every row is yielded here.

    Args:
        p: the rows of P (a tensor is wrapped in a ``TensorRows``).
        q: the rows of Q.
        chunk: rows per chunk (at least 1).
        p_index: the rows of P to yield (default: all); sorted here.
        q_index: the rows of Q to yield (default: all); sorted here.
        shard: yield only this process's share under DDP.
        exact: yield float64 rows without float32 rounding (``Rows.take_exact``), for
            certified scoring; float32 (``Rows.take``) otherwise.

    Raises:
        ValueError: ``chunk`` below 1.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.data import SideChunks
        >>> chunks = SideChunks(torch.zeros(5, 2), torch.ones(3, 2), chunk=2)
        >>> len(chunks), [(len(x), int(side)) for x, side in chunks]
        (5, [(2, 0), (2, 0), (1, 0), (2, 1), (1, 1)])
    """

    def __init__(
        self,
        p: Rows | torch.Tensor,
        q: Rows | torch.Tensor,
        chunk: int,
        p_index: torch.Tensor | None = None,
        q_index: torch.Tensor | None = None,
        shard: bool = False,
        exact: bool = False,
    ) -> None:
        if chunk < 1:
            raise ValueError(f"SideChunks: chunk must be at least 1 row, got {chunk}")
        self.p, self.q, self.chunk, self.shard = _rows(p), _rows(q), chunk, shard
        self.exact = exact
        self.p_index = (p_index if p_index is not None else torch.arange(self.p.n)).sort().values
        self.q_index = (q_index if q_index is not None else torch.arange(self.q.n)).sort().values

    def _chunks(self) -> list[tuple[int, int, int]]:
        out = []
        for side, idx in ((0, self.p_index), (1, self.q_index)):
            out += [(side, s, s + self.chunk) for s in range(0, len(idx), self.chunk)]
        rank, world = rank_and_world() if self.shard else (0, 1)
        mine = out[rank::world]
        # A process left without rows (a small split over many processes) still yields one
        # empty chunk: Lightning refuses an empty loader, and the sums it adds are zeros.
        return mine if mine or not self.shard else [(0, 0, 0)]

    def __len__(self) -> int:
        return len(self._chunks())

    def __iter__(self):
        for side, start, stop in self._chunks():
            rows, idx = (self.p, self.p_index) if side == 0 else (self.q, self.q_index)
            read = rows.take_exact if self.exact else rows.take
            yield read(idx[start:stop]), torch.tensor(side)


def _rows(x: Rows | torch.Tensor) -> Rows:
    return TensorRows(x) if isinstance(x, torch.Tensor) else x


@dataclass(frozen=True)
class Split:
    """Index sets of one side: ``fit`` (trained on), ``monitor``, ``holdout``.

    Attributes:
        fit: int64 row indices the critic is trained on.
        monitor: int64 row indices scored to detect the plateau (may be ``fit`` itself).
        holdout: int64 row indices of the final estimate (``fit`` itself in-sample).

    Example:
        >>> from wgan_lip.w1.data import split_indices
        >>> s = split_indices(100, holdout=0.3, monitor=0.1, seed=0, side="P")
        >>> type(s).__name__, len(s.fit), len(s.monitor), len(s.holdout)
        ('Split', 70, 70, 30)
    """

    fit: torch.Tensor
    monitor: torch.Tensor
    holdout: torch.Tensor


def _monitor_split(train: torch.Tensor, hold: torch.Tensor, monitor: float) -> Split:
    """Carve the monitor slice off the (already shuffled) training rows."""
    n_mon = min(round(monitor * len(train)), MAX_MONITOR_ROWS)
    if len(train) - n_mon >= MIN_MONITOR_TRAIN and n_mon >= 2:
        return Split(train[n_mon:], train[:n_mon], hold)
    return Split(train, train, hold)


def _check_parts(n: int, n_hold: int, holdout: float, folds: int, side: str) -> None:
    if (holdout > 0 or folds > 1) and n_hold < 2:
        what = f"{folds} folds" if folds > 1 else f"holdout={holdout}"
        raise InputError(
            f"{side}: {what} of {n} samples leaves {n_hold} held out; "
            "need at least 2 (use more samples, a larger holdout, fewer folds, or holdout=0)"
        )
    if n - n_hold < 2:
        raise InputError(f"{side}: holdout={holdout} leaves fewer than 2 training samples")


def _check_folds(folds: int, fold: int) -> None:
    if folds < 1 or not 0 <= fold < folds:
        raise InputError(
            f"folds must be >= 1 and fold in [0, folds), got folds={folds}, fold={fold}"
        )


def split_indices(
    n: int, holdout: float, monitor: float, seed: int, side: str, folds: int = 1, fold: int = 0
) -> Split:
    """Seeded random split of ``range(n)``; refuses splits that leave a part too small.

    With ``folds > 1`` (cross-fitting) the rows are dealt into ``folds`` random parts of
    (nearly) equal size and part ``fold`` is held out; ``holdout`` is then ignored.

    The held-out part has ``round(holdout * n)`` rows. The monitor part is the first
    ``round(monitor * n_train)`` shuffled training rows (at most 20,000); when that would
    leave fewer than 200 rows to fit on, or take fewer than 2, the monitor part is the
    whole training part. With nothing held out (``holdout=0``, ``folds=1``) every part is
    all of ``range(n)``.

    Args:
        n: number of rows of the side.
        holdout: fraction held out, in ``[0, 1)`` (range checked even when ``folds > 1``).
        monitor: fraction of the training rows kept aside to detect the plateau.
        seed: seed of the permutation.
        side: the side's name in error messages (``"P"`` or ``"Q"``).
        folds: number of cross-fitting parts (1: a plain holdout split).
        fold: the held-out part, in ``[0, folds)``.

    Returns:
        A ``Split`` of int64 index tensors ``fit``, ``monitor`` and ``holdout`` (in random
        order, not sorted).

    Raises:
        InputError: ``holdout`` outside ``[0, 1)``; ``folds < 1`` or ``fold`` outside
            ``[0, folds)``; a held-out part of fewer than 2 rows (when anything is held
            out) or fewer than 2 training rows.

    Example:
        >>> from wgan_lip.w1 import split_indices
        >>> split = split_indices(1000, holdout=0.2, monitor=0.1, seed=0, side="P")
        >>> len(split.fit), len(split.monitor), len(split.holdout)
        (720, 80, 200)
        >>> split = split_indices(10, holdout=0.0, monitor=0.1, seed=0, side="P")
        >>> len(split.fit), len(split.monitor), len(split.holdout)  # in-sample
        (10, 10, 10)
    """
    if not 0.0 <= holdout < 1.0:
        raise InputError(f"holdout must be in [0, 1), got {holdout}")
    _check_folds(folds, fold)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if folds > 1:
        in_fold = torch.zeros(n, dtype=torch.bool)
        in_fold[fold::folds] = True
        hold, train = perm[in_fold], perm[~in_fold]
    else:
        n_hold = round(holdout * n)
        hold, train = perm[:n_hold], perm[n_hold:]
    _check_parts(n, len(hold), holdout, folds, side)
    if len(hold) == 0:  # in-sample mode: fit, monitor and evaluate on every sample
        return Split(train, train, train)
    return _monitor_split(train, hold, monitor)


def split_pair(
    p: Rows,
    q: Rows,
    holdout: float,
    monitor: float,
    seed: int,
    folds: int = 1,
    fold: int = 0,
) -> tuple[Split, Split]:
    """The splits of P and Q: an independent random split of each side.

    Each side's held-out rows are a random subset of that side drawn independently of the
    other side, so they are an independent sample, independent of everything the critic
    was trained on, whatever the data: ties, repeated rows and discrete values included.
    When P and Q share rows (the same file twice, overlapping datasets), a held-out row of
    P may be a training row of Q. The critic was trained to score Q's training rows *low*,
    so such a row can only pull P's held-out mean down (and the same row in Q's held-out
    part up): the reported value is biased towards zero, which is safe for a lower bound,
    and the test keeps its level. ``split_pair(x, x)`` reports a value at or below zero.

    (Any rule that pairs equal rows across P and Q, so that they fall in the same part,
    makes each side's held-out rows depend on the other side's training rows: on discrete
    data their imbalance then follows the training imbalance that the critic learnt, and
    the certificate is false.)

    Args:
        p: the rows of P.
        q: the rows of Q.
        holdout: fraction held out, in ``[0, 1)`` (ignored with ``folds > 1``).
        monitor: fraction of the training rows kept aside to detect the plateau.
        seed: seed of the split (Q uses ``seed + 1``).
        folds: number of cross-fitting parts (1: a plain holdout split).
        fold: the held-out part, in ``[0, folds)``.

    Returns:
        ``(split_p, split_q)``, two :class:`Split`.

    Raises:
        InputError: ``holdout`` outside ``[0, 1)``, bad ``folds``/``fold``, or a part left
            too small (see :func:`split_indices`).

    Example:
        >>> import torch
        >>> from wgan_lip.data.rows import TensorRows
        >>> from wgan_lip.w1.data import split_pair
        >>> x = torch.randn(50, 2)
        >>> sp, sq = split_pair(TensorRows(x), TensorRows(x), holdout=0.2, monitor=0.1, seed=0)
        >>> len(sp.holdout), len(sq.holdout), torch.equal(sp.holdout, sq.holdout)
        (10, 10, False)
    """
    return (
        split_indices(p.n, holdout, monitor, seed, "P", folds, fold),
        split_indices(q.n, holdout, monitor, seed + 1, "Q", folds, fold),
    )


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
        eval_batch_size: rows per chunk when scoring the monitor and held-out parts.
        seed: fixes the split and the batch order.
        folds, fold: cross-fitting: with ``folds > 1`` part ``fold`` of ``folds`` is held
            out (``holdout`` is ignored).

    Nothing is read until :meth:`load` (or ``setup``, ``input_shape``, ``indices``); the
    split's arguments are checked then.

    Raises:
        InputError: ``batch_size`` or ``eval_every`` below 1 (at construction); at
            :meth:`load`, a source that cannot be read, or a split that leaves a part too
            small (see :func:`split_indices`).

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import TwoSampleDataModule
        >>> dm = TwoSampleDataModule(torch.randn(100, 3), torch.randn(50, 3) + 1, seed=0)
        >>> dm.input_shape
        (3,)
        >>> [len(i) for i in dm.indices("holdout")]  # 20% of each side
        [20, 10]
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
        eval_every: int = 50,
        eval_batch_size: int = 8192,
        seed: int = 0,
        folds: int = 1,
        fold: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or eval_every < 1:
            raise InputError("batch_size and eval_every must be positive")
        self.p_source, self.q_source = p, q
        self.data_root = data_root if data_root is not None else os.environ.get("WGAN_LIP_DATA")
        self.holdout, self.monitor = holdout, monitor
        self.batch_size, self.eval_every = batch_size, eval_every
        self.eval_batch_size, self.seed = eval_batch_size, seed
        self.folds, self.fold = folds, fold
        self.p: Samples | None = None
        self.q: Samples | None = None

    def load(self) -> None:
        """Read both sources and split them (idempotent; called by ``setup``)."""
        if self.p is not None:
            return
        self.p, self.q = load_pair(self.p_source, self.q_source, data_root=self.data_root)
        self.use_fold(self.fold)

    def use_fold(self, fold: int) -> None:
        """Hold out part ``fold`` (cross-fitting), keeping the loaded samples."""
        self.fold = fold
        self.split_p, self.split_q = split_pair(
            self.p.rows, self.q.rows, self.holdout, self.monitor, self.seed, self.folds, fold
        )

    def setup(self, stage: str | None = None) -> None:
        self.load()

    @property
    def input_shape(self) -> tuple[int, ...]:
        self.load()
        return self.p.event_shape

    def indices(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Row indices of P and Q in ``"fit"``, ``"monitor"`` or ``"holdout"``."""
        self.load()
        return getattr(self.split_p, which), getattr(self.split_q, which)

    def part(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_p, x_q)`` of ``"fit"``, ``"monitor"`` or ``"holdout"``, read into memory
        (for data that fits; training and evaluation read streamed sources in chunks)."""
        ip, iq = self.indices(which)
        return self.p.take(ip), self.q.take(iq)

    def sample(self, which: str, max_rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """At most ``max_rows`` random rows per side of a part (all of it if smaller)."""
        chunks = self.chunks(which, max_rows=max_rows, seed=seed)
        return self.p.take(chunks.p_index), self.q.take(chunks.q_index)

    def chunks(
        self,
        which: str,
        chunk: int | None = None,
        max_rows: int | None = None,
        seed: int = 0,
        shard: bool = False,
        exact: bool = False,
    ) -> SideChunks:
        """The rows of a part, P then Q, in chunks of ``chunk``; with ``max_rows``, a seeded
        random subset of at most that many rows per side; with ``shard``, only this
        process's share under DDP; with ``exact``, float64 rows without float32 rounding
        (see :class:`SideChunks`)."""
        ip, iq = self.indices(which)
        if max_rows is not None:
            gen = torch.Generator().manual_seed(seed)
            ip, iq = (
                i[torch.randperm(len(i), generator=gen)[:max_rows]] if len(i) > max_rows else i
                for i in (ip, iq)
            )
        return SideChunks(
            self.p.rows, self.q.rows, chunk or self.eval_batch_size, ip, iq, shard, exact
        )

    def train_dataloader(self) -> DataLoader:
        # Built once per fit (Lightning does not reload it): the generator runs on across
        # "epochs" (one epoch = eval_every steps), so every pass draws fresh batches.
        ip, iq = self.indices("fit")
        ds = PairBatches(
            self.p.rows,
            self.q.rows,
            self.batch_size,
            self.eval_every,
            self.seed,
            p_index=ip,
            q_index=iq,
        )
        return DataLoader(ds, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.chunks("monitor", shard=True), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        # float64 rows at the data's precision: the test loop makes the certified numbers
        return DataLoader(self.chunks("holdout", shard=True, exact=True), batch_size=None)


class KnownW1DataModule(TwoSampleDataModule):
    """A synthetic pair with exact W1 (:mod:`wgan_lip.data.synthetic`), for configs.

    ``problem`` is ``translation`` (``shift``), ``sphere`` (``radius``) or ``gaussian_scale``
    (``scale_p``, ``scale_q``); ``n`` samples per side in ``dim`` dimensions.

    Args:
        problem: which :class:`~wgan_lip.data.synthetic.KnownW1` pair:
            :class:`~wgan_lip.data.synthetic.Translation`,
            :class:`~wgan_lip.data.synthetic.PointVsSphere` or
            :class:`~wgan_lip.data.synthetic.GaussianScale`; kept as ``self.problem``
            (its ``w1`` is the exact answer).
        dim: dimension of the samples.
        n: samples drawn per side (once, with ``seed``; fixed for the run).
        shift: ``translation``: the length of the shift (the exact W1).
        radius: ``sphere``: the sphere's radius (the exact W1).
        scale_p, scale_q: ``gaussian_scale``: standard deviations of P and Q.
        holdout, monitor, batch_size, eval_every, seed: as
            :class:`TwoSampleDataModule`.

    Raises:
        InputError: an unknown ``problem``, or a bad option of
            :class:`TwoSampleDataModule`.

    Example:
        >>> from wgan_lip.w1 import KnownW1DataModule
        >>> dm = KnownW1DataModule("translation", dim=2, n=100, shift=3.0)
        >>> dm.problem.w1, dm.input_shape
        (3.0, (2,))
    """

    def __init__(
        self,
        problem: Literal["translation", "sphere", "gaussian_scale"] = "translation",
        dim: int = 2,
        n: int = 5000,
        shift: float = 1.0,
        radius: float = 1.0,
        scale_p: float = 1.0,
        scale_q: float = 2.0,
        holdout: float = 0.2,
        monitor: float = 0.1,
        batch_size: int = 512,
        eval_every: int = 50,
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
            self.problem.sample_p(n, seed),
            self.problem.sample_q(n, seed),
            holdout=holdout,
            monitor=monitor,
            batch_size=batch_size,
            eval_every=eval_every,
            seed=seed,
        )
