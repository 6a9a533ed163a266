"""GPU check: the project's headline numbers on one CUDA device, in one call of at most 8 min.

    python3 scripts/gpu_check.py --data-root DIR        # on a CUDA machine: benchmarks/gpu.json
    python scripts/gpu_check.py --smoke                 # toy sizes, CPU is fine, < 2 minutes
    python scripts/gpu_check.py --table [--out FILE]    # the JSON as markdown

Parts (``--parts 1 2 3 4 5`` picks some; each has its own time budget):
  1 layers  one Adam step of BjorckLinear 1024x1024 and BCOPConv2d 64->64 3x3 (32x32) at batch
            256 against nn.Linear / nn.Conv2d and deel-torchlip / orthogonium when importable:
            warm-up, alternated, median, ``torch.cuda.synchronize()`` around every step; then
            the orthogonality error max |s - 1| of each weight.
  2 w1      ``estimate_w1`` on 10^6 x 10^6 points in 784-D drawn on the device: P = N(0, I),
            Q = P' + s with |s| = 1, so the exact W1 is 1 (a translation). Value, 95% CI,
            wall time, peak GPU memory.
  3 robust  the MNIST FC-3 recipe (configs/robust/mnist_fc3.yaml) for as many epochs as fit
            in 3 minutes, then ``certify`` on the whole test set (clean, certified at L2 0.3,
            1.0, 1.58) and a PGD check of the certificates on 1,000 images (violations: 0).
  4 gan     the MNIST WGAN recipes (configs/gan/mnist_{hard,gp}.yaml), 60 s of training each;
            classifier-FID/KID (a feature net trained here unless one exists) and the exact
            W1 (POT) of 2,000 generated vs 2,000 held-out test images.
  5 ddp     a 2-process DDP ``estimate_w1`` (NCCL) in a fresh process, only with >= 2 GPUs.

The JSON is rewritten after every part (and marks the part running before it starts), so
what finished is kept when a later part fails or the process is killed. A failed part keeps
its one-line error (its traceback goes to stderr) and the next part runs. Without MNIST under
``--data-root`` / ``$WGAN_LIP_DATA`` (torchvision layout, ``MNIST/raw/*.gz``) parts 3-4 are
recorded as skipped. With ``--parts`` naming some parts, the other parts' earlier entries in
``--out`` are kept.

``--smoke`` runs every part at toy size on whatever device there is (the CPU here) and writes
``benchmarks/gpu_smoke.json`` unless ``--out`` says otherwise: it never overwrites
``benchmarks/gpu.json`` by default. Without CUDA and without ``--smoke`` the script exits 2.
Exit status: 0 when every part finished or was skipped, 1 when a part failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

START = time.perf_counter()  # the wall-clock budget counts from here, imports included

import torch  # noqa: E402
from _bench import (  # noqa: E402
    MNIST_RADII,
    PUBLISHED,
    QUIET_TRAINER,
    ROOT,
    alternate,
    conv_svals,
    critic_certified,
    machine,
    peer_conv,
    peer_linear,
    recipe,
    step_fn,
    sval_error,
    train_one,
)

from wgan_lip.jsonio import dumps_strict, write_json_strict  # noqa: E402

OUT = ROOT / "benchmarks" / "gpu.json"
SMOKE_OUT = ROOT / "benchmarks" / "gpu_smoke.json"
PART_NAMES = {1: "layers", 2: "w1", 3: "robust", 4: "gan", 5: "ddp"}
NO_CUDA = "no CUDA device: run with --smoke for the CPU check"


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and time budgets (seconds) of one run: the full check or the smoke."""

    total: float  # wall-clock budget of the whole run
    plan: dict  # part -> (training seconds, other seconds it needs: setup, evaluation)
    linear: int = 1024
    batch: int = 256
    channels: int = 64
    image: int = 32
    repeats: int = 30
    warmup: int = 5
    w1_n: int = 1_000_000
    w1_dim: int = 784
    w1_steps: int | None = None  # estimate_w1's default
    robust_widths: tuple[int, ...] | None = None  # the recipe's (1024, 1024, 1024)
    robust_train: int | None = None  # training images (None: all)
    robust_test: int | None = None  # test images certified (None: all)
    attack_n: int = 1000
    attack_steps: int = 50
    attack_restarts: int = 3
    gan_overrides: tuple = ()  # WGAN architecture keys replacing the recipe's
    gan_train: int | None = None
    gan_eval: int = 2000
    feature_train: int | None = None
    ddp_n: int = 20_000


