"""Benchmark the W1 estimator against exact values: the default (the critic family) side by
side with the previous default (one 3x128 GroupSort network, ``critic="groupsort"``).

Sections (all by default):
  known     known-W1 problems, d = 2..128, including kinked potentials (VoronoiPush) x
            {previous, family}, alternated in one run: population value (the returned critic
            scored on 100,000 fresh samples per side), held-out value and CI, p-value, time.
  insample  holdout=0: certified value / POT's exact W1 of the same samples (d <= 8).
  highdim   translation d=128 at 5,000 and 20,000 per side, d=784 at 10,000 per side.
  coverage  20 seeds of one problem: does the 95% CI cover the critic's population value?
  null      20 seeds with P = Q (two independent samples): how often is p < 0.1?
  mnist     MNIST class pairs (needs --data-root): the default estimate beside the exact W1
            of the samples.
  speed     10,000 x 10,000 in 784-D: estimate_w1 vs POT exact, alternated, median.
  threads   2,000 x 10: torch's own threads vs the automatic choice, idle and busy.
  time      time and error per problem: the default before the member race beside today's
            and POT's exact W1, alternated; then `make demo`, idle and beside a busy process.
  funnel    min-of-funnels potentials (Korotin, Kolesov and Burnaev 2022's construction:
            Q uniform on the cube, P = Q moved along its transport rays), D in 2..128,
            N in 4, 16, 64 funnels: a finite 20,000 per side (`--funnel-mode finite`) or
            fresh draws (`--funnel-mode sampler`); population error, time, winner.

Writes benchmarks/w1.json (updated after every row) and prints markdown tables.
Run: .venv/bin/python scripts/bench_w1.py [--sections known insample ...] [--tables]
(each section can run in its own process: results are merged into the JSON by section).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from _bench import alternated_times, machine, machine_load, merged_json

from wgan_lip import estimate_w1, exact_w1
from wgan_lip.data import (
    GaussianScale,
    PointVsSphere,
    Translation,
    VoronoiPush,
    eight_gaussians,
    two_moons,
)

OUT = Path(__file__).resolve().parent.parent / "benchmarks" / "w1.json"
ESTIMATORS = {"previous": {"critic": "groupsort"}, "family": {}}
KNOWN = [
    ("translation", Translation(2, 1.0), 5000),
    ("translation", Translation(8, 1.0), 5000),
    ("translation", Translation(32, 1.0), 5000),
    ("translation", Translation(128, 1.0), 5000),
    ("sphere", PointVsSphere(2, 1.0), 5000),
    ("sphere", PointVsSphere(16, 1.0), 5000),
    ("gaussian_scale", GaussianScale(2, 1.0, 2.0), 5000),
    ("gaussian_scale", GaussianScale(8, 1.0, 2.0), 5000),
    ("voronoi k=8", VoronoiPush(2, 8), 3000),
    ("voronoi k=16", VoronoiPush(8, 16), 3000),
    ("voronoi k=32", VoronoiPush(8, 32), 3000),
    ("voronoi k=32", VoronoiPush(16, 32), 3000),
]


def save(section: str, rows) -> None:
    """Merge one section into the JSON (other sections may be written by other processes)."""
    with merged_json(OUT) as results:
        results[section] = rows
        results["machine"] = machine()


def _row(name, prob, n, est, pop, label) -> dict:
    return {
        "problem": name,
        "dim": prob.dim,
        "n": n,
        "w1": prob.w1,
        "estimator": label,
        "critic": est.critic_name,
        "value": est.value,
        "ci_low": est.ci_low,
        "ci_high": est.ci_high,
        "train_value": est.train_value,
        "population_value": pop,
        "population_gap": (prob.w1 - pop) / prob.w1,
        "ci_covers_population": est.ci_low <= pop <= est.ci_high,
        "p_value": est.p_value,
        "lipschitz_bound": est.lipschitz_bound,
        "steps": est.steps,
        "seconds": est.seconds,
        "monitor_values": est.monitor_values,
    }


def run_pairs(section: str, problems, pop_n: int) -> None:
    """Each problem: previous and family estimators alternated, each scored on fresh samples."""
    rows = []
    for name, prob, n in problems:
        p, q = prob.sample_p(n, 0), prob.sample_q(n, 0)
        pop_p, pop_q = prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000)
        for label, kw in ESTIMATORS.items():
            est = estimate_w1(p, q, progress=False, **kw)
            pop = est.score(pop_p, pop_q)[0]
            rows.append(_row(name, prob, n, est, pop, label))
            save(section, rows)
            gap = rows[-1]["population_gap"]
            print(
                f"{name:15s} d={prob.dim:3d} n={n} {label:8s} W1={prob.w1:.4f} "
                f"est={est.value:.4f} pop={pop:.4f} gap={gap:+.2%} "
                f"p={est.p_value:.4f} {est.critic_name} {est.seconds:.0f}s",
                flush=True,
            )


def run_insample(n: int) -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, 1, generator=g), 0.5 * torch.randn(n, 1, generator=g) + 1
    expo = torch.distributions.Exponential(1.0)
    torch.manual_seed(4)
    problems = [
        ("gauss_vs_scaled_1d", a, b),
        ("moons_vs_8gauss_2d", two_moons(n, 0), eight_gaussians(n, 1)),
        ("translation_2d", Translation(2, 1.0).sample_p(n, 2), Translation(2, 1.0).sample_q(n, 2)),
        ("gaussian_scale_8d", GaussianScale(8).sample_p(n, 3), GaussianScale(8).sample_q(n, 3)),
        ("exponential_vs_gauss_8d", expo.sample((300, 8)), torch.randn(300, 8, generator=g)),
        ("voronoi_8d", VoronoiPush(8, 16).sample_p(n, 5), VoronoiPush(8, 16).sample_q(n, 5)),
    ]
    rows = []
    for name, p, q in problems:
        exact = exact_w1(p, q)
        for label, kw in ESTIMATORS.items():
            previous = {"name": "groupsort", "eval_every": 50}
            extra = {"batch_size": len(p), "critic": previous} if label == "previous" else {}
            est = estimate_w1(p, q, holdout=0, progress=False, **{**kw, **extra})
            rows.append(
                {
                    "problem": name,
                    "dim": p.shape[1],
                    "n": len(p),
                    "estimator": label,
                    "critic": est.critic_name,
                    "value": est.value,
                    "exact_sample_w1": exact,
                    "ratio": est.value / exact,
                    "seconds": est.seconds,
                }
            )
            save("insample", rows)
            print(
                f"insample {name:24s} {label:8s} ratio={est.value / exact:.4f} "
                f"{est.critic_name} {est.seconds:.0f}s",
                flush=True,
            )


def run_seeds(section: str, seeds: int, n: int, null: bool, pop_n: int) -> None:
    prob = GaussianScale(8, 1.0, 1.0 if null else 1.5)
    pop_p, pop_q = prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000)
    rows = []
    for s in range(seeds):
        # independent draws for every seed (sample_q offsets its seed by one)
        p, q = prob.sample_p(n, 1000 * (s + 1)), prob.sample_q(n, 1000 * (s + 1) + 500)
        est = estimate_w1(p, q, seed=s, progress=False)
        pop = est.score(pop_p, pop_q)[0]
        rows.append(
            {
                "seed": s,
                "dim": 8,
                "n": n,
                "w1": prob.w1,
                "value": est.value,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "population_value": pop,
                "covers": est.ci_low <= pop <= est.ci_high,
                "p_value": est.p_value,
                "critic": est.critic_name,
                "seconds": est.seconds,
            }
        )
        save(section, rows)
        print(
            f"{section} seed={s} est={est.value:.4f} [{est.ci_low:.4f},{est.ci_high:.4f}] "
            f"pop={pop:.4f} p={est.p_value:.4f} {est.critic_name}",
            flush=True,
        )


def run_mnist(data_root: str | None) -> None:
    from wgan_lip.data.sources import load_samples

    rows = []
    for a, b in (("mnist:3", "mnist:5"), ("mnist:1", "mnist:7")):
        try:
            p, q = load_samples(a, data_root=data_root), load_samples(b, data_root=data_root)
        except Exception as e:
            print(f"mnist section skipped: {e}")
            return
        t0 = time.perf_counter()
        exact = exact_w1(p.flat(), q.flat())
        t_exact = time.perf_counter() - t0
        est = estimate_w1(p, q, progress=False)
        rows.append(
            {
                "p": a,
                "q": b,
                "n_p": p.n,
                "n_q": q.n,
                "critic": est.critic_name,
                "value": est.value,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "p_value": est.p_value,
                "seconds": est.seconds,
                "exact_sample_w1": exact,
                "exact_seconds": t_exact,
            }
        )
        save("mnist", rows)
        print(
            f"{a} vs {b}: est={est.value:.4f} [{est.ci_low:.4f},{est.ci_high:.4f}] "
            f"exact(sample)={exact:.4f} {est.seconds:.0f}s",
            flush=True,
        )


def run_speed(repeats: int) -> None:
    prob = Translation(784, 2.0)
    p, q = prob.sample_p(10_000, 0), prob.sample_q(10_000, 0)
    values: dict[str, list[float]] = {"estimate_w1": [], "pot_exact": []}
    runs = {
        "estimate_w1": lambda: estimate_w1(p, q, progress=False).value,
        "pot_exact": lambda: exact_w1(p, q),
    }
    # alternated: A, B, A, B, ...; no warm-up (every call takes seconds)
    times = alternated_times(
        {k: lambda k=k: values[k].append(runs[k]()) for k in runs}, repeats, warmup=0
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    save(
        "speed",
        {
            "problem": "translation d=784 |s|=2, 10,000 per side",
            "w1": prob.w1,
            "repeats": repeats,
            "median_seconds": med,
            "values": values,
            "times": times,
            "ratio_estimate_over_exact": med["estimate_w1"] / med["pot_exact"],
        },
    )
    print(f"speed: estimate {med['estimate_w1']:.1f}s vs POT exact {med['pot_exact']:.1f}s")


def run_threads(repeats: int) -> None:
    """2,000 x 10 translation with defaults: torch's own intra-op threads (every core) against
    the automatic choice (wgan_lip.threads), alternated, idle and beside one CPU-bound
    process; POT's exact W1 of the same samples for scale."""
    import os

    import torch

    prob = Translation(10, 0.3)
    p, q = prob.sample_p(2000, 0), prob.sample_q(2000, 0)
    cores = str(torch.get_num_threads())

    def run(threads: str | None) -> float:
        if threads is None:
            os.environ.pop("WGAN_LIP_THREADS", None)
        else:
            os.environ["WGAN_LIP_THREADS"] = threads
        try:
            return estimate_w1(p, q, progress=False, seed=0).value
        finally:
            os.environ.pop("WGAN_LIP_THREADS", None)

    rows = []
    for load in ("idle", "busy"):
        with machine_load(load):
            values: dict[str, list[float]] = {"torch_threads": [], "automatic": [], "pot": []}
            runs = {
                "torch_threads": lambda: run(cores),
                "automatic": lambda: run(None),
                "pot": lambda: exact_w1(p, q),
            }
            times = alternated_times(
                {k: lambda k=k, v=values, r=runs: v[k].append(r[k]()) for k in runs},
                repeats,
                warmup=1,
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "load": load,
                "problem": "translation d=10 |s|=0.3, 2,000 per side, defaults",
                "w1": prob.w1,
                "torch_threads": int(cores),
                "median_seconds": med,
                "times": times,
                "values": values,
            }
        )
        print(
            f"threads ({load}): torch's {cores} threads {med['torch_threads']:.1f}s, "
            f"automatic {med['automatic']:.1f}s, POT exact {med['pot']:.1f}s"
        )
    save("threads", rows)


