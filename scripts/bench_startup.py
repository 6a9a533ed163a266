"""Start-up time of the ``wgan-lip`` command: ``--help`` must not pay for torch.

Times, as whole processes, ``wgan-lip --help``, ``wgan-lip w1 --help`` and ``wgan-lip
--version`` side by side with what every command paid before imports were made lazy
(``python -c "import torch, lightning, ot"``) and with a bare ``python -c pass``. Commands
are alternated round by round after one warm-up round; medians are reported. Goal: both
``--help`` commands under 1.5 s.

    python scripts/bench_startup.py [--rounds 9] [--out benchmarks/startup.json]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from wgan_lip.jsonio import write_json_strict

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.5
BEFORE = "import torch, lightning, ot"  # what every command imported before lazy imports


def _commands() -> dict[str, list[str]]:
    exe = shutil.which("wgan-lip", path=str(Path(sys.executable).parent)) or "wgan-lip"
    return {
        "wgan-lip --help": [exe, "--help"],
        "wgan-lip w1 --help": [exe, "w1", "--help"],
        "wgan-lip certify --help": [exe, "certify", "--help"],
        "wgan-lip --version": [exe, "--version"],
        "import torch, lightning, ot (before)": [sys.executable, "-c", BEFORE],
        "python -c pass": [sys.executable, "-c", "pass"],
    }


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--out", default=str(REPO / "benchmarks/startup.json"))
    args = ap.parse_args()
    commands = _commands()
    for cmd in commands.values():  # warm-up: page cache, .pyc files
        _time(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, cmd in commands.items():  # alternated within every round
            times[name].append(_time(cmd))
    rows = []
    before = statistics.median(times["import torch, lightning, ot (before)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            {
                "command": name,
                "median_s": round(med, 3),
                "min_s": round(min(ts), 3),
                "max_s": round(max(ts), 3),
                "vs_before": round(med / before, 3),
            }
        )
        print(f"{name:40s} median {med:6.3f} s  (min {min(ts):.3f}, max {max(ts):.3f})")
    help_ok = all(r["median_s"] < GOAL_S for r in rows if r["command"].endswith("--help"))
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "rounds": args.rounds,
        "goal": f"wgan-lip --help and w1 --help under {GOAL_S} s",
        "goal_met": help_ok,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json_strict(args.out, result, indent=2)
    print(f"goal met: {help_ok}; wrote {args.out}")


if __name__ == "__main__":
    main()
