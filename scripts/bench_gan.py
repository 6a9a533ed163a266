"""WGAN benchmark: the hard-constrained critic against gp, lp, sn and clip at equal wall-clock.

    python scripts/bench_gan.py                         # toys (5 seeds) + MNIST, all constraints
    python scripts/bench_gan.py --sections toys --toy-seconds 30
    python scripts/bench_gan.py --tables                 # print the README tables from the JSON

Every run gets the same training-time budget (evaluation pauses the clock). Runs alternate:
for each seed the constraints are rotated, so no constraint always runs first or last.

- toys (25 Gaussians, swiss roll): exact W1 (POT) between 5,000 generated and 5,000 held-out
  real samples at the end; during training, snapshots of exact W1 (2,000 samples) beside the
  hard critic's own certified dual value (dual / lipschitz_bound on the held-out samples) and
  an independent certified estimate (``estimate_w1``, fresh critic), for the correlation.
- mnist: classifier-FID / KID (feature net from scripts/train_feature_net.py, trained here if
  missing) and exact W1 on a 2,000-image subsample.

Writes benchmarks/gan.json and sample PNGs under benchmarks/gan/.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_layers import machine

from wgan_lip.gan import (
    CONSTRAINTS,
    WGAN,
    ImageDataModule,
    ToyDataModule,
    certified_w1_metric,
    classifier_fid_kid,
    exact_w1_metric,
    load_feature_net,
    save_feature_net,
    train_feature_net,
)
from wgan_lip.gan.images import sample_grid, toy_scatter
from wgan_lip.layers import lipschitz_bound
from wgan_lip.w1 import kr_dual

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "gan.json"
PNG = ROOT / "benchmarks" / "gan"


class TimeBudget(L.Callback):
    """Stop after ``seconds`` of training time; call ``snapshot`` at evenly spaced times.

    The clock runs only inside training batches, so evaluation does not eat the budget.
    """

    def __init__(self, seconds: float, snapshots: int, snapshot) -> None:
        self.seconds, self.snapshot = seconds, snapshot
        self.marks = [seconds * (i + 1) / snapshots for i in range(snapshots)]
        self.elapsed = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.elapsed += time.perf_counter() - self._t0
        while self.marks and self.elapsed >= self.marks[0]:
            self.marks.pop(0)
            if module.critic_step % module.settings.n_critic == 0 or not self.marks:
                self.snapshot(module, self.elapsed)
            else:  # wait for the end of a generator round
                self.marks.insert(0, self.elapsed)
                break
        if self.elapsed >= self.seconds and not self.marks:
            trainer.should_stop = True


@torch.no_grad()
def critic_certified(module: WGAN, real: torch.Tensor, fake: torch.Tensor) -> float:
    critic = module.critic.eval()
    value = float(kr_dual(critic(real).double(), critic(fake).double())) / lipschitz_bound(critic)
    critic.train()
    return value


def train_one(module: WGAN, dm, seconds: float, snapshots: int, snapshot) -> dict:
    budget = TimeBudget(seconds, snapshots, snapshot)
    trainer = L.Trainer(
        max_steps=-1, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[budget],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return {"train_seconds": budget.elapsed, "critic_steps": module.critic_step,
            "generator_steps": module.generator_step}  # fmt: skip


def pearson(x: list[float], y: list[float]) -> float:
    if len(x) < 3 or statistics.pstdev(x) == 0 or statistics.pstdev(y) == 0:
        return float("nan")
    return statistics.correlation(x, y)


def spearman(x: list[float], y: list[float]) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        for i, j in enumerate(order):
            r[j] = float(i)
        return r

    return pearson(ranks(x), ranks(y))


def order_for(seed: int) -> list[str]:
    k = seed % len(CONSTRAINTS)
    return list(CONSTRAINTS[k:] + CONSTRAINTS[:k])


def bench_toys(names: list[str], seeds: int, seconds: float, snapshots: int) -> list[dict]:
    rows = []
    for name in names:
        for seed in range(seeds):
            for constraint in order_for(seed):
                torch.manual_seed(seed)
                dm = ToyDataModule(name, seed=seed)
                dm.setup()
                real = dm.val_set
                module = WGAN(constraint, data_shape=(2,), eval_seed=seed)
                trace: list[dict] = []

                def snapshot(m: WGAN, elapsed: float, real=real, trace=trace, seed=seed) -> None:
                    fake = m.generate(len(real))
                    point = {"seconds": elapsed, "generator_steps": m.generator_step,
                             "exact_w1": exact_w1_metric(fake, real, max_samples=2000,
                                                         seed=seed)}  # fmt: skip
                    if m.hparams.constraint == "hard":
                        point["critic_w1_certified"] = critic_certified(m, real, fake)
                        with torch.enable_grad():
                            est = certified_w1_metric(fake, real, steps=300, max_samples=2000,
                                                      seed=seed)  # fmt: skip
                        point["estimate_w1"] = est.value
                    trace.append(point)

                info = train_one(module, dm, seconds, snapshots, snapshot)
                fake = module.generate(len(real))
                row = {"dataset": name, "constraint": constraint, "seed": seed, **info,
                       "exact_w1": exact_w1_metric(fake, real, max_samples=5000, seed=seed),
                       "trace": trace}  # fmt: skip
                if seed == 0:
                    PNG.mkdir(parents=True, exist_ok=True)
                    from torchvision.utils import save_image

                    title = f"{name}, {constraint}: exact W1 {row['exact_w1']:.3f}"
                    save_image(toy_scatter(module.critic, real, fake[:2000], title),
                               PNG / f"{name}_{constraint}.png")  # fmt: skip
                rows.append(row)
                print(f"{name:12s} seed {seed} {constraint:5s} W1 {row['exact_w1']:.4f} "
                      f"({info['generator_steps']} G steps)", flush=True)  # fmt: skip
    return rows


def feature_net_for(dataset: str, data_root: str | None):
    path = ROOT / "runs" / "feature_nets" / f"{dataset}.pt"
    if not path.is_file():
        from wgan_lip.data.vision import load_named_dataset

        train = load_named_dataset(f"{dataset}:train", data_root)
        net = train_feature_net(train.images, train.labels, epochs=2)
        save_feature_net(net, path, dataset=dataset)
    return load_feature_net(path)[0], str(path.relative_to(ROOT))


def bench_mnist(seconds: float, data_root: str | None, eval_n: int) -> list[dict]:
    feature_net, feature_path = feature_net_for("mnist", data_root)
    dm = ImageDataModule("mnist", data_root=data_root, batch_size=64, n_val=eval_n)
    dm.setup()
    real = dm.val_set
    rows = []
    for constraint in CONSTRAINTS:
        torch.manual_seed(0)
        module = WGAN(constraint, data_shape=real.shape[1:], architecture={"latent_dim": 128})
        info = train_one(module, dm, seconds, 1, lambda m, t: None)
        fake = module.generate(len(real))
        scores = classifier_fid_kid(fake, real, feature_net)
        row = {"dataset": "mnist", "constraint": constraint, **info, **scores,
               "exact_w1": exact_w1_metric(fake, real, max_samples=eval_n),
               "feature_net": feature_path}  # fmt: skip
        if constraint == "hard":
            row["critic_w1_certified"] = critic_certified(module, real, fake)
        PNG.mkdir(parents=True, exist_ok=True)
        from torchvision.utils import save_image

        save_image(sample_grid(fake[:64]), PNG / f"mnist_{constraint}.png")
        rows.append(row)
        print(f"mnist {constraint:5s} classifier-FID {row['classifier_fid']:.2f} W1 "
              f"{row['exact_w1']:.3f} ({info['generator_steps']} G steps)", flush=True)  # fmt: skip
    return rows


def summarize(results: dict) -> dict:
    """Medians per dataset and constraint, and the hard critic's correlation with exact W1."""
    summary: dict = {}
    for row in results.get("toys", []):
        key = f"{row['dataset']}/{row['constraint']}"
        summary.setdefault(key, {"exact_w1": [], "generator_steps": []})
        summary[key]["exact_w1"].append(row["exact_w1"])
        summary[key]["generator_steps"].append(row["generator_steps"])
    for stats in summary.values():
        w = stats["exact_w1"]
        stats.update(
            median=statistics.median(w),
            min=min(w),
            max=max(w),
            median_generator_steps=statistics.median(stats.pop("generator_steps")),
        )
    corr: dict = {}
    for key in ("critic_w1_certified", "estimate_w1"):
        xs, ys, per_run = [], [], []
        for row in results.get("toys", []):
            pts = [p for p in row["trace"] if key in p]
            if row["constraint"] != "hard" or len(pts) < 3:
                continue
            x, y = [p["exact_w1"] for p in pts], [p[key] for p in pts]
            xs += x
            ys += y
            per_run.append(pearson(x, y))
        if xs:
            finite = [r for r in per_run if math.isfinite(r)]
            corr[key] = {"pearson_pooled": pearson(xs, ys), "spearman_pooled": spearman(xs, ys),
                         "pearson_per_run_median": statistics.median(finite) if finite else None,
                         "points": len(xs), "runs": len(per_run)}  # fmt: skip
    return {"toys": summary, "correlation_with_exact_w1": corr}


