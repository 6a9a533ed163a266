"""The two networks of a WGAN as one spec, :class:`GANArchitecture`.

LightningCLI binds it from YAML as ``model.init_args.architecture``; a checkpoint stores it
as a plain dict under ``hyper_parameters["architecture"]``. Checkpoints written before the
spec existed kept these keys flat beside the others: :func:`migrate_hparams` moves them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import torch
from torch import nn

from ..errors import InputError
from ..models import dcgan_generator, mlp_generator
from .critics import build_gan_critic


@dataclass(frozen=True)
class GANArchitecture:
    """The generator and the critic of a WGAN.

    Vectors ``(d,)`` use the widths, square images ``(C, H, H)`` the channels.

    Args:
        latent_dim: generator input size (None: 2 for vectors, 128 for images).
        generator_widths: hidden widths of the vector generator (ReLU MLP).
        generator_base_channels: channels of the image generator's last block (DCGAN-style).
        critic_widths: hidden widths of the vector critic.
        critic_channels: the hard image critic's BCOP stages (a stride-2 downsample each).
        critic_head_width: the hard image critic's Björck head width.
        critic_base_channels: the baseline image critics' first convolution width.
        group_size: GroupSort group size of the hard critic.
        image_critic: ``conv`` (the convnets above) or ``mlp``: images are flattened and
            scored by the vector critic of ``critic_widths`` (for ``hard``, a Björck MLP:
            much cheaper per step than BCOP on a CPU).

    Raises:
        InputError: an ``image_critic`` other than ``conv`` or ``mlp``; from :meth:`of`, a
            value that is not a mapping or has unknown keys; from :meth:`build_critic`, an
            unknown constraint or a shape its critic cannot take.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import GANArchitecture
        >>> arch = GANArchitecture(generator_widths=(32, 32), critic_widths=(32, 32))
        >>> arch.for_shape((2,)).latent_dim, arch.for_shape((1, 28, 28)).latent_dim
        (2, 128)
        >>> generator, critic = arch.build_generator((2,)), arch.build_critic("hard", (2,))
        >>> critic(generator(torch.randn(5, 2))).shape
        torch.Size([5])
        >>> GANArchitecture.of({"group_size": 4}).group_size
        4
    """

    latent_dim: int | None = None
    generator_widths: tuple[int, ...] = (512, 512, 512)
    generator_base_channels: int = 64
    critic_widths: tuple[int, ...] = (256, 256, 256)
    critic_channels: tuple[int, ...] = (16, 32)
    critic_head_width: int = 128
    critic_base_channels: int = 64
    group_size: int = 2
    image_critic: Literal["conv", "mlp"] = "conv"

    def __post_init__(self) -> None:
        for name in ("generator_widths", "critic_widths", "critic_channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.image_critic not in ("conv", "mlp"):
            raise InputError(f"image_critic must be conv or mlp, got {self.image_critic!r}")

    @classmethod
    def of(cls, value: GANArchitecture | Mapping[str, Any] | None) -> GANArchitecture:
        """``value`` as a spec: itself, the defaults for None, or built from a mapping (a
        checkpoint's dict); an unknown key is a one-line error naming the known ones."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise InputError(f"architecture must be a mapping of {', '.join(FIELDS)}; "
                             f"got {type(value).__name__}")  # fmt: skip
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise InputError(f"architecture: unknown key(s) {', '.join(unknown)}; "
                             f"the keys are {', '.join(FIELDS)}")  # fmt: skip
        return cls(**value)

    def for_shape(self, data_shape: Sequence[int]) -> GANArchitecture:
        """This spec with ``latent_dim`` filled in for samples of ``data_shape``."""
        if self.latent_dim is not None:
            return self
        return replace(self, latent_dim=2 if len(data_shape) == 1 else 128)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (lists, ints): what a checkpoint and a YAML file hold."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def build_critic(self, constraint: str, data_shape: Sequence[int]) -> nn.Module:
        """The critic of ``constraint`` for samples of ``data_shape``; scores ``(n,)``."""
        from ..constraints import get_constraint
        from ..networks import NetworkSpec

        image = len(data_shape) == 3 and self.image_critic == "conv"
        kind = get_constraint(constraint).image_kind if image else "mlp"
        if kind == "mlp":
            spec = NetworkSpec("mlp", widths=self.critic_widths)
        elif kind == "convnet":
            spec = NetworkSpec(
                kind, channels=self.critic_channels, widths=(self.critic_head_width,)
            )
        else:
            b = self.critic_base_channels
            spec = NetworkSpec(kind, channels=(b, 2 * b, 4 * b))
        return build_gan_critic(constraint, data_shape, replace(spec, group_size=self.group_size))

    def build_generator(self, data_shape: Sequence[int]) -> nn.Module:
        """The generator of samples of ``data_shape`` from ``latent_dim`` Gaussian inputs."""
        spec = self.for_shape(data_shape)
        if len(data_shape) == 1:
            return mlp_generator(spec.latent_dim, data_shape[0], spec.generator_widths)
        generator = dcgan_generator(spec.latent_dim, data_shape[0], data_shape[1],
                                    spec.generator_base_channels)  # fmt: skip
        # channels-last weights make the (transposed) convolutions run channels-last, which
        # oneDNN does faster on a CPU; the values and state_dict keys are the same
        return generator.to(memory_format=torch.channels_last)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GANArchitecture))


def migrate_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A WGAN's saved hyperparameters with old flat architecture keys moved under ``architecture``.

    Checkpoints written before :class:`GANArchitecture` existed kept its fields flat beside
    the other hyperparameters; they are moved into the ``architecture`` dict, where an entry
    already there wins over a flat one. Hyperparameters without flat keys come back
    unchanged (as a new dict).

    Args:
        hparams: the saved hyperparameters (not modified).

    Returns:
        A new dict of the hyperparameters, migrated.

    Example:
        >>> from wgan_lip.gan.architecture import migrate_hparams
        >>> migrate_hparams({"constraint": "hard", "group_size": 4, "latent_dim": 8})
        {'constraint': 'hard', 'architecture': {'latent_dim': 8, 'group_size': 4}}
        >>> migrate_hparams({"constraint": "gp", "architecture": {"group_size": 2}})
        {'constraint': 'gp', 'architecture': {'group_size': 2}}
    """
    out = dict(hparams)
    flat = {k: out.pop(k) for k in FIELDS if k in out}
    if flat:
        nested = dict(out.get("architecture") or {})
        out["architecture"] = {**flat, **nested}
    return out
