import numpy as np
import ot
import pytest
import scipy.stats
import torch

from wgan_lip.ot import exact_w1, sliced_w1


def test_exact_w1_equals_a_direct_pot_call_with_euclidean_cost():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(60, 3)), rng.normal(size=(45, 3)) + 0.5
    direct = ot.emd2(
        np.full(60, 1 / 60),
        np.full(45, 1 / 45),
        ot.dist(p, q, metric="euclidean"),
        numItermax=10**7,
    )
    assert exact_w1(p, q) == pytest.approx(direct, rel=1e-12)
    assert exact_w1(torch.tensor(p, dtype=torch.float32), q) == pytest.approx(direct, rel=1e-5)


def test_one_dimension_matches_scipy_with_weights():
    rng = np.random.default_rng(1)
    u, v = rng.exponential(size=80), rng.normal(size=50)
    wu, wv = rng.random(80), rng.random(50)
    expected = scipy.stats.wasserstein_distance(u, v, wu, wv)
    assert exact_w1(u, v, wu, wv) == pytest.approx(expected, rel=1e-10)
    assert exact_w1(u[:, None], v[:, None], wu, wv) == pytest.approx(expected, rel=1e-10)


def test_translation_of_a_sample_costs_exactly_the_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 5))
    s = rng.normal(size=5)
    assert exact_w1(x, x + s) == pytest.approx(np.linalg.norm(s), rel=1e-9)


def test_sliced_is_a_lower_bound():
    rng = np.random.default_rng(3)
    p, q = rng.normal(size=(100, 4)), rng.normal(size=(100, 4)) * 2
    assert 0 < sliced_w1(p, q, n_projections=200) <= exact_w1(p, q)


def test_bad_inputs_are_refused_clearly():
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match=r"P has shape \(10, 3\), Q has shape \(10, 2\)"):
        exact_w1(x, np.zeros((10, 2)))
    bad = x.copy()
    bad[[1, 4], 0] = np.nan
    with pytest.raises(ValueError, match="2 of 10 rows contain NaN or Inf"):
        exact_w1(bad, x)
    with pytest.raises(MemoryError, match=r"needs about .* GiB.*estimate_w1"):
        exact_w1(np.zeros((3000, 2)), np.zeros((3000, 2)), max_bytes=10**6)
    with pytest.raises(ValueError, match="expected 10 weights"):
        exact_w1(x, x, p_weights=np.ones(3))


def test_the_cost_matrix_is_accurate_for_near_duplicates_in_high_dimension():
    from scipy.spatial.distance import cdist

    from wgan_lip.ot import euclidean_cost

    rng = np.random.default_rng(0)
    p = rng.normal(size=(300, 100)) + 50.0
    q = np.concatenate([p[:150] + 1e-7 * rng.normal(size=(150, 100)), rng.normal(size=(150, 100))])
    ref = cdist(p, q)
    got = euclidean_cost(p, q)
    assert np.all(np.abs(got - ref) <= 1e-9 * ref + 1e-300)
    # POT's expansion loses these near-duplicates entirely
    import ot

    fast = ot.dist(p, q, metric="euclidean")
    assert np.abs(fast[:150, :150].diagonal() - ref[:150, :150].diagonal()).max() > 1e-6
