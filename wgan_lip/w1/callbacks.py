"""Callbacks of the W1 critic: stop on a plateau (after decaying the learning rate), and a
one-line progress bar over the whole run."""

from __future__ import annotations

import math
import sys

import lightning as L
from lightning.pytorch.callbacks import Callback


class PlateauSchedule(Callback):
    """Decay the learning rate on a plateau of ``monitor``; stop after ``max_decays`` decays.

    With ``restore_best`` the module's weights at the best evaluation are put back when
    training ends (early stopping on the monitor split, which the held-out split never
    overlaps, so the held-out estimate stays unbiased).

    An evaluation improves on the best so far when it exceeds it by more than
    ``max(rel_tol * |best|, abs_tol)`` (``mode="max"``). After ``patience`` evaluations
    without improvement every learning rate is multiplied by ``factor``; once that has
    happened ``max_decays`` times, the next plateau stops training.
    """

    def __init__(
        self,
        monitor: str = "val/dual_rel",
        patience: int = 5,
        rel_tol: float = 1e-3,
        abs_tol: float = 1e-5,
        factor: float = 0.3,
        max_decays: int = 2,
        restore_best: bool = True,
    ) -> None:
        self.monitor, self.patience = monitor, patience
        self.rel_tol, self.abs_tol = rel_tol, abs_tol
        self.factor, self.max_decays = factor, max_decays
        self.best, self.wait, self.decays = -math.inf, 0, 0
        self.stopped = False
        self.restore_best = restore_best
        self.best_state: dict | None = None
        self.best_step = 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
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

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.restore_best and self.best_state is not None:
            pl_module.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "decays": self.decays}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.decays = state["best"], state["wait"], state["decays"]


class StepProgress(Callback):
    """A progress bar over training steps (not epochs) on stderr, with the monitored value."""

    def __init__(self, monitor: str = "val/dual", label: str = "W1 critic") -> None:
        self.monitor, self.label = monitor, label
        self.bar = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from tqdm.auto import tqdm

        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        self.bar = tqdm(
            total=total, initial=trainer.global_step, desc=self.label, unit="step",
            file=sys.stderr, dynamic_ncols=True, leave=False,
        )  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.bar is not None:
            self.bar.update(trainer.global_step - self.bar.n)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None and self.monitor in trainer.callback_metrics:
            self.bar.set_postfix({"dual": f"{float(trainer.callback_metrics[self.monitor]):.4g}"})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
