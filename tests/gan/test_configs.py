"""The LightningCLI configs under configs/gan parse, train, checkpoint, resume and refuse."""

from pathlib import Path

import pytest
import torch

from wgan_lip.cli import main
from wgan_lip.gan import FeatureNet, save_feature_net

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "gan").glob("*.yaml"))
EXPECTED = (
    [
        f"{t}_{c}"
        for t in ("toy_8gaussians", "toy_25gaussians", "swissroll")
        for c in ("hard", "gp", "lp", "sn", "clip")
    ]
    + [f"{d}_{c}" for d in ("mnist", "fashion") for c in ("hard", "gp", "sn")]
    + ["cifar10_subset_hard", "cifar10_subset_gp", "mnist_cpu_hard"]
)


def test_every_issue_config_exists():
    assert sorted(c.stem for c in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_parses_with_cpu_debug(config, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fit",
                "--config",
                str(config),
                "--config",
                str(REPO / "configs/trainer/cpu_debug.yaml"),
                "--print_config",
            ]
        )
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "class_path: wgan_lip.gan.WGAN" in out
    constraint = config.stem.rsplit("_", 1)[1]
    assert f"constraint: {constraint}" in out


def _toy(*extra):
    return [
        "--config",
        str(REPO / "configs/gan/toy_25gaussians_hard.yaml"),
        "--config",
        str(REPO / "configs/trainer/cpu_debug.yaml"),
        "--trainer.enable_progress_bar=false",
        "--data.n_train=2000",
        "--data.n_val=400",
        "--model.evaluation.samples=400",
        "--model.evaluation.estimate_steps=20",
        "--trainer.val_check_interval=60",
        *extra,
    ]


def test_toy_config_trains_checkpoints_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_toy("--trainer.max_steps=72")]) == 0
    run = tmp_path / "runs/gan/toy_25gaussians_hard"
    last = run / "checkpoints/last.ckpt"
    assert torch.load(last, weights_only=False)["wgan_steps"] == {"critic": 60, "generator": 12}
    assert list(run.rglob("images/samples_*.png"))
    assert main(["fit", *_toy("--trainer.max_steps=144"), "--ckpt_path", "last"]) == 0
    assert torch.load(last, weights_only=False)["wgan_steps"] == {"critic": 120, "generator": 24}


def test_checkpoint_mismatch_through_the_cli_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *_toy("--trainer.max_steps=72")]) == 0
    capsys.readouterr()
    ckpt = str(tmp_path / "runs/gan/toy_25gaussians_hard/checkpoints/last.ckpt")
    code = main(["fit", *_toy("--model.constraint=gp"), "--ckpt_path", ckpt])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == (
        "wgan-lip: error: checkpoint does not match the config: it has "
        "constraint=hard (config: gp); use the config it was trained with, "
        "or a new run folder"
    )


def _mnist_run(tmp_path, monkeypatch, data_root, config: str, *extra: str) -> list[str]:
    """``fit`` arguments for an MNIST config in ``tmp_path``, with a random feature net."""
    monkeypatch.chdir(tmp_path)
    save_feature_net(FeatureNet(1, 28, 10), tmp_path / "features.pt")
    return [
        "fit",
        "--config",
        str(REPO / "configs/gan" / config),
        *extra,
        "--data.data_root",
        str(data_root),
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_val_batches=1",
        "--model.evaluation.kid_subset_size=50",
        "--model.evaluation.feature_net",
        str(tmp_path / "features.pt"),
    ]


