"""MNIST WGAN settings sweep for the hard critic: recognizability at equal training time.

    python scripts/bench_gan_mnist_sweep.py --tag small --gen 16 --widths 256 256 256
    python scripts/bench_gan_mnist_sweep.py --tag small_nc1 --gen 16 --widths 256 256 256 \
        --n-critic 1
    python scripts/bench_gan_mnist_sweep.py --tables      # the README table from the JSON

One trial per call: a Björck-MLP hard critic on the 784 pixels and a DCGAN-style generator
train for ``--minutes`` of training time (the evaluations pause the clock) in a plain torch
loop, the same steps as ``wgan_lip.gan.WGAN`` (KR dual, ``after_step`` retraction, a moving
average of the generator with the module's warm-up). At ``--evals`` evenly spaced times it
reports the share of 10,000 samples the feature net classifies with probability above 0.9
(``confident_classes``), for the raw generator and for moving averages of several decays.
Run trials one per core (``OMP_NUM_THREADS=1``); results merge into
benchmarks/gan/mnist_sweep.json under ``--tag``.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from wgan_lip.constraints import get_constraint
from wgan_lip.errors import InputError
from wgan_lip.gan import GANArchitecture, ImageDataModule, confident_classes, generate
from wgan_lip.gan.features import load_feature_net

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "gan" / "mnist_sweep.json"
SHAPE = (1, 28, 28)
# whether this version's image generators run channels-last (their conv weights say)
CHANNELS_LAST = all(
    m.weight.is_contiguous(memory_format=torch.channels_last)
    for m in GANArchitecture().build_generator(SHAPE).modules()
    if isinstance(m, torch.nn.modules.conv._ConvNd)
)


def lr_factor(schedule: str, fraction: float) -> float:
    """The learning-rate multiplier at ``fraction`` of the training time."""
    return {"constant": 1.0, "linear": 1.0 - fraction,
            "cosine": 0.5 * (1.0 + math.cos(math.pi * fraction))}[schedule]  # fmt: skip


def trial(args: argparse.Namespace, images: torch.Tensor, feature_net) -> list[dict]:
    """Train one setting for ``args.minutes`` of training time; the evaluation rows."""
    torch.manual_seed(args.seed)
    arch = GANArchitecture(latent_dim=args.latent, image_critic="mlp",
                           critic_widths=tuple(args.widths), group_size=args.group,
                           generator_base_channels=args.gen)  # fmt: skip
    generator, critic = arch.build_generator(SHAPE), arch.build_critic("hard", SHAPE)
    constraint = get_constraint("hard")
    betas = (args.beta1, 0.9)
    opt_c = torch.optim.Adam(critic.parameters(), args.lr_critic, betas=betas)
    opt_g = torch.optim.Adam(generator.parameters(), args.lr_generator, betas=betas)
    averages = {d: copy.deepcopy(generator) for d in args.ema}
    budget = args.minutes * 60.0
    eval_at = [budget * (i + 1) / args.evals for i in range(args.evals)]
    draw = torch.Generator().manual_seed(args.seed + 1)
    n, trained, critic_steps, generator_steps, rows = args.batch, 0.0, 0, 0, []
    while trained < budget:
        start = time.perf_counter()
        factor = lr_factor(args.schedule, trained / budget)
        for opt, lr in ((opt_c, args.lr_critic), (opt_g, args.lr_generator)):
            for group in opt.param_groups:
                group["lr"] = lr * factor
        real = images[torch.randint(len(images), (n,), generator=draw)]
        with torch.no_grad():
            fake = generator(torch.randn(n, args.latent))
        scores = critic(torch.cat([real, fake]))
        loss_c = scores[n:].mean() - scores[:n].mean()
        opt_c.zero_grad(set_to_none=True)
        loss_c.backward()
        opt_c.step()
        constraint.after_step(critic, None)
        critic_steps += 1
        if critic_steps % args.n_critic == 0:
            loss_g = -critic(generator(torch.randn(n, args.latent))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            generator_steps += 1
            with torch.no_grad():  # the module's moving average, warm-up included
                for decay, average in averages.items():
                    d = min(decay, (1 + generator_steps) / (10 + generator_steps))
                    torch._foreach_lerp_(list(average.parameters()),
                                         list(generator.parameters()), 1.0 - d)  # fmt: skip
                    for b_avg, b in zip(average.buffers(), generator.buffers(), strict=True):
                        b_avg.copy_(b)
        trained += time.perf_counter() - start
        if eval_at and trained >= eval_at[0]:
            eval_at.pop(0)
            row = {"minutes": round(trained / 60, 2), "generator_steps": generator_steps,
                   "critic_dual": round(-float(loss_c.detach()), 4)}  # fmt: skip
            for name, net in [("raw", generator), *((f"ema_{d}", a) for d, a in averages.items())]:
                classes = confident_classes(generate(net, 10_000, args.latent, seed=0), feature_net)
                row[f"confident_{name}"] = round(classes["confident"], 4)
                row[f"min_class_share_{name}"] = round(classes["min_class_share"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def tables() -> str:
    """The README table: one row per trial, the last evaluation."""
    results = json.loads(OUT.read_text())
    lines = ["| trial | critic widths | generator channels | n_critic | lr | schedule | "
             "generator steps | confident (EMA 0.999) | smallest class |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for tag, r in results.items():
        a, last = r["settings"], r["rows"][-1]
        lines.append(
            f"| {tag} | {a['widths']} | {a['gen']} | {a['n_critic']} | "
            f"{a['lr_critic']:g} / {a['lr_generator']:g} | {a['schedule']} | "
            f"{last['generator_steps']:,} | {last['confident_ema_0.999']:.3f} | "
            f"{last['min_class_share_ema_0.999']:.3f} |"
        )
    minutes = {r["settings"]["minutes"] for r in results.values()}
    return (f"{', '.join(f'{m:g}' for m in sorted(minutes))} minutes of training each, "
            "one thread, 10,000 samples:\n\n" + "\n".join(lines))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tag", help="name of the trial in the JSON")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--evals", type=int, default=4)
    p.add_argument("--widths", type=int, nargs="+", default=[512, 512, 512])
    p.add_argument("--gen", type=int, default=32, help="generator base channels")
    p.add_argument("--group", type=int, default=2)
    p.add_argument("--n-critic", type=int, default=2)
    p.add_argument("--lr-critic", type=float, default=5e-4)
    p.add_argument("--lr-generator", type=float, default=5e-4)
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--schedule", choices=["constant", "linear", "cosine"], default="constant")
    # the moving average's warm-up keeps every decay at (1+s)/(10+s) < 0.999 for the first
    # ~9,000 generator steps, so longer decays only differ in longer trials
    p.add_argument("--ema", type=float, nargs="+", default=[0.999])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feature-net", default=str(ROOT / "runs/feature_nets/mnist.pt"))
    p.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    p.add_argument("--tables", action="store_true", help="print the README table and exit")
    args = p.parse_args(argv)
    try:
        if args.tables:
            print(tables())
            return 0
        if not args.tag:
            raise InputError("--tag is required to run a trial")
        if args.minutes <= 0 or args.evals < 1 or args.n_critic < 1 or 0.999 not in args.ema:
            raise InputError("need --minutes > 0, --evals >= 1, --n-critic >= 1 and 0.999 in --ema")
        if not Path(args.feature_net).is_file():
            raise InputError(f"no feature net at {args.feature_net}: run "
                             "scripts/train_feature_net.py --dataset mnist --out it")  # fmt: skip
        data = ImageDataModule("mnist", data_root=args.data_root)
        data.load()
        feature_net, _ = load_feature_net(args.feature_net)
    except InputError as e:
        print(f"bench_gan_mnist_sweep: error: {e}", file=sys.stderr)
        return 2
    rows = trial(args, data.train_set, feature_net)
    settings = {k: v for k, v in vars(args).items() if k not in ("tag", "tables", "data_root")}
    net = Path(args.feature_net).resolve()
    settings["feature_net"] = str(net.relative_to(ROOT) if net.is_relative_to(ROOT) else net)
    # the first trials of the JSON ran before the generators went channels-last (False)
    settings["channels_last_generator"] = CHANNELS_LAST
    entry = {"settings": settings, "threads": torch.get_num_threads(), "rows": rows}
    lock_path = Path(tempfile.gettempdir()) / "wgan_lip_mnist_sweep.lock"
    with open(lock_path, "w") as lock:  # trials run side by side: one writer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        results[args.tag] = entry
        tmp = OUT.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
