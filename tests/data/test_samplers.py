"""Sampler sources: callables and torch datasets draw fresh samples at every read."""

import numpy as np
import pytest
import torch
from torch.utils.data import IterableDataset, TensorDataset

from wgan_lip import estimate_w1
from wgan_lip.data.samplers import sampler_rows
from wgan_lip.data.sources import load_samples
from wgan_lip.errors import InputError

SMALL = ("linear", "peaks", "mlp:16x2:maxmin")
FAST = {"progress": False, "steps": 100}


def test_callable_draws_fresh_rows_at_every_read():
    calls = []

    def draw(n):
        calls.append(n)
        return torch.randn(n, 3)

    s = load_samples(draw)
    a, b = s.take(torch.arange(5)), s.take(torch.arange(5))
    assert a.shape == (5, 3) and not torch.equal(a, b)
    assert calls[-2:] == [5, 5]


def test_generator_style_sampler_estimates_w1_to_a_dataset():
    g = torch.nn.Linear(4, 2)
    with torch.no_grad():
        g.weight.zero_()
        g.bias.copy_(torch.tensor([3.0, 4.0]))
        g.weight[:, :2] = torch.eye(2)

    q = np.random.default_rng(0).normal(size=(2000, 2))
    est = estimate_w1(
        lambda n: g(torch.randn(n, 4)), q, critic={"eval_every": 50, "family": SMALL}, **FAST
    )
    # P = N((3,4), I) (the generator's output, with grad: detached inside), Q = N(0, I): W1 = 5
    assert 4.6 <= est.value <= 5.05 and est.ci_low <= 5.0
    assert est.n_holdout_p == 10_000  # fresh held-out draws


def test_map_and_iterable_datasets():
    class Stream(IterableDataset):
        def __iter__(self):
            for _ in range(300):  # a finite stream: read to its end once, then split
                yield torch.randn(2) + 2.0, 0

    labelled = TensorDataset(torch.randn(800, 2), torch.zeros(800))
    est = estimate_w1(Stream(), labelled, critic={"eval_every": 50, "family": SMALL}, **FAST)
    assert est.n_p == 300 and est.n_holdout_p == 60 and est.n_q == 800
    assert 2.3 <= est.value <= 2.9  # W1 = 2 sqrt(2)


class _Counted(IterableDataset):
    """The rows of ``x`` once per pass; counts the passes started."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x, self.passes = x, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.x)


def test_a_finite_stream_is_never_recycled():
    # two streams of the same rows: recycling made them "10,000 fresh held-out rows" that
    # were the training rows, and a significant W1 between a sample and itself
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    a, b = _Counted(x), _Counted(x)
    est = estimate_w1(a, b, critic={"eval_every": 50, "family": SMALL}, **FAST)
    assert a.passes == 1 and b.passes == 1
    assert est.n_p == 200 and est.n_holdout_p == 40
    assert est.value <= 0.05 and est.p_value > 0.05


def test_an_endless_stream_is_read_on_and_an_early_end_is_one_line():
    class Endless(IterableDataset):
        def __iter__(self):
            while True:
                yield torch.randn(3)

    rows = sampler_rows(Endless(), "P")
    assert rows.fresh and "stream" in rows.description
    first, second = rows.take(torch.arange(5)), rows.take(torch.arange(5))
    assert not torch.equal(first, second)  # each sample used once

    from wgan_lip.data import samplers

    class Long(IterableDataset):
        def __iter__(self):
            return iter(torch.randn(samplers.STREAM_READ_ROWS + 10, 1))

    long = sampler_rows(Long(), "Q")
    long.take(torch.arange(samplers.STREAM_READ_ROWS))
    with pytest.raises(InputError, match="Q: the stream ended after 50,010 samples"):
        long.take(torch.arange(20))


@pytest.mark.parametrize(
    "draw, match",
    [
        (lambda n: torch.randn(n + 1, 2), "returned 3 samples when asked for 2"),
        (lambda n: torch.full((n, 2), float("nan")), "NaN or Inf"),
        (lambda n: 1 / 0, "sampler failed"),
        (lambda n: "abc", "not an array of samples|dtype"),
        (lambda n: torch.tensor(1.0), "single number"),
        (lambda n: torch.randn(n, 2, dtype=torch.complex64), "complex"),
    ],
)
def test_bad_samplers_give_one_line_errors(draw, match):
    with pytest.raises(InputError, match=match):
        load_samples(draw)