def tables(results: dict) -> str:
    lines = []
    s = results["summary"]["toys"]
    if s:
        secs = results["config"]["toy_seconds"]
        lines += [f"Toys: exact W1 (generated vs held-out real, 5,000 each), median [min, max] "
                  f"over {results['config']['seeds']} seeds, {secs:g} s of training each.", "",
                  "| dataset | " + " | ".join(CONSTRAINTS) + " |",
                  "|---|" + "---|" * len(CONSTRAINTS)]  # fmt: skip
        for ds in sorted({k.split("/")[0] for k in s}):
            cells = []
            for c in CONSTRAINTS:
                v = s.get(f"{ds}/{c}")
                cells.append(f"{v['median']:.3f} [{v['min']:.3f}, {v['max']:.3f}]" if v else "")
            lines.append(f"| {ds} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("| dataset | " + " | ".join(f"G steps {c}" for c in CONSTRAINTS) + " |")
        lines.append("|---|" + "---|" * len(CONSTRAINTS))
        for ds in sorted({k.split("/")[0] for k in s}):
            cells = [f"{s[f'{ds}/{c}']['median_generator_steps']:.0f}" if f"{ds}/{c}" in s
                     else "" for c in CONSTRAINTS]  # fmt: skip
            lines.append(f"| {ds} | " + " | ".join(cells) + " |")
        corr = results["summary"]["correlation_with_exact_w1"]
        if corr:
            lines += ["", "Hard critic vs exact W1 over training (toy snapshots):", "",
                      "| certified quantity | Pearson (pooled) | Spearman (pooled) | "
                      "Pearson per run (median) | points |", "|---|---|---|---|---|"]  # fmt: skip
            for k, v in corr.items():
                per = v["pearson_per_run_median"]
                lines.append(f"| {k} | {v['pearson_pooled']:.3f} | {v['spearman_pooled']:.3f} | "
                             f"{per:.3f} | {v['points']} |" if per is not None else "")  # fmt: skip
    mn = results.get("mnist", [])
    if mn:
        secs = results["config"]["mnist_seconds"]
        lines += ["", f"MNIST, {secs:g} s of training each (one seed): classifier-FID and KID "
                  f"(feature net trained on MNIST, see scripts/train_feature_net.py), exact W1 on "
                  f"{results['config']['mnist_eval']:,} generated vs held-out images.", "",
                  "| constraint | classifier-FID | KID | exact W1 | generator steps |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in mn:
            lines.append(f"| {r['constraint']} | {r['classifier_fid']:.2f} | {r['kid']:.4f} | "
                         f"{r['exact_w1']:.3f} | {r['generator_steps']} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", nargs="+", default=["toys", "mnist"],
                        choices=["toys", "mnist"])  # fmt: skip
    parser.add_argument("--toys", nargs="+", default=["25gaussians", "swissroll"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--toy-seconds", type=float, default=30.0)
    parser.add_argument("--snapshots", type=int, default=6)
    parser.add_argument("--mnist-seconds", type=float, default=240.0)
    parser.add_argument("--mnist-eval", type=int, default=2000)
    parser.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the runs stay comparable when "
                        "something else uses the other core)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--tables", action="store_true", help="print tables from --out")
    args = parser.parse_args()
    if args.tables:
        print(tables(json.loads(args.out.read_text())))
        return
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results["config"] = {**results.get("config", {}), "seeds": args.seeds, "threads": args.threads,
                         "toy_seconds": args.toy_seconds, "snapshots": args.snapshots}  # fmt: skip
    if "toys" in args.sections:
        results["toys"] = bench_toys(args.toys, args.seeds, args.toy_seconds, args.snapshots)
    if "mnist" in args.sections:
        results["config"].update(mnist_seconds=args.mnist_seconds, mnist_eval=args.mnist_eval)
        results["mnist"] = bench_mnist(args.mnist_seconds, args.data_root, args.mnist_eval)
    results["summary"] = summarize(results)
    results["machine"] = machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(tables(results))


if __name__ == "__main__":
    main()
