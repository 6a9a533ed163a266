"""Thread choice for training runs: small work on one thread, never more than torch's own
setting or the free cores, the user's explicit choice kept; and the W1 command's budget."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wgan_lip import threads
from wgan_lip.cli import main


def test_small_work_runs_on_one_thread(monkeypatch):
    monkeypatch.delenv("WGAN_LIP_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose_threads(threads.SMALL_WORK / 10) == 1


def test_large_work_takes_the_free_cores_only(monkeypatch):
    monkeypatch.delenv("WGAN_LIP_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_cores", lambda: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=5: 0)
    assert threads.choose_threads(threads.SMALL_WORK * 10) == 4
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=5: 3)
    assert threads.choose_threads(threads.SMALL_WORK * 10) == 1
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=5: 9)
    assert threads.choose_threads(threads.SMALL_WORK * 10) == 1  # never below one
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda samples=5: 0)
    assert threads.choose_threads(threads.SMALL_WORK * 10) == 2  # never above torch's


def test_an_explicit_choice_is_kept(monkeypatch):
    monkeypatch.delenv("WGAN_LIP_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose_threads(1.0) == 3
    monkeypatch.setenv("WGAN_LIP_THREADS", "2")  # ours first
    assert threads.choose_threads(1e12) == 2


def test_threads_are_restored_after_the_block(monkeypatch):
    monkeypatch.delenv("WGAN_LIP_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with threads.threads_for(1.0) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_busy_elsewhere_does_not_count_this_process():
    x = torch.randn(512, 512)
    for _ in range(5):  # our own OpenMP workers have just run
        x = x @ x.T / 512
    assert threads.busy_elsewhere() >= 0


def _pair(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "p.npy", rng.normal(size=(400, 3)).astype(np.float32))
    np.save(tmp_path / "q.npy", (rng.normal(size=(400, 3)) + 0.5).astype(np.float32))
    return str(tmp_path / "p.npy"), str(tmp_path / "q.npy")


def test_the_w1_command_stops_at_its_budget_with_a_certified_answer(tmp_path, capsys):
    p, q = _pair(tmp_path)
    args = ["w1", p, q, "--max-time", "1", "--steps", "1000000", "--json", "--no-progress"]
    assert main([*args, "--no-race"]) == 0  # every member trains: only the budget or a stop
    report = json.loads(capsys.readouterr().out)
    assert report["stopped"] in ("max_time", "plateau", "resolved") and report["retired"] == {}
    assert report["certified"] and report["ci_low"] <= report["value"] <= report["ci_high"]
    assert report["train_seconds"] < 10


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf"])
def test_a_bad_budget_is_one_line(value, tmp_path, capsys):
    p, q = _pair(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["w1", p, q, "--max-time", value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err) and "--max-time" in err[-1]
