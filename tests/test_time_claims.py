"""Times the documentation states are measured, not guessed: no "about 40 s" anywhere a
user reads, and the README's table of command times is the one the benchmark wrote."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# an approximate duration: "~40 s", "about 7 min", "takes 2 minutes"
GUESS = re.compile(
    r"(~ ?|\babout |\btakes )\d[\d,.]* ?(s|sec|seconds|min|minutes|h|hours)\b", re.IGNORECASE
)


def _user_facing_files() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for folder, pattern in (
        ("examples", "*.py"),
        ("scripts", "*.py"),
        ("configs", "*.yaml"),
        ("wgan_lip", "*.py"),
    ):
        files += sorted((REPO / folder).rglob(pattern))
    return files


def test_no_time_is_stated_without_a_measurement():
    hits = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _user_facing_files()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if GUESS.search(line)
    ]
    assert not hits, "state measured times (scripts/bench_commands.py), not guesses:\n" + (
        "\n".join(hits)
    )


def test_the_readme_quotes_the_measured_command_times(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench_commands

    result = json.loads((REPO / "benchmarks" / "commands.json").read_text())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_commands.print_table(result)
    table = out.getvalue().strip()
    assert table in (REPO / "README.md").read_text(), (
        "the README's command times differ from benchmarks/commands.json; paste "
        "`python scripts/bench_commands.py --tables`:\n" + table
    )
