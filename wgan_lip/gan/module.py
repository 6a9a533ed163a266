"""``WGAN``: a Wasserstein GAN whose critic constraint is a switch (hard, gp, lp, sn, clip).

Manual optimization. Each training batch is one **critic step**: fakes are generated without
gradient (detached), the critic maximizes the Kantorovich-Rubinstein dual
``E_real f - E_fake f`` (plus its penalty, or followed by clipping), and after every
``n_critic`` critic steps the generator takes one step on ``-E_fake f``.

Step counting: ``critic_step`` and ``generator_step`` are this module's own counters (saved in
checkpoints). Lightning's ``trainer.global_step``, and therefore ``trainer.max_steps``, counts
the optimizer steps of *both* optimizers: ``global_step = critic_step + generator_step``, so
``max_steps = (n_critic + 1) * G`` trains ``G`` generator steps.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from ..checkpoints import peek_checkpoint
from ..constraints import Constraint, ConstraintDefaults, ConstraintName, get_constraint
from ..errors import InputError
from ..layers import lipschitz_bound
from ..threads import forward_macs
from ..w1 import global_kr_dual, kr_dual
from ..work_threads import WorkThreads, batch_rows
from .architecture import (
    MOVED_OPTIONS,
    SECTIONS,
    GANArchitecture,
    GANEvaluation,
    GANOptimizer,
    GANSampling,
    migrate_hparams,
)
from .features import load_feature_net
from .images import log_image, sample_grid, toy_scatter
from .metrics import (
    certified_w1_metric,
    classifier_fid_kid,
    confident_classes,
    exact_w1_metric,
    generate,
)
from .refine import latent_lipschitz, refine_latents

# What ``load_from_checkpoint`` takes for itself; its other keyword arguments go to the WGAN.
_LOADER_ARGS = ("map_location", "hparams_file", "strict", "weights_only")


class WGAN(L.LightningModule):
    """Wasserstein GAN with a hard-constrained (certified) or baseline critic.

    Args:
        constraint: ``hard`` (Björck/BCOP + GroupSort, 1-Lipschitz by construction),
            ``gp`` (gradient penalty), ``lp`` (one-sided penalty), ``sn`` (spectral norm),
            ``clip`` (weight clipping).
        data_shape: shape of one sample, ``(2,)`` or ``(C, H, H)``; from the datamodule when
            None.
        architecture: the generator and the critic (:class:`GANArchitecture`; the critic a
            :class:`~wgan_lip.networks.NetworkSpec`); YAML ``architecture:`` with its keys,
            e.g. ``{critic: {kind: convnet, conv: cayley, activation: maxmin}}``.
        optimizer: learning rates, betas, ``n_critic``, penalty weight, clip value and
            schedule (:class:`GANOptimizer`); every unset one is the constraint's paper
            default (:attr:`wgan_lip.constraints.Constraint.defaults`).
        sampling: the generator's moving average, reused fakes and critic-guided refinement
            of the samples (:class:`GANSampling`).
        evaluation: the validation metrics: sample count, latent seed, certified estimate,
            feature net (:class:`GANEvaluation`).
        check_finite_every: critic steps between checks that the losses are finite.

    Raises:
        InputError: an unknown constraint, a bad section (an unknown or moved key, a
            ``schedule`` other than constant or linear, ``ema_decay`` outside ``[0, 1)``, a
            negative ``refine_steps`` or non-positive ``refine_lr``), a non-positive
            ``n_critic`` or learning rate, or a ``data_shape`` the networks cannot take.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import WGAN
        >>> arch = {"generator_widths": [16], "critic": {"widths": [16]}}
        >>> gan = WGAN("hard", data_shape=(2,), architecture=arch)
        >>> gan.settings.n_critic, gan.settings.lr, gan.critic.certified, gan.latent_dim
        (5, 0.0005, True, 2)
        >>> gan(torch.randn(3, 2)).shape  # latents to samples
        torch.Size([3, 2])
        >>> WGAN("hard", optimizer={"n_critic": 1, "lr": 1e-3}).settings.n_critic
        1
    """

    # Options of older configs that moved, each to its new dotted place under init_args: the
    # CLI names the new place when one is written the old way.
    MOVED_OPTIONS: ClassVar[dict[str, str]] = MOVED_OPTIONS

    def __init__(
        self,
        constraint: ConstraintName = "hard",
        data_shape: Sequence[int] | None = None,
        architecture: GANArchitecture | None = None,
        optimizer: GANOptimizer | None = None,
        sampling: GANSampling | None = None,
        evaluation: GANEvaluation | None = None,
        check_finite_every: int = 50,
    ) -> None:
        super().__init__()
        self.constraint: Constraint = get_constraint(constraint)
        self.architecture = GANArchitecture.of(architecture)
        self.optimization = GANOptimizer.of(optimizer)
        self.sampling = GANSampling.of(sampling)
        self.evaluation = GANEvaluation.of(evaluation)
        self.save_hyperparameters()
        for name in SECTIONS:  # plain values in checkpoints
            self.hparams[name] = self._section(name).as_dict()
        self.automatic_optimization = False
        self.settings = self._settings()
        self.critic: torch.nn.Module | None = None
        self.generator: torch.nn.Module | None = None
        self.generator_ema: torch.nn.Module | None = None
        self.critic_step = 0
        self.generator_step = 0
        self._losses: list[tuple[str, int, torch.Tensor]] = []
        self._val_real: list[torch.Tensor] = []
        self._feature_net = None
        if data_shape is not None:
            self._build(data_shape)

    # ----- construction -----

    def _section(self, name: str):
        return self.optimization if name == "optimizer" else getattr(self, name)

    def _settings(self) -> ConstraintDefaults:
        s = self.optimization.settings(self.constraint)
        if s.n_critic < 1 or not s.lr > 0:
            raise InputError(f"n_critic and the learning rate must be positive, got {s}")
        if self.constraint.defaults.clip_value > 0 and not s.clip_value > 0:  # a clipping one
            raise InputError(
                f"clip_value must be positive for the {self.constraint.name} critic, "
                f"got {s.clip_value}"
            )
        lr_g = self.optimization.generator_lr
        if lr_g is not None and not lr_g > 0:
            raise InputError(
                f"optimizer.generator_lr must be positive (or None for the critic's), got {lr_g}"
            )
        return s

    def _build(self, data_shape: Sequence[int]) -> None:
        shape = tuple(int(s) for s in data_shape)
        self.hparams.data_shape = list(shape)
        # the critic's complete spec, so that a checkpoint says which network it holds
        self.architecture = self.architecture.for_shape(shape, self.constraint.name)
        self.hparams.architecture = self.architecture.as_dict()
        self.critic = self.architecture.build_critic(self.constraint.name, shape)
        self.generator = self.architecture.build_generator(shape)
        if self.sampling.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    def setup(self, stage: str) -> None:
        if self.critic is None:  # LightningCLI: the shape comes from the data
            self._build(self.trainer.datamodule.data_shape)
        # DDP: each backward reaches one network only (the critic step leaves the generator
        # without gradients), so DDP must not wait for every parameter. This hook runs
        # before the strategy wraps the module, so `strategy: ddp` just works.
        ddp_kwargs = getattr(self.trainer.strategy, "_ddp_kwargs", None)
        if isinstance(ddp_kwargs, dict):
            ddp_kwargs.setdefault("find_unused_parameters", True)
        path = self.evaluation.feature_net
        if path and self._feature_net is None:
            if not os.path.isfile(os.path.expanduser(path)):
                # Training is still useful without it; say once how to get the metric.
                rank_zero_warn(
                    f"classifier-FID/KID off: feature net {path!r} not found; train it with "
                    f"`python scripts/train_feature_net.py --dataset DATASET --out {path}`"
                )
            else:
                # Not a submodule: it is a fixed yardstick, not part of the model, so it stays
                # out of checkpoints (a run resumes without it) and out of train mode.
                object.__setattr__(self, "_feature_net", load_feature_net(path)[0])

    @property
    def is_image(self) -> bool:
        return len(self.hparams.data_shape) == 3

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that samples: the moving average when ``sampling.ema_decay`` is on."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.sampler(z)

    @property
    def latent_dim(self) -> int:
        return self.architecture.latent_dim

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, device=self.device)

    def configure_callbacks(self):
        # small toy networks train fastest on one thread, and beside a busy process by far
        return [WorkThreads(WGAN._step_work)]

    @staticmethod
    def _step_work(trainer: L.Trainer, module: WGAN) -> float:
        """Multiply-adds of one generator + critic forward pass on a training batch."""
        rows = batch_rows(trainer)
        # zeros: the count does not depend on the values, and no random number is drawn
        z = torch.zeros(rows, module.latent_dim, device=module.device)
        x = torch.zeros(rows, *module.hparams.data_shape, device=module.device)
        return forward_macs(module.generator, z) + forward_macs(module.critic, x)

    def configure_optimizers(self):
        s = self.settings
        lr_g = self.optimization.generator_lr
        lr_g = lr_g if lr_g is not None else s.lr
        opt_c = self.constraint.optimizer(self.critic.parameters(), s.lr, s.betas)
        opt_g = self.constraint.optimizer(self.generator.parameters(), lr_g, s.betas)
        if self.optimization.schedule == "constant":
            return [opt_c, opt_g]
        max_steps = self.trainer.max_steps if self.trainer is not None else -1
        if max_steps is None or max_steps < 1:
            raise InputError("lr_schedule: linear needs trainer.max_steps")
        g_total = max(1, max_steps // (s.n_critic + 1))
        c_total = g_total * s.n_critic

        def linear(total: int):
            return lambda step: max(0.0, 1.0 - step / total)

        scheds = [
            torch.optim.lr_scheduler.LambdaLR(opt_c, linear(c_total)),
            torch.optim.lr_scheduler.LambdaLR(opt_g, linear(g_total)),
        ]
        return [opt_c, opt_g], scheds

    # ----- training -----

    def training_step(self, batch, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, (list, tuple)) else batch
        opt_c, opt_g = self.optimizers()
        scheds = self.lr_schedulers() or []
        n = len(real)

        generator_turn = (self.critic_step + 1) % self.settings.n_critic == 0
        keep = generator_turn and self.sampling.reuse_fakes
        # Generated before the critic's optimizer is toggled, which would freeze the
        # generator's parameters; without gradient unless the generator step reuses them.
        with torch.set_grad_enabled(keep):
            fake = self.generator(self.noise(n))
        with self.toggled_optimizer(opt_c):
            detached = fake.detach()  # the critic step trains the critic only
            scores = self.critic(torch.cat([real, detached]))
            # under DDP: the dual of the global batch, whatever each process holds
            objective, dual = global_kr_dual(scores[:n], scores[n:])
            loss_c = -objective
            penalty = self.constraint.penalty(
                self.critic, real, detached, self.settings.penalty_weight
            )
            if penalty is not None:
                loss_c = loss_c + penalty
                self.log("train/penalty", penalty.detach())
            opt_c.zero_grad(set_to_none=True)
            self.manual_backward(loss_c)
            opt_c.step()
        self.constraint.after_step(self.critic, self.settings.clip_value)
        if scheds:
            scheds[0].step()
        self.critic_step += 1
        self._losses.append(("critic", self.critic_step, loss_c.detach()))
        self.log("train/critic_loss", loss_c.detach())
        self.log("train/critic_dual", dual.detach())

        if generator_turn:
            with self.toggled_optimizer(opt_g):
                fake = fake if keep else self.generator(self.noise(n))
                loss_g = -self.critic(fake).mean()
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(loss_g)
                opt_g.step()
            if scheds:
                scheds[1].step()
            self.generator_step += 1
            self._update_ema()
            self._losses.append(("generator", self.critic_step, loss_g.detach()))
            self.log("train/generator_loss", loss_g.detach())
            self.log("train/generator_step", float(self.generator_step))

        if self.critic_step % self.hparams.check_finite_every == 0:
            self.check_finite()

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        # a shorter memory early on, so the average does not drag the initial weights along
        step = self.generator_step
        decay = min(self.sampling.ema_decay, (1 + step) / (10 + step))
        ema = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema, list(self.generator.parameters()), 1.0 - decay)
        for b_ema, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)  # BatchNorm statistics: the current ones

    def check_finite(self) -> None:
        """Raise ``FloatingPointError`` naming the first non-finite loss since the last check.

        The losses are kept on the device and checked in one transfer every
        ``check_finite_every`` critic steps, not synchronized every step.
        """
        if not self._losses:
            return
        values = torch.stack([v for _, _, v in self._losses]).float().cpu()
        bad = (~torch.isfinite(values)).nonzero()
        losses, self._losses = self._losses, []
        if len(bad):
            name, step, _ = losses[int(bad[0])]
            raise FloatingPointError(
                f"WGAN ({self.hparams.constraint}): {name} loss is {float(values[int(bad[0])])} "
                f"at critic step {step} (generator step {step // self.settings.n_critic}); "
                "training stopped: lower the learning rate or check the data"
            )

    def on_train_end(self) -> None:
        self.check_finite()

    # ----- evaluation -----

    def on_validation_epoch_start(self) -> None:
        self._val_real = []

    def validation_step(self, batch, batch_idx: int) -> None:
        self._val_real.append(batch[0] if isinstance(batch, (list, tuple)) else batch)

    def on_validation_epoch_end(self) -> None:
        self.check_finite()
        if self.trainer.sanity_checking or not self._val_real:
            return
        real = torch.cat(self._val_real)
        self._val_real = []
        distributed = self.trainer.world_size > 1
        if distributed:  # each process validated a share: evaluate on all of them, once
            real = self.all_gather(real).reshape(-1, *real.shape[1:])
        real = real[: self.evaluation.samples].cpu()
        fake = metrics = None
        if self.trainer.is_global_zero:  # the others would only throw their samples away
            fake = self.generate(len(real))
            metrics = self.evaluate(real, fake)
        if distributed:
            metrics = self.trainer.strategy.broadcast(metrics, src=0)
        for key, value in metrics.items():
            self.log(f"val/{key}", value, sync_dist=False)
        # the x axis of the validation curves (Lightning's step counts both optimizers)
        self.log("val/generator_step", float(self.generator_step), sync_dist=False)
        if self.trainer.is_global_zero:
            self._log_images(real, fake[:2000])

    @torch.no_grad()
    def evaluate(self, real: torch.Tensor, fake: torch.Tensor | None = None) -> dict[str, float]:
        """All metrics of the current generator against the held-out ``real`` samples.

        ``fake`` defaults to as many generated samples as ``real``, from the fixed latent
        seed ``evaluation.seed`` (refined when ``refine_steps`` says so). The training critic's own
        dual value (``critic_dual``, ``critic_w1_certified``) scores the plain generator's
        samples of the same latents when ``refine_steps`` is on: refined samples were pushed
        up that very critic, which would say more about the refinement than the training.
        """
        h = self.evaluation
        fake = self.generate(len(real)) if fake is None else fake
        out = {"exact_w1": exact_w1_metric(fake, real, max_samples=h.samples, seed=h.seed)}
        # The training critic's own dual value on held-out real vs generated samples.
        scored = self.generate(len(fake), refine_steps=0) if self.sampling.refine_steps else fake
        was_training = self.critic.training
        self.critic.eval()
        scores_r = torch.cat([self.critic(c.to(self.device)).cpu() for c in real.split(1000)])
        scores_f = torch.cat([self.critic(c.to(self.device)).cpu() for c in scored.split(1000)])
        self.critic.train(was_training)
        out["critic_dual"] = float(kr_dual(scores_r.double(), scores_f.double()))
        if self.constraint.certified:
            bound = lipschitz_bound(self.critic)
            out["lipschitz_bound"] = bound
            out["critic_w1_certified"] = out["critic_dual"] / bound
        if h.estimate_steps > 0 and (self.trainer is None or self.trainer.world_size == 1):
            with torch.enable_grad():
                est = certified_w1_metric(
                    fake, real, steps=h.estimate_steps, max_samples=h.samples, seed=h.seed
                )
            out.update(
                estimate_w1=est.value,
                estimate_w1_ci_low=est.ci_low,
                estimate_w1_ci_high=est.ci_high,
            )
        if self._feature_net is not None and self.is_image:
            out.update(
                classifier_fid_kid(fake, real, self._feature_net, kid_subset_size=h.kid_subset_size)
            )
            classes = confident_classes(fake, self._feature_net)
            out.update(confident=classes["confident"], min_class_share=classes["min_class_share"])
        if not all(math.isfinite(v) for v in out.values()):
            bad = {k: v for k, v in out.items() if not math.isfinite(v)}
            raise FloatingPointError(f"WGAN evaluation at critic step {self.critic_step}: {bad}")
        return out

    def generate(self, n: int, *, refine_steps: int | None = None) -> torch.Tensor:
        """``n`` samples for the fixed latent seed ``evaluation.seed`` (eval mode, on CPU).

        With ``refine_steps`` (default: ``sampling.refine_steps``) above 0 the latents first take
        that many latent-DOT steps up the critic (:mod:`wgan_lip.gan.refine`; ``k_eff``
        from 1,000 latent pairs of seed ``evaluation.seed + 1``).
        """
        h, seed = self.sampling, self.evaluation.seed
        steps = h.refine_steps if refine_steps is None else refine_steps
        if steps < 0:
            raise InputError(f"refine_steps must be >= 0, got {steps}")
        if steps == 0:
            return generate(self.sampler, n, self.latent_dim, seed=seed)
        sampler, critic = self.sampler, self.critic
        flags = sampler.training, critic.training
        sampler.eval(), critic.eval()
        try:
            k_eff = latent_lipschitz(sampler, critic, self.latent_dim, seed=seed + 1)
            move = partial(
                refine_latents, sampler, critic, steps=steps, lr=h.refine_lr, k_eff=k_eff
            )
            return generate(sampler, n, self.latent_dim, seed=seed, move_latents=move)
        finally:
            sampler.train(flags[0]), critic.train(flags[1])

    def _log_images(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        if self.trainer is None or not self.trainer.loggers:  # no logger: no pictures
            return
        if self.is_image:
            image = sample_grid(fake[:64])
        elif self.hparams.data_shape == [2]:
            title = f"{self.hparams.constraint} critic, generator step {self.generator_step}"
            image = toy_scatter(self.critic, real, fake, title)
        else:
            return
        log_image(self.trainer, "samples", image, self.generator_step)

    # ----- checkpoints -----

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["wgan_steps"] = {"critic": self.critic_step, "generator": self.generator_step}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = _comparable(migrate_hparams(checkpoint.get("hyper_parameters", {})))
        wanted = _comparable(dict(self.hparams))
        diff = [
            f"{k}={saved.get(k)} (config: {v})"
            for k, v in wanted.items()
            if v is not None and saved.get(k) != v
        ]
        if saved.get("constraint") != wanted.get("constraint"):  # its critic's layers follow
            diff = [d for d in diff if not d.startswith("critic.")]
        if diff:
            raise InputError(
                "checkpoint does not match the config: it has "
                + ", ".join(diff)
                + "; use the config it was trained with, or a new run folder"
            )
        steps = checkpoint.get("wgan_steps", {})
        self.critic_step = int(steps.get("critic", 0))
        self.generator_step = int(steps.get("generator", 0))

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):  # type: ignore[override]
        """Lightning's loader, for checkpoints of every layout, with section overrides merged.

        Older checkpoints' flat options are moved into their sections (see
        :func:`~wgan_lip.gan.architecture.migrate_hparams`). A keyword argument overrides the
        saved hyperparameters: a section's mapping only the keys it names
        (``sampling={"refine_steps": 10}`` keeps the saved ``ema_decay``), and an older flat
        name (``refine_steps=10``) its new place."""
        checkpoint = peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))
        saved: dict[str, Any] = dict(checkpoint.get("hyper_parameters", {}))
        loader = {k: kwargs.pop(k) for k in _LOADER_ARGS if k in kwargs}
        saved = migrate_hparams(saved)
        given = {k: v.as_dict() if hasattr(v, "as_dict") else v for k, v in kwargs.items()}
        given = migrate_hparams(
            {**{k: saved[k] for k in ("constraint", "data_shape") if k in saved}, **given}
        )
        for name in SECTIONS:
            base, over = saved.get(name), given.get(name)
            if isinstance(base, Mapping) and isinstance(over, Mapping):
                given[name] = {**base, **over}
            elif name in saved and name not in given:
                given[name] = saved[name]  # older layouts: the flat keys are not read
        return super().load_from_checkpoint(checkpoint_path, *args, **loader, **given)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # Checkpoints from before the critic's wrapper was shared have no (identity)
        # normalization buffers: give them the ones a fresh critic has.
        if self.critic is not None and any(k.startswith("critic.net.") for k in state_dict):
            state_dict = dict(state_dict)
            for name, buf in self.critic.named_buffers(recurse=False):
                state_dict.setdefault(f"critic.{name}", buf.detach().clone())
        if any(k.startswith("_feature_net.") for k in state_dict):  # older checkpoints kept it
            state_dict = {k: v for k, v in state_dict.items() if not k.startswith("_feature_net.")}
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise InputError(f"checkpoint does not match this WGAN's networks ({first})") from None


def _comparable(hparams: dict) -> dict:
    """The hyperparameters that fix the networks and the schedule, flat and as plain values
    (YAML lists vs tuples), for comparing a checkpoint with a config: the critic's complete
    spec and the constraint's defaults filled in, so that an unset option and its default
    compare equal."""
    out: dict[str, Any] = {k: hparams.get(k) for k in ("constraint", "data_shape")}
    shape = hparams.get("data_shape")
    constraint = hparams.get("constraint") or "hard"
    optimizer = GANOptimizer.of(hparams.get("optimizer"))
    out["n_critic"] = optimizer.settings(constraint).n_critic
    out["ema_decay"] = GANSampling.of(hparams.get("sampling")).ema_decay
    arch = GANArchitecture.of(hparams.get("architecture"))
    if shape is not None:
        arch = arch.for_shape(shape, constraint)
    for k, v in arch.as_dict().items():
        if k == "critic":
            out.update({f"critic.{f}": x for f, x in (v or {}).items()})
        else:
            out[k] = v
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in out.items()}
