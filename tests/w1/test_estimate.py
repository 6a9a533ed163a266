"""Properties of estimate_w1 that can fail: duality bounds, agreement with exact values."""

import math

import numpy as np
import pytest
import torch

from wgan_lip import estimate_w1, exact_w1
from wgan_lip.data import GaussianScale, PointVsSphere, Translation, eight_gaussians, two_moons
from wgan_lip.errors import InputError
from wgan_lip.layers import lipschitz_bound
from wgan_lip.w1 import build_critic

FAST = {"progress": False}


def _in_sample_problem(d: int, n: int = 300):
    g = torch.Generator().manual_seed(d)
    if d == 1:
        return torch.randn(n, 1, generator=g), 0.5 * torch.randn(n, 1, generator=g) + 1
    if d == 2:
        return two_moons(n, 0), eight_gaussians(n, 1)
    prob = GaussianScale(d, 1.0, 2.0)
    return prob.sample_p(n, 0), prob.sample_q(n, 0)


@pytest.mark.parametrize("d", [1, 2, 8])
def test_in_sample_certified_value_never_exceeds_exact_and_nearly_reaches_it(d):
    p, q = _in_sample_problem(d)
    exact = exact_w1(p, q)
    steps = None if d <= 2 else 1000  # d = 8 only checks the upper bound
    est = estimate_w1(
        p, q, critic={"eval_every": 50}, holdout=0, batch_size=len(p), steps=steps, **FAST
    )
    assert est.certified and est.value == est.train_value
    # Kantorovich-Rubinstein: a 1-Lipschitz critic cannot beat the optimal transport cost of
    # the same two samples (float32 scores: 1e-5 relative slack for rounding).
    assert est.value <= exact * (1 + 1e-5)
    if d <= 2:
        assert est.value >= 0.97 * exact
    # The critic really is 1-Lipschitz on every pair of these samples.
    x = torch.cat([p, q])
    with torch.no_grad():
        f = est.critic(x).double()
    dist = torch.cdist(x.double(), x.double())
    far = dist > 1e-2  # closer pairs mostly measure float32 rounding of the scores
    ratio = (f[:, None] - f[None, :]).abs()[far] / dist[far]
    assert ratio.max().item() <= est.lipschitz_bound * (1 + 1e-4)


@pytest.mark.parametrize(
    "prob", [Translation(4, 6.0), PointVsSphere(3, 2.0)], ids=["translation", "sphere"]
)
def test_held_out_estimate_within_5_percent_of_exact_w1(prob):
    n = 2000
    est = estimate_w1(prob.sample_p(n, 0), prob.sample_q(n, 0), critic={"eval_every": 50}, **FAST)
    assert abs(est.value - prob.w1) <= 0.05 * prob.w1
    assert est.ci_low <= est.value <= est.ci_high
    assert est.n_holdout_p == est.n_holdout_q == 400 and est.dim == prob.dim
    # The returned critic certifies on fresh samples too, never above the true W1 beyond noise.
    value, low, high = est.score(prob.sample_p(20_000, 5), prob.sample_q(20_000, 5))
    stderr = (high - low) / (2 * 1.96)
    assert 0.9 * prob.w1 <= value <= prob.w1 + 4 * stderr


def test_critic_works_in_the_users_units():
    """Scaling the data by 1000 scales the certified estimate by 1000: the rescaling inside
    the critic is undone at the output and counted in lipschitz_bound."""
    prob = Translation(2, 1.0)
    p, q = prob.sample_p(600, 0), prob.sample_q(600, 0)
    small = estimate_w1(p, q, critic={"eval_every": 50}, steps=300, **FAST)
    big = estimate_w1(1000 * p, 1000 * q, critic={"eval_every": 50}, steps=300, **FAST)
    assert big.value == pytest.approx(1000 * small.value, rel=0.05)
    assert big.lipschitz_bound == pytest.approx(1.0, abs=1e-4)
    assert big.lipschitz_bound == pytest.approx(lipschitz_bound(big.critic.net), rel=1e-9)
    assert float(big.critic.scale) > 500  # the normalization really is inside the critic


@pytest.mark.parametrize("critic", ["gp", "lp", "sn", "clip"])
def test_baselines_run_and_are_not_certified(critic):
    prob = Translation(2, 1.0)
    spec = {"name": critic, "eval_every": 50}
    est = estimate_w1(prob.sample_p(400, 0), prob.sample_q(400, 0), critic=spec, steps=100, **FAST)
    assert not est.certified
    assert all(math.isfinite(v) for v in (est.value, est.ci_low, est.ci_high, est.train_value))
    assert est.lipschitz_bound > 0 and est.steps == 100


def test_bcop_critic_on_images_is_certified_and_sound():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(200, 1, 8, 8, generator=g)
    q = torch.rand(200, 1, 8, 8, generator=g) + 0.1  # translation: exact W1 = 0.1 * 8
    est = estimate_w1(
        p,
        q,
        critic={"name": "bcop", "eval_every": 50},
        holdout=0,
        steps=200,
        batch_size=200,
        **FAST,
    )
    assert est.certified and est.lipschitz_bound <= 1 + 1e-4
    assert 0 < est.value <= exact_w1(p.flatten(1), q.flatten(1)) * (1 + 1e-5)
    with pytest.raises(InputError, match="bcop critic needs images"):
        estimate_w1(
            np.zeros((10, 4)), np.ones((10, 4)), critic={"name": "bcop", "eval_every": 50}, **FAST
        )


def test_to_dict_and_seed_reproducibility():
    prob = Translation(2, 1.0)
    p, q = prob.sample_p(300, 0), prob.sample_q(300, 0)
    a = estimate_w1(p, q, critic={"eval_every": 50}, steps=100, seed=3, **FAST)
    b = estimate_w1(p, q, critic={"eval_every": 50}, steps=100, seed=3, **FAST)
    assert a.value == b.value
    d = a.to_dict()
    for key in (
        "value",
        "ci_low",
        "ci_high",
        "train_value",
        "lipschitz_bound",
        "n_p",
        "n_q",
        "dim",
        "steps",
        "seconds",
        "certified",
    ):
        assert key in d
    assert "critic" not in d


def test_bad_arguments():
    x = np.zeros((10, 2))
    with pytest.raises(InputError, match="unknown critic"):
        estimate_w1(x, x, critic="nope")
    with pytest.raises(InputError, match="steps must be positive"):
        estimate_w1(x, x, steps=0)
    with pytest.raises(InputError, match="dimension mismatch"):
        estimate_w1(x, np.zeros((10, 3)))
    with pytest.raises(InputError, match="unknown critic"):
        build_critic("nope", (2,))