FULL = Sizes(total=480.0, plan={1: (0, 25), 2: (50, 35), 3: (180, 25), 4: (120, 40), 5: (60, 30)})
SMOKE = Sizes(
    total=110.0,
    plan={1: (0, 5), 2: (8, 10), 3: (10, 12), 4: (10, 20), 5: (0, 0)},
    linear=128,
    batch=32,
    channels=16,
    image=8,
    repeats=5,
    warmup=2,
    w1_n=2000,
    w1_dim=8,
    w1_steps=300,
    robust_widths=(128, 128, 128),
    robust_train=6000,
    robust_test=1000,
    attack_n=64,
    attack_steps=10,
    attack_restarts=1,
    gan_overrides=(
        ("generator_base_channels", 16),
        (
            "critic",
            {"hard": {"channels": [8, 16], "widths": [32]}, "gp": {"channels": [16, 32, 64]}},
        ),
    ),
    gan_train=6000,
    gan_eval=300,
    feature_train=3000,
    ddp_n=2000,
)


class Skip(Exception):
    """A part that cannot run here: recorded with its note, not as a failure."""


class Context:
    """What every part needs: device, sizes, the clock, the data root."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, device: torch.device) -> None:
        self.args, self.sizes, self.device = args, sizes, device
        self.smoke = args.smoke
        self.accelerator = "gpu" if device.type == "cuda" else "cpu"
        self.start = START
        self.parts = args.parts
        self.data_root = args.data_root

    def left(self) -> float:
        return self.sizes.total - (time.perf_counter() - self.start)

    def allot(self, part: int, runs: int = 1, left: int = 1) -> float:
        """Training seconds of one of the ``runs`` runs of ``part`` (``left`` of them still to
        go): its share of the nominal budget, less when the run is late, so that the parts
        after it keep theirs and the total holds. Skip when not even a quarter is left."""
        nominal, overhead = self.sizes.plan[part]
        later = sum(sum(self.sizes.plan[k]) for k in self.parts if k > part and self.reserve(k))
        avail = self.left() - overhead - later
        floor = 0.25 * nominal * left / runs
        if avail < floor:  # late: take the floor from the later parts' reserve, if it is there
            avail = floor if self.left() - overhead >= floor else -1.0
        if avail < 0 or (nominal == 0 and self.left() < 0.5 * overhead):
            raise Skip(
                f"skipped: out of time ({max(0.0, self.left()):.0f} s left of the "
                f"{self.sizes.total:.0f} s budget)"
            )
        return min(nominal / runs, avail / left)

    def reserve(self, part: int) -> bool:
        """Does ``part`` still need its time? (the DDP part runs only with >= 2 GPUs)"""
        return part != 5 or (not self.smoke and torch.cuda.device_count() >= 2)

    def mnist_root(self) -> str:
        """The data root holding MNIST, or Skip."""
        root = self.data_root
        if not root:
            raise Skip("skipped: no MNIST under --data-root or $WGAN_LIP_DATA (neither is set)")
        raw = Path(root).expanduser() / "MNIST" / "raw"
        if not raw.is_dir() or not any(raw.iterdir()):
            raise Skip(f"skipped: no MNIST under {root} (expected {raw}/*.gz)")
        return str(Path(root).expanduser())

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# ----- helpers -----


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def device_info(device: torch.device) -> dict:
    info = {
        **machine(),
        "date": now()[:10],
        "time": now(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpus": torch.cuda.device_count(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            device=torch.cuda.get_device_name(device),
            capability=".".join(map(str, torch.cuda.get_device_capability(device))),
            gpu_memory_gib=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return info


def finite(obj):
    """``obj`` with non-finite floats replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def save(path: Path, doc: dict) -> None:
    """Write ``doc`` atomically (a kill mid-write leaves the previous version)."""
    write_json_strict(path, finite(doc))


def one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]


