"""W1 between two folders of images, and the samples the critic finds most and least typical.

The two folders here are made on the spot (16x16 grey images: soft blobs on the left half
against soft blobs anywhere), so the example runs without any dataset; point ``--p`` and
``--q`` at your own folders instead. ``estimate_w1`` trains certified critics on 80% of the
images and reports the held-out dual value, a lower bound of W1 with its 95% interval; POT's
exact W1 between the two samples is printed beside it. The figure shows, for each folder,
the images with the highest and the lowest critic score: the critic is 1-Lipschitz, so its
scores rank images by how much they look like P rather than Q.

    python examples/w1_image_folders.py --out w1_folders.png
    python examples/w1_image_folders.py --p my_images_a/ --q my_images_b/ --out w1.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch


def make_folder(folder: Path, n: int, left_only: bool, seed: int) -> Path:
    """``n`` 16x16 PNGs of one soft blob each (on the left half when ``left_only``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:16, 0:16]
    for i in range(n):
        cx = rng.uniform(2, 7) if left_only else rng.uniform(2, 13)
        cy = rng.uniform(2, 13)
        img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 6.0)
        Image.fromarray((255 * img).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=Path, help="a folder of images (default: made here)")
    parser.add_argument("--q", type=Path, help="a folder of images (default: made here)")
    parser.add_argument("--n", type=int, default=600, help="images per made-up folder")
    parser.add_argument("--steps", type=int, default=600, help="critic training steps")
    parser.add_argument("--out", type=Path, default=Path("w1_image_folders.png"))
    args = parser.parse_args(argv)

    from wgan_lip import estimate_w1, exact_w1
    from wgan_lip.data.sources import load_samples

    with tempfile.TemporaryDirectory() as tmp:
        p = args.p or make_folder(Path(tmp) / "p", args.n, left_only=True, seed=0)
        q = args.q or make_folder(Path(tmp) / "q", args.n, left_only=False, seed=1)
        est = estimate_w1(p, q, steps=args.steps, progress=False, seed=0)
        xp, xq = load_samples(p, name="P").data, load_samples(q, name="Q").data

    exact = exact_w1(xp.flatten(1)[:1000], xq.flatten(1)[:1000])
    print(
        f"certified W1 >= {est.value:.3f}  (95% CI [{est.ci_low:.3f}, {est.ci_high:.3f}], "
        f"critic {est.critic_name}, L = {est.lipschitz_bound:.4f})"
    )
    print(f"exact W1 of the two samples (POT, first 1,000 each): {exact:.3f}")

    with torch.no_grad():
        sp = est.critic(xp).flatten()
        sq = est.critic(xq).flatten()
    plot_extremes(xp, sp, xq, sq, args.out)
    print(f"most and least typical images: {args.out}")
    return {
        "value": est.value,
        "ci": (est.ci_low, est.ci_high),
        "exact": exact,
        "figure": str(args.out),
    }


def plot_extremes(xp, sp, xq, sq, out: Path, k: int = 6) -> None:
    """Rows: P's highest and lowest scores, then Q's highest and lowest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        ("P, highest", xp[sp.argsort(descending=True)[:k]]),
        ("P, lowest", xp[sp.argsort()[:k]]),
        ("Q, highest", xq[sq.argsort(descending=True)[:k]]),
        ("Q, lowest", xq[sq.argsort()[:k]]),
    ]
    fig, axes = plt.subplots(len(rows), k, figsize=(1.3 * k, 1.4 * len(rows)))
    for r, (title, imgs) in enumerate(rows):
        for c in range(k):
            ax = axes[r, c]
            img = imgs[c].reshape(-1, *imgs[c].shape[-2:])  # (C, H, W) -> first channel
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.suptitle("critic scores: high = looks like P")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
