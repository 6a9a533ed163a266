"""LipschitzClassifier: trains, reports certified accuracy with its own bound; certify CLI."""

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from wgan_lip.cli import main
from wgan_lip.errors import InputError
from wgan_lip.layers import lipschitz_bound
from wgan_lip.robust.data import ClassificationDataModule
from wgan_lip.robust.margins import is_certified
from wgan_lip.robust.module import LipschitzClassifier


@pytest.fixture(scope="module")
def trained_digits(data_root, tmp_path_factory):
    """An FC classifier trained for 3 epochs on the UCI digits (8x8), and its checkpoint."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("robust")
    dm = ClassificationDataModule("uci-digits", data_root=str(data_root), batch_size=64, n_val=None)
    model = LipschitzClassifier(
        "fc3", network={"widths": [64, 64]}, objective={"eps_train": 0.3}, lr=3e-3
    )
    ckpt = ModelCheckpoint(dirpath=folder, save_last=True)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=dm)
    return model, trainer, dm, folder / "last.ckpt"


def test_validation_metrics_use_the_models_own_bound(trained_digits):
    model, trainer, dm, _ = trained_digits
    m = {k: float(v) for k, v in trainer.callback_metrics.items()}
    bound = lipschitz_bound(model.net)
    assert m["val/lipschitz_bound"] == pytest.approx(bound)
    assert m["val/accuracy"] > 0.85
    x, y = dm.test.images, dm.test.labels
    with torch.no_grad():
        logits = model(x)
    for e in (0.3, 1.0, 1.58):
        expected = float(is_certified(logits, y, e, bound).float().mean())
        assert m[f"val/certified_l2_{e:g}"] == pytest.approx(expected)
    assert m["val/certified_l2_0.3"] >= m["val/certified_l2_1.58"]
    # L-inf 0.1 in 64-D is inside the L2 ball of radius 0.8
    linf = float(is_certified(logits, y, 0.8, bound).float().mean())
    assert m["val/certified_linf_0.1"] == pytest.approx(linf)


def test_certify_cli_json_is_sound(trained_digits, data_root, capsys):
    _, _, _, ckpt = trained_digits
    code = main(
        [
            "certify",
            "--checkpoint",
            str(ckpt),
            "--data",
            "uci-digits",
            "--data-root",
            str(data_root),
            "--eps",
            "0.1",
            "0.3",
            "1.0",
            "--n",
            "300",
            "--attack-steps",
            "20",
            "--restarts",
            "2",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["violations"] == 0 and out["n"] == 300
    assert out["lipschitz_bound"] <= 1 + 1e-4
    for r in out["radii"]:
        assert r["certified"] <= r["attacked"] <= out["clean"]


def _err(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_certify_cli_bad_inputs(trained_digits, data_root, tmp_path, capsys):
    _, _, _, ckpt = trained_digits
    base = ["certify", "--data-root", str(data_root)]
    assert main([*base, "--checkpoint", str(tmp_path / "no.ckpt"), "--data", "uci-digits"]) == 2
    assert "not found" in _err(capsys)
    for bad in ("-0.5", "abc"):
        with pytest.raises(SystemExit) as exc:
            main([*base, "--checkpoint", str(ckpt), "--data", "uci-digits", "--eps", bad])
        assert exc.value.code == 2
        assert "--eps" in _err(capsys)
    assert main([*base, "--checkpoint", str(ckpt), "--data", "mnist"]) == 2
    assert "trained on (1, 8, 8)" in _err(capsys)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    assert main([*base, "--checkpoint", str(tmp_path / "junk.ckpt"), "--data", "mnist"]) == 2
    assert "cannot read checkpoint" in _err(capsys)
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"constraint": "hard"}}, tmp_path / "gan.ckpt"
    )
    assert main([*base, "--checkpoint", str(tmp_path / "gan.ckpt"), "--data", "mnist"]) == 2
    assert "not a LipschitzClassifier checkpoint" in _err(capsys)


def test_bad_settings_are_clear_errors():
    with pytest.raises(InputError, match="unknown architecture"):
        LipschitzClassifier("resnet")
    with pytest.raises(InputError, match="unknown loss"):
        LipschitzClassifier(objective={"loss": "mse"})
    with pytest.raises(InputError, match="non-negative"):
        LipschitzClassifier(eval_radii={"l2": (-1.0,)})
    with pytest.raises(InputError, match="objective: unknown key"):
        LipschitzClassifier(objective={"eps": 1.0})


def test_two_process_validation_certifies_the_whole_set(trained_digits):
    """Under DDP (2 CPU processes) each process validates a share; the logged numbers are
    those of the whole test set, as with one process."""
    from wgan_lip.w1.estimate import _fork_safe_threads

    model, trainer, dm, _ = trained_digits
    one = trainer.callback_metrics
    two_trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with _fork_safe_threads(two_trainer):
        two = two_trainer.validate(model, datamodule=dm, verbose=False)[0]
    n = len(dm.test.labels)
    for key in ("val/accuracy", "val/certified_l2_0.3", "val/certified_l2_1.58"):
        # an odd-sized set is padded by one repeated sample: at most 1/n apart
        assert two[key] == pytest.approx(float(one[key]), abs=1.01 / n), key
    assert two["val/lipschitz_bound"] == pytest.approx(float(one["val/lipschitz_bound"]))
