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
import sys
import time
import warnings
from dataclasses import dataclass, field

import lightning as L
import torch
from torch import nn

from ..errors import InputError
from ..layers import lipschitz_bound
from .callbacks import PlateauSchedule, StepProgress, StopOnInterrupt, TrainTimer
from .critics import CRITICS, RawInputCritic
from .data import NORMALIZATION_ROWS, SideChunks, TwoSampleDataModule
from .loss import DualStats
from .module import W1Critic

DEFAULT_MAX_STEPS = 10_000
TRAIN_VALUE_ROWS = 100_000  # per side: the in-sample diagnostic is computed on at most this
PROGRESS_ROWS = 200_000  # score with a progress bar when a part has more rows than this


@dataclass
class W1Estimate:
    """The result of :func:`estimate_w1`.

    ``value``, ``ci_low``, ``ci_high`` are the held-out dual value and its 95% interval,
    divided by ``lipschitz_bound`` for certified critics (raw for the baselines);
    ``train_value`` the same quantity on the samples the critic was trained on (at most
    100,000 of them per side). ``stopped`` says why training ended: ``plateau``,
    ``max_steps``, ``max_time``, or ``interrupted`` (Ctrl-C: the estimate is still certified,
    from a critic trained for less time).
    ``seconds`` is the whole call, ``train_seconds`` the training loop alone.
    ``critic`` maps raw samples to scores; ``(mean critic(P') - mean critic(Q')) /
    lipschitz_bound`` is a certified dual value on any fresh samples.
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

    def to_dict(self) -> dict:
        """All fields but the critic module, as JSON-ready Python scalars."""
        return {k: v for k, v in self.__dict__.items() if k != "critic"}

    def score(self, p, q) -> tuple[float, float, float]:
        """Certified ``(value, ci_low, ci_high)`` of the trained critic on fresh samples."""
        stats = dual_stats(self.critic, _tensor(p), _tensor(q))
        return stats.interval(self.lipschitz_bound if self.certified else 1.0)


def _tensor(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32)


@torch.no_grad()
def dual_stats(
    critic: nn.Module, xp: torch.Tensor, xq: torch.Tensor, batch_size: int = 8192
) -> DualStats:
    """Score ``xp`` and ``xq`` with ``critic`` (eval mode) into :class:`DualStats`."""
    return chunk_stats(critic, SideChunks(xp, xq, batch_size))


@torch.no_grad()
def chunk_stats(
    critic: nn.Module, chunks: SideChunks, progress: bool = False, label: str = "scoring"
) -> DualStats:
    """Score the rows of :class:`~wgan_lip.w1.data.SideChunks` (read chunk by chunk, so a
    part larger than memory is fine) into :class:`DualStats`."""
    was_training = critic.training
    critic.eval()
    device = next(critic.parameters()).device
    stats = DualStats()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = len(chunks.p_index) + len(chunks.q_index)
        bar = tqdm(total=total, desc=label, unit="row", unit_scale=True, file=sys.stderr,
                   dynamic_ncols=True, leave=False)  # fmt: skip
    try:
        for x, side in chunks:
            stats.update(critic(x.to(device)), "p" if int(side) == 0 else "q")
            if bar is not None:
                bar.update(len(x))
    finally:
        critic.train(was_training)
        if bar is not None:
            bar.close()
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


def estimate_w1(
    p,
    q,
    *,
    critic: str = "groupsort",
    holdout: float = 0.2,
    steps: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
    logger=None,
    data_root: str | None = None,
    widths: tuple[int, ...] | None = None,
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
            or ``file.npz:key``, ``.pt``, ``.csv``), image folders, or dataset names
            (``mnist``, ``mnist:3``, ``fashion-mnist:train:7``, ``cifar10-subset``).
        critic: ``"groupsort"`` (Björck MLP + GroupSort, certified), ``"bcop"`` (BCOP
            convnet for images, certified), or the baselines ``"gp"``, ``"lp"``, ``"sn"``,
            ``"clip"`` (``certified=False``, raw dual values).
        holdout: fraction of each side held out for the reported value; 0 trains and
            evaluates on all samples (then ``value == train_value``, an in-sample number).
        steps: maximum training steps (default 10,000); training stops earlier when the
            monitored dual value plateaus after two learning-rate decays.
        batch_size: samples per side per step (default 512; 128 for ``bcop``, whose
            convolutions cost far more per sample).
        seed: fixes the split, the initialization and the batch order.
        progress: show a progress bar on stderr.
        logger: a Lightning logger (None: no logging).
        data_root: where named datasets live (default ``$WGAN_LIP_DATA``).
        widths, lr, eval_every, patience: critic widths, learning rate, steps between
            plateau checks, checks without improvement before a decay.
        max_time: optional wall-clock cap, Lightning format ``"DD:HH:MM:SS"``.
        accelerator, devices, strategy: passed to the Lightning ``Trainer`` (a GPU is used
            if present). Several devices train with DDP (``ddp_fork`` by default from
            Python) on the same global batches; the held-out scoring runs once, here.
        callbacks: extra Lightning callbacks.

    ``p`` and ``q`` may be larger than memory: ``.npy`` files and folders of ``.npy`` shards
    are memory-mapped and read in shuffled windows; the held-out rows are only indexed,
    and scored chunk by chunk. The first Ctrl-C stops training cleanly and the estimate
    so far is returned with ``stopped="interrupted"``.

    Returns:
        :class:`W1Estimate`.
    """
    start = time.perf_counter()
    if devices not in ("auto", 1, "1", [0]) and strategy is None:
        strategy = "ddp_fork"  # several processes from Python (parametrized layers do not pickle)
    if critic not in CRITICS:
        raise InputError(f"unknown critic {critic!r}; choose one of {', '.join(CRITICS)}")
    if steps is not None and steps < 1:
        raise InputError(f"steps must be positive, got {steps}")
    if batch_size is None:
        batch_size = 128 if critic == "bcop" else 512
    dm = TwoSampleDataModule(
        p, q, data_root=data_root, holdout=holdout, batch_size=batch_size,
        eval_every=eval_every, seed=seed,
    )  # fmt: skip
    dm.load()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = W1Critic(critic, input_shape=dm.input_shape, widths=widths, lr=lr)
        module.critic.fit_normalization(torch.cat(dm.sample("fit", NORMALIZATION_ROWS)))
        plateau = PlateauSchedule(patience=patience)
        interrupt = StopOnInterrupt()
        cbs = [plateau, interrupt, TrainTimer(), *(callbacks or [])]
        if progress:
            cbs.append(StepProgress())
        max_steps = steps if steps is not None else DEFAULT_MAX_STEPS
        with _quiet_lightning():
            trainer = L.Trainer(
                max_steps=max_steps, max_epochs=-1, max_time=max_time,
                accelerator=accelerator, devices=devices, strategy=strategy or "auto",
                logger=logger if logger else False,
                enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, callbacks=cbs,
            )  # fmt: skip
            with _fork_safe_threads(trainer):
                trainer.fit(module, datamodule=dm)
    net: RawInputCritic = module.critic.eval()
    bound = lipschitz_bound(net)
    scale = bound if net.certified else 1.0
    big = progress and dm.p.n + dm.q.n > PROGRESS_ROWS
    held = chunk_stats(net, dm.chunks("holdout"), big, "scoring held-out")
    value, low, high = held.interval(scale)
    fit = dm.chunks("fit", max_rows=TRAIN_VALUE_ROWS, seed=seed)
    train_value = chunk_stats(net, fit, big, "scoring train").value / scale
    if holdout == 0:
        value = train_value
    metrics = trainer.callback_metrics  # what forked / spawned workers hand back
    n_steps = int(metrics.get("trainer/steps", trainer.global_step))
    train_seconds = float(metrics.get("trainer/train_seconds", float("nan")))
    plateaued = bool(metrics.get("plateau/stopped", plateau.stopped))
    stopped = "plateau" if plateaued else "max_steps"
    if interrupt.interrupted:
        stopped = "interrupted"
    elif not plateaued and n_steps < max_steps:
        stopped = "max_time"
    return W1Estimate(
        value=value, ci_low=low, ci_high=high, train_value=train_value,
        lipschitz_bound=bound, n_p=dm.p.n, n_q=dm.q.n, dim=dm.p.dim,
        steps=n_steps, train_seconds=train_seconds, seconds=time.perf_counter() - start,
        certified=net.certified, critic_type=critic, holdout=holdout,
        n_holdout_p=held.n_p, n_holdout_q=held.n_q, stopped=stopped, critic=net,
    )  # fmt: skip
