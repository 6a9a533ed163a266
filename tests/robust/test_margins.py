"""Margins, certificates and margin losses on hand-made logits."""

import math

import pytest
import torch

from wgan_lip.robust.margins import (
    certified_radius,
    is_certified,
    label_margin,
    linf_to_l2,
    multiclass_hinge,
    prediction_margin,
    tempered_cross_entropy,
)

LOGITS = torch.tensor([[3.0, 1.0, 0.0], [0.5, 2.0, 1.5], [1.0, 1.0, -1.0]])
LABELS = torch.tensor([0, 0, 1])


def test_label_margin_is_true_minus_best_other():
    torch.testing.assert_close(label_margin(LOGITS, LABELS), torch.tensor([2.0, -1.5, 0.0]))


def test_prediction_margin_is_top_minus_runner_up():
    torch.testing.assert_close(prediction_margin(LOGITS), torch.tensor([2.0, 0.5, 0.0]))


def test_certificate_rule_uses_sqrt2_eps_and_the_bound():
    # margin 2: certified iff 2 > sqrt(2) * eps * L
    radius = certified_radius(LOGITS, LABELS, lipschitz=2.0)
    torch.testing.assert_close(radius, torch.tensor([2 / (2 * math.sqrt(2)), 0.0, 0.0]))
    edge = 2 / (math.sqrt(2) * 2.0)
    assert is_certified(LOGITS, LABELS, edge * 0.999, 2.0).tolist() == [True, False, False]
    assert is_certified(LOGITS, LABELS, edge * 1.001, 2.0).tolist() == [False, False, False]
    # a wrong or tied prediction is never certified, even at radius 0
    assert is_certified(LOGITS, LABELS, 0.0, 1.0).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="positive"):
        certified_radius(LOGITS, LABELS, 0.0)


def test_linf_to_l2():
    assert linf_to_l2(0.1, 784) == pytest.approx(2.8)


def test_hinge_vanishes_once_margins_clear_sqrt2_eps():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    labels = torch.tensor([0, 1])
    # margins 2 and 0.5; eps 1 asks for sqrt(2): only the second pays sqrt(2) - 0.5
    assert float(multiclass_hinge(logits, labels, 1.0)) == pytest.approx((math.sqrt(2) - 0.5) / 2)
    assert float(multiclass_hinge(logits, labels, 0.3)) == 0.0


def test_tempered_cross_entropy_sharpens_with_lower_temperature():
    a = tempered_cross_entropy(LOGITS[:1], LABELS[:1], temperature=1.0)
    b = tempered_cross_entropy(LOGITS[:1], LABELS[:1], temperature=0.25)
    assert float(b) < float(a)
    with pytest.raises(ValueError):
        tempered_cross_entropy(LOGITS, LABELS, temperature=0)
