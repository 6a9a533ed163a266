"""Train the feature network behind classifier-FID/KID on a dataset of the data root.

    python scripts/train_feature_net.py --dataset mnist --out runs/feature_nets/mnist.pt

Prints the test accuracy and stores it in the checkpoint. The GAN configs point to the
checkpoint through ``model.feature_net``. Numbers computed in this feature space are
"classifier-FID", comparable only between runs that share the checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import time

from wgan_lip.data.vision import load_named_dataset, parse_dataset_spec
from wgan_lip.errors import InputError
from wgan_lip.gan.features import accuracy, save_feature_net, train_feature_net


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", default="mnist", help="mnist, fashion-mnist or cifar10-subset (default mnist)"
    )
    parser.add_argument("--out", required=True, help="checkpoint to write (.pt)")
    parser.add_argument("--data-root", default=None, help="default $WGAN_LIP_DATA")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        parsed = parse_dataset_spec(args.dataset)
        if parsed is None or parsed[2] is not None:
            raise InputError(f"--dataset: {args.dataset!r} is not a whole named dataset")
        if args.epochs < 1:
            raise InputError(f"--epochs must be positive, got {args.epochs}")
        name = parsed[0]
        train = load_named_dataset(f"{name}:train", args.data_root)
        test = load_named_dataset(f"{name}:test", args.data_root)
    except InputError as e:
        print(f"train_feature_net: error: {e}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    net = train_feature_net(
        train.images,
        train.labels,
        epochs=args.epochs,
        seed=args.seed,
        log=lambda m: print(m, flush=True),
    )
    acc = accuracy(net, test.images, test.labels)
    path = save_feature_net(net, args.out, dataset=name, test_accuracy=acc, epochs=args.epochs)
    print(
        f"{name}: test accuracy {acc:.4f} after {args.epochs} epochs "
        f"({time.perf_counter() - start:.0f} s); wrote {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
