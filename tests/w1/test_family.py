"""The critic family: every member certified (bound >= exact Jacobian norm), members equal
to their slice of the family, per-member early stopping, selection, and what it buys."""

import math

import numpy as np
import pytest
import torch

from wgan_lip import estimate_w1, exact_w1
from wgan_lip.data import GaussianScale, PointVsSphere, Translation, VoronoiPush
from wgan_lip.errors import InputError
from wgan_lip.layers import lipschitz_bound
from wgan_lip.w1.family import DEFAULT_FAMILY, CriticFamily, parse_member

FAST = {"progress": False}
ALL = (
    "linear",
    "transport",
    "peaks",
    "pits",
    "mlp:16x2:maxmin",
    "mlp:16x2:gs4",
    "mlp:8x3:fullsort",
)


def _family(d=5, members=ALL, seed=0):
    torch.manual_seed(seed)
    fam = CriticFamily((d,), members, cone_anchors=7)
    xp, xq = torch.randn(60, d) * 3 + 1, torch.randn(50, d)
    fam.fit_normalization(torch.cat([xp, xq]))
    fam.fit_closed_form(xp, xq, seed=seed)
    with torch.no_grad():  # move the trained members away from their initialization
        for p in fam.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return fam, xp, xq


def _jacobian_norm(f, x):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x[None]).sum(), x)
    return float(g.norm())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_member_bound_is_at_least_its_gradient_norm_and_difference_quotients(seed):
    fam, xp, xq = _family(seed=seed)
    x = torch.cat([xp, xq]).double()
    for k, name in enumerate(fam.names):
        critic = fam.member(k).double()
        bound = lipschitz_bound(critic)
        grads = [_jacobian_norm(critic, xi) for xi in x[::7]]
        assert max(grads) <= bound * (1 + 1e-6), name
        with torch.no_grad():
            f = critic(x)
        dist = torch.cdist(x, x)
        far = dist > 1e-6
        ratio = ((f[:, None] - f[None, :]).abs()[far] / dist[far]).max()
        assert float(ratio) <= bound * (1 + 1e-6), name


def test_member_scores_equal_the_family_slice_in_user_units():
    fam, xp, xq = _family()
    x = torch.cat([xp, xq])
    with torch.no_grad():
        all_scores = fam(x) * fam.scale
        for k, name in enumerate(fam.names):
            torch.testing.assert_close(
                fam.member(k)(x), all_scores[:, k], rtol=1e-4, atol=1e-4, msg=name
            )


def test_linear_member_is_the_unit_mean_difference_and_gives_its_norm():
    fam, xp, xq = _family(members=("linear",))
    critic = fam.member(0)
    # |u| = 1, plus the float32 rounding term of a 2-input dot product
    assert 1.0 <= lipschitz_bound(critic) <= 1.0 + 1e-5
    with torch.no_grad():
        value = critic(xp).double().mean() - critic(xq).double().mean()
    assert float(value) == pytest.approx(
        float((xp.double().mean(0) - xq.double().mean(0)).norm()), rel=1e-5
    )


def test_transport_member_reaches_the_exact_w1_of_its_rows():
    fam, xp, xq = _family(members=("transport",))
    critic = fam.member(0).double()
    with torch.no_grad():
        value = float(critic(xp.double()).mean() - critic(xq.double()).mean())
    exact = exact_w1(xp, xq)
    assert value == pytest.approx(exact, rel=1e-5)


def test_record_keeps_each_members_best_weights():
    fam, _xp, _xq = _family(members=("peaks", "mlp:8x2:maxmin"))
    fam.record([1.0, 1.0])
    snap = {k: v.clone() for k, v in fam.state_dict().items()}
    with torch.no_grad():
        for p in fam.parameters():
            p.add_(1.0)
    fam.record([2.0, 0.5])  # member 0 improved, member 1 did not
    fam.load_best()
    state = fam.state_dict()
    assert not torch.equal(state["groups.cones.anchors"], snap["groups.cones.anchors"])
    for name, t in state.items():
        if name.startswith("groups.mlp"):
            torch.testing.assert_close(t, snap[name], msg=name)
    assert fam.best_member() == 0 and fam.best_values.tolist() == [2.0, 1.0]


