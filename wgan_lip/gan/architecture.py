"""The options of a WGAN as specs that read as YAML sections, and the migration of older ones.

- :class:`GANArchitecture` (``architecture:``): the generator, and the critic as a
  :class:`~wgan_lip.networks.NetworkSpec` (any registered layer the constraint admits).
- :class:`GANOptimizer` (``optimizer:``): learning rates, betas, critic steps, penalty weight,
  clip value, schedule; every ``None`` is the constraint's paper default
  (:class:`~wgan_lip.constraints.ConstraintDefaults`).
- :class:`GANSampling` (``sampling:``): the generator's moving average, reused fakes, and
  critic-guided refinement of the samples.
- :class:`GANEvaluation` (``evaluation:``): the validation metrics.

LightningCLI binds each one from YAML as ``model.init_args.<section>``; a checkpoint stores
each as a plain dict under ``hyper_parameters[<section>]``. Checkpoints written before the
sections existed kept these options flat beside the others, and the critic as flat
``critic_*`` fields: :func:`migrate_hparams` moves them in (:data:`MOVED_OPTIONS` says where
each one went).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import torch
from torch import nn

from ..errors import InputError
from ..models import dcgan_generator, mlp_generator
from ..networks import LIBRARY_DEFAULTS, NetworkSpec, only_used, used_fields
from ..options import dataclass_of
from .critics import GAN_SIZES, build_gan_critic
from .refine import DEFAULT_REFINE_LR


def _plain(value: Any) -> Any:
    if isinstance(value, NetworkSpec):
        return value.as_dict()
    return list(value) if isinstance(value, tuple) else value


class _Section:
    """What the option sections share: :meth:`of` and :meth:`as_dict`."""

    SECTION = ""

    @classmethod
    def of(cls, value):
        """``value`` as a spec: itself, the defaults for None, or built from a mapping (YAML,
        a checkpoint's dict); an unknown key is a one-line error naming the known ones."""

        def moved(key: str) -> str | None:
            place = MOVED_OPTIONS.get(f"{cls.SECTION}.{key}")
            return None if place is None else _moved_message(f"{cls.SECTION}.{key}", place)

        return dataclass_of(cls, value, cls.SECTION, moved)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists, ints, dicts): what a checkpoint and a YAML file hold."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class GANArchitecture(_Section):
    """The generator and the critic of a WGAN (YAML ``architecture:``).

    Vectors ``(d,)`` use the generator's widths, square images ``(C, H, H)`` its channels.

    Args:
        latent_dim: generator input size (None: 2 for vectors, 128 for images).
        generator_widths: hidden widths of the vector generator (ReLU MLP).
        generator_base_channels: channels of the image generator's last block (DCGAN-style).
        critic: the critic's :class:`~wgan_lip.networks.NetworkSpec` (or a mapping of its
            fields: ``{kind: convnet, conv: cayley, activation: maxmin}``); unset fields
            (None: all of them) are the constraint's default for the data shape, see
            :func:`~wgan_lip.gan.critics.build_gan_critic`. ``kind: mlp`` on images scores
            the flattened pixels (for ``hard``, a Björck MLP: much cheaper per step than
            BCOP on a CPU).

    Raises:
        InputError: from :meth:`of`, a value that is not a mapping, an unknown key, or a key
            of the older flat layout (saying where it went); from :meth:`build_critic`, an
            unknown constraint, a layer it does not admit, or a shape its critic cannot take.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import GANArchitecture
        >>> arch = GANArchitecture(generator_widths=(32, 32), critic={"widths": [32, 32]})
        >>> arch.for_shape((2,)).latent_dim, arch.for_shape((1, 28, 28)).latent_dim
        (2, 128)
        >>> generator, critic = arch.build_generator((2,)), arch.build_critic("hard", (2,))
        >>> critic(generator(torch.randn(5, 2))).shape
        torch.Size([5])
        >>> GANArchitecture.of({"critic": {"activation": "maxmin"}}).critic.activation
        'maxmin'
        >>> GANArchitecture.of({"critic_widths": [8]})
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: architecture.critic_widths moved: write \
architecture.critic.widths (the critic is a network spec: kind, widths, channels, linear, \
conv, activation, group_size, ...)
    """

    SECTION = "architecture"

    latent_dim: int | None = None
    generator_widths: tuple[int, ...] = (512, 512, 512)
    generator_base_channels: int = 64
    critic: NetworkSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "generator_widths", tuple(int(v) for v in self.generator_widths))
        if self.critic is not None:
            object.__setattr__(self, "critic", NetworkSpec.of(self.critic))

    def for_shape(self, data_shape: Sequence[int], constraint: str | None = None):
        """This spec with ``latent_dim`` filled in for samples of ``data_shape``, and with a
        ``constraint`` the critic's complete spec (every field set)."""
        spec = self
        if spec.latent_dim is None:
            spec = replace(spec, latent_dim=2 if len(data_shape) == 1 else 128)
        if constraint is not None:
            from ..constraints import get_constraint

            shape = tuple(int(s) for s in data_shape)
            full = get_constraint(constraint).critic_network(self.critic, shape, GAN_SIZES)
            spec = replace(spec, critic=only_used(full))
        return spec

    def build_critic(self, constraint: str, data_shape: Sequence[int]) -> nn.Module:
        """The critic of ``constraint`` for samples of ``data_shape``; scores ``(n,)``."""
        return build_gan_critic(constraint, data_shape, self.critic)

    def build_generator(self, data_shape: Sequence[int]) -> nn.Module:
        """The generator of samples of ``data_shape`` from ``latent_dim`` Gaussian inputs."""
        spec = self.for_shape(data_shape)
        if len(data_shape) == 1:
            return mlp_generator(spec.latent_dim, data_shape[0], spec.generator_widths)
        generator = dcgan_generator(
            spec.latent_dim, data_shape[0], data_shape[1], spec.generator_base_channels
        )
        # channels-last weights make the (transposed) convolutions run channels-last, which
        # oneDNN does faster on a CPU; the values and state_dict keys are the same
        return generator.to(memory_format=torch.channels_last)


