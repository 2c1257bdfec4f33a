"""Layer-level shared convolution against PyTorch (skipped when torch is not installed).

conv / conv_grad_input / conv_grad_weight / conv_grad_bias / conv_transpose are compared with
``torch.nn.functional.conv{1,2,3}d`` / ``conv_transpose{1,2,3}d`` and autograd, in float32 and
float64, with groups, dilation, stride and every padding form. Padding that torch's conv does
not take directly (pairs, 'full', TensorFlow 'same' at stride > 1) is applied with ``F.pad``;
'same' at stride 1 uses torch's own ``padding='same'``. ``flip=True`` is torch with the
kernel flipped.

Both convlab and torch round; each is within ``c * n * eps * sum |terms|`` of the exact value,
so they are compared with twice that bound (``sum |terms|`` from torch in float64 on absolute
values). The plain-numpy oracle of tests/_layer_reference.py is checked against torch here too.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torch.nn.functional")

import convlab  # noqa: E402
from _layer_reference import (  # noqa: E402
    conv_grad_bias_ref,
    conv_grad_input_ref,
    conv_grad_weight_ref,
    conv_ref,
    conv_transpose_ref,
)
from _reference import assert_matches, random_array  # noqa: E402

CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
CONV_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731


# torch on one thread while this module runs (conftest.py)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tuple(v, d):
    return (int(v),) * d if np.ndim(v) == 0 else tuple(int(i) for i in v)


def _pairs(ins, ks, padding, stride, dilation):
    """convlab's padding forms as (before, after) per axis, written out here independently of
    the numpy oracle: TensorFlow 'SAME' = ceil(in / s) outputs, the odd zero after."""
    d = len(ins)
    s, dl = _tuple(stride, d), _tuple(dilation, d)
    if padding == "valid":
        return [(0, 0)] * d
    if padding == "full":
        return [((k - 1) * di, (k - 1) * di) for k, di in zip(ks, dl)]
    if padding == "same":
        out = []
        for n, k, si, di in zip(ins, ks, s, dl):
            total = max((-(-n // si) - 1) * si + (k - 1) * di + 1 - n, 0)
            out.append((total // 2, total - total // 2))
        return out
    if np.ndim(padding) == 0:
        return [(int(padding),) * 2] * d
    return [(int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding]


def _flat(pairs):
    """F.pad's order: last axis first, (before, after) each."""
    return [v for pair in reversed(pairs) for v in pair]


def torch_conv(x, w, b, *, stride=1, padding=0, dilation=1, groups=1, flip=False):
    """torch's convNd with convlab's padding forms and flip (x, w, b torch tensors)."""
    d = w.dim() - 2
    if flip:
        w = torch.flip(w, dims=tuple(range(2, d + 2)))
    s, dl = _tuple(stride, d), _tuple(dilation, d)
    if padding == "same" and all(si == 1 for si in s):
        with warnings.catch_warnings():  # torch's note on even kernels (it pads a copy)
            warnings.simplefilter("ignore", UserWarning)
            return CONV[d](x, w, b, stride=1, padding="same", dilation=dl, groups=groups)
    pairs = _pairs(tuple(x.shape[2:]), tuple(w.shape[2:]), padding, s, dl)
    return CONV[d](TF.pad(x, _flat(pairs)), w, b, stride=s, padding=0, dilation=dl, groups=groups)


def _t(a, dtype=None, grad=False):
    a = np.asarray(a)
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    return torch.tensor(np.array(a, dtype=dtype), dtype=TORCH_DTYPE[np.dtype(dtype)], requires_grad=grad)


def torch_all(x, w, b, G, kw):
    """torch's forward and the autograd gradients of <y, G> w.r.t. x, w and b."""
    tx, tw = _t(x, grad=True), _t(w, grad=True)
    tb = None if b is None else _t(b, grad=True)
    y = torch_conv(tx, tw, tb, **kw)
    inputs = (tx, tw) + (() if tb is None else (tb,))
    grads = torch.autograd.grad(y, inputs, _t(G))
    gb = grads[2].numpy() if tb is not None else None
    return y.detach().numpy(), grads[0].numpy(), grads[1].numpy(), gb


def torch_bounds(x, w, b, G, kw):
    """sum |terms| of each output of the four results (float64, on absolute values)."""
    a = lambda v: None if v is None else np.abs(np.asarray(v, dtype=np.float64))  # noqa: E731
    b_abs = a(b) if b is not None else np.zeros(w.shape[0])
    return torch_all(a(x), a(w), b_abs, a(G), kw)


def _n_terms(w, G, groups):
    """Products per output of the forward (+ bias), the input and the weight gradient."""
    n_fwd = int(np.prod(w.shape[1:])) + 1
    n_gi = w.shape[0] // groups * int(np.prod(w.shape[2:]))
    n_gw = G.shape[0] * int(np.prod(G.shape[2:]))
    return n_fwd, n_gi, n_gw


