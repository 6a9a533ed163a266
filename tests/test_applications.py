"""The application contract: every registered layer reaches every job, and stays bounded.

For each layer of :data:`wgan_lip.layers.registry.LAYERS` (its dense form in an ``mlp``, its
convolution in a ``convnet``), each job is configured the way a user configures it (YAML for
``wgan-lip fit``; the command line and ``estimate_w1`` for W1), trains a few steps, and the
trained network's certified bound is checked against an attack: no pair of inputs may be
found whose score difference exceeds the bound times their distance. Uncertified layers go
to the baselines (``gp``, ``sn``); a certified job refuses them by name.

The last tests add a layer at run time, as a user would (one class, one registration), and
run it through every job: what a new layer costs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn.utils import parametrize

from wgan_lip.cli import main
from wgan_lip.layers import empirical_lipschitz, lipschitz_bound
from wgan_lip.layers._linear import ConstrainedLinear
from wgan_lip.layers.registry import LAYERS, LayerKind

REPO = Path(__file__).resolve().parents[1]
QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "logger": False}


def _linear_layers() -> list[str]:
    return sorted(n for n, k in LAYERS.items() if k.linear is not None)


def _conv_layers() -> list[str]:
    return sorted(n for n, k in LAYERS.items() if k.conv is not None)


def _mlp(name: str) -> dict:
    return {"kind": "mlp", "linear": name, "widths": [8, 8], "activation": "maxmin"}


def _convnet(name: str) -> dict:
    kind = LAYERS[name]
    head = name if kind.linear is not None else ("bjorck" if kind.certified else "spectral")
    return {
        "kind": "convnet",
        "conv": name,
        "linear": head,
        "channels": [4],
        "blocks_per_stage": 2,
        "widths": [8],
        "activation": "maxmin",
    }


def _baseline(name: str) -> str:
    """The constraint that trains an uncertified layer: sn for the spectral ones."""
    return "sn" if name in ("spectral", "sn_kernel") else "gp"


class _Column(nn.Module):
    """Scores ``(n,)`` as ``(n, 1)``, the shape the attack compares."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(len(x), -1)


def _check_bound(net: nn.Module, x: torch.Tensor, bound: float) -> None:
    """No attack beats the certified bound (a float64 copy is attacked: the bound covers the
    network's own float32 rounding, the attack should not add its own)."""
    attack = empirical_lipschitz(_Column(net), x, steps=60, lr=5e-2)
    assert attack <= bound * (1 + 1e-6), (attack, bound)
    assert attack > 0.0  # the attack saw a function, not a constant


def _fit(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["fit", "--config", str(path), "--trainer.default_root_dir", str(tmp_path / "run")])
    assert code == 0
    ckpts = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert ckpts, "the fit wrote no checkpoint"
    return ckpts[-1]


# ----- the robust classifier -----


def _classifier_config(data_root: Path, network: dict) -> dict:
    return {
        "seed_everything": 0,
        "model": {
            "class_path": "wgan_lip.robust.LipschitzClassifier",
            "init_args": {
                "architecture": "fc3" if network["kind"] == "mlp" else "bcop",
                "network": network,
            },
        },
        "data": {
            "class_path": "wgan_lip.robust.ClassificationDataModule",
            "init_args": {
                "dataset": "mnist",
                "data_root": str(data_root),
                "batch_size": 32,
                "n_val": 64,
            },
        },
        "trainer": {**QUIET, "max_steps": 3, "limit_val_batches": 1, "accelerator": "cpu"},
    }


def _classifier_cases():
    for name in _linear_layers():
        yield pytest.param(name, _mlp(name), id=f"mlp-{name}")
    for name in _conv_layers():
        yield pytest.param(name, _convnet(name), id=f"convnet-{name}")


