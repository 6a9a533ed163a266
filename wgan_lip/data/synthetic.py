"""Pairs of distributions with an exact population W1, and the classic 2-D toys.

Each ``KnownW1`` samples any number of points from P and Q (fresh draws every call, so a
critic can be scored on 10^5+ new samples) and states W1(P, Q) exactly, with its proof in
the class docstring. Proofs follow one pattern (GUIDE §3): a 1-Lipschitz ``f`` with
``E_P f - E_Q f = c`` shows ``W1 >= c``; a coupling of cost ``c`` shows ``W1 <= c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _gen(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


@dataclass
class KnownW1:
    """Base: ``sample_p(n, seed)``, ``sample_q(n, seed)`` and the exact ``w1``.

    ``sample_p`` and ``sample_q`` return ``n`` float32 samples of shape ``(n, dim)``: the
    same for the same ``seed``, fresh random ones for ``seed=None`` (Q draws from
    ``seed + 1``, so the two sides are independent). ``w1`` is W1(P, Q) for the Euclidean
    cost. The base class itself raises ``NotImplementedError`` for all three.

    Args:
        dim: dimension of the samples.

    Example:
        >>> from wgan_lip.data import KnownW1, Translation
        >>> problem = Translation(dim=3, shift=2.0)
        >>> isinstance(problem, KnownW1), problem.w1, tuple(problem.sample_p(5, seed=0).shape)
        (True, 2.0, (5, 3))
    """

    dim: int

    def __post_init__(self) -> None:
        if not (isinstance(self.dim, int) and self.dim >= 1):
            raise ValueError(
                f"{type(self).__name__}: dim must be a positive integer, got {self.dim}"
            )
        self._validate()

    def _validate(self) -> None:
        """Subclasses refuse their own bad parameters here, at construction."""

    @property
    def w1(self) -> float:
        raise NotImplementedError

    def sample_p(self, n: int, seed: int | None = None) -> torch.Tensor:
        raise NotImplementedError

    def sample_q(self, n: int, seed: int | None = None) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class Translation(KnownW1):
    """P = N(0, I_d) (or uniform on [-1, 1]^d), Q = P + s: ``W1 = |s|``.

    Proof: ``f(x) = <x, s/|s|>`` is 1-Lipschitz with ``E_P f - E_Q f = -|s|`` (so
    ``W1 >= |s|`` with ``-f``); the coupling ``x -> x + s`` moves every point by ``|s|``.

    The shift is ``s = shift * (1, ..., 1) / sqrt(dim)``, so ``|s| = |shift|``.

    Args:
        dim: dimension of the samples.
        shift: signed length of the shift along the diagonal; ``w1 = |shift|``.
        base: ``"gaussian"`` (standard normal) or ``"uniform"`` (on ``[-1, 1]^dim``).

    Raises:
        ValueError: an unknown ``base`` or a non-positive ``dim``, at construction.

    Example:
        >>> from wgan_lip.data import Translation
        >>> problem = Translation(dim=2, shift=-1.5, base="uniform")
        >>> problem.w1
        1.5
        >>> p = problem.sample_p(4, seed=0)
        >>> p.shape, p.dtype, bool(p.abs().max() <= 1)
        (torch.Size([4, 2]), torch.float32, True)
    """

    shift: float = 1.0
    base: str = "gaussian"

    def _validate(self) -> None:
        if self.base not in ("gaussian", "uniform"):
            raise ValueError(f"Translation: unknown base {self.base!r}; use gaussian or uniform")

    def _direction(self) -> torch.Tensor:
        d = torch.ones(self.dim, dtype=torch.float64)
        return d / d.norm()

    @property
    def w1(self) -> float:
        return abs(self.shift)

    def sample_p(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = _gen(seed)
        if self.base == "gaussian":
            return torch.randn(n, self.dim, generator=g)
        if self.base == "uniform":
            return torch.rand(n, self.dim, generator=g) * 2 - 1
        raise ValueError(f"unknown base {self.base!r}; use gaussian or uniform")

    def sample_q(self, n: int, seed: int | None = None) -> torch.Tensor:
        s = (self.shift * self._direction()).float()
        return self.sample_p(n, None if seed is None else seed + 1) + s


@dataclass
class PointVsSphere(KnownW1):
    """P = a point mass at 0, Q = uniform on the sphere of radius r: W1 = r.

    Proof: every coupling sends the mass at 0 to points at distance exactly r, and
    ``f(x) = -|x|`` attains ``E_P f - E_Q f = r``.

    Args:
        dim: dimension of the samples.
        radius: the sphere's radius ``r``, non-negative: the exact W1.

    Example:
        >>> from wgan_lip.data import PointVsSphere
        >>> problem = PointVsSphere(dim=3, radius=2.0)
        >>> problem.sample_q(4, seed=0).norm(dim=1).round(decimals=4)
        tensor([2., 2., 2., 2.])
        >>> float(problem.sample_p(4).abs().max()), problem.w1
        (0.0, 2.0)
    """

    radius: float = 1.0

    def _validate(self) -> None:
        if not self.radius >= 0:
            raise ValueError(f"PointVsSphere: radius must be non-negative, got {self.radius}")

    @property
    def w1(self) -> float:
        return self.radius

    def sample_p(self, n: int, seed: int | None = None) -> torch.Tensor:
        return torch.zeros(n, self.dim)

    def sample_q(self, n: int, seed: int | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, generator=_gen(None if seed is None else seed + 1))
        return self.radius * z / z.norm(dim=1, keepdim=True)


@dataclass
class GaussianScale(KnownW1):
    """Two centred Gaussians of different scales, with W1 in closed form.

    P = N(0, a^2 I_d), Q = N(0, b^2 I_d): W1 = ``|a - b| E[chi_d]``, with
    ``E[chi_d] = sqrt(2) Gamma((d+1)/2) / Gamma(d/2)``.

    Derived from duality: ``f(x) = sign(a - b) |x|`` is 1-Lipschitz and
    ``E_P f - E_Q f = |a - b| E|z|`` for ``z ~ N(0, I)``; the coupling ``(a z, b z)`` costs
    ``E|a z - b z| = |a - b| E|z|``. Both equal, so the coupling is optimal. Unlike a
    translation, the optimal critic is radial, not linear, and the two supports overlap.

    Args:
        dim: dimension ``d`` of the samples.
        scale_p: standard deviation ``a`` of P, non-negative.
        scale_q: standard deviation ``b`` of Q, non-negative.

    Example:
        >>> import math
        >>> from wgan_lip.data import GaussianScale
        >>> problem = GaussianScale(dim=1, scale_p=1.0, scale_q=2.0)
        >>> round(problem.w1, 6), round(math.sqrt(2 / math.pi), 6)  # E|z| in one dimension
        (0.797885, 0.797885)
    """

    scale_p: float = 1.0
    scale_q: float = 2.0

    def _validate(self) -> None:
        if not (self.scale_p >= 0 and self.scale_q >= 0):
            raise ValueError(
                f"GaussianScale: scales are standard deviations, non-negative; got "
                f"{self.scale_p} and {self.scale_q}"
            )

    @property
    def w1(self) -> float:
        d = self.dim
        mean_chi = math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
        return abs(self.scale_p - self.scale_q) * mean_chi

    def sample_p(self, n: int, seed: int | None = None) -> torch.Tensor:
        return self.scale_p * torch.randn(n, self.dim, generator=_gen(seed))

    def sample_q(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = _gen(None if seed is None else seed + 1)
        return self.scale_q * torch.randn(n, self.dim, generator=g)


@dataclass
class VoronoiPush(KnownW1):
    """A problem whose optimal potential is kinked: a minimum of k funnels (cones).

    The potential is ``g(x) = min_j (|x - c_j| + b_j)``: ``k`` funnels with apexes ``c_j``
    (fixed uniform points of the box ``[-1, 1]^d``, drawn from ``centre_seed``) and offsets
    ``b_j`` (uniform in ``[0, offset_scale * sqrt(d)]``, from the same seed; all 0 by
    default, when ``g`` is the distance to the nearest centre). Q is uniform on the box; a
    sample of P is a sample ``y`` of Q moved a uniform random fraction ``t`` of the way
    toward the apex ``c(y)`` of its funnel (the ``j`` that attains the minimum). W1 = half the
    mean distance of Q to its apex, ``E|y - c(y)| / 2``, evaluated once by Monte Carlo on
    ``mc_samples`` points (standard error in :attr:`w1_stderr`).

    Proof: ``g`` is 1-Lipschitz (a minimum of 1-Lipschitz cones). For a point ``x`` on the
    segment from ``y`` to ``c = c(y)`` and any funnel ``m``, ``|x - c_m| + b_m >= |y - c_m| -
    |y - x| + b_m >= |y - c| + b - |y - x| = |x - c| + b``: the moved point stays in its
    funnel, so ``g(y) - g(x) = |y - x|``. The coupling ``(x, y)`` and the potential ``-g``
    have the same value, so the coupling is optimal and W1 = ``E[t |y - c(y)|] = E|y -
    c(y)| / 2``. This is the ray-monotone construction of Korotin, Kolesov and Burnaev (2022)
    with a min of funnels: every point moves along its transport ray, toward the apex.

    Args:
        dim: dimension of the samples.
        centres: number ``k`` of funnels.
        centre_seed: seed of the apexes and offsets (and, plus one, of the Monte Carlo
            points).
        mc_samples: Monte Carlo points used once, at construction, to evaluate ``w1``.
        offset_scale: the offsets' range, in units of ``sqrt(d)`` (the box's scale); 0 makes
            every offset 0.

    Example:
        >>> from wgan_lip.data import VoronoiPush
        >>> problem = VoronoiPush(dim=2, centres=4, mc_samples=10_000)
        >>> problem.w1 > 0, problem.w1_stderr < 0.01, tuple(problem.sample_p(5, seed=0).shape)
        (True, True, (5, 2))
    """

    centres: int = 16
    centre_seed: int = 12345
    mc_samples: int = 1_000_000
    offset_scale: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.centres < 1 or self.mc_samples < 2:
            raise ValueError(
                f"VoronoiPush: needs centres >= 1 and mc_samples >= 2, got {self.centres} and "
                f"{self.mc_samples}"
            )
        if not (math.isfinite(self.offset_scale) and self.offset_scale >= 0):
            raise ValueError(
                f"VoronoiPush: offset_scale must be finite and >= 0, got {self.offset_scale}"
            )
        g = _gen(self.centre_seed)
        self._c = torch.rand(self.centres, self.dim, generator=g, dtype=torch.float64) * 2 - 1
        # drawn after the apexes, so offset_scale=0 leaves the apexes (and samples) as before
        self._b = (
            torch.rand(self.centres, generator=g, dtype=torch.float64)
            * self.offset_scale
            * math.sqrt(self.dim)
        )
        y = (
            torch.rand(
                self.mc_samples, self.dim, generator=_gen(self.centre_seed + 1), dtype=torch.float64
            )
            * 2
            - 1
        )
        dist = torch.cat([self._nearest(chunk)[1] for chunk in y.split(65536)])
        self._w1 = 0.5 * float(dist.mean())
        self.w1_stderr = 0.5 * float(dist.std()) / math.sqrt(self.mc_samples)

    def _nearest(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The apex of each row's funnel (the one attaining the minimum) and the distance
        to it."""
        d = torch.cdist(y.to(torch.float64), self._c)
        idx = (d + self._b).argmin(dim=1)
        return self._c[idx], d.gather(1, idx[:, None])[:, 0]

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        """The optimal potential ``g(x) = min_j (|x - c_j| + b_j)`` (float64): ``g(y) -
        g(x)`` is the transport cost of every pair the map moves.

        Args:
            x: points ``(n, dim)``.

        Returns:
            ``(n,)`` float64 values.
        """
        return (torch.cdist(x.to(torch.float64), self._c) + self._b).min(dim=1).values

    @property
    def w1(self) -> float:
        return self._w1

    def sample_q(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = _gen(None if seed is None else seed + 1)
        return torch.rand(n, self.dim, generator=g) * 2 - 1

    def sample_p(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = _gen(None if seed is None else seed + 7919)
        y = (torch.rand(n, self.dim, generator=g) * 2 - 1).to(torch.float64)
        t = torch.rand(n, 1, generator=g, dtype=torch.float64)
        c, _ = self._nearest(y)
        return (y + t * (c - y)).float()


# ----- 2-D toys (GAN benchmarks) -----


def _mixture(centers: torch.Tensor, n: int, std: float, g: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(centers), (n,), generator=g)
    return centers[idx] + std * torch.randn(n, 2, generator=g)


def eight_gaussians(
    n: int, seed: int | None = None, radius: float = 2.0, std: float = 0.02
) -> torch.Tensor:
    """Eight Gaussians evenly spaced on a circle of ``radius``.

    The centres are at angles ``0, pi/4, ..., 7 pi/4``; each sample picks one uniformly.

    Args:
        n: number of samples.
        seed: seed of the draw (None: fresh random samples).
        radius: radius of the circle of centres.
        std: standard deviation of each Gaussian (per coordinate).

    Returns:
        A float32 tensor ``(n, 2)``.

    Example:
        >>> from wgan_lip.data import eight_gaussians
        >>> x = eight_gaussians(1000, seed=0)
        >>> x.shape, round(float(x.norm(dim=1).mean()), 1)
        (torch.Size([1000, 2]), 2.0)
    """
    angles = torch.arange(8) * (2 * math.pi / 8)
    centers = radius * torch.stack((angles.cos(), angles.sin()), dim=1)
    return _mixture(centers, n, std, _gen(seed))


def twenty_five_gaussians(
    n: int, seed: int | None = None, spacing: float = 1.0, std: float = 0.05
) -> torch.Tensor:
    """A 5 x 5 grid of Gaussians centred on {-2, ..., 2}^2 times ``spacing``.

    Args:
        n: number of samples.
        seed: seed of the draw (None: fresh random samples).
        spacing: distance between neighbouring centres.
        std: standard deviation of each Gaussian (per coordinate).

    Returns:
        A float32 tensor ``(n, 2)``.

    Example:
        >>> from wgan_lip.data import twenty_five_gaussians
        >>> x = twenty_five_gaussians(1000, seed=0)
        >>> x.shape, bool(x.abs().max() < 2.5)
        (torch.Size([1000, 2]), True)
    """
    grid = torch.arange(-2, 3, dtype=torch.float32) * spacing
    centers = torch.cartesian_prod(grid, grid)
    return _mixture(centers, n, std, _gen(seed))


def swiss_roll(n: int, seed: int | None = None, noise: float = 0.1) -> torch.Tensor:
    """The 2-D swiss roll: ``t (cos t, sin t)`` for ``t`` in [1.5 pi, 4.5 pi], scaled by 1/5.

    ``t`` is uniform on that interval; Gaussian noise of standard deviation ``noise / 5``
    per coordinate is added.

    Args:
        n: number of samples.
        seed: seed of the draw (None: fresh random samples).
        noise: noise level before the 1/5 scaling.

    Returns:
        A float32 tensor ``(n, 2)``.

    Example:
        >>> from wgan_lip.data import swiss_roll
        >>> x = swiss_roll(1000, seed=0, noise=0.0)
        >>> x.shape, bool(x.norm(dim=1).max() <= 4.5 * 3.1416 / 5)
        (torch.Size([1000, 2]), True)
    """
    g = _gen(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    x = torch.stack((t * t.cos(), t * t.sin()), dim=1) / 5
    return x + noise / 5 * torch.randn(n, 2, generator=g)


def two_moons(n: int, seed: int | None = None, noise: float = 0.05) -> torch.Tensor:
    """Two interleaving half circles.

    Each sample is, with probability 1/2, on the upper arc ``(cos t, sin t)`` or on the
    lower arc ``(1 - cos t, 1/2 - sin t)``, ``t`` uniform on ``[0, pi]``, plus Gaussian
    noise.

    Args:
        n: number of samples.
        seed: seed of the draw (None: fresh random samples).
        noise: standard deviation of the noise (per coordinate).

    Returns:
        A float32 tensor ``(n, 2)``.

    Example:
        >>> import torch
        >>> from wgan_lip.data import two_moons
        >>> x = two_moons(500, seed=0)
        >>> x.shape, bool(torch.equal(x, two_moons(500, seed=0)))
        (torch.Size([500, 2]), True)
    """
    g = _gen(seed)
    t = math.pi * torch.rand(n, generator=g)
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.where(upper, t.cos(), 1 - t.cos())
    y = torch.where(upper, t.sin(), 0.5 - t.sin())
    return torch.stack((x, y), dim=1) + noise * torch.randn(n, 2, generator=g)
