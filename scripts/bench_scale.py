"""Scale benchmark: W1 between on-disk datasets of 10^4, 10^5 and 10^6 points per side.

For each size, ``scripts/make_large_problem.py`` writes a known-W1 translation in 784-D
(P = N(0, I), Q = P' + s, W1 = |s| = 1) as float32 ``.npy`` files, and the ``wgan-lip w1``
command estimates it in a fresh process, whose wall time and peak resident memory
(``wait4``'s ``ru_maxrss``, which counts the mapped file pages it holds) are recorded.
Exact transport (POT) runs beside it where its cost matrix fits in ``--max-exact-gib``; for
larger sizes the memory it would need is reported instead. Note what POT computes: the W1
of the two *empirical* measures, which in 784-D is dominated by the sampling distance
between points (about sqrt(2 * 784) = 39.6), not the W1 = 1 of the distributions.

Then the DDP scaling: training steps per second of the estimator with 1 process and with
2 CPU processes (``ddp_fork``, gloo) on the same global batches, alternated, after a
warm-up, median over ``--repeats``.

    python scripts/bench_scale.py                  # all sizes
    python scripts/bench_scale.py --sizes 10000    # quick

Writes ``benchmarks/scale.json``; ``--tables`` prints the README tables from it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _bench import ROOT, machine
from make_large_problem import make_problem  # this folder's script

from wgan_lip.jsonio import dumps_strict, write_json_strict

OUT = ROOT / "benchmarks" / "scale.json"
GOALS = {"n": 1_000_000, "minutes": 15, "rss_gib": 2.0, "rel_error": 0.03}


def run(cmd: list[str], timeout: float) -> tuple[int, str, str, float]:
    """Run ``cmd``; return (exit code, stdout, stderr, wall seconds)."""
    start = time.perf_counter()
    env = {**os.environ, "WANDB_MODE": "disabled"}
    with open(os.devnull, "w") as devnull:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, stdin=devnull
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return -9, out, err + "\ntimeout", time.perf_counter() - start
    return proc.returncode, out, err, time.perf_counter() - start


def measured(cmd: list[str], timeout: float) -> dict:
    """Run ``cmd`` under ``_peak`` (a wrapper that reports the child's own peak RSS)."""
    wrapper = [sys.executable, str(Path(__file__).resolve()), "--_peak", "--", *cmd]
    code, out, err, wall = run(wrapper, timeout)
    lines = out.strip().splitlines()
    peak = json.loads(lines[-1]) if lines and lines[-1].startswith('{"peak_rss_kib"') else {}
    return {
        "code": code,
        "stdout": "\n".join(lines[:-1]) if peak else out,
        "stderr": err,
        "wall_seconds": wall,
        "peak_rss_gib": peak.get("peak_rss_kib", float("nan")) / 2**20,
        "child_seconds": peak.get("seconds"),
    }


def _peak(cmd: list[str]) -> int:
    """Run ``cmd`` as our only child and print its peak RSS (ru_maxrss) as a JSON line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    print(dumps_strict({"peak_rss_kib": usage.ru_maxrss, "seconds": time.perf_counter() - start}))
    return code


def estimate_row(n: int, work: Path, seed: int, timeout: float) -> dict:
    folder = work / f"n{n}"
    t0 = time.perf_counter()
    rec = make_problem(folder, n=n, dim=784, shift=1.0, seed=seed)
    gen_seconds = time.perf_counter() - t0
    cmd = [
        sys.executable,
        "-m",
        "wgan_lip",
        "w1",
        rec["p"],
        rec["q"],
        "--json",
        "--no-progress",
        "--seed",
        str(seed),
    ]
    run = measured(cmd, timeout)
    if run["code"] != 0:
        raise SystemExit(f"wgan-lip w1 failed at n={n}: {run['stderr'][-2000:]}")
    est = json.loads(run["stdout"].strip().splitlines()[-1])
    return {
        "n_per_side": n,
        "dim": 784,
        "w1": rec["w1"],
        "bytes_per_side": rec["bytes_per_side"],
        "generate_seconds": gen_seconds,
        "value": est["value"],
        "ci_low": est["ci_low"],
        "ci_high": est["ci_high"],
        "rel_error": abs(est["value"] - rec["w1"]) / rec["w1"],
        "train_value": est["train_value"],
        "lipschitz_bound": est["lipschitz_bound"],
        "steps": est["steps"],
        "stopped": est["stopped"],
        "train_seconds": est["train_seconds"],
        "estimate_seconds": est["seconds"],
        "wall_seconds": run["wall_seconds"],
        "peak_rss_gib": run["peak_rss_gib"],
        "n_holdout_per_side": est["n_holdout_p"],
        "p": rec["p"],
        "q": rec["q"],
    }


def exact_row(row: dict, max_gib: float, timeout: float) -> dict:
    from wgan_lip.ot import exact_w1_bytes

    n = row["n_per_side"]
    need = exact_w1_bytes(n, n) / 2**30
    out = {"exact_needs_gib": need}
    if need > max_gib:
        out["exact"] = f"not run: needs {need:,.1f} GiB (limit {max_gib:g} GiB)"
        return out
    code = (
        "import sys, numpy as np; from wgan_lip.ot import exact_w1; "
        "from wgan_lip.jsonio import dumps_strict; "
        f"p=np.load({row['p']!r}); q=np.load({row['q']!r}); "
        f"print(dumps_strict({{'exact': exact_w1(p, q, max_bytes={int(max_gib * 2**30)})}}))"
    )
    run = measured([sys.executable, "-c", code], timeout)
    if run["code"] != 0:
        out["exact"] = f"failed: {run['stderr'].strip().splitlines()[-1][:200]}"
        return out
    out.update(
        exact_sample_w1=json.loads(run["stdout"].strip().splitlines()[-1])["exact"],
        exact_wall_seconds=run["wall_seconds"],
        exact_peak_rss_gib=run["peak_rss_gib"],
    )
    return out


def ddp_scaling(p: str, q: str, steps: int, repeats: int, batch_size: int) -> dict:
    """Training steps/s with 1 and 2 processes on the same global batches, alternated."""
    import torch

    from wgan_lip import estimate_w1

    def once(devices: int) -> float:
        est = estimate_w1(
            p,
            q,
            steps=steps,
            progress=False,
            batch_size=batch_size,
            holdout=0.01,
            trainer={"devices": devices, "accelerator": "cpu"},
        )
        return est.steps / est.train_seconds

    once(1)  # warm-up (imports, page cache)
    once(2)
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(repeats):
        for devices in (1, 2) if r % 2 == 0 else (2, 1):
            rates[devices].append(once(devices))
    med = {d: statistics.median(v) for d, v in rates.items()}
    return {
        "steps": steps,
        "global_batch_per_side": batch_size,
        "repeats": repeats,
        "torch_threads_single": torch.get_num_threads(),
        "steps_per_second": {str(d): v for d, v in rates.items()},
        "median_steps_per_second": {str(d): v for d, v in med.items()},
        "speedup_2_vs_1": med[2] / med[1],
    }


def tables(data: dict) -> str:
    lines = [
        "| points per side | data on disk | wall time | peak RSS | W1 estimate [95% CI] "
        "| rel. error | steps | POT exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["sizes"]:
        if "exact_sample_w1" in r:
            pot = (
                f"{r['exact_sample_w1']:.2f} (empirical measures), "
                f"{r['exact_wall_seconds']:.0f} s, "
                f"{r['exact_peak_rss_gib']:.1f} GiB"
            )
        elif r["exact"].startswith("not run"):
            pot = f"not feasible: needs {r['exact_needs_gib']:,.0f} GiB"
        else:
            pot = r["exact"]
        lines.append(
            f"| {r['n_per_side']:,} | {2 * r['bytes_per_side'] / 2**30:.2f} GiB "
            f"| {r['wall_seconds']:.0f} s | {r['peak_rss_gib']:.2f} GiB "
            f"| {r['value']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}] "
            f"| {100 * r['rel_error']:.2f}% | {r['steps']:,} ({r['stopped']}) | {pot} |"
        )
    d = data.get("ddp")
    if d:
        m = d["median_steps_per_second"]
        lines += [
            "",
            "| processes | training steps/s (median) | speed-up |",
            "|---|---|---|",
            f"| 1 ({d['torch_threads_single']} threads) | {m['1']:.1f} | 1.00 |",
            f"| 2 (DDP, gloo, 1 thread each) | {m['2']:.1f} | {d['speedup_2_vs_1']:.2f} |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:2] == ["--_peak", "--"]:
        return _peak(argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument(
        "--work-dir",
        default="/tmp/wgan_lip_scale",
        help="where the datasets are written (needs 2 x 3.1 GB for 10^6)",
    )
    ap.add_argument("--max-exact-gib", type=float, default=4.0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--ddp-steps", type=int, default=300)
    ap.add_argument("--ddp-repeats", type=int, default=3)
    ap.add_argument("--no-ddp", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the datasets")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tables", action="store_true", help="print the README tables and exit")
    args = ap.parse_args(argv)
    if args.tables:
        print(tables(json.loads(OUT.read_text())))
        return 0
    work = Path(args.work_dir)
    data = {"machine": machine(), "goals": GOALS, "sizes": [], "command": " ".join(sys.argv)}
    for n in args.sizes:
        row = estimate_row(n, work, args.seed, args.timeout)
        row.update(exact_row(row, args.max_exact_gib, args.timeout))
        data["sizes"].append(row)
        print(dumps_strict({k: v for k, v in row.items() if k not in ("p", "q")}), flush=True)
        if n == GOALS["n"]:
            data["goals_met"] = {
                "minutes": row["wall_seconds"] / 60 <= GOALS["minutes"],
                "rss_gib": row["peak_rss_gib"] < GOALS["rss_gib"],
                "rel_error": row["rel_error"] < GOALS["rel_error"],
            }
    if not args.no_ddp:
        mid = next((r for r in data["sizes"] if r["n_per_side"] == 100_000), data["sizes"][0])
        data["ddp"] = ddp_scaling(mid["p"], mid["q"], args.ddp_steps, args.ddp_repeats, 512)
        data["ddp"]["n_per_side"] = mid["n_per_side"]
        print(dumps_strict(data["ddp"]), flush=True)
    if not args.keep:
        for r in data["sizes"]:
            for f in (r["p"], r["q"]):
                Path(f).unlink(missing_ok=True)
    OUT.parent.mkdir(exist_ok=True)
    write_json_strict(OUT, data)
    print(tables(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
