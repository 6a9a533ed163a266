"""``estimate_w1``: a certified lower bound of W1(P, Q) from a trained 1-Lipschitz critic.

The value reported is ``(mean_P' f - mean_Q' f) / L`` on held-out samples P', Q', where ``L``
is :func:`~wgan_lip.layers.lipschitz_bound` of the trained critic. Since ``f / L`` is
1-Lipschitz, its population dual value is a lower bound of W1(P, Q) (Kantorovich-Rubinstein);
the held-out mean estimates that population value without the optimistic bias of the
training samples, and the 95% interval quantifies its sampling error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import lightning as L
import torch
from torch import nn

from ..critic import OffsetCritic, certifying_copy
from ..errors import InputError
from ..layers import lipschitz_bound
from .callbacks import PlateauSchedule, StepProgress, StopOnInterrupt, TrainTimer
from .critics import CRITICS, RawInputCritic
from .data import SideChunks, TwoSampleDataModule
from .family import DEFAULT_FAMILY, GPU_FAMILY
from .loss import DualStats
from .module import W1Critic
from .two_sample import combine_fold_p_values, permutation_p_value

DEFAULT_MAX_STEPS = 10_000
FULL_BATCH_ROWS = 1024  # per side: up to this many fit rows, every step uses all of them
TRAIN_VALUE_ROWS = 100_000  # per side: the in-sample diagnostic is computed on at most this
PROGRESS_ROWS = 200_000  # score with a progress bar when a part has more rows than this


@dataclass
class W1Estimate:
    """The result of :func:`estimate_w1`.

    ``value``, ``ci_low``, ``ci_high`` are the held-out dual value and its 95% interval,
    divided by ``lipschitz_bound`` for certified critics (raw for the baselines);
    ``train_value`` the same quantity on the samples the critic was trained on (at most
    100,000 of them per side). ``stopped`` says why training ended: ``plateau``,
    ``max_steps``, ``max_time``, ``closed_form`` (a family of closed-form members only:
    nothing to train), or ``interrupted`` (Ctrl-C: the estimate is still certified, from a
    critic trained for less time).
    ``seconds`` is the whole call, ``train_seconds`` the training loop alone.
    ``critic`` maps raw samples (at their own precision: float64, int64) to float64 scores;
    ``(mean critic(P') - mean critic(Q')) / lipschitz_bound`` is a certified dual value on
    any fresh samples.

    With the critic family (the default), ``critic_name`` is the member that won on the
    monitor split and ``monitor_values`` the certified monitor value of every member (the
    last fold's, with cross-fitting). ``p_value`` tests H0: P = Q from the held-out scores
    (:mod:`wgan_lip.w1.two_sample`; NaN with ``holdout=0``). With ``folds > 1`` every
    sample is held out once; ``lipschitz_bound`` is then the largest of the folds' bounds.

    Args:
        value: the reported (held-out) dual value, in the data's units.
        ci_low: lower end of its 95% interval.
        ci_high: upper end of its 95% interval.
        train_value: the same value on (at most 100,000 per side of) the training rows; the
            mean over folds with cross-fitting.
        lipschitz_bound: the certified bound ``L`` of the reported critic.
        n_p: rows of P.
        n_q: rows of Q.
        dim: dimension of one sample (its number of entries).
        steps: training steps, summed over folds.
        train_seconds: seconds of the training loops, summed over folds.
        seconds: seconds of the whole :func:`estimate_w1` call.
        certified: whether the critic is 1-Lipschitz by construction (values divided by
            ``lipschitz_bound``).
        critic_type: the ``critic`` option (``"family"``, ``"groupsort"``, ...).
        holdout: the held-out fraction (``1 / folds`` with cross-fitting).
        n_holdout_p: held-out rows of P scored (0 in-sample).
        n_holdout_q: held-out rows of Q scored (0 in-sample).
        stopped: ``"plateau"``, ``"max_steps"``, ``"max_time"``, ``"closed_form"`` or
            ``"interrupted"``.
        critic: the trained critic (last fold's), raw samples to scores ``(n,)``.
        critic_name: the reported member of a family (else the critic type).
        monitor_values: certified monitor value of each family member (empty for a single
            critic).
        p_value: permutation p-value of H0: P = Q (NaN in-sample).
        folds: folds trained (fewer than asked after a Ctrl-C).
        batch_size: samples per side per step of the last fold.

    Example:
        >>> import torch
        >>> from wgan_lip import estimate_w1
        >>> _ = torch.manual_seed(0)
        >>> p, q = torch.randn(200, 2), torch.randn(200, 2) + 1
        >>> est = estimate_w1(p, q, critic="groupsort", widths=(16,), steps=5, progress=False,
        ...                   accelerator="cpu")
        >>> est.n_holdout_p, est.certified, est.ci_low <= est.value <= est.ci_high
        (40, True, True)
        >>> sorted(est.to_dict())[:4]
        ['batch_size', 'certified', 'ci_high', 'ci_low']
    """

    value: float
    ci_low: float
    ci_high: float
    train_value: float
    lipschitz_bound: float
    n_p: int
    n_q: int
    dim: int
    steps: int
    train_seconds: float
    seconds: float
    certified: bool
    critic_type: str
    holdout: float
    n_holdout_p: int
    n_holdout_q: int
    stopped: str
    critic: nn.Module = field(repr=False, compare=False)
    critic_name: str = ""
    monitor_values: dict = field(default_factory=dict)
    p_value: float = float("nan")
    folds: int = 1
    batch_size: int = 0

    def to_dict(self) -> dict:
        """All fields but the critic module, as JSON-ready Python scalars (a value that does
        not apply, such as the p-value of an in-sample run, is None, not NaN)."""

        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {k: clean(v) for k, v in self.__dict__.items() if k != "critic"}

    def score(self, p, q) -> tuple[float, float, float]:
        """Certified ``(value, ci_low, ci_high)`` of the trained critic on fresh samples
        (arrays or tensors, scored at their own precision)."""
        stats = dual_stats(self.critic, _exact(p, "P"), _exact(q, "Q"))
        return stats.interval(self.lipschitz_bound if self.certified else 1.0)


def _exact(x, name: str) -> torch.Tensor:
    from ..data.precision import exact_samples

    return exact_samples(x, name)


@torch.no_grad()
def dual_stats(
    critic: nn.Module, xp: torch.Tensor, xq: torch.Tensor, batch_size: int = 8192
) -> DualStats:
    """Score ``xp`` and ``xq`` with ``critic`` (eval mode) into :class:`DualStats`.

    The critic's train/eval flag is restored afterwards; inputs are moved to the device of
    the critic's first buffer, so the critic must have one (as every
    :class:`~wgan_lip.critic.RawInputCritic` does).

    Args:
        critic: a module mapping a batch of samples to scores (``n`` entries).
        xp: samples of P, ``(n_p, ...)``.
        xq: samples of Q, ``(n_q, ...)``.
        batch_size: rows scored per forward pass.

    Returns:
        A :class:`~wgan_lip.w1.loss.DualStats` holding the float64 sums of both sides (raw
        scores: not divided by any Lipschitz bound).

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import build_critic, dual_stats
        >>> critic = build_critic("groupsort", (2,), widths=(8,))
        >>> stats = dual_stats(critic, torch.randn(30, 2), torch.randn(20, 2))
        >>> stats.n_p, stats.n_q
        (30, 20)
    """
    return chunk_stats(critic, SideChunks(xp, xq, batch_size))


def chunk_stats(
    critic: nn.Module, chunks: SideChunks, progress: bool = False, label: str = "scoring"
) -> DualStats:
    """Score the rows of :class:`~wgan_lip.w1.data.SideChunks` into :class:`DualStats`.

    The rows are read chunk by chunk, so a part larger than memory is fine; the scores are
    those of :func:`chunk_scores` (raw, not divided by any Lipschitz bound).

    Args:
        critic: a module mapping a chunk of samples to scores; it must have a buffer (its
            first buffer's device is where chunks are sent; without one, ``StopIteration``).
        chunks: the rows of P then Q.
        progress: show a tqdm progress bar on stderr.
        label: the progress bar's description.

    Returns:
        A :class:`~wgan_lip.w1.loss.DualStats` of the scores of both sides.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import build_critic
        >>> from wgan_lip.w1.data import SideChunks
        >>> from wgan_lip.w1.estimate import chunk_stats
        >>> critic = build_critic("groupsort", (2,), widths=(8,))
        >>> stats = chunk_stats(critic, SideChunks(torch.randn(30, 2), torch.randn(20, 2), 8))
        >>> stats.n_p, stats.n_q
        (30, 20)
    """
    return _stats_of(*chunk_scores(critic, chunks, progress, label))


@torch.no_grad()
def chunk_scores(
    critic: nn.Module, chunks: SideChunks, progress: bool = False, label: str = "scoring"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every score of the rows of ``chunks`` as float64 ``(scores_p, scores_q)``.

    The critic runs in eval mode without autograd (its train/eval flag is restored
    afterwards); chunks are moved to the device of its first buffer.

    Args:
        critic: a module mapping a chunk of samples to scores (any shape with one entry per
            row); it must have a buffer (without one, ``StopIteration``).
        chunks: the rows of P then Q (each chunk tagged with its side).
        progress: show a tqdm progress bar on stderr.
        label: the progress bar's description.

    Returns:
        ``(scores_p, scores_q)``: float64 CPU tensors ``(n_p,)`` and ``(n_q,)``, in the order
        of the chunks' (sorted) indices; empty when a side has no rows.

    Example:
        >>> import torch
        >>> from wgan_lip.w1 import build_critic
        >>> from wgan_lip.w1.data import SideChunks
        >>> from wgan_lip.w1.estimate import chunk_scores
        >>> critic = build_critic("groupsort", (2,), widths=(8,))
        >>> sp, sq = chunk_scores(critic, SideChunks(torch.randn(5, 2), torch.randn(3, 2), 2))
        >>> sp.shape, sq.shape, sp.dtype, critic.training
        (torch.Size([5]), torch.Size([3]), torch.float64, True)
    """
    was_training = critic.training
    critic.eval()
    device = next(critic.buffers()).device
    out: tuple[list, list] = ([], [])
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(chunks.p_index) + len(chunks.q_index)
        bar = tqdm(total=total, desc=label, unit="row", unit_scale=True, file=sys.stderr,
                   dynamic_ncols=True, leave=False)  # fmt: skip
    try:
        for x, side in chunks:
            out[int(side)].append(critic(x.to(device)).detach().double().cpu().reshape(-1))
            if bar is not None:
                bar.update(len(x))
    finally:
        critic.train(was_training)
        if bar is not None:
            bar.close()
    empty = torch.zeros(0, dtype=torch.float64)
    return (torch.cat(out[0]) if out[0] else empty, torch.cat(out[1]) if out[1] else empty)


def _stats_of(sp: torch.Tensor, sq: torch.Tensor) -> DualStats:
    stats = DualStats()
    stats.update(sp, "p")
    stats.update(sq, "q")
    return stats


@contextlib.contextmanager
def _fork_safe_threads(trainer: L.Trainer):
    """Forked DDP processes inherit the thread settings but not OpenMP's worker threads: a
    forked process that runs a parallel region with more than one thread can hang. Share
    the cores out before forking (as Lightning does when it is free to) and restore after."""
    launcher = getattr(trainer.strategy, "launcher", None)
    forking = getattr(launcher, "_start_method", None) in ("fork", "forkserver")
    before = torch.get_num_threads()
    if forking:
        torch.set_num_threads(max(1, before // max(1, trainer.num_devices)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's per-run banners and the warnings that do not apply here."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*IterableDataset.*__len__.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # we reduce the evaluation sums across processes ourselves (W1Critic._reduced_stats)
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        warnings.filterwarnings("ignore", message=".*Grad strides do not match bucket view.*")
        try:
            yield
        finally:
            for n, lvl in levels.items():
                logging.getLogger(n).setLevel(lvl)


@dataclass(frozen=True)
class TrainOptions:
    """How each fold's critic is trained: :func:`estimate_w1`'s Trainer and critic options.

    The options of :func:`estimate_w1` that reach the Lightning ``Trainer`` and the
    ``W1Critic``, grouped (checked by :func:`estimate_w1` before any data is read; nothing
    is checked here). ``max_steps`` is ``steps``, or ``DEFAULT_MAX_STEPS`` when it is None.

    Attributes:
        critic: the critic's name (``"family"``, ``"groupsort"``, ...).
        members: the family's member names (used when ``critic == "family"``).
        widths: hidden widths of a single-network critic (None: its default).
        lr: the learning rate (None: the critic's default).
        patience: plateau checks without improvement before a learning-rate decay.
        steps: maximum training steps per fold (None: ``DEFAULT_MAX_STEPS``).
        max_time: wall-clock cap per fold, ``"DD:HH:MM:SS"``, or None.
        accelerator: the Trainer's accelerator.
        devices: the Trainer's devices.
        strategy: the Trainer's strategy (None: Lightning's default).
        logger: a Lightning logger, or None.
        callbacks: extra Lightning callbacks, or None.
        progress: show progress bars.
        seed: seed of the initialization and the batch order.

    Example:
        >>> from wgan_lip.w1.estimate import TrainOptions
        >>> opts = TrainOptions("groupsort", (), (16,), None, 5, None, None, "cpu", 1, None,
        ...                     None, None, False, 0)
        >>> opts.max_steps
        10000
    """

    critic: str
    members: tuple[str, ...]
    widths: tuple[int, ...] | None
    lr: float | None
    patience: int
    steps: int | None
    max_time: str | None
    accelerator: str
    devices: object
    strategy: str | None
    logger: object
    callbacks: list | None
    progress: bool
    seed: int

    @property
    def max_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULT_MAX_STEPS


def estimate_w1(
    p,
    q,
    *,
    critic: str = "family",
    holdout: float = 0.2,
    folds: int = 1,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
    logger=None,
    data_root: str | None = None,
    widths: tuple[int, ...] | None = None,
    family: tuple[str, ...] | None = None,
    lr: float | None = None,
    eval_every: int = 100,
    patience: int = 5,
    max_time: str | None = None,
    accelerator: str = "auto",
    devices="auto",
    strategy: str | None = None,
    callbacks: list | None = None,
) -> W1Estimate:
    """Estimate W1(P, Q) with a critic trained on the Kantorovich-Rubinstein dual.

    Args:
        p, q: samples of P and Q: numpy arrays, torch tensors, file paths (``.npy``, ``.npz``
            or ``file.npz:key``, ``.pt`` or ``file.pt:key``, ``.csv``), image folders, or dataset
            names (``mnist``, ``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset``).
        critic: ``"family"`` (default: the linear, cone and GroupSort/Björck critics of
            :mod:`wgan_lip.w1.family` trained together, the best on the monitor split
            reported), ``"groupsort"`` (one Björck MLP + GroupSort), ``"bcop"`` (BCOP
            convnet for images), all certified, or the baselines ``"gp"``, ``"lp"``,
            ``"sn"``, ``"clip"`` (``certified=False``, raw dual values).
        holdout: fraction of each side held out for the reported value; 0 trains and
            evaluates on all samples (then ``value == train_value``, an in-sample number).
        folds: cross-fitting. With ``folds=K > 1`` the samples are dealt into K parts; K
            critics are trained, each with one part held out, and the reported value is
            the mean over *every* sample of the score given by the critic that did not see
            it (divided by that critic's bound). Each critic ``f_k / L_k`` is 1-Lipschitz
            and independent of its held-out part, so the expected held-out mean of each
            part is that critic's population dual value, at most W1; the combined value is
            a weighted average of such terms, hence a lower bound of W1 in expectation,
            and it uses all n samples instead of ``holdout * n``. The interval uses the
            variance of all the held-out scores (asymptotically valid: the folds' critics
            depend on each other's rows only through training). ``holdout`` is ignored.
        steps: maximum training steps per fold (default 10,000); training stops earlier
            when the monitored dual value plateaus after two learning-rate decays.
        batch_size: samples per side per step (default: all fit rows when there are at most
            1,024 per side, else 512; 128 for ``bcop``).
        seed: fixes the split, the initialization and the batch order.
        progress: show a progress bar on stderr.
        logger: a Lightning logger (None: no logging).
        data_root: where named datasets live (default ``$WGAN_LIP_DATA``).
        widths: hidden widths of the single-network critics.
        family: member names of the ``family`` critic (default
            :data:`~wgan_lip.w1.family.DEFAULT_FAMILY` on a CPU,
            :data:`~wgan_lip.w1.family.GPU_FAMILY` on a GPU).
        lr, eval_every, patience: learning rate, steps between plateau checks, checks
            without improvement before a decay.
        max_time: optional wall-clock cap per fold, Lightning format ``"DD:HH:MM:SS"``.
        accelerator, devices, strategy: passed to the Lightning ``Trainer`` (a GPU is used
            if present). Several devices train with DDP (``ddp_fork`` by default from
            Python) on the same global batches; the held-out scoring runs once, here.
        callbacks: extra Lightning callbacks.

    Training runs in normalized units (inputs centred and divided by their pooled standard
    deviation, loss in those units) and the result is reported in the user's units, so
    rescaling the data rescales the answer and nothing else. Nor does the data's offset or
    precision change it: both samples are centred by one common offset in their own
    precision (float64, int64) before anything is rounded to float32, and the certified
    numbers are computed by a float64 copy of the critic on float64 rows
    (:mod:`wgan_lip.data.precision`). Each side is split on its own, so held-out rows are
    independent of everything the critic saw, even when P and Q share rows (see
    :func:`~wgan_lip.w1.data.split_pair`: ``estimate_w1(x, x)`` is at or below zero).
    An iterable dataset is read once, never recycled (:mod:`wgan_lip.data.samplers`).

    ``p`` and ``q`` may be larger than memory: ``.npy`` files and folders of ``.npy`` shards
    are memory-mapped and read in shuffled windows; the held-out rows are only indexed,
    and scored chunk by chunk. The first Ctrl-C stops training cleanly and the estimate
    so far is returned with ``stopped="interrupted"``.

    Returns:
        :class:`W1Estimate`.

    Raises:
        InputError: an unknown ``critic`` or family member, ``steps``, ``folds`` or
            ``batch_size`` below 1, a source that cannot be read, samples of P and Q of
            different sizes, or a split that leaves a part too small (see
            :func:`~wgan_lip.w1.data.split_indices`).

    Example:
        >>> import torch
        >>> from wgan_lip import estimate_w1
        >>> from wgan_lip.data import Translation
        >>> problem = Translation(dim=2, shift=1.0)  # W1 = 1 exactly
        >>> p, q = problem.sample_p(200, seed=0), problem.sample_q(200, seed=0)
        >>> est = estimate_w1(p, q, critic="groupsort", widths=(16,), steps=5, progress=False,
        ...                   accelerator="cpu")
        >>> est.certified, est.stopped, est.steps
        (True, 'max_steps', 5)
        >>> est.value <= 1.0 + 3 * (est.ci_high - est.value)  # a lower bound, up to noise
        True
    """
    start = time.perf_counter()
    opts = _train_options(critic, folds, steps, batch_size, widths, family, lr, patience,
                          max_time, accelerator, devices, strategy, logger, callbacks,
                          progress, seed, holdout=holdout, eval_every=eval_every)  # fmt: skip
    dm = TwoSampleDataModule(
        p, q, data_root=data_root, holdout=holdout, batch_size=batch_size or 512,
        eval_every=eval_every, seed=seed, folds=folds,
    )  # fmt: skip
    dm.load()
    # 1. fit a critic per fold and 2. score the rows it did not see
    parts = []
    for fold in range(folds):
        if fold:
            dm.use_fold(fold)
        if batch_size is None:
            fit_p, fit_q = dm.indices("fit")
            n_fit = max(len(fit_p), len(fit_q))
            dm.batch_size = (
                128 if critic == "bcop" else (n_fit if n_fit <= FULL_BATCH_ROWS else 512)
            )
        parts.append(_fit_fold(dm, opts))
        if parts[-1]["stopped"] == "interrupted":
            break
    # 3. report
    return _report(dm, parts, opts, holdout, folds, time.perf_counter() - start)


def _train_options(critic, folds, steps, batch_size, widths, family, lr, patience, max_time,
                   accelerator, devices, strategy, logger, callbacks, progress, seed, *,
                   holdout=0.2, eval_every=100) -> TrainOptions:  # fmt: skip
    """Check :func:`estimate_w1`'s options (one-line :class:`InputError`\\ s naming the
    option, before any data is read) and group the training ones.

    Integers must be integers (``steps=2.5``, ``folds=True`` are refused; numpy integers are
    fine), numbers finite and in range (``lr=nan``, ``holdout=nan`` are refused), the seed in
    ``[0, 2**32 - 1]``, ``max_time`` a Lightning duration, ``widths`` positive. ``holdout``
    and ``eval_every`` are checked only (the datamodule takes them).
    """
    from .. import options
    from ..limits import MAX_SEED

    if not isinstance(critic, str) or critic not in CRITICS:
        raise InputError(f"unknown critic {critic!r}; choose one of {', '.join(CRITICS)}")
    folds = options.check_int("folds", folds)
    steps = options.check_optional_int("steps", steps)
    batch_size = options.check_optional_int("batch_size", batch_size)
    seed = options.check_int("seed", seed, 0, MAX_SEED)
    patience = options.check_int("patience", patience)
    options.check_int("eval_every", eval_every)
    options.check_real("holdout", holdout, 0.0, 1.0, high_open=True)
    widths = options.check_widths("widths", widths)
    family = options.check_names("family", family, "('linear', 'peaks', 'mlp:128x3:maxmin')")
    if lr is not None:
        lr = options.check_real("lr", lr, 0.0, math.inf, low_open=True, high_open=True)
    max_time = options.check_duration("max_time", max_time)
    accelerator = options.check_accelerator("accelerator", accelerator)
    devices = options.check_devices("devices", devices)
    if not isinstance(progress, bool):
        raise InputError(f"progress must be True or False, got {progress!r}")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise InputError(f"callbacks must be a list of Lightning callbacks, got {callbacks!r}")
    if devices not in ("auto", 1, "1", [0]) and strategy is None:
        strategy = "ddp_fork"  # several processes from Python (parametrized layers do not pickle)
    if family is not None:
        members = family
    else:  # the wider family where a GPU trains the stacked networks in parallel
        gpu = accelerator in ("gpu", "cuda") or (
            accelerator == "auto" and torch.cuda.is_available()
        )
        members = GPU_FAMILY if gpu else DEFAULT_FAMILY
    if critic == "family":
        from .family import parse_member

        for m in members:
            parse_member(m)  # a bad name is refused before any data is read
    return TrainOptions(critic, members, widths, lr, patience, steps, max_time, accelerator,
                        devices, strategy, logger, callbacks and list(callbacks), progress,
                        seed)  # fmt: skip


def _report(dm, parts: list[dict], opts: TrainOptions, holdout: float, folds: int,
            seconds: float) -> W1Estimate:  # fmt: skip
    """The pooled held-out value of every fold's ``f_k / L_k``, its interval and p-value."""
    seed = opts.seed
    scores_p, scores_q, p_values = [], [], []
    if holdout > 0 or folds > 1:
        for part in parts:
            scale = part["bound"] if part["net"].certified else 1.0
            scores_p.append(part["held_p"] / scale)
            scores_q.append(part["held_q"] / scale)
            finite = bool(
                torch.isfinite(part["held_p"]).all() and torch.isfinite(part["held_q"]).all()
            )
            # a diverged critic's NaN scores give a NaN estimate: its p-value is unknown too
            p_values.append(
                permutation_p_value(part["held_p"], part["held_q"], seed=seed)
                if finite
                else math.nan
            )
    last = parts[-1]
    if scores_p:
        held = _stats_of(torch.cat(scores_p), torch.cat(scores_q))
        value, low, high = held.interval(1.0)
        p_value = combine_fold_p_values(p_values) if len(p_values) > 1 else p_values[0]
        n_hold_p, n_hold_q = held.n_p, held.n_q
    else:  # in-sample
        value, low, high = last["train_value"], last["train_low"], last["train_high"]
        p_value, n_hold_p, n_hold_q = float("nan"), 0, 0
    train_value = sum(pt["train_value"] for pt in parts) / len(parts)
    return W1Estimate(
        value=value, ci_low=low, ci_high=high, train_value=train_value,
        lipschitz_bound=max(pt["bound"] for pt in parts), n_p=dm.p.n, n_q=dm.q.n,
        dim=dm.p.dim, steps=sum(pt["steps"] for pt in parts),
        train_seconds=sum(pt["train_seconds"] for pt in parts),
        seconds=seconds, certified=last["net"].certified,
        critic_type=opts.critic, holdout=holdout if folds == 1 else 1.0 / folds,
        n_holdout_p=n_hold_p, n_holdout_q=n_hold_q, stopped=last["stopped"], critic=last["net"],
        critic_name=last["name"], monitor_values=last["monitor_values"], p_value=p_value,
        folds=len(parts), batch_size=dm.batch_size,
    )  # fmt: skip


def _fit_fold(dm, opts: TrainOptions) -> dict:
    """Train on the datamodule's current fold and score its parts: a dict of results."""
    critic, seed, progress = opts.critic, opts.seed, opts.progress
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7919 * dm.fold)
        module = W1Critic(critic, input_shape=dm.input_shape, widths=opts.widths, lr=opts.lr,
                          family=opts.members)  # fmt: skip
        module.prepare_critic(dm)
        # a family keeps each member's best weights itself
        plateau = PlateauSchedule(patience=opts.patience, restore_best=not module.is_family)
        interrupt = StopOnInterrupt()
        cbs = [plateau, interrupt, TrainTimer(), *(opts.callbacks or [])]
        if progress:
            label = "W1 critic" if dm.folds == 1 else f"W1 critic, fold {dm.fold + 1}/{dm.folds}"
            cbs.append(StepProgress(label=label))
        max_steps = opts.max_steps
        with _quiet_lightning():
            trainer = L.Trainer(
                max_steps=max_steps, max_epochs=-1, max_time=opts.max_time,
                accelerator=opts.accelerator, devices=opts.devices,
                strategy=opts.strategy or "auto", logger=opts.logger if opts.logger else False,
                enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, callbacks=cbs,
            )  # fmt: skip
            with _fork_safe_threads(trainer):
                try:
                    trainer.fit(module, datamodule=dm)
                except SystemExit:
                    # Lightning turns a Ctrl-C it catches into exit(1); a second Ctrl-C
                    # (abort) is a KeyboardInterrupt to the caller, as everywhere else.
                    if interrupt.aborted:
                        raise KeyboardInterrupt from None
                    raise
    monitor_values: dict[str, float] = {}
    if module.is_family:
        family = module.critic.eval()
        bounds = family.lipschitz_bounds()
        scale = float(family.scale)
        for k, name in enumerate(family.names):
            monitor_values[name] = float(family.best_values[k]) * scale / bounds[k]
        fit_p, _ = dm.indices("fit")
        mon_p, _ = dm.indices("monitor")
        in_sample = dm.holdout == 0 and dm.folds == 1
        monitor_is_fit = len(mon_p) == len(fit_p) and bool(torch.equal(mon_p, fit_p))
        # in-sample: the largest value is the answer; otherwise the one-standard-error rule,
        # and a monitor that is the fit split says nothing about the transport potential
        best = family.select(
            one_se=not in_sample,
            exclude=("transport",) if monitor_is_fit and not in_sample else (),
        )
        net: RawInputCritic = family.member(best).eval()
        name = family.names[best]
    else:
        net = module.critic.eval()
        name = critic
    # certified numbers: a float64 copy of the critic on float64 rows (data.precision)
    scorer = certifying_copy(net)
    bound = lipschitz_bound(scorer)
    scale = bound if net.certified else 1.0
    big = progress and dm.p.n + dm.q.n > PROGRESS_ROWS
    offset = getattr(dm.p.rows, "offset", None)
    out = {"net": OffsetCritic(scorer, offset), "bound": bound, "name": name,
           "monitor_values": monitor_values}  # fmt: skip
    if dm.holdout > 0 or dm.folds > 1:
        out["held_p"], out["held_q"] = chunk_scores(scorer, dm.chunks("holdout", exact=True),
                                                    big, "scoring held-out")  # fmt: skip
    fit = dm.chunks("fit", max_rows=TRAIN_VALUE_ROWS, seed=seed, exact=True)
    train_stats = chunk_stats(scorer, fit, big, "scoring train")
    out["train_value"], out["train_low"], out["train_high"] = train_stats.interval(scale)
    metrics = trainer.callback_metrics  # what forked / spawned workers hand back
    out["steps"] = int(metrics.get("trainer/steps", trainer.global_step))
    out["train_seconds"] = float(metrics.get("trainer/train_seconds", float("nan")))
    plateaued = bool(metrics.get("plateau/stopped", plateau.stopped))
    stopped = "plateau" if plateaued else "max_steps"
    if interrupt.interrupted:
        stopped = "interrupted"
    elif module.closed_form_only:  # nothing to train: fitted once, compared once
        stopped = "closed_form"
    elif not plateaued and out["steps"] < max_steps:
        stopped = "max_time"
    out["stopped"] = stopped
    return out
