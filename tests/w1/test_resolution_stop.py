"""Training stops when the monitor split can no longer tell a gain from noise, and only
then: gains smaller than a fraction of the monitor's standard error end the run, real
gains keep it going."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from wgan_lip import estimate_w1
from wgan_lip.w1 import PlateauSchedule


def _feed(cb: PlateauSchedule, values, se: float) -> int:
    """Evaluations until the callback stops training (len(values) when it never does)."""
    trainer = SimpleNamespace(
        sanity_checking=False,
        callback_metrics={},
        should_stop=False,
        global_step=0,
        optimizers=[],
    )
    for i, v in enumerate(values):
        trainer.callback_metrics = {
            "val/dual_rel": torch.tensor(v),
            "val/dual_se_rel": torch.tensor(se),
        }
        cb.on_validation_end(trainer, SimpleNamespace(state_dict=lambda: {}))
        if trainer.should_stop:
            return i + 1
    return len(values)


def test_gains_below_the_resolution_stop_training():
    creeping = [0.5 + 1e-3 * i for i in range(50)]  # 0.001 per check, se 0.05
    cb = PlateauSchedule(patience=5, restore_best=False)
    assert _feed(cb, creeping, se=0.05) == 6 and cb.resolved and cb.stopped


def test_gains_above_the_resolution_keep_training():
    climbing = [0.5 + 0.05 * i for i in range(50)]  # 0.05 per check, se 0.05
    cb = PlateauSchedule(patience=5, restore_best=False)
    assert _feed(cb, climbing, se=0.05) == 50 and not cb.resolved
    cb = PlateauSchedule(patience=5, restore_best=False, resolution=0.0)  # turned off
    _feed(cb, [0.5] * 8, se=0.05)
    assert not cb.resolved


def test_an_easy_estimate_stops_when_the_answer_is_known():
    """2,000 x 10 translation: the closed-form linear member wins at once; the run stops
    once the trained members cannot close in, not at the end of the plateau schedule, and
    its answer is the one a long run gives."""
    rng = np.random.default_rng(0)
    p = rng.normal(size=(2000, 10)).astype(np.float32)
    q = (rng.normal(size=(2000, 10)) + 0.3).astype(np.float32)
    quick = estimate_w1(p, q, progress=False, seed=0, critic={"name": "family"})
    assert quick.steps <= 200 and quick.critic_name == "linear"
    assert quick.stopped == "raced" and "mlp:128x3:maxmin" in quick.retired
    assert quick.ci_low <= 0.3 * 10**0.5  # the certified interval starts below the truth


def test_the_schedule_starts_afresh_when_the_race_retires_a_member():
    """The monitor is the best live member: once the leading network retires, the cones'
    lower values must not read as a lost window (a resolution stop) or as no improvement."""
    cb = PlateauSchedule(patience=3, restore_best=False)
    family = SimpleNamespace(live=[False, True, True])
    module = SimpleNamespace(state_dict=lambda: {}, critic=family)
    trainer = SimpleNamespace(
        sanity_checking=False, callback_metrics={}, should_stop=False, global_step=0, optimizers=[]
    )

    def check(v):
        trainer.callback_metrics = {
            "val/dual_rel": torch.tensor(v),
            "val/dual_se_rel": torch.tensor(0.01),
        }
        cb.on_validation_end(trainer, module)

    for v in (0.90, 0.95, 0.96, 0.96):  # the network leads
        check(v)
    family.live = [False, True, False]  # the network retires; the cones climb from 0.5
    for v in (0.96, 0.50, 0.55, 0.60, 0.65):
        check(v)
        assert not trainer.should_stop
    assert cb.history == pytest.approx([0.50, 0.55, 0.60, 0.65]) and cb.best == pytest.approx(0.65)