@dataclass(frozen=True)
class GANOptimizer(_Section):
    """How the two networks are trained (YAML ``optimizer:``); None: the constraint's default.

    The defaults are the constraint's paper settings,
    :attr:`wgan_lip.constraints.Constraint.defaults` (Adam; RMSprop for ``clip``).

    Args:
        lr: the critic's learning rate.
        generator_lr: the generator's learning rate (None: the critic's).
        betas: Adam's betas of both networks.
        n_critic: critic steps per generator step.
        penalty_weight: the penalty's weight (``gp``, ``lp``).
        clip_value: the weight-clipping bound (``clip``).
        schedule: ``constant`` or ``linear`` (decay to 0 at ``trainer.max_steps``).

    Raises:
        InputError: a ``schedule`` other than ``constant`` or ``linear``; from :meth:`of`, an
            unknown key.

    Example:
        >>> from wgan_lip.gan import GANOptimizer
        >>> GANOptimizer.of({"lr": 1e-3, "betas": [0.5, 0.9]}).betas
        (0.5, 0.9)
        >>> GANOptimizer().n_critic is None  # the constraint's, 5 for every paper
        True
        >>> GANOptimizer(lr=1e-3).settings("clip")
        ConstraintDefaults(optimizer='rmsprop', lr=0.001, betas=(0.0, 0.9), n_critic=5,
        penalty_weight=0.0, clip_value=0.01, estimate_lr=None)
    """

    SECTION = "optimizer"

    lr: float | None = None
    generator_lr: float | None = None
    betas: tuple[float, float] | None = None
    n_critic: int | None = None
    penalty_weight: float | None = None
    clip_value: float | None = None
    schedule: Literal["constant", "linear"] = "constant"

    def settings(self, constraint):
        """The complete settings for ``constraint`` (a name or a
        :class:`~wgan_lip.constraints.Constraint`): its
        :class:`~wgan_lip.constraints.ConstraintDefaults` with the fields set here."""
        from ..constraints import get_constraint

        c = constraint if hasattr(constraint, "defaults") else get_constraint(constraint)
        given = {
            k: getattr(self, k) for k in ("lr", "betas", "n_critic", "penalty_weight", "clip_value")
        }
        return replace(c.defaults, **{k: v for k, v in given.items() if v is not None})

    def __post_init__(self) -> None:
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.schedule not in ("constant", "linear"):
            raise InputError(
                f"optimizer.schedule (lr_schedule) must be constant or linear, "
                f"got {self.schedule!r}"
            )


