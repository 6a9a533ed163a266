"""The configs under configs/robust parse and name the classifier the issue asks for."""

import re
from pathlib import Path

import pytest

from wgan_lip.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "robust").glob("*.yaml"))


def test_every_recipe_has_a_cpu_variant():
    stems = {c.stem for c in CONFIGS}
    for name in (
        "mnist_fc3",
        "mnist_bcop",
        "fashion_bcop",
        "cifar10_subset_bcop",
        "mnist_sll",
        "cifar10_subset_sll",
    ):
        assert name in stems and f"{name}_cpu" in stems


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(config), "--print_config"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: wgan_lip.robust.LipschitzClassifier" in out
    assert ("max_time: 00:00:25:00" in out) == config.stem.endswith("_cpu")


def test_cpu_config_trains_and_certifies(tmp_path, monkeypatch, data_root, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        str(REPO / "configs/robust/mnist_fc3_cpu.yaml"),
        "--data.data_root",
        str(data_root),
        "--trainer.enable_progress_bar=false",
        "--trainer.max_steps=30",
        "--trainer.limit_val_batches=1",
        "--model.network.widths=[64, 64]",
    ]
    assert main(args) == 0
    ckpt = tmp_path / "runs/robust/mnist_fc3_cpu/checkpoints/last.ckpt"
    capsys.readouterr()
    code = main(
        [
            "certify",
            "--checkpoint",
            str(ckpt),
            "--data",
            "mnist",
            "--data-root",
            str(data_root),
            "--n",
            "100",
            "--attack-steps",
            "5",
            "--restarts",
            "1",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    bound = float(re.search(r"Lipschitz bound\s+([0-9.]+)", out).group(1))
    assert 1.0 <= bound <= 1.01 and "violations" in out  # 1, plus float32 rounding terms
