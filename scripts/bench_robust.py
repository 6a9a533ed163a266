"""Certified robustness on MNIST: wgan_lip's FC-3 and BCOP models against deel-torchlip's.

    python scripts/bench_robust.py --models ours-fc3 deel-fc3 --minutes 30   # one process each
    python scripts/bench_robust.py --tables                                  # merge + README table

Each model trains for the same wall-clock budget (evaluation excluded) with the same loop:
Adam 1e-3, batch 128, a hinge margin of sqrt(2) * eps_train (ours: multi-class hinge on the
label margin, Li et al.; deel-torchlip: its HingeMulticlassLoss with min_margin sqrt(2) *
eps_train, the loss that library ships). Then, on the MNIST test set: clean accuracy and
certified accuracy at L2 eps = 0.3, 1.0, 1.58 on all 10,000 images, with L =
``lipschitz_bound`` of the trained weights (deel-torchlip models are exported to plain layers
first), and PGD-attacked accuracy on the first ``--attack-n`` images; ``violations`` counts
examples certified yet broken by the attack (must be 0).

Models (CPU-sized, as configs/robust/*_cpu.yaml):
- ours-fc3:  Flatten, 3 x BjorckLinear(1024) + MaxMin, BjorckLinear(10)
- deel-fc3:  Flatten, 3 x SpectralLinear(1024) + GroupSort2, SpectralLinear(10)
- ours-bcop: BCOP 3x3 (16) + MaxMin, downsample, BCOP (32) + MaxMin, downsample, Björck 256, 10
- deel-bcop: the same with SpectralConv2d, GroupSort2, InvertibleDownSampling, SpectralLinear

Two processes can run side by side (``--threads 1`` each): run the pair to compare together,
so both see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from bench_layers import machine

from wgan_lip.layers import lipschitz_bound, register_lipschitz_bound
from wgan_lip.models import lipschitz_convnet, lipschitz_mlp
from wgan_lip.robust import certify, multiclass_hinge
from wgan_lip.robust.data import load_split

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "robust.json"
PARTS = ROOT / "benchmarks" / "robust"
MODELS = ("ours-fc3", "deel-fc3", "ours-bcop", "deel-bcop")
EPS = [0.3, 1.0, 1.58]
# Published 200-epoch GPU results (Li et al. 2019, Table 2): clean, certified at 0.3 / 1.58.
PUBLISHED = {
    "FC-3 (Anil et al.)": (98.71, 97.06, 54.46),
    "BCOP-Large (Li et al.)": (98.77, None, 56.66),
}


def deel_model(kind: str) -> nn.Module:
    import deel.torchlip as tl

    if kind == "fc3":
        return tl.Sequential(
            nn.Flatten(),
            tl.SpectralLinear(784, 1024), tl.GroupSort2(),
            tl.SpectralLinear(1024, 1024), tl.GroupSort2(),
            tl.SpectralLinear(1024, 1024), tl.GroupSort2(),
            tl.SpectralLinear(1024, 10),
        )  # fmt: skip
    return tl.Sequential(
        tl.SpectralConv2d(1, 16, 3, padding=1), tl.GroupSort2(), tl.InvertibleDownSampling(2),
        tl.SpectralConv2d(64, 32, 3, padding=1), tl.GroupSort2(), tl.InvertibleDownSampling(2),
        nn.Flatten(), tl.SpectralLinear(128 * 7 * 7, 256), tl.GroupSort2(),
        tl.SpectralLinear(256, 10),
    )  # fmt: skip


def our_model(kind: str) -> nn.Module:
    if kind == "fc3":
        return nn.Sequential(nn.Flatten(), *lipschitz_mlp(784, (1024, 1024, 1024), 10,
                                                          activation="maxmin"))  # fmt: skip
    return lipschitz_convnet(1, 28, (16, 32), 10, head_widths=(256,))


def build(name: str) -> tuple[nn.Module, callable]:
    lib, kind = name.split("-")
    eps_margin = math.sqrt(2) * 1.0  # eps_train = 1.0, as in configs/robust
    if lib == "ours":
        return our_model(kind), lambda logits, y: multiclass_hinge(logits, y, 1.0)
    import deel.torchlip as tl

    loss = tl.HingeMulticlassLoss(min_margin=eps_margin)
    return deel_model(kind), lambda logits, y: loss(logits, nn.functional.one_hot(y, 10).float())


def certifiable(name: str, model: nn.Module) -> nn.Module:
    """The model as plain layers whose bound ``lipschitz_bound`` can compute."""
    if name.startswith("ours"):
        return model.eval()
    import deel.torchlip as tl

    for cls in (tl.GroupSort, tl.GroupSort2, tl.MaxMin):  # sorting within groups: 1-Lipschitz
        register_lipschitz_bound(cls)(lambda m: 1.0)
    return tl.vanilla_model(model.eval(), in_place=False)


def run(name: str, seconds: float, attack_n: int, data_root: str | None, seed: int) -> dict:
    train, test = load_split("mnist", "train", data_root), load_split("mnist", "test", data_root)
    torch.manual_seed(seed)
    model, loss_fn = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    elapsed, steps = 0.0, 0
    model.train()
    while elapsed < seconds:
        perm = torch.randperm(len(train.labels), generator=gen)
        for s in range(0, len(perm) - 127, 128):
            t0 = time.perf_counter()
            idx = perm[s : s + 128]
            loss = loss_fn(model(train.images[idx]), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            elapsed += time.perf_counter() - t0
            steps += 1
            if elapsed >= seconds:
                break
    plain = certifiable(name, model)
    t0 = time.perf_counter()
    full = certify(plain, test.images, test.labels, EPS, attack=None)
    attacked = certify(plain, test.images[:attack_n], test.labels[:attack_n], EPS,
                       attack="pgd", attack_steps=50, attack_restarts=3)  # fmt: skip
    return {
        "model": name, "train_seconds": elapsed, "steps": steps,
        "epochs": steps * 128 / len(train.labels), "lipschitz_bound": full.lipschitz_bound,
        "clean": full.clean,
        "certified": {f"{r.eps:g}": r.certified for r in full.radii},
        "attack_n": attack_n, "attack_clean": attacked.clean,
        "attack_certified": {f"{r.eps:g}": r.certified for r in attacked.radii},
        "attacked": {f"{r.eps:g}": r.attacked for r in attacked.radii},
        "violations": attacked.violations, "eval_seconds": time.perf_counter() - t0,
        "bound_check": abs(full.lipschitz_bound - lipschitz_bound(plain)) < 1e-9,
        "machine": machine(),
    }  # fmt: skip


def tables(results: list[dict]) -> str:
    n = results[0]["attack_n"] if results else 0
    lines = [
        "| model | train time | steps | clean | certified 0.3 | certified 1.0 | certified 1.58 "
        f"| first {n}: clean | certified 1.58 | PGD 0.3 | PGD 1.0 | PGD 1.58 | violations | L |",
        "|---" * 14 + "|",
    ]
    for r in results:
        c, a = r["certified"], r["attacked"]
        full = " | ".join(f"{100 * c[e]:.2f}" for e in ("0.3", "1", "1.58"))
        pgd = " | ".join(f"{100 * a[e]:.1f}" for e in ("0.3", "1", "1.58"))
        lines.append(
            f"| {r['model']} | {r['train_seconds'] / 60:.0f} min | {r['steps']:,} | "
            f"{100 * r['clean']:.2f} | {full} | {100 * r['attack_clean']:.1f} | "
            f"{100 * r['attack_certified']['1.58']:.1f} | {pgd} | {r['violations']} | "
            f"{r['lipschitz_bound']:.6f} |"
        )
    published = "; ".join(f"{k} {v[0]}% clean, {v[2]}% certified at 1.58"
                          for k, v in PUBLISHED.items())  # fmt: skip
    lines += ["", f"Published, 200 epochs on a GPU (Li et al. 2019): {published}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--attack-n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    parser.add_argument("--tables", action="store_true", help="merge the parts, print the table")
    args = parser.parse_args()
    if args.tables:
        results = [json.loads((PARTS / f"{m}.json").read_text()) for m in MODELS
                   if (PARTS / f"{m}.json").is_file()]  # fmt: skip
        OUT.write_text(json.dumps({"results": results, "published": PUBLISHED}, indent=1))
        print(tables(results))
        return
    torch.set_num_threads(args.threads)
    PARTS.mkdir(parents=True, exist_ok=True)
    for name in args.models:
        result = run(name, 60 * args.minutes, args.attack_n, args.data_root, args.seed)
        (PARTS / f"{name}.json").write_text(json.dumps(result, indent=1))
        print(tables([result]).split("\n\n")[0], flush=True)


if __name__ == "__main__":
    main()
