"""``LipschitzClassifier``: a certified-robust classifier on any network of the registry.

Thin: the network is a :class:`~wgan_lip.networks.NetworkSpec` built by the one
:func:`~wgan_lip.networks.build`, starting from a preset of :data:`PRESETS` (``fc3``: the
FC-3 of Anil et al., Björck layers + MaxMin; ``bcop``: BCOP convolutions with invertible
downsampling, in the spirit of the "Large" network of Li et al.; ``aol``; ``sll``: residual
SLL layers) whose fields the ``network`` section overrides, so every certified layer of
:data:`~wgan_lip.layers.registry.LAYERS` reaches the classifier from YAML. The losses and
the certificate rule come from :mod:`wgan_lip.robust.margins`. Every validation reports
clean accuracy and certified accuracy at the L2 radii ``eval_radii.l2`` and at the L-inf
radii ``eval_radii.linf`` (through ``|d|_2 <= sqrt(dim) |d|_inf``), with
``L = lipschitz_bound(model)`` computed then.

Checkpoints written before the specs existed kept their options flat (``widths``,
``loss``, ``eval_eps``...): :func:`migrate_hparams` translates them, to the very network
those checkpoints were built with.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from ..checkpoints import peek_checkpoint
from ..errors import InputError
from ..layers import lipschitz_bound
from ..networks import (
    LIBRARY_DEFAULTS,
    NetworkSpec,
    build,
    check_fields,
    only_used,
    require_certified,
    used_fields,
)
from ..options import dataclass_of
from ..threads import forward_macs
from ..work_threads import WorkThreads, batch_rows
from .margins import hkr_loss, is_certified, linf_to_l2, multiclass_hinge, tempered_cross_entropy

LOSSES = ("hinge", "xent", "hkr")
SCHEDULES = ("step", "cosine")

_CONVNET = NetworkSpec(
    "convnet",
    widths=(1024, 1024, 1024),
    channels=(16, 32, 64),
    blocks_per_stage=1,
    activation="maxmin",
)
PRESETS: dict[str, NetworkSpec] = {
    "fc3": NetworkSpec("mlp", widths=(1024, 1024, 1024), linear="bjorck", activation="maxmin"),
    "bcop": replace(_CONVNET, linear="bjorck", conv="bcop"),
    "aol": replace(_CONVNET, linear="aol", conv="aol"),
    # residual SLL layers need two blocks per stage (the first changes the channel count)
    "sll": replace(_CONVNET, linear="sll", conv="sll", blocks_per_stage=2),
}
"""The classifier's network presets by ``architecture`` name; a ``network`` section's fields
win over them. ``fc3`` flattens the images; the convnets need square-ish images whose side
is divisible by ``2 ** len(channels)``."""

ARCHITECTURES: tuple[str, ...] = tuple(PRESETS)


def _radii(values: object, name: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise InputError(f"{name} must be a list of radii, got {values!r}")
    out = tuple(float(v) for v in values)
    if any(not v >= 0 for v in out):
        raise InputError(f"radii must be non-negative, got {name} {list(out)}")
    return out


def _plain(spec: object) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(spec).items()}


@dataclass(frozen=True)
class Objective:
    """The training loss and its settings: YAML ``objective:``.

    Attributes:
        loss: ``hinge`` (multi-class hinge with margin ``sqrt(2) * eps_train``, Li et al.),
            ``hkr`` (that hinge minus ``kr_weight`` times the one-vs-rest KR term) or
            ``xent`` (cross-entropy of ``logits / temperature``).
        eps_train: the target L2 radius of the margin losses, non-negative.
        temperature: ``xent``: the divisor of the logits (see
            :func:`~wgan_lip.robust.margins.tempered_cross_entropy`).
        kr_weight: ``hkr``: weight of the KR term, non-negative.

    Raises:
        InputError: an unknown ``loss``, a negative ``eps_train`` or ``kr_weight``.

    Example:
        >>> from wgan_lip.robust.module import Objective
        >>> Objective("hkr", eps_train=1.0).kr_weight
        0.1
        >>> Objective(loss="mse")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: unknown loss 'mse'; use one of hinge, xent, hkr
    """

    loss: Literal["hinge", "xent", "hkr"] = "hinge"
    eps_train: float = 0.5
    temperature: float = 0.25
    kr_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if not self.kr_weight >= 0:
            raise InputError(f"kr_weight must be non-negative, got {self.kr_weight}")
        if not self.eps_train >= 0:
            raise InputError(f"radii must be non-negative, got eps_train {self.eps_train}")


@dataclass(frozen=True)
class EvalRadii:
    """The radii of the certified accuracies each validation reports: YAML ``eval_radii:``.

    Attributes:
        l2: L2 radii (logged as ``certified_l2_<r>``).
        linf: L-inf radii, certified through ``|d|_2 <= sqrt(dim) |d|_inf`` (logged as
            ``certified_linf_<r>``).

    Raises:
        InputError: a negative radius, or radii that are not a list.

    Example:
        >>> from wgan_lip.robust.module import EvalRadii
        >>> EvalRadii(l2=[0.5]).l2, EvalRadii().linf
        ((0.5,), (0.1,))
    """

    l2: tuple[float, ...] = (0.3, 1.0, 1.58)
    linf: tuple[float, ...] = (0.1,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "l2", _radii(self.l2, "l2"))
        object.__setattr__(self, "linf", _radii(self.linf, "linf"))


# The options of older configs and checkpoints, by section: old flat name -> its field there.
_OLD_NETWORK = ("widths", "channels", "blocks_per_stage", "activation", "group_size")
_OLD_OBJECTIVE = ("loss", "eps_train", "temperature", "kr_weight")
_OLD_EVAL = {"eval_eps": "l2", "eval_linf": "linf"}
# what those classifiers built when an option was left out (any architecture)
_OLD_DEFAULTS = {
    "widths": [1024, 1024, 1024],
    "channels": [16, 32, 64],
    "blocks_per_stage": 1,
    "activation": "maxmin",
    "group_size": 2,
}


def migrate_hparams(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A classifier's saved hyperparameters with the flat options of older versions moved in.

    They move into ``network``, ``objective`` and ``eval_radii``; the network is the one
    those versions built: ``fc3`` read ``widths``, ``activation`` and ``group_size``; the
    convnets read ``widths`` (the head), ``channels``, ``blocks_per_stage`` and
    ``group_size`` but always used GroupSort (``activation`` was ignored). Options left out
    take those versions' defaults. Hyperparameters without flat options come back
    unchanged (as a new dict).

    Args:
        hparams: the saved hyperparameters (not modified).

    Returns:
        A new dict of the hyperparameters, migrated.

    Example:
        >>> from wgan_lip.robust.module import migrate_hparams
        >>> new = migrate_hparams({"architecture": "bcop", "channels": [4], "widths": [16],
        ...                        "activation": "maxmin", "loss": "hkr", "eval_eps": [1.0]})
        >>> new["network"]["activation"], new["network"]["blocks_per_stage"]
        ('groupsort', 1)
        >>> new["objective"], new["eval_radii"]
        ({'loss': 'hkr'}, {'l2': [1.0]})
    """
    out = dict(hparams)
    old = [k for k in (*_OLD_NETWORK, *_OLD_OBJECTIVE, *_OLD_EVAL) if k in out]
    if not old:
        return out
    flat = {k: out.pop(k) for k in old}
    if any(k in flat for k in _OLD_NETWORK) or "network" not in out:
        net = {**_OLD_DEFAULTS, **{k: flat[k] for k in _OLD_NETWORK if k in flat}}
        arch = out.get("architecture", "fc3")
        if arch == "fc3":
            net.pop("channels"), net.pop("blocks_per_stage")
        else:  # the convnets of those versions: GroupSort of group_size, whatever activation
            net["activation"] = "groupsort"
        net = {**net, **dict(out.get("network") or {})}
        # only what that network reads (fc3 with MaxMin did not read group_size): the
        # current check refuses fields a network does not use
        full = NetworkSpec.of(net).over(PRESETS.get(arch, PRESETS["fc3"]), LIBRARY_DEFAULTS)
        out["network"] = {k: v for k, v in net.items() if k in used_fields(full)}
    for name, keys in (("objective", {k: k for k in _OLD_OBJECTIVE}), ("eval_radii", _OLD_EVAL)):
        moved = {new: flat[k] for k, new in keys.items() if k in flat}
        if moved:
            out[name] = {**moved, **dict(out.get(name) or {})}
    return out