# the default before the race (one check every 100 steps, plateau window 5 checks, every
# member trained to the end) beside today's default, and POT's exact W1 of the same samples
BEFORE_RACE = {"critic": {"race": False, "eval_every": 100, "patience": 5}}
# (name, problem, samples per side, large): a large problem runs a third of the repeats and
# no warm-up (POT alone takes a minute per call there)
TIME_PROBLEMS = [
    ("translation by 0.3 per axis", Translation(10, 0.3), 2000, False),
    ("translation by 1", Translation(2, 1.0), 2000, False),
    ("point vs sphere r=1", PointVsSphere(8, 1.0), 2000, False),
    ("N(0,1) vs N(0,4)", GaussianScale(2, 1.0, 2.0), 2000, False),
    ("translation by 2", Translation(16, 2.0), 2000, False),
    ("kinked potential, 16 centres", VoronoiPush(8, 16), 2000, False),
    ("translation by 2", Translation(784, 2.0), 10_000, True),
]

TIME_CALLS = {
    "before": lambda p, q: estimate_w1(p, q, progress=False, **BEFORE_RACE),
    "now": lambda p, q: estimate_w1(p, q, progress=False),
    "pot": exact_w1,
}


def run_time(pop_n: int, repeats: int) -> None:
    """Time and error per problem: the default before the race and today's default,
    alternated with POT's exact W1 of the same samples (one warm-up call each, then the
    median of ``repeats``), each estimate's returned critic scored on fresh samples; then
    ``make demo`` idle and beside one CPU-bound process."""
    import os
    import subprocess
    import sys

    rows = []
    for name, prob, n, large in TIME_PROBLEMS:
        rounds = max(1, repeats // 3) if large else repeats
        p, q = prob.sample_p(n, 0), prob.sample_q(n, 0)
        pop_p, pop_q = prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000)
        ests: dict[str, object] = {}
        runs = {
            k: lambda k=k, p=p, q=q, ests=ests: ests.__setitem__(k, TIME_CALLS[k](p, q))
            for k in TIME_CALLS
        }
        times = alternated_times(runs, rounds, warmup=0 if large else 1)
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {
            "problem": name,
            "dim": prob.dim,
            "n": n,
            "w1": prob.w1,
            "repeats": rounds,
            "warmup": 0 if large else 1,
            "median_seconds": med,
            "times": times,
            "pot_value": ests["pot"],
        }
        for label in ("before", "now"):
            est = ests[label]
            pop = est.score(pop_p, pop_q)[0]
            row[label] = {
                "value": est.value,
                "ci_low": est.ci_low,
                "ci_high": est.ci_high,
                "population_value": pop,
                "population_gap": (prob.w1 - pop) / prob.w1,
                "critic": est.critic_name,
                "stopped": est.stopped,
                "steps": est.steps,
            }
        rows.append(row)
        save("time", {"problems": rows})
        print(
            f"time {name} d={prob.dim} n={n}: before {med['before']:.1f}s "
            f"({row['before']['population_gap']:+.2%}), now {med['now']:.1f}s "
            f"({row['now']['population_gap']:+.2%}, {row['now']['stopped']}), "
            f"POT {med['pot']:.1f}s",
            flush=True,
        )
    demo = Path(__file__).resolve().parent / "demo_w1.py"
    env = {k: v for k, v in os.environ.items() if k != "WGAN_LIP_DATA"}  # the embedded default
    demo_rows = []
    for load in ("idle", "busy"):
        with machine_load(load):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, str(demo)], env=env, check=True, capture_output=True)
            demo_rows.append({"load": load, "seconds": time.perf_counter() - t0})
        print(f"time demo ({load}): {demo_rows[-1]['seconds']:.0f}s", flush=True)
    save("time", {"problems": rows, "demo": demo_rows})