def bound(abs_values, n, dtype, c=4.0):
    """Twice the bound of one summation (convlab and torch each within it of the exact value)."""
    return 2 * c * (n + 2) * np.finfo(dtype).eps * abs_values + np.finfo(dtype).tiny


# keyword arguments per case (a dict value is per d); groups "C" is depthwise; bias unless False
IN = {1: (13,), 2: (8, 9), 3: (6, 7, 5)}
K = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}
CASES = {
    "valid": dict(),
    "int_padding_stride2": dict(stride=2, padding=1),
    "per_axis_padding": dict(padding={1: (2,), 2: (1, 0), 3: (0, 1, 2)}),
    "pairs": dict(padding={1: ((2, 0),), 2: ((0, 1), (2, 1)), 3: ((1, 0), (0, 2), (1, 1))}, stride=2),
    "same_stride1": dict(padding="same"),
    "same_stride1_dilation": dict(padding="same", dilation=2),
    "same_stride2": dict(padding="same", stride=2),
    "same_mixed_stride": dict(padding="same", stride={1: (3,), 2: (2, 1), 3: (1, 2, 3)}),
    "full_dilation": dict(padding="full", dilation={1: (2,), 2: (1, 2), 3: (2, 1, 1)}),
    "groups2": dict(groups=2, padding=1, stride=2),
    "depthwise": dict(groups="C", padding="same"),
    "flip": dict(flip=True, padding={1: ((1, 2),), 2: ((1, 2), (2, 1)), 3: ((1, 2), (0, 0), (2, 1))}, dilation=2),
    "flip_groups_nobias": dict(flip=True, groups=2, bias=False, stride=2, padding="full"),
}


