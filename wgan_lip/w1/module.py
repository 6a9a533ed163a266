"""``W1Critic``: the Lightning module that trains a critic on the Kantorovich-Rubinstein dual.

Thin by design: the critic comes from :func:`~wgan_lip.w1.critics.build_critic`, the loss
from :mod:`wgan_lip.w1.loss`, the penalties from :mod:`wgan_lip.penalties`. Validation
reports the dual value on the monitor split (for the plateau), test the certified value and
95% interval on the held-out split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import lightning as L
import torch

from ..checkpoints import peek_checkpoint
from ..constraints import Constraint, get_constraint
from ..critic import certifying_copy
from ..errors import InputError
from ..layers import lipschitz_bound
from ..networks import NetworkSpec, only_used
from .critics import FAMILY_HAS_NO_NETWORK, build_critic, critic_spec
from .data import NORMALIZATION_ROWS
from .family import DEFAULT_FAMILY, CriticFamily
from .loss import Z95, global_kr_dual
from .names import CRITICS, SINGLE_CRITICS, CriticName


class W1Critic(L.LightningModule):
    """Train a critic ``f`` to maximize ``E_P f - E_Q f`` on batches ``(x_p, x_q)``.

    The critic is always a :class:`~wgan_lip.w1.family.CriticFamily`: a single critic is
    a family of one (:meth:`~wgan_lip.w1.family.CriticFamily.of_one`), so training,
    evaluation and selection take one path.

    Args:
        critic: ``family`` (certified critics trained together, the best on the monitor
            split wins: :mod:`wgan_lip.w1.family`), ``groupsort`` | ``bcop`` (certified) or
            ``gp`` | ``lp`` | ``sn`` | ``clip``.
        input_shape: shape of one sample; inferred from the datamodule when None.
        network: a single critic's network (a :class:`~wgan_lip.networks.NetworkSpec` or
            mapping: ``widths``, ``channels``, ``group_size``, ``linear``, ``conv``,
            ``activation``, ``kind``...; unset fields are the critic's defaults). The
            critic's constraint must admit its layers. A family names its members' layers
            in ``family`` instead.
        family: the members of the ``family`` critic.
        lr: learning rate (default 1e-3 with Adam; the constraint's paper rate with
            RMSprop, 5e-5 for ``clip``).
        penalty_weight: lambda of the gp / lp penalties (default: the constraint's, 10).
        clip_value: the weight-clipping box of ``clip`` (default: the constraint's, 0.01).

    Raises:
        InputError: an unknown ``critic``, a ``network`` for the family, or (through the
            critic's builder) a bad ``input_shape``, family member or layer.

    Example:
        >>> from wgan_lip.w1 import W1Critic
        >>> module = W1Critic("groupsort", input_shape=(2,), network={"widths": [16]})
        >>> type(module.critic).__name__, module.critic.certified, module.critic.names
        ('CriticFamily', True, ['groupsort'])
    """

    # options of older configs and where they went (the CLI's hint)
    MOVED_OPTIONS: ClassVar[dict[str, str]] = {
        "widths": "network.widths",
        "group_size": "network.group_size",
        "channels": "network.channels",
    }

    def __init__(
        self,
        critic: CriticName = "groupsort",
        input_shape: Sequence[int] | None = None,
        network: NetworkSpec | None = None,
        family: Sequence[str] = DEFAULT_FAMILY,
        lr: float | None = None,
        penalty_weight: float | None = None,
        clip_value: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(network, NetworkSpec):  # hyperparameters stay plain (YAML, checkpoints)
            network = network.as_dict()
        self.save_hyperparameters()
        self.kind = critic
        # a family is of hard critics; a single critic names its constraint
        if critic not in CRITICS:
            raise InputError(f"unknown critic {critic!r}; choose one of {', '.join(CRITICS)}")
        if critic == "family" and network:
            raise InputError(FAMILY_HAS_NO_NETWORK)
        self.network = NetworkSpec.of(network)
        self.constraint: Constraint = get_constraint(
            "hard" if critic == "family" else SINGLE_CRITICS[critic][0]
        )
        d = self.constraint.defaults
        self.penalty_weight = d.penalty_weight if penalty_weight is None else penalty_weight
        self.clip_value = d.clip_value if clip_value is None else clip_value
        self.lr = lr or d.w1_lr
        self.critic: CriticFamily | None = None
        if input_shape is not None:
            self._build(input_shape)
        self._stats = _ScoreSums(1)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):  # type: ignore[override]
        """Lightning's loader, for checkpoints of every layout: older ones kept the network's
        ``widths``, ``group_size`` and ``channels`` flat; they become the ``network`` spec of
        the very network they were trained as (see :func:`migrate_hparams`)."""
        if "network" not in kwargs:
            hparams = peek_checkpoint(checkpoint_path, kwargs.get("weights_only")).get(
                "hyper_parameters", {}
            )
            if "network" not in hparams and hparams.get("critic", "family") != "family":
                kwargs["network"] = migrate_hparams(hparams)["network"]
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # a single critic sits in a family of one now: older checkpoints held its network at
        # critic.net (no per-member bookkeeping): move it, keep the fresh bookkeeping
        if self.critic is not None and any(k.startswith("critic.net.") for k in state_dict):
            state_dict = {
                (
                    f"critic.groups.network.{k[len('critic.') :]}"
                    if k.startswith("critic.net.")
                    else k
                ): v
                for k, v in state_dict.items()
            }
            for name, value in self.critic.state_dict().items():
                state_dict.setdefault(f"critic.{name}", value)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _build(self, input_shape: Sequence[int]) -> None:
        h = self.hparams
        if h.critic == "family":
            self.critic = CriticFamily(input_shape, tuple(h.family))
        else:
            # the checkpoint keeps the complete network, so that it loads as the network it
            # is whatever the defaults of the version that loads it
            self.network = only_used(critic_spec(h.critic, input_shape, self.network))
            h.network = only_used(self.network).as_dict()
            self.critic = CriticFamily.of_one(build_critic(h.critic, input_shape, self.network))
        # closed-form members alone: no optimizer step (manual optimization that never
        # steps), so the run is one monitor check
        self.automatic_optimization = not self.closed_form_only

    def prepare_critic(self, dm) -> None:
        """Fit the input normalization and the closed-form members on fit rows."""
        xp, xq = dm.sample("fit", NORMALIZATION_ROWS)
        self.critic.fit_normalization(torch.cat([xp, xq]))
        self.critic.fit_closed_form(xp, xq, seed=getattr(dm, "seed", 0))

    def setup(self, stage: str) -> None:
        if self.critic is None:  # LightningCLI: the shape comes from the data
            dm = self.trainer.datamodule
            self.hparams.input_shape = list(dm.input_shape)
            self._build(dm.input_shape)
            self.prepare_critic(dm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    @property
    def data_radius(self) -> float:
        """RMS distance of the data to its centre: the scale of the plateau tolerance."""
        return float(self.critic.scale) * math.sqrt(math.prod(self.critic.input_shape))

    @property
    def closed_form_only(self) -> bool:
        """A family whose members are all closed-form (``linear``, ``transport``): nothing
        to train; one monitor check compares them."""
        return not any(self.critic.trained)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        if self.closed_form_only:  # no step: the one (final) monitor check compares them
            return None
        xp, xq = batch
        # one pass: the constrained weights once; normalized units, whatever the data's scale
        scores = self.critic(torch.cat([xp, xq]), trained_only=True)
        if scores.shape[1] == 0:  # every trained member retired (the race ends the run)
            return None
        # Under DDP each process holds part of the global batch, maybe unevenly: the
        # objective is weighted so the averaged gradient is that of the global dual.
        objective, dual = global_kr_dual(scores[: len(xp)], scores[len(xp) :])
        loss = -objective
        dual = dual.max() * self.critic.scale  # the best member, in the user's units
        penalty = self.constraint.penalty(self.critic.user_scores, xp, xq, self.penalty_weight)
        if penalty is not None:
            loss = loss + penalty
        if self.trainer.world_size > 1:  # DDP wants every parameter in the loss: idle add 0
            loss = loss + 0.0 * sum(p.sum() for p in self.critic.idle_parameters())
        self._last_loss = loss.detach()  # checked at each evaluation: no host sync per step
        self.log("train/dual", dual, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # the critic's parameters are its network's (shift and scale are buffers)
        self.constraint.after_step(self.critic, self.clip_value)
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
        return self.constraint.optimizer(self.critic.param_groups(self.lr), self.lr)

    def on_train_end(self) -> None:
        self.critic.load_best()  # each member back at its best monitor value

    # ----- evaluation: streaming sums of the scores per side (per member for a family) -----

    def _eval_start(self) -> None:
        self._stats = _ScoreSums(len(self.critic.names))

    def _eval_step(self, batch) -> None:
        x, side = batch
        if len(x) == 0:  # the empty chunk of a process without rows (see SideChunks)
            return
        self._stats.update(self.critic(x), int(side))

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
        self.critic.record(values.tolist(), stderr.tolist())
        # the plateau watches the members still training (all members when none is)
        pairs = list(zip(values.tolist(), stderr.tolist(), self.critic.live, strict=True))
        live = [(v, se) for v, se, t in pairs if t]
        best, se = max(live) if live else max((v, se) for v, se, _ in pairs)
        value = best * float(self.critic.scale)
        self.log("val/dual", value, sync_dist=False)
        self.log("val/dual_rel", value / self.data_radius, sync_dist=False)
        # its standard error on the monitor rows: how finely the monitor can tell values apart
        self.log("val/dual_se_rel", se * float(self.critic.scale) / self.data_radius)

    def on_test_epoch_start(self) -> None:
        # The certified numbers come from a float64 copy of the reported critic, scoring the
        # held-out rows at the data's precision (the test loader yields float64 rows).
        self._certifier = certifying_copy(self.critic.member(self.critic.select()))
        self._stats = _ScoreSums(1)

    def test_step(self, batch, batch_idx: int) -> None:
        x, side = batch
        if len(x) == 0:  # the empty chunk of a process without rows (see SideChunks)
            return
        scores = self._certifier(x.to(torch.float64)).reshape(-1, 1)
        self._stats.update(scores, int(side))

    def on_test_epoch_end(self) -> None:
        values, stderr = self._reduced_values()  # in the data's units (the copy's forward)
        critic = self._certifier
        bound = lipschitz_bound(critic) if self.trainer.is_global_zero else None
        if self.trainer.world_size > 1:  # computed once, the same number everywhere
            bound = self.trainer.strategy.broadcast(bound, src=0)
        scale = 1.0 / (bound if critic.certified else 1.0)
        value, half = float(values[0]) * scale, Z95 * float(stderr[0]) * scale
        for name, v in (
            ("w1", value),
            ("ci_low", value - half),
            ("ci_high", value + half),
            ("lip", bound),
        ):
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


def migrate_hparams(hparams: Mapping) -> dict:
    """A W1 critic's saved hyperparameters with older flat network keys moved into ``network``.

    Older checkpoints kept ``widths``, ``group_size`` and ``channels`` flat; they become the
    ``network`` spec that builds the same network: for ``bcop`` the channels and the first
    width as the head, for the MLP critics the widths. Hyperparameters that already have a
    ``network`` come back unchanged (as a new dict).

    Args:
        hparams: the saved hyperparameters (not modified).

    Returns:
        A new dict, without the flat keys, with ``network`` (None when nothing was set).

    Example:
        >>> from wgan_lip.w1.module import migrate_hparams
        >>> migrate_hparams({"critic": "bcop", "widths": (64, 64), "group_size": 2,
        ...                  "channels": (4, 8)})["network"]
        {'widths': [64], 'channels': [4, 8], 'group_size': 2}
    """
    out = dict(hparams)
    flat = {k: out.pop(k) for k in ("widths", "group_size", "channels") if k in out}
    if "network" in out or not flat:
        out.setdefault("network", None)
        return out
    network: dict = {}
    widths = flat.get("widths")
    if out.get("critic") == "bcop":
        if widths:
            network["widths"] = [int(widths[0])]
        if flat.get("channels") is not None:
            network["channels"] = [int(c) for c in flat["channels"]]
    elif widths is not None:
        network["widths"] = [int(w) for w in widths]
    if flat.get("group_size") is not None and out.get("critic") in ("groupsort", "bcop"):
        network["group_size"] = int(flat["group_size"])  # the baselines' ReLU does not read it
    out["network"] = network or None
    return out
