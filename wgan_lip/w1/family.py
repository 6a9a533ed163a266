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
    """One member of the family, parsed from its name."""

    name: str
    kind: str  # linear | cones | mlp
    widths: tuple[int, ...] = ()
    activation: str = ""
    group_size: int = 2


def parse_member(name: str) -> MemberSpec:
    """``"linear"``, ``"peaks"``, ``"pits"`` or ``"mlp:WIDTHxDEPTH:ACT"`` to a spec."""
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
    if width < 1 or depth < 1 or (act.startswith("gs") and (group < 1 or width % group)):
        raise InputError(f"family member {name!r}: width must be a positive multiple of the group")
    activation = "groupsort" if act.startswith("gs") or act == "maxmin" else "fullsort"
    return MemberSpec(name, "mlp", (width,) * depth, activation, group)


# ----- members -----


class LinearCritic(nn.Module):
    """``f(z) = <u, z>`` for a fixed vector ``u`` (a buffer); Lipschitz constant ``|u|``."""

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
        return float(self.u.double().norm())


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
    """``f(z) = min_j (|z - y_j| - psi_j)``: the c-transform of an optimal-transport
    potential over anchors ``y_j``. 1-Lipschitz for every value of its buffers."""

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
        return 1.0  # a minimum of the 1-Lipschitz functions |z - y_j| - psi_j


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
    """``max_j (a_j - |z - c_j|)`` (``sign=+1``, peaks) or ``min_j (a_j + |z - c_j|)``
    (``sign=-1``, pits). 1-Lipschitz for every value of its parameters."""

    def __init__(self, anchors: torch.Tensor, offsets: torch.Tensor, sign: float) -> None:
        super().__init__()
        self.anchors = nn.Parameter(anchors.detach().clone())
        self.offsets = nn.Parameter(offsets.detach().clone())
        self.register_buffer("sign", torch.tensor([float(sign)]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _cone_scores(z, self.anchors[None], self.offsets[None], self.sign)[0]

    def lipschitz_bound(self) -> float:
        # Each |z - c_j| is 1-Lipschitz; adding constants, negating, max and min keep it.
        return 1.0


class ConeStack(nn.Module):
    """Several cone critics evaluated together (one batched distance computation)."""

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
    """``K`` independent dense layers ``(K, out, in)``, orthonormalized as a batch."""

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
    """Björck/GroupSort MLPs with the same widths, one per activation, trained as a batch."""

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
    """Certified critics trained together; ``forward`` gives ``(B, K)`` scores in
    normalized units. See the module docstring for the members."""

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
        return torch.stack([out[key][i] for key, i in self.slots if key in out], dim=1)

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
