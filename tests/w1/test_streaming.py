"""W1 between on-disk datasets: streamed like arrays, bounded reads, Ctrl-C, large problems."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from wgan_lip import estimate_w1
from wgan_lip.data import Translation
from wgan_lip.data.rows import NpyRows
from wgan_lip.w1 import data as w1_data
from wgan_lip.w1.data import shuffled_batches

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "make_large_problem", ROOT / "scripts" / "make_large_problem.py"
)
_make_large_problem = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_make_large_problem)
make_main, make_problem = _make_large_problem.main, _make_large_problem.make_problem


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    t = Translation(4, 1.0)
    p, q = t.sample_p(3000, 0).numpy(), t.sample_q(3000, 0).numpy()
    np.save(d / "p.npy", p)
    np.save(d / "q.npy", q)
    return d, p, q


def test_files_give_the_same_estimate_as_the_arrays(pair):
    d, p, q = pair
    kw = dict(steps=150, progress=False, seed=3)
    a = estimate_w1(p, q, **kw)
    b = estimate_w1(d / "p.npy", d / "q.npy", **kw)
    assert a.value == b.value and a.train_value == b.train_value and a.steps == b.steps


class _SpyRows(NpyRows):
    largest = 0

    def take(self, idx, check=True, **kwargs):
        _SpyRows.largest = max(_SpyRows.largest, len(idx))
        return super().take(idx, check, **kwargs)


def test_streamed_estimate_reads_bounded_pieces(pair, monkeypatch):
    """Every read is a window, a chunk or the normalization sample; never a whole part."""
    d, _, _ = pair
    monkeypatch.setattr("wgan_lip.data.rows.CHECK_UP_FRONT_BYTES", 0)  # as for a large file
    monkeypatch.setattr(w1_data, "WINDOW_BYTES", 64 * 16)  # 64 rows of 4 floats
    monkeypatch.setattr(w1_data, "NORMALIZATION_ROWS", 300)
    monkeypatch.setattr("wgan_lip.w1.module.NORMALIZATION_ROWS", 300)
    monkeypatch.setattr("wgan_lip.w1.estimate.TRAIN_VALUE_ROWS", 500)
    _SpyRows.largest = 0
    p, q = _SpyRows(d / "p.npy", "P"), _SpyRows(d / "q.npy", "Q")
    from wgan_lip.data.sources import Samples

    est = estimate_w1(Samples(p, "p"), Samples(q, "q"), steps=60, batch_size=32, progress=False)
    assert est.n_holdout_p == 600 and est.value > 0.5
    # windows of 64 rows, held-out chunks of 8192 > 600, normalization 300 per side
    assert _SpyRows.largest <= 600, _SpyRows.largest


def test_shuffled_windows_visit_each_row_once_per_pass_and_ranks_split_the_batch(tmp_path):
    x = np.arange(1000, dtype=np.float32)[:, None]
    np.save(tmp_path / "x.npy", x)
    rows = NpyRows(tmp_path / "x.npy")
    index = torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:700]
    window = 120  # rows per window: several windows per pass

    def batches(rank, world):
        it = shuffled_batches(
            rows, index, 50, torch.Generator().manual_seed(5), rank, world, window_rows=window
        )
        return [next(it) for _ in range(28)]  # two passes of 14 batches

    single = batches(0, 1)
    first = torch.cat(single[:14]).reshape(-1).long()
    assert sorted(first.tolist()) == sorted(index.tolist())  # a pass: each row once
    assert not torch.equal(first, index.sort().values)  # ... in shuffled order
    second = torch.cat(single[14:]).reshape(-1).long()
    assert sorted(second.tolist()) == sorted(index.tolist()) and not torch.equal(first, second)
    shares = [batches(r, 3) for r in range(3)]  # 3 processes: sizes 17, 17, 16
    for k in range(28):
        assert torch.equal(torch.cat([shares[r][k] for r in range(3)]), single[k])
        assert [len(shares[r][k]) for r in range(3)] == [17, 17, 16]


class _InterruptAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_training_and_reports_the_estimate_so_far(pair):
    _, p, q = pair
    before = signal.getsignal(signal.SIGINT)
    est = estimate_w1(p, q, steps=5000, progress=False, trainer={"callbacks": [_InterruptAt(40)]})
    assert est.stopped == "interrupted" and 40 <= est.steps <= 41
    assert est.certified and np.isfinite(est.value) and est.ci_low <= est.value <= est.ci_high
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


def test_cli_ctrl_c_prints_the_estimate_marked_interrupted(pair):
    d, _, _ = pair
    cmd = [
        sys.executable,
        "-m",
        "wgan_lip",
        "w1",
        str(d / "p.npy"),
        str(d / "q.npy"),
        "--steps",
        "100000",
        "--json",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=d
    )
    # wait for the progress bar to pass step 20, then press "Ctrl-C"
    seen, deadline = "", time.time() + 120
    while time.time() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
        steps = [int(s) for s in re.findall(r"(\d+)/100000", seen)]
        if steps and max(steps) >= 20:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-500:]
    result = json.loads(out)
    assert result["stopped"] == "interrupted" and 20 <= result["steps"] < 100000
    assert result["certified"] and result["ci_low"] <= result["value"] <= result["ci_high"]
    assert "interrupted" in err and "Traceback" not in err


def test_make_large_problem_writes_a_known_w1_pair_in_shards(tmp_path):
    rec = make_problem(tmp_path / "lp", n=1000, dim=16, shift=2.0, shards=3, chunk=128, n_q=900)
    assert rec["w1"] == pytest.approx(2.0, rel=1e-6)
    p, q = NpyRows(rec["p"]), NpyRows(rec["q"])
    assert (p.n, q.n, p.event_shape) == (1000, 900, (16,))
    xp, xq = p.all().double(), q.all().double()
    assert xp.mean(0).norm() < 0.25 and (xq.mean(0) - 2.0 / 4).abs().max() < 0.2
    assert not list((tmp_path / "lp").rglob("*.partial"))
    assert json.loads((tmp_path / "lp" / "problem.json").read_text())["w1"] == rec["w1"]
    with pytest.raises(SystemExit) as exc:
        make_main(["--n", "1", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
