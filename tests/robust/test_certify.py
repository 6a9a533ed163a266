"""Certificates against PGD: certified <= attacked <= clean, never a violation."""

import itertools
import math

import pytest
import torch
from torch import nn

from wgan_lip.errors import InputError
from wgan_lip.layers import lipschitz_bound
from wgan_lip.models import lipschitz_mlp
from wgan_lip.robust.attacks import pgd_l2
from wgan_lip.robust.certify import certify
from wgan_lip.robust.margins import label_margin, multiclass_hinge


def test_pgd_finds_the_exact_flip_radius_of_a_linear_classifier():
    # f(x) = (x_0, -x_0): label 0 wins by 2 x_0; the closest flip is at L2 distance x_0.
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    x = torch.tensor([[0.3, 0.0], [0.6, 0.0]])
    y = torch.tensor([0, 0])
    adv = pgd_l2(model, x, y, eps=0.45, steps=30, restarts=2, bounds=None)
    assert (adv - x).norm(dim=1).max() <= 0.45 + 1e-5
    assert model(adv).argmax(1).tolist() == [1, 0]  # only the first is within reach


def test_pgd_respects_the_pixel_range():
    model = lipschitz_mlp(16, (16,), 3)
    x = torch.rand(8, 16)
    adv = pgd_l2(model, x, torch.zeros(8, dtype=torch.long), eps=2.0, steps=10)
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1
    assert float((adv - x).norm(dim=1).max()) <= 2.0 + 1e-5


