import pytest
import torch

from wgan_lip.errors import InputError
from wgan_lip.w1 import TwoSampleDataModule, split_indices
from wgan_lip.w1.data import PairBatches


def test_split_is_disjoint_seeded_and_complete():
    s = split_indices(1000, 0.2, 0.1, seed=3, side="P")
    parts = [set(s.fit.tolist()), set(s.monitor.tolist()), set(s.holdout.tolist())]
    assert [len(p) for p in parts] == [720, 80, 200]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(range(1000))
    again = split_indices(1000, 0.2, 0.1, seed=3, side="P")
    assert torch.equal(s.holdout, again.holdout)
    assert not torch.equal(s.holdout, split_indices(1000, 0.2, 0.1, seed=4, side="P").holdout)


def test_small_problems_monitor_on_training_and_holdout_zero_reuses_it():
    s = split_indices(100, 0.0, 0.1, seed=0, side="P")
    assert torch.equal(s.fit, s.monitor) and torch.equal(s.fit, s.holdout)
    assert len(s.fit) == 100


@pytest.mark.parametrize(
    ("n", "holdout", "match"),
    [(5, 0.1, "need at least 2"), (10, 1.0, r"\[0, 1\)"), (10, -0.1, r"\[0, 1\)")],
)
def test_split_refusals(n, holdout, match):
    with pytest.raises(InputError, match=match):
        split_indices(n, holdout, 0.1, seed=0, side="P")


def test_pair_batches_cover_each_side_without_replacement():
    xp, xq = torch.arange(10.0)[:, None], torch.arange(100.0, 107.0)[:, None]
    batches = list(PairBatches(xp, xq, batch_size=5, length=2, seed=0))
    assert len(batches) == 2
    first_pass = torch.cat([b[0] for b in batches]).reshape(-1)
    assert sorted(first_pass.tolist()) == list(range(10))  # one full pass of P
    assert all(len(b[1]) == 5 for b in batches)  # Q is smaller than 2 batches: reshuffled


def test_datamodule_parts_and_uneven_sizes():
    dm = TwoSampleDataModule(torch.randn(300, 3), torch.randn(120, 3), holdout=0.25, seed=1)
    xp, xq = dm.part("holdout")
    assert (len(xp), len(xq)) == (75, 30)
    assert dm.input_shape == (3,)
    fit_p, fit_q = dm.part("fit")
    assert len(fit_p) == 225 - 22 and len(fit_q) == 90  # Q too small for a monitor split
