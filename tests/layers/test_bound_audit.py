"""Audit of every certified bound: ``lipschitz_bound`` is never below the exact constant.

For each module type with a rule, hypothesis draws the constructor options and a small input
size, builds the module with random float64 weights and compares the bound with the exact
operator norm (the largest singular value of the full matrix of the map, built column by
column from the unit inputs) or, for nonlinear maps, with the largest Jacobian norm and
difference quotient found. Options a rule cannot handle must be refused by name.
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from wgan_lip.layers import (
    BCOPConv2d,
    BjorckLinear,
    FullSort,
    GroupSort,
    InvertibleDownsample,
    L2NormPool2d,
    MaxMin,
    SpectralConv2d,
    SpectralLinear,
    lipschitz_bound,
)

AUDIT = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TOL = 1e-6


def operator_norm(m: nn.Module, shape: tuple[int, ...]) -> float | None:
    """Exact norm of the affine map ``m`` on inputs of ``shape`` (batch dim excluded); None
    when the output is empty."""
    n = math.prod(shape)
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        cols = m(eye) - m(torch.zeros(1, *shape, dtype=torch.float64))
    if cols[0].numel() == 0:
        return None
    return float(torch.linalg.matrix_norm(cols.reshape(n, -1), ord=2))


def nonlinear_lower_bound(m: nn.Module, shape: tuple[int, ...], seed: int) -> float:
    """Largest Jacobian norm at random points and largest difference quotient of random
    pairs (near and far): each is a lower bound of the Lipschitz constant."""
    gen = torch.Generator().manual_seed(seed)
    best = 0.0
    for _ in range(4):
        x = torch.randn(1, *shape, generator=gen, dtype=torch.float64) * 3
        jac = torch.autograd.functional.jacobian(m, x).reshape(-1, x.numel())
        best = max(best, float(torch.linalg.matrix_norm(jac, ord=2)))
    a = torch.randn(64, *shape, generator=gen, dtype=torch.float64) * 3
    for scale in (1e-4, 1e-1, 3.0):
        b = a + scale * torch.randn(a.shape, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            ratio = (m(a) - m(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
        best = max(best, float(ratio.max()))
    return best


def randomize(m: nn.Module, seed: int) -> nn.Module:
    """float64, eval mode, every parameter and floating buffer redrawn (variances positive)."""
    m = m.double().eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(m.named_parameters()) + list(m.named_buffers()):
            if not t.is_floating_point():
                continue
            fresh = torch.randn(t.shape, generator=gen, dtype=torch.float64)
            t.copy_(fresh.abs() + 0.05 if name.endswith("running_var") else fresh)
    return m


def assert_sound(m: nn.Module, exact: float | None, shape: tuple[int, ...] | None = None) -> float:
    """The bound for every input size is sound; with ``shape``, so is the bound on that input
    shape, and it is never looser than the size-free one."""
    bound = lipschitz_bound(m)
    if exact is not None:
        assert bound >= exact * (1 - TOL), (m, exact, bound)
    if shape is not None:
        on_shape = lipschitz_bound(m, input_shape=shape)
        assert on_shape <= bound * (1 + 1e-9), (m, shape, on_shape, bound)
        if exact is not None:
            assert on_shape >= exact * (1 - TOL), (m, shape, exact, on_shape)
    return bound


# ---------------------------------------------------------------- dense layers


@AUDIT
@given(
    kind=st.sampled_from(["plain", "bjorck", "spectral"]),
    d_in=st.integers(1, 6),
    d_out=st.integers(1, 6),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_linear_bound_for_every_option(kind, d_in, d_out, bias, seed):
    cls = {"plain": nn.Linear, "bjorck": BjorckLinear, "spectral": SpectralLinear}[kind]
    m = cls(d_in, d_out, bias=bias)
    if kind == "plain":
        m = randomize(m, seed)
    else:  # the constrained layers keep their parametrization; train a step to move it
        torch.manual_seed(seed)
        with torch.no_grad():
            m.parametrizations.weight.original.normal_()
        m(torch.randn(2, d_in)).sum().backward()
        m = m.double().eval()
    exact = operator_norm(m, (d_in,))
    bound = assert_sound(m, exact)
    assert bound <= exact * (1 + 1e-9) + 1e-12  # dense layers are bounded exactly


# ---------------------------------------------------------------- convolutions


@st.composite
def conv2d_options(draw):
    groups = draw(st.integers(1, 2))
    in_c = groups * draw(st.integers(1, 2))
    out_c = groups * draw(st.integers(1, 2))
    k = draw(st.tuples(st.integers(1, 4), st.integers(1, 4)))
    dilation = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.tuples(st.integers(0, 3), st.integers(0, 3)),
        )
    )
    stride = (1, 1) if padding == "same" else draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    mode = draw(st.sampled_from(["zeros", "circular", "reflect", "replicate"]))
    bias = draw(st.booleans())
    conv = nn.Conv2d(in_c, out_c, k, stride, padding, dilation, groups, bias, mode)
    # Input sizes 1..7, enlarged where torch needs it: a nonempty output and, for circular
    # padding, no pad wider than the input.
    pads = conv._reversed_padding_repeated_twice  # (left, right, top, bottom)
    size = []
    for axis, (lo, hi) in enumerate(((pads[2], pads[3]), (pads[0], pads[1]))):
        span = dilation[axis] * (k[axis] - 1) + 1
        n = draw(st.integers(1, 7))
        n = max(n, span - lo - hi)
        if mode == "circular":
            n = max(n, lo, hi)
        size.append(n)
    return conv, (in_c, *size)


@settings(AUDIT, max_examples=50)  # a third draw reflect/replicate padding: refused
@given(opts=conv2d_options(), seed=st.integers(0, 1000))
def test_conv2d_bound_for_every_option(opts, seed):
    conv, shape = opts
    conv = randomize(conv, seed)
    if conv.padding_mode in ("reflect", "replicate") and any(conv._reversed_padding_repeated_twice):
        with pytest.raises(TypeError, match=f"Conv2d with padding_mode='{conv.padding_mode}'"):
            lipschitz_bound(conv)
        with pytest.raises((TypeError, ValueError)):  # refused, or a shape torch refuses
            lipschitz_bound(conv, input_shape=shape)
        return
    assert_sound(conv, operator_norm(conv, shape), shape)


@AUDIT
@given(
    pads=st.tuples(*[st.integers(0, 3)] * 4),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    conv_pad=st.integers(0, 1),
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    channels=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 1000),
)
def test_circular_pad_then_conv_bound(pads, k, dilation, stride, conv_pad, size, channels, seed):
    left, right, top, bottom = pads
    h = max(size[0], top, bottom, dilation[0] * (k[0] - 1) + 1 - top - bottom)
    w = max(size[1], left, right, dilation[1] * (k[1] - 1) + 1 - left - right)
    pad = nn.CircularPad2d(pads)
    conv = nn.Conv2d(*channels, k, stride, conv_pad, dilation)
    shape = (channels[0], h, w)
    net = randomize(nn.Sequential(pad, conv), seed)
    # the fused pair (conv_pad=0) or the product
    assert_sound(net, operator_norm(net, shape), shape)
    assert_sound(pad, operator_norm(pad.double(), shape), shape)  # the padding alone


@AUDIT
@given(
    in_c=st.integers(1, 4),
    out_c=st.integers(1, 4),
    k=st.integers(1, 4),
    padding=st.sampled_from(["circular", "zeros"]),
    bias=st.booleans(),
    size=st.tuples(st.integers(2, 6), st.integers(2, 6)),
    seed=st.integers(0, 1000),
)
def test_bcop_bound_for_every_option(in_c, out_c, k, padding, bias, size, seed):
    torch.manual_seed(seed)
    m = BCOPConv2d(in_c, out_c, k, bias, padding=padding, dtype=torch.float64)
    with torch.no_grad():  # raw parameters away from orthogonal: Björck has work to do
        m.parametrizations.weight.original0.normal_()
        if k > 1:
            m.parametrizations.weight.original1.normal_()
    m.eval()
    assert_sound(m, operator_norm(m, (in_c, *size)))


def test_spectral_conv_bound_is_sound():
    torch.manual_seed(0)
    m = SpectralConv2d(2, 3, 3).double()
    m(torch.randn(1, 2, 5, 5, dtype=torch.float64))  # the power iteration sees 5x5
    for size in (1, 3, 8):  # the certificate must not depend on the size it saw
        assert_sound(m.eval(), operator_norm(m, (2, size, size)))


# ---------------------------------------------------------------- normalization


@AUDIT
@given(
    dims=st.sampled_from([1, 2]),
    channels=st.integers(1, 4),
    affine=st.booleans(),
    eps=st.sampled_from([1e-5, 1e-1, 1.0]),
    spatial=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_batchnorm_bound_for_every_option(dims, channels, affine, eps, spatial, seed):
    cls = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    m = randomize(cls(channels, eps=eps, affine=affine), seed)
    shape = (channels,) if dims == 1 else (channels, spatial, spatial)
    bound = assert_sound(m, operator_norm(m, shape))
    assert bound == pytest.approx(operator_norm(m, shape), rel=1e-9)  # a diagonal map
    m.train()
    assert lipschitz_bound(m) == bound and m.training  # certified as in eval mode


# ---------------------------------------------------------------- linear reshapes


@st.composite
def reshape_modules(draw):
    kind = draw(
        st.sampled_from(
            [
                "downsample",
                "unshuffle",
                "shuffle",
                "flatten",
                "unflatten",
                "identity",
                "zeropad",
                "dropout",
            ]
        )
    )
    f = draw(st.integers(1, 3))
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if kind == "downsample":
        return InvertibleDownsample(f), (c, h * f, w * f)
    if kind == "unshuffle":
        return nn.PixelUnshuffle(f), (c, h * f, w * f)
    if kind == "shuffle":
        return nn.PixelShuffle(f), (c * f * f, h, w)
    if kind == "flatten":
        start = draw(st.integers(1, 3))
        return nn.Flatten(start, draw(st.integers(start, 3))), (c, h, w)
    if kind == "unflatten":
        return nn.Unflatten(1, (c, h)), (c * h,)
    if kind == "identity":
        return nn.Identity(), (c, h, w)
    if kind == "zeropad":  # negative padding crops
        pads = draw(st.tuples(*[st.integers(-1, 2)] * 4))
        return nn.ZeroPad2d(pads), (c, h + 2, w + 2)
    return nn.Dropout(draw(st.floats(0.0, 0.9))), (c, h, w)


@AUDIT
@given(m_shape=reshape_modules())
def test_reshapes_and_permutations_are_bounded_by_one(m_shape):
    m, shape = m_shape
    assert_sound(m.eval(), operator_norm(m, shape))


# ---------------------------------------------------------------- nonlinear maps


@st.composite
def activations(draw):
    kind = draw(
        st.sampled_from(
            ["relu", "relu6", "tanh", "hardtanh", "softsign", "sigmoid", "leaky", "elu"]
        )
    )
    if kind == "hardtanh":
        lo = draw(st.floats(-3, 2))
        return nn.Hardtanh(lo, lo + draw(st.floats(0.1, 3)))
    if kind == "leaky":
        return nn.LeakyReLU(draw(st.floats(-3, 3)))
    if kind == "elu":
        return nn.ELU(draw(st.floats(-3, 3)))
    return {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "tanh": nn.Tanh,
        "softsign": nn.Softsign,
        "sigmoid": nn.Sigmoid,
    }[kind]()


@AUDIT
@given(act=activations())
def test_pointwise_activation_bound_is_the_sup_of_the_slope(act):
    # An elementwise map's constant is sup |f'|: on a fine grid, plus one-sided limits at 0.
    x = torch.cat(
        [torch.linspace(-8, 8, 20001, dtype=torch.float64), torch.tensor([-1e-9, 1e-9]).double()]
    ).requires_grad_(True)
    (slope,) = torch.autograd.grad(act(x).sum(), x)
    steepest = max(float(slope.abs().max()), nonlinear_lower_bound(act, (3,), seed=0))
    bound = assert_sound(act, steepest)
    assert bound <= steepest * (1 + 1e-3)  # and tight


@AUDIT
@given(
    kind=st.sampled_from(["groupsort", "maxmin", "fullsort", "l2pool"]),
    g=st.integers(1, 3),
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    size=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_sorts_and_l2_pooling_are_bounded_by_one(kind, g, k, s, size, seed):
    if kind == "l2pool":
        m, shape = L2NormPool2d(k, s), (2, max(size, k), max(size, k))
    elif kind == "maxmin":
        m, shape = MaxMin(), (4, size)
    else:
        m = GroupSort(g) if kind == "groupsort" else FullSort()
        shape = (2 * g, size)
    assert_sound(m, nonlinear_lower_bound(m, shape, seed))


# ---------------------------------------------------------------- the counterexamples


def test_elu_with_negative_alpha_is_bounded_by_its_slope():
    # ELU(alpha=-2) has slope about -2 just left of 0; the bound was max(1, alpha) = 1.
    assert lipschitz_bound(nn.ELU(alpha=-2.0)) == 2.0


def test_circular_padding_wider_than_the_kernel_duplicates_outputs():
    # A 1x1 circular conv with padding 1 on a 1x1 input copies the pixel 9 times: norm 3
    # (the bound was 1); a 3x3 one with padding 2 on 3x3 inputs has norm 15 (was 9.1).
    conv = nn.Conv2d(1, 1, 1, padding=1, padding_mode="circular", bias=False).double()
    nn.init.ones_(conv.weight)
    assert operator_norm(conv, (1, 1, 1)) == pytest.approx(3.0)
    assert lipschitz_bound(conv) >= 3.0 * (1 - TOL)
    conv = nn.Conv2d(1, 1, 3, padding=2, padding_mode="circular", bias=False).double()
    nn.init.ones_(conv.weight)
    assert lipschitz_bound(conv) >= operator_norm(conv, (1, 3, 3)) == pytest.approx(15.0)
    # Same with CircularPad2d(2) then a valid 3x3 conv on a 2x2 input: 18 (was 9.1).
    net = nn.Sequential(nn.CircularPad2d(2), nn.Conv2d(1, 1, 3, bias=False)).double()
    nn.init.ones_(net[1].weight)
    assert lipschitz_bound(net) >= operator_norm(net, (1, 2, 2)) == pytest.approx(18.0)
    # 'same' circular padding is still bounded by the kernel alone.
    same = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()
    nn.init.ones_(same.weight)
    assert 9.0 <= lipschitz_bound(same) <= 9.0 * 1.02  # Bernstein grid inflation only


# ---------------------------------------------------------------- refusals


class _Residual(nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)


class _Doubled(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


def _hooked():
    m = nn.Linear(2, 2)
    m.register_forward_hook(lambda mod, args, out: 10 * out)
    return m


def _pre_hooked():
    m = nn.ReLU()
    m.register_forward_pre_hook(lambda mod, args: (10 * args[0],))
    return m


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), ["Conv2d", "reflect"]),
        (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate"), ["replicate"]),
        (lambda: nn.Conv2d(2, 2, 1, padding=-1, padding_mode="circular"), ["negative padding"]),
        (lambda: nn.CircularPad2d((1, -1, 0, 0)), ["CircularPad2d", "negative padding"]),
        (lambda: nn.BatchNorm2d(3, track_running_stats=False), ["BatchNorm2d", "track_running"]),
        (lambda: nn.BatchNorm1d(3, track_running_stats=False), ["BatchNorm1d", "track_running"]),
        (lambda: _Residual(nn.Linear(2, 2)), ["_Residual", "Sequential", "forward"]),
        (lambda: _Doubled(2, 2), ["_Doubled", "Linear", "forward"]),
        (_hooked, ["Linear", "hooks"]),
        (_pre_hooked, ["ReLU", "hooks"]),
        (lambda: nn.Sequential(nn.ReLU(), _hooked()), ["Linear", "hooks"]),
        (lambda: nn.MaxPool2d(3, 1), ["MaxPool2d"]),
        (lambda: nn.ReflectionPad2d(1), ["ReflectionPad2d"]),
        (lambda: nn.ReplicationPad2d(1), ["ReplicationPad2d"]),
        (lambda: nn.Softplus(beta=3.0), ["Softplus"]),
        (lambda: nn.Upsample(scale_factor=2), ["Upsample"]),
        (lambda: nn.ConvTranspose2d(2, 2, 3), ["ConvTranspose2d"]),
    ],
)
def test_options_without_a_certified_bound_are_refused_by_name(make, names):
    with pytest.raises(TypeError) as info:
        lipschitz_bound(make())
    message = str(info.value)
    assert "\n" not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    "k,groups,padding,mode,size",
    [
        (2, 1, 0, "zeros", (6, 6)),
        ((2, 3), 1, 0, "zeros", (5, 7)),
        (2, 2, 1, "zeros", (5, 5)),
        (3, 1, 0, "zeros", (7, 8)),
        (2, 1, 1, "circular", (4, 4)),
    ],
)
def test_patch_convolution_bound_is_exact(k, groups, padding, mode, size):
    """stride == kernel size: non-overlapping patches, bounded by the reshaped kernel's norm
    (exact when the input holds whole patches); circular padding keeps the general rule."""
    torch.manual_seed(0)
    conv = nn.Conv2d(
        4, 6, k, stride=k, padding=padding, groups=groups, bias=False, padding_mode=mode
    ).double()
    exact = operator_norm(conv, (4, *size))
    bound = lipschitz_bound(conv)
    assert bound >= exact * (1 - TOL)
    if mode == "zeros":
        per = 6 // groups
        blocks = [conv.weight[g * per : (g + 1) * per].flatten(1) for g in range(groups)]
        assert bound == pytest.approx(
            max(float(torch.linalg.matrix_norm(b, ord=2)) for b in blocks)
        )
    if size == (6, 6):  # whole patches, no padding: the bound is attained
        assert bound == pytest.approx(exact, rel=1e-9)


# ---------------------------------------------------------------- bounds on a known input shape


@AUDIT
@given(
    channels=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    k=st.integers(1, 5),
    size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    seed=st.integers(0, 1000),
)
def test_circular_same_conv_bound_on_its_shape_is_exact(channels, k, size, seed):
    """A stride-1 'same' circular convolution is a circular convolution on the input's own
    grid: its bound on that shape is its exact norm (kernel taps folded when it is wider)."""
    pad = k // 2
    h, w = max(size[0], pad), max(size[1], pad)
    conv = randomize(nn.Conv2d(*channels, 2 * pad + 1, padding=pad, padding_mode="circular"), seed)
    shape = (channels[0], h, w)
    exact = operator_norm(conv, shape)
    assert lipschitz_bound(conv, input_shape=shape) == pytest.approx(exact, rel=1e-9)


def test_shape_bound_removes_the_transfer_inflation_of_an_orthogonal_conv():
    """An orthogonal 3x3 convolution (BCOP's kernel in a plain ``nn.Conv2d``) has norm 1:
    the size-free bound pays the grid's soundness inflation, the bound on a 28x28 input is
    1 up to rounding."""
    torch.manual_seed(0)
    bcop = BCOPConv2d(16, 16, 3, bias=False, dtype=torch.float64)
    conv = nn.Conv2d(16, 16, 3, padding=1, bias=False, padding_mode="circular").double()
    with torch.no_grad():
        conv.weight.copy_(bcop.weight)
    assert lipschitz_bound(conv) > 1.01  # the inflation the input size removes
    assert lipschitz_bound(conv, input_shape=(16, 28, 28)) == pytest.approx(1.0, abs=1e-9)


def test_shape_bound_follows_each_layer_input_size():
    """Strides change the sizes layer by layer, and a module called twice is bounded on both
    of its sizes: every bound stays above the exact norm of the whole map."""
    torch.manual_seed(0)
    shared = nn.Conv2d(2, 2, 3, padding=1)
    net = randomize(
        nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1), shared, nn.Conv2d(2, 2, 2, stride=2), shared
        ),
        seed=3,
    )
    shape = (1, 9, 7)
    exact = operator_norm(net, shape)
    assert exact <= lipschitz_bound(net, input_shape=shape) * (1 + TOL)
    assert lipschitz_bound(net, input_shape=shape) <= lipschitz_bound(net)


def test_sll_conv_bound_on_a_shape_is_sound_and_no_looser():
    from wgan_lip.layers import SLLConv2d

    torch.manual_seed(0)
    m = SLLConv2d(3, 4, dtype=torch.float64).eval()
    with torch.no_grad():
        m.weight.mul_(3.0)
        m.log_q.normal_()
    for size in [(1, 1), (2, 5), (6, 6)]:
        shape = (3, *size)
        lower = nonlinear_lower_bound(m, shape, seed=1)
        on_shape = lipschitz_bound(m, input_shape=shape)
        assert lower <= on_shape * (1 + TOL)
        assert on_shape <= lipschitz_bound(m) * (1 + 1e-9)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 2), (1, 1, 1)])
def test_an_input_shape_that_does_not_fit_is_one_clear_error(shape):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    with pytest.raises(ValueError, match=r"input_shape .* does not fit the module"):
        lipschitz_bound(net, input_shape=shape)


def test_bound_on_a_shape_leaves_no_hooks_behind():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
    lipschitz_bound(net, input_shape=(1, 5, 5))
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in net.modules())
    with pytest.raises(ValueError):
        lipschitz_bound(net, input_shape=(3, 5, 5))
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_name(bad: float) -> None:
    """A diverged model has no certificate: one ValueError naming the weight, with or
    without an input shape, never a bound or a linear-algebra traceback."""
    net = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)
    )
    with torch.no_grad():
        net[3].weight[0, 0] = bad
    for shape in (None, (2, 4, 4)):
        with pytest.raises(ValueError, match=r"3\.weight is not finite"):
            lipschitz_bound(net, shape)


def test_a_parametrized_weight_that_becomes_nan_is_a_value_error() -> None:
    """A weight computed by a parametrization (finite raw parameter, NaN result) is caught
    where the bound is computed."""
    from torch.nn.utils import parametrize

    class ToNaN(nn.Module):
        def forward(self, w: torch.Tensor) -> torch.Tensor:
            return w * float("nan")

    conv = nn.Conv2d(2, 2, 3, padding=1)
    parametrize.register_parametrization(conv, "weight", ToNaN())
    with pytest.raises(ValueError, match=r"not finite|NaN|non-finite"):
        lipschitz_bound(conv, (2, 5, 5))
