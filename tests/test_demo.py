"""`make demo`: a line on stderr as each problem starts, a table row on stdout as it ends,
every certified interval starting below the exact W1."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo_w1.py"


def _run(monkeypatch, capsys, *args) -> tuple[str, str]:
    monkeypatch.setattr(sys, "argv", ["demo_w1.py", "--n", "300", *args])
    monkeypatch.delenv("WGAN_LIP_DATA", raising=False)
    runpy.run_path(str(DEMO), run_name="__main__")
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize("quiet", [False, True])
def test_the_demo_reports_each_problem(monkeypatch, capsys, quiet):
    out, err = _run(monkeypatch, capsys, *(["--no-progress"] if quiet else []))
    rows = [line for line in out.splitlines() if line.startswith("| ") and " s |" in line]
    assert len(rows) == 5
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        exact, ci_low = float(cells[1]), float(cells[3].strip("[]").split(",")[0])
        assert ci_low <= exact  # a certified lower bound, at its 95% level
    starts = [line for line in err.splitlines() if line.startswith("[")]
    assert len(starts) == (0 if quiet else 5)
