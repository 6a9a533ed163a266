"""MNIST WGAN settings sweep for the hard critic: recognizability at equal training time.

    python scripts/bench_gan_mnist_sweep.py --tag recipe            # the config as it is
    python scripts/bench_gan_mnist_sweep.py --tag lr1e-3 --lr-critic 1e-3 --lr-generator 1e-3
    python scripts/bench_gan_mnist_sweep.py --tables      # the README table from the JSON

One trial per call: ``wgan_lip.gan.WGAN`` with the settings of ``--config`` (default
configs/gan/mnist_cpu_hard.yaml), changed by the options given, trains for ``--minutes`` of
training time (``_bench.train_one``: evaluations pause the clock). At ``--evals``
evenly spaced times it reports the share of 10,000 samples (from the moving average when the
config keeps one) that the feature net classifies with probability above 0.9
(``confident_classes``) and the smallest class's share. Run trials one per core
(``OMP_NUM_THREADS=1``); results merge into benchmarks/gan/mnist_sweep.json under ``--tag``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from _bench import ROOT, merged_json, recipe, train_one

from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN, ImageDataModule, confident_classes, generate
from wgan_lip.gan.architecture import MOVED_OPTIONS, migrate_hparams
from wgan_lip.gan.features import load_feature_net
from wgan_lip.jsonio import dumps_strict

OUT = ROOT / "benchmarks" / "gan" / "mnist_sweep.json"
CONFIG = ROOT / "configs" / "gan" / "mnist_cpu_hard.yaml"
# the options that change the config's model keywords, and its architecture's; an option not
# given keeps the config's value
MODEL_OPTIONS = ("n_critic", "lr_critic", "lr_generator", "ema_decay", "reuse_fakes")
ARCH_OPTIONS = (
    "critic_widths",
    "generator_base_channels",
    "group_size",
    "latent_dim",
    "image_critic",
    "critic_channels",
    "critic_head_width",
)


def settings_from(args: argparse.Namespace) -> tuple[dict, int]:
    """The WGAN keywords and the batch size: the config's, changed by the options given."""
    path = Path(args.config).resolve()  # relative to the working folder, like the other paths
    if not path.is_file():
        raise InputError(f"--config: no file at {args.config}")
    model, data = recipe(str(path))  # fresh dicts on every call: safe to change
    model.get("evaluation", {}).pop("feature_net", None)  # the sweep's own --feature-net
    critic = model.setdefault("architecture", {}).setdefault("critic", {})
    for name in MODEL_OPTIONS + ARCH_OPTIONS:  # each to its section (MOVED_OPTIONS)
        value = getattr(args, name)
        if value is None:
            continue
        section, _, key = MOVED_OPTIONS[name].partition(".")
        if name == "image_critic":
            critic.pop("kind", None) if value == "conv" else critic.update(kind=value)
        elif key.startswith("critic."):
            critic[key[7:]] = [value] if name == "critic_head_width" else value
        else:
            model.setdefault(section, {})[key] = value
    if args.beta1 is not None:
        optimizer = model.setdefault("optimizer", {})
        optimizer["betas"] = [args.beta1, optimizer.get("betas", [0.5, 0.9])[1]]
    batch = args.batch or data.get("batch_size", 64)
    return model, int(batch)


def trial(
    model_kw: dict, batch: int, minutes: float, evals: int, seed: int, data_root, feature_net
) -> tuple[list[dict], dict]:
    """Train one setting for ``minutes`` of training time; the evaluation rows and counts."""
    torch.manual_seed(seed)
    dm = ImageDataModule("mnist", data_root=data_root, batch_size=batch, n_val=100)
    module = WGAN(data_shape=(1, 28, 28), **model_kw)
    rows: list[dict] = []

    def snapshot(m: WGAN, elapsed: float) -> None:
        # The plain generator's samples (no refine_steps): the sweep compares training.
        classes = confident_classes(generate(m.sampler, 10_000, m.latent_dim, seed=0), feature_net)
        row = {
            "minutes": round(elapsed / 60, 2),
            "generator_steps": m.generator_step,
            "confident": round(classes["confident"], 4),
            "min_class_share": round(classes["min_class_share"], 4),
        }
        rows.append(row)
        print(dumps_strict(row), flush=True)

    info = train_one(module, dm, minutes * 60.0, evals, snapshot)
    return rows, info


