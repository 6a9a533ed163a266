"""confident_classes: the share of confidently classified samples and the class coverage."""

import pytest
import torch
from torch import nn

from wgan_lip.gan import confident_classes


class Lookup(nn.Module):
    """A 'classifier' whose logits are the input itself (flattened), so the test sets them."""

    def forward(self, x):
        return x.flatten(1)


def test_shares_and_confidence_follow_the_logits():
    logits = torch.full((10, 3), -20.0)
    logits[:6, 0] = 20.0  # 6 confident zeros
    logits[6:9, 1] = 20.0  # 3 confident ones
    logits[9] = torch.tensor([0.0, 0.1, 0.2])  # an unsure sample, argmax class 2
    out = confident_classes(logits, Lookup())
    assert out["confident"] == pytest.approx(0.9)
    assert out["class_shares"] == pytest.approx([0.6, 0.3, 0.1])
    assert out["min_class_share"] == pytest.approx(0.1)


def test_a_missing_class_has_share_zero_and_the_net_mode_is_kept():
    net = Lookup().train()
    out = confident_classes(torch.tensor([[5.0, 0.0, 0.0]] * 4), net, threshold=0.5)
    assert out["min_class_share"] == 0.0 and out["confident"] == 1.0
    assert net.training
    with pytest.raises(ValueError, match="no samples"):
        confident_classes(torch.empty(0, 3), net)
