"""How a critic is held to (about) 1-Lipschitz: one registry for W1 estimation, the WGAN and
the benchmarks.

A :class:`Constraint` knows whether its critics are certified, how to build its critic for
vectors (an MLP) and for images (a convnet), the extra loss term or post-step hook that
enforces it, and the optimizer settings of its paper. :data:`CONSTRAINTS` maps names to
them; the W1 module and the WGAN only call these methods, never branch on names.

- ``hard``: Björck dense / BCOP convolutions with GroupSort, 1-Lipschitz by construction
  (Anil et al. 2019; Li et al. 2019). The only certified one.
- ``gp``: gradient penalty at interpolates, lambda 10 (Gulrajani et al. 2017).
- ``lp``: its one-sided variant, ``max(0, |grad| - 1)^2`` (Petzka et al. 2018).
- ``sn``: spectral normalization by power iteration (Miyato et al. 2018), setting A.
- ``clip``: weights clipped to +-0.01, RMSprop (Arjovsky et al. 2017).

The baselines use their papers' networks without BatchNorm (a batch-dependent critic is not
a function of one sample, which the penalty and the KR dual both assume): ReLU MLPs for
vectors, DCGAN-style stride-2 convolutions with LeakyReLU for images. Adding a constraint is
one subclass registered in :data:`CONSTRAINTS` (plus its test).

Torch is imported inside the methods, so that the names (``wgan-lip --help``) load fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class ConstraintDefaults:
    """Optimizer settings of one constraint's paper, used unless the config overrides them.

    Attributes:
        optimizer: ``"adam"`` or ``"rmsprop"`` (see :meth:`Constraint.optimizer`).
        lr: the critic's learning rate.
        betas: Adam's betas (unused with RMSprop).
        n_critic: critic steps per generator step (WGAN training).
        penalty_weight: the penalty's weight (lambda; 0 for constraints without a penalty).
        clip_value: the weight-clipping bound (0 for constraints that do not clip).

    Example:
        >>> from wgan_lip.constraints import get_constraint
        >>> get_constraint("clip").defaults
        ConstraintDefaults(optimizer='rmsprop', lr=5e-05, betas=(0.0, 0.9), n_critic=5,
        penalty_weight=0.0, clip_value=0.01)
    """

    optimizer: str  # "adam" | "rmsprop"
    lr: float
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5
    penalty_weight: float = 0.0
    clip_value: float = 0.0


class Constraint:
    """One way of constraining a critic. Subclasses override what differs.

    The base class is an unconstrained critic: ReLU networks, no penalty, no post-step hook,
    Adam. The registered instances are in :data:`CONSTRAINTS`; take them with
    :func:`get_constraint`.

    Attributes:
        name: the registry name (``"hard"``, ``"gp"``, ...).
        certified: whether the critics it builds are 1-Lipschitz by construction.
        defaults: the :class:`ConstraintDefaults` of its paper.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import Constraint
        >>> c = Constraint()
        >>> critic = c.mlp(3, [8])
        >>> critic(torch.randn(4, 3)).shape
        torch.Size([4, 1])
        >>> c.penalty(critic, torch.randn(4, 3), torch.randn(4, 3), 10.0) is None
        True
        >>> type(c.optimizer(critic.parameters(), 1e-3)).__name__
        'Adam'
    """

    name: str = ""
    certified: bool = False
    defaults: ConstraintDefaults = ConstraintDefaults("adam", 1e-4)

    # ----- networks -----

    def mlp(self, in_features: int, widths: Sequence[int], *, group_size: int = 2) -> nn.Module:
        """The critic for vectors: ``in_features -> widths -> 1``."""
        return _relu_mlp(in_features, widths)

    def convnet(
        self,
        in_channels: int,
        image_size: int,
        *,
        channels: Sequence[int] = (16, 32),
        head_width: int = 128,
        base_channels: int = 64,
        group_size: int = 2,
    ) -> nn.Module:
        """The critic for ``(in_channels, image_size, image_size)`` images, scores ``(n, 1)``.
        ``channels``/``head_width`` shape the hard critic, ``base_channels`` the baselines'."""
        return _dcgan_critic(in_channels, image_size, base_channels, slope=0.2)

    # ----- training -----

    def penalty(
        self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, weight: float
    ) -> torch.Tensor | None:
        """The loss term added to the critic's loss (None: nothing to add)."""
        return None

    def after_step(self, critic: nn.Module, clip_value: float) -> None:
        """Called after every critic optimizer step (weight clipping)."""

    def optimizer(
        self, params: Iterable, lr: float, betas: tuple[float, float] | None = None
    ) -> torch.optim.Optimizer:
        """The paper's optimizer kind at ``lr`` (``betas`` None: torch's default betas)."""
        import torch

        if self.defaults.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr)
        if betas is None:
            return torch.optim.Adam(params, lr=lr)
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))

    def __repr__(self) -> str:
        return f"<constraint {self.name}>"


