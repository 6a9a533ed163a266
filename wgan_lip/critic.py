"""The wrapper every critic shares: scores of samples as the user gave them.

``RawInputCritic`` serves W1 estimation (:mod:`wgan_lip.w1.critics`, which fits the
normalization to the data) and the WGAN (:mod:`wgan_lip.gan.critics`, which leaves it at the
identity), so neither package reaches into the other.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from .layers import lipschitz_bound


@torch.no_grad()
def fit_shift_scale(shift: torch.Tensor, scale: torch.Tensor, x: torch.Tensor) -> None:
    """Set ``shift`` to the mean of ``x`` and ``scale`` to its pooled standard deviation.

    Computed in float64: ``shift = mean_i x_i`` and ``scale = sqrt(mean over samples and
    coordinates of (x - shift)^2)`` (the root-mean-square of the per-coordinate population
    standard deviations), or 1 when that is 0 or not finite. The buffers are written in place,
    keeping their dtype and device; nothing is returned.

    Args:
        shift: a tensor of the shape of one sample, ``x.shape[1:]``, to receive the mean.
        scale: a tensor to fill with the scale (usually a 0-d buffer).
        x: samples ``(n, ...)``, ``n >= 1``, any real dtype and device.

    Example:
        >>> import torch
        >>> from wgan_lip.critic import fit_shift_scale
        >>> shift, scale = torch.zeros(2), torch.ones(())
        >>> fit_shift_scale(shift, scale, torch.tensor([[0.0, 10.0], [2.0, 14.0]]))
        >>> shift.tolist(), round(scale.item(), 4)  # sqrt((1 + 1 + 4 + 4) / 4)
        ([1.0, 12.0], 1.5811)
        >>> fit_shift_scale(shift, scale, torch.ones(3, 2))  # no spread: scale stays 1
        >>> shift.tolist(), scale.item()
        ([1.0, 1.0], 1.0)
    """
    if len(x) < 1:
        raise ValueError("fit_shift_scale needs at least one sample")
    x = x.to(torch.float64)
    mu = x.mean(dim=0)
    s = float((x - mu).pow(2).mean().sqrt())
    shift.copy_(mu.to(shift))
    scale.fill_(s if s > 0 and math.isfinite(s) else 1.0)


def normalize_input(
    x: torch.Tensor,
    shift: torch.Tensor,
    scale: torch.Tensor,
    input_shape: Sequence[int],
    flatten: bool,
) -> torch.Tensor:
    """``(x - shift) / scale`` of samples reshaped to ``input_shape``: what a network sees.

    ``x`` is reshaped to ``(n, *input_shape)`` first and the result flattened to
    ``(n, prod(input_shape))`` with ``flatten``.

    Args:
        x: samples ``(n, ...)`` with ``prod(input_shape)`` entries each.
        shift: a point of the shape of one sample.
        scale: a positive scalar tensor.
        input_shape: the shape of one sample.
        flatten: flatten each normalized sample.

    Returns:
        The normalized samples.

    Example:
        >>> import torch
        >>> from wgan_lip.critic import normalize_input
        >>> normalize_input(torch.ones(2, 4), torch.zeros(2, 2), torch.tensor(2.0), (2, 2),
        ...                 True).shape
        torch.Size([2, 4])
    """
    if tuple(x.shape[1:]) != tuple(input_shape):
        x = x.reshape(x.shape[0], *input_shape)
    z = (x - shift) / scale
    return z.flatten(1) if flatten else z


class RawInputCritic(nn.Module):
    """``f(x) = scale * net((x - shift) / scale)`` with ``x`` flattened first if asked.

    ``shift`` (a point in input space) and ``scale`` (a positive scalar) are buffers, so they
    travel in the state dict. Translation and a scalar rescaling undone at the output leave
    the Lipschitz constant unchanged: the bound is ``(1/scale) * Lip(net) * scale``. Until
    :meth:`fit_normalization` is called they are 0 and 1, and the scores are ``net``'s
    exactly (the WGAN's critic stays so).

    ``kind`` names the critic (a W1 critic name or a constraint name); ``certified`` says
    whether ``net`` is 1-Lipschitz by construction.

    Args:
        net: the network in normalized units; it gets ``(n, *input_shape)`` inputs, or
            ``(n, prod(input_shape))`` with ``flatten``, and returns ``n`` scores (any shape
            with ``n`` entries, e.g. ``(n, 1)``; they are reshaped to ``(n,)``).
        input_shape: shape of one sample, e.g. ``(2,)`` or ``(C, H, W)``; inputs of another
            shape with the same number of entries per sample are reshaped to it.
        flatten: flatten each normalized sample before ``net`` (an MLP on images).
        kind: the critic's name, kept for reports.
        certified: whether ``net`` is 1-Lipschitz by construction (stored as a bool).

    Example:
        >>> import torch
        >>> from wgan_lip.critic import RawInputCritic
        >>> from wgan_lip.layers import BjorckLinear
        >>> _ = torch.manual_seed(0)
        >>> critic = RawInputCritic(BjorckLinear(4, 1), (2, 2), flatten=True, kind="demo",
        ...                         certified=True)
        >>> critic.fit_normalization(10 * torch.randn(100, 2, 2) + 3)
        >>> critic(torch.randn(5, 2, 2)).shape  # one score per sample, in the data's units
        torch.Size([5])
        >>> round(critic.lipschitz_bound(), 4)  # the normalization cancels out
        1.0
    """

    def __init__(
        self,
        net: nn.Module,
        input_shape: Sequence[int],
        flatten: bool,
        kind: str,
        certified: bool,
    ) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(int(s) for s in input_shape)
        self.flatten = flatten
        self.kind = kind
        self.certified = bool(certified)
        self.register_buffer("shift", torch.zeros(self.input_shape))
        self.register_buffer("scale", torch.ones(()))

    def fit_normalization(self, x: torch.Tensor) -> None:
        """Centre on the mean of ``x`` and scale by its pooled per-coordinate std."""
        fit_shift_scale(self.shift, self.scale, x)

    def normalized_scores(self, x: torch.Tensor) -> torch.Tensor:
        """``net((x - shift) / scale)``: the scores in normalized units, which training
        optimizes (so the loss, Adam's steps and its epsilon do not depend on the data's
        units)."""
        z = normalize_input(x, self.shift, self.scale, self.input_shape, self.flatten)
        return self.net(z).reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalized_scores(x) * self.scale

    def lipschitz_bound(self) -> float:
        # on the shape the network sees: a layer whose map depends on the input size (a
        # Cayley convolution) is bounded on that size only
        shape = (math.prod(self.input_shape),) if self.flatten else self.input_shape
        s = float(self.scale.double())
        return (1.0 / s) * lipschitz_bound(self.net, shape) * s


class OffsetCritic(nn.Module):
    """``critic(x - offset)`` in float64: a centred-data critic on the user's own samples.

    W1 estimation centres both samples by one common offset in the data's own precision
    (:mod:`wgan_lip.data.precision`) and certifies a float64 copy of the trained critic;
    this wrapper puts the offset back, so that ``critic(x)`` takes samples as the user has
    them: float64 map coordinates, int64 timestamps (the offset is subtracted in int64).
    Translation leaves the Lipschitz constant unchanged: the bound is ``critic``'s.

    Args:
        critic: the critic in centred units (a float64 :class:`RawInputCritic`).
        offset: float64, the shape of one sample (integral for integer data), or None.

    Example:
        >>> import torch
        >>> from wgan_lip.critic import OffsetCritic, RawInputCritic
        >>> from wgan_lip.layers import BjorckLinear
        >>> inner = RawInputCritic(BjorckLinear(1, 1), (1,), False, "demo", True).double()
        >>> critic = OffsetCritic(inner, torch.tensor([1e8], dtype=torch.float64))
        >>> x = torch.tensor([[1e8], [1e8 + 0.5]], dtype=torch.float64)
        >>> s = critic(x)
        >>> s.dtype, round(abs(float(s[1] - s[0])), 6)
        (torch.float64, 0.5)
    """

    def __init__(self, critic: RawInputCritic, offset: torch.Tensor | None) -> None:
        super().__init__()
        self.critic = critic
        self.kind, self.certified = critic.kind, critic.certified
        self.input_shape = critic.input_shape
        if offset is None:
            offset = torch.zeros(critic.input_shape, dtype=torch.float64)
        self.register_buffer("offset", offset.to(torch.float64).reshape(critic.input_shape))

    def __getattr__(self, name: str):
        # the wrapped critic's attributes (net, scale, shift, ...) read through the wrapper
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("critic"), name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x)
        if tuple(x.shape[1:]) != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        off = self.offset.to(x.device)
        if not x.is_floating_point():  # integers: subtract exactly, before any rounding
            z = (x.to(torch.int64) - off.to(torch.int64)).to(torch.float64)
        else:
            z = x.to(torch.float64) - off
        return self.critic(z.to(next(self.critic.buffers()).dtype))

    def lipschitz_bound(self) -> float:
        return lipschitz_bound(self.critic)


def certifying_copy(net: nn.Module) -> nn.Module:
    """A float64 copy of a trained critic, in eval mode: what certified numbers are made of.

    Training runs in float32; the certificate is computed on a float64 copy, so that neither
    the data (kept at its precision, :mod:`wgan_lip.data.precision`) nor the forward pass
    is rounded to float32 where a certified number is made. Its bound is computed from its
    own float64 weights.

    Args:
        net: the trained critic.

    Returns:
        A new module; ``net`` is left as it was.

    Example:
        >>> import torch
        >>> from wgan_lip.critic import RawInputCritic, certifying_copy
        >>> from wgan_lip.layers import BjorckLinear
        >>> net = RawInputCritic(BjorckLinear(3, 1), (3,), False, "demo", True)
        >>> copy64 = certifying_copy(net)
        >>> copy64.shift.dtype, copy64.training, net.shift.dtype
        (torch.float64, False, torch.float32)
    """
    return copy.deepcopy(net).to(torch.float64).eval()
