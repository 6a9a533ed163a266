"""Certified robustness at equal wall-clock: wgan_lip's models against deel-torchlip's and
orthogonium's, on MNIST or the CIFAR-10 subset.

    python scripts/bench_robust.py --models ours-sll orth-sll --minutes 30   # one process each
    python scripts/bench_robust.py --models ours-sll --loss hkr --eps-train 1.5  # a setting
    python scripts/bench_robust.py --dataset cifar10-subset --models ours-sll orth-aoc
    python scripts/bench_robust.py --tables                  # merge the parts + README tables

Each model trains for the same wall-clock budget (evaluation excluded) with the same loop:
Adam (``--lr``, constant or cosine over the time budget), batch 128, a margin loss with
target radius ``--eps-train`` (the multi-class hinge on the label margin, Li et al., or HKR:
that hinge minus ``--kr-weight`` times the one-vs-rest KR term; deel-torchlip models train
with that library's own hinge and HKR losses). Then, on the test set: clean accuracy and
certified accuracy at the dataset's L2 radii (MNIST 0.3, 1.0, 1.58; CIFAR 36/255 and
multiples) on every test image, with L = ``lipschitz_bound`` of the trained weights on the
test images' shape (convolutions bounded exactly on their input sizes; the JSON also keeps
the looser bound for every input size; deel-torchlip models are exported to plain layers
first; orthogonium's layers are ``nn.Conv2d``/``nn.Linear`` with explicit weights, and its
SLL block is bounded from its kernel by the rule of ours), and PGD-attacked accuracy on the
first ``--attack-n`` images; ``violations`` counts examples certified yet broken by the
attack (must be 0).

Models (CPU-sized, as configs/robust/*_cpu.yaml; two stages of 16 and 32 channels):
- ours-fc3:  Flatten, 3 x BjorckLinear(1024) + MaxMin, BjorckLinear(10)
- deel-fc3:  Flatten, 3 x SpectralLinear(1024) + GroupSort2, SpectralLinear(10)
- ours-bcop: BCOP 3x3 (16) + MaxMin, downsample, BCOP (32) + MaxMin, downsample, Björck 256, 10
- deel-bcop: the same with SpectralConv2d, GroupSort2, InvertibleDownSampling, SpectralLinear
- ours-aol:  the same with AOLConv2d and AOLLinear
- ours-sll:  per stage AOLConv2d then an SLLConv2d residual layer, each + MaxMin; head
             AOLLinear 256, SLLLinear 256, AOLLinear 10 (the sll preset)
- orth-aoc / orth-aol / orth-sll: orthogonium's AdaptiveOrthoConv2d / AOLConv2D / AOC stem +
             SDPBasedLipschitzResBlock per stage, a 2x2 stride-2 AOC downsampling, OrthoLinear
             256 + MaxMin, OrthoLinear head

Two processes can run side by side (``--threads 1`` each): run the pair to compare together,
so both see the same machine load. One JSON per run under benchmarks/robust/ (CIFAR in
benchmarks/robust/cifar10-subset/), named by the model and the settings that differ from the
defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
from _bench import MNIST_RADII, PUBLISHED, ROOT, machine
from torch import nn

from wgan_lip.jsonio import write_json_strict
from wgan_lip.layers import known_input_sizes, lipschitz_bound, register_lipschitz_bound
from wgan_lip.layers.sll import sll_block_bound
from wgan_lip.networks import build as build_network
from wgan_lip.robust import certify, hkr_loss, multiclass_hinge
from wgan_lip.robust.data import load_split
from wgan_lip.robust.module import classifier_network

OUT = ROOT / "benchmarks" / "robust.json"
PARTS = ROOT / "benchmarks" / "robust"
MODELS = (
    "ours-fc3",
    "deel-fc3",
    "ours-bcop",
    "deel-bcop",
    "ours-aol",
    "ours-sll",
    "orth-aoc",
    "orth-aol",
    "orth-sll",
)
# Certified radii per dataset (L2): MNIST as Li et al.; CIFAR-10 at 36/255 and multiples.
DATASETS = {
    "mnist": {"eps": list(MNIST_RADII), "eps_train": 1.0},
    "cifar10-subset": {"eps": [36 / 255, 72 / 255, 108 / 255], "eps_train": 36 / 255},
}
CHANNELS = (16, 32)  # two stages: 28 -> 14 -> 7 (MNIST), 32 -> 16 -> 8 (CIFAR)
HEAD = 256


def deel_model(kind: str, c: int, size: int, classes: int) -> nn.Module:
    import deel.torchlip as tl

    if kind == "fc3":
        return tl.Sequential(
            nn.Flatten(),
            tl.SpectralLinear(c * size * size, 1024),
            tl.GroupSort2(),
            tl.SpectralLinear(1024, 1024),
            tl.GroupSort2(),
            tl.SpectralLinear(1024, 1024),
            tl.GroupSort2(),
            tl.SpectralLinear(1024, classes),
        )
    a, b = CHANNELS
    return tl.Sequential(
        tl.SpectralConv2d(c, a, 3, padding=1),
        tl.GroupSort2(),
        tl.InvertibleDownSampling(2),
        tl.SpectralConv2d(4 * a, b, 3, padding=1),
        tl.GroupSort2(),
        tl.InvertibleDownSampling(2),
        nn.Flatten(),
        tl.SpectralLinear(4 * b * (size // 4) ** 2, HEAD),
        tl.GroupSort2(),
        tl.SpectralLinear(HEAD, classes),
    )


def orth_model(kind: str, c: int, size: int, classes: int) -> nn.Module:
    """orthogonium's layers in the layout of ours: two stages of a stride-1 3x3 layer +
    MaxMin (AOC, AOL, or an AOC stem then an SLL residual block) and a 2x2 stride-2 AOC
    downsampling (channels x4, as our invertible downsampling), then orthogonal dense
    layers."""
    from orthogonium.layers import AdaptiveOrthoConv2d, MaxMin, OrthoLinear
    from orthogonium.layers.conv.AOL.aol import AOLConv2D
    from orthogonium.layers.conv.SLL.sll_layer import SDPBasedLipschitzResBlock

    def conv(i: int, o: int) -> list[nn.Module]:
        if kind == "aol":
            return [AOLConv2D(i, o, 3, padding=1), MaxMin()]
        if kind == "sll":
            return [AdaptiveOrthoConv2d(i, o, 3), MaxMin(), SDPBasedLipschitzResBlock(o, 1)]
        return [AdaptiveOrthoConv2d(i, o, 3), MaxMin()]

    layers: list[nn.Module] = []
    prev = c
    for ch in CHANNELS:
        layers += [*conv(prev, ch), AdaptiveOrthoConv2d(ch, 4 * ch, 2, stride=2, padding=0)]
        prev = 4 * ch
    feat = prev * (size // 4) ** 2
    layers += [nn.Flatten(), OrthoLinear(feat, HEAD), MaxMin(), OrthoLinear(HEAD, classes)]
    return nn.Sequential(*layers)


def our_model(kind: str, c: int, size: int, classes: int) -> nn.Module:
    """The classifier's preset ``kind`` (wgan_lip.robust.PRESETS), as LipschitzClassifier
    builds it: fc3 as published; the convnets at the CPU sizes (two stages of CHANNELS, a
    HEAD-wide head; SLL's head: AOL to HEAD, then an SLL residual layer)."""
    sizes = {} if kind == "fc3" else {"channels": CHANNELS, "widths": (HEAD,)}
    if kind == "sll":
        sizes["widths"] = (HEAD, HEAD)
    return build_network(classifier_network(kind, sizes), (c, size, size), classes)


def build(name: str, shape: tuple[int, ...], classes: int) -> nn.Module:
    lib, kind = name.split("-")
    c, size = shape[0], shape[1]
    make = {"ours": our_model, "deel": deel_model, "orth": orth_model}[lib]
    return make(kind, c, size, classes)


def loss_for(name: str, args: argparse.Namespace, classes: int):
    """The margin loss: ours for our models and orthogonium's (which ships no hinge of the
    certified margin); deel-torchlip's own losses for its models (the ones it ships)."""
    eps = args.eps_train
    if name.startswith("deel"):
        import deel.torchlip as tl

        if args.loss == "hkr":
            # deel-torchlip's HKR: alpha weighs the hinge against the KR term; alpha = 1 /
            # kr_weight makes its ratio of the two terms ours
            loss = tl.HKRMulticlassLoss(
                alpha=1.0 / max(args.kr_weight, 1e-12), min_margin=math.sqrt(2) * eps
            )
        else:
            loss = tl.HingeMulticlassLoss(min_margin=math.sqrt(2) * eps)
        return lambda logits, y: loss(logits, nn.functional.one_hot(y, classes).float())
    if args.loss == "hkr":
        return lambda logits, y: hkr_loss(logits, y, eps, args.kr_weight)
    return lambda logits, y: multiclass_hinge(logits, y, eps)


def _register_peer_rules() -> None:
    """Certified bounds for the peers' modules that are not plain torch: sorting within
    groups is 1-Lipschitz; orthogonium's SLL block ``x - 2 K^T relu(K x + b)`` is bounded from
    its normalized kernel by the same rule as ours (:func:`sll_block_bound`)."""
    try:
        import deel.torchlip as tl

        for cls in (tl.GroupSort, tl.GroupSort2, tl.MaxMin):
            register_lipschitz_bound(cls)(lambda m: 1.0)
    except ImportError:
        pass
    try:
        from orthogonium.layers import MaxMin
        from orthogonium.layers.conv.SLL.sll_layer import SDPBasedLipschitzResBlock

        register_lipschitz_bound(MaxMin)(lambda m: 1.0)

        @register_lipschitz_bound(SDPBasedLipschitzResBlock)
        def _orth_sll(m: nn.Module) -> float:
            if m.groups != 1:
                raise TypeError("grouped orthogonium SLL blocks are not bounded here")
            return sll_block_bound(m.kernel.detach(), input_sizes=known_input_sizes(m))
    except ImportError:
        pass


def certifiable(name: str, model: nn.Module) -> nn.Module:
    """The model as layers whose bound ``lipschitz_bound`` can compute."""
    _register_peer_rules()
    if name.startswith("deel"):
        import deel.torchlip as tl

        return tl.vanilla_model(model.eval(), in_place=False)
    return model.eval()


def cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def diverged(name: str, args: argparse.Namespace, elapsed: float, steps: int, cause: str) -> dict:
    """The row of a run whose ``cause`` (loss or weights) became NaN: no certificate."""
    return {
        "model": name,
        "dataset": args.dataset,
        "settings": settings_of(args),
        "train_seconds": elapsed,
        "steps": steps,
        "diverged_at_step": steps,
        "diverged": cause,
        "machine": machine(),
    }


def run(name: str, args: argparse.Namespace) -> dict:
    seconds = 60 * args.minutes
    eps_list = DATASETS[args.dataset]["eps"]
    train = load_split(args.dataset, "train", args.data_root)
    test = load_split(args.dataset, "test", args.data_root)
    shape, classes = tuple(train.images.shape[1:]), int(train.labels.max()) + 1
    torch.manual_seed(args.seed)
    model = build(name, shape, classes)
    loss_fn = loss_for(name, args, classes)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    elapsed, steps, images = 0.0, 0, 0
    model.train()
    while elapsed < seconds:
        perm = torch.randperm(len(train.labels), generator=gen)
        for s in range(0, len(perm) - 127, 128):
            t0 = time.perf_counter()
            if args.schedule == "cosine":  # over the time budget, the runs' only fixed length
                for group in opt.param_groups:
                    group["lr"] = args.lr * cosine(elapsed / seconds)
            idx = perm[s : s + 128]
            loss = loss_fn(model(train.images[idx]), train.labels[idx])
            if not torch.isfinite(loss):  # diverged: a row that says so, no certificate
                return diverged(name, args, elapsed, steps, "loss")
            opt.zero_grad()
            loss.backward()
            opt.step()
            elapsed += time.perf_counter() - t0
            steps += 1
            images += len(idx)
            if elapsed >= seconds:
                break
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):  # the last step
        return diverged(name, args, elapsed, steps, "weights")
    plain = certifiable(name, model)
    t0 = time.perf_counter()
    with torch.no_grad():
        full = certify(plain, test.images, test.labels, eps_list, attack=None)
    attacked = certify(
        plain,
        test.images[: args.attack_n],
        test.labels[: args.attack_n],
        eps_list,
        attack="pgd",
        attack_steps=50,
        attack_restarts=3,
    )
    return {
        "model": name,
        "dataset": args.dataset,
        "settings": settings_of(args),
        "train_seconds": elapsed,
        "steps": steps,
        "epochs": images / len(train.labels),
        "images_per_second": images / max(elapsed, 1e-9),
        "lipschitz_bound": full.lipschitz_bound,
        "clean": full.clean,
        "certified": {f"{r.eps:g}": r.certified for r in full.radii},
        "attack_n": args.attack_n,
        "attack_clean": attacked.clean,
        "attack_certified": {f"{r.eps:g}": r.certified for r in attacked.radii},
        "attacked": {f"{r.eps:g}": r.attacked for r in attacked.radii},
        "violations": attacked.violations,
        "eval_seconds": time.perf_counter() - t0,
        "bound_check": abs(full.lipschitz_bound - lipschitz_bound(plain, shape)) < 1e-9,
        # the bound for every input size (no input shape): the looser, size-free certificate
        "lipschitz_bound_any_size": lipschitz_bound(plain),
        "machine": machine(),
    }