@pytest.mark.parametrize(("name", "network"), list(_classifier_cases()))
def test_every_layer_reaches_the_classifier_from_yaml(name, network, data_root, tmp_path):
    from wgan_lip.robust.checkpoint import load_classifier

    config = _classifier_config(data_root, network)
    if not LAYERS[name].certified:  # a classifier certifies: refused by name, nothing written
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        run = tmp_path / "run"
        assert main(["fit", "--config", str(path), "--trainer.default_root_dir", str(run)]) == 2
        assert not run.exists()
        return
    model = load_classifier(_fit(tmp_path, config)).double().eval()
    types = {type(m).__name__ for m in model.net.modules()}
    assert any(name.lower() in t.lower() for t in types) or name == "sll", types
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    _check_bound(model.net, x, lipschitz_bound(model.net, (1, 28, 28)))


# ----- the WGAN critic -----


def _gan_config(constraint: str, critic: dict, image: bool, data_root: Path) -> dict:
    if image:
        data = {
            "class_path": "wgan_lip.gan.ImageDataModule",
            "init_args": {
                "dataset": "mnist",
                "data_root": str(data_root),
                "batch_size": 16,
                "n_val": 64,
            },
        }
        generator = {"generator_base_channels": 4, "latent_dim": 8}
    else:
        data = {
            "class_path": "wgan_lip.gan.ToyDataModule",
            "init_args": {"name": "8gaussians", "n_train": 256, "n_val": 64, "batch_size": 32},
        }
        generator = {"generator_widths": [16]}
    return {
        "seed_everything": 0,
        "model": {
            "class_path": "wgan_lip.gan.WGAN",
            "init_args": {
                "constraint": constraint,
                "architecture": {**generator, "critic": critic},
                "evaluation": {"samples": 64, "estimate_steps": 0},
            },
        },
        "data": data,
        "trainer": {
            **QUIET,
            "max_steps": 4,
            "max_epochs": -1,
            "limit_val_batches": 1,
            "val_check_interval": 2,
            "check_val_every_n_epoch": None,
            "num_sanity_val_steps": 0,
            "accelerator": "cpu",
        },
    }


def _gan_cases():
    for name in _linear_layers():
        yield pytest.param(name, _mlp(name), False, id=f"mlp-{name}")
    for name in _conv_layers():
        yield pytest.param(name, _convnet(name), True, id=f"convnet-{name}")


@pytest.mark.parametrize(("name", "critic", "image"), list(_gan_cases()))
def test_every_layer_reaches_the_wgan_critic_from_yaml(name, critic, image, data_root, tmp_path):
    from wgan_lip.gan import WGAN

    constraint = "hard" if LAYERS[name].certified else _baseline(name)
    ckpt = _fit(tmp_path, _gan_config(constraint, critic, image, data_root))
    module = WGAN.load_from_checkpoint(ckpt, map_location="cpu")
    net = module.critic.double().eval()
    assert module.critic.certified == (constraint == "hard")
    x = torch.rand(4, 1, 28, 28) if image else torch.randn(4, 2)
    _check_bound(net, x.double(), net.lipschitz_bound())


