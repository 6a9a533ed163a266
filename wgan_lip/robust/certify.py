"""Certify a classifier at a list of L2 radii and check the certificates against PGD."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..errors import InputError
from ..layers import NonFiniteWeightsError, lipschitz_bound
from ..limits import MAX_ATTACK_STEPS, MAX_RESTARTS
from ..threads import forward_macs, threads_for
from .attacks import pgd_l2
from .margins import is_certified


@dataclass
class RadiusResult:
    """Accuracies at one L2 radius ``eps`` (fractions of the evaluated examples).

    Args:
        eps: the L2 radius.
        certified: fraction of examples correct with a certificate at ``eps``.
        attacked: fraction still correct under the attack at ``eps`` (None: no attack).
        violations: examples certified at ``eps`` yet broken by the attack (must be 0).

    Example:
        >>> from wgan_lip.robust import RadiusResult
        >>> RadiusResult(eps=0.5, certified=0.7, attacked=0.8, violations=0)
        RadiusResult(eps=0.5, certified=0.7, attacked=0.8, violations=0)
    """

    eps: float
    certified: float
    attacked: float | None
    violations: int


@dataclass
class CertificationReport:
    """Clean accuracy, and per radius the certified and attacked accuracies.

    ``violations`` counts examples certified at a radius yet misclassified by the attack at
    that radius: any violation is a bug in the certificate (or in the bound).

    Args:
        n: number of evaluated examples.
        clean: fraction classified correctly.
        lipschitz_bound: the bound ``L`` the certificates used.
        radii: one :class:`RadiusResult` per radius, in the order asked.
        attack: the attack run (``"pgd"``) or None.

    Example:
        >>> from wgan_lip.robust import CertificationReport, RadiusResult
        >>> report = CertificationReport(n=10, clean=0.9, lipschitz_bound=1.0,
        ...                              radii=[RadiusResult(0.5, 0.6, 0.7, 0)], attack="pgd")
        >>> report.violations, report.to_dict()["radii"][0]["certified"]
        (0, 0.6)
    """

    n: int
    clean: float
    lipschitz_bound: float
    radii: list[RadiusResult] = field(default_factory=list)
    attack: str | None = None

    @property
    def violations(self) -> int:
        return sum(r.violations for r in self.radii)

    def to_dict(self) -> dict:
        return {**asdict(self), "violations": self.violations}


def model_bound(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> float:
    """``lipschitz_bound(model, input_shape)``, or a clear refusal for uncertifiable layers.

    Args:
        model: the network (e.g. a classifier's ``net``).
        input_shape: the shape of one input, e.g. ``(1, 28, 28)``, which lets convolutions
            be bounded on their actual input size; None bounds them for every size.

    Returns:
        The certified Lipschitz bound (L2), a float.

    Raises:
        InputError: a layer without a certified bound (the ``TypeError`` of
            :func:`~wgan_lip.layers.lipschitz_bound`, in one line), or NaN / infinite
            weights (a diverged model).

    Example:
        >>> from torch import nn
        >>> from wgan_lip.models import lipschitz_mlp
        >>> from wgan_lip.robust.certify import model_bound
        >>> round(model_bound(lipschitz_mlp(4, [8], 2)), 4)
        1.0
        >>> class Square(nn.Module):
        ...     def forward(self, x):
        ...         return x * x
        >>> model_bound(nn.Sequential(nn.Linear(2, 2), Square()))
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: cannot certify this model: lipschitz_bound: no certified
        bound for module type Square; ...
    """
    try:
        return lipschitz_bound(model, input_shape)
    except (TypeError, NonFiniteWeightsError) as e:
        raise InputError(f"cannot certify this model: {e}") from None


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[s : s + batch_size]) for s in range(0, len(x), batch_size)])


def certify(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: list[float],
    *,
    attack: str | None = "pgd",
    attack_steps: int = 50,
    attack_restarts: int = 3,
    batch_size: int = 500,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    progress: bool = False,
) -> CertificationReport:
    """Clean, certified and (with ``attack="pgd"``) attacked accuracy at each L2 radius.

    The certificate uses ``L = lipschitz_bound(model, input_shape=images.shape[1:])`` (never
    an assumed 1; convolutions bounded exactly on the images' size): an example is certified
    at ``eps`` when it is classified correctly with margin ``> sqrt(2) eps L``.

    Args:
        model: the classifier, mapping ``images`` to logits ``(n, classes)``.
        images, labels: the examples; pixels in ``bounds`` (the attack stays there).
        eps: L2 radii, non-negative and finite. The attacked accuracy at a radius counts
            an example broken at any smaller radius of the list as broken (so it never
            increases with the radius).
        attack: ``"pgd"`` (an L2 PGD attack at every radius) or None (certificates only).
        attack_steps, attack_restarts: PGD's budget.
        batch_size: examples per forward pass.
        bounds: the valid pixel range, or None for no clamp.
        progress: a progress bar of the attack on stderr (batches x radii, with the time
            left); the attack is what takes long.

    Returns:
        A :class:`CertificationReport`: ``clean``, ``lipschitz_bound`` and, per radius, the
        certified and attacked accuracy and the ``violations`` (certified yet broken by the
        attack, which must be 0).

    Raises:
        InputError: a negative or infinite radius, an unknown attack, ``attack_steps`` or
            ``attack_restarts`` below 1 or above ``MAX_ATTACK_STEPS`` / ``MAX_RESTARTS``, or a
            model with a layer that has no certified bound.

    Example:
        >>> import torch
        >>> from wgan_lip.models import lipschitz_mlp
        >>> from wgan_lip.robust import certify
        >>> model = lipschitz_mlp(4, [8], 2)
        >>> x, y = torch.rand(16, 4), torch.randint(0, 2, (16,))
        >>> report = certify(model, x, y, [0.1], attack_steps=5, attack_restarts=1)
        >>> report.violations
        0
    """
    _check_options(eps, attack, attack_steps, attack_restarts, batch_size)
    was_training = model.training
    model.eval()
    # threads for the work of one batch: a small network's attack thrashes on every core
    # beside a busy process
    try:
        with threads_for(forward_macs(model, images[:batch_size])):
            bound = model_bound(model, tuple(images.shape[1:]))
            logits = _logits(model, images, batch_size)
            correct = logits.argmax(1) == labels
            report = CertificationReport(
                n=len(labels),
                clean=float(correct.float().mean()),
                lipschitz_bound=bound,
                attack=attack,
            )
            robust_at: dict[float, torch.Tensor] = {}
            if attack == "pgd":
                # Smallest radius first: a point broken within eps is broken within any larger
                # radius, so attacked accuracy never rises with eps (nor above clean).
                robust = correct.clone()
                radii = sorted(set(eps))
                bar = _bar(progress, len(radii) * math.ceil(len(images) / batch_size))
                try:
                    for e in radii:
                        if bar is not None:
                            bar.set_description(f"PGD at eps {e:g}")
                        robust = robust & _attack(
                            model,
                            images,
                            labels,
                            e,
                            attack_steps,
                            attack_restarts,
                            batch_size,
                            bounds,
                            bar,
                        )
                        robust_at[e] = robust
                finally:
                    if bar is not None:
                        bar.close()
            for e in eps:
                cert = is_certified(logits, labels, e, bound)
                attacked, violations = None, 0
                if attack == "pgd":
                    attacked = float(robust_at[e].float().mean())
                    violations = int((cert & ~robust_at[e]).sum())
                report.radii.append(
                    RadiusResult(e, float(cert.float().mean()), attacked, violations)
                )
    finally:
        model.train(was_training)
    return report


def _check_options(eps, attack, attack_steps, attack_restarts, batch_size) -> None:
    """One-line refusals of :func:`certify`'s options, before any work."""
    if not isinstance(eps, (list, tuple)) or not eps:
        raise InputError(f"eps must be a non-empty list of radii, got {eps!r}")
    for e in eps:
        if isinstance(e, bool) or not isinstance(e, numbers.Real) or not 0 <= e < math.inf:
            raise InputError(f"radii must be finite, non-negative numbers, got {e!r}")
    if attack not in (None, "pgd"):
        raise InputError(f"unknown attack {attack!r}; use pgd or none")
    for name, value, top in (
        ("attack_steps", attack_steps, MAX_ATTACK_STEPS),
        ("attack_restarts", attack_restarts, MAX_RESTARTS),
        ("batch_size", batch_size, None),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
        if top is not None and value > top:
            raise InputError(f"{name} must be at most {top:,}, got {value:,}")


def _bar(progress: bool, total: int):
    """A tqdm bar on stderr over ``total`` attack batches, or None."""
    if not progress:
        return None
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, unit="batch", file=sys.stderr, dynamic_ncols=True, leave=False)


def _attack(
    model, images, labels, eps, steps, restarts, batch_size, bounds, bar=None
) -> torch.Tensor:
    """Which examples keep their label under :func:`pgd_l2` at radius ``eps`` (bool, n)."""
    kept = torch.zeros(len(labels), dtype=torch.bool)
    for s in range(0, len(images), batch_size):
        x, y = images[s : s + batch_size], labels[s : s + batch_size]
        with torch.enable_grad():
            adv = pgd_l2(model, x, y, eps, steps=steps, restarts=restarts, bounds=bounds)
        with torch.no_grad():
            kept[s : s + batch_size] = (model(adv).argmax(1) == y).cpu()
        if bar is not None:
            bar.update(1)
    return kept.to(labels.device)
