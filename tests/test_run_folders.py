"""Runs go where the user says, failed runs leave nothing behind, and mistakes under
``wgan-lip fit|validate|test`` are one line with exit code 2 (130 after Ctrl-C)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from wgan_lip.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
SMALL_W1 = [
    "--config",
    str(REPO / "configs/trainer/cpu_debug.yaml"),
    "--trainer.enable_progress_bar=false",
    "--data.n=600",
]
TRANSLATION = ["--config", str(REPO / "configs/w1/translation_d32.yaml"), *SMALL_W1]
SPHERE = ["--config", str(REPO / "configs/w1/sphere_d8.yaml"), *SMALL_W1]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("wgan-lip: error: "), err
    return lines[0]


def _strings(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, str(i)))
    elif isinstance(node, str):
        yield ".".join(path), node


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_configs_write_only_under_default_root_dir(config):
    """No config hard-codes an output path: loggers and checkpoints follow the root dir."""
    for key, value in _strings(yaml.safe_load(config.read_text()) or {}):
        if key.endswith(("save_dir", "dirpath", "log_dir")):
            pytest.fail(f"{config.name}: {key} = {value!r} would not follow default_root_dir")
        if "runs/" in value:  # only the root itself, or an input (a trained feature net)
            inputs = ("model.init_args.feature_net", "model.init_args.evaluation.feature_net")
            assert key in ("trainer.default_root_dir", *inputs), key


def test_default_root_dir_moves_logs_checkpoints_and_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [*TRANSLATION, "--trainer.max_steps=100"]
    assert main(["fit", *args, "--trainer.default_root_dir", "elsewhere/run1"]) == 0
    assert main(["fit", *args, "--trainer.default_root_dir", "elsewhere/run2"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["elsewhere"]  # nothing under runs/
    for run in ("run1", "run2"):
        files = _files(tmp_path / "elsewhere" / run)
        assert {"checkpoints/best.ckpt", "checkpoints/last.ckpt"} <= files
        assert {
            "lightning_logs/version_0/metrics.csv",
            "lightning_logs/version_0/config.yaml",
        } <= files


def test_wandb_config_follows_default_root_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    code = main(
        [
            "fit",
            "--config",
            str(REPO / "configs/gan/toy_8gaussians_hard.yaml"),
            "--config",
            str(REPO / "configs/trainer/cpu_debug.yaml"),
            "--trainer.enable_progress_bar=false",
            "--trainer.max_steps=12",
            "--trainer.val_check_interval=6",
            "--data.n_train=500",
            "--data.n_val=200",
            "--model.evaluation.samples=200",
            "--model.evaluation.estimate_steps=0",
            "--trainer.default_root_dir",
            "mine",
        ]
    )
    assert code == 0
    assert sorted(os.listdir(tmp_path)) == ["mine"]
    files = _files(tmp_path / "mine")
    assert "checkpoints/last.ckpt" in files
    assert any(f.startswith("wandb/offline-run-") for f in files), files


def test_second_fresh_run_into_one_folder_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *TRANSLATION, "--trainer.max_steps=100"]) == 0
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(["fit", *TRANSLATION, "--trainer.max_steps=100"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "already holds checkpoints" in line and "--trainer.default_root_dir" in line
    assert _files(tmp_path) == before  # no lightning_logs/version_1 left behind


def _checkpoint(tmp_path: Path) -> Path:
    assert (
        main(
            [
                "fit",
                *SPHERE,
                "--trainer.max_steps=100",
                "--trainer.default_root_dir",
                str(tmp_path / "sphere"),
            ]
        )
        == 0
    )
    return tmp_path / "sphere/checkpoints/last.ckpt"


@pytest.mark.parametrize(
    ("command", "config", "match"),
    [
        (
            "test",
            TRANSLATION,
            r"the checkpoint does not fit the model of this config \(size "
            r"mismatch for critic\.shift.*\[8\].*\[32\]",
        ),
        (
            "validate",
            ["--config", str(REPO / "configs/gan/toy_8gaussians_hard.yaml")],
            "checkpoint does not (fit|match)",
        ),
        (
            "test",
            ["--config", str(REPO / "configs/gan/toy_8gaussians_hard.yaml")],
            r"No `test_step\(\)` method",
        ),
    ],
)
def test_checkpoint_of_another_model_is_one_line(
    tmp_path, monkeypatch, capsys, command, config, match
):
    ckpt = _checkpoint(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    capsys.readouterr()
    code = main([command, *config, "--ckpt_path", str(ckpt), "--trainer.logger=false"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and re.search(match, line), line
    assert _files(tmp_path) == before  # the failed run left no folder behind


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--model.bogus", "3"], r"model \(wgan_lip\.w1\.W1Critic\): option 'bogus' is not "),
        (["--data.dim", "x"], r"data\.dim .*: expected an integer\. Got value: x"),
        (["--trainer.max_steps", "abc"], r"trainer\.max_steps: expected an integer"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (
            ["--model.critic", "nope"],
            r"model\.critic .*: expected one of 'family', 'groupsort', "
            r"'bcop', 'gp', 'lp', 'sn', 'clip', got nope",
        ),
        (["--data.problem", "cube"], r"data\.problem .*: expected one of 'translation'"),
    ],
)
def test_bad_option_or_config_key_is_one_line(tmp_path, monkeypatch, capsys, extra, match):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *SPHERE, *extra]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert re.search(match, line) and line.endswith("(see wgan-lip fit --help)"), line
    assert os.listdir(tmp_path) == []


def test_unknown_key_in_a_config_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "extra.yaml").write_text("model:\n  init_args:\n    widthz: [4]\n")
    assert main(["fit", *SPHERE, "--config", "extra.yaml"]) == 2
    assert "option 'widthz' is not accepted" in _one_error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == ["extra.yaml"]


def test_missing_data_is_refused_before_any_run_folder_exists(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    for config in ("gan/mnist_hard.yaml", "robust/mnist_fc3_cpu.yaml"):
        code = main(
            [
                "fit",
                "--config",
                str(REPO / "configs" / config),
                "--data.data_root",
                str(tmp_path / "nowhere"),
            ]
        )
        assert code == 2
        assert "is not a directory" in _one_error_line(capsys.readouterr().err)
    time.sleep(0.5)  # a W&B run, had one started, would still be writing
    assert os.listdir(tmp_path) == []


def _cli(args: list[str], cwd: Path, ctrl_c_default: bool = False) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    reset = (lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) if ctrl_c_default else None
    return subprocess.Popen(
        [sys.executable, "-m", "wgan_lip", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=reset,
    )


def _never_plateaus(tmp_path: Path) -> Path:
    """The translation config with a plateau schedule that never stops the run by itself."""
    config = yaml.safe_load((REPO / "configs/w1/translation_d32.yaml").read_text())
    plateau = config["trainer"]["callbacks"][0]
    assert plateau["class_path"].endswith("PlateauSchedule")
    plateau["init_args"] = {"patience": 10**9}
    path = tmp_path / "never_plateaus.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ctrl_c_during_fit_exits_130_with_one_line(tmp_path):
    config = _never_plateaus(tmp_path)
    args = ["--config", str(config), *SMALL_W1, "--trainer.max_steps=1000000"]
    # As typed at a terminal: a process started with SIGINT ignored (under nohup, or `&` in
    # a script) keeps ignoring it, Python included, and so did `fit` when the test suite
    # itself had been started that way; reset it in the child.
    proc = _cli(["fit", *args], tmp_path, ctrl_c_default=True)
    last = tmp_path / "runs/w1/translation_d32/checkpoints/last.ckpt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before Ctrl-C: it should not stop by itself"
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # never leave a training process behind
        proc.communicate()
        raise
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Detected KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1].startswith("wgan-lip: interrupted")
    assert last.exists()  # an interrupted run keeps its checkpoints: it can resume


@pytest.mark.parametrize("delay", [0.3, 0.6, 1.2])
def test_ctrl_c_during_imports_exits_130_without_traceback(tmp_path, delay):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "p.npy", np.zeros((10, 2)))
    proc = _cli(["w1", "p.npy", "p.npy"], tmp_path)
    time.sleep(delay)  # torch, Lightning or POT are still being imported
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip() == "wgan-lip: interrupted"


def test_two_ctrl_c_during_w1_exit_130_without_traceback(tmp_path):
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", rng.normal(size=(4000, 16)))
    np.save(tmp_path / "q.npy", rng.normal(size=(4000, 16)) + 0.5)
    proc = _cli(["w1", "p.npy", "q.npy", "--steps", "1000000"], tmp_path)
    err = ""
    deadline = time.time() + 240
    while "W1 critic" not in err and time.time() < deadline:  # the progress bar is up
        err += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    err += rest
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("wgan-lip: interrupted")


def test_gan_checkpoint_under_a_w1_config_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "fit",
            "--config",
            str(REPO / "configs/gan/toy_8gaussians_hard.yaml"),
            "--config",
            str(REPO / "configs/trainer/cpu_debug.yaml"),
            "--trainer.enable_progress_bar=false",
            "--trainer.max_steps=12",
            "--trainer.val_check_interval=6",
            "--data.n_train=500",
            "--data.n_val=200",
            "--model.evaluation.samples=200",
            "--model.evaluation.estimate_steps=0",
            "--trainer.logger=false",
            "--trainer.default_root_dir",
            "gan",
        ]
    )
    assert code == 0
    before = _files(tmp_path)
    capsys.readouterr()
    code = main(["test", *TRANSLATION, "--ckpt_path", "gan/checkpoints/last.ckpt"])
    line = _one_error_line(capsys.readouterr().err)
    assert code == 2 and "the checkpoint does not fit the model of this config" in line
    assert "key" in line  # names the first missing or unexpected parameter
    assert _files(tmp_path) == before


def test_fit_help_is_lightnings_help_without_its_args_warning(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 0
    assert "--trainer.default_root_dir" in out
    assert "LightningCLI's args parameter" not in out + err