def resolve(case, d):
    kw = {}
    for key, v in CASES[case].items():
        if key == "bias":
            continue
        kw[key] = v[d] if isinstance(v, dict) else v
    return kw


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_and_gradients_match_torch(d, dtype, case, rng):
    kw = resolve(case, d)
    C, F = 4, 6
    if kw.get("groups") == "C":
        kw["groups"], F = C, 8
    groups = kw.get("groups", 1)
    x = random_array(rng, (2, C) + IN[d], dtype)
    w = random_array(rng, (F, C // groups) + K[d], dtype)
    b = random_array(rng, (F,), dtype) if CASES[case].get("bias", True) else None
    y = convlab.conv(x, w, b, **kw)
    G = random_array(rng, y.shape, dtype)
    ty, tgx, tgw, tgb = torch_all(x, w, b, G, kw)
    by, bgx, bgw, bgb = torch_bounds(x, w, b, G, kw)
    n_fwd, n_gi, n_gw = _n_terms(w, G, groups)
    assert y.dtype == dtype and y.shape == ty.shape
    assert_matches(y, ty, bound(by, n_fwd, dtype))
    gx = convlab.conv_grad_input(G, w, x.shape, **kw)
    assert gx.dtype == dtype
    assert_matches(gx, tgx, bound(bgx, n_gi, dtype))
    gw = convlab.conv_grad_weight(G, x, w.shape, **kw)
    assert gw.dtype == dtype
    assert_matches(gw, tgw, bound(bgw, n_gw, dtype))
    gb = convlab.conv_grad_bias(G)
    assert gb.dtype == dtype
    if tgb is not None:
        assert_matches(gb, tgb, bound(bgb, n_gw, dtype))
    else:
        assert_matches(gb, torch.tensor(G).sum(dim=(0,) + tuple(range(2, d + 2))).numpy(),
                       bound(np.abs(G).sum(axis=(0,) + tuple(range(2, d + 2))), n_gw, dtype))


# (stride, padding, output_padding, dilation, groups); output_padding < stride or < dilation
TRANSPOSE_CASES = {
    "plain": (1, 0, 0, 1, 1),
    "stride2": (2, 1, 1, 1, 1),
    "stride3_op2": (3, 2, 2, 1, 2),
    "op_below_dilation": (2, 1, 2, 3, 1),
    "dilation_groups": (1, 1, 0, 2, 2),
    "depthwise": (2, 0, 1, 1, 4),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_torch(d, dtype, case, bias, rng):
    s, p, op, dl, groups = TRANSPOSE_CASES[case]
    F, Cg = 4, 2 if groups < 4 else 1
    x = random_array(rng, (2, F) + {1: (7,), 2: (4, 5), 3: (3, 4, 3)}[d], dtype)
    w = random_array(rng, (F, Cg) + K[d], dtype)
    b = random_array(rng, (Cg * groups,), dtype) if bias else None
    kw = dict(stride=s, padding=p, output_padding=op, dilation=dl, groups=groups)
    y = convlab.conv_transpose(x, w, b, **kw)
    ty = CONV_T[d](_t(x), _t(w), None if b is None else _t(b), **kw).numpy()
    a = lambda v: _t(np.abs(np.asarray(v, dtype=np.float64)))  # noqa: E731
    by = CONV_T[d](a(x), a(w), None if b is None else a(b), **kw).numpy()
    assert y.dtype == dtype and y.shape == ty.shape
    assert_matches(y, ty, bound(by, F // groups * int(np.prod(w.shape[2:])) + 1, dtype))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_nonfinite_patterns_match_torch(d, rng):
    """Zero padding is part of the input (0 * Inf = NaN, 0 * NaN = NaN), as in torch: the
    NaN / Inf pattern of the forward and of both gradients equals torch's."""
    x = np.abs(random_array(rng, (1, 2) + IN[d], np.float64)) + 0.5
    w = np.abs(random_array(rng, (3, 2) + K[d], np.float64)) + 0.5
    w[(0, 0) + (0,) * d] = np.inf
    w[(1, 1) + (-1,) * d] = np.nan
    kw = dict(padding=1, stride=2)
    y = convlab.conv(x, w, None, **kw)
    G = np.ones(y.shape)
    G[(0, 2) + (0,) * d] = np.nan
    ty, tgx, tgw, _ = torch_all(x, w, None, G, kw)
    for got, want in [(y, ty), (convlab.conv_grad_input(G, w, x.shape, **kw), tgx),
                      (convlab.conv_grad_weight(G, x, w.shape, **kw), tgw)]:
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(np.isposinf(got), np.isposinf(want))
        assert np.array_equal(np.isneginf(got), np.isneginf(want))
    assert np.isnan(y).any() and np.isposinf(y).any()


# ------------------------------------------------------------------ the oracle itself


def _random_case(rng):
    d = int(rng.integers(1, 4))
    groups = int(rng.integers(1, 4))
    Cg, Fg, N = (int(v) for v in rng.integers(1, 3, 3))
    ks = tuple(int(v) for v in rng.integers(1, 4, d))
    ins = tuple(int(v) for v in rng.integers(1, 9 if d < 3 else 6, d))
    stride = tuple(int(v) for v in rng.integers(1, 4, d))
    dilation = tuple(int(v) for v in rng.integers(1, 3, d))
    padding = [int(rng.integers(0, 3)), tuple(int(v) for v in rng.integers(0, 3, d)),
               tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (d, 2))),
               "valid", "same", "full"][int(rng.integers(0, 6))]
    return d, groups, Cg, Fg, N, ks, ins, stride, dilation, padding, bool(rng.integers(0, 2))


@pytest.mark.parametrize("seed", range(4))
def test_numpy_oracle_matches_torch(seed):
    """tests/_layer_reference.py (used by test_layers.py) agrees with torch in float64 on
    random problems: forward, the three gradients (autograd) and conv_transpose."""
    rng = np.random.default_rng(seed)
    checked = 0
    while checked < 40:
        d, groups, Cg, Fg, N, ks, ins, stride, dilation, padding, flip = _random_case(rng)
        pairs = _pairs(ins, ks, padding, stride, dilation)
        if any((n + b + a - dl * (k - 1) - 1) // s + 1 < 1
               for n, k, (b, a), s, dl in zip(ins, ks, pairs, stride, dilation)):
            continue
        x = rng.standard_normal((N, Cg * groups) + ins)
        w = rng.standard_normal((Fg * groups, Cg) + ks)
        b = rng.standard_normal(Fg * groups)
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
        y = conv_ref(x, w, b, **kw)
        G = rng.standard_normal(y.shape)
        ty, tgx, tgw, tgb = torch_all(x, w, b, G, kw)
        np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv_grad_input_ref(G, w, x.shape, **kw), tgx, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv_grad_weight_ref(G, x, w.shape, **kw), tgw, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv_grad_bias_ref(G), tgb, rtol=1e-12, atol=1e-12)
        p = tuple(int(v) for v in rng.integers(0, 3, d))
        op = tuple(int(rng.integers(0, max(s, dl))) for s, dl in zip(stride, dilation))
        xt = rng.standard_normal((N, Fg * groups) + ins)
        tkw = dict(stride=stride, padding=p, output_padding=op, dilation=dilation, groups=groups)
        outs = [(n - 1) * s - 2 * pi + dl * (k - 1) + o + 1
                for n, k, s, pi, o, dl in zip(ins, ks, stride, p, op, dilation)]
        if min(outs) >= 1:
            bt = rng.standard_normal(Cg * groups)
            yt = conv_transpose_ref(xt, w, bt, **tkw)
            tt = CONV_T[d](_t(xt), _t(w), _t(bt), **tkw).numpy()
            np.testing.assert_allclose(yt, tt, rtol=1e-12, atol=1e-12)
        checked += 1
