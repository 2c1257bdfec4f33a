"""Unshared layers (SPEC §3.2, §3.3, §4): local_conv, tiled_conv and their gradients against
the plain-numpy oracles of tests/_unshared_reference.py, the identities the SPEC states
(tiles = 1 is conv, tiles = out is local_conv, identical local kernels are conv), finite
differences, the adjoint identity, hypothesis, layouts, zero sizes and every error.

Tolerances are the bound of a sum of n products in any order, ``c * n * eps * sum |terms|``
elementwise, ``sum |terms|`` from the oracle applied to absolute values.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import convlab
from convlab import _unshared
from _layer_reference import IN, K, PADDINGS, STRIDES, conv_ref
from _layouts import LAYOUTS
from _reference import assert_matches, bad_dtype_array, central_difference_vjp, random_array
from _unshared_reference import (
    local_conv_grad_bias_ref,
    local_conv_grad_input_ref,
    local_conv_grad_weight_ref,
    local_conv_ref,
    local_output_sizes,
    tiled_conv_grad_bias_ref,
    tiled_conv_grad_input_ref,
    tiled_conv_grad_weight_ref,
    tiled_conv_ref,
)

FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731
H = 2.0 ** -3



def out_sizes(x_shape, ks, **kw):
    return local_output_sizes(x_shape, ks, kw.get("stride", 1), kw.get("padding", 0))


def make_local(rng, d, dtype=np.float64, *, N=3, C=2, F=3, ins=None, ks=None, bias=True, **kw):
    ins = IN[d] if ins is None else tuple(ins)
    ks = K[d] if ks is None else tuple(ks)
    x = random_array(rng, (N, C) + ins, dtype)
    outs = out_sizes(x.shape, ks, **kw)
    w = random_array(rng, (F,) + outs + (C,) + ks, dtype)
    b = random_array(rng, (F,) + outs, dtype) if bias else None
    return x, w, b


def make_tiled(rng, d, tiles, dtype=np.float64, *, N=3, C=2, F=3, ins=None, ks=None, bias=True):
    ins = IN[d] if ins is None else tuple(ins)
    ks = K[d] if ks is None else tuple(ks)
    x = random_array(rng, (N, C) + ins, dtype)
    w = random_array(rng, (F,) + tuple(tiles) + (C,) + ks, dtype)
    b = random_array(rng, (F,) + tuple(tiles), dtype) if bias else None
    return x, w, b


def _abs64(a):
    return None if a is None else np.abs(np.asarray(a, dtype=np.float64))


def _eps(*arrays):
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return np.finfo(dtype).eps


def _terms(w, d):
    return int(np.prod(np.shape(w)[1 + d:])) + 2


# The checks: each result against its oracle, with the bound from the oracle of |terms|.

def check_local(x, w, b=None, **kw):
    d = x.ndim - 2
    got = convlab.local_conv(x, w, b, **kw)
    want = local_conv_ref(x, w, b, **kw)
    tol = 4 * _terms(w, d) * _eps(x, w, b) * local_conv_ref(_abs64(x), _abs64(w), _abs64(b), **kw)
    assert got.dtype == np.result_type(x, w, *(() if b is None else (b,)))
    assert_matches(got, want, tol + np.finfo(got.dtype).tiny)
    return got


def check_local_grads(G, x, w, **kw):
    d = x.ndim - 2
    eps = _eps(G, w)
    gx = convlab.local_conv_grad_input(G, w, x.shape, **kw)
    n = w.shape[0] * int(np.prod(w.shape[2 + 2 * d - d:])) + 2
    tol = 4 * n * eps * local_conv_grad_input_ref(_abs64(G), _abs64(w), x.shape, **kw)
    assert_matches(gx, local_conv_grad_input_ref(G, w, x.shape, **kw), tol + np.finfo(gx.dtype).tiny)
    gw = convlab.local_conv_grad_weight(G, x, w.shape, **kw)
    tol = 4 * (G.shape[0] + 2) * _eps(G, x) * local_conv_grad_weight_ref(_abs64(G), _abs64(x), w.shape, **kw)
    assert_matches(gw, local_conv_grad_weight_ref(G, x, w.shape, **kw), tol + np.finfo(gw.dtype).tiny)
    gb = convlab.local_conv_grad_bias(G)
    tol = 4 * (G.shape[0] + 2) * np.finfo(gb.dtype).eps * local_conv_grad_bias_ref(_abs64(G))
    assert_matches(gb, local_conv_grad_bias_ref(G), tol + np.finfo(gb.dtype).tiny)
    return gx, gw, gb


def check_tiled(x, w, b=None, **kw):
    d = x.ndim - 2
    got = convlab.tiled_conv(x, w, b, **kw)
    tol = 4 * _terms(w, d) * _eps(x, w, b) * tiled_conv_ref(_abs64(x), _abs64(w), _abs64(b), **kw)
    assert_matches(got, tiled_conv_ref(x, w, b, **kw), tol + np.finfo(got.dtype).tiny)
    return got


def check_tiled_grads(G, x, w, **kw):
    d = x.ndim - 2
    tiles = w.shape[1:1 + d]
    gx = convlab.tiled_conv_grad_input(G, w, x.shape, **kw)
    n = w.shape[0] * int(np.prod(w.shape[1 + d:])) + 2
    tol = 4 * n * _eps(G, w) * tiled_conv_grad_input_ref(_abs64(G), _abs64(w), x.shape, **kw)
    assert_matches(gx, tiled_conv_grad_input_ref(G, w, x.shape, **kw), tol + np.finfo(gx.dtype).tiny)
    gw = convlab.tiled_conv_grad_weight(G, x, w.shape, **kw)
    n = int(np.prod(G.shape[:1] + G.shape[2:])) + 2
    tol = 4 * n * _eps(G, x) * tiled_conv_grad_weight_ref(_abs64(G), _abs64(x), w.shape, **kw)
    assert_matches(gw, tiled_conv_grad_weight_ref(G, x, w.shape, **kw), tol + np.finfo(gw.dtype).tiny)
    gb = convlab.tiled_conv_grad_bias(G, tiles)
    tol = 4 * n * np.finfo(gb.dtype).eps * tiled_conv_grad_bias_ref(_abs64(G), tiles)
    assert_matches(gb, tiled_conv_grad_bias_ref(G, tiles), tol + np.finfo(gb.dtype).tiny)
    return gx, gw, gb


def kw_for(d, padding="int0", stride="s1", flip=False):
    return dict(padding=PADDINGS[padding][d], stride=STRIDES[stride][d], flip=flip)


# ------------------------------------------------------------------------------ locally connected


@pytest.mark.parametrize("flip", [False, True], ids=["corr", "flip"])
@pytest.mark.parametrize("stride", list(STRIDES))
@pytest.mark.parametrize("padding", list(PADDINGS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_local_forward_and_gradients(d, dtype, padding, stride, flip, rng):
    kw = kw_for(d, padding, stride, flip)
    x, w, b = make_local(rng, d, dtype, **kw)
    y = check_local(x, w, b, **kw)
    check_local(x, w, None, **kw)
    G = random_array(rng, y.shape, dtype)
    check_local_grads(G, x, w, **kw)


# Batch sizes around the vector widths (8 float32 / 4 float64 images per vector), filter
# counts and tap counts around the register blocks (4 x 4), a batch split in chunks.
@pytest.mark.parametrize("N,C,F,ks", [(1, 1, 1, (1, 1)), (5, 3, 5, (2, 2)), (8, 4, 4, (2, 2)),
                                      (13, 2, 7, (3, 3)), (33, 3, 9, (2, 3)), (4, 5, 4, (1, 3))])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_local_blocks_and_remainders(N, C, F, ks, dtype, rng):
    kw = dict(padding=1, stride=1)
    x, w, b = make_local(rng, 2, dtype, N=N, C=C, F=F, ins=(6, 5), ks=ks, **kw)
    y = check_local(x, w, b, **kw)
    check_local_grads(random_array(rng, y.shape, dtype), x, w, **kw)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_local_batch_chunks(dtype, rng, monkeypatch):
    """A batch converted in several chunks (a tiny chunk budget) gives the oracle's result."""
    monkeypatch.setattr(_unshared, "_COPY_BYTES", 1)
    kw = dict(padding="same", stride=2)
    x, w, b = make_local(rng, 2, dtype, N=21, C=3, F=5, ins=(7, 6), **kw)
    y = check_local(x, w, b, **kw)
    check_local_grads(random_array(rng, y.shape, dtype), x, w, **kw)


