"""Benchmark the W1 estimators against exact values.

Sections (all by default):
  known    known-W1 problems (d = 2..128) x critics (groupsort, gp, lp, sn, clip), with exact
           POT on the samples, sliced W1, and each critic's *population* value (scored on
           100,000 fresh samples per side) so held-out noise does not hide the critic's gap.
  insample in-sample certified value / exact POT on small problems (d <= 2, and d = 8).
  mnist    MNIST class pairs: groupsort and bcop estimates beside the exact sample W1.
  highdim  translation in d=128 with 5,000 and 20,000 samples per side (the gap vs n).
  speed    10,000 x 10,000 in 784-D: estimate_w1 vs POT exact, alternated, median.

Writes benchmarks/w1.json (updated after every row) and prints markdown tables.
Run: .venv/bin/python scripts/bench_w1.py [--sections known insample mnist speed]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_layers import machine

from wgan_lip import estimate_w1, exact_w1, sliced_w1
from wgan_lip.data import GaussianScale, PointVsSphere, Translation, eight_gaussians, two_moons
from wgan_lip.data.sources import load_samples

OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "w1.json"
KNOWN = [
    ("translation", Translation(2, 1.0)),
    ("translation", Translation(8, 1.0)),
    ("translation", Translation(32, 1.0)),
    ("translation", Translation(128, 1.0)),
    ("sphere", PointVsSphere(2, 1.0)),
    ("sphere", PointVsSphere(16, 1.0)),
    ("gaussian_scale", GaussianScale(2, 1.0, 2.0)),
    ("gaussian_scale", GaussianScale(8, 1.0, 2.0)),
]
# Baselines on a subset (one CPU budget): low and high dimension, linear and radial critics.
BASELINE_ON = {("translation", 2), ("translation", 32), ("sphere", 16), ("gaussian_scale", 8)}
CRITICS = ("groupsort", "gp", "lp", "sn", "clip")


def save(results: dict) -> None:
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1))


def run_known(results: dict, n: int, pop_n: int) -> None:
    rows = results.setdefault("known", [])
    for name, prob in KNOWN:
        p, q = prob.sample_p(n, 0), prob.sample_q(n, 0)
        t0 = time.perf_counter()
        exact = exact_w1(p, q)
        t_exact = time.perf_counter() - t0
        t0 = time.perf_counter()
        sliced = sliced_w1(p, q)
        t_sliced = time.perf_counter() - t0
        pop_p, pop_q = prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000)
        critics = CRITICS if (name, prob.dim) in BASELINE_ON else ("groupsort",)
        for critic in critics:
            est = estimate_w1(p, q, critic=critic, progress=False)
            pop = est.score(pop_p, pop_q)[0]
            row = {
                "problem": name, "dim": prob.dim, "n": n, "w1": prob.w1, "critic": critic,
                "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
                "train_value": est.train_value, "population_value": pop,
                "rel_error": (est.value - prob.w1) / prob.w1,
                "population_gap": (prob.w1 - pop) / prob.w1,
                "ci_covers_population": est.ci_low <= pop <= est.ci_high,
                "certified": est.certified, "lipschitz_bound": est.lipschitz_bound,
                "steps": est.steps, "seconds": est.seconds,
                "exact_sample_w1": exact, "exact_seconds": t_exact,
                "sliced_w1": sliced, "sliced_seconds": t_sliced,
            }  # fmt: skip
            rows.append(row)
            save(results)
            print(
                f"{name:15s} d={prob.dim:3d} {critic:9s} W1={prob.w1:.4f} est={est.value:.4f} "
                f"[{est.ci_low:.4f},{est.ci_high:.4f}] pop={pop:.4f} "
                f"gap={row['population_gap'] * 100:+.2f}% steps={est.steps} "
                f"{est.seconds:.0f}s exact={exact:.4f} sliced={sliced:.4f}",
                flush=True,
            )


def run_insample(results: dict, n: int) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, 1, generator=g), 0.5 * torch.randn(n, 1, generator=g) + 1
    problems = [
        ("gauss_vs_scaled_1d", a, b),
        ("moons_vs_8gauss_2d", two_moons(n, 0), eight_gaussians(n, 1)),
        ("translation_2d", Translation(2, 1.0).sample_p(n, 2), Translation(2, 1.0).sample_q(n, 2)),
        ("gaussian_scale_8d", GaussianScale(8).sample_p(n, 3), GaussianScale(8).sample_q(n, 3)),
    ]  # fmt: skip
    rows = results.setdefault("insample", [])
    for name, p, q in problems:
        exact = exact_w1(p, q)
        for critic in ("groupsort", "gp", "lp", "clip"):
            est = estimate_w1(p, q, critic=critic, holdout=0, batch_size=n, eval_every=50,
                              progress=False)  # fmt: skip
            rows.append({"problem": name, "dim": p.shape[1], "n": n, "critic": critic,
                         "value": est.value, "exact_sample_w1": exact,
                         "ratio": est.value / exact, "certified": est.certified,
                         "steps": est.steps, "seconds": est.seconds})  # fmt: skip
            save(results)
            print(f"insample {name:20s} {critic:9s} ratio={est.value / exact:.4f}", flush=True)


def run_mnist(results: dict, data_root: str | None) -> None:
    rows = results.setdefault("mnist", [])
    for a, b in (("mnist:3", "mnist:5"), ("mnist:1", "mnist:7")):
        try:
            p, q = load_samples(a, data_root=data_root), load_samples(b, data_root=data_root)
        except Exception as e:
            print(f"mnist section skipped: {e}")
            return
        t0 = time.perf_counter()
        exact = exact_w1(p.flat(), q.flat())
        t_exact = time.perf_counter() - t0
        for critic in ("groupsort", "bcop"):
            est = estimate_w1(p, q, critic=critic, progress=False)
            rows.append({"p": a, "q": b, "n_p": p.n, "n_q": q.n, "critic": critic,
                         "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
                         "train_value": est.train_value, "certified": est.certified,
                         "steps": est.steps, "seconds": est.seconds,
                         "exact_sample_w1": exact, "exact_seconds": t_exact})  # fmt: skip
            save(results)
            print(f"{a} vs {b} {critic}: est={est.value:.4f} [{est.ci_low:.4f},"
                  f"{est.ci_high:.4f}] exact(sample)={exact:.4f} {est.seconds:.0f}s "
                  f"(exact {t_exact:.0f}s)", flush=True)  # fmt: skip


def run_highdim(results: dict, pop_n: int) -> None:
    """The d=128 translation with more samples: how the critic's gap shrinks with n."""
    rows = results.setdefault("highdim", [])
    prob = Translation(128, 1.0)
    pop_p, pop_q = prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000)
    for n in (5000, 20_000):
        est = estimate_w1(prob.sample_p(n, 0), prob.sample_q(n, 0), progress=False)
        pop = est.score(pop_p, pop_q)[0]
        rows.append({"problem": "translation", "dim": 128, "n": n, "w1": prob.w1,
                     "value": est.value, "ci_low": est.ci_low, "ci_high": est.ci_high,
                     "train_value": est.train_value, "population_value": pop,
                     "population_gap": (prob.w1 - pop) / prob.w1, "steps": est.steps,
                     "seconds": est.seconds})  # fmt: skip
        save(results)
        print(f"highdim n={n}: est={est.value:.4f} pop={pop:.4f} gap="
              f"{(prob.w1 - pop) * 100:.2f}%", flush=True)  # fmt: skip


