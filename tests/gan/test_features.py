"""The classifier-FID feature net: it learns, round-trips, and refuses bad checkpoints."""

import pytest
import torch

from wgan_lip.errors import InputError
from wgan_lip.gan import FeatureNet, load_feature_net, save_feature_net, train_feature_net
from wgan_lip.gan.features import accuracy


def _two_classes(n=400):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    y = torch.arange(n) % 2
    x[y == 1, :, :4] += 0.5  # class 1 is bright on top
    return x, y


def test_feature_net_learns_a_separable_task():
    x, y = _two_classes()
    net = train_feature_net(x, y, epochs=3, batch_size=32)
    assert accuracy(net, x, y) > 0.95
    assert net.features(x[:3]).shape == (3, 128)


def test_checkpoint_round_trip(tmp_path):
    net = FeatureNet(1, 8, 2, feature_dim=16)
    save_feature_net(net, tmp_path / "f.pt", dataset="toy", test_accuracy=0.5)
    loaded, info = load_feature_net(tmp_path / "f.pt")
    x = torch.rand(4, 1, 8, 8)
    torch.testing.assert_close(loaded.features(x), net.eval().features(x))
    assert info == {"dataset": "toy", "test_accuracy": 0.5}


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="not found; train it with"):
        load_feature_net(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read feature net checkpoint"):
        load_feature_net(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="is not a wgan_lip feature net checkpoint"):
        load_feature_net(tmp_path / "other.pt")


def _script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "train_feature_net.py"
    spec = importlib.util.spec_from_file_location("train_feature_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_feature_net_script(tmp_path, data_root, capsys):
    out = tmp_path / "nets" / "digits.pt"
    code = _script().main(
        [
            "--dataset",
            "uci-digits",
            "--data-root",
            str(data_root),
            "--epochs",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    _, info = load_feature_net(out)
    assert info["dataset"] == "uci-digits" and info["test_accuracy"] > 0.8
    assert f"test accuracy {info['test_accuracy']:.4f}" in capsys.readouterr().out


def test_train_feature_net_script_bad_input(tmp_path, data_root, capsys):
    script = _script()
    assert script.main(["--dataset", "mnist:3", "--out", str(tmp_path / "x.pt")]) == 2
    assert "is not a whole named dataset" in capsys.readouterr().err
    assert (
        script.main(
            [
                "--dataset",
                "mnist",
                "--data-root",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "x.pt"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "x.pt").exists()
