"""Wall time of the commands the documentation quotes a time for, idle and beside a busy process.

Every time the README, the examples and the scripts' help state is measured here, as a
whole process, on an idle machine and beside one CPU-bound process (``python -c "while
True: pass"``: a laptop is never idle). Rounds alternate the commands; medians are
reported. Commands that need MNIST run when ``--data-root`` / ``$WGAN_LIP_DATA`` has it
(else they are recorded as skipped).

    python scripts/bench_commands.py [--rounds 1] [--only demo example]
        [--out benchmarks/commands.json] [--tables]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bench import machine, machine_load

from wgan_lip.jsonio import write_json_strict

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "commands.json"


def _commands(tmp: Path, data_root: str | None) -> dict[str, list[str] | None]:
    """The quoted commands, each an argv (None: skipped, its data is missing)."""
    py = sys.executable
    exe = shutil.which("wgan-lip", path=str(Path(py).parent)) or "wgan-lip"
    has_mnist = bool(data_root) and (Path(data_root) / "MNIST" / "raw").is_dir()
    return {
        "make demo": [py, str(REPO / "scripts/demo_w1.py")],
        "wgan-lip w1 (2,000 x 10 .npy files)": [
            exe,
            "w1",
            str(tmp / "p.npy"),
            str(tmp / "q.npy"),
            "--no-progress",
        ],
        "examples/wgan_toy_levelsets.py": [
            py,
            str(REPO / "examples/wgan_toy_levelsets.py"),
            "--out",
            str(tmp / "toy.png"),
        ],
        "examples/w1_image_folders.py": [
            py,
            str(REPO / "examples/w1_image_folders.py"),
            "--out",
            str(tmp / "w1.png"),
        ],
        "examples/certify_classifier.py": [py, str(REPO / "examples/certify_classifier.py")],
        "examples/custom_layer.py": [py, str(REPO / "examples/custom_layer.py")],
        "scripts/gpu_check.py --smoke": [
            py,
            str(REPO / "scripts/gpu_check.py"),
            "--smoke",
            "--out",
            str(tmp / "gpu_smoke.json"),
        ],
        "scripts/train_feature_net.py --dataset mnist": (
            [
                py,
                str(REPO / "scripts/train_feature_net.py"),
                "--dataset",
                "mnist",
                "--data-root",
                str(data_root),
                "--out",
                str(tmp / "mnist_features.pt"),
            ]
            if has_mnist
            else None
        ),
    }


def _write_inputs(tmp: Path) -> None:
    """The ``wgan-lip w1`` inputs: 2,000 x 10 samples, Q translated by 0.3 per axis."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp / "p.npy", rng.normal(size=(2000, 10)).astype(np.float32))
    np.save(tmp / "q.npy", (rng.normal(size=(2000, 10)) + 0.3).astype(np.float32))


def _time(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {tail}")
    return time.perf_counter() - start


def measure(rounds: int, only: list[str] | None, data_root: str | None) -> dict:
    """Median seconds of every command, idle and beside one busy process."""
    # the demo's embedded default: no MNIST rows added to it
    env = {k: v for k, v in os.environ.items() if k != "WGAN_LIP_DATA"}
    env["WANDB_MODE"] = "disabled"
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        _write_inputs(tmp)
        commands = _commands(tmp, data_root)
        if only:
            commands = {k: v for k, v in commands.items() if any(o in k for o in only)}
        for load in ("idle", "busy"):
            with machine_load(load):
                times: dict[str, list[float]] = {k: [] for k, v in commands.items() if v}
                for _ in range(rounds):
                    for key in times:  # alternated within every round
                        times[key].append(_time(commands[key], env))
                        print(f"{load:4s} {key}: {times[key][-1]:.1f} s", flush=True)
            for key, cmd in commands.items():
                ts = times.get(key)
                rows.append(
                    {
                        "command": key,
                        "load": load,
                        "median_s": statistics.median(ts) if ts else None,
                        "times_s": ts or [],
                        "skipped": None if cmd else "no MNIST under --data-root",
                    }
                )
    return {"rounds": rounds, "machine": machine(), "rows": rows}


def print_table(result: dict) -> None:
    """The markdown table of the JSON: one row per command, idle beside busy."""
    by: dict[str, dict] = {}
    for r in result["rows"]:
        by.setdefault(r["command"], {})[r["load"]] = r
    print("| command | idle | beside one busy process |")
    print("|---|---|---|")
    for command, loads in by.items():
        cells = []
        for load in ("idle", "busy"):
            r = loads.get(load)
            cells.append("skipped" if not r or r["median_s"] is None else f"{r['median_s']:.0f} s")
        print(f"| `{command}` | {cells[0]} | {cells[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", nargs="+", help="commands whose name contains one of these")
    ap.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--tables", action="store_true", help="only print the table of the JSON")
    args = ap.parse_args()
    if args.tables:
        print_table(json.loads(args.out.read_text()))
        return
    result = measure(args.rounds, args.only, args.data_root)
    if args.only and args.out.is_file():  # keep the commands not measured this time
        old = json.loads(args.out.read_text())
        done = {(r["command"], r["load"]) for r in result["rows"]}
        result["rows"] += [r for r in old["rows"] if (r["command"], r["load"]) not in done]
        order = list(_commands(Path(), None))
        result["rows"].sort(key=lambda r: (order.index(r["command"]), r["load"] == "busy"))
    write_json_strict(args.out, result)
    print_table(result)


if __name__ == "__main__":
    main()