class Hard(Constraint):
    """Björck / BCOP + GroupSort: 1-Lipschitz by construction, nothing else to enforce.

    Registered as ``"hard"``; the only certified constraint. Its :meth:`mlp` is
    :func:`~wgan_lip.models.lipschitz_mlp` (widths multiples of ``group_size``) and its
    :meth:`convnet` is :func:`~wgan_lip.models.lipschitz_convnet` with one hidden layer of
    ``head_width`` (``base_channels`` is not used); :meth:`convnet` raises
    :class:`~wgan_lip.errors.InputError` when ``image_size`` is not divisible by
    ``2 ** len(channels)``.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import get_constraint
        >>> from wgan_lip.layers import lipschitz_bound
        >>> hard = get_constraint("hard")
        >>> hard.certified, round(lipschitz_bound(hard.mlp(4, [8, 8])), 4)
        (True, 1.0)
        >>> hard.convnet(1, 6, channels=(4, 8))
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: the hard image critic downsamples 2 times; image side 6
        is not divisible by 4
    """

    name, certified = "hard", True
    # WGAN-GP's optimizer at the learning rate that suits a critic that is 1-Lipschitz by
    # construction: 5e-4 won the sweep of scripts/bench_gan.py (--sections sweep, a tuning
    # seed) over 1e-4 and 1e-3 and 1, 2 or 5 critic steps.
    defaults = ConstraintDefaults("adam", 5e-4, (0.0, 0.9), 5)

    def mlp(self, in_features, widths, *, group_size=2):
        from .models import lipschitz_mlp

        return lipschitz_mlp(in_features, widths, 1, group_size=group_size)

    def convnet(self, in_channels, image_size, *, channels=(16, 32), head_width=128,
                base_channels=64, group_size=2):  # fmt: skip
        from .models import lipschitz_convnet

        if image_size % 2 ** len(channels):
            raise InputError(
                f"the hard image critic downsamples {len(channels)} times; image side "
                f"{image_size} is not divisible by {2 ** len(channels)}"
            )
        return lipschitz_convnet(in_channels, image_size, channels, 1,
                                 head_widths=(head_width,), group_size=group_size)  # fmt: skip


class GradientPenalty(Constraint):
    """``lambda * mean (|grad f(x)| - 1)^2`` at per-sample interpolates (WGAN-GP).

    ``one_sided`` penalizes only norms above 1 (the Lipschitz penalty, WGAN-LP). Registered
    as ``"gp"`` and ``"lp"``; the critics are the unconstrained base-class networks, trained
    with Adam at lr 1e-4, betas (0, 0.9), 5 critic steps and lambda 10. The penalty is
    :func:`wgan_lip.penalties.gradient_penalty`.

    Args:
        name: the registry name.
        one_sided: penalize only gradient norms above 1.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.constraints import get_constraint
        >>> gp = get_constraint("gp")
        >>> gp.certified, gp.defaults.penalty_weight
        (False, 10.0)
        >>> critic = nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = critic.weight.copy_(torch.tensor([[0.0, 0.5]]))  # gradient norm 0.5
        >>> real, fake = torch.randn(6, 2), torch.randn(6, 2)
        >>> gp.penalty(critic, real, fake, 10.0).item()  # 10 * (0.5 - 1)^2
        2.5
        >>> get_constraint("lp").penalty(critic, real, fake, 10.0).item()  # one-sided
        0.0
    """

    def __init__(self, name: str, one_sided: bool) -> None:
        self.name, self.one_sided = name, one_sided
        self.defaults = ConstraintDefaults("adam", 1e-4, (0.0, 0.9), 5, penalty_weight=10.0)

    def penalty(self, critic, real, fake, weight):
        from .penalties import gradient_penalty

        return gradient_penalty(critic, real, fake, weight, one_sided=self.one_sided)