def classifier_network(architecture: str, network: NetworkSpec | Mapping | None) -> NetworkSpec:
    """The complete network spec of a classifier: ``network``'s fields over the preset.

    Args:
        architecture: a name of :data:`PRESETS`.
        network: the fields that differ from the preset (a spec, a mapping or None).

    Returns:
        The spec with every field set (the preset, then
        :data:`~wgan_lip.networks.LIBRARY_DEFAULTS`, fill what ``network`` leaves unset).

    Raises:
        InputError: an unknown ``architecture``, a bad ``network``, or a layer that is not
            1-Lipschitz by construction (``certified`` in the registry): its certificates
            would not hold.

    Example:
        >>> from wgan_lip.robust.module import classifier_network
        >>> spec = classifier_network("bcop", {"conv": "cayley", "channels": [8]})
        >>> spec.kind, spec.conv, spec.linear, spec.channels
        ('convnet', 'cayley', 'bjorck', (8,))
        >>> classifier_network("fc3", {"linear": "plain"})
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: a certified classifier certifies only layers that are \
1-Lipschitz by construction; plain is not: use one of the linear layers aol, bjorck, sll
    """
    if architecture not in PRESETS:
        raise InputError(
            f"unknown architecture {architecture!r}; use one of {', '.join(ARCHITECTURES)}"
        )
    spec = NetworkSpec.of(network).over(PRESETS[architecture], LIBRARY_DEFAULTS)
    check_fields(network, spec)
    require_certified(spec, "a certified classifier")
    return spec


