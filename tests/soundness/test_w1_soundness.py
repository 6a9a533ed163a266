"""A certified W1 value never lies, on any class of data users have.

Each class of :mod:`tests.soundness.data_classes` is checked against the promise it can
break: the in-sample certified value never exceeds the exact W1 of the *original* values
(float64, int64, ties, streams...), the exact solver agrees with an independent reference,
an offset does not move a held-out value, and held-out rows stay independent of training on
discrete data. The 40-seed level study is ``scripts/bench_soundness.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgan_lip import estimate_w1, exact_w1
from wgan_lip.cli import main

from .data_classes import CLASSES, as_array, data_scale, reference_w1

SMALL = ("linear", "transport", "peaks", "mlp:16x2:maxmin")
FAST = {"progress": False, "steps": 20}
NULL_FAMILY = ("linear", "peaks", "mlp:16x2:maxmin")  # trained members: they learn the noise
REL = 1e-9  # in-sample value <= exact * (1 + REL) + REL * data scale


def _in_sample_ok(value: float, exact: float, scale: float) -> bool:
    return value <= exact * (1 + REL) + REL * scale


@pytest.mark.parametrize("name", sorted(CLASSES))
@settings(max_examples=2, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_in_sample_value_never_exceeds_exact_w1_of_the_original_data(name, seed):
    rng = np.random.default_rng(seed)
    p, q = CLASSES[name](rng, int(rng.integers(40, 120)))
    exact = reference_w1(p, q)
    est = estimate_w1(
        p,
        q,
        critic={"family": SMALL, "eval_every": 10},
        trainer={"accelerator": "cpu"},
        holdout=0,
        seed=seed % 1000,
        **FAST,
    )
    assert est.certified
    assert _in_sample_ok(est.value, exact, data_scale(p, q)), (name, est.value, exact)


@pytest.mark.parametrize("name", sorted(set(CLASSES) - {"finite_streams"}))
@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1))
def test_exact_w1_agrees_with_a_reference_on_the_original_values(name, seed):
    rng = np.random.default_rng(seed)
    p, q = CLASSES[name](rng, int(rng.integers(5, 60)))
    ref = reference_w1(p, q)
    assert exact_w1(p, q) == pytest.approx(ref, rel=1e-9, abs=1e-12 * (1 + data_scale(p, q)))


def test_the_probe_cases_give_the_exact_answer():
    # float64 near 1e8, UTM-like metres, unix timestamps: float32 rounding made these 8.0,
    # 0.2287 and 40.96 against exact values of about 0.2, 0.19 and 29.5
    rng = np.random.default_rng(3)
    x = 1e8 + rng.normal(size=(300, 1)) * 0.1
    utm = 4.5e6 + rng.normal(size=(200, 2)) * 0.3
    ts = 1_700_000_000 + rng.integers(0, 100, size=300)
    for p, q in ((x, x + 0.2), (utm, utm[::-1] + np.array([0.1, 0.0])), (ts, ts + 29)):
        exact = reference_w1(p, q)
        assert exact_w1(p, q) == pytest.approx(exact, rel=1e-9)
        est = estimate_w1(
            p,
            q,
            critic={"family": SMALL, "eval_every": 10},
            trainer={"accelerator": "cpu"},
            holdout=0,
            **FAST,
        )
        assert _in_sample_ok(est.value, exact, data_scale(p, q))
        assert est.value >= 0.9 * exact  # and the answer is the right one, not a small bound


def test_an_offset_does_not_move_the_held_out_value():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + np.array([0.5, 0.0])
    a = estimate_w1(
        p, q, critic={"family": SMALL, "eval_every": 10}, trainer={"accelerator": "cpu"}, **FAST
    )
    b = estimate_w1(
        p + 1e8,
        q + 1e8,
        critic={"family": SMALL, "eval_every": 10},
        trainer={"accelerator": "cpu"},
        **FAST,
    )
    assert b.value == pytest.approx(a.value, abs=1e-4)
    assert b.ci_low == pytest.approx(a.ci_low, abs=1e-4)
    # the returned critic takes the user's coordinates
    assert b.score(p[:100] + 1e8, q[:100] + 1e8)[0] == pytest.approx(
        a.score(p[:100], q[:100])[0], abs=1e-4
    )


def test_discrete_nulls_are_not_significant():
    # P and Q from one law on {0,1}^6: tying the k-th copies of a value across P and Q made
    # the interval exclude 0 on 5 of 5 of these seeds (p = 0.002-0.02)
    bad = 0
    for s in range(5):
        r = np.random.default_rng(1001 + s)
        p = r.integers(0, 2, (1000, 6)).astype("f4")
        q = r.integers(0, 2, (1000, 6)).astype("f4")
        spec = {"family": NULL_FAMILY, "eval_every": 25}
        est = estimate_w1(p, q, critic=spec, seed=1, progress=False, steps=50)
        bad += est.p_value < 0.05 or est.ci_low > 0
    assert bad <= 1


def test_the_cli_reports_exact_values_of_float64_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    p = 1e8 + rng.normal(size=(150, 1)) * 0.1
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", p + 0.2)
    code = main(
        [
            "w1",
            str(tmp_path / "p.npy"),
            str(tmp_path / "q.npy"),
            "--holdout",
            "0",
            "--steps",
            "20",
            "--exact",
            "--json",
            "--no-progress",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    exact = reference_w1(p, p + 0.2)
    assert code == 0
    assert out["exact_w1"] == pytest.approx(exact, rel=1e-9)
    assert out["sliced_w1"] == pytest.approx(exact, rel=1e-6)  # 1-D: sliced is exact
    assert _in_sample_ok(out["value"], exact, data_scale(p, p)) and out["value"] > 0.19


def test_the_same_rows_twice_are_never_significant():
    x = as_array(np.random.default_rng(5).normal(size=(500, 3)))
    est = estimate_w1(
        x, x, critic={"family": NULL_FAMILY, "eval_every": 25}, progress=False, steps=50
    )
    assert est.value <= 0 and est.p_value > 0.05


def _save(path, x: np.ndarray, fmt: str):
    import torch

    if fmt == "npy":
        np.save(path.with_suffix(".npy"), x)
        return path.with_suffix(".npy")
    if fmt == "npz":
        np.savez(path.with_suffix(".npz"), x=x)
        return path.with_suffix(".npz")
    if fmt == "pt":
        torch.save(torch.from_numpy(x), path.with_suffix(".pt"))
        return path.with_suffix(".pt")
    if fmt == "csv":
        np.savetxt(path.with_suffix(".csv"), x, delimiter=",", fmt="%.17g")
        return path.with_suffix(".csv")
    path.mkdir()  # a folder of .npy shards
    for k, part in enumerate(np.array_split(x, 3)):
        np.save(path / f"part-{k}.npy", part)
    return path


@pytest.mark.parametrize("fmt", ["npy", "npz", "pt", "csv", "shards"])
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_every_file_format_keeps_the_data_precision(tmp_path, fmt, dtype):
    rng = np.random.default_rng(7)
    if dtype == np.int64:
        p = 1_700_000_000_000 + rng.integers(0, 50, size=(90, 2))
        q = 1_700_000_000_000 + rng.integers(0, 50, size=(90, 2)) + 7
    else:
        p = 4.5e6 + rng.normal(size=(90, 2)) * 0.3
        q = 4.5e6 + rng.normal(size=(90, 2)) * 0.3 + np.array([0.2, 0.0])
    fp, fq = (
        _save(tmp_path / "p", p.astype(dtype), fmt),
        _save(tmp_path / "q", q.astype(dtype), fmt),
    )
    exact = reference_w1(p.astype(dtype), q.astype(dtype))
    est = estimate_w1(
        str(fp),
        str(fq),
        critic={"family": SMALL, "eval_every": 10},
        trainer={"accelerator": "cpu"},
        holdout=0,
        **FAST,
    )
    assert _in_sample_ok(est.value, exact, data_scale(p, q)) and est.value >= 0.9 * exact
    assert exact_w1(p.astype(dtype), q.astype(dtype)) == pytest.approx(exact, rel=1e-9)


def test_a_float64_sampler_far_from_the_origin_keeps_its_resolution():
    rng = np.random.default_rng(0)

    def draw_p(k):
        return 1e8 + rng.normal(size=(k, 1)) * 0.1

    def draw_q(k):
        return 1e8 + 0.3 + rng.normal(size=(k, 1)) * 0.1

    est = estimate_w1(
        draw_p,
        draw_q,
        critic={"family": SMALL, "eval_every": 10},
        trainer={"accelerator": "cpu"},
        **FAST,
    )  # W1 = 0.3 exactly
    assert est.ci_low <= 0.3 and est.value > 0.25
