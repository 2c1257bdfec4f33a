"""Layer-level shared convolution (SPEC §3, §3.1, §4): conv, conv_grad_input, conv_grad_weight,
conv_grad_bias and conv_transpose against the plain-numpy oracles of tests/_layer_reference.py.

The oracles compute in float64 from the same input values, so their rounding is negligible
next to a float32 tolerance and covered by the factor for float64. Tolerances are the classical
bound of a sum of n products in any order, ``c * n * eps * sum |terms|`` elementwise, with
``eps = np.finfo(result dtype).eps`` and ``sum |terms|`` the oracle applied to absolute values.
Nothing here compares convlab with numbers produced by convlab, except for the identities the
SPEC states (adjoint, flip, conv_transpose == conv_grad_input, layouts, workers).
"""

import os
import re
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

import convlab
from _layer_reference import (
    IN,
    K,
    PADDINGS,
    STRIDES,
    conv_grad_bias_ref,
    conv_grad_input_ref,
    conv_grad_weight_ref,
    conv_output_shape,
    conv_ref,
    conv_tolerance,
    conv_transpose_output_shape,
    conv_transpose_ref,
    grad_bias_tolerance,
    grad_input_tolerance,
    grad_weight_tolerance,
    layer_dtype,
    output_size,
    padding_pairs,
    transpose_tolerance,
)
from _layouts import LAYOUTS
from _reference import assert_matches, bad_dtype_array, central_difference_vjp, random_array

FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731
H = 2.0 ** -3  # finite-difference step (exact in binary; the maps are linear, so no truncation)

DILATIONS = {"d1": {1: 1, 2: 1, 3: 1}, "d2": {1: 2, 2: 2, 3: 2}, "mixed": {1: (3,), 2: (1, 2), 3: (2, 1, 1)}}

# groups and the channels per group: 1 (dense), 2, and depthwise (groups = C, two filters each).
GROUPINGS = {"dense": (1, 4, 3), "groups2": (2, 2, 3), "depthwise": (4, 1, 2)}  # (groups, C // g, F // g)


def make(rng, d, dtype=np.float64, *, N=2, groups=1, Cg=2, Fg=3, ins=None, ks=None, bias=True):
    ins = IN[d] if ins is None else tuple(ins)
    ks = K[d] if ks is None else tuple(ks)
    x = random_array(rng, (N, Cg * groups) + ins, dtype)
    w = random_array(rng, (Fg * groups, Cg) + ks, dtype)
    b = random_array(rng, (Fg * groups,), dtype) if bias else None
    return x, w, b


def grad_for(rng, x_shape, w_shape, dtype, **kw):
    return random_array(rng, conv_output_shape(x_shape, w_shape, **_geometry(kw)), dtype)


def _geometry(kw):
    return {k: v for k, v in kw.items() if k in ("stride", "padding", "dilation")}


def _oracle_kw(kw):
    return {k: v for k, v in kw.items() if k != "workers"}


def check_conv(x, w, bias=None, **kw):
    dtype = layer_dtype(*[a.dtype for a in (x, w, bias) if a is not None])
    y = convlab.conv(x, w, bias, **kw)
    kw = _oracle_kw(kw)
    assert y.dtype == dtype, (y.dtype, dtype)
    assert y.shape == conv_output_shape(x.shape, w.shape, **_geometry(kw))
    assert_matches(y, conv_ref(x, w, bias, **kw), conv_tolerance(x, w, bias, dtype=dtype, **kw))
    return y


def check_grad_input(G, w, input_shape, **kw):
    dtype = layer_dtype(G.dtype, w.dtype)
    gx = convlab.conv_grad_input(G, w, input_shape, **kw)
    kw = _oracle_kw(kw)
    assert gx.dtype == dtype, (gx.dtype, dtype)
    assert gx.shape == tuple(input_shape)
    assert_matches(gx, conv_grad_input_ref(G, w, input_shape, **kw),
                   grad_input_tolerance(G, w, input_shape, dtype=dtype, **kw))
    return gx


def check_grad_weight(G, x, weight_shape, **kw):
    dtype = layer_dtype(G.dtype, x.dtype)
    gw = convlab.conv_grad_weight(G, x, weight_shape, **kw)
    kw = _oracle_kw(kw)
    assert gw.dtype == dtype, (gw.dtype, dtype)
    assert gw.shape == tuple(weight_shape)
    assert_matches(gw, conv_grad_weight_ref(G, x, weight_shape, **kw),
                   grad_weight_tolerance(G, x, weight_shape, dtype=dtype, **kw))
    return gw


def check_grad_bias(G):
    dtype = layer_dtype(G.dtype)
    gb = convlab.conv_grad_bias(G)
    assert gb.dtype == dtype, (gb.dtype, dtype)
    assert gb.shape == (G.shape[1],)
    assert_matches(gb, conv_grad_bias_ref(G), grad_bias_tolerance(G, dtype=dtype))
    return gb


def check_transpose(x, w, bias=None, **kw):
    dtype = layer_dtype(*[a.dtype for a in (x, w, bias) if a is not None])
    y = convlab.conv_transpose(x, w, bias, **kw)
    kw = _oracle_kw(kw)
    assert y.dtype == dtype, (y.dtype, dtype)
    assert y.shape == conv_transpose_output_shape(x.shape, w.shape, **kw)
    assert_matches(y, conv_transpose_ref(x, w, bias, **kw), transpose_tolerance(x, w, bias, dtype=dtype, **kw))
    return y


# ------------------------------------------------------------------------------ forward


