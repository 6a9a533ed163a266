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
  orthonormalized together (batched Björck) and applied with batched matmuls.

All members see inputs in normalized units (centred, divided by the pooled standard
deviation) and train on the KR objective in those units, so nothing depends on the data's
scale; :meth:`CriticFamily.member` returns the winner as a :class:`RawInputCritic` in the
user's units.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import InputError
from ..layers import BjorckLinear, lipschitz_bound
from ..layers._rounding import output_factor, reduction_gamma
from ..layers.orthogonal import Orthonormal
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
CLOSED_FORM = ("linear", "transport")  # members fitted once, not trained
_MLP = re.compile(r"mlp:(\d+)x(\d+):(maxmin|fullsort|gs(\d+))")


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


def parse_member(name: str) -> MemberSpec:
    """``"linear"``, ``"transport"``, ``"peaks"``, ``"pits"`` or ``"mlp:WxD:ACT"`` to a spec.

    ``ACT`` is ``maxmin`` (GroupSort with groups of 2), ``gsK`` (GroupSort with groups of
    ``K``) or ``fullsort``.

    Args:
        name: the member's name.

    Returns:
        The :class:`MemberSpec`.

    Raises:
        InputError: an unknown name, or an ``mlp`` member with a width or depth of 0, or
            a width that is not a multiple of its group (``K`` for ``gsK``, 2 for
            ``maxmin``), or a group of 0.

    Example:
        >>> from wgan_lip.w1.family import parse_member
        >>> parse_member("mlp:64x3:gs4")
        MemberSpec(name='mlp:64x3:gs4', kind='mlp', widths=(64, 64, 64), activation='groupsort',
                   group_size=4)
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
            "mlp:WIDTHxDEPTH:ACT with ACT maxmin, fullsort or gsK (e.g. mlp:128x3:gs4)"
        )
    width, depth, act = int(m.group(1)), int(m.group(2)), m.group(3)
    group = int(m.group(4)) if m.group(4) else 2
    grouped = act.startswith("gs") or act == "maxmin"
    if width < 1 or depth < 1 or (grouped and (group < 1 or width % group)):
        raise InputError(f"family member {name!r}: width must be a positive multiple of the group")
    activation = "groupsort" if act.startswith("gs") or act == "maxmin" else "fullsort"
    return MemberSpec(name, "mlp", (width,) * depth, activation, group)


# ----- members -----


class LinearCritic(nn.Module):
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

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("u", torch.zeros(dim))

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


class TransportCritic(nn.Module):
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

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("anchors", torch.zeros(0, dim))
        self.register_buffer("psi", torch.zeros(0))

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
        out = [(_distances(c, self.anchors) - self.psi.to(c.device)).amin(dim=1)
               for c in z.split(2048)]  # fmt: skip
        return torch.cat(out).to(z.dtype)

    def lipschitz_bound(self) -> float:
        # a minimum of the 1-Lipschitz functions |z - y_j| - psi_j, as computed
        return distance_rounding(self.anchors.shape[1], self.anchors.dtype)


def _cone_scores(z: torch.Tensor, anchors: torch.Tensor, offsets: torch.Tensor,
                 sign: torch.Tensor) -> torch.Tensor:  # fmt: skip
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


class ConeStack(nn.Module):
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

    def member(self, k: int) -> ConeCritic:
        return ConeCritic(self.anchors[k], self.offsets[k], float(self.sign[k]))


class StackedLinear(nn.Module):
    """``K`` independent dense layers ``(K, out, in)``, orthonormalized as a batch.

    The weight is parametrized by Björck orthonormalization (each ``(out, in)`` slice has
    orthonormal rows or columns); the bias ``(K, out)`` starts at 0. ``forward`` maps
    ``(K, B, in)`` to ``(K, B, out)``.

    Args:
        k: the number of layers.
        in_features: inputs of each layer.
        out_features: outputs of each layer.

    Example:
        >>> import torch
        >>> from wgan_lip.w1.family import StackedLinear
        >>> layer = StackedLinear(3, 4, 2)
        >>> layer(torch.randn(3, 5, 4)).shape
        torch.Size([3, 5, 2])
        >>> w = layer.weight.detach()
        >>> torch.allclose(w @ w.mT, torch.eye(2).expand(3, 2, 2), atol=1e-4)
        True
    """

    def __init__(self, k: int, in_features: int, out_features: int) -> None:
        super().__init__()
        w = torch.empty(k, out_features, in_features)
        for i in range(k):
            nn.init.orthogonal_(w[i])
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(k, out_features))
        parametrize.register_parametrization(self, "weight", Orthonormal())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # h: (K, B, in) -> (K, B, out)
        return torch.baddbmm(self.bias.unsqueeze(1), h, self.weight.mT)


class MLPStack(nn.Module):
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
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self._activate(h)
        return h.squeeze(-1)  # (K, B)

    @torch.no_grad()
    def member(self, k: int) -> nn.Sequential:
        s = self.specs[k]
        net = lipschitz_mlp(self.layers[0].weight.shape[-1], self.widths, 1,
                            activation=s.activation, group_size=s.group_size)  # fmt: skip
        dense = [m for m in net if isinstance(m, BjorckLinear)]
        for src, dst in zip(self.layers, dense, strict=False):
            # the orthonormalized weight is its own polar factor: the copy computes the same map
            dst.parametrizations.weight.original.copy_(src.weight[k])
            dst.bias.copy_(src.bias[k])
        return net


# ----- the family -----


class CriticFamily(nn.Module):
    """Certified critics trained together; ``forward`` gives ``(B, K)`` scores, normalized units.

    See the module docstring for the members. Members of one kind share a group (the cones
    one :class:`ConeStack`, the networks of one width and depth one :class:`MLPStack`);
    ``names`` lists the members in group order. The ``transport`` member is dropped above
    ``TRANSPORT_MAX_DIM`` input dimensions unless it is the only one. The workflow is
    :meth:`fit_normalization`, :meth:`fit_closed_form`, training on ``forward``,
    :meth:`record` of monitor values, :meth:`load_best`, :meth:`select`, :meth:`member`.

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

    def __init__(self, input_shape: Sequence[int], members: Sequence[str] = DEFAULT_FAMILY,
                 cone_anchors: int = CONE_ANCHORS) -> None:  # fmt: skip
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
        self.input_shape = tuple(int(s) for s in input_shape)
        d = math.prod(self.input_shape)
        self.register_buffer("shift", torch.zeros(self.input_shape))
        self.register_buffer("scale", torch.ones(()))
        self.groups = nn.ModuleDict()
        self.slots: list[tuple[str, int]] = []  # member k -> (group key, index in group)
        by_group: dict[str, list[MemberSpec]] = {}
        for s in specs:
            key = {"linear": "linear", "cones": "cones", "transport": "transport"}.get(
                s.kind) or f"mlp{len(s.widths)}x{s.widths[0]}"  # fmt: skip
            by_group.setdefault(key, []).append(s)
        for key, group in by_group.items():
            if key == "linear":
                self.groups[key] = LinearCritic(d)
            elif key == "transport":
                self.groups[key] = TransportCritic(d)
            elif key == "cones":
                signs = [1.0 if g.name == "peaks" else -1.0 for g in group]
                self.groups[key] = ConeStack(signs, d, cone_anchors)
            else:
                self.groups[key] = MLPStack(d, group[0].widths, group)
        self.names: list[str] = []
        for key, group in by_group.items():
            for i, s in enumerate(group):
                self.slots.append((key, i))
                self.names.append(s.name)
        self.trained = [key not in CLOSED_FORM for key, _ in self.slots]
        # a buffer, so checkpoints and multi-process launchers carry the selection
        self.register_buffer(
            "best_values", torch.full((len(self.slots),), -math.inf, dtype=torch.float64)
        )
        self.register_buffer("best_stderr", torch.zeros(len(self.slots), dtype=torch.float64))
        self._best: dict[str, torch.Tensor] | None = None

    @property
    def flatten(self) -> bool:
        return True

    def fit_normalization(self, x: torch.Tensor) -> None:
        """Centre on the mean of ``x`` and scale by its pooled per-coordinate std."""
        fit_shift_scale(self.shift, self.scale, x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            x = x.reshape(x.shape[0], *self.input_shape)
        return ((x - self.shift) / self.scale).flatten(1)

    @torch.no_grad()
    def fit_closed_form(self, xp: torch.Tensor, xq: torch.Tensor, seed: int = 0) -> None:
        """Fit the linear member and place the cone anchors, from fit-split rows."""
        zp, zq = self.normalize(xp).double(), self.normalize(xq).double()
        if "linear" in self.groups:
            self.groups["linear"].fit(zp.mean(0) - zq.mean(0))
        gen = torch.Generator().manual_seed(seed)
        if "cones" in self.groups:
            self.groups["cones"].init_anchors(torch.cat([zp, zq]).float(), gen)
        if "transport" in self.groups:
            # on at most TRANSPORT_MAX_ROWS per side (a random subset when there are more)
            take = [z[torch.randperm(len(z), generator=gen)[:TRANSPORT_MAX_ROWS]] for z in (zp, zq)]
            self.groups["transport"].fit(*take)

    def forward_normalized(self, z: torch.Tensor, trained_only: bool = False) -> torch.Tensor:
        """``(B, K)`` scores of normalized inputs ``z`` (only the trained members' columns,
        in member order, with ``trained_only``: the closed-form ones need no gradient)."""
        out: dict[str, torch.Tensor] = {}
        for key, g in self.groups.items():
            if trained_only and key in CLOSED_FORM:
                continue
            s = g(z)
            out[key] = s.unsqueeze(0) if s.dim() == 1 else s
        columns = [out[key][i] for key, i in self.slots if key in out]
        if not columns:  # trained_only in a family of closed-form members alone
            return z.new_zeros(len(z), 0)
        return torch.stack(columns, dim=1)

    def forward(self, x: torch.Tensor, trained_only: bool = False) -> torch.Tensor:
        """``(B, K)`` scores of raw samples, in normalized units (what training optimizes)."""
        return self.forward_normalized(self.normalize(x), trained_only)

    def param_groups(self, lr: float) -> list[dict]:
        """Optimizer groups: cone anchors take larger steps than network weights."""
        groups = []
        for key, g in self.groups.items():
            params = [p for p in g.parameters() if p.requires_grad]
            if params:
                groups.append(
                    {"params": params, "lr": lr * (CONE_LR_FACTOR if key == "cones" else 1)}
                )
        return groups

    # ----- per-member early stopping -----

    @torch.no_grad()
    def record(self, values: Sequence[float], stderr: Sequence[float] | None = None) -> None:
        """Keep each member's weights at its best monitor value so far (and that value's
        standard error)."""
        if self._best is None:
            self._best = {k: v.detach().clone() for k, v in self.state_dict().items()}
        for k, value in enumerate(values):
            best = float(self.best_values[k])
            if math.isfinite(value) and (value > best or not math.isfinite(best)):
                self.best_values[k] = float(value)
                self.best_stderr[k] = float(stderr[k]) if stderr is not None else 0.0
                key, i = self.slots[k]
                prefix = f"groups.{key}."
                for name, t in self.state_dict().items():
                    if name.startswith(prefix) and t.dim() > 0 and key not in CLOSED_FORM:
                        self._best[name][i] = t[i]
        self._best["best_values"] = self.best_values.clone()
        self._best["best_stderr"] = self.best_stderr.clone()

    @torch.no_grad()
    def load_best(self) -> None:
        """Put every member's best weights back (no-op before the first ``record``)."""
        if self._best is not None:
            self.load_state_dict(self._best)

    def best_member(self) -> int:
        """Index of the member with the best monitor value (the first on ties)."""
        return int(torch.argmax(self.best_values))

    def complexity(self, k: int) -> tuple[int, int]:
        """Order used by :meth:`select`: closed-form linear, cones, networks by size, and
        the transport potential (as many anchors as fit rows) last."""
        key, i = self.slots[k]
        rank = {"linear": 0, "cones": 1, "transport": 3}.get(key, 2)
        size = sum(p[i].numel() for p in self.groups[key].parameters()) if rank == 2 else 0
        return rank, size

    def select(self, one_se: bool = True, exclude: Sequence[str] = ()) -> int:
        """The reported member. With ``one_se``, the simplest member (:meth:`complexity`)
        whose monitor value is within one standard error of the best: each trained member's
        value is the best of many checks of one monitor split, so it is optimistic by about
        that much, while a closed-form member is checked once (Breiman's one-standard-error
        rule). Without it, the best value (in-sample runs, where optimism is the point)."""
        ok = [k for k in range(len(self.names)) if self.names[k] not in exclude
              and math.isfinite(float(self.best_values[k]))]  # fmt: skip
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
        g = self.groups[key]
        if key == "linear":
            net = LinearCritic(g.u.numel())
            net.u.copy_(g.u)
        elif key == "transport":
            net = TransportCritic(g.anchors.shape[1])
            net.anchors, net.psi = g.anchors.clone(), g.psi.clone()
        else:
            net = g.member(i)
        critic = RawInputCritic(net, self.input_shape, flatten=True, kind="family", certified=True)
        critic.member_name = self.names[k]
        critic.shift.copy_(self.shift)
        critic.scale.copy_(self.scale)
        return critic.to(self.shift.device)

    def lipschitz_bounds(self) -> list[float]:
        """Certified bound of every member (computed from its weights)."""
        return [lipschitz_bound(self.member(k)) for k in range(len(self.names))]
