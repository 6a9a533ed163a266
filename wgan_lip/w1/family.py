"""A family of certified critics trained together on the same batches; the best one on the
monitor split is kept.

Why a family: no single critic is tight everywhere. A wide network overfits a few thousand
samples in 128 dimensions, where the closed-form linear critic is within a few percent; a
piecewise-linear network needs many pieces to draw a Euclidean cone, which the cone critics
draw exactly. Selection on the monitor split (never on the held-out split) keeps the
reported held-out value honest: the winner is a fixed 1-Lipschitz function independent of
the held-out rows.

Members (names used in ``W1Estimate.critic`` and ``monitor_values``):

* ``linear``: ``f(z) = <u, z>`` with ``u`` the unit vector along the mean difference of the
  fit split (closed form, not trained). ``E_P f - E_Q f = |E_P z - E_Q z|``; exactly
  1-Lipschitz (``|u| = 1``, its bound is computed as ``|u|``).
* ``transport``: the Kantorovich potential of the exact optimal transport between the fit
  rows (POT's network simplex, at most ``TRANSPORT_MAX_ROWS`` per side, else left out),
  extended to the whole space by its c-transform ``f(z) = min_j (|z - y_j| - psi_j)`` over
  the fit rows ``y_j`` of Q. A minimum of 1-Lipschitz cones, so 1-Lipschitz; on the fit
  rows its dual value *is* their exact W1, so in-sample (``holdout=0``) it reaches POT's
  value, and in low dimension it generalizes well. Closed form, not trained; left out of
  the family above ``TRANSPORT_MAX_DIM`` dimensions, where it overfits.
* ``peaks`` / ``pits``: ``max_j (a_j - |z - c_j|)`` and ``min_j (a_j + |z - c_j|)`` over
  ``J`` learned anchors ``c_j`` and offsets ``a_j``. Each cone is 1-Lipschitz, and a max or
  min of 1-Lipschitz functions is 1-Lipschitz, whatever the parameters. Every 1-Lipschitz
  function is an infimum of such cones (its McShane extension), so these are the natural
  shape of a W1 potential; they are exact for radial problems.
* ``mlp:WxD:ACT``: Björck/GroupSort networks of ``D`` hidden layers of width ``W`` with
  activation ``ACT`` (``maxmin``, ``gsK`` for GroupSort with groups of ``K``, ``fullsort``).
  Members with the same widths are one *stack*: their weights are ``(K, out, in)`` tensors,
  orthonormalized together (batched Björck, :class:`~wgan_lip.layers.StackedLinear`) and
  applied with batched matmuls.
* ``mlp:WxD:ACT:LAYER``: the same network with another registered dense layer
  (``aol``, ``sll``...; ``bjorck`` is the stacked network above), built by
  :func:`~wgan_lip.networks.build` through the ``hard`` constraint, which refuses a layer
  that is not 1-Lipschitz by construction.

Every member kind is one :class:`MemberGroup` subclass: how it is fitted (closed form) or
trained, its complexity rank, and how member ``i`` is extracted as a stand-alone network. A
single critic is a family of one (:meth:`CriticFamily.of_one`).

All members see inputs in normalized units (centred, divided by the pooled standard
deviation) and train on the KR objective in those units, so nothing depends on the data's
scale; :meth:`CriticFamily.member` returns the winner as a :class:`RawInputCritic` in the
user's units.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..critic import normalize_input
from ..errors import InputError
from ..layers import BjorckLinear, StackedLinear, lipschitz_bound
from ..layers._rounding import output_factor, reduction_gamma
from ..models import lipschitz_mlp, make_activation
from .critics import RawInputCritic, fit_shift_scale

# Lean enough for a CPU: the closed-form and cone members cost little beside the one network
# (the previous default critic); on a CPU a second network costs +50% per step, so more
# widths, depths and group sizes are the GPU default, where the stacked networks run in
# parallel (or ask for them: ``family=GPU_FAMILY``).
DEFAULT_FAMILY = (
    "linear",
    "transport",
    "peaks",
    "pits",
    "mlp:128x3:maxmin",
)
GPU_FAMILY = (
    *DEFAULT_FAMILY,
    "mlp:32x2:fullsort",
    "mlp:128x3:gs4",
    "mlp:128x3:gs8",
    "mlp:256x2:fullsort",
    "mlp:64x4:maxmin",
)
CONE_ANCHORS = 64
TRANSPORT_MAX_ROWS = 2000  # per side: the exact OT of the fit rows stays about a second
TRANSPORT_MAX_DIM = 32  # above, the plug-in potential overfits and scoring it costs too much
CONE_LR_FACTOR = 10.0  # anchors move in data units: a larger step than the network weights
_MLP = re.compile(r"mlp:(\d+)x(\d+):(maxmin|fullsort|gs(\d+))(?::(\w+))?")


@dataclass(frozen=True)
class MemberSpec:
    """One member of the family, parsed from its name (see :func:`parse_member`).

    Attributes:
        name: the member's name, as given (``"linear"``, ``"mlp:128x3:gs4"``...).
        kind: ``"linear"``, ``"transport"``, ``"cones"`` (peaks and pits) or ``"mlp"``.
        widths: the hidden widths of an ``mlp`` member (``depth`` times ``width``).
        activation: an ``mlp`` member's activation name for
            :func:`~wgan_lip.models.make_activation` (``"groupsort"`` or ``"fullsort"``).
        group_size: GroupSort's group size (2 for ``maxmin``).
        layer: an ``mlp`` member's dense layer, a registered name (``bjorck``: stacked).

    Example:
        >>> from wgan_lip.w1.family import MemberSpec
        >>> MemberSpec("mlp:8x2:gs4", "mlp", (8, 8), "groupsort", 4).widths
        (8, 8)
    """

    name: str
    kind: str  # linear | cones | mlp
    widths: tuple[int, ...] = ()
    activation: str = ""
    group_size: int = 2
    layer: str = "bjorck"


def parse_member(name: str) -> MemberSpec:
    """A member's name (``"linear"``, ``"peaks"``, ``"mlp:WxD:ACT[:LAYER]"``...) to a spec.

    ``ACT`` is ``maxmin`` (GroupSort with groups of 2), ``gsK`` (GroupSort with groups of
    ``K``) or ``fullsort``; ``LAYER`` a registered dense layer (default ``bjorck``).

    Args:
        name: the member's name.

    Returns:
        The :class:`MemberSpec`.

    Raises:
        InputError: an unknown name or layer, or an ``mlp`` member with a width or depth
            of 0, or a width that is not a multiple of its group (``K`` for ``gsK``, 2 for
            ``maxmin``), or a group of 0.

    Example:
        >>> from wgan_lip.w1.family import parse_member
        >>> parse_member("mlp:64x3:gs4")
        MemberSpec(name='mlp:64x3:gs4', kind='mlp', widths=(64, 64, 64), activation='groupsort',
                   group_size=4, layer='bjorck')
        >>> parse_member("mlp:64x3:maxmin:aol").layer
        'aol'
        >>> parse_member("pits").kind
        'cones'
        >>> parse_member("mlp:30x2:gs4")
        Traceback (most recent call last):
            ...
        wgan_lip.errors.InputError: family member 'mlp:30x2:gs4': width must be a positive
        multiple of the group
    """
    if name == "linear":
        return MemberSpec(name, "linear")
    if name in ("peaks", "pits"):
        return MemberSpec(name, "cones")
    if name == "transport":
        return MemberSpec(name, "transport")
    m = _MLP.fullmatch(name)
    if m is None:
        raise InputError(
            f"unknown family member {name!r}; use linear, transport, peaks, pits or "
            "mlp:WIDTHxDEPTH:ACT[:LAYER] with ACT maxmin, fullsort or gsK and LAYER a "
            "registered dense layer (e.g. mlp:128x3:gs4, mlp:128x3:maxmin:aol)"
        )
    width, depth, act = int(m.group(1)), int(m.group(2)), m.group(3)
    layer = m.group(5) or "bjorck"
    from ..layers.registry import LAYERS

    if layer not in LAYERS:
        raise InputError(
            f"family member {name!r}: unknown layer {layer!r}; "
            f"use one of {', '.join(sorted(LAYERS))}"
        )
    group = int(m.group(4)) if m.group(4) else 2
    grouped = act.startswith("gs") or act == "maxmin"
    if width < 1 or depth < 1 or (grouped and (group < 1 or width % group)):
        raise InputError(f"family member {name!r}: width must be a positive multiple of the group")
    activation = "groupsort" if act.startswith("gs") or act == "maxmin" else "fullsort"
    return MemberSpec(name, "mlp", (width,) * depth, activation, group, layer)


# ----- the member protocol -----


class MemberGroup(nn.Module):
    """Members of one kind, evaluated together: what a new member kind implements.

    ``forward`` maps normalized inputs ``(B, d)`` to scores ``(K, B)`` (or ``(B,)`` for a
    group of one member). The class attributes say how the family treats the group:

    * ``closed_form``: fitted once by :meth:`fit_closed_form`, never trained.
    * ``rank``: the complexity rank of :meth:`CriticFamily.select` (0 is the simplest).
    * ``lr_factor``: its learning rate relative to the network weights'.
    * ``fit_order``: groups draw from the shared generator of :meth:`fit_closed_form` in
      this order (whatever the order of the members).
    * ``stacked``: its tensors carry the member index first (``(K, ...)``); otherwise the
      group has one member and every tensor is that member's.
    * ``keeps_best``: the family keeps the member's weights at its best monitor check
      (False: the trainer's early stopping does, as for a single critic).

    Takes no arguments (subclasses take their own).

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import LinearCritic, MemberGroup
        >>> isinstance(LinearCritic(2), MemberGroup), LinearCritic.closed_form
        (True, True)
    """

    closed_form: ClassVar[bool] = False
    rank: ClassVar[int] = 2
    lr_factor: ClassVar[float] = 1.0
    fit_order: ClassVar[int] = 0
    stacked: ClassVar[bool] = True
    keeps_best: bool = True

    @classmethod
    def group_key(cls, spec: MemberSpec) -> str:
        """The group a member of this kind joins (members of one key share one group)."""
        return spec.kind

    @classmethod
    def from_members(cls, dim: int, specs: Sequence[MemberSpec], cone_anchors: int) -> MemberGroup:
        """The group of ``specs`` (members of one key) on ``dim`` input features."""
        raise NotImplementedError

    def fit_closed_form(self, zp: torch.Tensor, zq: torch.Tensor, gen: torch.Generator) -> None:
        """Fit (or place) the group from float64 normalized fit rows (default: nothing)."""

    def extract(self, i: int) -> nn.Module:
        """Member ``i`` as a stand-alone network on normalized inputs (its own tensors)."""
        raise NotImplementedError

    def size(self, i: int) -> int:
        """Parameters of member ``i`` (the second key of the complexity order)."""
        return 0


# ----- members -----


class LinearCritic(MemberGroup):
    """``f(z) = <u, z>`` for a fixed vector ``u`` (a buffer); Lipschitz constant ``|u|``.

    ``u`` starts at 0; :meth:`fit` sets it to a unit vector. Inputs are ``(B, dim)``, scores
    ``(B,)``.

    Args:
        dim: the input dimension (at least 1).

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import LinearCritic
        >>> f = LinearCritic(2)
        >>> f.fit(torch.tensor([3.0, 4.0]))
        >>> f.u, f(torch.tensor([[1.0, 1.0]]))
        (tensor([0.6000, 0.8000]), tensor([1.4000]))
        >>> round(f.lipschitz_bound(), 4)  # |u| (and float32 rounding, about 2e-6)
        1.0
    """

    closed_form, rank, stacked = True, 0, False

    @classmethod
    def from_members(cls, dim, specs, cone_anchors):
        return cls(dim)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("u", torch.zeros(dim))

    def fit_closed_form(self, zp, zq, gen):
        self.fit(zp.mean(0) - zq.mean(0))

    def extract(self, i):
        net = LinearCritic(self.u.numel())
        net.u.copy_(self.u)
        return net

    @torch.no_grad()
    def fit(self, mean_difference: torch.Tensor) -> None:
        """``u`` = the unit vector along ``mean_difference`` (any unit vector if it is 0)."""
        v = mean_difference.to(torch.float64).reshape(-1)
        norm = float(v.norm())
        if not norm > 0 or not math.isfinite(norm):
            v, norm = torch.zeros_like(v), 1.0
            v[0] = 1.0
        self.u.copy_((v / norm).to(self.u))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.u

    def lipschitz_bound(self) -> float:
        # |u|, and the rounding of a length-d dot product in u's dtype (layers._rounding)
        d, dtype = self.u.numel(), self.u.dtype
        return (
            float(self.u.double().norm()) * (1 + reduction_gamma(d, dtype)) * output_factor(dtype)
        )


def distance_rounding(dim: int, dtype: torch.dtype) -> float:
    """Bound of a cone or transport critic, as computed: 1 and its rounding terms.

    Without autograd the distances are computed from the differences in float64 (a sum of
    ``dim`` squares and a square root: ``gamma_{dim + 2}``); the score is then stored in
    ``dtype`` (the allowance of :func:`~wgan_lip.layers._rounding.output_factor`).

    Args:
        dim: the input dimension.
        dtype: the critic's dtype.

    Returns:
        The bound, a float slightly above 1.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import distance_rounding
        >>> 1 < distance_rounding(3, torch.float64) < 1 + 1e-13
        True
    """
    return (1 + reduction_gamma(dim + 2, torch.float64)) * output_factor(dtype)


def _distances(z: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(..., B, J)``.

    Training uses ``cdist``'s fast expansion ``|z|^2 - 2 z.c + |c|^2``; its rounding error
    near ``z = c`` is about ``sqrt(eps) |z|`` after the square root, enough to make the
    computed function steeper than 1 at that scale. Certified scoring (no autograd, or
    float64) therefore takes the differences directly, in float64.
    """
    if torch.is_grad_enabled() and z.dtype != torch.float64:
        return torch.cdist(z, anchors.to(z.dtype))
    return torch.cdist(z.double(), anchors.double(), compute_mode="donot_use_mm_for_euclid_dist")


class TransportCritic(MemberGroup):
    """``f(z) = min_j (|z - y_j| - psi_j)``: the c-transform of an OT potential over anchors.

    The anchors ``y_j`` are Q's fit rows and ``psi_j`` their optimal-transport potential
    (buffers set by :meth:`fit`). 1-Lipschitz for every value of its buffers; before
    :meth:`fit` (no anchors) it scores 0 everywhere. Inputs are ``(B, dim)``, scores
    ``(B,)``; without autograd (or in float64) the distances are computed in float64.

    Args:
        dim: the input dimension.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import TransportCritic
        >>> f = TransportCritic(1)
        >>> zp, zq = torch.tensor([[0.0], [1.0]]), torch.tensor([[3.0], [4.0]])
        >>> f.fit(zp, zq)
        >>> with torch.no_grad():
        ...     gap = f(zp).mean() - f(zq).mean()
        >>> round(float(gap), 6), round(f.lipschitz_bound(), 4)  # the exact W1 of the fit rows
        (3.0, 1.0)
    """

    closed_form, rank, fit_order, stacked = True, 3, 2, False

    @classmethod
    def from_members(cls, dim, specs, cone_anchors):
        return cls(dim)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("anchors", torch.zeros(0, dim))
        self.register_buffer("psi", torch.zeros(0))

    def fit_closed_form(self, zp, zq, gen):
        # on at most TRANSPORT_MAX_ROWS per side (a random subset when there are more)
        take = [z[torch.randperm(len(z), generator=gen)[:TRANSPORT_MAX_ROWS]] for z in (zp, zq)]
        self.fit(*take)

    def extract(self, i):
        net = TransportCritic(self.anchors.shape[1])
        net.anchors, net.psi = self.anchors.clone(), self.psi.clone()
        return net

    @torch.no_grad()
    def fit(self, zp: torch.Tensor, zq: torch.Tensor) -> None:
        """Solve the exact OT between ``zp`` and ``zq`` and keep Q's potential."""
        import numpy as np
        import ot

        a = np.full(len(zp), 1.0 / len(zp))
        b = np.full(len(zq), 1.0 / len(zq))
        cost = torch.cdist(zp.double(), zq.double()).numpy()
        # Whatever psi the solver returns (even short of optimal), the c-transform below is
        # 1-Lipschitz: an early stop can only make this member weaker, never unsound.
        _, log = ot.emd2(a, b, cost, numItermax=100_000_000, log=True)
        self.anchors = zq.to(self.anchors.dtype).clone()
        self.psi = torch.as_tensor(log["v"], dtype=self.psi.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.anchors) == 0:
            return z.new_zeros(len(z))
        out = [
            (_distances(c, self.anchors) - self.psi.to(c.device)).amin(dim=1) for c in z.split(2048)
        ]
        return torch.cat(out).to(z.dtype)

    def lipschitz_bound(self) -> float:
        # a minimum of the 1-Lipschitz functions |z - y_j| - psi_j, as computed
        return distance_rounding(self.anchors.shape[1], self.anchors.dtype)


def _cone_scores(
    z: torch.Tensor, anchors: torch.Tensor, offsets: torch.Tensor, sign: torch.Tensor
) -> torch.Tensor:
    """Scores of cone critics: ``z (B, d)``, ``anchors (K, J, d)``, ``offsets (K, J)``,
    ``sign (K,)`` (+1 peaks, -1 pits) to ``(K, B)``."""
    k, j, d = anchors.shape
    if torch.is_grad_enabled() and z.dtype != torch.float64:
        # training: every member's distances from one matmul (batched cdist was 3x slower)
        sq = (z * z).sum(1, keepdim=True) - 2 * z @ anchors.reshape(k * j, d).T
        sq = (sq + (anchors * anchors).sum(-1).reshape(1, k * j)).clamp_min(1e-12)
        dist = sq.sqrt().reshape(len(z), k, j).transpose(0, 1)  # (K, B, J)
    else:
        dist = _distances(z.unsqueeze(0).expand(k, -1, -1), anchors)  # (K, B, J)
    # peaks: max_j (a_j - d_j) = -min_j (d_j - a_j); pits: min_j (a_j + d_j)
    s = sign.view(-1, 1, 1).to(dist.dtype)
    out = -s.view(-1, 1) * (dist - s * offsets.to(dist.dtype).unsqueeze(1)).amin(dim=-1)
    return out.to(z.dtype)


class ConeCritic(nn.Module):
    """``max_j (a_j - |z - c_j|)`` (peaks) or ``min_j (a_j + |z - c_j|)`` (pits).

    1-Lipschitz for every value of its parameters. Inputs are ``(B, d)``, scores ``(B,)``.

    Args:
        anchors: the cone apexes ``c_j``, ``(J, d)`` (copied into a parameter).
        offsets: the cone heights ``a_j``, ``(J,)`` (copied into a parameter).
        sign: ``+1`` for peaks, ``-1`` for pits.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import ConeCritic
        >>> peaks = ConeCritic(torch.tensor([[0.0, 0.0], [4.0, 0.0]]), torch.zeros(2), +1)
        >>> with torch.no_grad():
        ...     print(peaks(torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0]])))
        tensor([-1., -1., -2.])
    """

    def __init__(self, anchors: torch.Tensor, offsets: torch.Tensor, sign: float) -> None:
        super().__init__()
        self.anchors = nn.Parameter(anchors.detach().clone())
        self.offsets = nn.Parameter(offsets.detach().clone())
        self.register_buffer("sign", torch.tensor([float(sign)]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _cone_scores(z, self.anchors[None], self.offsets[None], self.sign)[0]

    def lipschitz_bound(self) -> float:
        # Each |z - c_j| is 1-Lipschitz; adding constants, negating, max and min keep it
        # (as computed: distance_rounding).
        return distance_rounding(self.anchors.shape[-1], self.anchors.dtype)


class ConeStack(MemberGroup):
    """Several cone critics evaluated together (one batched distance computation).

    Parameters ``anchors (K, J, d)`` and ``offsets (K, J)`` start at 0 (place the anchors
    with :meth:`init_anchors`); ``forward`` maps ``(B, d)`` to ``(K, B)``; ``member(k)`` is
    critic ``k`` as a stand-alone :class:`ConeCritic`.

    Args:
        signs: one sign per critic, ``+1`` (peaks) or ``-1`` (pits).
        dim: the input dimension ``d``.
        anchors: cones per critic, ``J``.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import ConeStack
        >>> stack = ConeStack([1.0, -1.0], dim=3, anchors=4)
        >>> stack.init_anchors(torch.randn(10, 3), torch.Generator().manual_seed(0))
        >>> z = torch.randn(5, 3)
        >>> with torch.no_grad():
        ...     scores = stack(z)
        ...     same = torch.allclose(stack.member(1)(z), scores[1])
        >>> scores.shape, same
        (torch.Size([2, 5]), True)
    """

    rank, lr_factor, fit_order = 1, CONE_LR_FACTOR, 1

    @classmethod
    def from_members(cls, dim, specs, cone_anchors):
        return cls([1.0 if m.name == "peaks" else -1.0 for m in specs], dim, cone_anchors)

    def __init__(self, signs: Sequence[float], dim: int, anchors: int) -> None:
        super().__init__()
        self.anchors = nn.Parameter(torch.zeros(len(signs), anchors, dim))
        self.offsets = nn.Parameter(torch.zeros(len(signs), anchors))
        self.register_buffer("sign", torch.tensor([float(s) for s in signs]))

    @torch.no_grad()
    def init_anchors(self, z: torch.Tensor, gen: torch.Generator) -> None:
        """Anchors at random data points (each member its own draw), offsets 0."""
        for k in range(len(self.anchors)):
            idx = torch.randint(len(z), (self.anchors.shape[1],), generator=gen)
            self.anchors[k].copy_(z[idx])
        self.offsets.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _cone_scores(z, self.anchors, self.offsets, self.sign)

    def fit_closed_form(self, zp, zq, gen):
        self.init_anchors(torch.cat([zp, zq]).float(), gen)

    def member(self, k: int) -> ConeCritic:
        """Critic ``k`` as a stand-alone :class:`ConeCritic` (copied parameters)."""
        return ConeCritic(self.anchors[k], self.offsets[k], float(self.sign[k]))

    def extract(self, i):
        return self.member(i)


class MLPStack(MemberGroup):
    """Björck/GroupSort MLPs with the same widths, one per activation, trained as a batch.

    ``forward`` maps ``(B, dim)`` to ``(K, B)`` scores, one row per spec; ``member(k)`` is
    network ``k`` as a stand-alone :func:`~wgan_lip.models.lipschitz_mlp` with the same
    weights.

    Args:
        dim: the input dimension.
        widths: the hidden widths shared by every network.
        specs: one :class:`MemberSpec` per network (its activation and group size are used).

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import MLPStack, parse_member
        >>> specs = [parse_member("mlp:8x2:maxmin"), parse_member("mlp:8x2:fullsort")]
        >>> stack = MLPStack(3, (8, 8), specs)
        >>> z = torch.randn(5, 3)
        >>> with torch.no_grad():
        ...     scores = stack(z)
        ...     same = torch.allclose(stack.member(1)(z).squeeze(1), scores[1], atol=1e-5)
        >>> scores.shape, same
        (torch.Size([2, 5]), True)
    """

    @classmethod
    def group_key(cls, spec):
        return f"mlp{len(spec.widths)}x{spec.widths[0]}"  # one stack per width and depth

    @classmethod
    def from_members(cls, dim, specs, cone_anchors):
        return cls(dim, specs[0].widths, specs)

    def __init__(self, dim: int, widths: Sequence[int], specs: Sequence[MemberSpec]) -> None:
        super().__init__()
        k = len(specs)
        self.specs = list(specs)
        self.widths = tuple(widths)
        sizes = [dim, *widths, 1]
        self.layers = nn.ModuleList(StackedLinear(k, a, b) for a, b in itertools.pairwise(sizes))
        self.acts = nn.ModuleList(make_activation(s.activation, s.group_size) for s in specs)
        self.same_act = len({(s.activation, s.group_size) for s in specs}) == 1

    def _activate(self, h: torch.Tensor) -> torch.Tensor:
        k, b, w = h.shape
        if self.same_act:
            return self.acts[0](h.reshape(k * b, w)).reshape(k, b, w)
        return torch.stack([act(h[i]) for i, act in enumerate(self.acts)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z.unsqueeze(0).expand(len(self.specs), -1, -1)
        for i, layer in enumerate(self.layers):
            h = layer.stacked(h)
            if i < len(self.layers) - 1:
                h = self._activate(h)
        return h.squeeze(-1)  # (K, B)

    def extract(self, i):
        return self.member(i)

    def size(self, i):
        return sum(p[i].numel() for p in self.parameters())

    @torch.no_grad()
    def member(self, k: int) -> nn.Sequential:
        """Network ``k`` as a :func:`~wgan_lip.models.lipschitz_mlp` with copied weights."""
        s = self.specs[k]
        net = lipschitz_mlp(
            self.layers[0].weight.shape[-1],
            self.widths,
            1,
            activation=s.activation,
            group_size=s.group_size,
        )
        dense = [m for m in net if isinstance(m, BjorckLinear)]
        for src, dst in zip(self.layers, dense, strict=False):
            # the orthonormalized weight is its own polar factor: the copy computes the same map
            dst.parametrizations.weight.original.copy_(src.weight[k])
            dst.bias.copy_(src.bias[k])
        return net


class NetworkMember(MemberGroup):
    """One network as a member: any registered layer, or a single critic's network.

    ``forward`` maps ``(B, d)`` (or images, for a convnet) to ``(1, B)``.

    Args:
        net: the network in normalized units, ``n`` scores per batch of ``n``.
        keeps_best: whether the family keeps its weights at its best monitor check (a
            single critic leaves that to the trainer's early stopping).

    Example:
        >>> import torch
        >>> from wgan_lip.layers import BjorckLinear
        >>> from wgan_lip.w1.family import NetworkMember
        >>> member = NetworkMember(BjorckLinear(3, 1))
        >>> member(torch.randn(5, 3)).shape, member.size(0)
        (torch.Size([1, 5]), 4)
    """

    stacked = False

    @classmethod
    def group_key(cls, spec):
        return spec.name.replace(":", "_")  # a network of its own

    @classmethod
    def from_members(cls, dim, specs, cone_anchors):
        from ..constraints import get_constraint
        from ..networks import NetworkSpec

        (s,) = specs
        spec = NetworkSpec(
            "mlp", widths=s.widths, linear=s.layer, activation=s.activation, group_size=s.group_size
        )
        try:  # the hard constraint refuses a layer that is not 1-Lipschitz by construction
            return cls(get_constraint("hard").build(spec, (dim,)))
        except InputError as e:
            raise InputError(f"family member {s.name!r}: {e}") from None

    def __init__(self, net: nn.Module, keeps_best: bool = True) -> None:
        super().__init__()
        self.net = net
        self.keeps_best = keeps_best

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(1, -1)

    def extract(self, i):
        return copy.deepcopy(self.net)

    def size(self, i):
        return sum(p.numel() for p in self.parameters())


def member_groups(dim: int, specs: Sequence[MemberSpec], cone_anchors: int) -> dict[str, tuple]:
    """The groups of parsed members: ``{key: (MemberGroup, [names])}`` in member order.

    The cones share one :class:`ConeStack`, the Björck networks of one width and depth one
    :class:`MLPStack`; a network of another layer is its own :class:`NetworkMember`, built
    by the ``hard`` constraint (which refuses a layer that is not 1-Lipschitz by
    construction).

    Args:
        dim: the (flattened) input dimension.
        specs: the parsed members.
        cone_anchors: cones per ``peaks`` / ``pits`` member.

    Returns:
        The groups and the names of their members, keyed by group name.

    Raises:
        InputError: a layer the ``hard`` constraint does not admit.

    Example:
        >>> from wgan_lip.w1.family import member_groups, parse_member
        >>> specs = [parse_member(n) for n in ("peaks", "mlp:8x2:maxmin", "pits")]
        >>> {k: names for k, (_, names) in member_groups(3, specs, 4).items()}
        {'cones': ['peaks', 'pits'], 'mlp2x8': ['mlp:8x2:maxmin']}
    """
    by_group: dict[str, tuple[type[MemberGroup], list[MemberSpec]]] = {}
    for s in specs:
        cls = member_class(s)
        by_group.setdefault(cls.group_key(s), (cls, []))[1].append(s)
    return {
        key: (cls.from_members(dim, group, cone_anchors), [s.name for s in group])
        for key, (cls, group) in by_group.items()
    }


def member_class(spec: MemberSpec) -> type[MemberGroup]:
    """The :class:`MemberGroup` subclass that holds a member of ``spec``'s kind.

    Args:
        spec: a parsed member.

    Returns:
        The class: an entry of :data:`MEMBER_KINDS`, or :class:`NetworkMember` for a network
        of another layer than the stacked Björck one.

    Example:
        >>> from wgan_lip.w1.family import member_class, parse_member
        >>> member_class(parse_member("pits")).__name__, member_class(parse_member(
        ...     "mlp:8x2:maxmin:aol")).__name__
        ('ConeStack', 'NetworkMember')
    """
    if spec.kind == "mlp" and spec.layer != "bjorck":
        return NetworkMember
    return MEMBER_KINDS[spec.kind]


MEMBER_KINDS: dict[str, type[MemberGroup]] = {
    "linear": LinearCritic,
    "transport": TransportCritic,
    "cones": ConeStack,
    "mlp": MLPStack,
}
"""Member kinds (:attr:`MemberSpec.kind`) and the group class of each: a new kind is one
:class:`MemberGroup` subclass, its entry here and its name in :func:`parse_member`."""


# ----- the family -----


class CriticFamily(nn.Module):
    """Certified critics trained together; ``forward`` gives ``(B, K)`` scores, normalized units.

    See the module docstring for the members. Members of one kind share a
    :class:`MemberGroup` (:func:`member_groups`); ``names`` lists the members in group
    order. The ``transport`` member is dropped above ``TRANSPORT_MAX_DIM`` input dimensions
    unless it is the only one. A single critic is a family of one (:meth:`of_one`). The
    workflow is :meth:`fit_normalization`, :meth:`fit_closed_form`, training on
    ``forward``, :meth:`record` of monitor values, :meth:`load_best`, :meth:`select`,
    :meth:`member`.

    Args:
        input_shape: the shape of one sample (inputs are flattened after normalization).
        members: the members' names (see :func:`parse_member`).
        cone_anchors: cones per ``peaks`` / ``pits`` member.

    Raises:
        InputError: an unknown or malformed member name, no member, or a repeated one.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import CriticFamily
        >>> _ = torch.manual_seed(0)
        >>> fam = CriticFamily((2,), cone_anchors=8)
        >>> fam.names
        ['linear', 'transport', 'peaks', 'pits', 'mlp:128x3:maxmin']
        >>> xp, xq = torch.randn(40, 2), torch.randn(40, 2) + 3
        >>> fam.fit_normalization(torch.cat([xp, xq]))
        >>> fam.fit_closed_form(xp, xq)
        >>> fam(xp).shape
        torch.Size([40, 5])
        >>> fam.record([1.0, 2.0, 0.5, 0.5, 1.5], [0.1, 0.6, 0.1, 0.1, 0.1])
        >>> fam.best_member(), fam.select()  # one-SE rule: the network beats the potential
        (1, 4)
        >>> critic = fam.member(4)
        >>> critic.member_name, critic(xp).shape, critic.lipschitz_bound() <= 1 + 1e-3
        ('mlp:128x3:maxmin', torch.Size([40]), True)
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        members: Sequence[str] = DEFAULT_FAMILY,
        cone_anchors: int = CONE_ANCHORS,
    ) -> None:
        super().__init__()
        d = math.prod(int(s) for s in input_shape)
        specs = [parse_member(m) for m in members]
        if d > TRANSPORT_MAX_DIM and len(specs) > 1:
            specs = [s for s in specs if s.kind != "transport"]
        if not specs:
            raise InputError("the critic family needs at least one member")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise InputError(f"family members repeat: {names}")
        self._assemble(input_shape, member_groups(d, specs, cone_anchors), True, "family", True)

    @classmethod
    def of_one(cls, critic: RawInputCritic) -> CriticFamily:
        """A single critic as a family of one member named ``critic.kind``.

        Its network (not a copy) is the member; the family takes over its normalization
        (the critic's current ``shift`` and ``scale``), its ``flatten``, ``kind`` and
        ``certified``. Its best weights are left to the trainer's early stopping.

        Args:
            critic: the critic (e.g. from :func:`~wgan_lip.w1.critics.build_critic`).

        Returns:
            The family; ``member(0)`` is the critic again, with a copy of its network.

        Example:
            >>> import torch
            >>> from wgan_lip.w1.critics import build_critic
            >>> from wgan_lip.w1.family import CriticFamily
            >>> critic = build_critic("groupsort", (3,), network={"widths": [8]})
            >>> fam = CriticFamily.of_one(critic)
            >>> x = torch.randn(4, 3)
            >>> fam.names, torch.equal(fam.member(0)(x), critic(x))
            (['groupsort'], True)
        """
        fam = cls.__new__(cls)
        nn.Module.__init__(fam)
        group = NetworkMember(critic.net, keeps_best=False)
        fam._assemble(
            critic.input_shape,
            {"network": (group, [critic.kind])},
            critic.flatten,
            critic.kind,
            critic.certified,
        )
        fam.shift.copy_(critic.shift)
        fam.scale.copy_(critic.scale)
        return fam

    def _assemble(
        self, input_shape, groups: dict[str, tuple], flatten: bool, kind: str, certified: bool
    ) -> None:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.flatten, self.kind, self.certified = flatten, kind, certified
        self.register_buffer("shift", torch.zeros(self.input_shape))
        self.register_buffer("scale", torch.ones(()))
        self.groups = nn.ModuleDict({key: g for key, (g, _) in groups.items()})
        self.slots: list[tuple[str, int]] = []  # member k -> (group key, index in group)
        self.names: list[str] = []
        for key, (_, names) in groups.items():
            for i, name in enumerate(names):
                self.slots.append((key, i))
                self.names.append(name)
        self.trained = [not self.groups[key].closed_form for key, _ in self.slots]
        # members still trained: a retired one (see :mod:`wgan_lip.w1.race`) keeps its best
        # weights and value and costs no more steps
        self.live = list(self.trained)
        # a buffer, so checkpoints and multi-process launchers carry the selection
        self.register_buffer(
            "best_values", torch.full((len(self.slots),), -math.inf, dtype=torch.float64)
        )
        self.register_buffer("best_stderr", torch.zeros(len(self.slots), dtype=torch.float64))
        self._best: dict[str, torch.Tensor] | None = None

    @property
    def reports_members(self) -> bool:
        """Whether the members' monitor values are a result (a family built from member
        names; not a single critic)."""
        return self.kind == "family"

    def fit_normalization(self, x: torch.Tensor) -> None:
        """Centre on the mean of ``x`` and scale by its pooled per-coordinate std."""
        fit_shift_scale(self.shift, self.scale, x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - shift) / scale`` (flattened for vector members): the members' inputs."""
        return normalize_input(x, self.shift, self.scale, self.input_shape, self.flatten)

    @torch.no_grad()
    def fit_closed_form(self, xp: torch.Tensor, xq: torch.Tensor, seed: int = 0) -> None:
        """Fit the closed-form members and place the cone anchors, from fit-split rows."""
        zp, zq = self.normalize(xp).double(), self.normalize(xq).double()
        gen = torch.Generator().manual_seed(seed)
        for g in sorted(self.groups.values(), key=lambda g: g.fit_order):
            g.fit_closed_form(zp, zq, gen)

    def forward_normalized(self, z: torch.Tensor, trained_only: bool = False) -> torch.Tensor:
        """``(B, K)`` scores of normalized inputs ``z`` (with ``trained_only``, only the
        columns of the members still trained, in member order: the closed-form and retired
        ones need no gradient)."""
        keep = self.live if trained_only else [True] * len(self.slots)
        wanted = {key for (key, _), k in zip(self.slots, keep, strict=True) if k}
        out: dict[str, torch.Tensor] = {}
        for key, g in self.groups.items():
            if key not in wanted:
                continue
            s = g(z)
            out[key] = s.unsqueeze(0) if s.dim() == 1 else s
        columns = [out[key][i] for (key, i), k in zip(self.slots, keep, strict=True) if k]
        if not columns:  # trained_only, and no member left to train
            return z.new_zeros(len(z), 0)
        return torch.stack(columns, dim=1)

    def idle_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the groups whose members are all retired (the
        ``trained_only`` forward skips them)."""
        busy = {key for (key, _), live in zip(self.slots, self.live, strict=True) if live}
        return [
            p
            for key, g in self.groups.items()
            if key not in busy and not g.closed_form
            for p in g.parameters()
            if p.requires_grad
        ]

    def forward(self, x: torch.Tensor, trained_only: bool = False) -> torch.Tensor:
        """``(B, K)`` scores of raw samples, in normalized units (what training optimizes)."""
        return self.forward_normalized(self.normalize(x), trained_only)

    def user_scores(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` scores of raw samples in the user's units (what a gradient penalty
        differentiates: the members' functions of the raw samples)."""
        return self(x) * self.scale

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups, one per member group at ``lr`` times its ``lr_factor``."""
        groups = []
        for g in self.groups.values():
            params = [p for p in g.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": lr * g.lr_factor})
        return groups

    # ----- per-member early stopping -----

    @torch.no_grad()
    def record(self, values: Sequence[float], stderr: Sequence[float] | None = None) -> None:
        """Keep each member's weights at its best monitor value so far (and that value's
        standard error)."""
        if self._best is None:
            self._best = {k: v.detach().clone() for k, v in self.state_dict().items()}
        for k, value in enumerate(values):
            if self.trained[k] and not self.live[k]:
                continue  # retired: its best weights and value stay as they were
            best = float(self.best_values[k])
            if math.isfinite(value) and (value > best or not math.isfinite(best)):
                self.best_values[k] = float(value)
                self.best_stderr[k] = float(stderr[k]) if stderr is not None else 0.0
                key, i = self.slots[k]
                g = self.groups[key]
                if g.closed_form or not g.keeps_best:
                    continue
                prefix = f"groups.{key}."
                for name, t in self.state_dict().items():
                    if name.startswith(prefix) and t.dim() > 0:
                        if g.stacked:
                            self._best[name][i] = t[i]
                        else:
                            self._best[name] = t.detach().clone()
        self._best["best_values"] = self.best_values.clone()
        self._best["best_stderr"] = self.best_stderr.clone()

    @torch.no_grad()
    def load_best(self) -> None:
        """Put every member's best weights back (no-op before the first ``record``; the
        weights of a member that does not keep its best are left as they are)."""
        if self._best is None:
            return
        left = tuple(f"groups.{k}." for k, g in self.groups.items() if not g.keeps_best)
        state = {k: v for k, v in self._best.items() if not k.startswith(left) or not left}
        self.load_state_dict(state, strict=not left)

    def retire(self, k: int) -> None:
        """Stop training member ``k``: it keeps its best weights and monitor value, takes no
        more gradient, and is still a candidate of :meth:`select`."""
        self.live[k] = False

    def best_member(self) -> int:
        """Index of the member with the best monitor value (the first on ties)."""
        return int(torch.argmax(self.best_values))

    def complexity(self, k: int) -> tuple[int, int]:
        """Order used by :meth:`select`: each group's ``rank`` (closed-form linear, cones,
        networks, the transport potential last), then the member's ``size``."""
        key, i = self.slots[k]
        g = self.groups[key]
        return g.rank, g.size(i)

    def select(self, one_se: bool = True, exclude: Sequence[str] = ()) -> int:
        """The reported member. With ``one_se``, the simplest member (:meth:`complexity`)
        whose monitor value is within one standard error of the best: each trained member's
        value is the best of many checks of one monitor split, so it is optimistic by about
        that much, while a closed-form member is checked once (Breiman's one-standard-error
        rule). Without it, the best value (in-sample runs, where optimism is the point)."""
        ok = [
            k
            for k in range(len(self.names))
            if self.names[k] not in exclude and math.isfinite(float(self.best_values[k]))
        ]
        if not ok:
            ok = list(range(len(self.names)))
        best = max(ok, key=lambda k: float(self.best_values[k]))
        if not one_se:
            return best
        floor = float(self.best_values[best] - self.best_stderr[best])
        near = [k for k in ok if float(self.best_values[k]) >= floor]
        return min(near, key=lambda k: (self.complexity(k), k))

    @torch.no_grad()
    def member(self, k: int) -> RawInputCritic:
        """Member ``k`` as a stand-alone critic on raw inputs, in the user's units."""
        key, i = self.slots[k]
        critic = RawInputCritic(
            self.groups[key].extract(i),
            self.input_shape,
            flatten=self.flatten,
            kind=self.kind,
            certified=self.certified,
        )
        critic.member_name = self.names[k]
        critic.shift.copy_(self.shift)
        critic.scale.copy_(self.scale)
        return critic.to(self.shift.device)

    def lipschitz_bounds(self) -> list[float]:
        """Certified bound of every member (computed from its weights)."""
        return [lipschitz_bound(self.member(k)) for k in range(len(self.names))]
