"""The documentation builds with no warning, and the wheel and sdist install and run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    api = (tmp_path / "html" / "api.html").read_text()
    for name in (
        "wgan_lip.w1.estimate_w1",
        "wgan_lip.layers.SLLConv2d",
        "wgan_lip.gan.WGAN",
        "wgan_lip.robust.certify",
        "wgan_lip.ot.exact_w1",
    ):
        assert f'id="{name}"' in api, name
    assert (tmp_path / "html" / "maths.html").is_file()


def test_wheel_and_sdist_install_in_a_clean_venv():
    pytest.importorskip("build")
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_dist.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert out.stdout.count("import test ok") == 2
    assert "dist check ok" in out.stdout
