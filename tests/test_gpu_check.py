"""scripts/gpu_check.py: the smoke run end to end, the no-CUDA refusal, the runner's bookkeeping."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
SMOKE_LIMIT_S = 150  # the smoke run must finish well inside 2.5 minutes on 2 cores


def _module():
    for name, path in (("_bench", SCRIPT.with_name("_bench.py")), ("gpu_check", SCRIPT)):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # gpu_check imports _bench; its dataclasses look it up
        spec.loader.exec_module(module)
    return module


def _env(**extra) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", **extra}


def _load(path: Path) -> dict:
    def no_nan(c):
        raise AssertionError(f"non-finite number {c} in {path}")

    return json.loads(path.read_text(), parse_constant=no_nan)


def _numbers(obj):
    if isinstance(obj, bool):
        return
    if isinstance(obj, (int, float)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)


@pytest.fixture(scope="module")
def smoke(request, tmp_path_factory):
    """One smoke run (with the MNIST copy of ``data_root`` when the shared data is there)."""
    try:
        root = request.getfixturevalue("data_root")
    except pytest.skip.Exception:
        root = None
    out = tmp_path_factory.mktemp("gpu_check") / "gpu.json"
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)]
    env = _env()
    if root is not None:
        cmd += ["--data-root", str(root)]
    else:
        env.pop("WGAN_LIP_DATA", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=SMOKE_LIMIT_S)
    return proc, out, root


def test_smoke_run_records_every_part(smoke):
    proc, out, root = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = _load(out)
    assert doc["check"] == "smoke"
    assert doc["machine"]["torch"] == torch.__version__ and doc["machine"]["date"]
    assert doc["wall_seconds"] < SMOKE_LIMIT_S
    assert sorted(doc["parts"]) == ["1", "2", "3", "4", "5"]
    for key, part in doc["parts"].items():
        assert part["status"] in ("ok", "skipped"), (key, part)
        if part["status"] == "ok":
            assert isinstance(part["results"], dict) and part["results"], key
        else:
            assert part["note"].startswith("skipped: "), key
    assert all(math.isfinite(v) for v in _numbers(doc))
    parts = doc["parts"]
    assert parts["1"]["status"] == parts["2"]["status"] == "ok"
    assert parts["5"]["status"] == "skipped" and "DDP" in parts["5"]["note"]
    if root is None:  # without MNIST the image parts say why, they do not fail
        for key in ("3", "4"):
            assert parts[key]["note"].startswith("skipped: no MNIST"), parts[key]
    else:
        assert parts["3"]["status"] == parts["4"]["status"] == "ok"
    assert "Part 1: layers" in proc.stdout and str(out) in proc.stdout


def test_smoke_layers_stay_orthogonal(smoke):
    layers = _load(smoke[1])["parts"]["1"]["results"]
    linear, conv = layers["linear"]["rows"], layers["conv"]["rows"]
    assert linear["wgan_lip.BjorckLinear"]["ortho_error"] < 1e-4
    assert conv["wgan_lip.BCOPConv2d"]["ortho_error"] < 1e-3
    assert linear["nn.Linear"]["ortho_error"] > 1e-2  # the check can tell
    for case in (linear, conv):
        assert all(r["step_s"] > 0 for r in case.values())
        assert all(r["ratio_to_plain"] > 0 for r in case.values())


def test_smoke_w1_is_a_certified_lower_bound(smoke):
    r = _load(smoke[1])["parts"]["2"]["results"]
    assert r["certified"] and r["lipschitz_bound"] <= 1 + 1e-4
    assert r["ci_low"] <= r["value"] <= r["ci_high"]
    assert abs(r["exact_w1"] - 1) < 1e-6
    assert r["ci_low"] <= r["exact_w1"]  # a lower bound, up to its sampling error
    assert r["n_p"] == r["n_q"] == 2000 and r["dim"] == 8


def test_smoke_robust_and_gan(smoke):
    parts = _load(smoke[1])["parts"]
    if parts["3"]["status"] != "ok":
        pytest.skip("no MNIST: parts 3-4 were skipped (checked above)")
    r = parts["3"]["results"]
    assert r["violations"] == 0
    assert r["steps"] > 0 and r["lipschitz_bound"] <= 1 + 1e-3
    assert 0 <= r["certified"]["1.58"] <= r["certified"]["0.3"] <= r["clean"] <= 1
    gan = parts["4"]["results"]
    assert [run["constraint"] for run in gan["runs"]] == ["hard", "gp"]
    for run in gan["runs"]:
        assert run["classifier_fid"] >= 0 and run["exact_w1"] > 0 and run["critic_steps"] > 0
    assert "critic_w1_certified" in gan["runs"][0]


def test_smoke_without_mnist_skips_the_image_parts(tmp_path):
    out = tmp_path / "gpu.json"
    env = _env()
    env.pop("WGAN_LIP_DATA", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--smoke",
            "--parts",
            "3",
            "4",
            "5",
            "--out",
            str(out),
            "--data-root",
            str(tmp_path / "empty"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parts = _load(out)["parts"]
    for key in ("3", "4"):
        assert parts[key]["status"] == "skipped"
        assert parts[key]["note"].startswith(f"skipped: no MNIST under {tmp_path / 'empty'}")
    assert parts["1"]["note"] == "not selected (--parts)"


def test_without_cuda_and_without_smoke_exits_2_in_one_line(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(CUDA_VISIBLE_DEVICES=""),
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].endswith("no CUDA device: run with --smoke for the CPU check")
    assert not out.exists()


def test_smoke_never_defaults_to_the_published_json():
    gc = _module()
    assert gc.parse_args(["--smoke"]).out == gc.SMOKE_OUT != gc.OUT
    assert gc.parse_args([]).out == gc.OUT
    assert gc.parse_args(["--smoke", "--out", "x.json"]).out == Path("x.json")


def test_runner_saves_after_every_part_and_records_failures(tmp_path, monkeypatch):
    gc = _module()
    out = tmp_path / "gpu.json"
    seen = {}

    def part2(ctx):
        seen.update(json.loads(out.read_text())["parts"])  # written before part 2 ran
        raise RuntimeError("boom\nsecond line")

    def part3(ctx):
        raise gc.Skip("skipped: no MNIST under nowhere")

    fakes = {
        1: lambda ctx: {"x": 1.0},
        2: part2,
        3: part3,
        4: lambda ctx: {"y": float("nan")},
        5: lambda ctx: {"z": 2},
    }
    for k, fn in fakes.items():
        monkeypatch.setitem(gc.PARTS, k, fn)
    monkeypatch.setattr(gc, "table", lambda doc: "")
    args = gc.parse_args(["--smoke", "--out", str(out)])
    assert gc.run(args, out, torch.device("cpu")) == 1
    assert seen["1"]["status"] == "ok" and seen["2"]["status"] == "running"
    assert seen["3"]["status"] == "pending"
    parts = _load(out)["parts"]
    assert parts["1"]["results"] == {"x": 1.0}
    assert parts["2"]["status"] == "failed" and parts["2"]["error"] == "RuntimeError: boom"
    assert parts["3"]["status"] == "skipped"
    assert parts["3"]["note"] == "skipped: no MNIST under nowhere"
    assert parts["4"]["status"] == "ok" and parts["4"]["results"] == {"y": None}  # no NaN in JSON
    assert parts["5"]["status"] == "ok"
    # a rerun of some parts keeps the others' earlier entries
    monkeypatch.setitem(gc.PARTS, 2, lambda ctx: {"fixed": True})
    args = gc.parse_args(["--smoke", "--parts", "2", "--out", str(out)])
    assert gc.run(args, out, torch.device("cpu")) == 0
    parts = _load(out)["parts"]
    assert parts["2"]["results"] == {"fixed": True}
    assert parts["1"]["results"] == {"x": 1.0} and parts["1"]["kept_from_earlier_run"]


def test_table_renders_results_skips_and_failures(smoke, tmp_path, capsys):
    gc = _module()
    assert gc.main(["--table", "--out", str(smoke[1])]) == 0
    text = capsys.readouterr().out
    for k in range(1, 6):
        assert f"**Part {k}: " in text
    assert "| wgan_lip.BjorckLinear |" in text and "W1 estimate [95% CI]" in text
    doc = {
        "machine": {"device": "X"},
        "parts": {
            "1": {"name": "layers", "status": "failed", "error": "RuntimeError: boom"},
            "2": {"name": "w1", "status": "running"},
            "3": {"name": "robust", "status": "skipped", "note": "skipped: no MNIST under /d"},
        },
    }
    text = gc.table(doc)
    assert "**Part 1: layers**: failed: RuntimeError: boom" in text
    assert "**Part 2: w1**: running: killed while running: no result" in text
    assert "**Part 3: robust**: skipped: no MNIST under /d" in text
    assert gc.main(["--table", "--out", str(tmp_path / "missing.json")]) == 2
    assert "not found" in capsys.readouterr().err