FUNNEL_DIMS = (2, 8, 16, 32, 64, 128)
FUNNEL_COUNTS = (4, 16, 64)
FUNNEL_N = 20_000


def run_funnel(
    mode: str, pop_n: int, dims, counts, family=None, max_time: float | None = None
) -> None:
    """Today's default on each (D, N) instance of the min-of-funnels benchmark (or, a probe,
    another ``family`` under a ``max_time`` budget in seconds, in its own JSON section)."""
    import datetime as dt

    from wgan_lip.data import VoronoiPush

    probe = family is not None or max_time is not None
    section = f"funnel_{mode}" + ("_probe" if probe else "")
    kw: dict = {}
    if family:
        kw["critic"] = {"family": list(family)}
    if max_time:
        kw["trainer"] = {"max_time": dt.timedelta(seconds=max_time)}
    rows = []
    for d in dims:
        for k in counts:
            prob = VoronoiPush(d, k, mc_samples=200_000)
            if mode == "finite":
                p, q = prob.sample_p(FUNNEL_N, 0), prob.sample_q(FUNNEL_N, 0)
            else:  # fresh draws for every batch, check and held-out set
                p = lambda n, prob=prob: prob.sample_p(n)  # noqa: E731
                q = lambda n, prob=prob: prob.sample_q(n)  # noqa: E731
            est = estimate_w1(p, q, progress=False, **kw)
            pop = est.score(prob.sample_p(pop_n, 10_000), prob.sample_q(pop_n, 10_000))[0]
            rows.append(
                {
                    "mode": mode,
                    "family": list(family) if family else "default",
                    "max_time_s": max_time,
                    "dim": d,
                    "funnels": k,
                    "n": FUNNEL_N if mode == "finite" else None,
                    "w1": prob.w1,
                    "w1_stderr": prob.w1_stderr,
                    "estimator": "family",
                    "monitor_values": est.monitor_values,
                    "critic": est.critic_name,
                    "value": est.value,
                    "ci_low": est.ci_low,
                    "ci_high": est.ci_high,
                    "population_value": pop,
                    "error": (pop - prob.w1) / prob.w1,
                    "steps": est.steps,
                    "stopped": est.stopped,
                    "seconds": est.seconds,
                }
            )
            save(section, rows)
            r = rows[-1]
            print(
                f"funnel {mode} D={d:3d} N={k:2d}: W1={prob.w1:.4f} pop={pop:.4f} "
                f"error={r['error']:+.2%} {est.critic_name} {est.steps} steps "
                f"({est.stopped}) {est.seconds:.0f}s",
                flush=True,
            )


