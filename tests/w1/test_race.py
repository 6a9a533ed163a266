"""The race retires only members the one-standard-error rule can no longer pick: the
reported member, its value and every member's monitor value are those of the full run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wgan_lip import estimate_w1
from wgan_lip.errors import InputError
from wgan_lip.w1.family import CriticFamily
from wgan_lip.w1.race import MemberRace

NAMES = ["linear", "peaks", "mlp"]
RANKS = [(0, 1), (1, 64), (2, 5000)]
TRAINED = [False, True, True]


def _race(**kw) -> MemberRace:
    return MemberRace(NAMES, RANKS, TRAINED, **kw)


def test_a_member_far_behind_and_not_gaining_retires():
    race = _race()
    assert race.update(50, [1.0, 0.3, 0.5], [0.05] * 3) == []  # before min_steps
    assert race.update(100, [1.0, 0.4, 0.52], [0.05] * 3) == [1, 2]
    assert race.finished and race.retired == {"peaks": 100, "mlp": 100}


def test_a_member_still_climbing_fast_stays():
    race = _race()
    race.update(50, [1.0, 0.2, 0.2], [0.05] * 3)
    # the network gained 0.5 over the last half: 0.7 + 0.5 can still reach 1.05
    assert race.update(100, [1.0, 0.3, 0.7], [0.05] * 3) == [1]
    assert race.live == [False, False, True] and not race.finished


def test_nothing_retires_before_min_steps_or_without_an_earlier_check():
    race = _race(min_steps=200)
    for step in (50, 100, 150):
        assert race.update(step, [1.0, 0.0, 0.0], [0.05] * 3) == []
    race = _race()
    assert race.update(100, [1.0, 0.0, 0.0], [0.05] * 3) == []  # no check at or before 50


def test_the_leader_and_closed_form_members_never_retire():
    race = _race()
    for step in range(50, 1000, 50):
        race.update(step, [0.5, 0.6, 1.0], [0.05] * 3)  # the network leads, by far
    assert race.live == [False, False, True]  # closed form: never live, never retired
    assert "linear" not in race.retired and "mlp" not in race.retired


def test_a_member_must_beat_a_simpler_leader_by_its_own_standard_error():
    """Equal to the closed-form member within noise is not enough: the one-SE rule picks
    the simpler one."""
    race = MemberRace(["linear", "mlp"], [(0, 1), (2, 9)], [False, True])
    race.update(50, [1.0, 0.99], [0.1, 0.1])
    assert race.update(100, [1.0, 1.0], [0.1, 0.1]) == [1]
    # but with a more complex rival still training, only the floor counts
    race = _race()
    race.update(50, [1.0, 0.99, 0.5], [0.1] * 3)
    assert race.update(100, [1.0, 1.0, 0.9], [0.1] * 3) == []


def test_a_retired_member_keeps_its_best_and_leaves_the_training_pass():
    torch.manual_seed(0)
    fam = CriticFamily((2,), cone_anchors=4)
    x = torch.randn(32, 2)
    fam.fit_normalization(x)
    fam.fit_closed_form(x[:16], x[16:] + 1)
    fam.record([1.0, 0.5, 0.2, 0.2, 0.3], [0.1] * 5)
    assert fam(x, trained_only=True).shape == (32, 3)
    fam.retire(4)  # the network
    assert fam(x, trained_only=True).shape == (32, 2)
    assert set(fam.idle_parameters()) == set(fam.groups["mlp3x128"].parameters())
    fam.record([1.0, 0.5, 0.3, 0.3, 0.9], [0.1] * 5)
    assert float(fam.best_values[4]) == pytest.approx(0.3)  # frozen at retirement
    assert float(fam.best_values[2]) == pytest.approx(0.3)  # the cones still improve


def _translation(n=1500, d=10, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, d)).astype(np.float32)
    return p, (rng.normal(size=(n, d)) + 0.3).astype(np.float32)


def test_the_race_keeps_the_full_runs_answer_and_says_why_it_stopped():
    p, q = _translation()
    kw = dict(progress=False, seed=0, trainer={"accelerator": "cpu"})
    raced = estimate_w1(p, q, **kw)
    full = estimate_w1(p, q, critic={"race": False}, **kw)
    assert raced.stopped == "raced" and full.stopped in ("resolved", "plateau")
    assert raced.critic_name == full.critic_name == "linear"
    assert raced.value == full.value and raced.ci_low == full.ci_low
    assert raced.steps < full.steps and full.retired == {}
    assert set(raced.retired) == {"peaks", "pits", "mlp:128x3:maxmin"}
    # every member's certified value is still reported
    assert set(raced.monitor_values) == set(full.monitor_values)
    assert all(math.isfinite(v) for v in raced.monitor_values.values())
    assert raced.to_dict()["retired"] == raced.retired


def test_a_bad_race_option_is_one_line():
    p, q = _translation(200)
    with pytest.raises(InputError, match="race must be True or False, got 'yes'"):
        estimate_w1(p, q, critic={"race": "yes"}, progress=False)


def test_in_sample_the_race_follows_the_largest_value_rule():
    race = MemberRace(["linear", "mlp"], [(0, 1), (2, 9)], [False, True], one_se=False)
    race.update(50, [1.0, 0.99], [0.1, 0.1])
    # 1.0 + 0.01 beats the linear member's 1.0: in-sample it could still win
    assert race.update(100, [1.0, 1.0], [0.1, 0.1]) == []


def test_an_excluded_member_sets_no_target():
    """A transport potential scored on its own fit rows (monitor = fit) is left out of the
    selection, so it must not push the others out of the race either."""
    names, ranks = ["transport", "mlp"], [(3, 1), (2, 9)]
    race = MemberRace(names, ranks, [False, True], exclude=("transport",))
    race.update(50, [5.0, 0.5], [0.1, 0.1])
    assert race.update(100, [5.0, 0.55], [0.1, 0.1]) == []
    race = MemberRace(names, ranks, [False, True])
    race.update(50, [5.0, 0.5], [0.1, 0.1])
    assert race.update(100, [5.0, 0.55], [0.1, 0.1]) == [1]


def test_in_sample_the_race_keeps_the_largest_value():
    """holdout=0: the transport potential is the exact W1 of the samples; the race ends
    the run without changing that answer."""
    p, q = _translation(300, 3)
    kw = dict(holdout=0.0, progress=False, seed=0, trainer={"accelerator": "cpu"})
    raced = estimate_w1(p, q, **kw)
    full = estimate_w1(p, q, critic={"race": False}, **kw)
    assert raced.critic_name == full.critic_name and raced.value == full.value
    assert raced.steps <= full.steps
