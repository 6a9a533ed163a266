"""``W1Critic``: the Lightning module that trains a critic on the Kantorovich-Rubinstein dual.

Thin by design: the critic comes from :func:`~wgan_lip.w1.critics.build_critic`, the loss
from :mod:`wgan_lip.w1.loss`, the penalties from :mod:`wgan_lip.penalties`. Validation
reports the dual value on the monitor split (for the plateau), test the certified value and
95% interval on the held-out split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch

from ..layers import lipschitz_bound
from ..penalties import clip_weights, gradient_penalty
from .critics import RawInputCritic, build_critic
from .data import NORMALIZATION_ROWS
from .loss import DualStats, global_kr_dual


class W1Critic(L.LightningModule):
    """Train a critic ``f`` to maximize ``E_P f - E_Q f`` on batches ``(x_p, x_q)``.

    Args:
        critic: ``groupsort`` | ``bcop`` (certified) or ``gp`` | ``lp`` | ``sn`` | ``clip``.
        input_shape: shape of one sample; inferred from the datamodule when None.
        widths: hidden widths of the MLP critics (the bcop head width is ``widths[0]``).
        lr: learning rate (default 1e-3 with Adam; 5e-5 with RMSprop for ``clip``, the
            setting of Arjovsky et al.).
        penalty_weight: lambda of the gp / lp penalties (10, Gulrajani et al.).
        clip_value: the weight-clipping box of ``clip`` (0.01).
    """

    def __init__(
        self,
        critic: str = "groupsort",
        input_shape: Sequence[int] | None = None,
        widths: Sequence[int] | None = None,
        group_size: int = 2,
        channels: Sequence[int] = (8, 16),
        lr: float | None = None,
        penalty_weight: float = 10.0,
        clip_value: float = 0.01,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.kind = critic
        self.critic: RawInputCritic | None = None
        if input_shape is not None:
            self._build(input_shape)
        self._stats = DualStats()

    def _build(self, input_shape: Sequence[int]) -> None:
        h = self.hparams
        self.critic = build_critic(
            h.critic, input_shape, widths=h.widths, group_size=h.group_size, channels=h.channels
        )

    def setup(self, stage: str) -> None:
        if self.critic is None:  # LightningCLI: the shape comes from the data
            dm = self.trainer.datamodule
            self.hparams.input_shape = list(dm.input_shape)
            self._build(dm.input_shape)
            self.critic.fit_normalization(torch.cat(dm.sample("fit", NORMALIZATION_ROWS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    @property
    def data_radius(self) -> float:
        """RMS distance of the data to its centre: the scale of the plateau tolerance."""
        return float(self.critic.scale) * math.sqrt(math.prod(self.critic.input_shape))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        xp, xq = batch
        scores = self.critic(torch.cat([xp, xq]))  # one pass: the constrained weights once
        # Under DDP each process holds part of the global batch, maybe unevenly: the
        # objective is weighted so the averaged gradient is that of the global dual.
        objective, dual = global_kr_dual(scores[: len(xp)], scores[len(xp) :])
        loss = -objective
        if self.kind in ("gp", "lp"):
            loss = loss + gradient_penalty(
                self.critic, xp, xq, self.hparams.penalty_weight, one_sided=self.kind == "lp"
            )
        self._last_loss = loss.detach()  # checked at each evaluation: no host sync per step
        self.log("train/dual", dual, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.kind == "clip":
            clip_weights(self.critic.net, self.hparams.clip_value)

    def configure_optimizers(self):
        if self.kind == "clip":
            return torch.optim.RMSprop(self.critic.parameters(), lr=self.hparams.lr or 5e-5)
        return torch.optim.Adam(self.critic.parameters(), lr=self.hparams.lr or 1e-3)

    # ----- evaluation: streaming sums of the scores per side -----

    def _eval_start(self) -> None:
        self._stats = DualStats()

    def _eval_step(self, batch) -> None:
        x, side = batch
        self._stats.update(self.critic(x), "p" if int(side) == 0 else "q")

    def _reduced_stats(self) -> DualStats:
        t = self._stats.as_tensor().to(self.device)
        if self.trainer is not None and self.trainer.world_size > 1:
            t = self.trainer.strategy.reduce(t, reduce_op="sum")
        return DualStats.from_tensor(t.cpu())

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        last = getattr(self, "_last_loss", None)
        if last is not None and not torch.isfinite(last):
            raise FloatingPointError(f"W1 critic: loss is {float(last)} at step {self.global_step}")
        value = self._reduced_stats().value
        self.log("val/dual", value, sync_dist=False)
        self.log("val/dual_rel", value / self.data_radius, sync_dist=False)

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        stats = self._reduced_stats()
        bound = lipschitz_bound(self.critic) if self.trainer.is_global_zero else None
        if self.trainer.world_size > 1:  # computed once, the same number everywhere
            bound = self.trainer.strategy.broadcast(bound, src=0)
        scale = bound if self.critic.certified else 1.0
        value, low, high = stats.interval(scale)
        for name, v in (("w1", value), ("ci_low", low), ("ci_high", high), ("lip", bound)):
            self.log(f"test/{name}", v, sync_dist=False)