def _blobs(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.tensor([[0.2] * 4 + [0.8] * 4, [0.8] * 4 + [0.2] * 4, [0.5] * 8])
    x = (centers[y] + 0.08 * torch.randn(n, 8, generator=g)).clamp(0, 1)
    return x, y


def _trained(eps_train=0.3, steps=300):
    torch.manual_seed(0)
    model = lipschitz_mlp(8, (32, 32), 3)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x, y = _blobs()
    for _ in range(steps):
        loss = multiclass_hinge(model(x), y, eps_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_small_trained_model_has_sound_certificates():
    model = _trained()
    x, y = _blobs(300, seed=1)
    report = certify(model, x, y, [0.0, 0.1, 0.2, 0.4], attack_steps=30, attack_restarts=2)
    assert report.lipschitz_bound == pytest.approx(lipschitz_bound(model))
    assert report.clean > 0.95
    assert report.violations == 0
    for r in report.radii:
        assert r.certified <= r.attacked + 1e-12 <= report.clean + 1e-12
    assert report.radii[1].certified > 0.5  # the hinge at 0.3 certifies most at 0.1
    # direct check of the rule: certified means margin > sqrt(2) eps L
    margins = label_margin(model(x), y).detach()
    expected = float((margins > math.sqrt(2) * 0.2 * report.lipschitz_bound).float().mean())
    assert report.radii[2].certified == pytest.approx(expected)


def test_untrained_model_certifies_almost_nothing_at_large_radii():
    torch.manual_seed(0)
    model = lipschitz_mlp(8, (32, 32), 3)
    x, y = _blobs(300)
    report = certify(model, x, y, [1.58], attack=None)
    assert report.radii[0].certified <= 0.01 and report.radii[0].attacked is None


def test_certify_uses_the_bound_of_the_model_not_one():
    model = _trained()
    scaled = nn.Sequential(model, _Scale(2.0))  # 2x the logits, 2x the bound
    x, y = _blobs(200, seed=2)
    a = certify(model, x, y, [0.2], attack=None)
    b = certify(scaled, x, y, [0.2], attack=None)
    assert b.lipschitz_bound == pytest.approx(2 * a.lipschitz_bound)
    assert b.radii[0].certified == pytest.approx(a.radii[0].certified)  # the scale cancels
    assert a.radii[0].certified > 0


class _Scale(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        return self.c * x

    def lipschitz_bound(self) -> float:
        return abs(self.c)


class _Mystery(nn.Module):
    def forward(self, x):
        return x


def test_bad_inputs_are_clear_errors():
    model = nn.Sequential(lipschitz_mlp(8, (8,), 3), _Mystery())
    x, y = _blobs(10)
    with pytest.raises(InputError, match=r"cannot certify this model: .*_Mystery"):
        certify(model, x, y, [0.1])
    with pytest.raises(InputError, match="non-negative"):
        certify(lipschitz_mlp(8, (8,), 3), x, y, [-0.1])
    with pytest.raises(InputError, match="unknown attack"):
        certify(lipschitz_mlp(8, (8,), 3), x, y, [0.1], attack="fgsm")


def test_attacked_accuracy_never_rises_with_the_radius_even_at_huge_radii():
    """At eps >= 1e20 the squared norms overflowed float32 and the attack stood still, so
    attacked accuracy jumped back to clean; now a huge radius is the whole pixel box."""
    model = _trained()
    x, y = _blobs(200, seed=3)
    radii = [0.1, 1.0, 1e20, 1e30, 0.5, 1e300]
    report = certify(model, x, y, radii, attack_steps=20, attack_restarts=1)
    by_eps = {r.eps: r.attacked for r in report.radii}
    ordered = [by_eps[e] for e in sorted(radii)]
    assert all(a >= b for a, b in itertools.pairwise(ordered)), by_eps
    assert all(a <= report.clean for a in ordered)
    assert by_eps[1e20] <= by_eps[1.0] and by_eps[1e20] < report.clean
    assert report.violations == 0


def test_pgd_at_a_huge_radius_stays_finite_and_in_the_box():
    model = _trained()
    x, y = _blobs(20, seed=4)
    adv = pgd_l2(model, x, y, eps=1e25, steps=5, restarts=2)
    assert bool(torch.isfinite(adv).all()) and float(adv.min()) >= 0 and float(adv.max()) <= 1
    unbounded = pgd_l2(model, x, y, eps=1e20, steps=5, restarts=1, bounds=None)
    assert bool(torch.isfinite(unbounded).all())
    with torch.no_grad():
        assert float(label_margin(model(unbounded), y).max()) < 0  # every prediction broken


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eps": [float("inf")]}, "finite"),
        ({"eps": [float("nan")]}, "finite"),
        ({"eps": []}, "non-empty"),
        ({"attack_restarts": 99999999999999999999}, "attack_restarts must be at most"),
        ({"attack_steps": 10**9}, "attack_steps must be at most"),
        ({"attack_steps": 0}, "attack_steps must be a positive integer"),
        ({"attack_restarts": 2.5}, "attack_restarts must be a positive integer"),
        ({"batch_size": True}, "batch_size must be a positive integer"),
    ],
)
def test_absurd_attack_options_are_refused_in_one_line(options, message):
    x, y = _blobs(10)
    kwargs = {"eps": [0.1], **options}
    with pytest.raises(InputError, match=message) as e:
        certify(lipschitz_mlp(8, (8,), 3), x, y, **kwargs)
    assert "\n" not in str(e.value)


def test_the_attack_shows_its_progress_on_stderr(capsys):
    """The attack is what takes long: with progress on, a bar on stderr; the report is the
    same as without."""
    from wgan_lip.models import lipschitz_mlp
    from wgan_lip.robust import certify

    torch.manual_seed(0)
    model = lipschitz_mlp(4, [8], 2)
    x, y = torch.rand(40, 4), torch.randint(0, 2, (40,))
    torch.manual_seed(1)  # the attack's random starts
    quiet = certify(model, x, y, [0.1, 0.2], attack_steps=3, attack_restarts=1, batch_size=10)
    assert capsys.readouterr().err == ""
    torch.manual_seed(1)
    shown = certify(
        model, x, y, [0.1, 0.2], attack_steps=3, attack_restarts=1, batch_size=10, progress=True
    )
    assert "PGD at eps" in capsys.readouterr().err
    assert shown.to_dict()["radii"] == quiet.to_dict()["radii"]
