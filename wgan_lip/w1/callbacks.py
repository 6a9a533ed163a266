"""Callbacks of the W1 critic: stop on a plateau (after decaying the learning rate), a
one-line progress bar over the whole run, and a Ctrl-C that stops training cleanly."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from .race import HORIZON, MIN_STEPS, MemberRace


class PlateauSchedule(Callback):
    """Decay the learning rate on a plateau of ``monitor``; stop after ``max_decays`` decays.

    With ``restore_best`` the module's weights at the best evaluation are put back when
    training ends (early stopping on the monitor split, which the held-out split never
    overlaps, so the held-out estimate stays unbiased).

    An evaluation improves on the best so far when it exceeds it by more than
    ``max(rel_tol * |best|, abs_tol)`` (``mode="max"``). After ``patience`` evaluations
    without improvement every learning rate is multiplied by ``factor``; once that has
    happened ``max_decays`` times, the next plateau stops training.

    Training also stops when more of it cannot change the answer: when the best of the last
    ``patience`` evaluations beats the best before them by less than ``resolution`` times
    the monitor's standard error (``se_monitor``, logged with it). The monitor split then
    cannot tell the gain from noise, and the held-out value, whose interval is wider still,
    would not move either.

    The monitor is the best of the members still training; when the race retires some
    (:class:`RaceMembers`), the watched series changes, so the schedule starts afresh
    (best, wait and window; the decays made so far stay).

    Args:
        monitor: the logged metric watched (``trainer.callback_metrics`` key); an evaluation
            that did not log it is ignored.
        patience: evaluations without improvement that make a plateau.
        rel_tol: relative part of the improvement threshold.
        abs_tol: absolute part of the improvement threshold (in the monitor's units).
        factor: multiplier of every learning rate at each decay.
        max_decays: decays before the next plateau stops training.
        restore_best: load the weights of the best evaluation back when training ends.
        se_monitor: the logged standard error of ``monitor`` (absent: no resolution stop).
        resolution: the fraction of that standard error a window must gain to go on (0:
            never stop for resolution).

    Example:
        >>> from wgan_lip.w1 import PlateauSchedule
        >>> cb = PlateauSchedule(patience=3, max_decays=1)
        >>> cb.state_dict()
        {'best': -inf, 'wait': 0, 'decays': 0}
    """

    def __init__(
        self,
        monitor: str = "val/dual_rel",
        patience: int = 10,
        rel_tol: float = 1e-3,
        abs_tol: float = 1e-5,
        factor: float = 0.3,
        max_decays: int = 2,
        restore_best: bool = True,
        se_monitor: str = "val/dual_se_rel",
        resolution: float = 0.25,
    ) -> None:
        self.monitor, self.patience = monitor, patience
        self.rel_tol, self.abs_tol = rel_tol, abs_tol
        self.factor, self.max_decays = factor, max_decays
        self.best, self.wait, self.decays = -math.inf, 0, 0
        self.stopped = False
        self.restore_best = restore_best
        self.best_state: dict | None = None
        self.best_step = 0
        self.se_monitor, self.resolution = se_monitor, resolution
        self.history: list[float] = []
        self.resolved = False  # stopped because more training could not change the answer
        self.watched: tuple | None = None  # the family members still training, last check

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        if self._watched_changed(pl_module):
            return
        value = float(trainer.callback_metrics[self.monitor])
        self.history.append(value)
        if self._resolved(trainer):
            self.stopped = self.resolved = True
            trainer.should_stop = True
        if not math.isfinite(self.best) or value > self.best + max(
            self.rel_tol * abs(self.best), self.abs_tol
        ):
            self.best, self.wait, self.best_step = value, 0, trainer.global_step
            if self.restore_best:
                self.best_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        if self.decays < self.max_decays:
            self.decays += 1
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] *= self.factor
        else:
            self.stopped = True
            trainer.should_stop = True

    def _watched_changed(self, pl_module: L.LightningModule) -> bool:
        """Whether the members behind the monitor changed since the last check (then the
        schedule starts afresh, and this check, made before the change, is skipped)."""
        watched = tuple(getattr(getattr(pl_module, "critic", None), "live", ()))
        changed = self.watched is not None and watched != self.watched
        self.watched = watched
        if changed:
            self.best, self.wait, self.history = -math.inf, 0, []
        return changed

    def _resolved(self, trainer: L.Trainer) -> bool:
        """The last ``patience`` evaluations gained less than ``resolution`` standard errors
        over the best before them."""
        se = trainer.callback_metrics.get(self.se_monitor)
        n = self.patience
        if se is None or self.resolution <= 0 or len(self.history) <= n:
            return False
        gain = max(self.history[-n:]) - max(self.history[:-n])
        return gain < self.resolution * float(se)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.restore_best and self.best_state is not None:
            pl_module.load_state_dict(self.best_state)
        # multi-process launchers hand callback_metrics (not callback state) back
        trainer.callback_metrics["plateau/stopped"] = torch.tensor(float(self.stopped))
        trainer.callback_metrics["plateau/resolved"] = torch.tensor(float(self.resolved))

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "decays": self.decays}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.decays = state["best"], state["wait"], state["decays"]


class RaceMembers(Callback):
    """Retire the family members that can no longer be reported; stop when none is left.

    The rule is :mod:`wgan_lip.w1.race`'s. After each monitor check (the module has
    recorded every member's best value), members the one-standard-error rule can no longer
    pick stop training. When none is left, the run ends; ``trainer.callback_metrics``
    then holds ``race/finished`` (1) and, for each retired member, ``race/retired/NAME``
    (the step it retired at), which multi-process launchers hand back to the main process.

    Args:
        horizon: the projected gain still to come, in units of the gain over the second
            half of the steps so far (:class:`~wgan_lip.w1.race.MemberRace`).
        min_steps: steps before any member may retire.
        one_se: the selection's rule (the one-standard-error rule, or the largest value).
        exclude: members the selection leaves out.

    Example:
        >>> from wgan_lip.w1.callbacks import RaceMembers
        >>> RaceMembers().min_steps
        100
    """

    def __init__(
        self,
        horizon: float = HORIZON,
        min_steps: int = MIN_STEPS,
        one_se: bool = True,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.horizon, self.min_steps = horizon, min_steps
        self.one_se, self.exclude = one_se, exclude
        self.race: MemberRace | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        family = pl_module.critic
        ranks = [family.complexity(k) for k in range(len(family.names))]
        self.race = MemberRace(
            family.names,
            ranks,
            family.trained,
            self.horizon,
            self.min_steps,
            self.one_se,
            self.exclude,
        )

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.race is None:
            return
        family = pl_module.critic
        best = family.best_values.tolist()
        for k in self.race.update(trainer.global_step, best, family.best_stderr.tolist()):
            family.retire(k)
        if self.race.finished:
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.race is None:
            return
        metrics = trainer.callback_metrics
        metrics["race/finished"] = torch.tensor(float(self.race.finished))
        for name, step in self.race.retired.items():
            metrics[f"race/retired/{name}"] = torch.tensor(float(step))


class TrainTimer(Callback):
    """Record the training steps and seconds in ``trainer.callback_metrics``.

    The keys are ``trainer/steps`` (the trainer's ``global_step`` when training ends) and
    ``trainer/train_seconds`` (the training loop only, no setup or scoring), 0-d tensors that
    multi-process launchers hand back to the main process. Takes no arguments.

    Example:
        >>> from types import SimpleNamespace
        >>> from wgan_lip.w1.callbacks import TrainTimer
        >>> trainer = SimpleNamespace(global_step=0, callback_metrics={})
        >>> timer = TrainTimer()
        >>> timer.on_train_start(trainer, None)
        >>> trainer.global_step = 25  # ... training ...
        >>> timer.on_train_end(trainer, None)
        >>> m = trainer.callback_metrics
        >>> m["trainer/steps"].item(), m["trainer/train_seconds"].item() >= 0
        (25.0, True)
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = trainer.callback_metrics
        metrics["trainer/steps"] = torch.tensor(float(trainer.global_step))
        metrics["trainer/train_seconds"] = torch.tensor(time.perf_counter() - self.start)


class StepProgress(Callback):
    """A progress bar over training steps (not epochs) on stderr.

    It shows steps per second, samples per second (all processes), the time left to
    ``max_steps`` (an upper bound when a plateau stops training earlier), the monitored
    value and, for a family, the member leading on the monitor split.

    Args:
        monitor: the logged metric shown as ``dual`` after each evaluation.
        label: the bar's description.

    Example:
        >>> from wgan_lip.w1 import StepProgress
        >>> bar = StepProgress(label="fold 1/5")
        >>> bar.label, bar.monitor
        ('fold 1/5', 'val/dual')
    """

    def __init__(self, monitor: str = "val/dual", label: str = "W1 critic") -> None:
        self.monitor, self.label = monitor, label
        self.bar = None
        self.samples, self.start = 0, 0.0
        self.postfix: dict[str, str] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from tqdm.auto import tqdm

        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        self.bar = tqdm(
            total=total,
            initial=trainer.global_step,
            desc=self.label,
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )
        self.samples, self.start = 0, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is None:
            return
        if isinstance(batch, (list, tuple)):
            self.samples += sum(len(b) for b in batch) * trainer.world_size
        self.bar.update(trainer.global_step - self.bar.n)
        elapsed = time.perf_counter() - self.start
        if self.samples and elapsed > 0:
            self.postfix["samples/s"] = f"{self.samples / elapsed:,.0f}"
            self.bar.set_postfix(self.postfix, refresh=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None and self.monitor in trainer.callback_metrics:
            self.postfix["dual"] = f"{float(trainer.callback_metrics[self.monitor]):.4g}"
            family = getattr(pl_module, "critic", None)
            if getattr(family, "reports_members", False):  # the member leading so far
                self.postfix["lead"] = family.names[family.best_member()]
            self.bar.set_postfix(self.postfix)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class StopOnInterrupt(Callback):
    """The first Ctrl-C (SIGINT) finishes the current step and stops training cleanly.

    The run then goes on to its evaluation and reports what it has (``interrupted`` is then
    True); a second Ctrl-C aborts as usual (``aborted`` is then True). The handler is
    installed at ``on_fit_start`` only in the main thread of a single-process run, and the
    previous one is put back when the fit ends or fails. Takes no arguments.

    Example:
        >>> import signal
        >>> from types import SimpleNamespace
        >>> from wgan_lip.w1.callbacks import StopOnInterrupt
        >>> cb = StopOnInterrupt()
        >>> cb.on_fit_start(SimpleNamespace(world_size=1, should_stop=False), None)
        >>> signal.getsignal(signal.SIGINT) == cb._handler  # Ctrl-C now stops cleanly
        True
        >>> cb.on_fit_end(None, None)
        >>> signal.getsignal(signal.SIGINT) == cb._handler, cb.interrupted  # handler removed
        (False, False)
    """

    def __init__(self) -> None:
        self.interrupted = False
        self.aborted = False  # a Ctrl-C that reached the trainer (the second one)
        self._previous = None
        self._second = None  # the handler the first Ctrl-C set for the second one
        self._trainer: L.Trainer | None = None

    def _handler(self, signum, frame) -> None:
        self.interrupted = True
        if self._trainer is not None:
            self._trainer.should_stop = True
        # the second Ctrl-C must reach the trainer as KeyboardInterrupt (its clean abort),
        # unless the previous handler was a Python one of the caller's
        self._second = self._previous if callable(self._previous) else signal.default_int_handler
        signal.signal(signal.SIGINT, self._second)
        print(
            "\nwgan-lip: interrupted; stopping after this step (Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread() and trainer.world_size == 1:
            if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
                return  # Ctrl-C is ignored here (a background job): keep it so
            self._trainer, self._second = trainer, None
            self._previous = signal.signal(signal.SIGINT, self._handler)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.aborted = self.aborted or isinstance(exception, KeyboardInterrupt)
        # Lightning ignores SIGINT while it tears an interrupted fit down; ours still goes
        self.restore(also=(signal.SIG_IGN,) if self.aborted else ())

    def restore(self, also: tuple = ()) -> None:
        """Put back the SIGINT handler found at ``on_fit_start`` if ours (or one of
        ``also``) is still installed."""
        if self._trainer is not None:
            ours = [self._handler, *([self._second] if self._second is not None else []), *also]
            if signal.getsignal(signal.SIGINT) in ours:
                # exactly what was there, SIG_DFL included (``None``: set outside Python)
                previous = self._previous
                if previous is None:
                    previous = signal.default_int_handler
                signal.signal(signal.SIGINT, previous)
            self._trainer = None
