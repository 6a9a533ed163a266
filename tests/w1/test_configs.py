"""The LightningCLI configs under configs/w1 parse, train, checkpoint and test."""

from pathlib import Path

import pytest

from wgan_lip.cli import main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "w1").glob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_parses(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(config), "--print_config"])
    assert exc.value.code == 0
    assert "class_path: wgan_lip.w1" in capsys.readouterr().out


def test_fit_then_test_from_last_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = [
        "--config",
        str(REPO / "configs/w1/translation_d32.yaml"),
        "--config",
        str(REPO / "configs/trainer/cpu_debug.yaml"),
        "--trainer.max_steps=100",
        "--trainer.enable_progress_bar=false",
        "--data.n=600",
    ]
    assert main(["fit", *base]) == 0
    last = tmp_path / "runs/w1/translation_d32/checkpoints/last.ckpt"
    assert last.is_file()
    assert main(["test", *base, "--ckpt_path", "last"]) == 0
    out = capsys.readouterr().out
    assert "test/w1" in out and "test/lip" in out


def test_missing_config_is_a_one_line_error(capsys):
    assert main(["fit", "--config", "nope.yaml"]) == 2
    assert capsys.readouterr().err.strip() == "wgan-lip: error: config file 'nope.yaml' not found"