@pytest.mark.parametrize("padding", ["int1", "same", "full", "pairs"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_local_identical_kernels_equal_conv(d, padding, rng):
    """local_conv with the same kernel at every location is conv (and so are its gradients)."""
    kw = kw_for(d, padding, "mixed")
    x, _, _ = make_local(rng, d, **kw)
    shared = random_array(rng, (3, 2) + K[d], np.float64)
    outs = out_sizes(x.shape, K[d], **kw)
    w = np.broadcast_to(shared[(slice(None),) + (None,) * d], (3,) + outs + (2,) + K[d])
    y = convlab.local_conv(x, w, **kw)
    want = convlab.conv(x, shared, **kw)
    assert_matches(y, want, 1e-12 * (1 + np.abs(want)))
    G = random_array(rng, y.shape, np.float64)
    gx = convlab.local_conv_grad_input(G, w, x.shape, **kw)
    assert_matches(gx, convlab.conv_grad_input(G, shared, x.shape, **kw), 1e-12 * (1 + np.abs(gx)))
    gw = convlab.local_conv_grad_weight(G, x, w.shape, **kw)
    gw_shared = convlab.conv_grad_weight(G, x, shared.shape, **kw)
    summed = gw.sum(axis=tuple(range(1, d + 1)))
    assert_matches(summed, gw_shared, 1e-11 * (1 + np.abs(gw_shared)))


# ------------------------------------------------------------------------------ tiled


TILE_CASES = {
    1: [(1,), (2,), (3,), (4,), (20,)],
    2: [(1, 1), (2, 2), (1, 3), (3, 2), (4, 5)],
    3: [(1, 1, 1), (2, 1, 2), (2, 3, 1)],
}


@pytest.mark.parametrize("flip", [False, True], ids=["corr", "flip"])
@pytest.mark.parametrize("padding", ["int0", "same", "pairs", "full"])
@pytest.mark.parametrize("stride", ["s1", "mixed"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_tiled_forward_and_gradients(d, dtype, stride, padding, flip, rng):
    kw = kw_for(d, padding, stride, flip)
    for tiles in TILE_CASES[d]:
        x, w, b = make_tiled(rng, d, tiles, dtype)
        y = check_tiled(x, w, b, **kw)
        check_tiled_grads(random_array(rng, y.shape, dtype), x, w, **kw)


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("tiles", [(2, 2), (3, 1), (2, 5)], ids=str)
def test_tiled_large_outputs(tiles, dtype, rng):
    """Outputs with many locations per tile position (tiles that do not divide them)."""
    x, w, b = make_tiled(rng, 2, tiles, dtype, N=5, C=3, F=4, ins=(23, 21), ks=(3, 3))
    y = check_tiled(x, w, b)
    check_tiled_grads(random_array(rng, y.shape, dtype), x, w)
    y = check_tiled(x, w, b, stride=2, padding="same", flip=True)
    check_tiled_grads(random_array(rng, y.shape, dtype), x, w, stride=2, padding="same", flip=True)


@pytest.mark.parametrize("uses_phases", [True, False], ids=["phases", "local"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_tiled_both_paths(uses_phases, dtype, rng, monkeypatch):
    """The phase decomposition and the locally connected kernels give the oracle's result on
    the same problem."""
    monkeypatch.setattr(_unshared, "_PHASE_MIN_LOCATIONS", 1)
    monkeypatch.setattr(_unshared, "_PHASE_BATCH_VECTORS", 10**6 if uses_phases else 0)
    monkeypatch.setattr(_unshared, "_COPY_BYTES", 4096)  # several batch chunks
    x, w, b = make_tiled(rng, 2, (3, 2), dtype, N=11, C=2, F=5, ins=(9, 8), ks=(2, 3))
    kw = dict(stride=(1, 2), padding=((1, 2), (0, 1)), flip=True)
    y = check_tiled(x, w, b, **kw)
    check_tiled_grads(random_array(rng, y.shape, dtype), x, w, **kw)


@pytest.mark.parametrize("padding", ["int1", "same", "pairs"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_tiled_one_tile_is_conv(d, padding, rng):
    """tiles = 1: the one kernel of conv, weights broadcast over the tile axes."""
    kw = kw_for(d, padding, "mixed", flip=True)
    x, w, b = make_tiled(rng, d, (1,) * d)
    shared = w.reshape((w.shape[0],) + w.shape[1 + d:])
    y = convlab.tiled_conv(x, w, b, **kw)
    want = conv_ref(x, shared, b.reshape(-1), **kw)
    assert_matches(y, want, 1e-12 * (1 + np.abs(want)))
    G = random_array(rng, y.shape, np.float64)
    assert_matches(convlab.tiled_conv_grad_input(G, w, x.shape, **kw),
                   convlab.conv_grad_input(G, shared, x.shape, **kw), 1e-12 * (1 + np.abs(x)))
    assert_matches(convlab.tiled_conv_grad_weight(G, x, w.shape, **kw),
                   convlab.conv_grad_weight(G, x, shared.shape, **kw).reshape(w.shape),
                   1e-11 * (1 + np.abs(w)))
    assert_matches(convlab.tiled_conv_grad_bias(G, 1), convlab.conv_grad_bias(G).reshape(b.shape), 1e-11)


@pytest.mark.parametrize("padding", ["int0", "same", "full"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_tiled_tiles_equal_output_is_local(d, padding, rng):
    """tiles = the output size: every location its own kernel, i.e. local_conv."""
    kw = kw_for(d, padding, "mixed")
    x = random_array(rng, (4, 2) + IN[d], np.float64)
    outs = out_sizes(x.shape, K[d], **kw)
    w = random_array(rng, (3,) + outs + (2,) + K[d], np.float64)
    b = random_array(rng, (3,) + outs, np.float64)
    y = convlab.tiled_conv(x, w, b, **kw)
    want = convlab.local_conv(x, w, b, **kw)
    assert_matches(y, want, 1e-12 * (1 + np.abs(want)))
    G = random_array(rng, y.shape, np.float64)
    for tiled, local in [
        (convlab.tiled_conv_grad_input(G, w, x.shape, **kw), convlab.local_conv_grad_input(G, w, x.shape, **kw)),
        (convlab.tiled_conv_grad_weight(G, x, w.shape, **kw), convlab.local_conv_grad_weight(G, x, w.shape, **kw)),
        (convlab.tiled_conv_grad_bias(G, outs), convlab.local_conv_grad_bias(G)),
    ]:
        assert_matches(tiled, local, 1e-12 * (1 + np.abs(local)))


def test_tiled_kernels_past_the_output_get_zero_gradient(rng):
    x, w, b = make_tiled(rng, 1, (15,), ins=(11,))  # 9 outputs, 15 tiles
    G = random_array(rng, (3, 3, 9), np.float64)
    gw = convlab.tiled_conv_grad_weight(G, x, w.shape)
    gb = convlab.tiled_conv_grad_bias(G, 15)
    assert np.all(gw[:, 9:] == 0) and np.all(gb[:, 9:] == 0)
    assert np.all(gw[:, :9] != 0)


# ------------------------------------------------------------------------------ gradients


FD_CASES = [
    ("local", 1, (7,), (3,), None, dict(stride=2, padding=1)),
    ("local", 2, (5, 4), (2, 3), None, dict(stride=(2, 1), padding=((1, 0), (0, 2)), flip=True)),
    ("local", 3, (3, 4, 3), (2, 2, 2), None, dict(padding="same")),
    ("tiled", 1, (9,), (2,), (3,), dict(padding="full", flip=True)),
    ("tiled", 2, (6, 5), (2, 2), (2, 2), dict(stride=(1, 2), padding="same")),
    ("tiled", 3, (4, 3, 4), (2, 1, 2), (1, 2, 2), dict(padding=1)),
]


@pytest.mark.parametrize("case", FD_CASES, ids=str)
def test_finite_differences(case, rng):
    """Central differences of the oracle's forward against the input and weight gradients
    (the forward is linear in each: only rounding remains)."""
    kind, d, ins, ks, tiles, kw = case
    if kind == "local":
        x, w, _ = make_local(rng, d, N=2, C=2, F=2, ins=ins, ks=ks, bias=False, **kw)
        forward, grad_input, grad_weight = (local_conv_ref, convlab.local_conv_grad_input,
                                            convlab.local_conv_grad_weight)
    else:
        x, w, _ = make_tiled(rng, d, tiles, N=2, C=2, F=2, ins=ins, ks=ks, bias=False)
        forward, grad_input, grad_weight = (tiled_conv_ref, convlab.tiled_conv_grad_input,
                                            convlab.tiled_conv_grad_weight)
    G = random_array(rng, forward(x, w, **kw).shape, np.float64)
    fd_x = central_difference_vjp(lambda a: forward(a, w, **kw), x, G, H)
    fd_w = central_difference_vjp(lambda v: forward(x, v, **kw), w, G, H)
    fscale = float(np.sum(forward(np.abs(x) + H, np.abs(w) + H, **kw) * np.abs(G)))
    tol = 1e-12 * (1 + np.abs(fd_x).max()) + 8 * np.finfo(np.float64).eps * fscale / H
    assert_matches(grad_input(G, w, x.shape, **kw), fd_x, tol)
    tol = 1e-12 * (1 + np.abs(fd_w).max()) + 8 * np.finfo(np.float64).eps * fscale / H
    assert_matches(grad_weight(G, x, w.shape, **kw), fd_w, tol)
    assert np.abs(fd_x).max() > 0 and np.abs(fd_w).max() > 0


ADJOINT_CASES = [("local", None, "int1", "s1"), ("local", None, "same", "mixed"), ("local", None, "full", "s2"),
                 ("tiled", 2, "int0", "s1"), ("tiled", 3, "pairs", "mixed"), ("tiled", 1, "same", "s2")]


@pytest.mark.parametrize("case", ADJOINT_CASES, ids=str)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_adjoint_identity(d, dtype, case, rng):
    """<f(x, w), G> == <x, grad_input(G, w)> == <w, grad_weight(G, x)>."""
    kind, tile, padding, stride = case
    kw = kw_for(d, padding, stride, flip=True)
    if kind == "local":
        x, w, _ = make_local(rng, d, dtype, N=9, bias=False, **kw)
        f, gi, gw = convlab.local_conv, convlab.local_conv_grad_input, convlab.local_conv_grad_weight
        ref = local_conv_ref
    else:
        x, w, _ = make_tiled(rng, d, (tile,) * d, dtype, N=9, bias=False)
        f, gi, gw = convlab.tiled_conv, convlab.tiled_conv_grad_input, convlab.tiled_conv_grad_weight
        ref = tiled_conv_ref
    y = f(x, w, **kw)
    G = random_array(rng, y.shape, dtype)
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    lhs = float(np.sum(f64(y) * f64(G)))
    r1 = float(np.sum(f64(x) * f64(gi(G, w, x.shape, **kw))))
    r2 = float(np.sum(f64(w) * f64(gw(G, x, w.shape, **kw))))
    scale = float(np.sum(ref(np.abs(f64(x)), np.abs(f64(w)), **kw) * np.abs(f64(G))))
    tol = 4 * np.finfo(dtype).eps * (int(np.prod(w.shape[1:])) + G.size + x.size) * scale
    assert abs(lhs - r1) <= tol, (lhs, r1, tol)
    assert abs(lhs - r2) <= tol, (lhs, r2, tol)


# ------------------------------------------------------------------------------ hypothesis


@st.composite
def unshared_problems(draw):
    d = draw(st.integers(1, 3))
    ks = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    form = draw(st.sampled_from(["int", "pairs", "valid", "same", "full"]))
    if form == "int":
        padding = draw(st.integers(0, 2))
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(d))
    else:
        padding = form
    ins = tuple(draw(st.integers(1, 9 if d < 3 else 5)) for _ in range(d))
    outs = local_output_sizes((1, 1) + ins, ks, stride, padding)
    if min(outs) < 1:
        ins = tuple(max(n, k + 2 * 2) for n, k in zip(ins, ks))
        outs = local_output_sizes((1, 1) + ins, ks, stride, padding)
    tiles = tuple(draw(st.integers(1, o + 2)) for o in outs)
    N = draw(st.integers(0, 10))
    C = draw(st.integers(1, 3))
    F = draw(st.integers(1, 6))
    dtype = draw(st.sampled_from(FLOATS))
    flip = draw(st.booleans())
    return dict(d=d, ks=ks, ins=ins, N=N, C=C, F=F, tiles=tiles, dtype=dtype,
                kw=dict(stride=stride, padding=padding, flip=flip))


@given(problem=unshared_problems(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_local_and_tiled(problem, seed):
    note(repr(problem))
    rng = np.random.default_rng(seed)
    d, kw, dtype = problem["d"], problem["kw"], problem["dtype"]
    shape = dict(N=problem["N"], C=problem["C"], F=problem["F"], ins=problem["ins"], ks=problem["ks"])
    x, w, b = make_local(rng, d, dtype, **shape, **kw)
    y = check_local(x, w, b, **kw)
    G = random_array(rng, y.shape, dtype)
    check_local_grads(G, x, w, **kw)
    xt, wt, bt = make_tiled(rng, d, problem["tiles"], dtype, **shape)
    y = check_tiled(xt, wt, bt, **kw)
    check_tiled_grads(random_array(rng, y.shape, dtype), xt, wt, **kw)


# ------------------------------------------------------------------------------ layouts, dtypes


KW = dict(stride=(2, 1), padding=1)
X_SHAPE = (5, 2, 6, 5)
LOCAL_W = (3, 4, 6, 2, 2, 2)
TILED_W = (3, 2, 3, 2, 2, 2)
G_SHAPE = (5, 3, 4, 6)


def _base(rng, dtype):
    return dict(x=random_array(rng, X_SHAPE, dtype), local_w=random_array(rng, LOCAL_W, dtype),
                local_b=random_array(rng, (3, 4, 6), dtype), tiled_w=random_array(rng, TILED_W, dtype),
                tiled_b=random_array(rng, (3, 2, 3), dtype), grad_out=random_array(rng, G_SHAPE, dtype))


CALLS = {
    "local_conv": (("x", "local_w", "local_b"), lambda a, **kw: convlab.local_conv(a["x"], a["local_w"], a["local_b"], **kw)),
    "local_conv_grad_input": (("grad_out", "local_w"),
                              lambda a, **kw: convlab.local_conv_grad_input(a["grad_out"], a["local_w"], X_SHAPE, **kw)),
    "local_conv_grad_weight": (("grad_out", "x"),
                               lambda a, **kw: convlab.local_conv_grad_weight(a["grad_out"], a["x"], LOCAL_W, **kw)),
    "local_conv_grad_bias": (("grad_out",), lambda a, **kw: convlab.local_conv_grad_bias(a["grad_out"])),
    "tiled_conv": (("x", "tiled_w", "tiled_b"), lambda a, **kw: convlab.tiled_conv(a["x"], a["tiled_w"], a["tiled_b"], **kw)),
    "tiled_conv_grad_input": (("grad_out", "tiled_w"),
                              lambda a, **kw: convlab.tiled_conv_grad_input(a["grad_out"], a["tiled_w"], X_SHAPE, **kw)),
    "tiled_conv_grad_weight": (("grad_out", "x"),
                               lambda a, **kw: convlab.tiled_conv_grad_weight(a["grad_out"], a["x"], TILED_W, **kw)),
    "tiled_conv_grad_bias": (("grad_out",), lambda a, **kw: convlab.tiled_conv_grad_bias(a["grad_out"], (2, 3))),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("name", list(CALLS))
def test_layouts_give_same_result(name, dtype, layout, rng):
    """Any memory layout gives the C-contiguous copy's result bit for bit; inputs untouched."""
    keys, function = CALLS[name]
    base = _base(rng, dtype)
    for key in keys:
        args = dict(base)
        args[key] = LAYOUTS[layout](base[key])
        before = args[key].tobytes(order="A")
        got = function(args, **KW)
        want = function({k: np.ascontiguousarray(v) for k, v in args.items()}, **KW)
        assert args[key].tobytes(order="A") == before
        assert got.dtype == want.dtype and got.dtype.isnative
        assert np.array_equal(got, want), f"{key} as {layout}"


@pytest.mark.parametrize("name", list(CALLS))
def test_promotion_and_array_likes(name, rng):
    """float16 computes in float32, integers and bool in float64, lists are accepted."""
    keys, function = CALLS[name]
    base = _base(rng, np.float64)
    ints = {k: np.round(v * 3).astype(np.int16) for k, v in base.items()}
    got = function(ints, **KW)
    assert got.dtype == np.float64
    assert np.array_equal(got, function({k: v.astype(np.float64) for k, v in ints.items()}, **KW))
    assert np.array_equal(function({k: v.tolist() for k, v in ints.items()}, **KW), got)
    half = {k: v.astype(np.float16) for k, v in base.items()}
    assert function(half, **KW).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.dtype(object), np.dtype("U3"), np.dtype("M8[s]"), np.dtype(np.complex128)], ids=str)
@pytest.mark.parametrize("name", list(CALLS))
def test_unsupported_dtypes(name, dtype, rng):
    keys, function = CALLS[name]
    for key in keys:
        args = _base(rng, np.float64)
        args[key] = bad_dtype_array(dtype, args[key].shape)
        with pytest.raises(TypeError, match=re.escape(key.split("_")[-1] if key != "grad_out" else "grad_out")):
            function(args, **KW)


def test_workers_and_threads_give_identical_bits(rng):
    """Every worker count gives the same bits; calls from several Python threads agree."""
    base = _base(rng, np.float32)
    results = {}
    for workers in (1, 2, 3, -1):
        results[workers] = [function(base, workers=workers, **KW) if "bias" not in name
                            else function(base, **KW) for name, (_, function) in CALLS.items()]
    for workers, values in results.items():
        for got, want in zip(values, results[1]):
            assert np.array_equal(got, want), workers

    def run(_):
        return [function(base, **KW) for _, function in CALLS.values()]

    with ThreadPoolExecutor(4) as pool:
        for values in pool.map(run, range(8)):
            for got, want in zip(values, results[1]):
                assert np.array_equal(got, want)


# ------------------------------------------------------------------------------ zero size, NaN


@pytest.mark.parametrize("d", [1, 2, 3])
def test_zero_batch(d, rng):
    kw = dict(padding="same", stride=2)
    x, w, b = make_local(rng, d, N=0, **kw)
    y = convlab.local_conv(x, w, b, **kw)
    assert y.shape == (0, 3) + w.shape[1:1 + d] and y.dtype == np.float64
    G = np.zeros(y.shape)
    assert convlab.local_conv_grad_input(G, w, x.shape, **kw).shape == x.shape
    gw = convlab.local_conv_grad_weight(G, x, w.shape, **kw)
    assert gw.shape == w.shape and np.all(gw == 0)
    gb = convlab.local_conv_grad_bias(G)
    assert gb.shape == b.shape and np.all(gb == 0)
    for tiles in [(1,) * d, (2,) * d, w.shape[1:1 + d]]:
        xt, wt, bt = make_tiled(rng, d, tiles, N=0)
        y = convlab.tiled_conv(xt, wt, bt, **kw)
        assert y.shape == (0, 3) + w.shape[1:1 + d]
        G = np.zeros(y.shape, np.float32)
        assert convlab.tiled_conv_grad_input(G, wt.astype(np.float32), xt.shape, **kw).shape == xt.shape
        gw = convlab.tiled_conv_grad_weight(G, xt.astype(np.float32), wt.shape, **kw)
        assert gw.shape == wt.shape and gw.dtype == np.float32 and np.all(gw == 0)
        gb = convlab.tiled_conv_grad_bias(G, tiles)
        assert gb.shape == bt.shape and np.all(gb == 0)


@pytest.mark.parametrize("name", ["local_conv", "tiled_conv"])
def test_nan_weight_meets_padding(name, rng):
    """The zero padding is part of the input: a NaN tap that only meets padding still gives
    NaN (0 * NaN), as conv does."""
    x = random_array(rng, (2, 1, 6), np.float64)
    if name == "local_conv":
        w = random_array(rng, (1, 6, 1, 3), np.float64)
        w[0, 0, 0, 0] = np.nan     # location 0's first tap reads the padding sample
        y = convlab.local_conv(x, w, padding=1)
        assert np.all(np.isnan(y[:, 0, 0])) and not np.isnan(y[:, 0, 1:]).any()
    else:
        w = random_array(rng, (1, 2, 1, 3), np.float64)
        w[0, 0, 0, 0] = np.nan     # tile 0: locations 0, 2, 4
        y = convlab.tiled_conv(x, w, padding=1)
        assert np.all(np.isnan(y[:, 0, 0::2])) and not np.isnan(y[:, 0, 1::2]).any()
    x[1, 0, 3] = np.inf
    y = getattr(convlab, name)(x, np.nan_to_num(w), padding=1)
    assert np.isinf(y[1]).any() or np.isnan(y[1]).any()
    assert np.isfinite(y[0]).all()


# ------------------------------------------------------------------------------ errors


def _local(x=np.ones(X_SHAPE), w=np.ones(LOCAL_W), bias=None, **kw):
    kw = {**KW, **kw}
    return lambda: convlab.local_conv(x, w, bias, **kw)


def _tiled(x=np.ones(X_SHAPE), w=np.ones(TILED_W), bias=None, **kw):
    kw = {**KW, **kw}
    return lambda: convlab.tiled_conv(x, w, bias, **kw)


ERRORS = {
    "local_w_ndim": (_local(w=np.ones((3, 4, 2, 2, 2))), ["4, 6 or 8 dimensions", "(3, 4, 2, 2, 2)"]),
    "local_x_ndim": (_local(x=np.ones((5, 2, 6))), ["4 dimensions", "(5, 2, 6)"]),
    "local_channels": (_local(x=np.ones((5, 3, 6, 5))), ["C=3", "C=2"]),
    "local_out_mismatch": (_local(w=np.ones((3, 4, 5, 2, 2, 2))), ["(4, 5)", "(4, 6)"]),
    "local_out_mismatch_stride": (_local(stride=1), ["(4, 6)", "(7, 6)"]),
    "local_bias_shape": (_local(bias=np.ones(3)), ["bias", "(3, 4, 6)", "(3,)"]),
    "local_stride0": (_local(stride=0), ["stride", "0"]),
    "local_negative_padding": (_local(padding=-1), ["padding", "-1"]),
    "local_padding_string": (_local(padding="half"), ["padding", "half", "valid", "same", "full"]),
    "local_padding_flat_pairs": (_local(padding=(1, 0, 1, 0)), ["padding"]),
    "local_output_too_small": (_local(x=np.ones((5, 2, 1, 1)), w=np.ones((3, 1, 1, 2, 2, 2)), padding=0), ["kernel", "2"]),
    "local_zero_channels": (_local(x=np.ones((5, 0, 6, 5)), w=np.ones((3, 4, 6, 0, 2, 2))), ["C=0"]),
    "local_zero_filters": (_local(w=np.ones((0, 4, 6, 2, 2, 2))), ["F=0"]),
    "local_dilation_keyword": (lambda: convlab.local_conv(np.ones(X_SHAPE), np.ones(LOCAL_W), dilation=2),
                               ["dilation"]),
    "tiled_tiles0": (_tiled(w=np.ones((3, 0, 3, 2, 2, 2))), ["tiles", ">= 1", "(0, 3)"]),
    "tiled_channels": (_tiled(w=np.ones((3, 2, 3, 4, 2, 2))), ["C=2", "C=4"]),
    "tiled_bias_shape": (_tiled(bias=np.ones((3, 4, 7))), ["bias", "(3, 2, 3)", "(3, 4, 7)"]),
    "tiled_w_ndim": (_tiled(w=np.ones((3, 2, 2, 2, 2))), ["4, 6 or 8 dimensions"]),
    "tiled_grad_out_shape": (lambda: convlab.tiled_conv_grad_input(np.ones((5, 3, 4, 5)), np.ones(TILED_W), X_SHAPE, **KW),
                             ["grad_out", "(5, 3, 4, 6)", "(5, 3, 4, 5)"]),
    "local_grad_out_shape": (lambda: convlab.local_conv_grad_weight(np.ones((5, 3, 4, 5)), np.ones(X_SHAPE), LOCAL_W, **KW),
                             ["grad_out", "(5, 3, 4, 6)"]),
    "local_weight_shape_mismatch": (lambda: convlab.local_conv_grad_weight(np.ones(G_SHAPE), np.ones(X_SHAPE),
                                                                           (3, 4, 5, 2, 2, 2), **KW),
                                    ["weight_shape", "(4, 5)", "(4, 6)"]),
    "local_input_shape_negative": (lambda: convlab.local_conv_grad_input(np.ones(G_SHAPE), np.ones(LOCAL_W),
                                                                         (5, 2, -6, 5), **KW), ["input_shape"]),
    "grad_bias_ndim": (lambda: convlab.local_conv_grad_bias(np.ones((3, 4))), ["3, 4 or 5 dimensions", "(3, 4)"]),
    "tiled_grad_bias_tiles0": (lambda: convlab.tiled_conv_grad_bias(np.ones(G_SHAPE), 0), ["tiles", "0"]),
    "tiled_grad_bias_tiles_count": (lambda: convlab.tiled_conv_grad_bias(np.ones(G_SHAPE), (1, 2, 3)), ["tiles"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_value_errors(case):
    fn, fragments = ERRORS[case]
    with pytest.raises((ValueError, TypeError)) as info:
        fn()
    message = str(info.value)
    if case != "local_dilation_keyword":
        assert info.type is ValueError, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_errors_name_the_function():
    with pytest.raises(ValueError, match="^tiled_conv_grad_weight: "):
        convlab.tiled_conv_grad_weight(np.ones(G_SHAPE), np.ones(X_SHAPE), (3, 0, 3, 2, 2, 2), **KW)
    with pytest.raises(ValueError, match="^local_conv_grad_input: "):
        convlab.local_conv_grad_input(np.ones(G_SHAPE), np.ones(LOCAL_W), (5, 3, 6, 5), **KW)


def test_huge_problem_fails_before_work():
    """A problem whose buffers cannot fit raises MemoryError (or ValueError) up front."""
    x = np.broadcast_to(np.ones(1, np.float32), (1 << 20, 64, 1024, 1024))
    for tiles in [(2, 2), (511, 511)]:
        w = np.broadcast_to(np.ones(1, np.float32), (8,) + tiles + (64, 3, 3))
        with pytest.raises((MemoryError, ValueError)):
            convlab.tiled_conv(x, w)
    x = np.broadcast_to(np.ones(1, np.float32), (1 << 16, 4, 1024, 1024))
    w = np.broadcast_to(np.ones(1, np.float32), (8, 1022, 1022, 4, 3, 3))
    with pytest.raises((MemoryError, ValueError)):
        convlab.local_conv(x, w)
    with pytest.raises((MemoryError, ValueError)):
        convlab.local_conv_grad_input(np.broadcast_to(np.ones(1, np.float32), (1 << 16, 8, 1022, 1022)),
                                      w, x.shape)
