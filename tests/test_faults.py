"""Faults: runs killed with SIGKILL resume, damaged checkpoints and shards are clear errors,
and the multi-process trainer config runs through the CLI."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from wgan_lip.cli import main

REPO = Path(__file__).resolve().parents[1]
W1_CONFIG = [
    "--config",
    str(REPO / "configs/w1/translation_d32.yaml"),
    "--config",
    str(REPO / "configs/trainer/cpu_debug.yaml"),
    "--trainer.enable_progress_bar=false",
    "--data.n=600",
]
GAN_CONFIG = [
    "--config",
    str(REPO / "configs/gan/toy_25gaussians_hard.yaml"),
    "--config",
    str(REPO / "configs/trainer/cpu_debug.yaml"),
    "--trainer.enable_progress_bar=false",
    "--data.n_train=2000",
    "--data.n_val=300",
    "--model.evaluation.samples=300",
    "--model.evaluation.estimate_steps=0",
    "--trainer.val_check_interval=30",
    "--trainer.logger=false",
]
W1_LAST = "runs/w1/translation_d32/checkpoints/last.ckpt"
GAN_LAST = "runs/gan/toy_25gaussians_hard/checkpoints/last.ckpt"


def _cli(args, cwd, **kw):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "wgan_lip", *args]
    pipe = subprocess.PIPE
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=pipe, stderr=pipe, text=True, **kw)


def _kill_after_checkpoint(args, cwd, last: Path, min_step: int) -> int:
    """Start a long run, SIGKILL it once ``last`` holds step ``min_step`` or later."""
    proc = _cli(args, cwd)
    deadline, step = time.time() + 300, -1
    try:
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
            if last.is_file():
                try:
                    step = torch.load(last, weights_only=False, map_location="cpu")["global_step"]
                except Exception:  # being replaced right now: read it next time
                    continue
                if step >= min_step:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert step >= min_step, err[-2000:]
    return step


def test_w1_run_killed_with_sigkill_resumes_from_last_and_completes(tmp_path, monkeypatch):
    last = tmp_path / W1_LAST
    killed_at = _kill_after_checkpoint(
        ["fit", *W1_CONFIG, "--trainer.max_steps=100000"], tmp_path, last, min_step=200
    )
    target = killed_at + 100
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *W1_CONFIG, f"--trainer.max_steps={target}", "--ckpt_path", "last"]) == 0
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == target  # resumed: 100 more steps, not a fresh run
    logs = sorted((tmp_path / "runs/w1/translation_d32/lightning_logs").glob("version_*"))
    resumed = np.genfromtxt(logs[-1] / "metrics.csv", delimiter=",", names=True)
    assert np.nanmin(resumed["step"]) >= killed_at  # its first logged step follows the kill
    assert main(["test", *W1_CONFIG, "--ckpt_path", "last"]) == 0


def test_wgan_run_killed_with_sigkill_resumes_from_last_and_completes(tmp_path, monkeypatch):
    last = tmp_path / GAN_LAST
    killed_at = _kill_after_checkpoint(
        ["fit", *GAN_CONFIG, "--trainer.max_steps=60000"], tmp_path, last, min_step=72
    )
    steps = torch.load(last, weights_only=False)["wgan_steps"]
    assert steps["critic"] == 5 * steps["generator"] and killed_at == 6 * steps["generator"]
    monkeypatch.chdir(tmp_path)
    target = killed_at + 36
    assert main(["fit", *GAN_CONFIG, f"--trainer.max_steps={target}", "--ckpt_path", "last"]) == 0
    done = torch.load(last, weights_only=False)
    assert done["global_step"] == target
    assert done["wgan_steps"] == {
        "critic": steps["critic"] + 30,
        "generator": steps["generator"] + 6,
    }


def _flip_bytes_inside_the_largest_entry(path):
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.compress_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    start = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_damaged_checkpoint_is_a_one_line_error(tmp_path, monkeypatch, capsys, damage):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *W1_CONFIG, "--trainer.max_steps=100"]) == 0
    last = tmp_path / W1_LAST
    data = last.read_bytes()
    if damage == "flip":  # the zip stays readable; only the entry's CRC tells
        _flip_bytes_inside_the_largest_entry(last)
    else:
        last.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    capsys.readouterr()
    for command in ("fit", "test"):
        code = main([command, *W1_CONFIG, "--trainer.max_steps=200", "--ckpt_path", "last"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "Traceback" not in "\n".join(err)
        assert err[-1].startswith(f"wgan-lip: error: checkpoint '{last}' is truncated or corrupt")
    code = main(["fit", *W1_CONFIG, "--ckpt_path", str(tmp_path / "nope.ckpt")])
    assert code == 2 and capsys.readouterr().err.strip().endswith("nope.ckpt' not found")


def test_missing_or_wrong_width_shard_is_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    for side in ("p", "q"):
        (tmp_path / side).mkdir()
        for k in range(3):
            np.save(tmp_path / side / f"part-{k}.npy", rng.random((100, 4), np.float32))
    (tmp_path / "p" / "part-1.npy").unlink()
    np.save(tmp_path / "q" / "part-2.npy", np.zeros((100, 5), np.float32))
    for args, match in (
        (["p", "q"], "P: shard 1 is missing"),
        (["q", "q"], "P: shard 'part-2.npy' has samples of shape (5,), but 'part-0.npy' has (4,)"),
    ):
        proc = _cli(["w1", *args, "--steps", "50"], tmp_path)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and out == ""
        assert err.count("\n") == 1 and match in err, err
        assert "W1 critic" not in err  # no training started


def test_ddp_cpu_trainer_config_runs_the_w1_config_with_two_processes(tmp_path):
    args = [
        "fit",
        *W1_CONFIG,
        "--config",
        str(REPO / "configs/trainer/ddp_cpu.yaml"),
        "--trainer.max_steps=100",
    ]
    proc = _cli(args, tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "Starting with 2 processes" in out + err
    ckpt = torch.load(tmp_path / W1_LAST, weights_only=False)
    assert ckpt["global_step"] == 100
    proc = _cli(["test", *W1_CONFIG, "--ckpt_path", "last"], tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "test/w1" in out, err[-3000:]
