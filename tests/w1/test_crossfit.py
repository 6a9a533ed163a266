"""Cross-fitting, independent per-side splits (shared rows included), and the two-sample
test."""

import json

import numpy as np
import pytest
import torch

from wgan_lip import estimate_w1, exact_w1
from wgan_lip.cli import main
from wgan_lip.data import Translation
from wgan_lip.data.rows import TensorRows
from wgan_lip.errors import InputError
from wgan_lip.w1.data import TwoSampleDataModule, split_indices, split_pair
from wgan_lip.w1.two_sample import combine_fold_p_values, permutation_p_value

FAST = {"progress": False}
SMALL = ("linear", "peaks", "mlp:16x2:maxmin")


def _keys(x: torch.Tensor) -> set:
    return {tuple(r) for r in x.reshape(len(x), -1).tolist()}


@pytest.mark.parametrize("folds", [1, 3])
def test_each_side_is_split_on_its_own_whatever_the_other_side_holds(folds):
    # held-out rows must be independent of what the critic saw: P's split may not depend on
    # Q's rows (a rule tying shared rows across sides made discrete nulls "significant")
    g = torch.Generator().manual_seed(0)
    common = torch.randn(300, 4, generator=g)
    p = torch.cat([common, torch.randn(100, 4, generator=g)])[torch.randperm(400, generator=g)]
    for q in (torch.cat([torch.randn(50, 4, generator=g), common]), torch.randn(350, 4) + 5):
        for fold in range(folds):
            sp, _ = split_pair(
                TensorRows(p), TensorRows(q), 0.25, 0.1, seed=5, folds=folds, fold=fold
            )
            alone = split_indices(400, 0.25, 0.1, 5, "P", folds, fold)
            assert torch.equal(sp.holdout, alone.holdout) and torch.equal(sp.fit, alone.fit)
            assert not set(sp.holdout.tolist()) & set(sp.fit.tolist())


def test_discrete_data_shared_values_still_give_a_representative_held_out_sample():
    # two samples of one discrete distribution: every value occurs on both sides many times;
    # held-out rows must not be whole values (that would hold out part of the support)
    gen = torch.Generator().manual_seed(1)
    p = torch.randint(0, 5, (1000, 1), generator=gen).float()
    q = torch.randint(0, 5, (800, 1), generator=gen).float()
    sp, sq = split_pair(TensorRows(p), TensorRows(q), 0.2, 0.1, seed=2)
    assert len(set(p[sp.holdout, 0].tolist())) == 5 and len(set(q[sq.holdout, 0].tolist())) == 5
    assert abs(len(sp.holdout) - 200) < 40 and abs(len(sq.holdout) - 160) < 40


def test_constant_data_on_both_sides_is_split_and_gives_zero():
    x = np.ones((50, 3), dtype=np.float32)
    est = estimate_w1(x, x, critic={"family": SMALL, "eval_every": 50}, steps=20, **FAST)
    assert est.value == 0 and est.ci_low <= 0 <= est.ci_high and est.n_holdout_p >= 2


def test_disjoint_sources_keep_the_independent_per_side_split():
    p, q = torch.randn(100, 3), torch.randn(80, 3) + 1
    sp, sq = split_pair(TensorRows(p), TensorRows(q), 0.2, 0.1, seed=1)
    assert len(sp.holdout) == 20 and len(sq.holdout) == 16


def test_same_file_twice_gives_an_interval_covering_zero(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(600, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    code = main(
        [
            "w1",
            str(tmp_path / "a.npy"),
            str(tmp_path / "a.npy"),
            "--json",
            "--no-progress",
            "--steps",
            "100",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    # a held-out row of P may have trained Q (scored low): the value leans below zero
    assert out["value"] <= 0 and out["ci_low"] <= 0
    assert out["p_value"] > 0.05


def test_cross_fitting_holds_out_every_sample_once_and_stays_below_exact():
    prob = Translation(3, 1.0)
    p, q = prob.sample_p(450, 0), prob.sample_q(400, 0)
    dm = TwoSampleDataModule(p, q, folds=3)
    dm.load()
    seen_p = []
    for k in range(3):
        dm.use_fold(k)
        ip, _ = dm.indices("holdout")
        fit_p, _ = dm.indices("fit")
        assert not set(ip.tolist()) & set(fit_p.tolist())
        seen_p += ip.tolist()
    assert sorted(seen_p) == list(range(450))
    est = estimate_w1(p, q, critic={"family": SMALL, "eval_every": 50}, folds=3, steps=100, **FAST)
    assert est.folds == 3 and est.n_holdout_p == 450 and est.n_holdout_q == 400
    assert est.ci_low <= est.value <= est.ci_high
    assert est.value <= exact_w1(p, q) and est.value > 0.7
    assert est.p_value < 0.01


def test_folds_are_validated():
    x = np.zeros((10, 2))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="folds"):
            estimate_w1(x, x + 1, critic={"eval_every": 50}, folds=bad, **FAST)
    with pytest.raises(InputError, match="6 folds of 5 samples"):
        rng = np.random.default_rng(0)
        estimate_w1(
            rng.random((5, 2)), rng.random((5, 2)), critic={"eval_every": 50}, folds=6, **FAST
        )


def test_permutation_p_value_is_uniform_under_the_null_and_small_under_a_shift():
    gen = torch.Generator().manual_seed(0)
    ps = [
        permutation_p_value(
            torch.randn(40, generator=gen), torch.randn(30, generator=gen), permutations=199, seed=i
        )
        for i in range(300)
    ]
    ps = np.array(ps)
    assert 0.05 <= (ps < 0.1).mean() <= 0.15  # P(p < 0.1) = 0.1 under H0
    assert 0.4 <= (ps < 0.5).mean() <= 0.6
    shifted = permutation_p_value(
        torch.randn(200, generator=gen) + 1, torch.randn(200, generator=gen)
    )
    assert shifted == pytest.approx(1 / 2000)
    # one-sided: P scores *below* Q scores are no evidence for the trained direction
    assert (
        permutation_p_value(torch.randn(200, generator=gen) - 1, torch.randn(200, generator=gen))
        > 0.9
    )
    # the normal approximation for many scores agrees
    big = permutation_p_value(
        torch.randn(150_000, generator=gen) + 0.01, torch.randn(150_000, generator=gen)
    )
    assert 0 < big < 1


def test_fold_p_values_combine_by_bonferroni():
    assert combine_fold_p_values([0.01, 0.5, 0.9]) == pytest.approx(0.03)
    assert combine_fold_p_values([0.6, 0.7]) == 1.0


def test_in_sample_json_has_null_p_value(tmp_path, capsys):
    np.save(tmp_path / "p.npy", np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32))
    np.save(tmp_path / "q.npy", np.random.default_rng(1).normal(size=(100, 2)).astype(np.float32))
    code = main(
        [
            "w1",
            str(tmp_path / "p.npy"),
            str(tmp_path / "q.npy"),
            "--json",
            "--no-progress",
            "--steps",
            "20",
            "--holdout",
            "0",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "NaN" not in text
    assert json.loads(text)["p_value"] is None