@dataclass(frozen=True)
class GANSampling(_Section):
    """How samples are drawn and scored for the generator (YAML ``sampling:``).

    Args:
        ema_decay: keep an exponential moving average of the generator's weights with this
            decay (0: off; 0.999 is usual) and sample from it (``generate``, ``forward``,
            every metric). Training still steps the raw generator.
        reuse_fakes: the generator step scores the fakes of the critic step just before it
            (generated once, with gradient, and detached for the critic) instead of drawing
            new ones, as the DCGAN reference loop does: one generator forward less per
            generator step. The critic still sees fresh fakes at every critic step.
        refine_steps: critic-guided sampling: move each latent by this many Adam steps of
            latent discriminator optimal transport (:mod:`wgan_lip.gan.refine`) before it is
            decoded, in ``generate`` and so in every metric and picture (0: off). Training is
            unchanged, so it may be switched for a trained checkpoint
            (``WGAN.load_from_checkpoint(path, sampling={"refine_steps": 10})``).
        refine_lr: Adam's learning rate of those steps.

    Raises:
        InputError: ``ema_decay`` outside ``[0, 1)``, a negative ``refine_steps`` or a
            non-positive ``refine_lr``; from :meth:`of`, an unknown key.

    Example:
        >>> from wgan_lip.gan import GANSampling
        >>> GANSampling.of({"ema_decay": 0.999}).as_dict()
        {'ema_decay': 0.999, 'reuse_fakes': False, 'refine_steps': 0, 'refine_lr': 0.005}
    """

    SECTION = "sampling"

    ema_decay: float = 0.0
    reuse_fakes: bool = False
    refine_steps: int = 0
    refine_lr: float = DEFAULT_REFINE_LR

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"sampling.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.refine_steps < 0 or not self.refine_lr > 0:
            raise InputError(
                f"sampling.refine_steps must be >= 0 and sampling.refine_lr > 0, got "
                f"{self.refine_steps} and {self.refine_lr}"
            )


@dataclass(frozen=True)
class GANEvaluation(_Section):
    """The validation metrics of a WGAN (YAML ``evaluation:``).

    Args:
        samples: at most this many held-out real and generated samples in the metrics.
        seed: latent seed of the generated samples (the same ones at every evaluation).
        estimate_steps: steps of the fresh certified critic of ``val/estimate_w1`` (0: off).
        feature_net: path of a ``scripts/train_feature_net.py`` checkpoint; enables
            ``val/classifier_fid``, ``val/kid``, ``val/confident`` (share of samples it
            classifies with probability > 0.9) and ``val/min_class_share`` (images only).
        kid_subset_size: images per KID subset (see
            :func:`~wgan_lip.gan.metrics.classifier_fid_kid`).

    Raises:
        InputError: from :meth:`of`, an unknown key.

    Example:
        >>> from wgan_lip.gan import GANEvaluation
        >>> GANEvaluation.of({"samples": 2000, "estimate_steps": 300}).seed
        0
    """

    SECTION = "evaluation"

    samples: int = 5000
    seed: int = 0
    estimate_steps: int = 0
    feature_net: str | None = None
    kid_subset_size: int = 500


