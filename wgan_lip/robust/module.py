"""``LipschitzClassifier``: a certified-robust classifier over ``wgan_lip.models`` networks.

Thin: the network comes from :func:`~wgan_lip.models.lipschitz_mlp` (``fc3``: the FC-3 of
Anil et al., Björck layers + GroupSort), :func:`~wgan_lip.models.lipschitz_convnet`
(``bcop``: BCOP convolutions + GroupSort with invertible downsampling, in the spirit of the
"Large" network of Li et al.), :func:`~wgan_lip.models.aol_convnet` (``aol``) or
:func:`~wgan_lip.models.sll_convnet` (``sll``: residual SLL layers), the losses and the
certificate rule from :mod:`wgan_lip.robust.margins`. Every validation reports clean
accuracy and certified accuracy at the L2 radii ``eval_eps`` and at the L-inf radii
``eval_linf`` (through ``|d|_2 <= sqrt(dim) |d|_inf``), with ``L = lipschitz_bound(model)``
computed then.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from ..errors import InputError
from ..layers import lipschitz_bound
from ..models import aol_convnet, lipschitz_convnet, lipschitz_mlp, sll_convnet
from .margins import hkr_loss, is_certified, linf_to_l2, multiclass_hinge, tempered_cross_entropy

ARCHITECTURES = ("fc3", "bcop", "aol", "sll")
LOSSES = ("hinge", "xent", "hkr")
SCHEDULES = ("step", "cosine")


class LipschitzClassifier(L.LightningModule):
    """A classifier whose Lipschitz bound certifies its predictions.

    Args:
        architecture: ``fc3`` (flattened input, Björck MLP of ``widths``), ``bcop``, ``aol``
            (AOL convolutions and dense layers) or ``sll`` (residual SLL convnet).
        input_shape, num_classes: from the datamodule when None.
        widths: hidden widths (fc3) or the head widths (convnets).
        channels, blocks_per_stage: convolution stages (convnets only).
        activation, group_size: GroupSort settings (``maxmin`` = GroupSort(2)).
        loss: ``hinge`` (multi-class hinge with margin ``sqrt(2) * eps_train``, Li et al.),
            ``hkr`` (that hinge minus ``kr_weight`` times the one-vs-rest KR term) or
            ``xent`` (cross-entropy of ``logits / temperature``).
        eps_train: the target L2 radius of the margin losses.
        temperature: ``xent``: the divisor of the logits (see
            :func:`~wgan_lip.robust.margins.tempered_cross_entropy`).
        kr_weight: ``hkr``: weight of the KR term, non-negative.
        lr: Adam learning rate.
        lr_schedule: ``step`` (x0.1 at each epoch of ``epochs_decay``; constant when empty)
            or ``cosine`` (to 0 over the run: over ``trainer.max_time`` when set, else over
            ``trainer.max_steps`` / ``max_epochs``).
        epochs_decay: ``step``: the epochs at which the learning rate is divided by 10.
        eval_eps, eval_linf: radii reported at each validation.

    Raises:
        InputError: an unknown ``architecture``, ``loss`` or ``lr_schedule``, a negative
            ``kr_weight`` or radius, or (when the network is built) a convnet on inputs that
            are not square images with a side divisible by ``2 ** len(channels)``.

    Example:
        >>> import torch
        >>> from wgan_lip.robust import LipschitzClassifier
        >>> clf = LipschitzClassifier("fc3", input_shape=(1, 8, 8), num_classes=3, widths=(32,))
        >>> clf.net(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 3])
    """

    def __init__(
        self,
        architecture: Literal["fc3", "bcop", "aol", "sll"] = "fc3",
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        widths: Sequence[int] = (1024, 1024, 1024),
        channels: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        activation: Literal["maxmin", "groupsort", "fullsort", "relu"] = "maxmin",
        group_size: int = 2,
        loss: Literal["hinge", "xent", "hkr"] = "hinge",
        eps_train: float = 0.5,
        temperature: float = 0.25,
        kr_weight: float = 0.1,
        lr: float = 1e-3,
        lr_schedule: Literal["step", "cosine"] = "step",
        epochs_decay: Sequence[int] = (),
        eval_eps: Sequence[float] = (0.3, 1.0, 1.58),
        eval_linf: Sequence[float] = (0.1,),
    ) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise InputError(
                f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}"
            )
        if loss not in LOSSES:
            raise InputError(f"unknown loss {loss!r}; use one of {', '.join(LOSSES)}")
        if lr_schedule not in SCHEDULES:
            raise InputError(f"unknown lr_schedule {lr_schedule!r}; use step or cosine")
        if not kr_weight >= 0:
            raise InputError(f"kr_weight must be non-negative, got {kr_weight}")
        if any(not (e >= 0) for e in (*eval_eps, *eval_linf)) or not eps_train >= 0:
            raise InputError("radii (eps_train, eval_eps, eval_linf) must be non-negative")
        self.save_hyperparameters()
        self.net: torch.nn.Module | None = None
        if input_shape is not None and num_classes is not None:
            self._build(input_shape, num_classes)
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _build(self, input_shape: Sequence[int], num_classes: int) -> None:
        h = self.hparams
        shape = tuple(int(s) for s in input_shape)
        h.input_shape, h.num_classes = list(shape), int(num_classes)
        if h.architecture == "fc3":
            mlp = lipschitz_mlp(math.prod(shape), h.widths, num_classes,
                                activation=h.activation, group_size=h.group_size)  # fmt: skip
            self.net = torch.nn.Sequential(torch.nn.Flatten(), *mlp)
        else:
            if len(shape) != 3 or shape[1] != shape[2]:
                raise InputError(
                    f"the {h.architecture} classifier needs square images, got {shape}"
                )
            build = {"bcop": lipschitz_convnet, "aol": aol_convnet, "sll": sll_convnet}
            if shape[1] % 2 ** len(h.channels):
                raise InputError(
                    f"image side {shape[1]} is not divisible by 2**{len(h.channels)} (one 2x "
                    "downsampling per entry of channels); use fewer channel stages"
                )
            self.net = build[h.architecture](shape[0], shape[1], h.channels, num_classes,
                                             blocks_per_stage=h.blocks_per_stage,
                                             head_widths=h.widths,
                                             group_size=h.group_size)  # fmt: skip

    def setup(self, stage: str) -> None:
        if self.net is None:  # LightningCLI: shapes from the data
            dm = self.trainer.datamodule
            self._build(dm.input_shape, dm.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def lipschitz_bound(self) -> float:
        """The certified bound of the network on inputs of the data's shape (convolutions
        bounded exactly on their sizes), the ``L`` of every certificate this module logs."""
        return lipschitz_bound(self.net, tuple(self.hparams.input_shape))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.hparams
        if h.loss == "hinge":
            return multiclass_hinge(logits, labels, h.eps_train)
        if h.loss == "hkr":
            return hkr_loss(logits, labels, h.eps_train, h.kr_weight)
        return tempered_cross_entropy(logits, labels, h.temperature)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss(logits, y)
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/accuracy", (logits.argmax(1) == y).float().mean().detach())
        return loss

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        if self.hparams.lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.LambdaLR(opt, self._cosine_factor)
            return [opt], [{"scheduler": sched, "interval": "step"}]
        if not self.hparams.epochs_decay:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(self.hparams.epochs_decay), 0.1)
        return [opt], [sched]

    def _cosine_factor(self, step: int) -> float:
        """``(1 + cos(pi t)) / 2`` of the run's progress ``t``: the share of
        ``trainer.max_time`` spent training when a time budget is set (the budgeted runs of
        the CPU configs), else of the estimated optimizer steps."""
        trainer = self._trainer
        progress = 0.0
        if trainer is not None:
            timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
            remaining = timer.time_remaining("train") if timer is not None else None
            if remaining is not None:
                elapsed = timer.time_elapsed("train")
                progress = elapsed / max(elapsed + remaining, 1e-9)
            else:
                total = trainer.estimated_stepping_batches
                progress = step / total if math.isfinite(total) and total > 0 else 0.0
        return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))

    # ----- evaluation: certified accuracy with the bound of the current weights -----

    def _eval_start(self) -> None:
        self._val = []

    def _eval_step(self, batch) -> None:
        x, y = batch
        self._val.append((self.net(x).detach().cpu(), y.cpu()))

    def _eval_end(self, prefix: str) -> None:
        if not self._val:
            return
        logits = torch.cat([v[0] for v in self._val])
        labels = torch.cat([v[1] for v in self._val])
        self._val = []
        if self.trainer is not None and self.trainer.world_size > 1:
            # DDP: each process saw a share (the sampler pads the shares to equal sizes);
            # every process then certifies the whole set with the same bound
            logits = self.all_gather(logits.to(self.device)).flatten(0, 1).cpu()
            labels = self.all_gather(labels.to(self.device)).flatten(0, 1).cpu()
        bound = self.lipschitz_bound()
        dim = math.prod(self.hparams.input_shape)
        metrics = {"accuracy": float((logits.argmax(1) == labels).float().mean()),
                   "lipschitz_bound": bound}  # fmt: skip
        for e in self.hparams.eval_eps:
            metrics[f"certified_l2_{e:g}"] = float(
                is_certified(logits, labels, e, bound).float().mean()
            )
        for e in self.hparams.eval_linf:
            cert = is_certified(logits, labels, linf_to_l2(e, dim), bound)
            metrics[f"certified_linf_{e:g}"] = float(cert.float().mean())
        for k, v in metrics.items():
            self.log(f"{prefix}/{k}", v, sync_dist=False)

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")