def test_mnist_config_runs_with_classifier_fid(tmp_path, monkeypatch, data_root):
    args = _mnist_run(
        tmp_path,
        monkeypatch,
        data_root,
        "mnist_hard.yaml",
        "--config",
        str(REPO / "configs/trainer/cpu_debug.yaml"),
        "--trainer.max_steps=24",
        "--trainer.val_check_interval=20",
        "--model.evaluation.samples=200",
        "--model.evaluation.estimate_steps=0",
        "--model.architecture.critic.channels=[4, 8]",
    )
    assert main(args) == 0
    ckpt = torch.load(tmp_path / "runs/gan/mnist_hard/checkpoints/last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["data_shape"] == [1, 28, 28]
    assert list((tmp_path / "runs/gan/mnist_hard").rglob("images/samples_*.png"))


def test_cpu_mnist_config_logs_the_curve_and_plots_it(tmp_path, monkeypatch, data_root):
    import subprocess
    import sys

    args = _mnist_run(
        tmp_path,
        monkeypatch,
        data_root,
        "mnist_cpu_hard.yaml",
        "--trainer.max_steps=40",
        "--trainer.val_check_interval=10",
        "--model.evaluation.samples=100",
        "--model.evaluation.estimate_steps=20",
        "--model.architecture.critic.widths=[32, 32]",
    )
    assert main(args) == 0
    run = tmp_path / "runs/gan/mnist_cpu_hard"
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["architecture"]["critic"]["kind"] == "mlp"
    assert not any(k.startswith("_feature_net") for k in ckpt["state_dict"])
    out = tmp_path / "curve.png"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/plot_gan_curve.py"), str(run), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    import json

    curve = json.loads(out.with_suffix(".json").read_text())
    assert [p["generator_step"] for p in curve] == [10.0, 20.0]
    assert all(0 <= p["val/confident"] <= 1 and p["val/estimate_w1"] > -1 for p in curve)
    assert out.stat().st_size > 1000

    # the config samples with critic-guided refinement; the eval script scores both kinds
    assert ckpt["hyper_parameters"]["sampling"]["refine_steps"] == 15
    script = [
        sys.executable,
        str(REPO / "scripts/eval_gan_samples.py"),
        str(run / "checkpoints/last.ckpt"),
        "--data-root",
        str(data_root),
        "--feature-net",
        str(tmp_path / "features.pt"),
        "--n",
        "60",
    ]
    done = subprocess.run(
        [*script, "--out", "eval.json", "--grid", "grid.png"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "eval.json").read_text())
    assert scores["refine_steps"] == 15 and scores["real_test"]["n"] == 60
    for key in ("generated", "generated_plain"):
        assert 0 <= scores[key]["confident"] <= 1 and scores[key]["exact_w1"] > 0
    assert (tmp_path / "grid.png").stat().st_size > 500
    # the refinement benchmark: one row per step count, plain first, the same table back
    bench = [
        sys.executable,
        str(REPO / "scripts/bench_gan_refine.py"),
        str(run / "checkpoints/last.ckpt"),
        "--data-root",
        str(data_root),
        "--feature-net",
        str(tmp_path / "features.pt"),
        "--n",
        "40",
        "--steps",
        "0",
        "2",
        "--out",
        "refine.json",
    ]
    done = subprocess.run(bench, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "refine.json").read_text())["rows"]
    assert [r["refine_steps"] for r in rows] == [0, 2]
    assert all(0 <= r["confident"] <= 1 and r["exact_w1"] > 0 for r in rows)
    tables = subprocess.run(
        [*bench[:2], "--tables", "--out", "refine.json"], capture_output=True, text=True
    )
    assert tables.returncode == 0 and tables.stdout.count("| mnist_cpu_hard |") == 2
    for bad, message in (
        (["--refine-steps", "-1"], "--refine-steps must be >= 0"),
        (["--out", "missing/eval.json"], "no such folder"),
    ):
        done = subprocess.run([*script, *bad], capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
        assert message in done.stderr


def test_diverged_run_through_the_cli_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "--config",
        str(REPO / "configs/gan/toy_25gaussians_gp.yaml"),
        "--config",
        str(REPO / "configs/trainer/cpu_debug.yaml"),
        "--trainer.enable_progress_bar=false",
        "--data.n_train=2000",
        "--model.optimizer.lr=1e30",
        "--model.check_finite_every=10",
    ]
    assert main(args) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("wgan-lip: training failed: WGAN (gp): critic loss is nan at critic")
