"""WGAN critics by constraint: the hard-constrained one and the baselines it is compared to.

``hard``: Björck MLP (vectors) or BCOP convnet (images) with GroupSort, 1-Lipschitz by
construction, nothing else. The baselines are the networks of their papers, without
BatchNorm (a batch-dependent critic is not a function of one sample, which the gradient
penalty and the KR dual both assume):

- ``gp`` (Gulrajani et al. 2017) and ``lp`` (Petzka et al. 2018): ReLU MLP for vectors,
  DCGAN-style strided convs with LeakyReLU(0.2) for images, trained with a penalty;
- ``sn`` (Miyato et al. 2018): the same shapes with ``torch.nn.utils.parametrizations.
  spectral_norm`` on every layer and LeakyReLU(0.1) (ReLU for vectors);
- ``clip`` (Arjovsky et al. 2017): the ``gp`` networks with weights clipped to +-0.01.

:data:`CONSTRAINT_DEFAULTS` holds each paper's optimizer settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import InputError
from ..layers import lipschitz_bound
from ..models import lipschitz_convnet, lipschitz_mlp

CONSTRAINTS = ("hard", "gp", "lp", "sn", "clip")


@dataclass(frozen=True)
class ConstraintDefaults:
    """Optimizer settings of one constraint's paper, used unless the config overrides them."""

    optimizer: str  # "adam" | "rmsprop"
    lr: float
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5
    penalty_weight: float = 0.0
    clip_value: float = 0.0


CONSTRAINT_DEFAULTS: dict[str, ConstraintDefaults] = {
    # Same optimizer as WGAN-GP, so the comparison isolates the constraint.
    "hard": ConstraintDefaults("adam", 1e-4, (0.0, 0.9), 5),
    "gp": ConstraintDefaults("adam", 1e-4, (0.0, 0.9), 5, penalty_weight=10.0),
    "lp": ConstraintDefaults("adam", 1e-4, (0.0, 0.9), 5, penalty_weight=10.0),
    # Miyato et al. setting "A" (the WGAN-GP-like one): lr 1e-4, betas (0.5, 0.9), 5 steps.
    "sn": ConstraintDefaults("adam", 1e-4, (0.5, 0.9), 5),
    "clip": ConstraintDefaults("rmsprop", 5e-5, n_critic=5, clip_value=0.01),
}


def check_constraint(constraint: str) -> str:
    if constraint not in CONSTRAINTS:
        raise InputError(
            f"unknown constraint {constraint!r}; choose one of {', '.join(CONSTRAINTS)}"
        )
    return constraint


def _mlp(d: int, widths: Sequence[int], sn: bool) -> nn.Sequential:
    wrap = spectral_norm if sn else (lambda m: m)
    layers: list[nn.Module] = []
    prev = d
    for w in widths:
        layers += [wrap(nn.Linear(prev, w)), nn.ReLU()]
        prev = w
    layers.append(wrap(nn.Linear(prev, 1)))
    return nn.Sequential(nn.Flatten(), *layers)


def _conv(c: int, size: int, base: int, sn: bool) -> nn.Sequential:
    """Three stride-2 convolutions (base, 2 base, 4 base channels), then a linear score."""
    wrap = spectral_norm if sn else (lambda m: m)
    slope = 0.1 if sn else 0.2
    layers: list[nn.Module] = []
    prev = c
    for i in range(3):
        out = base * 2**i
        layers += [wrap(nn.Conv2d(prev, out, 4 if i < 2 else 3, 2, 1)), nn.LeakyReLU(slope)]
        prev = out
        size = (size + 2 - (4 if i < 2 else 3)) // 2 + 1
    layers += [nn.Flatten(), wrap(nn.Linear(prev * size * size, 1))]
    return nn.Sequential(*layers)


class _Flat(nn.Module):
    """Flatten the input, score it, return shape ``(n,)``."""

    def __init__(self, net: nn.Module, flatten: bool) -> None:
        super().__init__()
        self.net = net
        self.flatten = flatten

    def forward(self, x):
        return self.net(x.flatten(1) if self.flatten else x).reshape(-1)

    def lipschitz_bound(self) -> float:
        """Flattening is an isometry: the bound is the network's."""
        return lipschitz_bound(self.net)


def build_gan_critic(
    constraint: str,
    data_shape: Sequence[int],
    *,
    widths: Sequence[int] = (256, 256, 256),
    channels: Sequence[int] = (16, 32),
    head_width: int = 128,
    base_channels: int = 64,
    group_size: int = 2,
) -> nn.Module:
    """The critic for ``constraint`` on samples of ``data_shape``, returning scores ``(n,)``.

    Vectors (``data_shape = (d,)``) get MLPs of ``widths``; images ``(C, H, W)`` get the BCOP
    convnet of ``channels`` (+ a Björck layer of ``head_width``) for ``hard`` and DCGAN-style
    critics of ``base_channels`` for the baselines.
    """
    check_constraint(constraint)
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 1:
        if constraint == "hard":
            net = lipschitz_mlp(shape[0], widths, 1, group_size=group_size)
        else:
            net = _mlp(shape[0], widths, sn=constraint == "sn")
        return _Flat(net, flatten=True)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise InputError(f"WGAN data must be vectors (d,) or square images (C, H, H), got {shape}")
    c, size, _ = shape
    if constraint == "hard":
        if size % 2 ** len(channels):
            raise InputError(
                f"the hard image critic downsamples {len(channels)} times; image side {size} "
                f"is not divisible by {2 ** len(channels)}"
            )
        net = lipschitz_convnet(c, size, channels, 1, head_widths=(head_width,),
                                group_size=group_size)  # fmt: skip
    else:
        net = _conv(c, size, base_channels, sn=constraint == "sn")
    return _Flat(net, flatten=False)
