"""Soundness of certified W1 values on the data users have: the slow part of the suite.

Sections (all by default):
  null      discrete nulls (P and Q two samples of one law: binary, categorical, rounded
            reals, a handful of atoms), 40 seeds each, ``estimate_w1`` defaults (steps
            capped by --steps): how many seeds give p < 0.05, or an interval above 0?
            A valid certificate keeps both at about 5% or less.
  insample  every data class of tests/soundness/data_classes.py x seeds, holdout=0: the
            certified value against the exact W1 of the original values (POT on float64 /
            int64 data); a value above it is a false certificate.
  offset    float64 data with and without +1e8: how far does the held-out value move?

Writes benchmarks/soundness.json (updated after every row) and prints markdown tables.
Run: .venv/bin/python scripts/bench_soundness.py [--sections null insample offset]
     [--seeds 40] [--steps 300] [--tables]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _bench import ROOT, load_module, machine, merged_json

from wgan_lip import estimate_w1

# the data classes of the soundness tests (a file of the test suite, not of a package)
_data_classes = load_module("tests/soundness/data_classes.py", "soundness_data_classes")
CLASSES = _data_classes.CLASSES
data_scale = _data_classes.data_scale
reference_w1 = _data_classes.reference_w1
OUT = ROOT / "benchmarks" / "soundness.json"
ALPHA = 0.05
REL = 1e-9


def binary(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, (1000, 6)).astype(np.float32)


def categorical(rng: np.random.Generator) -> np.ndarray:
    return rng.choice(5, size=(1000, 1), p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(np.int64)


def rounded_reals(rng: np.random.Generator) -> np.ndarray:
    return np.round(rng.normal(size=(1000, 3)), 1)


def few_atoms(rng: np.random.Generator) -> np.ndarray:
    atoms = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    return atoms[rng.choice(3, size=500, p=[0.5, 0.3, 0.2])]


NULLS = {
    "binary {0,1}^6": binary,
    "categorical (5 levels)": categorical,
    "rounded reals (0.1)": rounded_reals,
    "3 atoms in 2-D": few_atoms,
}


def save(section: str, key: str, row: dict) -> None:
    """Merge one row into the JSON (sections may run in parallel processes)."""
    with merged_json(OUT) as results:
        results.setdefault(section, {})[key] = row
        results["machine"] = machine()


def run_null(seeds: int, steps: int, only: list[str] | None = None, key: str = "null") -> None:
    for name, draw in NULLS.items():
        if only and not any(o in name for o in only):
            continue
        rejects, above, either, values = 0, 0, 0, []
        start = time.perf_counter()
        for s in range(seeds):
            rng = np.random.default_rng(10_000 + s)
            p, q = draw(rng), draw(rng)
            est = estimate_w1(p, q, seed=s, steps=steps, progress=False)
            rejects += est.p_value < ALPHA
            above += est.ci_low > 0
            either += est.p_value < ALPHA or est.ci_low > 0
            values.append(est.value)
            print(
                f"  null {name} seed {s}: value {est.value:+.4f} [{est.ci_low:+.4f}, "
                f"{est.ci_high:+.4f}] p={est.p_value:.3f}",
                flush=True,
            )
        row = {
            "seeds": seeds,
            "steps": steps,
            "p_below_alpha": rejects,
            "ci_above_0": above,
            "either": either,
            "rate": either / seeds,
            "mean_value": float(np.mean(values)),
            "seconds": time.perf_counter() - start,
        }
        save(key, name, row)
        print(name, row, flush=True)


def run_insample(seeds: int, steps: int) -> None:
    for name, gen in CLASSES.items():
        worst, lies, start = -np.inf, 0, time.perf_counter()
        for s in range(seeds):
            rng = np.random.default_rng(20_000 + s)
            p, q = gen(rng, int(rng.integers(50, 400)))
            exact = reference_w1(p, q)
            est = estimate_w1(p, q, holdout=0, seed=s, steps=steps, progress=False)
            scale = max(exact, data_scale(p, q), 1e-300)
            excess = (est.value - exact) / scale
            worst = max(worst, excess)
            lies += est.value > exact * (1 + REL) + REL * data_scale(p, q)
        row = {
            "seeds": seeds,
            "steps": steps,
            "false_certificates": int(lies),
            "worst_excess_relative": float(worst),
            "seconds": time.perf_counter() - start,
        }
        save("insample", name, row)
        print(name, row, flush=True)


def run_offset(seeds: int, steps: int) -> None:
    moves = []
    start = time.perf_counter()
    for s in range(seeds):
        rng = np.random.default_rng(30_000 + s)
        p = rng.normal(size=(1000, 2))
        q = rng.normal(size=(1000, 2)) + rng.uniform(0, 1, size=2)
        a = estimate_w1(p, q, seed=s, steps=steps, progress=False)
        b = estimate_w1(p + 1e8, q + 1e8, seed=s, steps=steps, progress=False)
        moves.append(abs(a.value - b.value) / max(abs(a.value), 1e-12))
    row = {
        "seeds": seeds,
        "steps": steps,
        "max_relative_move": float(max(moves)),
        "median_relative_move": float(np.median(moves)),
        "seconds": time.perf_counter() - start,
    }
    save("offset", "float64 + 1e8", row)
    print(row, flush=True)


def print_tables(results: dict) -> None:
    m = results.get("machine", {})
    print(f"Machine: {m.get('cpu', '?')}, torch {m.get('torch', '?')}, {m.get('date', '?')}\n")
    nulls = [(k, v) for k, v in results.items() if k.startswith("null")]
    if nulls:
        print("| discrete null (W1 = 0) | seeds | p < 0.05 | CI above 0 | either | mean value |")
        print("|---|---:|---:|---:|---:|---:|")
    for _, rows in nulls:
        for name, r in rows.items():
            print(
                f"| {name} | {r['seeds']} | {r['p_below_alpha']} | {r['ci_above_0']} | "
                f"{r['either']} ({100 * r['rate']:.1f}%) | {r['mean_value']:+.4f} |"
            )
    if nulls:
        print()
    if "insample" in results:
        print("| data class | seeds | in-sample value > exact W1 | worst (value - exact) / scale |")
        print("|---|---:|---:|---:|")
        for name, r in results["insample"].items():
            print(
                f"| {name} | {r['seeds']} | {r['false_certificates']} | "
                f"{r['worst_excess_relative']:.2e} |"
            )
        print()
    if "offset" in results:
        for name, r in results["offset"].items():
            print(
                f"Held-out value, {name} vs original, {r['seeds']} seeds: largest relative "
                f"move {r['max_relative_move']:.2e}, median {r['median_relative_move']:.2e}."
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--sections",
        nargs="+",
        default=["null", "insample", "offset"],
        choices=["null", "insample", "offset"],
    )
    ap.add_argument("--seeds", type=int, default=40, help="seeds per null class")
    ap.add_argument("--insample-seeds", type=int, default=10)
    ap.add_argument("--only", nargs="+", help="null classes whose name contains one of these")
    ap.add_argument(
        "--key",
        default="null",
        help="JSON section of the null rows (a longer run can sit beside the 40-seed one)",
    )
    ap.add_argument("--steps", type=int, default=300, help="training steps cap per estimate")
    ap.add_argument("--tables", action="store_true", help="print the tables of the JSON")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (small critics gain nothing from more)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.tables:
        print_tables(json.loads(OUT.read_text()))
        return
    if "null" in args.sections:
        run_null(args.seeds, args.steps, args.only, args.key)
    if "insample" in args.sections:
        run_insample(args.insample_seeds, min(args.steps, 200))
    if "offset" in args.sections:
        run_offset(10, args.steps)
    print_tables(json.loads(OUT.read_text()))


if __name__ == "__main__":
    main()
