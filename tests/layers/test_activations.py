import pytest
import torch

from wgan_lip.layers import FullSort, GroupSort, MaxMin


def test_groupsort_sorts_contiguous_groups_ascending():
    x = torch.tensor([[4.0, 1.0, 2.0, 3.0, 9.0, -1.0]])
    assert GroupSort(2)(x).tolist() == [[1.0, 4.0, 2.0, 3.0, -1.0, 9.0]]
    assert GroupSort(3)(x).tolist() == [[1.0, 2.0, 4.0, -1.0, 3.0, 9.0]]
    assert FullSort()(x).tolist() == [[-1.0, 1.0, 2.0, 3.0, 4.0, 9.0]]


@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_groupsort_on_images_sorts_along_channels(group_size):
    x = torch.randn(3, 8, 5, 5)
    y = GroupSort(group_size)(x)
    expected = x.view(3, 8 // group_size, group_size, 5, 5).sort(dim=2).values.view_as(x)
    assert torch.equal(y, expected)


def test_maxmin_is_groupsort_two():
    x = torch.randn(7, 10, dtype=torch.float64)
    assert torch.equal(MaxMin()(x), GroupSort(2)(x))


@pytest.mark.parametrize("act", [GroupSort(2), GroupSort(4), FullSort()])
def test_jacobian_is_a_permutation(act):
    x = torch.randn(1, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(act, x).reshape(8, 8)
    assert torch.equal(jac.sum(0), torch.ones(8, dtype=torch.float64))
    assert torch.equal(jac.sum(1), torch.ones(8, dtype=torch.float64))
    assert set(jac.unique().tolist()) <= {0.0, 1.0}


def test_indivisible_channels_error_names_both_numbers():
    with pytest.raises(ValueError, match=r"6 channels.*group size 4"):
        GroupSort(4)(torch.randn(2, 6))


def test_integer_input_and_low_rank_are_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        GroupSort(2)(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2 dims"):
        GroupSort(2)(torch.randn(4))
    with pytest.raises(ValueError, match="positive integer"):
        GroupSort(0)