def _pairs(rows):
    by = {}
    for r in rows:
        by.setdefault((r["problem"], r["dim"], r["n"]), {})[r["estimator"]] = r
    return by


def print_tables(results: dict) -> None:
    """The README tables, from the JSON."""
    for section in ("known", "highdim"):
        rows = results.get(section, [])
        if not rows:
            continue
        print(
            "\n| problem | d | n per side | exact W1 | estimator (winner) | estimate [95% CI] | "
            "population gap | p-value | time | time ratio |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for (name, d, n), pair in _pairs(rows).items():
            base = pair.get("previous")
            for label in ("previous", "family"):
                r = pair.get(label)
                if r is None:
                    continue
                ratio = (
                    f"{r['seconds'] / base['seconds']:.2f}x" if base and label == "family" else ""
                )
                print(
                    f"| {name} | {d} | {n} | {r['w1']:.4f} | {label} ({r['critic']}) | "
                    f"{r['value']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}] | "
                    f"{r['population_gap'] * 100:+.2f}% | {r['p_value']:.4f} | "
                    f"{r['seconds']:.0f} s | {ratio} |"
                )
        for label in ("previous", "family"):
            gaps = [abs(r["population_gap"]) for r in rows if r["estimator"] == label]
            ratios = [
                pair["family"]["seconds"] / pair["previous"]["seconds"]
                for pair in _pairs(rows).values()
                if len(pair) == 2
            ]
            print(
                f"\n{section} {label}: population gap median {statistics.median(gaps):.2%}, "
                f"worst {max(gaps):.2%} over {len(gaps)} problems"
                + (
                    f"; time ratio family/previous median {statistics.median(ratios):.2f}x, "
                    f"worst {max(ratios):.2f}x"
                    if label == "family" and ratios
                    else ""
                )
            )
    if results.get("insample"):
        print("\n| in-sample problem | d | n | estimator (winner) | value / exact POT |")
        print("|---|---|---|---|---|")
        for r in results["insample"]:
            print(
                f"| {r['problem']} | {r['dim']} | {r['n']} | {r['estimator']} ({r['critic']}) | "
                f"{r['ratio']:.4f} |"
            )
    if results.get("threads"):
        print(
            "\n| machine load | torch's threads | automatic threads | POT exact W1 | "
            "estimate (both) |"
        )
        print("|---|---|---|---|---|")
        for r in results["threads"]:
            med = r["median_seconds"]
            print(
                f"| {r['load']} | {med['torch_threads']:.1f} s ({r['torch_threads']}) | "
                f"{med['automatic']:.1f} s | {med['pot']:.1f} s | "
                f"{r['values']['automatic'][0]:.4f} (W1 {r['w1']:.4f}) |"
            )
    for mode in ("finite", "sampler", "finite_probe", "sampler_probe"):
        rows = results.get(f"funnel_{mode}")
        if not rows:
            continue
        if mode.endswith("probe"):
            r = rows[0]
            print(f"\nprobe: family {r['family']}, budget {r['max_time_s']} s per estimate")
        print(
            f"\n| funnels ({mode}) | D | N | exact W1 | population error | winner | steps "
            "(stop) | time |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {mode} | {r['dim']} | {r['funnels']} | {r['w1']:.4f} | {r['error']:+.2%} | "
                f"{r['critic']} | {r['steps']} ({r['stopped']}) | {r['seconds']:.0f} s |"
            )
        errors = [abs(r["error"]) for r in rows]
        print(
            f"\nfunnel {mode}: |error| median {statistics.median(errors):.2%}, worst "
            f"{max(errors):.2%} over {len(rows)} instances"
        )
    if results.get("time"):
        print(
            "\n| problem | d | n per side | exact W1 | before the race: time, error (winner) | "
            "now: time, error (winner, stopped) | POT exact W1 of the samples | now / POT |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in results["time"]["problems"]:
            med, b, w = r["median_seconds"], r["before"], r["now"]
            print(
                f"| {r['problem']} | {r['dim']} | {r['n']:,} | {r['w1']:.4f} | "
                f"{med['before']:.1f} s, {b['population_gap']:+.2%} ({b['critic']}) | "
                f"{med['now']:.1f} s, {w['population_gap']:+.2%} ({w['critic']}, "
                f"{w['stopped']}) | {med['pot']:.1f} s | {med['now'] / med['pot']:.2f}x |"
            )
        for d in results["time"].get("demo", []):
            print(f"\n`make demo` ({d['load']} machine): {d['seconds']:.0f} s")
    for section, what in (("coverage", "CI covers the population value"), ("null", "p < 0.1")):
        rows = results.get(section)
        if rows:
            hits = (
                sum(r["covers"] for r in rows)
                if section == "coverage"
                else sum(r["p_value"] < 0.1 for r in rows)
            )
            print(
                f"\n{section}: {what} on {hits} of {len(rows)} seeds "
                f"(GaussianScale d=8, n={rows[0]['n']} per side, W1={rows[0]['w1']:.4f})"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sections",
        nargs="+",
        default=["known", "insample", "highdim", "coverage", "null", "mnist", "speed"],
    )
    ap.add_argument("--data-root", default=None)
    ap.add_argument(
        "--repeats", type=int, default=10, help="timed rounds of speed, threads and time"
    )
    ap.add_argument("--population", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--funnel-mode", choices=["finite", "sampler"], default="finite")
    ap.add_argument("--funnel-dims", type=int, nargs="+", default=list(FUNNEL_DIMS))
    ap.add_argument("--funnel-counts", type=int, nargs="+", default=list(FUNNEL_COUNTS))
    ap.add_argument("--funnel-family", nargs="+", help="a probe: these members (own section)")
    ap.add_argument("--funnel-max-time", type=float, help="a probe: seconds per estimate")
    ap.add_argument("--tables", action="store_true", help="only print the tables of the JSON")
    args = ap.parse_args()
    if args.tables:
        print_tables(json.loads(OUT.read_text()))
        return
    if "known" in args.sections:
        run_pairs("known", KNOWN, args.population)
    if "insample" in args.sections:
        run_insample(500)
    if "highdim" in args.sections:
        run_pairs(
            "highdim",
            [
                ("translation", Translation(128, 1.0), 20_000),
                ("translation", Translation(784, 1.0), 10_000),
            ],
            args.population,
        )
    if "coverage" in args.sections:
        run_seeds("coverage", args.seeds, 1000, null=False, pop_n=args.population)
    if "null" in args.sections:
        run_seeds("null", args.seeds, 1000, null=True, pop_n=args.population)
    if "mnist" in args.sections:
        run_mnist(args.data_root)
    if "speed" in args.sections:
        run_speed(args.repeats)
    if "threads" in args.sections:
        run_threads(args.repeats)
    if "time" in args.sections:
        run_time(args.population, args.repeats)
    if "funnel" in args.sections:
        run_funnel(
            args.funnel_mode,
            args.population,
            args.funnel_dims,
            args.funnel_counts,
            args.funnel_family,
            args.funnel_max_time,
        )
    print_tables(json.loads(OUT.read_text()))


if __name__ == "__main__":
    main()
