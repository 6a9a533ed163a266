"""How recognizable a trained WGAN's images are, beside the real test images' own score.

    python scripts/eval_gan_samples.py runs/gan/mnist_cpu_hard/checkpoints/last.ckpt \\
        --out benchmarks/gan/mnist_cpu_hard_eval.json

Draws ``--n`` samples (the moving average's when the run kept one, latent seed
``eval_seed``) and reports ``confident_classes`` with the feature net: the share the
classifier gives a probability above 0.9, and each class's share. The same numbers for up
to ``--n`` real test images of the run's dataset are the ceiling the generated share is
read against.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from wgan_lip.errors import InputError
from wgan_lip.gan import WGAN, ImageDataModule, confident_classes
from wgan_lip.gan.features import load_feature_net


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a WGAN checkpoint (.ckpt) of an image run")
    p.add_argument("--feature-net", default="runs/feature_nets/mnist.pt")
    p.add_argument("--dataset", default="mnist", help="the real images' dataset (test split)")
    p.add_argument("--data-root", default=os.environ.get("WGAN_LIP_DATA"))
    p.add_argument("--n", type=int, default=10_000, help="samples (and at most real images)")
    p.add_argument("--out", help="write the numbers as JSON here")
    args = p.parse_args(argv)
    try:
        if args.n < 1:
            raise InputError(f"--n must be positive, got {args.n}")
        for path in (args.checkpoint, args.feature_net):
            if not Path(path).is_file():
                raise InputError(f"no such file: {path}")
        module = WGAN.load_from_checkpoint(args.checkpoint, map_location="cpu")
        if not module.is_image:
            raise InputError(f"{args.checkpoint} is not an image WGAN")
        feature_net, _ = load_feature_net(args.feature_net)
        real = ImageDataModule(args.dataset, data_root=args.data_root, n_val=args.n)
        real.load()
    except InputError as e:
        print(f"eval_gan_samples: error: {e}", file=sys.stderr)
        return 2
    fake = confident_classes(module.generate(args.n), feature_net)
    ceiling = confident_classes(real.val_set, feature_net)
    result = {
        "checkpoint": Path(args.checkpoint).as_posix(),
        "generator_steps": int(module.generator_step), "n": args.n, "generated": fake,
        "real_test": {"n": len(real.val_set), **ceiling},
    }  # fmt: skip
    print(f"generated: {100 * fake['confident']:.1f}% confident, smallest class "
          f"{100 * fake['min_class_share']:.1f}%; real test images: "
          f"{100 * ceiling['confident']:.1f}% confident")  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
