"""Train a small certified classifier, certify it, and read the report.

A 3-class problem of 16x16 grey images made here (a bright band across the top rows, down
the left columns, or along the diagonal, on noise), so the example needs no dataset. The
network is the residual SLL convnet (``architecture="sll"``), trained with the HKR loss
(a hinge on the certified margin at ``eps_train`` minus a Kantorovich-Rubinstein term).
``certify`` then reports, at each L2 radius:

- certified: correct with margin > sqrt(2) * eps * L, L = ``lipschitz_bound`` of the weights
  (never an assumed 1), so no perturbation of norm eps can change the prediction;
- attacked: still correct under a PGD attack of norm eps (an upper bound of robustness);
- violations: certified yet broken by the attack. Always 0, or the certificate is wrong.

    python examples/certify_classifier.py
    python examples/certify_classifier.py --epochs 5 --eps 0.25 0.5 1.0
"""

from __future__ import annotations

import argparse

import torch


def bands(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images ``(1, 16, 16)`` in [0, 1] with labels 0 (top), 1 (left), 2 (diagonal)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.rand(n, 1, 16, 16, generator=g)
    x[y == 0, :, :4, :] += 0.6
    x[y == 1, :, :, :4] += 0.6
    diag = ((torch.arange(16)[:, None] - torch.arange(16)[None, :]).abs() < 2).float()
    x[y == 2] += 0.6 * diag
    return x.clamp(0, 1), y


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n", type=int, default=1500, help="training images")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args(argv)

    from wgan_lip.robust import LipschitzClassifier, certify
    from wgan_lip.threads import forward_macs, threads_for

    torch.manual_seed(0)
    x, y = bands(args.n, seed=0)
    model = LipschitzClassifier(
        "sll",  # the preset; network's fields override it (any certified registered layer)
        input_shape=(1, 16, 16),
        num_classes=3,
        network={"channels": [8, 16], "blocks_per_stage": 2, "widths": [64, 64]},
        objective={"loss": "hkr", "eps_train": 0.5, "kr_weight": 0.05},
        lr=3e-3,
    )
    opt = torch.optim.Adam(model.parameters(), lr=model.hparams.lr)
    # as many threads as the work needs: a small network thrashes on every core when
    # another process keeps one busy
    with threads_for(forward_macs(model.net, x[:64])):
        for _ in range(args.epochs):
            for idx in torch.randperm(len(y)).split(64):
                loss = model.loss(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    xt, yt = bands(300, seed=1)
    report = certify(model.net, xt, yt, args.eps, attack="pgd", attack_steps=20, attack_restarts=2)
    print(f"clean accuracy {report.clean:.3f}, Lipschitz bound {report.lipschitz_bound:.4f}")
    print("  eps   certified  attacked  violations")
    for r in report.radii:
        print(f"  {r.eps:<5g} {r.certified:9.3f} {r.attacked:9.3f} {r.violations:11d}")
    return report.to_dict()


if __name__ == "__main__":
    main()
