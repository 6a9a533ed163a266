import math

import numpy as np
import pytest
import torch

from wgan_lip.w1 import DualStats, kr_dual, kr_loss


def test_kr_sign_convention():
    fp, fq = torch.tensor([3.0, 5.0]), torch.tensor([1.0, 1.0, 4.0])
    assert kr_dual(fp, fq).item() == pytest.approx(4.0 - 2.0)
    assert kr_loss(fp, fq).item() == pytest.approx(-2.0)


def test_dual_stats_matches_numpy_in_chunks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, 1001), rng.normal(1, 0.5, 517)
    s = DualStats()
    for chunk in np.array_split(a, 7):
        s.update(torch.from_numpy(chunk), "p")
    for chunk in np.array_split(b, 3):
        s.update(torch.from_numpy(chunk).float(), "q")
    assert s.value == pytest.approx(a.mean() - b.mean(), rel=1e-6)
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert s.stderr == pytest.approx(se, rel=1e-6)
    v, lo, hi = s.interval(scale=2.0)
    assert v == pytest.approx(s.value / 2)
    assert hi - lo == pytest.approx(2 * 1.959963984540054 * se / 2, rel=1e-6)
    assert DualStats.from_tensor(s.as_tensor()) == s


def test_dual_stats_refuses_unknown_side_and_empty():
    with pytest.raises(ValueError, match="side"):
        DualStats().update(torch.ones(2), "x")
    with pytest.raises(ValueError, match="no scores"):
        _ = DualStats().value