@pytest.mark.parametrize("name", ["mlp:0x2:maxmin", "mlp:10x2:gs4", "cubic", "mlp:8x2"])
def test_bad_member_names_are_refused(name):
    with pytest.raises(InputError, match="family member"):
        parse_member(name)
    with pytest.raises(InputError, match="family member"):
        estimate_w1(
            np.zeros((20, 2)),
            np.ones((20, 2)),
            critic={"family": ("linear", name), "eval_every": 50},
            **FAST,
        )


def test_default_family_members_parse():
    assert [parse_member(m).name for m in DEFAULT_FAMILY] == list(DEFAULT_FAMILY)


def test_family_estimate_reports_winner_and_monitor_values_and_beats_one_network():
    prob = PointVsSphere(8, 1.5)  # radial: a cone is exact, a GroupSort MLP is not
    p, q = prob.sample_p(1500, 0), prob.sample_q(1500, 0)
    est = estimate_w1(p, q, critic={"eval_every": 50}, steps=400, **FAST)
    assert est.certified and est.critic_name in DEFAULT_FAMILY
    assert set(est.monitor_values) == set(DEFAULT_FAMILY)
    # the one-standard-error rule: the winner is within reach of the best monitor value
    assert est.monitor_values[est.critic_name] >= 0.9 * max(est.monitor_values.values())
    assert est.value <= prob.w1 * 1.01 and est.value >= 0.97 * prob.w1
    single = estimate_w1(p, q, critic={"name": "groupsort", "eval_every": 50}, steps=400, **FAST)
    assert est.value >= single.value - 1e-6


def test_in_sample_family_reaches_exact_and_never_exceeds_it():
    g = torch.Generator().manual_seed(3)
    p = torch.distributions.Exponential(1.0).sample((200, 8))
    q = torch.randn(200, 8, generator=g)
    exact = exact_w1(p, q)
    est = estimate_w1(p, q, critic={"eval_every": 50}, holdout=0, steps=100, **FAST)
    assert est.value <= exact * (1 + 1e-5)
    assert est.value >= 0.99 * exact  # the transport member is exact on the samples


@pytest.mark.parametrize("factor", [1e-9, 1e9])
def test_result_does_not_depend_on_the_units(factor):
    prob = Translation(3, 1.0)
    p, q = prob.sample_p(600, 0), prob.sample_q(600, 0)
    kw = dict(
        steps=150,
        critic={"family": ("linear", "peaks", "mlp:16x2:maxmin"), "eval_every": 50},
        **FAST,
    )
    base = estimate_w1(p, q, **kw)
    scaled = estimate_w1(p * factor, q * factor, **kw)
    assert base.value > 0.5 and scaled.certified
    assert scaled.value / factor == pytest.approx(base.value, rel=0.01)
    assert scaled.ci_low / factor == pytest.approx(base.ci_low, rel=0.01)
    assert scaled.critic_name == base.critic_name


def test_kinked_problem_w1_is_half_the_mean_distance_and_peaks_find_it():
    prob = VoronoiPush(4, centres=6, mc_samples=200_000)
    y = prob.sample_q(50_000, 1).double()
    _c, dist = prob._nearest(y)
    assert prob.w1 == pytest.approx(0.5 * float(dist.mean()), rel=0.02)
    # the potential -dist(., centres) attains W1 on fresh samples (duality, by Monte Carlo)
    xp = prob.sample_p(50_000, 2)
    value = float(-prob._nearest(xp.double())[1].mean() + dist.mean())
    assert value == pytest.approx(prob.w1, rel=0.02)
    est = estimate_w1(
        prob.sample_p(1500, 0), prob.sample_q(1500, 0), critic={"eval_every": 50}, steps=400, **FAST
    )
    pop = est.score(prob.sample_p(20_000, 9), prob.sample_q(20_000, 9))[0]
    assert pop <= prob.w1 * 1.01 and pop >= 0.85 * prob.w1


def test_gaussian_scale_radial_critic():
    prob = GaussianScale(6, 2.0, 1.0)  # P wider than Q: the potential |x| is a pit
    est = estimate_w1(
        prob.sample_p(1500, 0), prob.sample_q(1500, 0), critic={"eval_every": 50}, steps=300, **FAST
    )
    pop = est.score(prob.sample_p(20_000, 4), prob.sample_q(20_000, 4))[0]
    assert 0.95 * prob.w1 <= pop <= 1.01 * prob.w1
    assert math.isfinite(est.p_value) and est.p_value < 0.01