class LipschitzClassifier(L.LightningModule):
    """A classifier whose Lipschitz bound certifies its predictions.

    Args:
        architecture: the preset of :data:`PRESETS` the network starts from: ``fc3``
            (flattened input, Björck MLP), ``bcop`` (BCOP convolutions, Björck head),
            ``aol`` (AOL convolutions and dense layers) or ``sll`` (residual SLL convnet).
        input_shape, num_classes: from the datamodule when None.
        network: the fields of the network that differ from the preset (YAML ``network:``
            with the keys of :class:`~wgan_lip.networks.NetworkSpec`: ``kind``, ``widths``
            (hidden widths of an mlp, or the head's of a convnet), ``channels``,
            ``blocks_per_stage``, ``linear``, ``conv``, ``activation``, ``group_size``...).
            Only layers that are 1-Lipschitz by construction are admitted.
        objective: the loss (:class:`Objective`: ``loss``, ``eps_train``, ``temperature``,
            ``kr_weight``).
        lr: Adam learning rate.
        lr_schedule: ``step`` (x0.1 at each epoch of ``epochs_decay``; constant when empty)
            or ``cosine`` (to 0 over the run: over ``trainer.max_time`` when set, else over
            ``trainer.max_steps`` / ``max_epochs``).
        epochs_decay: ``step``: the epochs at which the learning rate is divided by 10.
        eval_radii: radii reported at each validation (:class:`EvalRadii`: ``l2``,
            ``linf``).

    Raises:
        InputError: an unknown ``architecture``, layer, ``loss`` or ``lr_schedule``, an
            uncertified layer, a negative ``kr_weight`` or radius, or (when the network is
            built) sizes that do not fit the inputs (see :func:`~wgan_lip.networks.build`).

    Example:
        >>> import torch
        >>> from wgan_lip.robust import LipschitzClassifier
        >>> clf = LipschitzClassifier("fc3", input_shape=(1, 8, 8), num_classes=3,
        ...                           network={"widths": [32]})
        >>> clf.net(torch.rand(5, 1, 8, 8)).shape
        torch.Size([5, 3])
        >>> clf = LipschitzClassifier("bcop", input_shape=(1, 8, 8), num_classes=3,
        ...                           network={"conv": "cayley", "channels": [4], "widths": []})
        >>> type(clf.net[0]).__name__
        'CayleyConv2d'
    """

    # Options of older configs that moved, each to its new dotted place under init_args: the
    # CLI names the new place when one is written the old way.
    MOVED_OPTIONS: ClassVar[dict[str, str]] = {
        **{k: f"network.{k}" for k in _OLD_NETWORK},
        **{k: f"objective.{k}" for k in _OLD_OBJECTIVE},
        **{k: f"eval_radii.{v}" for k, v in _OLD_EVAL.items()},
    }

    def __init__(
        self,
        architecture: Literal["fc3", "bcop", "aol", "sll"] = "fc3",
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        network: NetworkSpec | None = None,
        objective: Objective | None = None,
        lr: float = 1e-3,
        lr_schedule: Literal["step", "cosine"] = "step",
        epochs_decay: Sequence[int] = (),
        eval_radii: EvalRadii | None = None,
    ) -> None:
        super().__init__()
        self.network = classifier_network(architecture, network)
        self.objective: Objective = dataclass_of(Objective, objective, "objective")
        self.eval_radii: EvalRadii = dataclass_of(EvalRadii, eval_radii, "eval_radii")
        if lr_schedule not in SCHEDULES:
            raise InputError(f"unknown lr_schedule {lr_schedule!r}; use step or cosine")
        self.save_hyperparameters()
        # plain values in checkpoints; the network complete, so that it never depends on
        # the presets or the library's defaults of a later version
        self.hparams.network = only_used(self.network).as_dict()
        self.hparams.objective = _plain(self.objective)
        self.hparams.eval_radii = _plain(self.eval_radii)
        self.net: torch.nn.Module | None = None
        if input_shape is not None and num_classes is not None:
            self._build(input_shape, num_classes)
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _build(self, input_shape: Sequence[int], num_classes: int) -> None:
        h = self.hparams
        shape = tuple(int(s) for s in input_shape)
        h.input_shape, h.num_classes = list(shape), int(num_classes)
        self.net = build(self.network, shape, num_classes)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):  # type: ignore[override]
        """Lightning's loader, after moving the flat options of older checkpoints into their
        sections (see :func:`migrate_hparams`)."""
        checkpoint = peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))
        hparams = checkpoint.get("hyper_parameters", {})
        if any(k in hparams for k in cls.MOVED_OPTIONS):
            checkpoint["hyper_parameters"] = migrate_hparams(hparams)
            checkpoint_path = io.BytesIO()
            torch.save(checkpoint, checkpoint_path)
            checkpoint_path.seek(0)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def setup(self, stage: str) -> None:
        if self.net is None:  # LightningCLI: shapes from the data
            dm = self.trainer.datamodule
            self._build(dm.input_shape, dm.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def lipschitz_bound(self) -> float:
        """The certified bound of the network on inputs of the data's shape (convolutions
        bounded exactly on their sizes), the ``L`` of every certificate this module logs."""
        return lipschitz_bound(self.net, tuple(self.hparams.input_shape))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        o = self.objective
        if o.loss == "hinge":
            return multiclass_hinge(logits, labels, o.eps_train)
        if o.loss == "hkr":
            return hkr_loss(logits, labels, o.eps_train, o.kr_weight)
        return tempered_cross_entropy(logits, labels, o.temperature)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss(logits, y)
        self.log("train/loss", loss.detach(), prog_bar=True)
        self.log("train/accuracy", (logits.argmax(1) == y).float().mean().detach())
        return loss

    def configure_callbacks(self):
        # a small classifier trains fastest on few threads, and beside a busy process by far
        return [WorkThreads(LipschitzClassifier._step_work)]

    @staticmethod
    def _step_work(trainer: L.Trainer, module: LipschitzClassifier) -> float:
        """Multiply-adds of one forward pass of the network on a training batch."""
        rows = batch_rows(trainer)
        x = torch.zeros(rows, *module.hparams.input_shape, device=module.device)
        return forward_macs(module.net, x)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr)
        if self.hparams.lr_schedule == "cosine":
            sched = torch.optim.lr_scheduler.LambdaLR(opt, self._cosine_factor)
            return [opt], [{"scheduler": sched, "interval": "step"}]
        if not self.hparams.epochs_decay:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(self.hparams.epochs_decay), 0.1)
        return [opt], [sched]

    def _cosine_factor(self, step: int) -> float:
        """``(1 + cos(pi t)) / 2`` of the run's progress ``t``: the share of
        ``trainer.max_time`` spent training when a time budget is set (the budgeted runs of
        the CPU configs), else of the estimated optimizer steps."""
        trainer = self._trainer
        progress = 0.0
        if trainer is not None:
            timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
            remaining = timer.time_remaining("train") if timer is not None else None
            if remaining is not None:
                elapsed = timer.time_elapsed("train")
                progress = elapsed / max(elapsed + remaining, 1e-9)
            else:
                total = trainer.estimated_stepping_batches
                progress = step / total if math.isfinite(total) and total > 0 else 0.0
        return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))

    # ----- evaluation: certified accuracy with the bound of the current weights -----

    def _eval_start(self) -> None:
        self._val = []

    def _eval_step(self, batch) -> None:
        x, y = batch
        self._val.append((self.net(x).detach().cpu(), y.cpu()))

    def _eval_end(self, prefix: str) -> None:
        if not self._val:
            return
        logits = torch.cat([v[0] for v in self._val])
        labels = torch.cat([v[1] for v in self._val])
        self._val = []
        if self.trainer is not None and self.trainer.world_size > 1:
            # DDP: each process saw a share (the sampler pads the shares to equal sizes);
            # every process then certifies the whole set with the same bound
            logits = self.all_gather(logits.to(self.device)).flatten(0, 1).cpu()
            labels = self.all_gather(labels.to(self.device)).flatten(0, 1).cpu()
        bound = self.lipschitz_bound()
        dim = math.prod(self.hparams.input_shape)
        metrics = {
            "accuracy": float((logits.argmax(1) == labels).float().mean()),
            "lipschitz_bound": bound,
        }
        for e in self.eval_radii.l2:
            metrics[f"certified_l2_{e:g}"] = float(
                is_certified(logits, labels, e, bound).float().mean()
            )
        for e in self.eval_radii.linf:
            cert = is_certified(logits, labels, linf_to_l2(e, dim), bound)
            metrics[f"certified_linf_{e:g}"] = float(cert.float().mean())
        for k, v in metrics.items():
            self.log(f"{prefix}/{k}", v, sync_dist=False)

    def on_validation_epoch_start(self) -> None:
        self._eval_start()

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self._eval_end("val")

    def on_test_epoch_start(self) -> None:
        self._eval_start()

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")