@pytest.mark.parametrize("flip", [False, True], ids=["corr", "flip"])
@pytest.mark.parametrize("stride", list(STRIDES))
@pytest.mark.parametrize("padding", list(PADDINGS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_forward_padding_stride(d, dtype, padding, stride, flip, rng):
    x, w, b = make(rng, d, dtype)
    check_conv(x, w, b, stride=STRIDES[stride][d], padding=PADDINGS[padding][d], flip=flip)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("stride", ["s1", "s2"])
@pytest.mark.parametrize("dilation", list(DILATIONS))
@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_forward_groups_dilation(d, dtype, grouping, dilation, stride, bias, rng):
    groups, Cg, Fg = GROUPINGS[grouping]
    ins = {1: (13,), 2: (8, 9), 3: (6, 7, 5)}[d]
    x, w, b = make(rng, d, dtype, groups=groups, Cg=Cg, Fg=Fg, ins=ins, bias=bias)
    for padding in (1, "same", "valid"):
        check_conv(x, w, b, stride=STRIDES[stride][d], dilation=DILATIONS[dilation][d], groups=groups,
                   padding=padding)


# (in, k, stride, dilation) with before / after of the TensorFlow rule worked out by hand.
SAME_CASES = [
    (8, 3, 2, 1, (0, 1)),   # total 1: the extra zero goes after
    (7, 4, 1, 1, (1, 2)),   # even kernel at stride 1 (PyTorch's padding='same')
    (10, 4, 3, 1, (1, 2)),
    (5, 2, 2, 2, (1, 1)),
    (6, 5, 4, 1, (1, 2)),
    (4, 3, 5, 1, (0, 0)),   # total clamped at 0: out = ceil(4 / 5) = 1
    (1, 3, 2, 2, (2, 2)),
    (9, 2, 1, 3, (1, 2)),
    (12, 1, 3, 1, (0, 0)),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", SAME_CASES, ids=str)
def test_same_padding_tensorflow_rule(case, dtype, rng):
    n, k, s, dl, pair = case
    assert padding_pairs((n,), (k,), "same", s, dl) == [pair]  # the oracle's rule, checked by hand
    x, w, b = make(rng, 1, dtype, ins=(n,), ks=(k,))
    y = check_conv(x, w, b, stride=s, dilation=dl, padding="same")
    assert y.shape[2] == -(-n // s)
    # ... and 'same' is exactly the explicit pair.
    y_pair = convlab.conv(x, w, b, stride=s, dilation=dl, padding=(pair,))
    assert np.array_equal(y, y_pair)
    # 2-D: the rule per axis, with a different case along each axis.
    n2, k2, s2, dl2, pair2 = SAME_CASES[(SAME_CASES.index(case) + 3) % len(SAME_CASES)]
    x, w, b = make(rng, 2, dtype, ins=(n, n2), ks=(k, k2))
    y = check_conv(x, w, b, stride=(s, s2), dilation=(dl, dl2), padding="same")
    assert y.shape[2:] == (-(-n // s), -(-n2 // s2))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_padding_forms_agree(d, rng):
    """'valid' == 0, per-axis ints == symmetric pairs, 'full' == (k - 1) * dilation pairs."""
    x, w, b = make(rng, d)
    dil = DILATIONS["mixed"][d]
    ref = convlab.conv(x, w, b, padding=0, dilation=dil)
    assert np.array_equal(convlab.conv(x, w, b, padding="valid", dilation=dil), ref)
    assert np.array_equal(convlab.conv(x, w, b, padding=((0, 0),) * d, dilation=dil), ref)
    per = PADDINGS["per_axis"][d]
    assert np.array_equal(convlab.conv(x, w, b, padding=per, dilation=dil),
                          convlab.conv(x, w, b, padding=tuple((p, p) for p in per), dilation=dil))
    dils = dil if isinstance(dil, tuple) else (dil,) * d
    full = tuple(((k - 1) * dl, (k - 1) * dl) for k, dl in zip(w.shape[2:], dils))
    assert np.array_equal(convlab.conv(x, w, b, padding="full", dilation=dil),
                          convlab.conv(x, w, b, padding=full, dilation=dil))


@pytest.mark.parametrize("padding", ["int1", "pairs", "same"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_flip_is_reversed_kernel(d, padding, rng):
    """flip=True equals flip=False with w reversed along its spatial axes, padding unchanged."""
    x, w, b = make(rng, d, groups=2)
    kw = dict(stride=STRIDES["mixed"][d], padding=PADDINGS[padding][d], groups=2)
    wr = np.flip(w, axis=tuple(range(2, d + 2)))
    y1 = convlab.conv(x, w, b, flip=True, **kw)
    y2 = convlab.conv(x, wr, b, flip=False, **kw)
    assert_matches(y1, y2, 2 * conv_tolerance(x, w, b, dtype=np.float64, flip=True, **kw))
    G = random_array(rng, y1.shape, np.float64)
    g1 = convlab.conv_grad_input(G, w, x.shape, flip=True, **kw)
    g2 = convlab.conv_grad_input(G, wr, x.shape, flip=False, **kw)
    assert_matches(g1, g2, 2 * grad_input_tolerance(G, w, x.shape, dtype=np.float64, flip=True, **kw))
    gw1 = convlab.conv_grad_weight(G, x, w.shape, flip=True, **kw)
    gw2 = np.flip(convlab.conv_grad_weight(G, x, w.shape, flip=False, **kw), axis=tuple(range(2, d + 2)))
    assert_matches(gw1, gw2, 2 * grad_weight_tolerance(G, x, w.shape, dtype=np.float64, flip=True, **kw))


def test_one_by_one_kernel_is_channel_mixing(rng):
    """A 1x1 conv is a matrix product over channels: y[n, f] = sum_c w[f, c] x[n, c] + b[f]."""
    x = rng.standard_normal((3, 5, 6, 4))
    w = rng.standard_normal((7, 5, 1, 1))
    b = rng.standard_normal(7)
    y = convlab.conv(x, w, b)
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x) + b[:, None, None]
    assert_matches(y, expected, conv_tolerance(x, w, b, dtype=np.float64))


# ------------------------------------------------------------------------------ gradients

GRAD_CASES = [
    dict(),
    dict(padding="same"),
    dict(stride="s2", padding="int1"),
    dict(stride="mixed", padding="pairs", dilation="d2"),
    dict(dilation="mixed", padding="full", flip=True),
    dict(grouping="groups2", stride="s2", padding="same"),
    dict(grouping="depthwise", padding="per_axis", flip=True),
    dict(grouping="groups2", dilation="d2", stride="mixed", padding="valid"),
]


def resolve(case, d):
    """A GRAD_CASES entry -> (groups, Cg, Fg, keyword arguments) for dimension d."""
    groups, Cg, Fg = GROUPINGS[case.get("grouping", "dense")]
    kw = dict(groups=groups, flip=case.get("flip", False))
    if "stride" in case:
        kw["stride"] = STRIDES[case["stride"]][d]
    if "padding" in case:
        kw["padding"] = PADDINGS[case["padding"]][d]
    if "dilation" in case:
        kw["dilation"] = DILATIONS[case["dilation"]][d]
    return groups, Cg, Fg, kw


GRAD_IN = {1: (12,), 2: (8, 7), 3: (6, 5, 7)}


@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_gradients_match_oracle(d, dtype, case, rng):
    groups, Cg, Fg, kw = resolve(case, d)
    x, w, _ = make(rng, d, dtype, groups=groups, Cg=Cg, Fg=Fg, ins=GRAD_IN[d], bias=False)
    G = grad_for(rng, x.shape, w.shape, dtype, **kw)
    check_grad_input(G, w, x.shape, **kw)
    check_grad_weight(G, x, w.shape, **kw)
    check_grad_bias(G)


def _fd_tolerance(scale_grad, n, fscale, dtype):
    """convlab's rounding (n products in `dtype`) plus the float64 central difference's
    (~ eps64 * sum |f| |G| / h)."""
    eps64 = np.finfo(np.float64).eps
    return 4 * np.finfo(dtype).eps * n * scale_grad + 8 * eps64 * fscale / H


FD_CASES = [
    (1, (7,), (3,), dict(stride=2, padding=1)),
    (1, (6,), (2,), dict(padding="same", dilation=2, groups=2, flip=True)),
    (2, (5, 4), (2, 3), dict(stride=(2, 1), padding=((1, 0), (0, 2)))),
    (2, (4, 5), (3, 2), dict(padding="full", groups=2)),
    (3, (3, 4, 3), (2, 2, 2), dict(stride=(1, 2, 1), padding="same", dilation=(1, 1, 2))),
]


@pytest.mark.parametrize("case", FD_CASES, ids=str)
def test_finite_differences(case, rng):
    """Central differences of the oracle's forward (float64, small shapes) against convlab's
    input and weight gradients; the forward is linear in each, so only rounding remains."""
    d, ins, ks, kw = case
    groups = kw.get("groups", 1)
    x, w, _ = make(rng, d, N=2, groups=groups, Cg=1, Fg=2, ins=ins, ks=ks, bias=False)
    G = grad_for(rng, x.shape, w.shape, np.float64, **kw)
    fd_x = central_difference_vjp(lambda a: conv_ref(a, w, **kw), x, G, H)
    fd_w = central_difference_vjp(lambda v: conv_ref(x, v, **kw), w, G, H)
    gx = convlab.conv_grad_input(G, w, x.shape, **kw)
    gw = convlab.conv_grad_weight(G, x, w.shape, **kw)
    absG = np.abs(G)
    fscale = float(np.sum(conv_ref(np.abs(x) + H, np.abs(w) + H, **kw) * absG))
    n = int(np.prod(w.shape[1:])) + G.size
    assert_matches(gx, fd_x, _fd_tolerance(conv_grad_input_ref(absG, np.abs(w), x.shape, **kw), n, fscale, np.float64))
    assert_matches(gw, fd_w, _fd_tolerance(conv_grad_weight_ref(absG, np.abs(x), w.shape, **kw), n, fscale,
                                           np.float64))
    assert np.abs(fd_x).max() > 0 and np.abs(fd_w).max() > 0  # not a vacuous comparison


@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_adjoint_identity(d, dtype, case, rng):
    """<conv(x, w), G> == <x, conv_grad_input(G, w, x.shape)> == <w, conv_grad_weight(G, x, w.shape)>."""
    groups, Cg, Fg, kw = resolve(case, d)
    x, w, _ = make(rng, d, dtype, groups=groups, Cg=Cg, Fg=Fg, ins=GRAD_IN[d], bias=False)
    G = grad_for(rng, x.shape, w.shape, dtype, **kw)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    lhs = float(np.sum(f64(convlab.conv(x, w, None, **kw)) * f64(G)))
    r1 = float(np.sum(f64(x) * f64(convlab.conv_grad_input(G, w, x.shape, **kw))))
    r2 = float(np.sum(f64(w) * f64(convlab.conv_grad_weight(G, x, w.shape, **kw))))
    scale = float(np.sum(conv_ref(np.abs(x), np.abs(w), **kw) * np.abs(f64(G))))
    n = int(np.prod(w.shape[1:])) + G.size + x.size + w.size
    tol = 4 * np.finfo(dtype).eps * n * scale
    assert abs(lhs - r1) <= tol, (lhs, r1, tol)
    assert abs(lhs - r2) <= tol, (lhs, r2, tol)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_grad_bias_is_sum(d, dtype, rng):
    G = random_array(rng, (3, 5) + IN[d], dtype)
    gb = convlab.conv_grad_bias(G)
    assert gb.dtype == dtype and gb.shape == (5,)
    expected = G.astype(np.float64).sum(axis=(0,) + tuple(range(2, d + 2)))
    assert_matches(gb, expected, grad_bias_tolerance(G, dtype=dtype))


@pytest.mark.parametrize("d", [1, 2])
def test_skipped_rows(d, rng):
    """stride 3 with a 2-tap kernel and 9 samples reads rows 0 1 | 3 4 | 6 7: rows 2, 5, 8 are
    no term of any output. Their input gradient is exactly 0 (even with a NaN weight: an empty
    sum), and an Inf there reaches neither the output nor the weight gradient."""
    ins, ks, stride = (9,) * d, (2,) * d, 3
    skipped = np.array([False, False, True] * 3)
    x, w, b = make(rng, d, ins=ins, ks=ks)
    G = grad_for(rng, x.shape, w.shape, np.float64, stride=stride)
    gx = check_grad_input(G, w, x.shape, stride=stride)
    for ax in range(d):
        idx = (slice(None), slice(None)) + (slice(None),) * ax + (skipped,)
        assert np.all(gx[idx] == 0)
    assert np.all(gx[(slice(None), slice(None)) + (~skipped,) * d] != 0)
    w_nan = w.copy()
    w_nan[(0, 0) + (0,) * d] = np.nan
    gx_nan = convlab.conv_grad_input(G, w_nan, x.shape, stride=stride)
    for ax in range(d):
        idx = (slice(None), slice(None)) + (slice(None),) * ax + (skipped,)
        assert np.all(gx_nan[idx] == 0)
    x_inf = x.copy()
    x_inf[(slice(None), slice(None)) + (skipped,) * d] = np.inf
    y = check_conv(x_inf, w, b, stride=stride)
    assert np.isfinite(y).all()
    gw = check_grad_weight(G, x_inf, w.shape, stride=stride)
    assert np.isfinite(gw).all()


# ------------------------------------------------------------------------------ conv_transpose

# (stride, padding, output_padding, dilation) per d; output_padding < stride or < dilation.
TRANSPOSE_CASES = {
    "plain": {1: (1, 0, 0, 1), 2: (1, 0, 0, 1), 3: (1, 0, 0, 1)},
    "stride2": {1: (2, 1, 0, 1), 2: (2, (1, 0), 0, 1), 3: (2, 1, 0, 1)},
    "output_padding": {1: (2, 1, 1, 1), 2: ((2, 3), (0, 1), (1, 2), 1), 3: (2, (1, 0, 1), (1, 0, 1), 1)},
    "op_below_dilation": {1: (2, 0, 2, 3), 2: (1, 1, (1, 0), (2, 1)), 3: ((1, 2, 1), 0, (1, 1, 0), (2, 1, 1))},
    "dilation": {1: (3, 2, 0, 2), 2: ((1, 2), 1, 0, (2, 1)), 3: (1, 0, 0, 2)},
}


def transpose_kw(case, d):
    s, p, op, dl = TRANSPOSE_CASES[case][d]
    return dict(stride=s, padding=p, output_padding=op, dilation=dl)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_oracle(d, dtype, case, grouping, bias, rng):
    groups, Cg, Fg = GROUPINGS[grouping]
    kw = transpose_kw(case, d)
    ins = {1: (6,), 2: (4, 5), 3: (3, 4, 3)}[d]
    x = random_array(rng, (2, Fg * groups) + ins, dtype)
    w = random_array(rng, (Fg * groups, Cg) + K[d], dtype)
    b = random_array(rng, (Cg * groups,), dtype) if bias else None
    check_transpose(x, w, b, groups=groups, **kw)


@pytest.mark.parametrize("grouping", list(GROUPINGS))
@pytest.mark.parametrize("case", ["plain", "stride2", "output_padding", "dilation"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_is_grad_input(d, case, grouping, rng):
    """conv_transpose(G, w, stride, padding, output_padding) == conv_grad_input(G, w, input_shape)
    for the input shape whose conv output is G's shape (output_padding < stride), + bias."""
    groups, Cg, Fg = GROUPINGS[grouping]
    kw = transpose_kw(case, d)
    G = random_array(rng, (2, Fg * groups) + {1: (5,), 2: (4, 3), 3: (3, 2, 3)}[d], np.float64)
    w = random_array(rng, (Fg * groups, Cg) + K[d], np.float64)
    input_shape = conv_transpose_output_shape(G.shape, w.shape, groups=groups, **kw)
    geometry = dict(stride=kw["stride"], padding=kw["padding"], dilation=kw["dilation"], groups=groups)
    assert conv_output_shape(input_shape, w.shape, **_geometry(geometry)) == G.shape
    yt = convlab.conv_transpose(G, w, groups=groups, **kw)
    gx = convlab.conv_grad_input(G, w, input_shape, **geometry)
    tol = 2 * transpose_tolerance(G, w, dtype=np.float64, groups=groups, **kw)
    assert_matches(yt, gx, tol)
    b = random_array(rng, (Cg * groups,), np.float64)
    ytb = convlab.conv_transpose(G, w, b, groups=groups, **kw)
    assert_matches(ytb, gx + b.reshape((-1,) + (1,) * d), tol + 4 * np.finfo(np.float64).eps * np.abs(b).max())


# ------------------------------------------------------------------------------ dtypes

PROMOTIONS = [
    # x, w, bias, result
    (np.int32, np.int32, None, np.float64),
    (np.int64, np.int8, np.int16, np.float64),
    (np.bool_, np.bool_, None, np.float64),
    (np.uint8, np.float32, None, np.float64),
    (np.float16, np.float16, None, np.float32),
    (np.float16, np.float16, np.float16, np.float32),
    (np.float16, np.float32, None, np.float32),
    (np.float32, np.float64, None, np.float64),
    (np.float64, np.float32, np.float32, np.float64),
    (np.float32, np.float32, np.float64, np.float64),
    (np.float32, np.float32, np.int32, np.float64),
    (np.float32, np.float32, np.float16, np.float32),
]


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("case", PROMOTIONS, ids=lambda c: "-".join(np.dtype(t).name if t else "none" for t in c))
def test_dtype_promotion(case, d, rng):
    xt, wt, bt, result = case
    x, w, b = make(rng, d, np.float64)
    x = random_array(rng, x.shape, xt)
    w = random_array(rng, w.shape, wt)
    b = None if bt is None else random_array(rng, b.shape, bt)
    y = check_conv(x, w, b, padding=1)
    assert y.dtype == result
    # gradients: result_type(grad_out, the other operand) by the same rule
    G = random_array(rng, y.shape, xt)
    assert check_grad_input(G, w, x.shape, padding=1).dtype == layer_dtype(xt, wt)
    assert check_grad_weight(G, x, w.shape, padding=1).dtype == layer_dtype(xt)
    assert check_grad_bias(G).dtype == layer_dtype(xt)
    Gt = random_array(rng, (x.shape[0], w.shape[0]) + x.shape[2:], xt)
    bt_arr = None if bt is None else random_array(rng, (w.shape[1],), bt)
    assert check_transpose(Gt, w, bt_arr, padding=1).dtype == result


BAD_DTYPES = [np.dtype(np.complex64), np.dtype(np.complex128), np.dtype(object), np.dtype("<U1"),
              np.dtype("datetime64[s]")]
if np.dtype(np.longdouble) != np.dtype(np.float64):  # extended precision (x86-64 Linux: float128)
    BAD_DTYPES += [np.dtype(np.longdouble)]


def _base_arrays():
    """Valid d = 2 arguments for all five functions (groups = 1, padding = 1)."""
    x = np.ones((2, 3, 5, 4))
    w = np.ones((4, 3, 3, 2))
    return dict(x=x, w=w, bias=np.ones(4), grad_out=np.ones((2, 4, 5, 5)), xt=np.ones((2, 4, 5, 4)),
                bias_t=np.ones(3))


def call(name, a, **kw):
    """Call one of the five functions from a dict of arguments (see _base_arrays); the shape
    arguments of the gradients are those of a['x'] / a['w']; conv_grad_bias takes no keywords."""
    if name == "conv":
        return convlab.conv(a["x"], a["w"], a["bias"], **kw)
    if name == "conv_grad_input":
        return convlab.conv_grad_input(a["grad_out"], a["w"], np.shape(a["x"]), **kw)
    if name == "conv_grad_weight":
        return convlab.conv_grad_weight(a["grad_out"], a["x"], np.shape(a["w"]), **kw)
    if name == "conv_grad_bias":
        return convlab.conv_grad_bias(a["grad_out"])
    if name == "conv_transpose":
        return convlab.conv_transpose(a["xt"], a["w"], a["bias_t"], **kw)
    raise AssertionError(name)


# which arrays each function reads, with the argument name its messages use
ARRAY_ARGS = {
    "conv": {"x": "x", "w": "w", "bias": "bias"},
    "conv_grad_input": {"grad_out": "grad_out", "w": "w"},
    "conv_grad_weight": {"grad_out": "grad_out", "x": "x"},
    "conv_grad_bias": {"grad_out": "grad_out"},
    "conv_transpose": {"xt": "x", "w": "w", "bias_t": "bias"},
}
FUNCTIONS = list(ARRAY_ARGS)
NAME_ARG = [(n, k) for n in FUNCTIONS for k in ARRAY_ARGS[n]]


def all_of(*fragments, names=(), numbers=()):
    """A regex for ``pytest.raises(match=...)`` that requires, in any order: each text fragment
    literally, each argument name as a whole word and each number as a whole number."""
    parts = [f"(?=.*{re.escape(f)})" for f in fragments]
    parts += [rf"(?=.*\b{re.escape(n)}\b)" for n in names]
    parts += [rf"(?=.*(?<![\w.]){re.escape(str(v))}(?![\w.]))" for v in numbers]
    return "(?s)^" + "".join(parts)


@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
@pytest.mark.parametrize("name,key", NAME_ARG)
def test_unsupported_dtypes(name, key, dtype):
    a = _base_arrays()
    a[key] = bad_dtype_array(dtype, a[key].shape)
    with pytest.raises(TypeError, match=all_of(str(dtype), names=[ARRAY_ARGS[name][key]])):
        call(name, a, padding=1)


# ------------------------------------------------------------------------------ layouts


def _snapshot(*arrays):
    return [(a.shape, a.dtype, a.tobytes(order="A"), a.strides) for a in arrays]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_layouts_give_same_result(name, dtype, layout, rng):
    """Any memory layout gives the same result as its C-contiguous copy, bit for bit, and the
    inputs are left untouched."""
    base = {k: random_array(rng, v.shape, dtype) for k, v in _base_arrays().items()}
    kw = dict(padding=1, stride=(1, 2) if name != "conv_transpose" else 1)
    if name in ("conv_grad_input", "conv_grad_weight"):
        base["grad_out"] = random_array(rng, conv_output_shape(base["x"].shape, base["w"].shape, **kw), dtype)
    for key in ARRAY_ARGS[name]:
        args = dict(base)
        args[key] = LAYOUTS[layout](base[key])
        contiguous = {k: np.ascontiguousarray(v) for k, v in args.items()}
        before = _snapshot(*args.values())
        got = call(name, args, **kw)
        want = call(name, contiguous, **kw)
        assert _snapshot(*args.values()) == before, f"{key} was modified"
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.dtype.isnative
        assert np.array_equal(got, want), f"{key} as {layout}: max diff {np.abs(got - want).max()}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_array_likes(name):
    """Nested lists are accepted (as float64) and give the same result as the arrays."""
    a = {k: np.arange(v.size, dtype=np.float64).reshape(v.shape) % 5 - 2 for k, v in _base_arrays().items()}
    lists = {k: v.tolist() for k, v in a.items()}
    got = call(name, lists, padding=1)
    want = call(name, a, padding=1)
    assert got.dtype == np.float64 and np.array_equal(got, want)


# ------------------------------------------------------------------------------ zero size


@pytest.mark.parametrize("d", [1, 2, 3])
def test_zero_batch(d, rng):
    """N = 0: (0, F, *out) forward, zero-size input gradient, zero weight / bias gradients."""
    x, w, b = make(rng, d, N=0, groups=2)
    kw = dict(padding="same", stride=2, groups=2)
    y = convlab.conv(x, w, b, **kw)
    assert y.shape == conv_output_shape(x.shape, w.shape, padding="same", stride=2) and y.shape[0] == 0
    assert y.dtype == np.float64
    G = np.zeros(y.shape)
    gx = convlab.conv_grad_input(G, w, x.shape, **kw)
    assert gx.shape == x.shape and gx.dtype == np.float64
    gw = convlab.conv_grad_weight(G, x, w.shape, **kw)
    assert gw.shape == w.shape and gw.dtype == np.float64 and np.all(gw == 0)
    gb = convlab.conv_grad_bias(G)
    assert gb.shape == (w.shape[0],) and gb.dtype == np.float64 and np.all(gb == 0)
    gw32 = convlab.conv_grad_weight(G.astype(np.float32), x.astype(np.float32), w.shape, **kw)
    assert gw32.dtype == np.float32 and gw32.shape == w.shape and np.all(gw32 == 0)
    yt = convlab.conv_transpose(np.zeros((0, w.shape[0]) + IN[d]), w, None, stride=2, groups=2)
    assert yt.shape == conv_transpose_output_shape((0, w.shape[0]) + IN[d], w.shape, stride=2, groups=2)


@pytest.mark.parametrize("name", ["conv", "conv_grad_input", "conv_grad_weight", "conv_transpose"])
@pytest.mark.parametrize("which", ["C", "F"])
def test_zero_channels_or_filters(name, which):
    a = _base_arrays()
    if which == "C":
        a["x"], a["w"], a["bias_t"] = np.ones((2, 0, 5, 4)), np.ones((4, 0, 3, 2)), np.ones(0)
    else:
        a["w"], a["bias"], a["grad_out"], a["xt"] = np.ones((0, 3, 3, 2)), np.ones(0), np.ones((2, 0, 5, 5)), \
            np.ones((2, 0, 5, 4))
    with pytest.raises(ValueError, match=all_of(numbers=[0])):
        call(name, a, padding=1)


# ------------------------------------------------------------------------------ errors

X = np.ones((2, 4, 6, 5))
W = np.ones((6, 2, 3, 2))  # groups = 2
G_OK = np.ones((2, 6, 4, 4))  # conv(X, W, groups=2) at padding 0


def _conv(x=X, w=W, bias=None, **kw):
    kw.setdefault("groups", 2)
    return lambda: convlab.conv(x, w, bias, **kw)


def _gi(G=G_OK, w=W, shape=X.shape, **kw):
    kw.setdefault("groups", 2)
    return lambda: convlab.conv_grad_input(G, w, shape, **kw)


def _gw(G=G_OK, x=X, shape=W.shape, **kw):
    kw.setdefault("groups", 2)
    return lambda: convlab.conv_grad_weight(G, x, shape, **kw)


def _ct(x=np.ones((2, 6, 4, 3)), w=W, bias=None, **kw):
    kw.setdefault("groups", 2)
    return lambda: convlab.conv_transpose(x, w, bias, **kw)


ERRORS = {
    # channels and groups
    "channel_mismatch": (_conv(w=np.ones((6, 3, 3, 2)), groups=1), all_of(names=["x", "w"], numbers=[4, 3])),
    "channel_mismatch_groups": (_conv(w=np.ones((6, 3, 3, 2))), all_of(names=["x", "w"], numbers=[4, 3])),
    "groups_not_dividing_C": (_conv(w=np.ones((6, 1, 3, 2)), groups=3), all_of(names=["groups"], numbers=[3, 4])),
    "groups_not_dividing_F": (_conv(w=np.ones((5, 2, 3, 2))), all_of(names=["groups"], numbers=[2, 5])),
    "groups_zero": (_conv(groups=0), all_of(names=["groups"], numbers=[0])),
    "groups_negative": (_conv(groups=-2), all_of(names=["groups"], numbers=[-2])),
    "gi_groups_not_dividing_F": (_gi(w=np.ones((5, 2, 3, 2)), G=np.ones((2, 5, 4, 4))),
                                 all_of(names=["groups"], numbers=[2, 5])),
    "gw_groups_not_dividing_F": (_gw(shape=(5, 2, 3, 2), G=np.ones((2, 5, 4, 4))),
                                 all_of(names=["groups"], numbers=[2, 5])),
    "gi_input_shape_channels": (_gi(shape=(2, 8, 6, 5)), all_of(names=["input_shape"], numbers=[8])),
    "gw_weight_shape_channels": (_gw(shape=(6, 3, 3, 2)), all_of(names=["weight_shape"], numbers=[4])),
    "ct_channel_mismatch": (_ct(x=np.ones((2, 5, 4, 3))), all_of(names=["x", "w"], numbers=[5, 6])),
    # dimensions
    "w_ndim_below_x": (_conv(w=np.ones((6, 2, 3))), all_of(names=["x", "w"])),
    "x_ndim_below_w": (_conv(x=np.ones((2, 4, 6))), all_of(names=["x", "w"])),
    "d0": (_conv(x=np.ones((2, 4)), w=np.ones((6, 2))), all_of(names=["w"], numbers=[2])),
    "d4": (_conv(x=np.ones((1, 4, 3, 3, 3, 3)), w=np.ones((6, 2, 1, 1, 1, 1))), all_of(names=["w"], numbers=[6])),
    "ct_d4": (_ct(x=np.ones((1, 6, 3, 3, 3, 3)), w=np.ones((6, 2, 1, 1, 1, 1))), all_of(names=["w"], numbers=[6])),
    "gi_input_shape_ndim": (_gi(shape=(2, 4, 6)), all_of(names=["input_shape"])),
    "gw_weight_shape_ndim": (_gw(shape=(6, 2, 3)), all_of(names=["weight_shape"])),
    # output size < 1: the input size, the kernel size and what made it too small
    "output_too_small": (_conv(x=np.ones((2, 4, 2, 5)), w=np.ones((6, 2, 3, 2))),
                         all_of("pad", numbers=[2, 3])),  # 'padding' or 'padded by'
    "output_too_small_dilation": (_conv(x=np.ones((2, 4, 7, 5)), w=np.ones((6, 2, 3, 2)), dilation=(4, 1)),
                                  all_of("dilation", numbers=[7, 3, 4])),
    "gi_output_too_small": (_gi(shape=(2, 4, 2, 5)), all_of(numbers=[2, 3])),
    "gw_output_too_small": (_gw(shape=(6, 2, 9, 2)), all_of(numbers=[6, 9])),
    "ct_output_too_small": (_ct(x=np.ones((2, 6, 1, 3)), w=np.ones((6, 2, 1, 2)), padding=1),
                            all_of("pad")),
    # padding
    "negative_padding": (_conv(padding=-1), all_of(names=["padding"], numbers=[-1])),
    "negative_padding_axis": (_conv(padding=(1, -2)), all_of(names=["padding"], numbers=[-2])),
    "negative_padding_pair": (_conv(padding=((0, 1), (-3, 0))), all_of(names=["padding"], numbers=[-3])),
    "gi_negative_padding": (_gi(padding=-1), all_of(names=["padding"], numbers=[-1])),
    "gw_negative_padding": (_gw(padding=-1), all_of(names=["padding"], numbers=[-1])),
    "bad_padding_string": (_conv(padding="causal"), all_of("causal", "valid", "same", "full", names=["padding"])),
    "bad_padding_case": (_conv(padding="SAME"), all_of("SAME", "valid", "same", "full", names=["padding"])),
    "gi_bad_padding_string": (_gi(padding="circular"), all_of("circular", "valid", "same", "full",
                                                             names=["padding"])),
    "flat_padding_wrong_length": (_conv(padding=(1, 2, 3)), all_of(names=["padding"], numbers=[3])),
    "flat_pair_d1": (lambda: convlab.conv(np.ones((1, 1, 5)), np.ones((1, 1, 2)), padding=(1, 2)),
                     all_of(names=["padding"], numbers=[2])),
    "pairs_wrong_count": (_conv(padding=((1, 1),)), all_of(names=["padding"])),
    "pair_wrong_length": (_conv(padding=((1, 1, 1), (0, 0))), all_of(names=["padding"])),
    # stride / dilation
    "stride_zero": (_conv(stride=0), all_of(names=["stride"], numbers=[0])),
    "stride_axis_zero": (_conv(stride=(1, 0)), all_of(names=["stride"], numbers=[0])),
    "stride_negative": (_conv(stride=-1), all_of(names=["stride"], numbers=[-1])),
    "stride_wrong_length": (_conv(stride=(1, 2, 1)), all_of(names=["stride"])),
    "dilation_zero": (_conv(dilation=0), all_of(names=["dilation"], numbers=[0])),
    "dilation_axis_negative": (_conv(dilation=(-1, 1)), all_of(names=["dilation"], numbers=[-1])),
    "gi_stride_zero": (_gi(stride=0), all_of(names=["stride"], numbers=[0])),
    "gw_dilation_zero": (_gw(dilation=0), all_of(names=["dilation"], numbers=[0])),
    "ct_stride_zero": (_ct(stride=0), all_of(names=["stride"], numbers=[0])),
    "ct_dilation_zero": (_ct(dilation=0), all_of(names=["dilation"], numbers=[0])),
    # grad_out shapes: both shapes named
    "gi_grad_out_shape": (_gi(G=np.ones((2, 6, 3, 4))), all_of("(2, 6, 3, 4)", "(2, 6, 4, 4)", names=["grad_out"])),
    "gi_grad_out_batch": (_gi(G=np.ones((3, 6, 4, 4))), all_of("(3, 6, 4, 4)", "(2, 6, 4, 4)", names=["grad_out"])),
    "gi_grad_out_ndim": (_gi(G=np.ones((2, 6, 4))), all_of(names=["grad_out"])),
    "gw_grad_out_shape": (_gw(G=np.ones((2, 6, 4, 5))), all_of("(2, 6, 4, 5)", "(2, 6, 4, 4)", names=["grad_out"])),
    "gw_grad_out_filters": (_gw(G=np.ones((2, 4, 4, 4))), all_of("(2, 4, 4, 4)", "(2, 6, 4, 4)", names=["grad_out"])),
    # conv_transpose padding and output_padding
    "ct_padding_string": (_ct(padding="same"), all_of("same", names=["padding"])),
    "ct_padding_valid": (_ct(padding="valid"), all_of("valid", names=["padding"])),
    "ct_padding_pairs": (_ct(padding=((1, 0), (0, 1))), all_of(names=["padding"])),
    "ct_negative_padding": (_ct(padding=-1), all_of(names=["padding"], numbers=[-1])),
    "ct_output_padding": (_ct(stride=2, dilation=3, output_padding=3),
                          all_of(names=["output_padding", "stride", "dilation"], numbers=[3])),
    "ct_output_padding_axis": (_ct(stride=2, output_padding=(1, 2)),
                               all_of(names=["output_padding", "stride"], numbers=[2])),
    "ct_output_padding_stride1": (_ct(output_padding=1), all_of(names=["output_padding"], numbers=[1])),
    "ct_output_padding_negative": (_ct(stride=2, output_padding=-1), all_of(names=["output_padding"], numbers=[-1])),
    # bias
    "bias_length": (_conv(bias=np.ones(5)), all_of(names=["bias"], numbers=[5, 6])),
    "bias_2d": (_conv(bias=np.ones((6, 1))), all_of(names=["bias"])),
    "ct_bias_length": (_ct(bias=np.ones(6)), all_of(names=["bias"], numbers=[4, 6])),
    # workers
    "workers_zero": (_conv(workers=0), all_of(names=["workers"], numbers=[0])),
    "gi_workers_zero": (_gi(workers=0), all_of(names=["workers"], numbers=[0])),
    "ct_workers_zero": (_ct(workers=0), all_of(names=["workers"], numbers=[0])),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_value_errors(case):
    func, pattern = ERRORS[case]
    with pytest.raises(ValueError, match=pattern):
        func()


TYPE_ERRORS = {
    "stride_float": (_conv(stride=1.5), all_of(names=["stride"])),
    "stride_bool": (_conv(stride=True), all_of(names=["stride"])),
    "dilation_float_axis": (_conv(dilation=(1, 2.0)), all_of(names=["dilation"])),
    "gi_stride_float": (_gi(stride=2.0), all_of(names=["stride"])),
    "ct_dilation_bool": (_ct(dilation=True), all_of(names=["dilation"])),
}


@pytest.mark.parametrize("case", list(TYPE_ERRORS))
def test_type_errors(case):
    func, pattern = TYPE_ERRORS[case]
    with pytest.raises(TypeError, match=pattern):
        func()


# Arguments whose error type the API note leaves open: either is fine, the message must name them.
EITHER_ERRORS = {
    "groups_float": (_conv(groups=2.0), all_of(names=["groups"])),
    "groups_bool": (_conv(groups=True, w=np.ones((6, 4, 3, 2))), all_of(names=["groups"])),
    "padding_float": (_conv(padding=1.5), all_of(names=["padding"])),
    "padding_none": (_conv(padding=None), all_of(names=["padding"])),
    "padding_pair_float": (_conv(padding=((0, 1.5), (0, 0))), all_of(names=["padding"])),
    "ct_output_padding_float": (_ct(stride=2, output_padding=0.5), all_of(names=["output_padding"])),
}


@pytest.mark.parametrize("case", list(EITHER_ERRORS))
def test_type_or_value_errors(case):
    func, pattern = EITHER_ERRORS[case]
    with pytest.raises((TypeError, ValueError), match=pattern):
        func()


def test_numpy_integers_accepted(rng):
    x, w, b = make(rng, 2, groups=2)
    kw = dict(stride=np.int64(2), padding=(np.int32(1), np.int64(0)), dilation=(np.uint8(1), 2), groups=np.int16(2))
    check_conv(x, w, b, **kw)


HUGE_X = np.broadcast_to(np.float64(1.0), (2**10, 2**10, 2**10, 2**10))  # 8 TiB if materialised
HUGE_W = np.broadcast_to(np.float64(1.0), (2**10, 2**10, 3, 3))


def test_errors_before_work_on_huge_input():
    """A bad argument raises before anything is sized or copied (0-stride views of 8 TiB)."""
    x, w = HUGE_X, HUGE_W
    with pytest.raises(ValueError, match=all_of(names=["padding"])):
        convlab.conv(x, w, padding="causal")
    with pytest.raises(ValueError, match=all_of(names=["stride"])):
        convlab.conv(x, w, stride=0)
    with pytest.raises(ValueError, match=all_of(names=["bias"])):
        convlab.conv(x, w, np.ones(3))


@pytest.mark.parametrize("name", ["conv", "conv_grad_input", "conv_transpose"])
def test_huge_broadcast_input_fails_fast(name):
    """A result that would need terabytes: MemoryError or ValueError without allocating (peak
    traced memory stays small), never a crash or a hang."""
    G = np.broadcast_to(np.float64(1.0), (2**10, 2**10, 1022, 1022))
    tracemalloc.start()
    try:
        with pytest.raises((MemoryError, ValueError)):
            if name == "conv":
                convlab.conv(HUGE_X, HUGE_W)
            elif name == "conv_grad_input":
                convlab.conv_grad_input(G, HUGE_W, HUGE_X.shape)
            else:
                convlab.conv_transpose(HUGE_X, HUGE_W)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated before failing"


# ------------------------------------------------------------------------------ non-finite


@pytest.mark.parametrize("d", [1, 2, 3])
def test_inf_weight_meets_padding_as_nan(d, rng):
    """Zero padding is part of the input: an Inf weight tap gives Inf where it meets a positive
    sample and NaN (0 * Inf) where it meets padding (PyTorch semantics)."""
    x, w, _ = make(rng, d, N=1, groups=1, Cg=1, Fg=1, bias=False)
    x = np.abs(x) + 0.5
    w = np.abs(w) + 0.5
    w[(0, 0) + (0,) * d] = np.inf
    y = convlab.conv(x, w, padding=1)
    ref = conv_ref(x, w, padding=1)
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.array_equal(np.isposinf(y), np.isposinf(ref))
    # the first output along each axis meets the padding with tap 0; the last does not
    assert np.isnan(y[(0, 0) + (0,) * d]) and np.isposinf(y[(0, 0) + (-1,) * d])
    assert np.isnan(y).sum() > 0 and np.isposinf(y).sum() > 0


@pytest.mark.parametrize("d", [1, 2])
def test_nan_weight_poisons_every_window(d, rng):
    """A NaN tap poisons every output, including those where it only meets the padding."""
    x, w, b = make(rng, d, N=1, groups=1, Cg=2, Fg=2)
    w[(1, 0) + (-1,) * d] = np.nan
    y = convlab.conv(x, w, b, padding="full")
    assert np.isnan(y[:, 1]).all()
    assert np.isfinite(y[:, 0]).all()
    assert_matches(y[:, 0], conv_ref(x, w, b, padding="full")[:, 0],
                   conv_tolerance(x, w, b, dtype=np.float64, padding="full")[:, 0])


def test_nan_in_grad_out():
    """grad_out NaN at a border output: the weight gradient of that filter is NaN at every tap
    (its window includes padding: 0 * NaN), the input gradient only inside that window."""
    x = np.arange(1.0, 7.0).reshape(1, 1, 6)
    w = np.ones((2, 1, 3))
    G = np.ones((1, 2, 6))
    G[0, 0, 0] = np.nan
    gw = convlab.conv_grad_weight(G, x, w.shape, padding=1)
    assert np.isnan(gw[0]).all() and np.isfinite(gw[1]).all()
    assert np.array_equal(np.isnan(gw), np.isnan(conv_grad_weight_ref(G, x, w.shape, padding=1)))
    gx = convlab.conv_grad_input(G, w, x.shape, padding=1)
    assert np.array_equal(np.isnan(gx), np.isnan(conv_grad_input_ref(G, w, x.shape, padding=1)))
    assert np.isnan(gx[0, 0, :2]).all() and np.isfinite(gx[0, 0, 2:]).all()
    gb = convlab.conv_grad_bias(G)
    assert np.isnan(gb[0]) and gb[1] == 6.0


def test_inf_input_propagates(rng):
    x, w, b = make(rng, 2, N=1, groups=1, Cg=1, Fg=1)
    x[0, 0, 3, 4] = np.inf
    y = convlab.conv(x, w, b, padding="same")
    ref = conv_ref(x, w, b, padding="same")
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.array_equal(np.isinf(y), np.isinf(ref))
    assert np.isinf(y).sum() + np.isnan(y).sum() == int(np.prod(w.shape[2:]))


# ------------------------------------------------------------------------------ hypothesis


@st.composite
def layer_problems(draw, dtypes=FLOATS):
    d = draw(st.integers(1, 3))
    N = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 3))
    Cg = draw(st.integers(1, 2))
    Fg = draw(st.integers(1, 2))
    max_in = (9, 7, 5)[d - 1]
    ins = tuple(draw(st.integers(1, max_in)) for _ in range(d))
    ks = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * d)))
    dilation = draw(st.one_of(st.integers(1, 2), st.tuples(*[st.integers(1, 2)] * d)))
    padding = draw(st.one_of(
        st.integers(0, 2),
        st.tuples(*[st.integers(0, 2)] * d),
        st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2))] * d),
        st.sampled_from(["valid", "same", "full"]),
    ))
    flip = draw(st.booleans())
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from(dtypes))
    s = stride if isinstance(stride, tuple) else (stride,) * d
    dl = dilation if isinstance(dilation, tuple) else (dilation,) * d
    pairs = padding_pairs(ins, ks, padding, s, dl)
    assume(all(output_size(n, k, b, a, si, di) >= 1 for n, k, (b, a), si, di in zip(ins, ks, pairs, s, dl)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = random_array(rng, (N, Cg * groups) + ins, dtype)
    w = random_array(rng, (Fg * groups, Cg) + ks, dtype)
    b = random_array(rng, (Fg * groups,), dtype) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip)
    G = random_array(rng, conv_output_shape(x.shape, w.shape, stride=s, padding=pairs, dilation=dl), dtype)
    return x, w, b, G, kw


@given(layer_problems())
def test_hypothesis_forward(problem):
    x, w, b, _, kw = problem
    note(f"x {x.shape} {x.dtype}, w {w.shape}, bias {b is not None}, {kw}")
    check_conv(x, w, b, **kw)


@given(layer_problems())
def test_hypothesis_gradients(problem):
    x, w, _, G, kw = problem
    note(f"x {x.shape} {x.dtype}, w {w.shape}, G {G.shape}, {kw}")
    check_grad_input(G, w, x.shape, **kw)
    check_grad_weight(G, x, w.shape, **kw)
    check_grad_bias(G)


@given(layer_problems(), st.data())
def test_hypothesis_transpose(problem, data):
    _, w, _, _, kw = problem
    d = w.ndim - 2
    ins = tuple(data.draw(st.integers(1, 4)) for _ in range(d))
    s = kw["stride"] if isinstance(kw["stride"], tuple) else (kw["stride"],) * d
    dl = kw["dilation"] if isinstance(kw["dilation"], tuple) else (kw["dilation"],) * d
    padding = tuple(data.draw(st.integers(0, 2)) for _ in range(d))
    op = tuple(data.draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, dl))
    groups = kw["groups"]
    shape = conv_transpose_output_shape((1, w.shape[0]) + ins, w.shape, stride=s, padding=padding,
                                        output_padding=op, dilation=dl, groups=groups)
    assume(min(shape[2:]) >= 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = random_array(rng, (1, w.shape[0]) + ins, w.dtype)
    b = random_array(rng, (shape[1],), w.dtype) if data.draw(st.booleans()) else None
    note(f"x {x.shape}, w {w.shape} {w.dtype}, stride {s}, padding {padding}, op {op}, dilation {dl}, groups {groups}")
    check_transpose(x, w, b, stride=s, padding=padding, output_padding=op, dilation=dl, groups=groups)


# ------------------------------------------------------------------------------ workers, threads


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_workers_agree(dtype, rng):
    """workers = 1, 2, None, -1 all give the correct result (equal to rounding, not timed)."""
    x, w, b = make(rng, 2, dtype, N=4, groups=2, Cg=3, Fg=4, ins=(24, 20), ks=(3, 3))
    kw = dict(padding="same", stride=(1, 2), groups=2)
    G = grad_for(rng, x.shape, w.shape, dtype, **kw)
    xt = random_array(rng, (4, w.shape[0], 9, 8), dtype)
    results = {}
    for workers in (1, 2, None, -1):
        results[workers] = (
            check_conv(x, w, b, workers=workers, **kw),
            check_grad_input(G, w, x.shape, workers=workers, **kw),
            check_grad_weight(G, x, w.shape, workers=workers, **kw),
            check_transpose(xt, w, b[: w.shape[1] * 2], stride=2, groups=2, workers=workers),
        )
    tols = (conv_tolerance(x, w, b, dtype=dtype, **kw), grad_input_tolerance(G, w, x.shape, dtype=dtype, **kw),
            grad_weight_tolerance(G, x, w.shape, dtype=dtype, **kw),
            transpose_tolerance(xt, w, b[: w.shape[1] * 2], dtype=dtype, stride=2, groups=2))
    for workers in (2, None, -1):
        for got, want, tol in zip(results[workers], results[1], tols):
            assert_matches(got, want, 2 * tol)


def _thread_jobs(rng):
    jobs = []
    for d in (1, 2, 3):
        for dtype in FLOATS:
            for k, grouping in enumerate(GROUPINGS):
                groups, Cg, Fg = GROUPINGS[grouping]
                ins = {1: (40,), 2: (12, 11), 3: (6, 7, 5)}[d]
                x, w, b = make(rng, d, dtype, N=3, groups=groups, Cg=Cg, Fg=Fg, ins=ins)
                kw = dict(stride=STRIDES["mixed"][d], padding=PADDINGS[("same", "pairs", "full")[k]][d],
                          dilation=DILATIONS[("d1", "mixed", "d2")[k]][d], groups=groups,
                          workers=(None, 1, 2)[k])
                G = grad_for(rng, x.shape, w.shape, dtype, **kw)
                ok = _oracle_kw(kw)
                jobs.append((lambda x=x, w=w, b=b, kw=kw: convlab.conv(x, w, b, **kw),
                             conv_ref(x, w, b, **ok), conv_tolerance(x, w, b, dtype=dtype, **ok)))
                jobs.append((lambda G=G, w=w, s=x.shape, kw=kw: convlab.conv_grad_input(G, w, s, **kw),
                             conv_grad_input_ref(G, w, x.shape, **ok),
                             grad_input_tolerance(G, w, x.shape, dtype=dtype, **ok)))
                jobs.append((lambda G=G, x=x, s=w.shape, kw=kw: convlab.conv_grad_weight(G, x, s, **kw),
                             conv_grad_weight_ref(G, x, w.shape, **ok),
                             grad_weight_tolerance(G, x, w.shape, dtype=dtype, **ok)))
                jobs.append((lambda G=G: convlab.conv_grad_bias(G), conv_grad_bias_ref(G),
                             grad_bias_tolerance(G, dtype=dtype)))
                tkw = dict(stride=2, padding=1, output_padding=1, groups=groups)
                jobs.append((lambda G=G, w=w, tkw=tkw: convlab.conv_transpose(G, w, None, **tkw),
                             conv_transpose_ref(G, w, **tkw), transpose_tolerance(G, w, dtype=dtype, **tkw)))
    return jobs


def test_thread_pool(rng):
    """Several Python threads calling the layer functions at once get correct results."""
    jobs = _thread_jobs(rng)
    order = list(range(len(jobs))) * 3
    np.random.default_rng(0).shuffle(order)
    workers = min(4, 2 * len(os.sched_getaffinity(0)))
    with ThreadPoolExecutor(max_workers=max(workers, 2)) as pool:
        results = list(pool.map(lambda i: (i, jobs[i][0]()), order))
    assert len(results) == len(order)
    for i, got in results:
        _, expected, tol = jobs[i]
        assert_matches(got, expected, tol)


# ------------------------------------------------------------------------------ workspace


@pytest.mark.parametrize("name", ["conv", "conv_grad_input", "conv_grad_weight"])
def test_converted_inputs_are_copied_a_batch_chunk_at_a_time(name, rng, monkeypatch):
    """Inputs that need converting (here float32 data with a float64 operand) are converted
    in batch chunks within the copy budget, and the result is the same as in one piece."""
    from convlab import _layers

    # float32 data with a float64 operand (or, for the weight gradient, in Fortran order)
    x = np.asfortranarray(random_array(rng, (12, 3, 10, 10), np.float32))
    w = random_array(rng, (4, 3, 3, 3), np.float64)
    G = np.asfortranarray(random_array(rng, (12, 4, 8, 8), np.float32))
    calls = {"conv": lambda: convlab.conv(x, w),
             "conv_grad_input": lambda: convlab.conv_grad_input(G, w, x.shape),
             "conv_grad_weight": lambda: convlab.conv_grad_weight(G, x, w.shape)}
    whole = calls[name]()
    per_image = 3 * 10 * 10 * 8 + 4 * 8 * 8 * 8      # float64 copy of one image of x and G
    if name == "conv_grad_weight":
        per_image //= 2                               # float32 copies
    monkeypatch.setattr(_layers, "_COPY_BYTES", 2 * per_image)
    dtype = np.dtype(np.float32 if name == "conv_grad_weight" else np.float64)
    assert len(_layers._batch_chunks(dtype, 12, x, G)) == 6
    tracemalloc.start()
    try:
        chunked = calls[name]()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tol = 1e-5 if dtype == np.float32 else 1e-13      # chunks change the summation order
    np.testing.assert_allclose(chunked, whole, rtol=tol, atol=tol * np.abs(whole).max())
    copy_of_everything = 12 * per_image
    assert peak - chunked.nbytes < copy_of_everything, (peak, chunked.nbytes)


def test_weight_gradient_does_not_depend_on_the_threads(rng):
    """The parts of the kernel gradient are fixed ranges of the work, added in order: the
    same bits with 1 and 2 workers and on every run."""
    x = random_array(rng, (16, 3, 12, 12), np.float32)
    G = random_array(rng, (16, 4, 10, 10), np.float32)
    first = convlab.conv_grad_weight(G, x, (4, 3, 3, 3), workers=1)
    for workers in (1, 2, 2, 2):
        assert np.array_equal(convlab.conv_grad_weight(G, x, (4, 3, 3, 3), workers=workers), first)


def test_blas_threads_restored_after_concurrent_calls(rng):
    """Calls from several Python threads pin BLAS to one thread while any of them runs; the
    setting the process had before is back once they are all done."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from concurrent.futures import ThreadPoolExecutor

    def blas_threads():
        return sorted((i["filepath"], i["num_threads"]) for i in threadpoolctl.threadpool_info()
                      if i["user_api"] == "blas")

    convlab.conv(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)))   # loads every library
    before = blas_threads()
    x = random_array(rng, (8, 4, 20, 20), np.float64)
    w = random_array(rng, (6, 4, 3, 3), np.float64)
    expected = conv_ref(x, w, padding=1)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: convlab.conv(x, w, padding=1), range(16)))
    for y in results:
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    assert blas_threads() == before
