"""``WorkThreads``: a Lightning callback that trains on the threads the work needs.

:mod:`wgan_lip.threads` chooses the count (one thread for small steps, the free cores for
large ones, the user's ``WGAN_LIP_THREADS`` / ``OMP_NUM_THREADS`` when set); this callback
applies it for the length of a ``fit`` and puts torch's own setting back afterwards, also
when training fails. A module opts in from ``configure_callbacks``, so a plain
``trainer.fit(model)`` gets it too.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from .threads import choose_threads


def batch_rows(trainer: L.Trainer, default: int = 64) -> int:
    """Rows of a training batch: the datamodule's ``batch_size``, else ``default``.

    Args:
        trainer: the trainer (its datamodule may be None).
        default: the count when the datamodule names none.

    Returns:
        A positive row count.

    Example:
        >>> from types import SimpleNamespace
        >>> from wgan_lip.work_threads import batch_rows
        >>> batch_rows(SimpleNamespace(datamodule=None))
        64
    """
    return int(getattr(trainer.datamodule, "batch_size", 0) or default)


class WorkThreads(Callback):
    """Run ``fit`` on :func:`~wgan_lip.threads.choose_threads` threads; restore them after.

    Args:
        work: the module's multiply-adds per training step, given the trainer and module
            (called once, when fitting starts).

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> from wgan_lip.work_threads import WorkThreads
        >>> before = torch.get_num_threads()
        >>> cb = WorkThreads(lambda trainer, module: 1e3)  # a tiny step: one thread
        >>> cb.on_fit_start(SimpleNamespace(), None)
        >>> torch.get_num_threads()
        1
        >>> cb.on_fit_end(SimpleNamespace(), None)
        >>> torch.get_num_threads() == before
        True
    """

    def __init__(self, work: Callable[[L.Trainer, L.LightningModule], float]) -> None:
        self.work = work
        self.before: int | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(choose_threads(self.work(trainer, pl_module)))

    def _restore(self) -> None:
        if self.before is not None:
            torch.set_num_threads(self.before)
            self.before = None

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore()
