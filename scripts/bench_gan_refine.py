"""Critic-guided sampling on trained WGAN checkpoints: what N latent-DOT steps buy and cost.

    python scripts/bench_gan_refine.py RUN/checkpoints/last.ckpt [MORE.ckpt ...] \\
        --data-root ../shared/data --steps 0 5 10 15 20 30 --out benchmarks/gan/mnist_refine.json
    python scripts/bench_gan_refine.py --tables --out benchmarks/gan/mnist_refine.json

For every checkpoint and every step count, the same ``--n`` latents (seed ``--seed``; the
settings were chosen on seed 12345, the evaluation seed of the runs is 0) are refined with
the run's critic (:func:`wgan_lip.gan.refine_latents`, rate ``--lr``) and scored against the
real test images: the share the feature net classifies with probability above 0.9 and the
smallest class share (recognizability and mode coverage), classifier-FID (all ``--n``) and
exact W1 on 2,000 of each (whether the samples drifted from the data), and the seconds the
refinement took (with drawing the latents, estimating ``k_eff`` and decoding). Step count
0 is the plain generator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from eval_gan_samples import load_checkpoint, sample_scores  # this folder's script

from wgan_lip.errors import InputError
from wgan_lip.gan import (
    WGAN,
    ImageDataModule,
)
from wgan_lip.gan.features import load_feature_net
from wgan_lip.gan.refine import DEFAULT_REFINE_LR
from wgan_lip.jsonio import dumps_strict
from wgan_lip.paths import save_atomic


def score(module: WGAN, steps: int, n: int, real, feature_net) -> dict:
    start = time.perf_counter()
    fake = module.generate(n, refine_steps=steps)
    seconds = time.perf_counter() - start
    scores = sample_scores(fake, real, feature_net)
    keys = ("confident", "min_class_share", "classifier_fid", "exact_w1")
    return {"refine_steps": steps, **{k: scores[k] for k in keys}, "seconds": seconds}


def tables(rows: list[dict]) -> str:
    head = (
        "| run | generator steps | refine steps | confident | smallest class | "
        "classifier-FID | exact W1 | seconds |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['generator_steps']:,} | {r['refine_steps']} | "
            f"{r['confident']:.3f} | {r['min_class_share']:.3f} | {r['classifier_fid']:.2f} | "
            f"{r['exact_w1']:.3f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="*", help="WGAN checkpoints (.ckpt) of image runs")
    p.add_argument("--steps", type=int, nargs="+", default=[0, 5, 10, 15, 20, 30])
    p.add_argument("--lr", type=float, default=DEFAULT_REFINE_LR, help="refine_lr of every trial")
    p.add_argument("--n", type=int, default=10_000, help="samples per trial (and real images)")
    p.add_argument("--seed", type=int, default=0, help="latent seed of the samples")
    p.add_argument("--feature-net", default="runs/feature_nets/mnist.pt")
    p.add_argument("--dataset", default="mnist", help="the real images' dataset (test split)")
    p.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    p.add_argument("--out", default="benchmarks/gan/mnist_refine.json")
    p.add_argument("--tables", action="store_true", help="print the table of --out and exit")
    args = p.parse_args(argv)
    try:
        if args.tables:
            if not Path(args.out).is_file():
                raise InputError(f"no such file: {args.out}; run the benchmark first")
            try:
                print(tables(json.loads(Path(args.out).read_text())["rows"]))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{args.out} is not this benchmark's JSON ({e!r})") from None
            return 0
        if not args.checkpoints:
            raise InputError("give at least one checkpoint (or --tables)")
        if args.n < 2 or any(s < 0 for s in args.steps) or not args.lr > 0:
            raise InputError("--n must be >= 2, --steps >= 0 and --lr > 0")
        if not Path(args.feature_net).is_file():
            raise InputError(f"no such file: {args.feature_net}")
        if not Path(args.out).parent.is_dir():
            raise InputError(f"no such folder for {args.out}: create it first")
        feature_net, _ = load_feature_net(args.feature_net)
        real = ImageDataModule(args.dataset, data_root=args.data_root, n_val=args.n)
        real.load()
        modules = {
            path: load_checkpoint(path, eval_seed=args.seed, refine_lr=args.lr)
            for path in args.checkpoints
        }
    except InputError as e:
        print(f"bench_gan_refine: error: {e}", file=sys.stderr)
        return 2
    rows = []
    for path, module in modules.items():
        run = Path(path).parent.parent.name if Path(path).parent.name == "checkpoints" else path
        for steps in args.steps:
            row = {
                "run": run,
                "generator_steps": int(module.generator_step),
                **score(module, steps, args.n, real.val_set, feature_net),
            }
            rows.append(row)
            print(tables([row]).splitlines()[-1], flush=True)
    result = {
        "n": args.n,
        "seed": args.seed,
        "lr": args.lr,
        "dataset": args.dataset,
        "checkpoints": list(args.checkpoints),
        "rows": rows,
    }
    text = dumps_strict(result, indent=1) + "\n"
    save_atomic(lambda tmp: Path(tmp).write_text(text), args.out)
    print(tables(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
