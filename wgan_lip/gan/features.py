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
from ..threads import forward_macs, threads_for

FORMAT = "wgan_lip.feature_net/1"


class FeatureNet(nn.Module):
    """Two conv blocks (32, 64 channels, max-pool), a ``feature_dim`` ReLU layer, a linear head.

    ``features(x)`` is the penultimate activation; ``forward(x)`` the class logits.
    Inputs are images in [0, 1] of shape ``(C, image_size, image_size)``.

    Args:
        in_channels: channels ``C`` of the images.
        image_size: side of the square images.
        num_classes: number of classes (logits).
        feature_dim: size of the penultimate layer, the feature space of classifier-FID.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import FeatureNet
        >>> net = FeatureNet(in_channels=1, image_size=28, num_classes=10, feature_dim=64)
        >>> x = torch.rand(2, 1, 28, 28)
        >>> net(x).shape, net.features(x).shape
        (torch.Size([2, 10]), torch.Size([2, 64]))
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        feature_dim: int = 128,
    ) -> None:
        super().__init__()
        self.config = dict(
            in_channels=in_channels,
            image_size=image_size,
            num_classes=num_classes,
            feature_dim=feature_dim,
        )
        side = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * side * side, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierFeatures(nn.Module):
    """Adapter for torchmetrics: ``forward`` returns the features, ``num_features`` their size.

    The net is put in eval mode; ``forward`` runs without autograd on ``x.float()``.

    Args:
        net: the trained :class:`FeatureNet`.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import FeatureNet
        >>> from wgan_lip.gan.features import ClassifierFeatures
        >>> feats = ClassifierFeatures(FeatureNet(image_size=8, feature_dim=16))
        >>> feats.num_features, feats(torch.rand(3, 1, 8, 8)).shape
        (16, torch.Size([3, 16]))
    """

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
    """Train a :class:`FeatureNet` classifier with Adam and cross-entropy (pure torch).

    The net has ``int(labels.max()) + 1`` classes and the images' channels and side. Calls
    ``torch.manual_seed(seed)`` (the initialization), which reseeds torch's global
    generator; the batch order uses its own generator of the same seed.

    Args:
        images: float images ``(n, C, H, H)``, in [0, 1] as the feature net expects later.
        labels: int64 class labels ``(n,)``, from 0.
        epochs: passes over the data.
        batch_size: images per step.
        lr: Adam learning rate.
        seed: seed of the initialization and of the batch order.
        log: optional callable taking a one-line string per epoch (the mean training
            loss), e.g. ``print``.

    Returns:
        The trained :class:`FeatureNet`, in eval mode.

    Raises:
        InputError: ``images`` are not square images ``(n, C, H, H)``.

    Example:
        >>> import torch
        >>> from wgan_lip.gan import train_feature_net
        >>> images, labels = torch.rand(32, 1, 8, 8), torch.arange(32) % 3
        >>> net = train_feature_net(images, labels, epochs=1, batch_size=16)
        >>> net.config["num_classes"], net.training
        (3, False)
    """
    if images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise InputError(f"feature net needs square images (n, C, H, H), got {tuple(images.shape)}")
    torch.manual_seed(seed)
    net = FeatureNet(images.shape[1], images.shape[2], int(labels.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    # threads for the work: a small convnet thrashes on every core beside a busy process
    with threads_for(forward_macs(net, images[:batch_size])):
        _fit(net, opt, images, labels, epochs, batch_size, gen, log)
    return net.eval()


def _fit(net, opt, images, labels, epochs, batch_size, gen, log) -> None:
    """The epochs of :func:`train_feature_net`."""
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


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of ``images`` whose largest logit is their label.

    Scored 1,000 images at a time without autograd. The net is put in eval mode and left so.

    Args:
        net: a classifier mapping images ``(k, ...)`` to logits ``(k, classes)``.
        images: the images ``(n, ...)``, ``n >= 1`` (an empty set divides by zero).
        labels: int64 class labels ``(n,)``.

    Returns:
        The accuracy, a float in [0, 1].

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from wgan_lip.gan.features import accuracy
        >>> net = nn.Flatten()  # the logits are the two pixels
        >>> images = torch.tensor([[[[0.9, 0.1]]], [[[0.2, 0.8]]], [[[0.7, 0.3]]]])
        >>> accuracy(net, images, torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    net.eval()
    correct = sum(
        int((net(images[s : s + 1000]).argmax(1) == labels[s : s + 1000]).sum())
        for s in range(0, len(images), 1000)
    )
    return correct / len(images)


def save_feature_net(net: FeatureNet, path: str | os.PathLike, **info) -> Path:
    """Save weights, architecture and ``info`` (dataset, accuracy) to ``path``.

    The file is a ``torch.save`` dict (format ``wgan_lip.feature_net/1``) written
    atomically; missing parent folders are created. :func:`load_feature_net` reads it back.

    Args:
        net: the feature net.
        path: the file to write (replaced if it exists).
        **info: extra entries stored beside the weights (plain values such as strings and
            numbers, so that ``weights_only`` loading accepts them); the keys ``format``,
            ``config`` and ``state_dict`` are reserved.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> import os, tempfile
        >>> from wgan_lip.gan import FeatureNet, load_feature_net, save_feature_net
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_feature_net(FeatureNet(image_size=8), os.path.join(folder, "f.pt"),
        ...                             dataset="demo", accuracy=0.5)
        ...     net, info = load_feature_net(path)
        >>> net.config["image_size"], info
        (8, {'dataset': 'demo', 'accuracy': 0.5})
    """
    from ..paths import save_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": net.config, "state_dict": net.state_dict(), **info}
    return save_atomic(lambda tmp: torch.save(payload, tmp), path)


def load_feature_net(path: str | os.PathLike) -> tuple[FeatureNet, dict]:
    """Load a checkpoint written by :func:`save_feature_net`; ``(net, info)``.

    Args:
        path: the checkpoint file (``~`` is expanded); loaded on the CPU with
            ``weights_only=True``.

    Returns:
        ``(net, info)``: the :class:`FeatureNet` in eval mode and the dict of the extra
        entries saved with it.

    Raises:
        InputError: a missing file (the message says how to train one), a file torch cannot
            read, or one that is not a feature-net checkpoint.

    Example:
        >>> import os, tempfile
        >>> from wgan_lip.gan import FeatureNet, load_feature_net, save_feature_net
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save_feature_net(FeatureNet(), os.path.join(folder, "feature_net.pt"))
        ...     net, info = load_feature_net(path)
        >>> type(net).__name__, net.training, info
        ('FeatureNet', False, {})
    """
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
