"""The feature network behind classifier-FID and KID: a small classifier trained on the data.

Inception features (the usual FID) need downloaded ImageNet weights and describe natural
photographs, not 28x28 digits. wgan_lip instead trains a small convnet classifier on the
dataset itself (``scripts/train_feature_net.py``) and uses its penultimate layer as the
feature space. Numbers computed this way are called **classifier-FID** and are comparable
only between runs that use the same feature-net checkpoint, never to published FIDs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

FORMAT = "wgan_lip.feature_net/1"


class FeatureNet(nn.Module):
    """Two conv blocks (32, 64 channels, max-pool), a ``feature_dim`` ReLU layer, a linear head.

    ``features(x)`` is the penultimate activation; ``forward(x)`` the class logits.
    Inputs are images in [0, 1] of shape ``(C, image_size, image_size)``.
    """

    def __init__(
        self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
        feature_dim: int = 128,
    ) -> None:  # fmt: skip
        super().__init__()
        self.config = dict(in_channels=in_channels, image_size=image_size,
                           num_classes=num_classes, feature_dim=feature_dim)  # fmt: skip
        side = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * side * side, feature_dim), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierFeatures(nn.Module):
    """Adapter for torchmetrics: ``forward`` returns the features, ``num_features`` their size."""

    def __init__(self, net: FeatureNet) -> None:
        super().__init__()
        self.net = net.eval()
        self.num_features = net.config["feature_dim"]

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x.float())


def train_feature_net(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 2,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log=None,
) -> FeatureNet:
    """Train a :class:`FeatureNet` classifier with Adam and cross-entropy (pure torch)."""
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise InputError(f"feature net needs square images (n, C, H, H), got {tuple(images.shape)}")
    torch.manual_seed(seed)
    net = FeatureNet(images.shape[1], images.shape[2], int(labels.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        perm = torch.randperm(len(images), generator=gen)
        total = 0.0
        for start in range(0, len(images), batch_size):
            idx = perm[start : start + batch_size]
            loss = F.cross_entropy(net(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if log is not None:
            log(f"epoch {epoch + 1}/{epochs}: train loss {total / len(images):.4f}")
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    correct = sum(
        int((net(images[s : s + 1000]).argmax(1) == labels[s : s + 1000]).sum())
        for s in range(0, len(images), 1000)
    )
    return correct / len(images)


def save_feature_net(net: FeatureNet, path: str | os.PathLike, **info) -> Path:
    """Save weights, architecture and ``info`` (dataset, accuracy) to ``path``."""
    from ..plotting import save_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": net.config, "state_dict": net.state_dict(), **info}
    return save_atomic(lambda tmp: torch.save(payload, tmp), path)


def load_feature_net(path: str | os.PathLike) -> tuple[FeatureNet, dict]:
    """Load a checkpoint written by :func:`save_feature_net`; ``(net, info)``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(
            f"feature net checkpoint {str(path)!r} not found; train it with "
            f"`python scripts/train_feature_net.py --dataset DATASET --out {path}`"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"cannot read feature net checkpoint {str(path)!r} ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{str(path)!r} is not a wgan_lip feature net checkpoint")
    net = FeatureNet(**payload["config"])
    net.load_state_dict(payload["state_dict"])
    info = {k: v for k, v in payload.items() if k not in ("format", "config", "state_dict")}
    return net.eval(), info