SECTIONS: dict[str, type] = {
    "architecture": GANArchitecture,
    "optimizer": GANOptimizer,
    "sampling": GANSampling,
    "evaluation": GANEvaluation,
}

FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GANArchitecture))

# The critic's fields of the older flat layout, and the field of the critic spec each went to.
OLD_CRITIC_KEYS: dict[str, str] = {
    "critic_widths": "widths",
    "critic_channels": "channels",
    "critic_head_width": "widths",
    "critic_base_channels": "channels",
    "group_size": "group_size",
    "image_critic": "kind",
}

_FLAT = {
    "lr_critic": "optimizer.lr",
    "lr_generator": "optimizer.generator_lr",
    "betas": "optimizer.betas",
    "n_critic": "optimizer.n_critic",
    "penalty_weight": "optimizer.penalty_weight",
    "clip_value": "optimizer.clip_value",
    "lr_schedule": "optimizer.schedule",
    "ema_decay": "sampling.ema_decay",
    "reuse_fakes": "sampling.reuse_fakes",
    "refine_steps": "sampling.refine_steps",
    "refine_lr": "sampling.refine_lr",
    "eval_samples": "evaluation.samples",
    "eval_seed": "evaluation.seed",
    "estimate_steps": "evaluation.estimate_steps",
    "feature_net": "evaluation.feature_net",
    "kid_subset_size": "evaluation.kid_subset_size",
    "latent_dim": "architecture.latent_dim",
    "generator_widths": "architecture.generator_widths",
    "generator_base_channels": "architecture.generator_base_channels",
}

MOVED_OPTIONS: dict[str, str] = {
    **_FLAT,
    **{old: f"architecture.critic.{new}" for old, new in OLD_CRITIC_KEYS.items()},
    **{f"architecture.{old}": f"architecture.critic.{new}" for old, new in OLD_CRITIC_KEYS.items()},
}
"""Options of older configs and checkpoints (a flat name, or ``architecture.<old field>``)
and the dotted place under ``init_args`` each one went to."""

_CRITIC_NOTES = {
    "critic_head_width": " (a list: [head width])",
    "critic_base_channels": " (a list: [b, 2b, 4b])",
    "image_critic": " (mlp; conv: leave it unset)",
}


def _moved_message(old: str, new: str) -> str:
    leaf = old.rpartition(".")[2]
    note = _CRITIC_NOTES.get(leaf, "")
    if leaf in OLD_CRITIC_KEYS and not note:
        note = (
            " (the critic is a network spec: kind, widths, channels, linear, conv, "
            "activation, group_size, ...)"
        )
    return f"{old} moved: write {new}{note}"


