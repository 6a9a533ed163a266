"""How a critic is held to (about) 1-Lipschitz: one registry for W1 estimation, the WGAN and
the benchmarks.

A :class:`Constraint` knows whether its critics are certified, which layers it admits and
which it puts in a critic spec that leaves them unset (its critics are built by the one
:func:`wgan_lip.networks.build`), the extra loss term or post-step hook that enforces it,
and the optimizer settings of its paper. :data:`CONSTRAINTS` maps names to
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from .errors import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping

    import torch
    from torch import nn

    from .networks import NetworkSpec

    NetworkSizes = Mapping[str, NetworkSpec] | None


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
        estimate_lr: the critic's learning rate in W1 estimation, where it trains alone on
            the KR objective in normalized units (a larger step than in a WGAN, where the
            generator moves the target); None: ``lr``.

    Example:
        >>> from wgan_lip.constraints import get_constraint
        >>> get_constraint("clip").defaults
        ConstraintDefaults(optimizer='rmsprop', lr=5e-05, betas=(0.0, 0.9), n_critic=5,
        penalty_weight=0.0, clip_value=0.01, estimate_lr=None)
    """

    optimizer: str  # "adam" | "rmsprop"
    lr: float
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5
    penalty_weight: float = 0.0
    clip_value: float = 0.0
    estimate_lr: float | None = 1e-3

    @property
    def w1_lr(self) -> float:
        """The learning rate of W1 estimation: ``estimate_lr``, or ``lr`` when it is None."""
        return self.lr if self.estimate_lr is None else self.estimate_lr


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
        >>> critic = c.build({"widths": [8]}, (3,))
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

    image_kind: str = "dcgan"  # the network kind of its image critics

    def network(self, kind: str) -> NetworkSpec:
        """The layers (and the paper's sizes, where they are the constraint's) of a ``kind``
        network: what a critic spec leaves unset. Unconstrained baselines: ``plain`` layers,
        ReLU for vectors, LeakyReLU(0.2) in the DCGAN-style image critic of 64, 128 and 256
        channels (Gulrajani et al.)."""
        from .networks import NetworkSpec

        if kind == "mlp":
            return NetworkSpec(linear="plain", activation="relu")
        return NetworkSpec(
            channels=(64, 128, 256) if kind == "dcgan" else None,
            widths=(),
            conv="plain",
            linear="plain",
            activation="leaky_relu",
            negative_slope=0.2,
        )

    def admits(self, spec: NetworkSpec) -> None:
        """Raise :class:`~wgan_lip.errors.InputError` when a layer of the complete ``spec`` is
        not one this constraint can train (the base class admits every layer)."""

    def critic_network(
        self, spec: NetworkSpec | None, input_shape: Sequence[int], sizes: NetworkSizes = None
    ) -> NetworkSpec:
        """The complete spec of this constraint's critic for samples of ``input_shape``.

        Each field of ``spec`` that is unset comes from the job's ``sizes`` for the kind,
        then this constraint's :meth:`network`, then
        :data:`~wgan_lip.networks.LIBRARY_DEFAULTS`; the kind itself defaults to ``mlp``
        for vectors and to :attr:`image_kind` for images ``(C, H, W)``.

        Args:
            spec: the user's spec (or None: every field a default).
            input_shape: one sample's shape.
            sizes: the job's default sizes per kind (``{"mlp": NetworkSpec(widths=...)}``).

        Returns:
            The complete :class:`~wgan_lip.networks.NetworkSpec`.

        Raises:
            InputError: a layer this constraint does not admit (see :meth:`admits`).

        Example:
            >>> from wgan_lip.constraints import get_constraint
            >>> get_constraint("hard").critic_network(None, (1, 8, 8)).conv
            'bcop'
            >>> get_constraint("gp").critic_network({"linear": "aol"}, (3,)).activation
            'relu'
        """
        from .networks import LIBRARY_DEFAULTS, NetworkSpec, check_fields

        spec = NetworkSpec.of(spec)
        kind = spec.kind or ("mlp" if len(input_shape) != 3 else self.image_kind)
        job = (sizes or {}).get(kind)
        full = replace(spec, kind=kind).over(job, self.network(kind), LIBRARY_DEFAULTS)
        check_fields(spec, full)
        self.admits(full)
        return full

    def build(
        self,
        spec: NetworkSpec | None,
        input_shape: Sequence[int],
        sizes: NetworkSizes = None,
        out_features: int = 1,
    ) -> nn.Module:
        """This constraint's critic network: :meth:`critic_network`, then
        :func:`~wgan_lip.networks.build` (``(n, *input_shape)`` to ``(n, out_features)``)."""
        from .networks import build

        return build(self.critic_network(spec, input_shape, sizes), input_shape, out_features)

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

    Registered as ``"hard"``; the only certified constraint. Its critics default to Björck
    dense layers, BCOP convolutions (a ``convnet`` for images) and GroupSort; it admits
    every registered layer that is 1-Lipschitz by construction (``certified``) and refuses
    the others by name.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import get_constraint
        >>> from wgan_lip.layers import lipschitz_bound
        >>> hard = get_constraint("hard")
        >>> hard.certified, round(lipschitz_bound(hard.build({"widths": [8, 8]}, (4,))), 4)
        (True, 1.0)
        >>> hard.build({"linear": "plain"}, (4,))
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: the hard constraint certifies only layers that are
        1-Lipschitz by construction; plain is not: use one of the linear layers aol, bjorck, sll
    """

    name, certified = "hard", True
    # WGAN-GP's optimizer at the learning rate that suits a critic that is 1-Lipschitz by
    # construction: 5e-4 won the sweep of scripts/bench_gan.py (--sections sweep, a tuning
    # seed) over 1e-4 and 1e-3 and 1, 2 or 5 critic steps.
    defaults = ConstraintDefaults("adam", 5e-4, (0.0, 0.9), 5)

    image_kind = "convnet"

    def network(self, kind):
        from .networks import NetworkSpec

        return NetworkSpec(linear="bjorck", conv="bcop", activation="groupsort")

    def admits(self, spec):
        from .networks import require_certified

        require_certified(spec, "the hard constraint")


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
        >>> sn.build({"channels": [4, 8, 16]}, (1, 16, 16))(torch.rand(2, 1, 16, 16)).shape
        torch.Size([2, 1])
    """

    name = "sn"
    # Miyato et al. setting "A" (the WGAN-GP-like one): lr 1e-4, betas (0.5, 0.9), 5 steps.
    defaults = ConstraintDefaults("adam", 1e-4, (0.5, 0.9), 5)

    def network(self, kind):
        from .networks import NetworkSpec

        if kind == "mlp":
            return NetworkSpec(linear="spectral", activation="relu")
        return NetworkSpec(
            channels=(64, 128, 256) if kind == "dcgan" else None,
            widths=(),
            conv="sn_kernel" if kind == "dcgan" else "spectral",
            linear="spectral",
            activation="leaky_relu",
            negative_slope=0.1,
        )

    def admits(self, spec):
        used = [spec.linear] + ([spec.conv] if spec.kind != "mlp" else [])
        if "plain" in used:
            raise InputError(
                "the sn constraint normalizes its layers; plain layers are not: "
                "use spectral (or sn_kernel for dcgan convolutions)"
            )


class Clip(Constraint):
    """Every weight clamped to ``[-clip_value, clip_value]`` after each step (WGAN).

    Registered as ``"clip"``: the base-class networks, RMSprop at lr 5e-5, clip value 0.01.
    Its :meth:`after_step` is :func:`wgan_lip.penalties.clip_weights`.

    Example:
        >>> import torch
        >>> from wgan_lip.constraints import get_constraint
        >>> clip = get_constraint("clip")
        >>> critic = clip.build({"widths": [8]}, (2,))
        >>> clip.after_step(critic, 0.01)
        >>> max(float(p.detach().abs().max()) for p in critic.parameters()) <= 0.01
        True
        >>> type(clip.optimizer(critic.parameters(), 5e-5)).__name__
        'RMSprop'
    """

    name = "clip"
    # W1 estimation keeps the paper's RMSprop rate: a clipped critic's weights are tiny
    defaults = ConstraintDefaults("rmsprop", 5e-5, n_critic=5, clip_value=0.01, estimate_lr=None)

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