class SpectralNorm(Constraint):
    """Every layer divided by a power-iteration estimate of its spectral norm (SN-GAN).

    Of the reshaped kernel for convolutions, as in the paper (which does not bound the
    convolution's norm); ReLU for vectors, LeakyReLU(0.1) for images. Registered as ``"sn"``:
    an estimate, not a certificate.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import get_constraint
        >>> sn = get_constraint("sn")
        >>> sn.certified, sn.defaults.betas
        (False, (0.5, 0.9))
        >>> sn.convnet(1, 16, base_channels=4)(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 1])
    """

    name = "sn"
    # Miyato et al. setting "A" (the WGAN-GP-like one): lr 1e-4, betas (0.5, 0.9), 5 steps.
    defaults = ConstraintDefaults("adam", 1e-4, (0.5, 0.9), 5)

    def mlp(self, in_features, widths, *, group_size=2):
        return _relu_mlp(in_features, widths, spectral=True)

    def convnet(self, in_channels, image_size, *, channels=(16, 32), head_width=128,
                base_channels=64, group_size=2):  # fmt: skip
        return _dcgan_critic(in_channels, image_size, base_channels, slope=0.1, spectral=True)


class Clip(Constraint):
    """Every weight clamped to ``[-clip_value, clip_value]`` after each step (WGAN).

    Registered as ``"clip"``: the base-class networks, RMSprop at lr 5e-5, clip value 0.01.
    Its :meth:`after_step` is :func:`wgan_lip.penalties.clip_weights`.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import get_constraint
        >>> clip = get_constraint("clip")
        >>> critic = clip.mlp(2, [8])
        >>> clip.after_step(critic, 0.01)
        >>> max(float(p.detach().abs().max()) for p in critic.parameters()) <= 0.01
        True
        >>> type(clip.optimizer(critic.parameters(), 5e-5)).__name__
        'RMSprop'
    """

    name = "clip"
    defaults = ConstraintDefaults("rmsprop", 5e-5, n_critic=5, clip_value=0.01)

    def after_step(self, critic, clip_value):
        from .penalties import clip_weights

        clip_weights(critic, clip_value)


CONSTRAINTS: dict[str, Constraint] = {
    c.name: c
    for c in (
        Hard(),
        GradientPenalty("gp", False),
        GradientPenalty("lp", True),
        SpectralNorm(),
        Clip(),
    )
}


# The registered names as a type: LightningCLI's --help lists them and jsonargparse refuses
# any other value in one line.
ConstraintName = Literal[tuple(CONSTRAINTS)]


def get_constraint(name: str) -> Constraint:
    """The registered constraint called ``name``; a one-line error naming the choices.

    Args:
        name: one of ``CONSTRAINTS``: ``"hard"``, ``"gp"``, ``"lp"``, ``"sn"``, ``"clip"``.

    Returns:
        The shared :class:`Constraint` instance of :data:`CONSTRAINTS` (not a copy).

    Raises:
        InputError: an unknown (or unhashable) name.

    Example:
        >>> from wgan_lip.constraints import get_constraint
        >>> get_constraint("hard")
        <constraint hard>
        >>> get_constraint("wc")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: unknown constraint 'wc'; choose one of hard, gp, lp, sn, clip
    """
    try:
        return CONSTRAINTS[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown constraint {name!r}; choose one of {', '.join(CONSTRAINTS)}"
        ) from None


# ----- the baselines' networks -----


def _relu_mlp(d: int, widths: Sequence[int], spectral: bool = False) -> nn.Sequential:
    from torch import nn

    from .layers import SpectralLinear
    from .models import mlp

    return mlp(d, widths, 1, linear=SpectralLinear if spectral else nn.Linear,
               activation=lambda _: nn.ReLU())  # fmt: skip


def _dcgan_critic(c: int, size: int, base: int, slope: float, spectral: bool = False):
    """Three stride-2 convolutions (base, 2 base, 4 base channels), then a linear score."""
    from torch import nn

    from .layers.spectral import SpectralLinear, spectral_normalize_kernel

    wrap = spectral_normalize_kernel if spectral else (lambda m: m)
    layers: list[nn.Module] = []
    prev = c
    for i in range(3):
        out, k = base * 2**i, (4 if i < 2 else 3)
        layers += [wrap(nn.Conv2d(prev, out, k, 2, 1)), nn.LeakyReLU(slope)]
        prev = out
        size = (size + 2 - k) // 2 + 1
    head = SpectralLinear(prev * size * size, 1) if spectral else nn.Linear(prev * size * size, 1)
    layers += [nn.Flatten(), head]
    return nn.Sequential(*layers)