def migrate_critic(
    architecture: Mapping[str, Any], constraint: str, data_shape: Sequence[int] | None
) -> dict[str, Any]:
    """An ``architecture`` dict with the older flat critic fields turned into a critic spec.

    The older layout described the critic by ``critic_widths`` (the vector critic, and the
    image critic with ``image_critic: mlp``), ``critic_channels`` and ``critic_head_width``
    (the convnet of a constraint whose image critic is one: ``hard``),
    ``critic_base_channels`` ``b`` (the baselines' DCGAN-style critic of ``b, 2b, 4b``
    channels) and ``group_size``. The spec built from them is the network those fields
    built, with the same parameters in the same order.

    Args:
        architecture: the saved architecture dict (not modified).
        constraint: the constraint's name (which image network the fields meant).
        data_shape: one sample's shape (vectors or images); None: vectors.

    Returns:
        A new dict of the :class:`GANArchitecture` fields.

    Raises:
        InputError: an unknown constraint.

    Example:
        >>> from wgan_lip.gan.architecture import migrate_critic
        >>> old = {"critic_channels": [4, 8], "critic_head_width": 16, "group_size": 2}
        >>> migrate_critic(old, "hard", (1, 8, 8))["critic"]
        {'kind': 'convnet', 'widths': [16], 'channels': [4, 8], 'group_size': 2}
        >>> migrate_critic({"critic_base_channels": 8}, "gp", (1, 8, 8))["critic"]
        {'kind': 'dcgan', 'channels': [8, 16, 32]}
    """
    from ..constraints import get_constraint

    out = {k: v for k, v in architecture.items() if k not in OLD_CRITIC_KEYS}
    old = {k: architecture[k] for k in OLD_CRITIC_KEYS if k in architecture}
    if not old:
        return out
    image = data_shape is not None and len(data_shape) == 3
    if image and old.get("image_critic", "conv") == "conv":
        kind = get_constraint(constraint).image_kind
    else:
        kind = "mlp"
    if kind == "mlp":
        spec = {"kind": kind, "widths": list(old.get("critic_widths", (256, 256, 256)))}
    elif kind == "convnet":
        spec = {
            "kind": kind,
            "widths": [int(old.get("critic_head_width", 128))],
            "channels": list(old.get("critic_channels", (16, 32))),
        }
    else:
        b = int(old.get("critic_base_channels", 64))
        spec = {"kind": kind, "channels": [b, 2 * b, 4 * b]}
    spec["group_size"] = int(old.get("group_size", 2))
    # keep only what that network reads (the older layout's group size meant nothing to a
    # ReLU baseline critic): the current check refuses fields a network does not use
    c = get_constraint(constraint)
    full = NetworkSpec.of(spec).over(c.network(kind), LIBRARY_DEFAULTS)
    spec = {k: v for k, v in spec.items() if k in used_fields(full)}
    nested = out.get("critic")
    out["critic"] = {**spec, **NetworkSpec.of(nested).as_dict()} if nested else spec
    return out


def migrate_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A WGAN's saved hyperparameters in the sections' layout.

    Checkpoints written before the sections existed kept their options flat beside the
    others (``lr_critic``, ``ema_decay``, ``eval_samples``, ``critic_widths``...): each is
    moved to its place of :data:`MOVED_OPTIONS`, where an entry already there wins over a
    flat one; the older critic fields become the critic's spec (:func:`migrate_critic`).
    Hyperparameters in the current layout come back unchanged (as a new dict).

    Args:
        hparams: the saved hyperparameters (not modified).

    Returns:
        A new dict of the hyperparameters, migrated.

    Example:
        >>> from wgan_lip.gan.architecture import migrate_hparams
        >>> migrate_hparams({"constraint": "hard", "data_shape": [2], "group_size": 4,
        ...                  "latent_dim": 8, "lr_critic": 0.001})
        {'constraint': 'hard', 'data_shape': [2], 'optimizer': {'lr': 0.001}, 'architecture':
        {'latent_dim': 8, 'critic': {'kind': 'mlp', 'widths': [256, 256, 256], 'group_size': 4}}}
        >>> migrate_hparams({"constraint": "gp", "sampling": {"ema_decay": 0.9}})
        {'constraint': 'gp', 'sampling': {'ema_decay': 0.9}}
    """
    out = dict(hparams)
    moved: dict[str, dict[str, Any]] = {}
    for old, new in MOVED_OPTIONS.items():
        if "." in old or old not in out:
            continue
        section, _, key = new.partition(".")
        if section == "architecture" and key.startswith("critic."):
            key = old  # the critic's fields: translated below, with the shape
        moved.setdefault(section, {})[key] = out.pop(old)
    for section, values in moved.items():
        out[section] = {**values, **dict(out.get(section) or {})}
    arch = out.get("architecture")
    if isinstance(arch, Mapping) and any(k in arch for k in OLD_CRITIC_KEYS):
        out["architecture"] = migrate_critic(
            arch, out.get("constraint", "hard"), out.get("data_shape")
        )
    return out
