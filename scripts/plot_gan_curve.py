"""The certified W1 of a WGAN run beside its classifier-FID, over generator steps.

    python scripts/plot_gan_curve.py runs/gan/mnist_cpu_hard --out benchmarks/gan/curve.png

Reads the ``metrics.csv`` of a run's CSV logger (the newest ``version_*`` under the run
folder, or the file given) and plots, against ``val/generator_step``:
- ``val/estimate_w1`` with its 95% interval: a fresh GroupSort critic's certified lower bound
  on W1(generated, held-out real), trained at every validation;
- ``val/critic_w1_certified``: the training critic's own dual value divided by its Lipschitz
  bound (also a certified lower bound, hard critics only);
- ``val/classifier_fid`` on a second axis.
Also writes the numbers as JSON beside the PNG.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from wgan_lip.jsonio import write_json_strict

KEYS = (
    "val/estimate_w1",
    "val/estimate_w1_ci_low",
    "val/estimate_w1_ci_high",
    "val/critic_w1_certified",
    "val/classifier_fid",
    "val/confident",
    "val/exact_w1",
)


def find_metrics(path: Path) -> Path:
    """``path`` itself, or the newest ``metrics.csv`` below it."""
    if path.is_file():
        return path
    found = sorted(path.rglob("metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"plot_gan_curve: no metrics.csv under {path} (run with a CSVLogger)")
    return found[-1]


def read_curve(path: Path) -> list[dict[str, float]]:
    """One point per validation: the generator step and the metrics of KEYS it logged."""
    points: dict[float, dict[str, float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            step = row.get("val/generator_step")
            if not step:
                continue
            point = points.setdefault(float(step), {"generator_step": float(step)})
            point.update({k: float(row[k]) for k in KEYS if row.get(k)})
    return [points[k] for k in sorted(points)]


def plot(curve: list[dict[str, float]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [p["generator_step"] for p in curve]
    fig, ax = plt.subplots(figsize=(7, 4))
    est = [p for p in curve if "val/estimate_w1" in p]
    if est:
        xs = [p["generator_step"] for p in est]
        ax.plot(
            xs,
            [p["val/estimate_w1"] for p in est],
            "o-",
            color="C0",
            label="certified W1 (fresh critic, estimate_w1)",
        )
        low = [p["val/estimate_w1_ci_low"] for p in est]
        high = [p["val/estimate_w1_ci_high"] for p in est]
        ax.fill_between(xs, low, high, color="C0", alpha=0.2)
    own = [p for p in curve if "val/critic_w1_certified" in p]
    if own:
        ax.plot(
            [p["generator_step"] for p in own],
            [p["val/critic_w1_certified"] for p in own],
            "s--",
            color="C2",
            label="certified W1 (training critic / its bound)",
        )
    ax.set_xlabel("generator step")
    ax.set_ylabel("W1 lower bound (pixels, L2)")
    ax.set_ylim(bottom=0)
    fid = [p for p in curve if "val/classifier_fid" in p]
    if fid:
        ax2 = ax.twinx()
        ax2.plot(
            [p["generator_step"] for p in fid],
            [p["val/classifier_fid"] for p in fid],
            "^-",
            color="C3",
            label="classifier-FID",
        )
        ax2.set_ylabel("classifier-FID", color="C3")
        ax2.set_yscale("log")
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
        ax.legend(lines, labels, loc="upper right", fontsize=8)
    else:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(0, max(x) if x else 1)
    ax.set_title(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="run folder or metrics.csv")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    if not args.run.exists():
        print(f"plot_gan_curve: {args.run} does not exist", file=sys.stderr)
        return 2
    metrics = find_metrics(args.run)
    curve = read_curve(metrics)
    if not curve:
        print(
            f"plot_gan_curve: {metrics} has no validation points (val/generator_step)",
            file=sys.stderr,
        )
        return 2
    plot(curve, args.out, args.title or args.run.name)
    write_json_strict(args.out.with_suffix(".json"), curve)
    print(f"wrote {args.out} ({len(curve)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
