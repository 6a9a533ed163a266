"""Bring your own 1-Lipschitz layer: give it its bound and its export, and it certifies.

``HouseholderLinear`` reflects its input across the hyperplane orthogonal to a learned
vector ``v``: ``x - 2 v (v . x) / |v|^2``, an orthogonal map (bound 1, gradient-norm
preserving). It owns ``lipschitz_bound`` (computed from its weights, never assumed) and
``export_plain`` (a plain ``nn.Linear`` with the reflection matrix), which is all
``lipschitz_bound``, ``export_plain`` and ``certify`` need. Registered by name
(``register_layer``), it reaches every job: a W1 critic, a WGAN critic or a classifier
whose network spec says ``linear: householder``. A module you cannot change (here
``nn.Hardswish``) gets its bound from ``register_lipschitz_bound`` instead.

    python examples/custom_layer.py
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from wgan_lip.layers import (
    BjorckLinear,
    empirical_lipschitz,
    export_plain,
    lipschitz_bound,
    register_lipschitz_bound,
)
from wgan_lip.layers.registry import LayerKind, register_layer
from wgan_lip.models import lipschitz_mlp
from wgan_lip.networks import NetworkSpec, build


class HouseholderLinear(nn.Module):
    """``x -> x - 2 v (v . x) / |v|^2`` on ``features`` units: orthogonal, symmetric."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.v = nn.Parameter(torch.randn(features))

    def matrix(self) -> torch.Tensor:
        u = self.v / self.v.norm()
        return torch.eye(len(u), dtype=u.dtype, device=u.device) - 2 * torch.outer(u, u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.v / self.v.norm()
        return x - 2 * (x @ u)[..., None] * u

    def lipschitz_bound(self) -> float:
        # computed, not assumed: the largest singular value of the matrix, in float64
        return float(torch.linalg.matrix_norm(self.matrix().double(), ord=2))

    def export_plain(self) -> nn.Linear:
        out = nn.Linear(len(self.v), len(self.v), bias=False)
        with torch.no_grad():
            out.weight.copy_(self.matrix())
        return out


def householder_or_bjorck(i: int, o: int, opts) -> nn.Module:
    """A reflection where the width stays (it is square), a Björck layer where it changes."""
    return HouseholderLinear(i) if i == o else BjorckLinear(i, o, bias=opts.bias)


# one registration: "householder" is now a layer name in every network spec, in YAML and on
# the command line (wgan-lip w1 P Q --critic groupsort --linear householder)
register_layer(LayerKind("householder", linear=householder_or_bjorck, certified=True))


@register_lipschitz_bound(nn.Hardswish)
def _hardswish(m: nn.Hardswish) -> float:
    return 1.5  # the slope (2x + 3) / 6 peaks at 1.5 as x -> 3


def main(argv: list[str] | None = None) -> dict:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    torch.manual_seed(0)
    # reflections + GroupSort through the MLP builder, then a Björck head to 3 outputs
    body = lipschitz_mlp(8, [8, 8], 8, linear=lambda i, o: HouseholderLinear(i))
    net = nn.Sequential(*body, BjorckLinear(8, 3))
    bound = lipschitz_bound(net)  # the product of the layers' own bounds
    x = torch.randn(256, 8)
    lower = empirical_lipschitz(net, x)
    plain = export_plain(net)
    same = bool(torch.allclose(plain(x), net(x), atol=1e-5))
    with_hardswish = lipschitz_bound(nn.Sequential(HouseholderLinear(4), nn.Hardswish()))
    print(f"certified bound {bound:.4f} >= measured {lower:.4f}; export matches: {same}")
    print(f"a reflection followed by Hardswish: bound {with_hardswish:.2f}")
    print("plain export:", plain)
    # by name, through the one builder every job uses, then a short certified W1 estimate
    spec = NetworkSpec("mlp", widths=(8, 8), linear="householder", activation="maxmin")
    by_name = build(spec, (8,), 1)
    from wgan_lip import estimate_w1

    p, q = torch.randn(400, 8), torch.randn(400, 8) + 0.5
    est = estimate_w1(p, q, critic="groupsort", network=spec, steps=300, progress=False)
    print(f"W1 >= {est.value:.3f} (certified: {est.certified}) with a householder critic")
    return {
        "by_name_bound": lipschitz_bound(by_name),
        "w1_certified": est.certified,
        "w1_value": est.value,
        "bound": bound,
        "empirical": lower,
        "export_matches": same,
        "with_hardswish": with_hardswish,
    }


if __name__ == "__main__":
    main()