def synced(fn, ctx: Context):
    """``fn`` followed by a device synchronization, so that a timer sees the whole step."""
    if ctx.device.type != "cuda":
        return fn

    def run() -> None:
        fn()
        torch.cuda.synchronize(ctx.device)

    return run


def lightning_time(seconds: float) -> str:
    s = max(1, int(seconds))
    return f"00:{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def quiet_trainer(ctx: Context, **kw):
    import lightning as L

    return L.Trainer(
        accelerator=ctx.accelerator,
        devices=1,
        **QUIET_TRAINER,
        precision="32-true",
        **kw,
    )


def peak_gib(ctx: Context) -> float | None:
    if ctx.device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(ctx.device) / 2**30


def host_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ----- part 1: layers -----


def layer_case(ctx: Context, kind: str) -> dict:
    from torch import nn

    from wgan_lip.layers import BCOPConv2d, BjorckLinear

    s, dev = ctx.sizes, ctx.device
    notes = []
    if kind == "linear":
        n = s.linear
        x = torch.randn(s.batch, n, device=dev)
        layers = {"wgan_lip.BjorckLinear": BjorckLinear(n, n), "nn.Linear": nn.Linear(n, n)}
        make, peer = peer_linear(), "deel-torchlip.SpectralLinear"
        plain, ours = "nn.Linear", "wgan_lip.BjorckLinear"
        case = f"Linear {n}x{n}, batch {s.batch}, one Adam step"
    else:
        c = s.channels
        x = torch.randn(s.batch, c, s.image, s.image, device=dev)
        layers = {
            "wgan_lip.BCOPConv2d": BCOPConv2d(c, c, 3),
            "nn.Conv2d": nn.Conv2d(c, c, 3, padding=1, padding_mode="circular"),
        }
        make, peer = peer_conv(), "orthogonium.AdaptiveOrthoConv2d"
        plain, ours = "nn.Conv2d", "wgan_lip.BCOPConv2d"
        case = f"Conv {c}->{c}, 3x3, {s.image}x{s.image}, batch {s.batch}, one Adam step"
    if make is None:
        notes.append(f"{peer}: skipped, not importable (pip install -e '.[bench]')")
    else:
        layers[peer] = make(s.linear, s.linear) if kind == "linear" else make(s.channels)
    layers = {k: m.to(dev) for k, m in layers.items()}
    steps = {k: synced(step_fn(m, x), ctx) for k, m in layers.items()}
    med = alternate(steps, s.repeats, warmup=s.warmup)
    rows = {}
    for name, m in layers.items():
        m.eval()
        with torch.no_grad():
            w = m.weight.detach().cpu()
        if kind == "linear":
            row = {"step_s": med[name], "ortho_error": sval_error(w)}
        else:
            sv = conv_svals(w, s.image)
            lo, hi = float(sv.min()), float(sv.max())
            row = {
                "step_s": med[name],
                "sval_min": lo,
                "sval_max": hi,
                "ortho_error": max(abs(lo - 1), abs(hi - 1)),
            }
        row["ratio_to_plain"] = med[name] / med[plain]
        if peer in med:
            row["ratio_to_peer"] = med[name] / med[peer]
        rows[name] = row
    if kind == "linear":  # eval mode: the cached orthonormal weight against a plain Linear
        with torch.no_grad():
            fwd = alternate(
                {k: synced(lambda m=layers[k]: m(x), ctx) for k in (ours, plain)},
                s.repeats * 2,
                warmup=s.warmup,
            )
        for k, v in fwd.items():
            rows[k]["eval_forward_s"] = v
    return {"case": case, "peer": peer if peer in med else None, "rows": rows, "notes": notes}


def part_layers(ctx: Context) -> dict:
    ctx.allot(1)
    torch.manual_seed(0)
    return {
        "repeats": ctx.sizes.repeats,
        "warmup": ctx.sizes.warmup,
        "linear": layer_case(ctx, "linear"),
        "conv": layer_case(ctx, "conv"),
    }


# ----- part 2: W1 -----


