"""Margins, certificates and margin losses: one rule shared by training and certification.

For a classifier ``f`` with Lipschitz bound ``L`` (L2 -> L2), a perturbation ``d`` moves every
logit difference ``f_i - f_j`` by at most ``sqrt(2) * L * |d|_2`` (the difference of two
coordinates is ``sqrt(2)``-Lipschitz in the L2 norm of the logits). So a prediction whose
margin (top logit minus runner-up) exceeds ``sqrt(2) * eps * L`` is unchanged by any L2
perturbation of norm at most ``eps``: its certified radius is ``margin / (sqrt(2) * L)``.

L-infinity radii follow from ``|d|_2 <= sqrt(dim) * |d|_inf``: an L-inf ball of radius ``r`` is
inside the L2 ball of radius ``sqrt(dim) * r``. That is a loose but sound conversion.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def label_margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``f_y - max_{j != y} f_j`` per example: positive iff the label wins (ties lose).

    Args:
        logits: ``(n, k)`` scores, ``k >= 2``.
        labels: int64 labels ``(n,)`` in ``[0, k)``.

    Returns:
        The margins ``(n,)``, in ``logits``' dtype and differentiable.

    Example:
        >>> import torch
        >>> label_margin(torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0]]), torch.tensor([0, 1]))
        tensor([2., 0.])
    """
    true = logits.gather(1, labels[:, None]).squeeze(1)
    others = logits.scatter(1, labels[:, None], float("-inf"))
    return true - others.max(dim=1).values


def prediction_margin(logits: torch.Tensor) -> torch.Tensor:
    """Top logit minus the runner-up, per example (zero on ties).

    The margin of the predicted class, whatever the label: the quantity that certifies a
    prediction (correct or not) at radius ``margin / (sqrt(2) L)``.

    Args:
        logits: ``(n, k)`` scores, ``k >= 2``.

    Returns:
        The non-negative margins ``(n,)``.

    Example:
        >>> import torch
        >>> prediction_margin(torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 2.0]]))
        tensor([2., 0.])
    """
    top2 = logits.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def certified_radius(logits: torch.Tensor, labels: torch.Tensor, lipschitz: float) -> torch.Tensor:
    """The L2 radius within which the *correct* prediction provably holds; 0 if wrong.

    ``max(label_margin, 0) / (sqrt(2) * lipschitz)``: ties and wrong predictions get 0.

    Args:
        logits: ``(n, k)`` scores of a network whose Lipschitz bound is ``lipschitz``.
        labels: int64 labels ``(n,)``.
        lipschitz: a certified upper bound ``L`` of the network's L2 Lipschitz constant,
            positive.

    Returns:
        The radii ``(n,)``, non-negative.

    Raises:
        ValueError: ``lipschitz`` is not positive (or is NaN).

    Example:
        >>> import math, torch
        >>> r = certified_radius(torch.tensor([[3.0, 1.0]]), torch.tensor([0]), lipschitz=1.0)
        >>> round(float(r) * math.sqrt(2), 6)  # margin 2 = sqrt(2) * L * radius
        2.0
    """
    if not lipschitz > 0:
        raise ValueError(f"the Lipschitz bound must be positive, got {lipschitz}")
    return label_margin(logits, labels).clamp_min(0) / (SQRT2 * lipschitz)


def is_certified(
    logits: torch.Tensor, labels: torch.Tensor, eps: float, lipschitz: float
) -> torch.Tensor:
    """Correct and margin ``> sqrt(2) * eps * L``: the label provably wins in the eps-ball.

    Args:
        logits: ``(n, k)`` scores.
        labels: int64 labels ``(n,)``.
        eps: the L2 radius, non-negative (at 0: correct with a strict margin).
        lipschitz: a certified bound ``L`` of the network's Lipschitz constant, positive.

    Returns:
        A bool tensor ``(n,)``.

    Raises:
        ValueError: ``lipschitz`` is not positive (a negative or NaN bound would certify
            wrong predictions), or ``eps`` is negative or NaN.

    Example:
        >>> import torch
        >>> logits, labels = torch.tensor([[3.0, 1.0], [1.2, 1.0]]), torch.tensor([0, 0])
        >>> is_certified(logits, labels, eps=1.0, lipschitz=1.0)  # margins 2 and 0.2
        tensor([ True, False])
    """
    if not lipschitz > 0:  # an infinite bound is sound: it certifies nothing
        raise ValueError(f"the Lipschitz bound must be positive, got {lipschitz}")
    if not eps >= 0:
        raise ValueError(f"the radius must be non-negative, got {eps}")
    return label_margin(logits, labels) > SQRT2 * eps * lipschitz


