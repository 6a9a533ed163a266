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
from torch import nn

from ..constraints import Constraint, get_constraint
from ..critic import certifying_copy
from ..errors import InputError
from ..layers import lipschitz_bound
from .critics import RawInputCritic, build_critic
from .data import NORMALIZATION_ROWS
from .family import DEFAULT_FAMILY, CriticFamily
from .loss import Z95, global_kr_dual
from .names import CRITICS, SINGLE_CRITICS, CriticName

DEFAULT_LR = 1e-3  # Adam; a constraint whose paper uses RMSprop (clip) keeps its paper rate


class W1Critic(L.LightningModule):
    """Train a critic ``f`` to maximize ``E_P f - E_Q f`` on batches ``(x_p, x_q)``.

    Args:
        critic: ``family`` (certified critics trained together, the best on the monitor
            split wins: :mod:`wgan_lip.w1.family`), ``groupsort`` | ``bcop`` (certified) or
            ``gp`` | ``lp`` | ``sn`` | ``clip``.
        family: the members of the ``family`` critic.
        input_shape: shape of one sample; inferred from the datamodule when None.
        widths: hidden widths of the MLP critics (the bcop head width is ``widths[0]``).
        group_size: GroupSort group size of the certified single critics.
        channels: channels of the ``bcop`` critic's BCOP stages.
        lr: learning rate (default 1e-3 with Adam; 5e-5 with RMSprop for ``clip``, the
            setting of Arjovsky et al.).
        penalty_weight: lambda of the gp / lp penalties (10, Gulrajani et al.).
        clip_value: the weight-clipping box of ``clip`` (0.01).

    Raises:
        InputError: an unknown ``critic`` (or, through the critic's builder, a bad
            ``input_shape`` or family member).

    Example:
        >>> from wgan_lip.w1 import W1Critic
        >>> module = W1Critic("groupsort", input_shape=(2,), widths=(16,))
        >>> type(module.critic).__name__, module.critic.certified, module.is_family
        ('RawInputCritic', True, False)
    """

    def __init__(
        self,
        critic: CriticName = "groupsort",
        input_shape: Sequence[int] | None = None,
        widths: Sequence[int] | None = None,
        group_size: int = 2,
        channels: Sequence[int] = (8, 16),
        lr: float | None = None,
        penalty_weight: float = 10.0,
        clip_value: float = 0.01,
        family: Sequence[str] = DEFAULT_FAMILY,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.kind = critic
        # a family is of hard critics; a single critic names its constraint
        if critic not in CRITICS:
            raise InputError(f"unknown critic {critic!r}; choose one of {', '.join(CRITICS)}")
        self.constraint: Constraint = get_constraint(
            "hard" if critic == "family" else SINGLE_CRITICS[critic][0]
        )
        self.critic: RawInputCritic | CriticFamily | None = None
        if input_shape is not None:
            self._build(input_shape)
        self._stats = _ScoreSums(1)

    @property
    def is_family(self) -> bool:
        return self.kind == "family"

    def _build(self, input_shape: Sequence[int]) -> None:
        h = self.hparams
        if self.is_family:
            self.critic = CriticFamily(input_shape, tuple(h.family))
            # closed-form members alone: no optimizer step (manual optimization that
            # never steps), so the run is one monitor check
            self.automatic_optimization = not self.closed_form_only
            return
        self.critic = build_critic(
            h.critic, input_shape, widths=h.widths, group_size=h.group_size, channels=h.channels
        )

    def prepare_critic(self, dm) -> None:
        """Fit the input normalization (and the family's closed-form parts) on fit rows."""
        xp, xq = dm.sample("fit", NORMALIZATION_ROWS)
        self.critic.fit_normalization(torch.cat([xp, xq]))
        if self.is_family:
            self.critic.fit_closed_form(xp, xq, seed=getattr(dm, "seed", 0))

    def setup(self, stage: str) -> None:
        if self.critic is None:  # LightningCLI: the shape comes from the data
            dm = self.trainer.datamodule
            self.hparams.input_shape = list(dm.input_shape)
            self._build(dm.input_shape)
            self.prepare_critic(dm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def _train_scores(self, x: torch.Tensor, trained_only: bool = False) -> torch.Tensor:
        """Scores in normalized units: ``(B,)`` for one critic, ``(B, K)`` for a family
        (its trained members only with ``trained_only``)."""
        if self.is_family:
            return self.critic(x, trained_only=trained_only)
        return self.critic.normalized_scores(x)

    @property
    def data_radius(self) -> float:
        """RMS distance of the data to its centre: the scale of the plateau tolerance."""
        return float(self.critic.scale) * math.sqrt(math.prod(self.critic.input_shape))

    @property
    def closed_form_only(self) -> bool:
        """A family whose members are all closed-form (``linear``, ``transport``): nothing
        to train; one monitor check compares them."""
        return self.is_family and not any(self.critic.trained)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if self.closed_form_only:  # no step: the one (final) monitor check compares them
            return None
        xp, xq = batch
        # one pass: the constrained weights once; normalized units, whatever the data's scale
        scores = self._train_scores(torch.cat([xp, xq]), trained_only=True)
        # Under DDP each process holds part of the global batch, maybe unevenly: the
        # objective is weighted so the averaged gradient is that of the global dual.
        objective, dual = global_kr_dual(scores[: len(xp)], scores[len(xp) :])
        loss = -objective
        dual = dual.max() * self.critic.scale  # the best member, in the user's units
        penalty = self.constraint.penalty(self.critic, xp, xq, self.hparams.penalty_weight)
        if penalty is not None:
            loss = loss + penalty
        self._last_loss = loss.detach()  # checked at each evaluation: no host sync per step
        self.log("train/dual", dual, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # the critic's parameters are its network's (shift and scale are buffers)
        self.constraint.after_step(self.critic, self.hparams.clip_value)
        trainer = self.trainer
        if self.closed_form_only or 0 < trainer.max_steps <= trainer.global_step:
            # The last step: stopping here (rather than letting max_steps end the loop)
            # makes Lightning run one final monitor check, so a run shorter than an
            # evaluation interval still compares the family's members and keeps each
            # member's (and a single critic's) weights at its best check.
            trainer.should_stop = True

    def configure_optimizers(self):
        if self.closed_form_only:  # nothing to optimize, and no step is ever taken
            return torch.optim.SGD([{"params": []}], lr=0.0)
        c = self.constraint
        lr = self.hparams.lr or (c.defaults.lr if c.defaults.optimizer == "rmsprop" else DEFAULT_LR)
        params = self.critic.param_groups(lr) if self.is_family else self.critic.parameters()
        return c.optimizer(params, lr)

    def on_train_end(self) -> None:
        if self.is_family:  # each member back at its best monitor value
            self.critic.load_best()

    # ----- evaluation: streaming sums of the scores per side (per member for a family) -----

    def _eval_start(self) -> None:
        self._stats = _ScoreSums(len(self.critic.names) if self.is_family else 1)

    def _eval_step(self, batch) -> None:
        x, side = batch
        if len(x) == 0:  # the empty chunk of a process without rows (see SideChunks)
            return
        scores = self._train_scores(x)
        self._stats.update(scores if scores.dim() == 2 else scores[:, None], int(side))

    def _reduced_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-critic ``(value, stderr)`` over all processes, in normalized units."""
        t = self._stats.as_tensor().to(self.device)
        if self.trainer is not None and self.trainer.world_size > 1:
            t = self.trainer.strategy.reduce(t, reduce_op="sum")
        return _ScoreSums.values(t.cpu())

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        last = getattr(self, "_last_loss", None)
        if last is not None and not torch.isfinite(last):
            raise FloatingPointError(f"W1 critic: loss is {float(last)} at step {self.global_step}")
        values, stderr = self._reduced_values()
        if self.is_family:
            self.critic.record(values.tolist(), stderr.tolist())
            trained = [v for v, t in zip(values.tolist(), self.critic.trained, strict=False) if t]
            best = max(trained) if trained else float(values.max())
        else:
            best = float(values[0])
        value = best * float(self.critic.scale)
        self.log("val/dual", value, sync_dist=False)
        self.log("val/dual_rel", value / self.data_radius, sync_dist=False)

    def on_test_epoch_start(self) -> None:
        # The certified numbers come from a float64 copy of the reported critic, scoring the
        # held-out rows at the data's precision (the test loader yields float64 rows).
        critic, _ = self._reported_critic()
        self._certifier = certifying_copy(critic)
        self._stats = _ScoreSums(1)

    def test_step(self, batch, batch_idx: int) -> None:
        x, side = batch
        if len(x) == 0:  # the empty chunk of a process without rows (see SideChunks)
            return
        scores = self._certifier(x.to(torch.float64)).reshape(-1, 1)
        self._stats.update(scores, int(side))

    def _reported_critic(self) -> tuple[nn.Module, int]:
        if self.is_family:
            k = self.critic.select()
            return self.critic.member(k), k
        return self.critic, 0

    def on_test_epoch_end(self) -> None:
        values, stderr = self._reduced_values()  # in the data's units (the copy's forward)
        critic = self._certifier
        bound = lipschitz_bound(critic) if self.trainer.is_global_zero else None
        if self.trainer.world_size > 1:  # computed once, the same number everywhere
            bound = self.trainer.strategy.broadcast(bound, src=0)
        scale = 1.0 / (bound if critic.certified else 1.0)
        value, half = float(values[0]) * scale, Z95 * float(stderr[0]) * scale
        for name, v in (("w1", value), ("ci_low", value - half), ("ci_high", value + half),
                        ("lip", bound)):  # fmt: skip
            self.log(f"test/{name}", v, sync_dist=False)


class _ScoreSums:
    """Counts, sums and sums of squares of ``(B, K)`` scores per side, in float64."""

    def __init__(self, k: int) -> None:
        # (2 sides, 3 sums, K); a process that scores nothing contributes zeros to the reduce
        self.t = torch.zeros(2, 3, k, dtype=torch.float64)

    def update(self, scores: torch.Tensor, side: int) -> None:
        s = scores.detach().to(torch.float64)
        self.t[side, 0] += len(s)
        self.t[side, 1] += s.sum(0).cpu()
        self.t[side, 2] += (s * s).sum(0).cpu()

    def as_tensor(self) -> torch.Tensor:
        return self.t

    @staticmethod
    def values(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, total, sq = t[:, 0], t[:, 1], t[:, 2]
        if bool((n == 0).any()):
            raise ValueError("W1 critic: no evaluation scores for P or Q")
        mean = total / n
        var = (sq / n - mean * mean).clamp_min(0) * n / (n - 1).clamp_min(1)
        return mean[0] - mean[1], (var[0] / n[0] + var[1] / n[1]).sqrt()