def part_w1(ctx: Context) -> dict:
    from wgan_lip import estimate_w1

    s, dev = ctx.sizes, ctx.device
    seconds = ctx.allot(2)
    n, d = s.w1_n, s.w1_dim
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    g = torch.Generator(device=dev).manual_seed(0)
    shift = torch.full((d,), 1.0 / math.sqrt(d), device=dev)  # |shift| = 1 = exact W1
    p = torch.randn(n, d, device=dev, generator=g)
    q = torch.randn(n, d, device=dev, generator=g) + shift
    ctx.sync()
    gen_s = time.perf_counter() - t0
    exact = float(shift.double().norm())
    t0 = time.perf_counter()
    est = estimate_w1(
        p,
        q,
        steps=s.w1_steps,
        seed=0,
        progress=False,
        trainer={"max_time": lightning_time(seconds), "accelerator": ctx.accelerator, "devices": 1},
    )
    wall = time.perf_counter() - t0
    # the estimate's record, less what this one-critic, one-split run cannot vary
    skip = {"critic_type", "holdout", "monitor_values", "folds"}
    out = {k: v for k, v in est.to_dict().items() if k not in skip}
    out.update(
        problem=f"N(0, I_{d}) vs N(0, I_{d}) + s, |s| = 1 (translation)",
        exact_w1=exact,
        rel_error=(exact - est.value) / exact,
        ci_low_below_exact=est.ci_low <= exact,
        generate_seconds=gen_s,
        wall_seconds=wall,
        max_time=lightning_time(seconds),
        data_on_device_gib=2 * n * d * 4 / 2**30,
        peak_gpu_memory_gib=peak_gib(ctx),
        host_peak_rss_gib=host_rss_gib(),
    )
    del p, q
    return out


# ----- part 3: certified-robust FC-3 -----


def part_robust(ctx: Context) -> dict:
    from wgan_lip.robust import ClassificationDataModule, LipschitzClassifier, certify

    s, dev = ctx.sizes, ctx.device
    eps = list(MNIST_RADII)
    root = ctx.mnist_root()
    seconds = ctx.allot(3)
    model_kw, data_kw = recipe("configs/robust/mnist_fc3.yaml")
    if s.robust_widths is not None:
        model_kw["network"] = {**model_kw["network"], "widths": list(s.robust_widths)}
    net_kw, objective = model_kw["network"], model_kw["objective"]
    dm = ClassificationDataModule(**{**data_kw, "data_root": root})
    dm.load()
    if s.robust_train is not None:
        dm.train = replace(
            dm.train,
            images=dm.train.images[: s.robust_train],
            labels=dm.train.labels[: s.robust_train],
        )
    torch.manual_seed(0)
    module = LipschitzClassifier(**model_kw)
    trainer = quiet_trainer(ctx, max_epochs=-1, max_time=dt.timedelta(seconds=seconds))
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    train_s = time.perf_counter() - t0
    steps = trainer.global_step
    net = module.net.to(dev).eval()  # Lightning hands the module back on the CPU
    x, y = dm.test.images, dm.test.labels
    if s.robust_test is not None:
        x, y = x[: s.robust_test], y[: s.robust_test]
    x, y = x.to(dev), y.to(dev)
    t0 = time.perf_counter()
    full = certify(net, x, y, eps, attack=None, batch_size=1000)
    att = certify(
        net,
        x[: s.attack_n],
        y[: s.attack_n],
        eps,
        attack="pgd",
        attack_steps=s.attack_steps,
        attack_restarts=s.attack_restarts,
    )
    return {
        "recipe": "configs/robust/mnist_fc3.yaml",
        "widths": list(net_kw["widths"]),
        "activation": net_kw["activation"],
        "loss": objective["loss"],
        "eps_train": objective["eps_train"],
        "batch_size": dm.batch_size,
        "train_images": len(dm.train.labels),
        "budget_seconds": seconds,
        "train_seconds": train_s,
        "steps": steps,
        "epochs": steps * dm.batch_size / len(dm.train.labels),
        "steps_per_second": steps / train_s if train_s > 0 else None,
        "test_images": len(y),
        "clean": full.clean,
        "lipschitz_bound": full.lipschitz_bound,
        "certified": {f"{r.eps:g}": r.certified for r in full.radii},
        "attack": f"PGD L2, {s.attack_steps} steps, {s.attack_restarts} restarts",
        "attack_n": min(s.attack_n, len(y)),
        "attack_clean": att.clean,
        "attack_certified": {f"{r.eps:g}": r.certified for r in att.radii},
        "attacked": {f"{r.eps:g}": r.attacked for r in att.radii},
        "violations": att.violations,
        "eval_seconds": time.perf_counter() - t0,
        "published_fc3_200_epochs": dict(
            zip(
                ("clean", "certified_0.3", "certified_1.58"),
                PUBLISHED["FC-3 (Anil et al.)"],
                strict=True,
            )
        ),
    }