@pytest.mark.parametrize("name", sorted(n for n, k in LAYERS.items() if not k.certified))
def test_the_hard_wgan_refuses_an_uncertified_layer_in_one_line(name, data_root, tmp_path, capsys):
    critic = _mlp(name) if LAYERS[name].linear is not None else _convnet(name)
    config = _gan_config("hard", critic, critic["kind"] != "mlp", data_root)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert main(["fit", "--config", str(path), "--trainer.default_root_dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0] and "certif" in err[0], err
    assert not run.exists()


# ----- W1: estimate_w1, the command line and YAML -----


def _w1_samples(image: bool, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = (n, 1, 8, 8) if image else (n, 3)
    p = rng.normal(size=shape).astype(np.float32)
    return p, (rng.normal(size=shape) + 0.5).astype(np.float32)


def _w1_critic(name: str, image: bool) -> str:
    if LAYERS[name].certified:
        return "bcop" if image else "groupsort"
    return _baseline(name)


def _w1_cases():
    for name in _linear_layers():
        yield pytest.param(name, False, id=f"mlp-{name}")
    for name in _conv_layers():
        yield pytest.param(name, True, id=f"convnet-{name}")


def _check_estimate(est, image: bool) -> None:
    p, _ = _w1_samples(image, 8)
    x = torch.as_tensor(p, dtype=torch.float64)
    _check_bound(est.critic, x, est.lipschitz_bound)
    if est.certified:  # 1-Lipschitz by construction: the bound is 1 up to rounding
        assert est.lipschitz_bound <= 1 + 1e-3


@pytest.mark.parametrize(("name", "image"), list(_w1_cases()))
def test_every_layer_reaches_estimate_w1(name, image):
    from wgan_lip import estimate_w1

    p, q = _w1_samples(image)
    network = _convnet(name) if image else _mlp(name)
    critic = _w1_critic(name, image)
    est = estimate_w1(
        p, q, critic={"name": critic, "eval_every": 10}, network=network, steps=20, progress=False
    )
    assert est.certified == LAYERS[name].certified
    modules = {type(m).__name__.lower() for m in est.critic.modules()}
    assert any(name.replace("_", "") in m for m in modules) or name in ("sll", "sn_kernel", "plain")
    _check_estimate(est, image)


@pytest.mark.parametrize("name", [n for n in _linear_layers() if LAYERS[n].certified])
def test_every_certified_dense_layer_is_a_family_member(name):
    from wgan_lip import estimate_w1

    p, q = _w1_samples(False)
    member = f"mlp:8x2:maxmin:{name}"
    est = estimate_w1(
        p,
        q,
        critic={"name": "family", "family": ["linear", member], "eval_every": 10},
        steps=20,
        progress=False,
    )
    assert member in est.monitor_values
    _check_estimate(est, False)


@pytest.mark.parametrize(("name", "image"), list(_w1_cases()))
def test_every_layer_reaches_the_w1_command(name, image, tmp_path, capsys):
    p, q = _w1_samples(image)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    network = _convnet(name) if image else _mlp(name)
    args = [
        "w1",
        str(tmp_path / "p.npy"),
        str(tmp_path / "q.npy"),
        "--steps",
        "20",
        "--no-progress",
        "--json",
        "--critic",
        _w1_critic(name, image),
        "--network",
        json.dumps(network),
    ]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["certified"] == LAYERS[name].certified
    assert report["lipschitz_bound"] > 0
    if report["certified"]:
        assert report["lipschitz_bound"] <= 1 + 1e-3


@pytest.mark.parametrize("name", sorted(n for n, k in LAYERS.items() if not k.certified))
def test_a_certified_w1_critic_refuses_an_uncertified_layer(name, tmp_path, capsys):
    image = LAYERS[name].linear is None
    p, q = _w1_samples(image)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    flag = ["--conv", name] if image else ["--linear", name]
    critic = "bcop" if image else "groupsort"
    code = main(
        [
            "w1",
            str(tmp_path / "p.npy"),
            str(tmp_path / "q.npy"),
            "--critic",
            critic,
            *flag,
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and name in err[0], err


@pytest.mark.parametrize(("name", "image"), list(_w1_cases()))
def test_every_layer_reaches_the_w1_module_from_yaml(name, image, tmp_path):
    from wgan_lip.w1 import W1Critic

    network = _convnet(name) if image else _mlp(name)
    data = (
        {
            "class_path": "wgan_lip.w1.KnownW1DataModule",
            "init_args": {
                "problem": "translation",
                "dim": 3,
                "n": 300,
                "batch_size": 64,
                "eval_every": 5,
            },
        }
        if not image
        else None
    )
    if image:
        p, q = _w1_samples(True)
        np.save(tmp_path / "p.npy", p)
        np.save(tmp_path / "q.npy", q)
        data = {
            "class_path": "wgan_lip.w1.TwoSampleDataModule",
            "init_args": {
                "p": str(tmp_path / "p.npy"),
                "q": str(tmp_path / "q.npy"),
                "batch_size": 64,
                "eval_every": 5,
            },
        }
    config = {
        "seed_everything": 0,
        "model": {
            "class_path": "wgan_lip.w1.W1Critic",
            "init_args": {"critic": _w1_critic(name, image), "network": network},
        },
        "data": data,
        "trainer": {
            **QUIET,
            "max_steps": 10,
            "max_epochs": -1,
            "num_sanity_val_steps": 0,
            "accelerator": "cpu",
        },
    }
    module = W1Critic.load_from_checkpoint(_fit(tmp_path, config), map_location="cpu")
    assert module.critic.certified == LAYERS[name].certified
    x = torch.as_tensor(_w1_samples(image, 8)[0], dtype=torch.float64)
    net = module.critic.member(0).double().eval()  # a family of one
    _check_bound(net, x, net.lipschitz_bound())


# ----- a layer added at run time reaches every job -----


class _FrobeniusNormalize(nn.Module):
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w / w.norm().clamp_min(1.0)  # |W|_2 <= |W|_F <= 1


class FrobeniusLinear(ConstrainedLinear):
    """A new certified dense layer, written as a user would: ``W / max(1, |W|_F)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        parametrize.register_parametrization(self, "weight", _FrobeniusNormalize())


@pytest.fixture
def new_layer(monkeypatch):
    kind = LayerKind(
        "frobenius",
        linear=lambda i, o, opts: FrobeniusLinear(i, o, opts.bias),
        certified=True,
        options=frozenset({"bias"}),
    )
    monkeypatch.setitem(LAYERS, "frobenius", kind)
    return "frobenius"


def test_a_new_layer_reaches_the_classifier(new_layer, data_root, tmp_path):
    from wgan_lip.robust.checkpoint import load_classifier

    model = load_classifier(_fit(tmp_path, _classifier_config(data_root, _mlp(new_layer))))
    assert any(isinstance(m, FrobeniusLinear) for m in model.net.modules())
    net = model.net.double().eval()
    _check_bound(net, torch.rand(4, 1, 28, 28, dtype=torch.float64), lipschitz_bound(net))


def test_a_new_layer_reaches_the_wgan(new_layer, data_root, tmp_path):
    from wgan_lip.gan import WGAN

    ckpt = _fit(tmp_path, _gan_config("hard", _mlp(new_layer), False, data_root))
    critic = WGAN.load_from_checkpoint(ckpt, map_location="cpu").critic
    assert any(isinstance(m, FrobeniusLinear) for m in critic.modules())
    net = critic.double().eval()
    _check_bound(net, torch.randn(4, 2, dtype=torch.float64), net.lipschitz_bound())


def test_a_new_layer_reaches_w1(new_layer, tmp_path, capsys):
    from wgan_lip import estimate_w1

    p, q = _w1_samples(False)
    est = estimate_w1(
        p,
        q,
        critic={"name": "groupsort", "eval_every": 10},
        network=_mlp(new_layer),
        steps=20,
        progress=False,
    )
    assert any(isinstance(m, FrobeniusLinear) for m in est.critic.modules())
    _check_estimate(est, False)
    family = estimate_w1(
        p,
        q,
        critic={"name": "family", "family": ["mlp:8x2:maxmin:frobenius"], "eval_every": 10},
        steps=20,
        progress=False,
    )
    assert "mlp:8x2:maxmin:frobenius" in family.monitor_values
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    args = [
        "w1",
        str(tmp_path / "p.npy"),
        str(tmp_path / "q.npy"),
        "--steps",
        "20",
        "--no-progress",
        "--json",
        "--critic",
        "groupsort",
        "--linear",
        new_layer,
    ]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["certified"] is True
