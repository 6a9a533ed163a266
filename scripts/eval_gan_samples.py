"""How recognizable a trained WGAN's images are, beside the real test images' own score.

    python scripts/eval_gan_samples.py runs/gan/mnist_cpu_hard/checkpoints/last.ckpt \\
        --out benchmarks/gan/mnist_cpu_hard_eval.json

Draws ``--n`` samples (the moving average's when the run kept one, latent seed
``eval_seed``) and reports ``confident_classes`` with the feature net: the share the
classifier gives a probability above 0.9, and each class's share. The same numbers for up
to ``--n`` real test images of the run's dataset are the ceiling the generated share is
read against.

Samples are drawn as the run's ``refine_steps`` says (critic-guided latent steps; 0 for runs
without it), or as ``--refine-steps`` overrides. When they are refined, the plain samples of
the same latents are scored too, beside them, with classifier-FID and exact W1 to the real
images for both. ``--grid`` saves 64 of the samples as a PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from torchvision.utils import save_image

from wgan_lip.checkpoints import verify_checkpoint_file
from wgan_lip.errors import InputError
from wgan_lip.gan import (
    WGAN,
    ImageDataModule,
    classifier_fid_kid,
    confident_classes,
    exact_w1_metric,
)
from wgan_lip.gan.features import load_feature_net
from wgan_lip.gan.images import sample_grid
from wgan_lip.jsonio import dumps_strict
from wgan_lip.paths import save_atomic


def load_checkpoint(path: str, **overrides) -> WGAN:
    """The image WGAN of checkpoint ``path`` on the CPU, with hyperparameters ``overrides``.

    Raises:
        InputError: no such file, a corrupt file, or not an image WGAN's checkpoint.
    """
    if not Path(path).is_file():
        raise InputError(f"no such file: {path}")
    verify_checkpoint_file(path)
    try:
        module = WGAN.load_from_checkpoint(path, map_location="cpu", **overrides)
    except InputError:
        raise
    except Exception as e:  # a file of something else: say so in one line
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{path} is not a WGAN checkpoint ({type(e).__name__}: {first})") from None
    if not module.is_image:
        raise InputError(f"{path} is not an image WGAN")
    return module


def sample_scores(fake, real, feature_net, *, distances: bool = True) -> dict:
    """``confident_classes`` of ``fake``; with ``distances`` also its classifier-FID to ``real``
    and exact W1 on 2,000 images of each."""
    scores = confident_classes(fake, feature_net)
    if distances:
        scores["classifier_fid"] = classifier_fid_kid(fake, real, feature_net)["classifier_fid"]
        scores["exact_w1"] = exact_w1_metric(fake, real, max_samples=2000)
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a WGAN checkpoint (.ckpt) of an image run")
    p.add_argument("--feature-net", default="runs/feature_nets/mnist.pt")
    p.add_argument("--dataset", default="mnist", help="the real images' dataset (test split)")
    p.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    p.add_argument("--n", type=int, default=10_000, help="samples (and at most real images)")
    p.add_argument(
        "--refine-steps",
        type=int,
        default=None,
        help="latent DOT steps of the samples (default: the run's refine_steps)",
    )
    p.add_argument(
        "--refine-lr",
        type=float,
        default=None,
        help="their learning rate (default: the run's refine_lr)",
    )
    p.add_argument("--out", help="write the numbers as JSON here")
    p.add_argument("--grid", help="save an 8 x 8 grid of the samples as this PNG")
    args = p.parse_args(argv)
    try:
        if args.n < 2:
            raise InputError(f"--n must be at least 2, got {args.n}")
        if args.refine_steps is not None and args.refine_steps < 0:
            raise InputError(f"--refine-steps must be >= 0, got {args.refine_steps}")
        if args.refine_lr is not None and not args.refine_lr > 0:
            raise InputError(f"--refine-lr must be positive, got {args.refine_lr}")
        if not Path(args.feature_net).is_file():
            raise InputError(f"no such file: {args.feature_net}")
        for path in (args.out, args.grid):
            if path and not Path(path).parent.is_dir():
                raise InputError(f"no such folder for {path}: create it first")
        if args.grid and Path(args.grid).suffix.lower() != ".png":
            raise InputError(f"--grid writes a PNG: name it *.png, got {args.grid}")
        overrides = {
            k: v
            for k, v in (("refine_steps", args.refine_steps), ("refine_lr", args.refine_lr))
            if v is not None
        }
        module = load_checkpoint(args.checkpoint, **overrides)
        feature_net, _ = load_feature_net(args.feature_net)
        real = ImageDataModule(args.dataset, data_root=args.data_root, n_val=args.n)
        real.load()
    except InputError as e:
        print(f"eval_gan_samples: error: {e}", file=sys.stderr)
        return 2
    refine = int(module.sampling.refine_steps)
    samples = {"generated": module.generate(args.n)}
    if refine:
        samples["generated_plain"] = module.generate(args.n, refine_steps=0)
    result = {
        "checkpoint": Path(args.checkpoint).as_posix(),
        "generator_steps": int(module.generator_step),
        "n": args.n,
        "refine_steps": refine,
        "refine_lr": float(module.sampling.refine_lr),
    }
    for key, fake in samples.items():
        # refined: does it cost diversity? the distances to the real images say
        result[key] = sample_scores(fake, real.val_set, feature_net, distances=bool(refine))
    ceiling = confident_classes(real.val_set, feature_net)
    result["real_test"] = {"n": len(real.val_set), **ceiling}
    for key, scores in result.items():
        if key.startswith("generated"):
            extra = "".join(
                f", {name} {scores[name]:.3f}"
                for name in ("classifier_fid", "exact_w1")
                if name in scores
            )
            print(
                f"{key}: {100 * scores['confident']:.1f}% confident, smallest class "
                f"{100 * scores['min_class_share']:.1f}%{extra}"
            )
    print(f"real test images: {100 * ceiling['confident']:.1f}% confident")
    if args.grid:
        save_atomic(lambda tmp: save_image(sample_grid(samples["generated"][:64]), tmp), args.grid)
    if args.out:
        text = dumps_strict(result, indent=1) + "\n"
        save_atomic(lambda tmp: Path(tmp).write_text(text), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