def settings_of(args: argparse.Namespace) -> dict:
    return {
        "loss": args.loss,
        "eps_train": args.eps_train,
        "kr_weight": args.kr_weight,
        "schedule": args.schedule,
        "lr": args.lr,
        "minutes": args.minutes,
        "seed": args.seed,
    }


def part_path(name: str, args: argparse.Namespace) -> Path:
    """One JSON per run: the dataset, the model and every setting that differs from the
    defaults (``benchmarks/robust/mnist/ours-sll__loss-hkr.json``)."""
    defaults = settings_of(parse(["--dataset", args.dataset]))
    tag = "".join(
        f"__{k}-{v:g}" if isinstance(v, float) else f"__{k}-{v}"
        for k, v in settings_of(args).items()
        if v != defaults[k]
    )
    folder = PARTS if args.dataset == "mnist" else PARTS / args.dataset
    return folder / f"{name}{tag}.json"


def defaults_text(dataset: str) -> str:
    return f"{DATASETS[dataset]['eps_train']:.4g}"


def tables(results: list[dict]) -> str:
    """One table per dataset: settings, steps, clean and certified accuracy, PGD, violations."""
    lines: list[str] = []
    for dataset in DATASETS:
        rows = [r for r in results if r.get("dataset", "mnist") == dataset]
        if not rows:
            continue
        eps = [f"{e:g}" for e in DATASETS[dataset]["eps"]]
        head = [
            "model",
            "settings",
            "train time",
            "steps",
            "clean",
            *[f"certified {e[:5]}" for e in eps],
            f"PGD {eps[-1][:5]} (first n)",
            "violations",
            "L",
        ]
        lines += [
            f"{dataset} (settings: those that differ from the defaults, hinge loss at "
            f"eps_train {defaults_text(dataset)}, Adam 1e-3 constant):",
            "",
            "| " + " | ".join(head) + " |",
            "|---" * len(head) + "|",
        ]
        defaults = settings_of(parse(["--dataset", dataset]))
        for r in rows:
            st = r.get("settings", {})
            tag = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in st.items()
                if k not in ("minutes", "seed") and v != defaults[k]
            )
            if "diverged_at_step" in r:
                cause = r.get("diverged", "loss")  # rows before the cause was recorded: loss
                cells = [
                    r["model"],
                    tag or "defaults",
                    f"diverged (NaN {cause}) at step {r['diverged_at_step']:,}",
                    *["-"] * (len(head) - 3),
                ]
                lines.append("| " + " | ".join(cells) + " |")
                continue
            cert = " | ".join(f"{100 * r['certified'][e]:.2f}" for e in eps)
            lines.append(
                f"| {r['model']} | {tag or 'defaults'} | "
                f"{r['train_seconds'] / 60:.0f} min | {r['steps']:,} | {100 * r['clean']:.2f} | "
                f"{cert} | {100 * r['attacked'][eps[-1]]:.1f} ({r['attack_n']}) | "
                f"{r['violations']} | {r['lipschitz_bound']:.6f} |"
            )
        lines.append("")
    published = "; ".join(
        f"{k} {v[0]}% clean, {v[2]}% certified at 1.58" for k, v in PUBLISHED.items()
    )
    lines += [f"Published MNIST, 200 epochs on a GPU (Li et al. 2019): {published}."]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", choices=MODELS, default=["ours-sll"])
    p.add_argument("--dataset", choices=list(DATASETS), default="mnist")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--loss", choices=["hinge", "hkr"], default="hinge")
    p.add_argument(
        "--eps-train",
        type=float,
        default=None,
        help="target radius of the margin losses (default: 1.0 on MNIST, 36/255 on CIFAR)",
    )
    p.add_argument("--kr-weight", type=float, default=0.1)
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--attack-n", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    p.add_argument("--tables", action="store_true", help="merge the parts, print the tables")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.eps_train is None:
        args.eps_train = DATASETS[args.dataset]["eps_train"]
    return args


def main() -> None:
    args = parse()
    if args.tables:
        parts = sorted(PARTS.rglob("*.json"))
        results = [json.loads(f.read_text()) for f in parts]
        write_json_strict(OUT, {"results": results, "published": PUBLISHED})
        print(tables(results))
        return
    torch.set_num_threads(args.threads)
    for name in args.models:
        result = run(name, args)
        path = part_path(name, args)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_strict(path, result)
        print(tables([result]).split("\n\nPublished")[0], flush=True)


if __name__ == "__main__":
    main()
