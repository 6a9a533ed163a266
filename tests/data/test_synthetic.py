import math

import pytest
import torch

from wgan_lip.data import (
    GaussianScale,
    PointVsSphere,
    Translation,
    VoronoiPush,
    eight_gaussians,
    swiss_roll,
    twenty_five_gaussians,
    two_moons,
)
from wgan_lip.ot import exact_w1


@pytest.mark.parametrize("base", ["gaussian", "uniform"])
def test_translation_dual_and_coupling_meet_at_the_shift(base):
    prob = Translation(dim=6, shift=1.5, base=base)
    p, q = prob.sample_p(50_000, seed=0), prob.sample_q(50_000, seed=0)
    direction = prob._direction().float()
    dual = (q @ direction).mean() - (p @ direction).mean()  # the linear 1-Lipschitz critic
    assert float(dual) == pytest.approx(prob.w1, abs=0.03)
    assert float((q.mean(0) - p.mean(0)).norm()) == pytest.approx(prob.w1, abs=0.05)
    assert exact_w1(p[:300], p[:300] + (q - p).mean(0)) == pytest.approx(prob.w1, rel=0.02)


def test_point_vs_sphere_exact_on_any_sample():
    prob = PointVsSphere(dim=5, radius=3.0)
    assert exact_w1(prob.sample_p(40), prob.sample_q(60, seed=1)) == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize("dim", [1, 2, 10])
def test_gaussian_scale_dual_equals_coupling_equals_formula(dim):
    prob = GaussianScale(dim=dim, scale_p=1.0, scale_q=2.5)
    z = torch.randn(200_000, dim, dtype=torch.float64)
    coupling_cost = (1.0 * z - 2.5 * z).norm(dim=1).mean()
    dual = -(1.0 * z).norm(dim=1).mean() + (2.5 * torch.randn_like(z)).norm(dim=1).mean()
    assert float(coupling_cost) == pytest.approx(prob.w1, rel=5e-3)
    assert float(dual) == pytest.approx(prob.w1, abs=0.02)  # ~4 standard errors
    if dim == 1:  # the exact 1-D solver on large samples converges to the population value
        assert exact_w1(prob.sample_p(20_000, 0), prob.sample_q(20_000, 0)) == pytest.approx(
            prob.w1, rel=0.03
        )
    assert GaussianScale(dim=1, scale_p=0, scale_q=1).w1 == pytest.approx(math.sqrt(2 / math.pi))


def test_toys_have_the_documented_geometry():
    x = eight_gaussians(4000, seed=0)
    assert x.shape == (4000, 2)
    assert torch.allclose(x.norm(dim=1).mean(), torch.tensor(2.0), atol=0.01)
    y = twenty_five_gaussians(4000, seed=0)
    assert y.abs().max() < 2.5 and torch.allclose(y.mean(0), torch.zeros(2), atol=0.1)
    assert swiss_roll(1000, seed=0).shape == (1000, 2)
    assert two_moons(1000, seed=0).shape == (1000, 2)
    assert torch.equal(swiss_roll(10, seed=3), swiss_roll(10, seed=3))


@pytest.mark.parametrize("offset_scale", [0.0, 0.3])
def test_min_of_funnels_map_moves_every_point_along_its_ray(offset_scale):
    """g(y) - g(T(y)) = |y - T(y)| for every moved pair: the coupling attains the potential,
    so the stated W1 is exact (up to its Monte Carlo error)."""
    prob = VoronoiPush(16, centres=16, mc_samples=100_000, offset_scale=offset_scale)
    x = prob.sample_p(5000, 3).double()
    # the same draws sample_p moved (its generator is seeded with seed + 7919)
    g = torch.Generator().manual_seed(3 + 7919)
    y = (torch.rand(5000, 16, generator=g) * 2 - 1).double()
    gap = prob.potential(y) - prob.potential(x)
    assert torch.allclose(gap, (y - x).norm(dim=1), atol=1e-5)
    assert float(gap.mean()) == pytest.approx(prob.w1, rel=0.05)
    # offsets change which funnel a point belongs to, so they change the problem
    if offset_scale:
        assert prob.w1 != pytest.approx(VoronoiPush(16, 16, mc_samples=100_000).w1, rel=0.01)


def test_zero_offsets_leave_the_kinked_problem_as_it_was():
    a = VoronoiPush(8, centres=16, mc_samples=10_000)
    b = VoronoiPush(8, centres=16, mc_samples=10_000, offset_scale=0.0)
    assert a.w1 == b.w1 and torch.equal(a.sample_p(100, 0), b.sample_p(100, 0))
    assert a.w1 == pytest.approx(0.6918, abs=0.01)  # the known suite's value at 10^6 points
    with pytest.raises(ValueError, match="offset_scale"):
        VoronoiPush(8, offset_scale=-1.0)