def test_select_takes_the_simplest_member_within_one_standard_error():
    fam, _, _ = _family(members=("linear", "peaks", "mlp:16x2:maxmin", "mlp:8x2:maxmin"))
    fam.best_values.copy_(torch.tensor([0.95, 0.90, 1.00, 0.97], dtype=torch.float64))
    fam.best_stderr.copy_(torch.tensor([0.0, 0.02, 0.04, 0.03], dtype=torch.float64))
    assert fam.names[fam.select()] == "mlp:8x2:maxmin"  # 0.97 >= 1.00 - 0.04; smaller than 16
    fam.best_stderr[2] = 0.06
    assert fam.names[fam.select()] == "linear"  # 0.95 >= 1.00 - 0.06, and simplest
    assert fam.names[fam.select(one_se=False)] == "mlp:16x2:maxmin"
    assert fam.names[fam.select(one_se=False, exclude=("mlp:16x2:maxmin",))] == "mlp:8x2:maxmin"


def test_fewer_steps_than_one_evaluation_interval_still_compares_the_members():
    """One final monitor check ends every run, so ``steps < eval_every`` compares the members
    (finite monitor values) instead of reporting ``linear`` by default with -inf values."""
    p, q = Translation(dim=2, shift=1.0).sample_p(200, 0), Translation(2, 1.0).sample_q(200, 0)
    est = estimate_w1(
        p, q, critic={"family": ALL[:5]}, trainer={"accelerator": "cpu"}, steps=5, progress=False
    )
    assert est.steps == 5
    assert set(est.monitor_values) == set(ALL[:5])
    assert all(math.isfinite(v) for v in est.monitor_values.values()), est.monitor_values


@pytest.mark.parametrize("members", [("linear",), ("transport",), ("linear", "transport")])
def test_a_family_of_closed_form_members_alone_needs_no_optimizer_step(members):
    problem = Translation(dim=2, shift=1.0)
    p, q = problem.sample_p(300, seed=0), problem.sample_q(300, seed=1)
    est = estimate_w1(
        p, q, critic={"family": members}, trainer={"accelerator": "cpu"}, steps=5, progress=False
    )
    assert est.steps == 0 and est.critic_name in members
    assert set(est.monitor_values) == set(members)
    assert all(math.isfinite(v) for v in est.monitor_values.values())
    assert est.certified and 0.5 < est.value < 1.5


def test_a_single_critic_is_a_family_of_one_with_the_same_function_and_weights():
    from wgan_lip.w1.critics import build_critic

    torch.manual_seed(0)
    critic = build_critic("groupsort", (3,), network={"widths": [8, 8]})
    x = torch.randn(50, 3) * 4 + 1
    critic.fit_normalization(x)
    fam = CriticFamily.of_one(critic)
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    fam.record([1.0])
    with torch.no_grad():  # the trainer's early stopping keeps a single critic's best
        for p in fam.parameters():
            p.add_(0.1)
    fam.record([0.5])
    fam.load_best()
    moved = critic.state_dict()
    assert any(not torch.equal(before[k], moved[k]) for k in before if "net" in k)
    assert torch.equal(fam.member(0)(x), critic(x))
    assert torch.equal(fam.user_scores(x)[:, 0], critic(x))
    assert fam.names == ["groupsort"] and fam.select() == 0


def test_a_member_may_name_any_certified_layer_and_an_uncertified_one_is_refused():
    fam = CriticFamily((3,), ("linear", "mlp:8x2:maxmin:aol"))
    from wgan_lip.layers import AOLLinear

    assert any(isinstance(m, AOLLinear) for m in fam.member(1).net.modules())
    with pytest.raises(InputError, match="plain is not"):
        CriticFamily((3,), ("mlp:8x2:maxmin:plain",))


def test_old_keywords_name_their_new_place():
    with pytest.raises(TypeError, match=r"accelerator= moved into trainer"):
        estimate_w1(np.zeros((10, 2)), np.ones((10, 2)), accelerator="cpu")
    with pytest.raises(TypeError, match=r"widths= moved into network"):
        estimate_w1(np.zeros((10, 2)), np.ones((10, 2)), widths=(8,))
