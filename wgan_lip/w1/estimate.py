"""``estimate_w1``: a certified lower bound of W1(P, Q) from a trained 1-Lipschitz critic.

The value reported is ``(mean_P' f - mean_Q' f) / L`` on held-out samples P', Q', where ``L``
is :func:`~wgan_lip.layers.lipschitz_bound` of the trained critic. Since ``f / L`` is
1-Lipschitz, its population dual value is a lower bound of W1(P, Q) (Kantorovich-Rubinstein);
the held-out mean estimates that population value without the optimistic bias of the
training samples, and the 95% interval quantifies its sampling error.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import lightning as L
import torch
from torch import nn

from ..critic import OffsetCritic, certifying_copy
from ..errors import InputError
from ..layers import lipschitz_bound
from ..networks import NetworkSpec
from ..threads import threads_for
from .callbacks import (
    PlateauSchedule,
    RaceMembers,
    StepProgress,
    StopOnInterrupt,
    TrainTimer,
)
from .critics import CRITICS, FAMILY_HAS_NO_NETWORK
from .data import SideChunks, TwoSampleDataModule
from .family import DEFAULT_FAMILY, GPU_FAMILY
from .loss import DualStats
from .module import W1Critic
from .two_sample import combine_fold_p_values, permutation_p_value

DEFAULT_MAX_STEPS = 10_000
FULL_BATCH_ROWS = 1024  # per side: up to this many fit rows, every step uses all of them
TRAIN_VALUE_ROWS = 100_000  # per side: the in-sample diagnostic is computed on at most this
PROGRESS_ROWS = 200_000  # score with a progress bar when a part has more rows than this


@dataclass(frozen=True)
class W1Run:
    """How an estimate was made: the run's record inside :class:`W1Estimate` (``run``).

    Args:
        critic_type: the ``critic`` option (``"family"``, ``"groupsort"``, ...).
        critic_name: the reported member of a family (else the critic type).
        holdout: the held-out fraction (``1 / folds`` with cross-fitting).
        n_holdout_p: held-out rows of P scored (0 in-sample).
        n_holdout_q: held-out rows of Q scored (0 in-sample).
        stopped: why training ended (see :class:`W1Estimate`).
        steps: training steps, summed over folds.
        train_seconds: seconds of the training loops, summed over folds.
        monitor_values: certified monitor value of each family member (empty for a single
            critic).
        p_value: permutation p-value of H0: P = Q (NaN in-sample).
        folds: folds trained.
        batch_size: samples per side per step of the last fold.
        retired: the step each retired family member stopped training at (the last
            fold's; :mod:`wgan_lip.w1.race`).

    Example:
        >>> from wgan_lip.w1.estimate import W1Run
        >>> W1Run("groupsort", "groupsort", 0.2, 40, 40, "max_steps", 5, 0.1).folds
        1
    """

    critic_type: str
    critic_name: str
    holdout: float
    n_holdout_p: int
    n_holdout_q: int
    stopped: str
    steps: int
    train_seconds: float
    monitor_values: dict = field(default_factory=dict)
    p_value: float = float("nan")
    folds: int = 1
    batch_size: int = 0
    retired: dict = field(default_factory=dict)


# the keys of W1Estimate.to_dict(), in their order (the JSON of ``wgan-lip w1 --json``)
JSON_KEYS = (
    "value",
    "ci_low",
    "ci_high",
    "train_value",
    "lipschitz_bound",
    "n_p",
    "n_q",
    "dim",
    "steps",
    "train_seconds",
    "seconds",
    "certified",
    "critic_type",
    "holdout",
    "n_holdout_p",
    "n_holdout_q",
    "stopped",
    "critic_name",
    "monitor_values",
    "p_value",
    "folds",
    "batch_size",
    "retired",
)


@dataclass
class W1Estimate:
    """The result of :func:`estimate_w1`.

    ``value``, ``ci_low``, ``ci_high`` are the held-out dual value and its 95% interval,
    divided by ``lipschitz_bound`` for certified critics (raw for the baselines);
    ``train_value`` the same quantity on the samples the critic was trained on (at most
    100,000 of them per side). ``stopped`` says why training ended:

    - ``raced``: every trained member of the family was retired, because none could still
      be reported (a closed-form member or a simpler one led; :mod:`wgan_lip.w1.race`);
    - ``resolved``: the monitor value gained less than a quarter of its standard error over
      the last window (more training could not change the answer);
    - ``plateau``: no improvement after two learning-rate decays;
    - ``max_steps``, ``max_time``: the budget;
    - ``closed_form``: a family of closed-form members only (nothing to train);
    - ``interrupted``: Ctrl-C (the estimate is still certified, from a critic trained for
      less time).

    ``seconds`` is the whole call, ``train_seconds`` the training loop alone.
    ``critic`` maps raw samples (at their own precision: float64, int64) to float64 scores;
    ``(mean critic(P') - mean critic(Q')) / lipschitz_bound`` is a certified dual value on
    any fresh samples.

    With the critic family (the default), ``critic_name`` is the member that won on the
    monitor split and ``monitor_values`` the certified monitor value of every member (the
    last fold's, with cross-fitting). ``p_value`` tests H0: P = Q from the held-out scores
    (:mod:`wgan_lip.w1.two_sample`; NaN with ``holdout=0``). With ``folds > 1`` every
    sample is held out once; ``lipschitz_bound`` is then the largest of the folds' bounds.

    The run's own record (``steps`` ... ``batch_size`` below) is the sub-record ``run``
    (:class:`W1Run`); its fields read as attributes of the estimate too.

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
        critic: the trained critic (last fold's), raw samples to scores ``(n,)``.
        run: the :class:`W1Run` (``critic_type``, ``critic_name``, ``holdout``,
            ``n_holdout_p``, ``n_holdout_q``, ``stopped``, ``steps``, ``train_seconds``,
            ``monitor_values``, ``p_value``, ``folds``, ``batch_size``, ``retired``).

    The run's fields, read through as attributes of the estimate:

    - ``critic_type``: the ``critic`` option (``"family"``, ``"groupsort"``, ...).
    - ``holdout``: the held-out fraction (``1 / folds`` with cross-fitting).
    - ``n_holdout_p``: held-out rows of P scored (0 in-sample).
    - ``n_holdout_q``: held-out rows of Q scored (0 in-sample).
    - ``stopped``: why training ended (see above).
    - ``critic_name``: the reported member of a family (else the critic type).
    - ``monitor_values``: certified monitor value of each family member (empty for a single critic).
    - ``p_value``: permutation p-value of H0: P = Q (NaN in-sample).
    - ``folds``: folds trained (fewer than asked after a Ctrl-C).
    - ``batch_size``: samples per side per step of the last fold.
    - ``retired``: the step each retired family member stopped training at (the last
      fold's).

    Example:
        >>> import torch
        >>> from wgan_lip import estimate_w1
        >>> _ = torch.manual_seed(0)
        >>> p, q = torch.randn(200, 2), torch.randn(200, 2) + 1
        >>> est = estimate_w1(p, q, critic="groupsort", network={"widths": [16]}, steps=5,
        ...                   progress=False, trainer={"accelerator": "cpu"})
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
    seconds: float
    certified: bool
    critic: nn.Module = field(repr=False, compare=False)
    run: W1Run

    def __getattr__(self, name: str):
        # the run's fields read as the estimate's (est.steps, est.stopped, ...)
        if name != "run" and name in W1Run.__dataclass_fields__:
            return getattr(self.run, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self) -> dict:
        """All fields but the critic module (the run's flattened in), as JSON-ready Python
        scalars (a value that does not apply, such as the p-value of an in-sample run, is
        None, not NaN)."""

        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {k: clean(getattr(self, k)) for k in JSON_KEYS}

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
        >>> critic = build_critic("groupsort", (2,), {"widths": (8,)})
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
        >>> critic = build_critic("groupsort", (2,), {"widths": (8,)})
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
        >>> critic = build_critic("groupsort", (2,), {"widths": (8,)})
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
        bar = tqdm(
            total=total,
            desc=label,
            unit="row",
            unit_scale=True,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )
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


# ----- options -----

# Lightning Trainer options the estimate sets itself (what to use instead)
TRAINER_SET = {
    "max_steps": "steps=",
    "max_epochs": "steps=",
    "enable_checkpointing": None,
    "enable_progress_bar": "progress=",
    "enable_model_summary": None,
    "num_sanity_val_steps": None,
    "val_check_interval": "critic={'eval_every': ...}",
}
# estimate_w1 keywords of older versions -> where they went
MOVED_KEYWORDS = {
    **{
        k: "trainer={...}"
        for k in ("accelerator", "devices", "strategy", "logger", "callbacks", "max_time")
    },
    **{k: "critic={'name': ..., ...}" for k in ("family", "lr", "eval_every", "patience")},
    "widths": "network={'widths': ...}",
}


@dataclass(frozen=True)
class CriticSpec:
    """Which critic :func:`estimate_w1` trains, and how: its ``critic`` option.

    Args:
        name: the critic's name (``"family"``, ``"groupsort"``, ...: see
            :data:`~wgan_lip.w1.names.CRITICS`).
        family: the family's member names (None: the default family of the device).
        lr: the learning rate (None: the critic's default).
        eval_every: steps between monitor checks.
        patience: monitor checks without improvement before a learning-rate decay (the
            window of the plateau and resolution stops is ``eval_every * patience`` steps).
        race: retire the family's members that can no longer be reported
            (:mod:`wgan_lip.w1.race`); training ends when none is left.

    Example:
        >>> from wgan_lip.w1.estimate import CriticSpec
        >>> CriticSpec.of({"name": "family", "family": ["linear", "peaks"]}).family
        ('linear', 'peaks')
        >>> CriticSpec.of("groupsort").patience
        10
    """

    name: str = "family"
    family: tuple[str, ...] | None = None
    lr: float | None = None
    eval_every: int = 50
    patience: int = 10
    race: bool = True

    @classmethod
    def of(cls, value) -> CriticSpec:
        """``value`` as a spec: itself, a critic name, or a mapping of the fields.

        Args:
            value: a :class:`CriticSpec`, a name or a mapping.

        Returns:
            The :class:`CriticSpec`, its values checked (one-line :class:`InputError`).

        Example:
            >>> from wgan_lip.w1.estimate import CriticSpec
            >>> CriticSpec.of({"name": "clip", "lr": 1e-4}).lr
            0.0001
        """
        from .. import options

        if isinstance(value, str):
            value = {"name": value}
        elif isinstance(value, CriticSpec):
            value = asdict(value)
        elif not isinstance(value, Mapping):
            raise InputError(f"critic must be a name, a mapping or a CriticSpec, got {value!r}")
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(
                f"critic: unknown key(s) {', '.join(unknown)}; the keys are "
                f"{', '.join(cls.__dataclass_fields__)}"
            )
        spec = cls(**value)
        if not isinstance(spec.name, str) or spec.name not in CRITICS:
            raise InputError(f"unknown critic {spec.name!r}; choose one of {', '.join(CRITICS)}")
        lr = spec.lr
        if lr is not None:
            lr = options.check_real("lr", lr, 0.0, math.inf, low_open=True, high_open=True)
        family = options.check_names(
            "family", spec.family, "('linear', 'peaks', 'mlp:128x3:maxmin')"
        )
        return cls(
            spec.name,
            family,
            lr,
            options.check_int("eval_every", spec.eval_every),
            options.check_int("patience", spec.patience),
            options.check_bool("race", spec.race),
        )


@dataclass(frozen=True)
class TrainOptions:
    """How each fold's critic is trained: :func:`estimate_w1`'s checked options, grouped.

    ``max_steps`` is ``steps``, or ``DEFAULT_MAX_STEPS`` when it is None; ``members`` the
    family's member names (the device's default family when the spec names none).

    Attributes:
        critic: the :class:`CriticSpec`.
        network: a single critic's :class:`~wgan_lip.networks.NetworkSpec`.
        steps: maximum training steps per fold (None: ``DEFAULT_MAX_STEPS``).
        trainer: the Lightning ``Trainer``'s options (checked; ``accelerator``,
            ``devices`` and ``strategy`` always present).
        progress: show progress bars.
        seed: seed of the initialization and the batch order.

    Example:
        >>> from wgan_lip.w1.estimate import CriticSpec, TrainOptions
        >>> opts = TrainOptions(CriticSpec("groupsort"), None, None, {}, False, 0)
        >>> opts.max_steps
        10000
    """

    critic: CriticSpec
    network: object
    steps: int | None
    trainer: dict
    progress: bool
    seed: int

    @property
    def max_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULT_MAX_STEPS

    @property
    def members(self) -> tuple[str, ...]:
        if self.critic.family is not None:
            return self.critic.family
        accelerator = self.trainer.get("accelerator", "auto")
        # the wider family where a GPU trains the stacked networks in parallel
        gpu = accelerator in ("gpu", "cuda") or (
            accelerator == "auto" and torch.cuda.is_available()
        )
        return GPU_FAMILY if gpu else DEFAULT_FAMILY


def _refuse_moved_keywords(fn):
    """Old keywords of :func:`estimate_w1` fail in one line that says where they went."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        moved = [k for k in kwargs if k in MOVED_KEYWORDS]
        if moved:
            k = moved[0]
            raise TypeError(
                f"estimate_w1: {k}= moved into {MOVED_KEYWORDS[k]} (e.g. {_example(k)})"
            )
        return fn(*args, **kwargs)

    return wrapper


def _example(key: str) -> str:
    if key == "widths":
        return "network={'widths': [64, 64]}"
    if MOVED_KEYWORDS[key].startswith("trainer"):
        return f"trainer={{'{key}': ...}}"
    return f"critic={{'name': 'family', '{key}': ...}}"


@_refuse_moved_keywords
def estimate_w1(
    p,
    q,
    *,
    critic: str | Mapping | CriticSpec = "family",
    network: NetworkSpec | Mapping | None = None,
    holdout: float = 0.2,
    folds: int = 1,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
    data_root: str | None = None,
    trainer: dict | None = None,
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
            ``"sn"``, ``"clip"`` (``certified=False``, raw dual values). Or a
            :class:`CriticSpec` (or a mapping of its fields): the name and how it trains
            (``family`` members, ``lr``, ``eval_every``, ``patience``, ``race``).
        network: a single critic's network, a :class:`~wgan_lip.networks.NetworkSpec` or
            mapping (``{"widths": [64, 64]}``, ``{"linear": "aol"}``,
            ``{"activation": "maxmin"}``, ``{"kind": "convnet", "conv": "cayley"}``...);
            unset fields are the critic's defaults. A certified critic refuses a layer that
            is not 1-Lipschitz by construction. A family names its members' layers in
            their names (``mlp:128x3:maxmin:aol``).
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
        data_root: where named datasets live (default ``$WGAN_LIP_DATA``).
        trainer: options of the Lightning ``Trainer`` (checked by name): ``accelerator``,
            ``devices``, ``strategy`` (a GPU is used if present; several devices train with
            DDP, ``ddp_fork`` by default from Python, on the same global batches; the
            held-out scoring runs once, here), ``logger`` (default: no logging),
            ``callbacks`` (extra Lightning callbacks), ``max_time`` (a wall-clock cap per
            fold, ``"DD:HH:MM:SS"``), and the Trainer's other options except those the
            estimate sets (``max_steps`` is ``steps``). The family's members default to
            :data:`~wgan_lip.w1.family.DEFAULT_FAMILY` on a CPU and
            :data:`~wgan_lip.w1.family.GPU_FAMILY` on a GPU.

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
        TypeError: a keyword of older versions (``accelerator=``, ``widths=``...), naming
            where it moved.
        InputError: an unknown ``critic``, family member, layer or ``trainer`` key, a layer
            the critic's constraint does not admit, ``steps``, ``folds`` or
            ``batch_size`` below 1, a source that cannot be read, samples of P and Q of
            different sizes, or a split that leaves a part too small (see
            :func:`~wgan_lip.w1.data.split_indices`).

    Example:
        >>> import torch
        >>> from wgan_lip import estimate_w1
        >>> from wgan_lip.data import Translation
        >>> problem = Translation(dim=2, shift=1.0)  # W1 = 1 exactly
        >>> p, q = problem.sample_p(200, seed=0), problem.sample_q(200, seed=0)
        >>> est = estimate_w1(p, q, critic="groupsort", network={"widths": [16]}, steps=5,
        ...                   progress=False, trainer={"accelerator": "cpu"})
        >>> est.certified, est.stopped, est.steps
        (True, 'max_steps', 5)
        >>> est.value <= 1.0 + 3 * (est.ci_high - est.value)  # a lower bound, up to noise
        True
    """
    start = time.perf_counter()
    opts = _train_options(
        critic,
        network,
        steps,
        trainer,
        progress,
        seed,
        folds=folds,
        batch_size=batch_size,
        holdout=holdout,
    )
    dm = TwoSampleDataModule(
        p,
        q,
        data_root=data_root,
        holdout=holdout,
        batch_size=batch_size or 512,
        eval_every=opts.critic.eval_every,
        seed=opts.seed,
        folds=folds,
    )
    dm.load()
    # 1. fit a critic per fold and 2. score the rows it did not see
    parts: list[FoldResult] = []
    for fold in range(folds):
        if fold:
            dm.use_fold(fold)
        if batch_size is None:
            fit_p, fit_q = dm.indices("fit")
            n_fit = max(len(fit_p), len(fit_q))
            # convolutions cost per image: smaller batches of a convnet critic
            dm.batch_size = (
                128 if _is_convnet(opts, dm) else (n_fit if n_fit <= FULL_BATCH_ROWS else 512)
            )
        parts.append(_fit_fold(dm, opts))
        if parts[-1].stopped == "interrupted":
            break
    # 3. report
    return _report(dm, parts, opts, holdout, time.perf_counter() - start)


def _is_convnet(opts: TrainOptions, dm) -> bool:
    """Whether the single critic of ``opts`` convolves (its network is not an MLP)."""
    if opts.critic.name == "family":
        return False
    from .critics import critic_spec

    return critic_spec(opts.critic.name, dm.input_shape, opts.network).kind != "mlp"


def _train_options(
    critic, network, steps, trainer, progress, seed, *, folds=1, batch_size=None, holdout=0.2
) -> TrainOptions:
    """Check :func:`estimate_w1`'s options (one-line :class:`InputError`\\ s naming the
    option, before any data is read) and group the training ones.

    Integers must be integers (``steps=2.5``, ``folds=True`` are refused; numpy integers are
    fine), numbers finite and in range (``lr=nan``, ``holdout=nan`` are refused), the seed in
    ``[0, 2**32 - 1]``, ``max_time`` a Lightning duration, widths positive, a layer one the
    critic's constraint admits. ``folds``, ``batch_size`` and ``holdout`` are checked only
    (the datamodule takes them).
    """
    from .. import options
    from ..limits import MAX_SEED

    spec = CriticSpec.of(critic)
    options.check_int("folds", folds)
    steps = options.check_optional_int("steps", steps)
    options.check_optional_int("batch_size", batch_size)
    seed = options.check_int("seed", seed, 0, MAX_SEED)
    options.check_real("holdout", holdout, 0.0, 1.0, high_open=True)
    options.check_bool("progress", progress)
    trainer = _trainer_options(trainer)
    opts = TrainOptions(
        spec, None if network is None else NetworkSpec.of(network), steps, trainer, progress, seed
    )
    if spec.name == "family":
        if network is not None:
            raise InputError(FAMILY_HAS_NO_NETWORK)
        from .family import parse_member

        for m in opts.members:
            parse_member(m)  # a bad name is refused before any data is read
    else:  # a layer the critic's constraint refuses is refused before any data is read
        from .critics import check_critic_network

        check_critic_network(spec.name, opts.network)
    return opts


def _trainer_options(trainer) -> dict:
    """The checked Trainer options (``accelerator``, ``devices``, ``strategy`` filled)."""
    from .. import options

    if trainer is None:
        trainer = {}
    if not isinstance(trainer, Mapping):
        raise InputError(f"trainer must be a dict of Lightning Trainer options, got {trainer!r}")
    trainer = dict(trainer)
    known = set(inspect.signature(L.Trainer.__init__).parameters) - {"self"}
    for key in trainer:
        if key in TRAINER_SET:
            use = TRAINER_SET[key]
            raise InputError(
                f"trainer: {key} is set by estimate_w1" + (f"; use {use}" if use else "")
            )
        if key not in known:
            raise InputError(f"trainer: unknown Lightning Trainer option {key!r}")
    trainer["accelerator"] = options.check_accelerator(
        "trainer.accelerator", trainer.get("accelerator", "auto")
    )
    trainer["devices"] = options.check_devices("trainer.devices", trainer.get("devices", "auto"))
    if "max_time" in trainer:
        trainer["max_time"] = options.check_duration("max_time", trainer["max_time"])
    callbacks = trainer.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise InputError(f"callbacks must be a list of Lightning callbacks, got {callbacks!r}")
    trainer["callbacks"] = list(callbacks or [])
    if trainer["devices"] not in ("auto", 1, "1", [0]) and trainer.get("strategy") is None:
        trainer["strategy"] = "ddp_fork"  # several processes from Python (no pickling)
    trainer["strategy"] = trainer.get("strategy") or "auto"
    trainer["logger"] = trainer.get("logger") or False
    return trainer


# ----- the steps of one fold, each a frozen record -----


@dataclass(frozen=True)
class TrainedFold:
    """A fold's training: :func:`_train_fold`'s result.

    Attributes:
        module: the trained :class:`~wgan_lip.w1.module.W1Critic` (each member at its best).
        steps: training steps taken.
        train_seconds: seconds of the training loop.
        plateaued: the plateau schedule stopped training.
        interrupted: a Ctrl-C stopped training.
        work: multiply-adds per training step (parameters x batch rows), what the number of
            threads is chosen by (:func:`wgan_lip.threads.choose_threads`).
        resolved: the plateau schedule stopped for resolution (more training could not
            change the answer).
        raced: the race retired every trained member.
        retired: the step each retired member stopped training at.

    Example:
        >>> from wgan_lip.w1.estimate import TrainedFold
        >>> TrainedFold(None, 5, 0.1, False, False).steps
        5
    """

    module: object
    steps: int
    train_seconds: float
    plateaued: bool
    interrupted: bool
    work: float = 0.0
    resolved: bool = False
    raced: bool = False
    retired: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    """The member a fold reports: :func:`_select`'s result.

    Attributes:
        critic: the member as a :class:`~wgan_lip.critic.RawInputCritic` (eval mode).
        name: its name.
        monitor_values: certified monitor value of each family member (empty for a single
            critic).

    Example:
        >>> from wgan_lip.w1.estimate import Selection
        >>> Selection(None, "linear", {"linear": 1.0}).name
        'linear'
    """

    critic: nn.Module
    name: str
    monitor_values: dict


@dataclass(frozen=True)
class FoldResult:
    """A fold's scores and record: :func:`_fit_fold`'s result.

    Attributes:
        critic: the reported critic on the user's samples (float64, offset put back).
        bound: its certified Lipschitz bound.
        selection: the :class:`Selection` (name and monitor values).
        held: float64 held-out scores ``(scores_p, scores_q)``, or None in-sample.
        train: ``(value, ci_low, ci_high)`` on (at most ``TRAIN_VALUE_ROWS`` of) the fit rows.
        trained: the :class:`TrainedFold`.
        stopped: why training ended (:func:`_stop_reason`).

    Example:
        >>> from wgan_lip.w1.estimate import FoldResult
        >>> FoldResult(None, 1.0, None, None, (1.0, 0.9, 1.1), None, "max_steps").stopped
        'max_steps'
    """

    critic: nn.Module
    bound: float
    selection: Selection
    held: tuple[torch.Tensor, torch.Tensor] | None
    train: tuple[float, float, float]
    trained: TrainedFold
    stopped: str


def _train_fold(dm, opts: TrainOptions) -> TrainedFold:
    """Build the fold's critic, fit its normalization and closed-form members, train it."""
    spec = opts.critic
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opts.seed + 7919 * dm.fold)
        module = W1Critic(
            spec.name,
            input_shape=dm.input_shape,
            network=opts.network,
            family=opts.members,
            lr=spec.lr,
        )
        module.prepare_critic(dm)
        # members that keep their own best weights (the family's) need no restoring
        keeps = all(g.keeps_best for g in module.critic.groups.values())
        plateau = PlateauSchedule(patience=spec.patience, restore_best=not keeps)
        interrupt = StopOnInterrupt()
        kw = dict(opts.trainer)
        cbs = [plateau, interrupt, TrainTimer(), *kw.pop("callbacks")]
        if spec.race and len(module.critic.names) > 1:
            one_se, exclude = _selection_rule(dm)
            cbs.insert(0, RaceMembers(one_se=one_se, exclude=exclude))
        if opts.progress:
            label = "W1 critic" if dm.folds == 1 else f"W1 critic, fold {dm.fold + 1}/{dm.folds}"
            cbs.append(StepProgress(label=label))
        with _quiet_lightning():
            trainer = L.Trainer(
                max_steps=opts.max_steps,
                max_epochs=-1,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                callbacks=cbs,
                **kw,
            )
            # a small critic on one thread; a large one on the cores no one else is using
            work = sum(p.numel() for p in module.parameters()) * float(dm.batch_size)
            with threads_for(work), _fork_safe_threads(trainer):
                try:
                    trainer.fit(module, datamodule=dm)
                except SystemExit:
                    # Lightning turns a Ctrl-C it catches into exit(1); a second Ctrl-C
                    # (abort) is a KeyboardInterrupt to the caller, as everywhere else.
                    if interrupt.aborted:
                        raise KeyboardInterrupt from None
                    raise
    metrics = trainer.callback_metrics  # what forked / spawned workers hand back
    prefix = "race/retired/"
    return TrainedFold(
        module,
        int(metrics.get("trainer/steps", trainer.global_step)),
        float(metrics.get("trainer/train_seconds", float("nan"))),
        bool(metrics.get("plateau/stopped", plateau.stopped)),
        interrupt.interrupted,
        work,
        resolved=bool(metrics.get("plateau/resolved", plateau.resolved)),
        raced=bool(metrics.get("race/finished", False)),
        retired={k[len(prefix) :]: int(v) for k, v in metrics.items() if k.startswith(prefix)},
    )


def _selection_rule(dm) -> tuple[bool, tuple[str, ...]]:
    """How the fold's member is chosen: ``(one_se, exclude)`` of
    :meth:`~wgan_lip.w1.family.CriticFamily.select` (the race follows the same rule)."""
    fit_p, _ = dm.indices("fit")
    mon_p, _ = dm.indices("monitor")
    in_sample = dm.holdout == 0 and dm.folds == 1
    monitor_is_fit = len(mon_p) == len(fit_p) and bool(torch.equal(mon_p, fit_p))
    # in-sample: the largest value is the answer; otherwise the one-standard-error rule,
    # and a monitor that is the fit split says nothing about the transport potential
    return not in_sample, ("transport",) if monitor_is_fit and not in_sample else ()


def _select(module: W1Critic, dm) -> Selection:
    """The member the fold reports, and every member's certified monitor value."""
    family = module.critic.eval()
    one_se, exclude = _selection_rule(dm)
    best = family.select(one_se=one_se, exclude=exclude)
    monitor_values: dict[str, float] = {}
    if family.reports_members:
        scale = float(family.scale)
        for k, (name, bound) in enumerate(
            zip(family.names, family.lipschitz_bounds(), strict=True)
        ):
            monitor_values[name] = float(family.best_values[k]) * scale / bound
    return Selection(family.member(best).eval(), family.names[best], monitor_values)


def _score(selection: Selection, trained: TrainedFold, dm, opts: TrainOptions) -> FoldResult:
    """Certified numbers of the selected critic: a float64 copy on float64 rows."""
    net = selection.critic
    scorer = certifying_copy(net)
    bound = lipschitz_bound(scorer)
    big = opts.progress and dm.p.n + dm.q.n > PROGRESS_ROWS
    held = None
    if dm.holdout > 0 or dm.folds > 1:
        held = chunk_scores(scorer, dm.chunks("holdout", exact=True), big, "scoring held-out")
    fit = dm.chunks("fit", max_rows=TRAIN_VALUE_ROWS, seed=opts.seed, exact=True)
    train = chunk_stats(scorer, fit, big, "scoring train").interval(bound if net.certified else 1.0)
    critic = OffsetCritic(scorer, getattr(dm.p.rows, "offset", None))
    stopped = _stop_reason(trained, opts.max_steps)
    return FoldResult(critic, bound, selection, held, train, trained, stopped)


def _stop_reason(trained: TrainedFold, max_steps: int) -> str:
    """``interrupted``, ``closed_form`` (nothing to train), ``raced``, ``resolved``,
    ``plateau``, ``max_time`` or ``max_steps`` (see :class:`W1Estimate`)."""
    if trained.interrupted:
        return "interrupted"
    if trained.module.closed_form_only:  # nothing to train: fitted once, compared once
        return "closed_form"
    if trained.raced:
        return "raced"
    if trained.plateaued:
        return "resolved" if trained.resolved else "plateau"
    return "max_time" if trained.steps < max_steps else "max_steps"


def _fit_fold(dm, opts: TrainOptions) -> FoldResult:
    """Train on the datamodule's current fold, select its member and score its parts."""
    trained = _train_fold(dm, opts)
    with threads_for(trained.work):
        return _score(_select(trained.module, dm), trained, dm, opts)


def _report(
    dm, parts: list[FoldResult], opts: TrainOptions, holdout: float, seconds: float
) -> W1Estimate:
    """The pooled held-out value of every fold's ``f_k / L_k``, its interval and p-value."""
    scores_p, scores_q, p_values = [], [], []
    for part in parts:
        if part.held is None:
            continue
        held_p, held_q = part.held
        scale = part.bound if part.critic.certified else 1.0
        scores_p.append(held_p / scale)
        scores_q.append(held_q / scale)
        finite = bool(torch.isfinite(held_p).all() and torch.isfinite(held_q).all())
        # a diverged critic's NaN scores give a NaN estimate: its p-value is unknown too
        p_values.append(permutation_p_value(held_p, held_q, seed=opts.seed) if finite else math.nan)
    last = parts[-1]
    if scores_p:
        held = _stats_of(torch.cat(scores_p), torch.cat(scores_q))
        value, low, high = held.interval(1.0)
        p_value = combine_fold_p_values(p_values) if len(p_values) > 1 else p_values[0]
        n_hold_p, n_hold_q = held.n_p, held.n_q
    else:  # in-sample
        value, low, high = last.train
        p_value, n_hold_p, n_hold_q = float("nan"), 0, 0
    run = W1Run(
        critic_type=opts.critic.name,
        critic_name=last.selection.name,
        holdout=holdout if dm.folds == 1 else 1.0 / dm.folds,
        n_holdout_p=n_hold_p,
        n_holdout_q=n_hold_q,
        stopped=last.stopped,
        steps=sum(pt.trained.steps for pt in parts),
        train_seconds=sum(pt.trained.train_seconds for pt in parts),
        monitor_values=last.selection.monitor_values,
        p_value=p_value,
        folds=len(parts),
        batch_size=dm.batch_size,
        retired=dict(last.trained.retired),
    )
    return W1Estimate(
        value=value,
        ci_low=low,
        ci_high=high,
        train_value=sum(pt.train[0] for pt in parts) / len(parts),
        lipschitz_bound=max(pt.bound for pt in parts),
        n_p=dm.p.n,
        n_q=dm.q.n,
        dim=dm.p.dim,
        seconds=seconds,
        certified=last.critic.certified,
        critic=last.critic,
        run=run,
    )