def _setting(entry: dict) -> dict:
    """The compared settings of a trial, from either kind of entry: this script's (the
    module's keywords) or the earlier plain loop's (its own option names)."""
    a = entry["settings"]
    if "changes" not in entry:  # the earlier plain loop
        return {
            "critic": a["widths"],
            "gen": a["gen"],
            "n_critic": a["n_critic"],
            "lr": (a["lr_critic"], a["lr_generator"]),
            "batch": a["batch"],
            "reuse": False,
            "schedule": a["schedule"],
        }
    a = migrate_hparams({"data_shape": [1, 28, 28], **a})  # entries of the flat layout too
    arch, opt, sampling = (a.get(k) or {} for k in ("architecture", "optimizer", "sampling"))
    lr_c = opt.get("lr")
    return {
        "critic": (arch.get("critic") or {}).get("widths"),
        "gen": arch.get("generator_base_channels"),
        "n_critic": opt.get("n_critic"),
        "lr": (lr_c, opt.get("generator_lr") or lr_c),
        "batch": a["batch_size"],
        "reuse": bool(sampling.get("reuse_fakes")),
        "schedule": opt.get("schedule", "constant"),
    }


def _last(row: dict, key: str) -> float:
    """``key`` of an evaluation row; rows of the earlier plain loop name the moving average."""
    return row[key] if key in row else row[f"{key}_ema_0.999"]


def tables() -> str:
    """The README table: one row per trial, its last evaluation."""
    results = json.loads(OUT.read_text())
    lines = [
        "| trial | critic | generator | n_critic | lr | batch | reuse fakes | schedule | "
        "generator steps | confident | smallest class |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for tag, r in results.items():
        last, a = r["rows"][-1], _setting(r)
        lines.append(
            f"| {tag} | {a['critic']} | {a['gen']} | {a['n_critic']} | "
            f"{a['lr'][0]:g} / {a['lr'][1]:g} | {a['batch']} | {'yes' if a['reuse'] else 'no'} | "
            f"{a['schedule']} | {last['generator_steps']:,} | {_last(last, 'confident'):.3f} | "
            f"{_last(last, 'min_class_share'):.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tag", help="name of the trial in the JSON")
    p.add_argument("--config", default=str(CONFIG), help="the recipe the options change")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--evals", type=int, default=4)
    p.add_argument("--n-critic", dest="n_critic", type=int)
    p.add_argument("--lr-critic", dest="lr_critic", type=float)
    p.add_argument("--lr-generator", dest="lr_generator", type=float)
    p.add_argument("--beta1", type=float)
    p.add_argument("--ema", dest="ema_decay", type=float)
    p.add_argument("--reuse-fakes", dest="reuse_fakes", action=argparse.BooleanOptionalAction)
    p.add_argument("--batch", type=int)
    p.add_argument("--widths", dest="critic_widths", type=int, nargs="+")
    p.add_argument(
        "--gen", dest="generator_base_channels", type=int, help="generator base channels"
    )
    p.add_argument("--group", dest="group_size", type=int)
    p.add_argument("--latent", dest="latent_dim", type=int)
    p.add_argument("--image-critic", dest="image_critic", choices=["conv", "mlp"])
    p.add_argument("--channels", dest="critic_channels", type=int, nargs="+")
    p.add_argument("--head", dest="critic_head_width", type=int)
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
        if args.minutes <= 0 or args.evals < 1:
            raise InputError("need --minutes > 0 and --evals >= 1")
        if not Path(args.feature_net).is_file():
            raise InputError(
                f"no feature net at {args.feature_net}: run "
                "scripts/train_feature_net.py --dataset mnist --out it"
            )
        model_kw, batch = settings_from(args)
        feature_net, _ = load_feature_net(args.feature_net)
        rows, info = trial(
            model_kw, batch, args.minutes, args.evals, args.seed, args.data_root, feature_net
        )
    except InputError as e:
        print(f"bench_gan_mnist_sweep: error: {e}", file=sys.stderr)
        return 2
    given = [
        a for a in (*MODEL_OPTIONS, *ARCH_OPTIONS, "beta1", "batch") if getattr(args, a) is not None
    ]
    changes = ", ".join(f"{a} {getattr(args, a)}" for a in given) or "none"
    net, config = Path(args.feature_net).resolve(), Path(args.config).resolve()
    entry = {
        "config": str(config.relative_to(ROOT) if config.is_relative_to(ROOT) else config),
        "changes": changes,
        "settings": {**model_kw, "batch_size": batch, "minutes": args.minutes, "seed": args.seed},
        "feature_net": str(net.relative_to(ROOT) if net.is_relative_to(ROOT) else net),
        "threads": torch.get_num_threads(),
        **info,
        "rows": rows,
    }
    lock = Path(tempfile.gettempdir()) / "wgan_lip_mnist_sweep.lock"
    with merged_json(OUT, lock=lock) as results:  # trials run side by side
        results[args.tag] = entry
    return 0


if __name__ == "__main__":
    sys.exit(main())