def linf_to_l2(eps_inf: float, dim: int) -> float:
    """The L2 radius of the ball that contains the L-inf ball of radius ``eps_inf`` in ``dim``.

    ``sqrt(dim) * eps_inf`` (the ball's corners): sound but loose.

    Args:
        eps_inf: the L-infinity radius.
        dim: the number of input entries (e.g. ``C * H * W`` for images).

    Returns:
        The L2 radius, a float.

    Example:
        >>> linf_to_l2(0.1, 784)  # MNIST: 28 x 28 pixels
        2.8000000000000003
    """
    return math.sqrt(dim) * eps_inf


def multiclass_hinge(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Multi-class hinge loss with the certified margin ``sqrt(2) * eps``.

    Mean of ``max(0, sqrt(2) * eps - margin)``: zero once every example is certified at eps
    for a 1-Lipschitz network (the training loss of Li et al. 2019, margin ``sqrt(2) eps``).

    Args:
        logits: ``(n, k)`` scores.
        labels: int64 labels ``(n,)``.
        eps: the target certified L2 radius.

    Returns:
        The scalar loss (0-d tensor).

    Example:
        >>> import torch
        >>> logits, labels = torch.tensor([[3.0, 1.0], [1.0, 1.5]]), torch.tensor([0, 0])
        >>> float(multiclass_hinge(logits, labels, eps=1.0))  # margins 2 and -0.5
        0.9571067690849304
    """
    return F.relu(SQRT2 * eps - label_margin(logits, labels)).mean()


def tempered_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, temperature: float = 0.25
) -> torch.Tensor:
    """Cross-entropy of ``logits / temperature``.

    A small temperature rewards large margins (a 1-Lipschitz network cannot scale its logits
    up to sharpen the softmax itself).

    Args:
        logits: ``(n, k)`` scores.
        labels: int64 labels ``(n,)``.
        temperature: the divisor of the logits, positive.

    Returns:
        The mean cross-entropy, a 0-d tensor.

    Raises:
        ValueError: ``temperature`` is not positive.

    Example:
        >>> import torch
        >>> logits, labels = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
        >>> round(float(tempered_cross_entropy(logits, labels, temperature=1.0)), 4)
        0.3133
        >>> round(float(tempered_cross_entropy(logits, labels, temperature=0.25)), 4)
        0.0181
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return F.cross_entropy(logits / temperature, labels)


def kr_multiclass(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One-vs-rest Kantorovich-Rubinstein term of a batch of logits.

    The mean over classes ``k`` of ``E[f_k | y = k] - E[f_k | y != k]`` on the batch
    (classes absent from one side are left out). For a 1-Lipschitz ``f_k`` each term is a
    lower bound of the W1 distance between class ``k`` and the rest (Serrurier et al. 2021);
    0 when no class has both sides.

    Args:
        logits: ``(n, k)`` scores.
        labels: int64 labels ``(n,)`` in ``[0, k)``.

    Returns:
        The mean term, a 0-d tensor (differentiable; larger is better, so a loss subtracts
        it).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> float(kr_multiclass(logits, torch.tensor([0, 1, 0])))  # (1.5 - 0 + 1 - 0) / 2
        1.25
    """
    k = logits.shape[1]
    onehot = F.one_hot(labels, k).to(logits.dtype)
    pos, neg = onehot.sum(0), (1 - onehot).sum(0)
    both = (pos > 0) & (neg > 0)
    if not bool(both.any()):
        return logits.sum() * 0.0
    mean_pos = (logits * onehot).sum(0) / pos.clamp_min(1)
    mean_neg = (logits * (1 - onehot)).sum(0) / neg.clamp_min(1)
    return (mean_pos - mean_neg)[both].mean()


def hkr_loss(
    logits: torch.Tensor, labels: torch.Tensor, eps: float, kr_weight: float = 0.1
) -> torch.Tensor:
    """Hinge-KR loss: ``multiclass_hinge(eps) - kr_weight * kr_multiclass``.

    The hinge asks for the certified margin ``sqrt(2) * eps``; the KR term keeps pushing
    every class's score apart after the hinge is satisfied, which a 1-Lipschitz network can
    only do by spreading the classes in input space (Serrurier et al. 2021; deel-torchlip's
    HKR losses).

    Args:
        logits, labels: a batch of logits ``(n, k)`` and integer labels ``(n,)``.
        eps: the target certified radius of the hinge (margin ``sqrt(2) * eps``).
        kr_weight: weight of the KR term, non-negative (0: the plain hinge).

    Returns:
        The scalar loss.

    Raises:
        ValueError: a negative ``kr_weight``.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        >>> float(hkr_loss(logits, torch.tensor([0, 1]), eps=0.5, kr_weight=0.1))  # hinge 0
        -0.20000000298023224
    """
    if not kr_weight >= 0:
        raise ValueError(f"kr_weight must be non-negative, got {kr_weight}")
    return multiclass_hinge(logits, labels, eps) - kr_weight * kr_multiclass(logits, labels)