def run_speed(results: dict, repeats: int) -> None:
    prob = Translation(784, 2.0)
    p, q = prob.sample_p(10_000, 0), prob.sample_q(10_000, 0)
    times: dict[str, list[float]] = {"estimate_w1": [], "pot_exact": []}
    values: dict[str, list[float]] = {"estimate_w1": [], "pot_exact": []}
    for _ in range(repeats):  # alternated: A, B, A, B, ...
        t0 = time.perf_counter()
        values["estimate_w1"].append(estimate_w1(p, q, progress=False).value)
        times["estimate_w1"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        values["pot_exact"].append(exact_w1(p, q))
        times["pot_exact"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    results["speed"] = {
        "problem": "translation d=784 |s|=2, 10,000 per side", "w1": prob.w1,
        "repeats": repeats, "median_seconds": med, "values": values, "times": times,
        "ratio_estimate_over_exact": med["estimate_w1"] / med["pot_exact"],
    }  # fmt: skip
    save(results)
    print(f"speed: estimate {med['estimate_w1']:.1f}s vs POT exact {med['pot_exact']:.1f}s")


def print_tables(results: dict) -> None:
    """The README tables, from the JSON."""
    known = results.get("known", [])
    if known:
        print("\n| problem | d | exact W1 | critic | certified | estimate [95% CI] | "
              "population value | population gap | CI covers pop. | exact W1 of samples | "
              "sliced W1 | steps | time |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in known:
            print(f"| {r['problem']} | {r['dim']} | {r['w1']:.4f} | {r['critic']} | "
                  f"{'yes' if r['certified'] else 'no'} | {r['value']:.4f} "
                  f"[{r['ci_low']:.4f}, {r['ci_high']:.4f}] | {r['population_value']:.4f} | "
                  f"{r['population_gap'] * 100:+.2f}% | "
                  f"{'yes' if r['ci_covers_population'] else 'no'} | "
                  f"{r['exact_sample_w1']:.4f} | {r['sliced_w1']:.4f} | {r['steps']} | "
                  f"{r['seconds']:.0f} s |")  # fmt: skip
        gaps = [abs(r["population_gap"]) for r in known if r["critic"] == "groupsort"]
        print(f"\ngroupsort population gap: median {statistics.median(gaps) * 100:.2f}%, "
              f"worst {max(gaps) * 100:.2f}% over {len(gaps)} problems")  # fmt: skip
    if results.get("insample"):
        print("\n| in-sample problem | n | critic | certified | value / exact POT |")
        print("|---|---|---|---|---|")
        for r in results["insample"]:
            print(f"| {r['problem']} | {r['n']} | {r['critic']} | "
                  f"{'yes' if r['certified'] else 'no'} | {r['ratio']:.4f} |")  # fmt: skip
    if results.get("mnist"):
        print("\n| P | Q | n_P / n_Q | critic | estimate [95% CI] | exact W1 of samples | "
              "time (estimate / exact) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for r in results["mnist"]:
            print(f"| {r['p']} | {r['q']} | {r['n_p']} / {r['n_q']} | {r['critic']} | "
                  f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | "
                  f"{r['exact_sample_w1']:.3f} | {r['seconds']:.0f} s / "
                  f"{r['exact_seconds']:.0f} s |")  # fmt: skip
    if results.get("highdim"):
        print("\n| translation d=128, n per side | estimate [95% CI] | population gap | time |")
        print("|---|---|---|---|")
        for r in results["highdim"]:
            print(f"| {r['n']} | {r['value']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}] | "
                  f"{r['population_gap'] * 100:+.2f}% | {r['seconds']:.0f} s |")  # fmt: skip
    if results.get("speed"):
        sp = results["speed"]
        med = sp["median_seconds"]
        print(f"\n{sp['problem']}: estimate_w1 {med['estimate_w1']:.1f} s vs POT exact "
              f"{med['pot_exact']:.1f} s (median of {sp['repeats']}, alternated; ratio "
              f"{sp['ratio_estimate_over_exact']:.2f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sections", nargs="+", default=["known", "insample", "mnist", "highdim", "speed"]
    )
    ap.add_argument("--n", type=int, default=5000, help="samples per side (known problems)")
    ap.add_argument("--population", type=int, default=100_000)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--repeats", type=int, default=3, help="speed section repeats")
    ap.add_argument("--tables", action="store_true", help="only print the tables of the JSON")
    args = ap.parse_args()
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.tables:
        print_tables(results)
        return
    results["machine"] = machine()
    for s in args.sections:
        results.pop(s, None)
    if "known" in args.sections:
        run_known(results, args.n, args.population)
    if "insample" in args.sections:
        run_insample(results, 500)
    if "mnist" in args.sections:
        run_mnist(results, args.data_root)
    if "highdim" in args.sections:
        run_highdim(results, args.population)
    if "speed" in args.sections:
        run_speed(results, args.repeats)
    save(results)
    print_tables(results)


if __name__ == "__main__":
    main()