# ----- part 4: WGAN -----


def feature_net(ctx: Context, root: str):
    """``(net on the CPU, info)``: ``--feature-net`` or runs/feature_nets/mnist.pt if it
    exists (not in the smoke run), else a FeatureNet trained here for one epoch."""
    import torch.nn.functional as F

    from wgan_lip.data.vision import load_named_dataset
    from wgan_lip.gan import load_feature_net
    from wgan_lip.gan.features import FeatureNet, accuracy

    path = Path(ctx.args.feature_net) if ctx.args.feature_net else None
    default = ROOT / "runs" / "feature_nets" / "mnist.pt"
    if path is None and not ctx.smoke and default.is_file():
        path = default
    if path is not None:
        net, info = load_feature_net(path)
        return net, {
            "feature_net": str(path),
            **{k: v for k, v in info.items() if isinstance(v, (int, float, str))},
        }
    t0 = time.perf_counter()
    train = load_named_dataset("mnist:train", root)
    test = load_named_dataset("mnist:test", root)
    xs, ys = train.images, train.labels
    if ctx.sizes.feature_train is not None:
        xs, ys = xs[: ctx.sizes.feature_train], ys[: ctx.sizes.feature_train]
    xs, ys = xs.to(ctx.device), ys.to(ctx.device)
    torch.manual_seed(0)
    net = FeatureNet(1, 28, 10).to(ctx.device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0)).to(ctx.device)
    for start in range(0, len(xs), 128):  # one epoch, as train_feature_net's loop
        idx = perm[start : start + 128]
        loss = F.cross_entropy(net(xs[idx]), ys[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    n_test = 2000 if ctx.smoke else len(test.labels)
    acc = accuracy(net, test.images[:n_test].to(ctx.device), test.labels[:n_test].to(ctx.device))
    return net.cpu().eval(), {
        "feature_net": "trained here: FeatureNet, 1 epoch, seed 0",
        "train_images": len(xs),
        "test_accuracy": acc,
        "seconds": time.perf_counter() - t0,
    }


def part_gan(ctx: Context) -> dict:
    from wgan_lip.gan import WGAN, ImageDataModule, classifier_fid_kid, exact_w1_metric

    s, dev = ctx.sizes, ctx.device
    root = ctx.mnist_root()
    ctx.allot(4, runs=2, left=2)  # out of time: skip before training the feature net
    fnet, finfo = feature_net(ctx, root)
    _, data_kw = recipe("configs/gan/mnist_hard.yaml")
    dm = ImageDataModule(**{**data_kw, "data_root": root, "n_val": s.gan_eval})
    dm.setup()
    if s.gan_train is not None:
        dm.train_set = dm.train_set[: s.gan_train]
    real = dm.val_set
    rows = []
    for i, constraint in enumerate(("hard", "gp")):
        seconds = ctx.allot(4, runs=2, left=2 - i)
        model_kw, _ = recipe(f"configs/gan/mnist_{constraint}.yaml")
        model_kw["evaluation"] = {**model_kw.get("evaluation", {}), "feature_net": None}
        arch, over = model_kw.get("architecture", {}), dict(s.gan_overrides)
        critic = {**arch.get("critic", {}), **over.pop("critic", {}).get(constraint, {})}
        model_kw["architecture"] = {**arch, **over, "critic": critic}
        torch.manual_seed(0)
        module = WGAN(data_shape=dm.data_shape, **model_kw)
        info = train_one(
            module,
            dm,
            seconds,
            1,
            lambda m, t: None,
            accelerator=ctx.accelerator,
            precision="32-true",
        )
        module.to(dev)
        t0 = time.perf_counter()
        fake = module.generate(len(real))
        row = {
            "constraint": constraint,
            "recipe": f"configs/gan/mnist_{constraint}.yaml",
            "budget_seconds": seconds,
            **info,
            **classifier_fid_kid(fake, real, fnet),
            "exact_w1": exact_w1_metric(fake, real, max_samples=len(real)),
        }
        if constraint == "hard":
            row["critic_w1_certified"] = critic_certified(module, real.to(dev), fake.to(dev))
        row["eval_seconds"] = time.perf_counter() - t0
        rows.append(row)
    return {"eval_images": len(real), "batch_size": dm.batch_size, **finfo, "runs": rows}


# ----- part 5: DDP -----


def ddp_child(accelerator: str, n: int) -> None:
    """Run in a fresh process (Lightning forks its workers before CUDA starts): a 2-process
    ``estimate_w1`` on a known problem; prints the result as one JSON line."""
    from wgan_lip import estimate_w1
    from wgan_lip.data import Translation

    prob = Translation(32, 1.0)
    p, q = prob.sample_p(n, 0), prob.sample_q(n, 0)
    t0 = time.perf_counter()
    est = estimate_w1(
        p, q, steps=300, seed=0, progress=False, trainer={"accelerator": accelerator, "devices": 2}
    )
    d = est.to_dict()
    print(
        dumps_strict(
            finite(
                {
                    "problem": f"translation d=32, |s| = 1, {n} x {n}",
                    "exact_w1": prob.w1,
                    **{
                        k: d[k]
                        for k in (
                            "value",
                            "ci_low",
                            "ci_high",
                            "steps",
                            "train_seconds",
                            "stopped",
                            "critic_name",
                            "lipschitz_bound",
                        )
                    },
                    "processes": 2,
                    "wall_seconds": time.perf_counter() - t0,
                }
            )
        )
    )


def part_ddp(ctx: Context) -> dict:
    if ctx.smoke:
        raise Skip("skipped: the smoke run does not start DDP processes")
    gpus = torch.cuda.device_count()
    if gpus < 2:
        raise Skip(f"skipped: needs >= 2 CUDA devices, this machine has {gpus}")
    seconds = ctx.allot(5) + ctx.sizes.plan[5][1]
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--ddp-child",
        "gpu",
        "--ddp-n",
        str(ctx.sizes.ddp_n),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"DDP process exited {res.returncode}: {tail}")
    return json.loads(res.stdout.strip().splitlines()[-1])


PARTS = {1: part_layers, 2: part_w1, 3: part_robust, 4: part_gan, 5: part_ddp}


# ----- the run -----


def run(args: argparse.Namespace, out: Path, device: torch.device) -> int:
    sizes = SMOKE if args.smoke else FULL
    if args.max_minutes is not None:
        sizes = replace(sizes, total=60 * args.max_minutes)
    ctx = Context(args, sizes, device)
    previous = {}
    if args.parts_given and out.is_file():
        try:
            previous = json.loads(out.read_text()).get("parts", {})
        except (OSError, ValueError):
            previous = {}
    doc = {
        "check": "smoke" if args.smoke else "gpu",
        "machine": device_info(device),
        "config": {
            "parts": args.parts,
            "budget_seconds": sizes.total,
            "data_root": args.data_root,
            "sizes": {
                k: v for k, v in sizes.__dict__.items() if k not in ("plan", "gan_overrides")
            },
            "plan": {str(k): {"train_s": v[0], "other_s": v[1]} for k, v in sizes.plan.items()},
        },
        "parts": {},
    }
    for k, name in PART_NAMES.items():
        key = str(k)
        if k in args.parts:
            doc["parts"][key] = {"name": name, "status": "pending"}
        elif key in previous:
            doc["parts"][key] = {**previous[key], "kept_from_earlier_run": True}
        else:
            doc["parts"][key] = {
                "name": name,
                "status": "skipped",
                "note": "not selected (--parts)",
            }
    save(out, doc)
    failed = False
    for k in args.parts:
        entry = doc["parts"][str(k)]
        entry.update(status="running", started=now())
        save(out, doc)
        print(f"part {k} ({PART_NAMES[k]}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            entry["results"] = PARTS[k](ctx)
            entry["status"] = "ok"
        except Skip as e:
            entry.update(status="skipped", note=str(e))
        except KeyboardInterrupt:
            entry.update(status="interrupted", seconds=time.perf_counter() - t0)
            doc["wall_seconds"] = time.perf_counter() - ctx.start
            save(out, doc)
            raise
        except Exception as e:  # a broken part must not cost the others their results
            traceback.print_exc()
            entry.update(status="failed", error=one_line(e))
            failed = True
        entry["seconds"] = time.perf_counter() - t0
        entry["finished"] = now()
        doc["wall_seconds"] = time.perf_counter() - ctx.start
        save(out, doc)
        print(
            f"part {k} ({PART_NAMES[k]}): {entry['status']} in {entry['seconds']:.1f} s"
            + (f" ({entry.get('note') or entry.get('error')})" if entry["status"] != "ok" else ""),
            file=sys.stderr,
            flush=True,
        )
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(table(doc))
    print(f"\nwrote {out} ({doc['wall_seconds']:.0f} s)")
    return 1 if failed else 0


# ----- the table -----


def _pct(v) -> str:
    return f"{100 * v:.2f}" if isinstance(v, (int, float)) else ""


def _num(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""


def table(doc: dict) -> str:
    """The results of a gpu_check JSON as markdown (skipped and failed parts say so)."""
    m = doc.get("machine", {})
    lines = [
        f"{'Smoke check (toy sizes)' if doc.get('check') == 'smoke' else 'GPU check'} on "
        f"{m.get('device', '?')}, torch {m.get('torch', '?')}, CUDA {m.get('cuda')}, "
        f"{m.get('date', '?')}; wall time {_num(doc.get('wall_seconds'), '.0f')} s."
    ]
    for key, entry in sorted(doc.get("parts", {}).items()):
        title = f"**Part {key}: {entry.get('name', PART_NAMES.get(int(key), '?'))}**"
        status = entry.get("status")
        if status != "ok":
            why = (
                entry.get("note")
                or entry.get("error")
                or ("killed while running: no result" if status == "running" else "")
            )
            said = why if why.startswith(status) else f"{status}: {why}" if why else status
            lines += ["", f"{title}: {said}"]
            continue
        r = entry["results"]
        lines += ["", f"{title} ({entry.get('seconds', 0):.1f} s)", ""]
        lines += _RENDER[int(key)](r)
    return "\n".join(lines)


def _render_layers(r: dict) -> list[str]:
    out = []
    for kind in ("linear", "conv"):
        c = r[kind]
        peer = c.get("peer")
        out += [
            f"{c['case']} (median of {r['repeats']}, alternated):",
            "",
            f"| layer | step (ms) | vs plain | vs {peer or 'peer'} | max abs(s-1) "
            "| eval forward (ms) |",
            "|---|---|---|---|---|---|",
        ]
        for name, row in c["rows"].items():
            vs_peer = f"{row['ratio_to_peer']:.2f}x" if "ratio_to_peer" in row else ""
            fwd = f"{1e3 * row['eval_forward_s']:.3f}" if "eval_forward_s" in row else ""
            out.append(
                f"| {name} | {1e3 * row['step_s']:.3f} | {row['ratio_to_plain']:.2f}x | "
                f"{vs_peer} | {row['ortho_error']:.1e} | {fwd} |"
            )
        out += [f"- {n}" for n in c.get("notes", [])] + [""]
    return out[:-1]


def _render_w1(r: dict) -> list[str]:
    return [
        "| points per side | dim | W1 estimate [95% CI] | exact | rel. error | steps | wall (s) "
        "| peak GPU memory (GiB) | host peak RSS (GiB) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {r['n_p']:,} | {r['dim']} | {r['value']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}] "
        f"| {r['exact_w1']:.4f} | {100 * r['rel_error']:.2f}% | {r['steps']:,} ({r['stopped']}) | "
        f"{r['wall_seconds']:.1f} | {_num(r.get('peak_gpu_memory_gib'), '.2f')} | "
        f"{r['host_peak_rss_gib']:.2f} |",
    ]


def _render_robust(r: dict) -> list[str]:
    c, a = r["certified"], r["attacked"]
    return [
        "| widths | train time (s) | epochs | steps | clean | certified 0.3 | certified 1.0 "
        f"| certified 1.58 | PGD 1.58 (first {r['attack_n']}) | violations | L |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {'x'.join(map(str, r['widths']))} | {r['train_seconds']:.0f} | {r['epochs']:.1f} | "
        f"{r['steps']:,} | {_pct(r['clean'])} | {_pct(c.get('0.3'))} | {_pct(c.get('1'))} | "
        f"{_pct(c.get('1.58'))} | {_pct(a.get('1.58'))} | {r['violations']} | "
        f"{r['lipschitz_bound']:.6f} |",
    ]


def _render_gan(r: dict) -> list[str]:
    out = [
        f"Feature net: {r.get('feature_net')} (test accuracy "
        f"{_num(r.get('test_accuracy'), '.4f')}); {r['eval_images']:,} generated vs held-out "
        "test images.",
        "",
        "| constraint | train (s) | generator steps | classifier-FID | KID | exact W1 "
        "| certified critic W1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["runs"]:
        out.append(
            f"| {row['constraint']} | {row['train_seconds']:.0f} | "
            f"{row['generator_steps']:,} | {row['classifier_fid']:.2f} | "
            f"{row['kid']:.4f} | {row['exact_w1']:.3f} | "
            f"{_num(row.get('critic_w1_certified'), '.3f')} |"
        )
    return out


def _render_ddp(r: dict) -> list[str]:
    return [
        "| processes | problem | W1 estimate [95% CI] | exact | steps | wall (s) |",
        "|---|---|---|---|---|---|",
        f"| {r['processes']} | {r['problem']} | {r['value']:.4f} [{r['ci_low']:.4f}, "
        f"{r['ci_high']:.4f}] | {r['exact_w1']:.4f} | {r['steps']} | {r['wall_seconds']:.1f} |",
    ]


_RENDER = {1: _render_layers, 2: _render_w1, 3: _render_robust, 4: _render_gan, 5: _render_ddp}


# ----- command line -----


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gpu_check",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON to write (default {OUT.relative_to(ROOT)}; with --smoke "
        f"{SMOKE_OUT.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--data-root",
        default=os.environ.get("WGAN_LIP_DATA"),
        help="folder with MNIST/raw/*.gz (default $WGAN_LIP_DATA)",
    )
    parser.add_argument(
        "--parts",
        type=int,
        nargs="+",
        choices=sorted(PARTS),
        default=None,
        help="parts to run (default all); the others' entries in --out stay",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="toy sizes on any device (its time: scripts/bench_commands.py)",
    )
    parser.add_argument("--table", action="store_true", help="print --out as markdown and exit")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-clock budget of the run (default 8; smoke 110 s)",
    )
    parser.add_argument(
        "--feature-net",
        default=None,
        help="feature-net checkpoint for classifier-FID (default: "
        "runs/feature_nets/mnist.pt if present, else one trained "
        "here)",
    )
    parser.add_argument("--ddp-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-n", type=int, default=FULL.ddp_n, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts_given = args.parts is not None
    args.parts = sorted(set(args.parts)) if args.parts else sorted(PARTS)
    if args.out is None:
        args.out = SMOKE_OUT if args.smoke else OUT
    if args.max_minutes is not None and not args.max_minutes > 0:
        parser.error(f"--max-minutes must be positive, got {args.max_minutes}")
    return args


def fail(msg: str) -> int:
    print(f"gpu_check: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ddp_child:
        ddp_child(args.ddp_child, args.ddp_n)
        return 0
    out = args.out
    if args.table:
        try:
            doc = json.loads(out.read_text())
        except FileNotFoundError:
            return fail(f"{out} not found: run scripts/gpu_check.py first")
        except (OSError, ValueError) as e:
            return fail(f"cannot read {out}: {one_line(e)}")
        print(table(doc))
        return 0
    if not args.smoke and not torch.cuda.is_available():
        return fail(NO_CUDA)
    try:  # the output must be writable before anything runs
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.with_name(out.name + ".tmp")
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        return fail(f"cannot write --out {out}: {e.strerror or one_line(e)}")
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes everywhere
    import lightning  # noqa: F401  (it sets its loggers' levels when imported: quiet them after)

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    try:
        return run(args, out, device)
    except KeyboardInterrupt:
        print(f"gpu_check: interrupted; finished parts are in {out}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
