"""Every script under examples/ runs (small sizes) and its numbers make sense."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_has_a_test():
    tested = {"w1_image_folders", "wgan_toy_levelsets", "certify_classifier", "custom_layer"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_w1_image_folders(tmp_path, capsys):
    out = _load("w1_image_folders").main(
        ["--n", "200", "--steps", "150", "--out", str(tmp_path / "w1.png")]
    )
    assert Path(out["figure"]).stat().st_size > 0
    lo, hi = out["ci"]
    assert lo <= out["value"] <= hi
    assert 0 < out["value"] <= out["exact"] * 1.1  # a lower bound, up to sampling noise
    assert "certified W1 >=" in capsys.readouterr().out


def test_wgan_toy_levelsets(tmp_path):
    out = _load("wgan_toy_levelsets").main(["--steps", "300", "--out", str(tmp_path / "t.png")])
    assert Path(out["figure"]).stat().st_size > 0
    # both certified values are lower bounds of W1(generated, real), up to sampling noise
    assert out["dual"] <= out["exact"] + 0.1
    assert out["estimate"] <= out["exact"] + 0.1


def test_certify_classifier(capsys):
    report = _load("certify_classifier").main(["--epochs", "2", "--n", "600"])
    assert report["violations"] == 0
    assert report["clean"] > 0.8
    assert report["lipschitz_bound"] <= 1.01
    for r in report["radii"]:
        assert r["certified"] <= r["attacked"] <= report["clean"]
    assert "violations" in capsys.readouterr().out


def test_custom_layer():
    out = _load("custom_layer").main([])
    assert out["export_matches"]
    assert out["empirical"] <= out["bound"] * (1 + 1e-5)
    assert out["bound"] == pytest.approx(1.0, abs=1e-5)
    assert out["with_hardswish"] == pytest.approx(1.5, abs=1e-5)
    assert out["by_name_bound"] <= 1 + 1e-4  # registered by name: built by every job
    assert out["w1_certified"] and out["w1_value"] < 0.5 * 8**0.5  # below |shift|
