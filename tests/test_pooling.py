"""Pooling (SPEC §3.5, §4): max_pool, avg_pool, lp_pool and their gradients against the
plain-numpy oracles of tests/_pooling_reference.py, the worked example, ties and NaN
routing, large orders, finite differences, the adjoint identity, hypothesis, zero sizes,
memory layouts, dtypes, threads and every error.

Tolerances come from the dtype: a sum of n terms in any order is within
``c * n * eps * sum |terms|`` of the exact one (``sum |terms|`` from the oracle applied to
absolute values). A maximum is one of the samples: it is compared exactly. An Lp gradient
raises ``|x| / y`` to the power p - 1, which multiplies the relative error of the norm by
p - 1: its bound grows with p.
"""

import math
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

import convlab
from convlab import _pooling
from _pooling_reference import (
    avg_pool_grad_ref,
    avg_pool_ref,
    geometry,
    lp_pool_grad_ref,
    lp_pool_ref,
    max_pool_grad_ref,
    max_pool_ref,
    output_shape,
)
from _layouts import LAYOUTS
from _reference import bad_dtype_array, central_difference_vjp

FLOATS = (np.float32, np.float64)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731
ORDERS = (1, 1.5, 2, 3, 50, 200, math.inf)

# Input sizes and (size, stride, padding) per d: windows side by side (the 2 x 2 vector
# loops among them), overlapping (stride < size), with gaps (stride > size), padded, mixed
# per axis, rows and columns left over at the end.
IN = {1: (13,), 2: (9, 11), 3: (5, 6, 7)}
CONFIGS = {
    1: [(2, None, 0), (3, 1, 1), (3, 2, 1), (2, 3, 0), (4, 2, 2), (1, 1, 0), (5, 4, 2)],
    2: [(2, None, 0), ((3, 2), (1, 2), (1, 1)), (3, 2, 1), ((2, 3), (3, 4), (1, 0)),
        (2, 2, 1), (4, 3, 2), ((1, 2), None, 0), ((2, 2), (2, 1), 0)],
    3: [(2, None, 0), ((1, 2, 2), (2, 2, 2), 0), ((3, 2, 2), (1, 2, 1), (1, 1, 0)),
        (2, 3, 1), ((1, 2, 2), (1, 2, 2), (0, 1, 0))],
}
CASES = [(d, i) for d in (1, 2, 3) for i in range(len(CONFIGS[d]))]
CASE_ID = lambda case: f"d{case[0]}-{CONFIGS[case[0]][case[1]]}"  # noqa: E731


def kw_of(d, i):
    size, stride, padding = CONFIGS[d][i]
    return size, dict(stride=stride, padding=padding)


def windows_per_sample(x_shape, size, stride):
    """An upper bound on the windows that hold one sample (terms of a gradient's sum)."""
    sizes, strides, _, _ = geometry(x_shape, size, stride)
    return math.prod(-(-k // s) for k, s in zip(sizes, strides))


def window_volume(x_shape, size):
    return math.prod(geometry(x_shape, size)[0])


def eps(dtype):
    return float(np.finfo(dtype).eps)


def tiny(dtype):
    return float(np.finfo(dtype).tiny)


def assert_close(got, want, tol):
    """|got - want| <= tol elementwise; NaN where the oracle has NaN, inf where it has inf."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    g = got.astype(np.longdouble)
    w = want.astype(np.longdouble)
    nan = np.isnan(w)
    assert np.array_equal(np.isnan(g), nan), "NaN in other places than the oracle's"
    inf = np.isinf(w)
    assert np.array_equal(g[inf], w[inf]), "inf in other places than the oracle's"
    finite = ~(nan | inf)
    err = np.abs(g[finite] - w[finite])
    bound = np.broadcast_to(tol, w.shape)[finite]
    bad = ~(err <= bound)
    if bad.any():
        j = np.flatnonzero(bad)[0]
        raise AssertionError(f"{bad.sum()} of {err.size} elements beyond the tolerance; first: "
                             f"got {g[finite][j]!r}, expected {w[finite][j]!r}, err {err[j]:.3g}, "
                             f"tol {bound[j]:.3g}")


def same_bits(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def same_values(a, b):
    """The same bits except for the payloads of NaNs (which IEEE arithmetic leaves to the
    order of an addition's operands, a compiler's choice)."""
    a = np.asarray(a)
    b = np.asarray(b)
    nan = np.isnan(a)
    return (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(nan, np.isnan(b))
            and a[~nan].tobytes() == b[~nan].tobytes())


# ----------------------------------------------------------------------------- checks


def check_max(x, G, size, **kw):
    dtype = np.result_type(x, G)
    y = convlab.max_pool(x, size, **kw)
    want = max_pool_ref(x, size, **kw)
    assert y.dtype == want.dtype and y.shape == want.shape
    assert np.array_equal(y, want, equal_nan=True)
    dx = convlab.max_pool_grad(G, x, size, **kw)
    assert dx.dtype == dtype and dx.shape == x.shape
    n = windows_per_sample(x.shape, size, kw.get("stride"))
    tol = 2 * n * eps(dtype) * max_pool_grad_ref(np.abs(G), x, size, **kw) + tiny(dtype)
    assert_close(dx, max_pool_grad_ref(G, x, size, **kw), tol)
    return y, dx


def check_avg(x, G, size, **kw):
    y = convlab.avg_pool(x, size, **kw)
    assert y.dtype == x.dtype
    terms = window_volume(x.shape, size) + 2
    tol = 2 * terms * eps(x.dtype) * avg_pool_ref(np.abs(x), size, **kw) + tiny(x.dtype)
    assert_close(y, avg_pool_ref(x, size, **kw), tol)
    dx = convlab.avg_pool_grad(G, x.shape, size, **kw)
    assert dx.dtype == G.dtype and dx.shape == x.shape
    n = windows_per_sample(x.shape, size, kw.get("stride")) + 2
    tol = 2 * n * eps(G.dtype) * avg_pool_grad_ref(np.abs(G), x.shape, size, **kw) + tiny(G.dtype)
    assert_close(dx, avg_pool_grad_ref(G, x.shape, size, **kw), tol)
    return y, dx


def check_lp(x, G, size, p, **kw):
    dtype = np.result_type(x, G)
    y = convlab.lp_pool(x, size, p, **kw)
    assert y.dtype == x.dtype
    terms = window_volume(x.shape, size) + 6
    want = lp_pool_ref(x, size, p, **kw)
    assert_close(y, want, 4 * terms * eps(x.dtype) * np.abs(want) + tiny(x.dtype))
    dx = convlab.lp_pool_grad(G, x, size, p, **kw)
    assert dx.dtype == dtype and dx.shape == x.shape
    n = windows_per_sample(x.shape, size, kw.get("stride")) + 2
    conditioning = 1 if p in (1, math.inf) else p * terms + 6
    scale = lp_pool_grad_ref(np.abs(G), np.abs(x), size, p, **kw)
    tol = 4 * n * conditioning * eps(dtype) * scale + tiny(dtype)
    assert_close(dx, lp_pool_grad_ref(G, x, size, p, **kw), tol)
    return y, dx


def data(rng, d, dtype, N=2, C=3, ins=None):
    x = rng.standard_normal((N, C) + (IN[d] if ins is None else tuple(ins))).astype(dtype)
    return x


def grad_for(rng, x, size, dtype, **kw):
    return rng.standard_normal(output_shape(x.shape, size, **kw)).astype(dtype)


# ----------------------------------------------------------------------------- oracles


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_max_pool_against_oracle(case, dtype, rng):
    size, kw = kw_of(*case)
    x = data(rng, case[0], dtype)
    check_max(x, grad_for(rng, x, size, dtype, **kw), size, **kw)
    # many ties: small integers
    xi = rng.integers(-2, 3, size=x.shape).astype(dtype)
    check_max(xi, grad_for(rng, x, size, dtype, **kw), size, **kw)


@pytest.mark.parametrize("include", [True, False], ids=["count_pad", "no_count_pad"])
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_avg_pool_against_oracle(case, dtype, include, rng):
    size, kw = kw_of(*case)
    x = data(rng, case[0], dtype)
    check_avg(x, grad_for(rng, x, size, dtype, **kw), size, count_include_pad=include, **kw)


@pytest.mark.parametrize("p", ORDERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_lp_pool_against_oracle(case, dtype, p, rng):
    size, kw = kw_of(*case)
    x = data(rng, case[0], dtype)
    G = grad_for(rng, x, size, dtype, **kw)
    check_lp(x, G, size, p, **kw)
    # zeros among the samples (sign(0) = 0), some whole windows of zeros
    x[rng.random(x.shape) < 0.3] = 0
    x[..., :2] = 0
    check_lp(x, G, size, p, **kw)


def test_worked_example():
    x = np.array([[1, 3, -9, -22], [44, -10, -11, -1], [0, 10, 4, -3], [11, 9, 321, 99]],
                 dtype=float)[None, None]
    y = convlab.max_pool(x, 2, stride=2)
    assert np.array_equal(y, [[[[44, -1], [11, 321]]]])
    assert np.array_equal(convlab.max_pool(x.astype(np.float32), 2), y)
    G = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dx = convlab.max_pool_grad(G, x, 2)
    want = np.zeros((1, 1, 4, 4))
    want[0, 0, 1, 0], want[0, 0, 1, 3], want[0, 0, 3, 0], want[0, 0, 3, 2] = 1, 2, 3, 4
    assert np.array_equal(dx, want)


def test_examples_by_hand():
    """Small cases worked out by hand (ties, padding, count_include_pad, norms)."""
    x = np.array([[[1.0, 3.0, 3.0, 2.0]]])
    assert np.array_equal(convlab.max_pool_grad([[[10.0, 20.0]]], x, 2), [[[0, 10, 20, 0]]])
    # overlapping windows [1 3 3], [3 3 2] both won by the first 3
    assert np.array_equal(convlab.max_pool_grad(np.ones((1, 1, 2)), x, 3, stride=1),
                          [[[0, 2, 0, 0]]])
    # padding -inf: a window [-inf, -5] is won by -5 and its gradient goes there
    assert np.array_equal(convlab.max_pool(np.array([[[-5.0, -7.0]]]), 2, stride=1, padding=1),
                          [[[-5, -5, -7]]])
    assert np.array_equal(convlab.max_pool_grad(np.array([[[1.0, 2.0, 4.0]]]),
                                                np.array([[[-5.0, -7.0]]]), 2, stride=1,
                                                padding=1), [[[3, 4]]])
    x = np.array([[[2.0, 4.0, 6.0]]])
    assert np.array_equal(convlab.avg_pool(x, 2, stride=1, padding=1), [[[1, 3, 5, 3]]])
    assert np.array_equal(convlab.avg_pool(x, 2, stride=1, padding=1, count_include_pad=False),
                          [[[2, 3, 5, 6]]])
    assert np.array_equal(convlab.avg_pool_grad(np.ones((1, 1, 4)), (1, 1, 3), 2, stride=1,
                                                padding=1, count_include_pad=False),
                          [[[1.5, 1.0, 1.5]]])
    x = np.array([[[3.0, -4.0, 0.0, 0.0, 5.0, 12.0]]])
    assert np.array_equal(convlab.lp_pool(x, 2), [[[5, 0, 13]]])
    assert np.allclose(convlab.lp_pool_grad(np.ones((1, 1, 3)), x, 2),
                       [[[0.6, -0.8, 0, 0, 5 / 13, 12 / 13]]], rtol=1e-15, atol=0)
    assert np.array_equal(convlab.lp_pool(x, 3, p=1), [[[7, 17]]])
    assert np.array_equal(convlab.lp_pool_grad(np.ones((1, 1, 2)), x, 3, p=1),
                          [[[1, -1, 0, 0, 1, 1]]])
    assert np.array_equal(convlab.lp_pool(x, 3, p=np.inf), [[[4, 12]]])
    assert np.array_equal(convlab.lp_pool_grad(np.ones((1, 1, 2)), x, 3, p=np.inf),
                          [[[0, -1, 0, 0, 0, 1]]])


# ----------------------------------------------------------------------------- NaN, inf, ties


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_nan_and_inf(case, dtype, rng):
    """NaN wins a maximum and takes its gradient (the first NaN of the window); inf and NaN
    propagate through means and norms; everything agrees with the oracles."""
    size, kw = kw_of(*case)
    x = data(rng, case[0], dtype)
    flat = x.reshape(-1)
    picks = rng.choice(np.arange(1, flat.size), size=6, replace=False)
    flat[0] = np.nan          # the first sample is in the first window, whatever the stride
    flat[picks[:2]] = np.nan
    flat[picks[3]] = np.inf
    flat[picks[4]] = -np.inf
    G = grad_for(rng, x, size, dtype, **kw)
    y, _ = check_max(x, G, size, **kw)
    assert np.isnan(y[0, 0].flat[0])
    y, _ = check_avg(x, G, size, **kw)
    assert np.isnan(y[0, 0].flat[0])
    y = convlab.lp_pool(x, size, 2, **kw)
    assert np.isnan(y[0, 0].flat[0])
    for p in (1, math.inf):   # p = 1 and inf: the oracle's loops follow the same formula
        check_lp(x, G, size, p, **kw)


def test_nan_routing_by_hand():
    x = np.array([[[1.0, np.nan, 5.0, np.nan, -np.inf, -np.inf, 7.0, 7.0]]])
    y = convlab.max_pool(x, 4)
    assert np.isnan(y[0, 0, 0]) and y[0, 0, 1] == 7
    dx = convlab.max_pool_grad(np.array([[[2.0, 3.0]]]), x, 4)
    assert np.array_equal(dx, [[[0, 2, 0, 0, 0, 0, 3, 0]]])
    # a window of -inf only: its first sample wins
    dx = convlab.max_pool_grad(np.array([[[2.0, 3.0, 5.0, 1.0]]]), x, 2)
    assert np.array_equal(dx, [[[0, 2, 0, 3, 5, 0, 1, 0]]])
    # the 2 x 2 vector loops route the same way (NaN first in the second row of a window)
    x2 = np.array([[1.0, 2.0, 3.0, 9.0], [np.nan, np.nan, 9.0, 9.0]])[None, None]
    assert np.array_equal(convlab.max_pool_grad(np.ones((1, 1, 1, 2)), x2, 2),
                          [[[[0, 0, 0, 1], [1, 0, 0, 0]]]])


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_all_zero_windows_have_zero_lp_gradient(dtype):
    x = np.zeros((2, 2, 6, 6), dtype)
    x[0, 0, :2, :2] = [[1, -2], [0, 0]]
    for p in ORDERS:
        for kw in (dict(), dict(stride=1, padding=1)):
            G = np.ones(output_shape(x.shape, 2, **kw), dtype)
            y = convlab.lp_pool(x, 2, p, **kw)
            dx = convlab.lp_pool_grad(G, x, 2, p, **kw)
            assert np.isfinite(y).all() and np.isfinite(dx).all(), p
            assert np.count_nonzero(dx) <= 2, p       # only the two nonzero samples
            assert dx[0, 0, 1, 1] == 0 and dx[1].max() == 0 and dx[1].min() == 0


# ----------------------------------------------------------------------------- large p


@pytest.mark.parametrize("dtype, low, high, p", [(np.float32, 5, 15, 50), (np.float32, 5, 15, 200),
                                                 (np.float64, 50, 150, 200),
                                                 (np.float64, 1e30, 3e30, 50)])
def test_large_orders_do_not_overflow(dtype, low, high, p, rng):
    """|x|^p overflows the dtype (15^50 > float32's max, 150^200 and (1e30)^50 > float64's):
    the norm itself is finite and computed to the dtype's accuracy."""
    x = rng.uniform(low, high, (2, 2, 6, 8)) * rng.choice([-1, 1], (2, 2, 6, 8))
    x = x.astype(dtype)
    with np.errstate(over="ignore"):
        assert not np.isfinite((np.abs(x).astype(dtype) ** dtype(p)).sum())
    G = rng.standard_normal((2, 2, 3, 4)).astype(dtype)
    y, dx = check_lp(x, G, 2, p)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    y, dx = check_lp(x, grad_for(rng, x, 3, dtype, stride=1, padding=1), 3, p, stride=1,
                     padding=1)
    assert np.isfinite(y).all() and np.isfinite(dx).all()


# ----------------------------------------------------------------------------- calculus


def _distinct(rng, shape):
    """float64 samples at least 1 apart: a step of 1/4 never reorders a window."""
    return rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) - np.prod(shape) / 2


@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_finite_differences(case, rng):
    size, kw = kw_of(*case)
    d = case[0]
    ins = tuple(min(n, 7) for n in IN[d])
    x = _distinct(rng, (1, 2) + ins)
    G = grad_for(rng, x, size, np.float64, **kw)
    # max and mean are piecewise linear: central differences are exact up to the rounding
    # of <f(x +- h), G>, about eps * sum |f| |G| / h
    h = 0.25
    atol = 8 * eps(np.float64) * np.vdot(np.abs(G), np.abs(convlab.max_pool(x, size, **kw))) / h
    fd = central_difference_vjp(lambda v: convlab.max_pool(v, size, **kw), x, G, h=h)
    assert np.allclose(convlab.max_pool_grad(G, x, size, **kw), fd, rtol=0, atol=atol)
    for include in (True, False):
        fd = central_difference_vjp(lambda v: convlab.avg_pool(v, size, count_include_pad=include,
                                                               **kw), x, G, h=h)
        assert np.allclose(convlab.avg_pool_grad(G, x.shape, size, count_include_pad=include, **kw),
                           fd, rtol=0, atol=atol)
    # Lp is smooth away from zero and from ties of |x| (p = inf)
    magnitudes = 1 + rng.permutation(x.size).reshape(x.shape) / x.size   # distinct
    xs = magnitudes * rng.choice([-1, 1], x.shape)
    for p in (1, 1.5, 2, 3, 50, math.inf):
        h = 1e-6 if p != math.inf else 1 / (4 * x.size)
        fd = central_difference_vjp(lambda v: convlab.lp_pool(v, size, p, **kw), xs, G, h=h)
        got = convlab.lp_pool_grad(G, xs, size, p, **kw)
        assert np.allclose(got, fd, rtol=1e-6, atol=1e-7 * np.abs(G).sum()), p


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_adjoint_identities(case, dtype, rng):
    """avg_pool is linear: <avg_pool(x), G> == <x, avg_pool_grad(G)>. max_pool and lp_pool
    are not, but their gradients are the adjoints of their linearisations: <J dx, G> ==
    <dx, grad>, J dx the directional derivative (for max: dx at each window's winner, taken
    from the forward result's change along dx; for Lp: a central difference)."""
    size, kw = kw_of(*case)
    x = data(rng, case[0], dtype)
    G = grad_for(rng, x, size, dtype, **kw)
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    e = eps(dtype)
    for include in (True, False):
        y = convlab.avg_pool(x, size, count_include_pad=include, **kw)
        gx = convlab.avg_pool_grad(G, x.shape, size, count_include_pad=include, **kw)
        lhs, rhs = np.vdot(f64(y), f64(G)), np.vdot(f64(x), f64(gx))
        scale = np.vdot(np.abs(f64(x)), f64(convlab.avg_pool_grad(np.abs(G), x.shape, size,
                                                                  count_include_pad=include, **kw)))
        assert abs(lhs - rhs) <= 4 * (x.size + window_volume(x.shape, size)) * e * scale
    # max: x with distinct values, a small direction that reorders no window
    xd = _distinct(rng, x.shape).astype(dtype)
    direction = rng.uniform(-0.25, 0.25, x.shape).astype(dtype)
    jdx = f64(convlab.max_pool(f64(xd) + f64(direction), size, **kw)) - f64(convlab.max_pool(xd, size, **kw))
    gx = convlab.max_pool_grad(G, xd, size, **kw)
    assert np.isclose(np.vdot(jdx, f64(G)), np.vdot(f64(direction), f64(gx)),
                      rtol=1e-10 if dtype == np.float64 else 1e-5)
    # Lp in float64
    xs = rng.uniform(0.5, 2, x.shape) * rng.choice([-1, 1], x.shape)
    direction = rng.standard_normal(x.shape)
    G64 = f64(G)
    for p in (1.5, 2, 3, 50):
        t = 1e-6
        jdx = (convlab.lp_pool(xs + t * direction, size, p, **kw)
               - convlab.lp_pool(xs - t * direction, size, p, **kw)) / (2 * t)
        gx = convlab.lp_pool_grad(G64, xs, size, p, **kw)
        assert np.isclose(np.vdot(jdx, G64), np.vdot(direction, gx), rtol=1e-6, atol=1e-8), p


# ----------------------------------------------------------------------------- paths


@pytest.fixture
def generic_paths(monkeypatch):
    """Run with the vector loops (2 x 2 rows, and the windows of an output row inside the
    input) on or off, and with a chosen gradient kernel (None: the library's choice;
    "scatter" or "gather": that one, whatever the windows)."""
    def use(vectors, gradient):
        monkeypatch.setattr(_pooling, "_VECTORS", vectors)
        monkeypatch.setattr(_pooling, "_GRADIENT", gradient)
    return use


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 3, 9, 11), (1, 2, 6, 2), (1, 1, 2, 34),
                                   (1, 1, 5, 67), (2, 2, 3, 6, 40), (1, 1, 2, 3)])
def test_paths_give_the_same_bits(shape, dtype, generic_paths, rng):
    """The 2 x 2 vector loops, the generic window loops and the gathering gradient give the
    same bits (ties, NaN with different payloads, signed zeros, infinities included; a
    maximum is a selection, so even the NaN it returns is the same one; sums keep their
    NaNs but not necessarily their payloads); rows shorter and longer than a vector block,
    and not a whole number of blocks."""
    x = rng.integers(-3, 4, size=shape).astype(dtype)
    x[x == 3] = -0.0
    flat = x.reshape(-1)
    flat[rng.random(flat.size) < 0.05] = np.inf
    nans = np.flatnonzero(rng.random(flat.size) < 0.05)
    bits = flat.view(np.uint32 if dtype == np.float32 else np.uint64)
    quiet = np.array(np.nan, dtype).view(bits.dtype)
    bits[nans] = quiet | np.arange(1, nans.size + 1, dtype=bits.dtype)   # distinct payloads
    size = 2 if len(shape) == 4 else (1, 2, 2)
    kwargs = [dict(), dict(stride=size), dict(padding=0, stride=size)]
    G = rng.standard_normal(output_shape(shape, size)).astype(dtype)
    G[..., 0] = -0.0
    results = []
    for vectors, gradient in [(True, None), (False, None), (False, "scatter"), (False, "gather"),
                              (True, "scatter")]:
        generic_paths(vectors, gradient)
        out = []
        for kw in kwargs:
            out += [(same_bits, convlab.max_pool(x, size, **kw)),
                    (same_values, convlab.avg_pool(x, size, **kw)),
                    (same_bits, convlab.max_pool_grad(G, x, size, **kw)),
                    (same_bits, convlab.avg_pool_grad(G, shape, size, **kw))]
            for p in (1, 2, 3, math.inf):
                out += [(same_values, convlab.lp_pool_grad(G, x, size, p, **kw))]
        results.append(out)
    for which, other in enumerate(results[1:]):
        for i, ((same, a), (_, b)) in enumerate(zip(results[0], other)):
            assert same(a, b), (which, i)


def _with_specials(rng, x):
    """Zeros of both signs, infinities and NaNs with distinct payloads among the samples."""
    x = x.copy()
    x[rng.random(x.shape) < 0.15] = 0
    x[rng.random(x.shape) < 0.15] = -0.0
    x[rng.random(x.shape) < 0.03] = np.inf
    flat = x.reshape(-1)
    nans = np.flatnonzero(rng.random(flat.size) < 0.03)
    bits = flat.view(np.uint32 if x.dtype == np.float32 else np.uint64)
    bits[nans] = np.array(np.nan, x.dtype).view(bits.dtype) | np.arange(1, nans.size + 1,
                                                                        dtype=bits.dtype)
    return x


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("planes", [(1, 2), (4, 5)], ids=["few-planes", "many-planes"])
@pytest.mark.parametrize("case", CASES, ids=CASE_ID)
def test_kernels_agree(case, planes, dtype, generic_paths, rng):
    """Vector loops on or off, and the three gradient kernels (one pass over the cells of
    windows that do not overlap, plane by plane, row by row): the same bits. Each output
    is its window's samples in row-major order, each sample of a gradient 0 + its shares in
    row-major window order (signed zeros included; a maximum is a selection, so even its
    NaN is the same one; sums keep their NaNs but not necessarily their payloads)."""
    size, kw = kw_of(*case)
    x = _with_specials(rng, data(rng, case[0], dtype, *planes))
    G = grad_for(rng, x, size, dtype, **kw)
    G[rng.random(G.shape) < 0.2] = -0.0
    runs = []
    for vectors, gradient in [(True, None), (False, None), (True, "scatter"), (False, "scatter"),
                              (True, "gather"), (False, "gather")]:
        generic_paths(vectors, gradient)
        runs.append([(same_bits, convlab.max_pool(x, size, **kw)),
                     (same_values, convlab.avg_pool(x, size, **kw)),
                     (same_values, convlab.avg_pool(x, size, count_include_pad=False, **kw)),
                     (same_bits, convlab.max_pool_grad(G, x, size, **kw)),
                     (same_bits, convlab.avg_pool_grad(G, x.shape, size, **kw)),
                     (same_bits, convlab.avg_pool_grad(G, x.shape, size, count_include_pad=False,
                                                       **kw))]
                    + [(same_values, convlab.lp_pool(x, size, p, **kw)) for p in ORDERS]
                    + [(same_values, convlab.lp_pool_grad(G, x, size, p, **kw)) for p in ORDERS])
    for which, other in enumerate(runs[1:]):
        for i, ((same, a), (_, b)) in enumerate(zip(runs[0], other)):
            assert same(a, b), (which, i)


# ----------------------------------------------------------------------------- hypothesis


@st.composite
def pooling_problems(draw):
    d = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, 4)) for _ in range(d))
    strides = draw(st.none() | st.tuples(*(st.integers(1, 4) for _ in range(d))))
    pads = tuple(draw(st.integers(0, k // 2)) for k in sizes)
    ins = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 6)) for k, p in zip(sizes, pads))
    N = draw(st.integers(0, 2))
    C = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    p = draw(st.sampled_from(ORDERS))
    size = sizes[0] if d == 1 and draw(st.booleans()) else sizes
    return dict(shape=(N, C) + ins, size=size, kw=dict(stride=strides, padding=pads),
                dtype=dtype, p=p, include=draw(st.booleans()))


@given(problem=pooling_problems(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis(problem, seed):
    note(repr(problem))
    rng = np.random.default_rng(seed)
    shape, size, kw, dtype = problem["shape"], problem["size"], problem["kw"], problem["dtype"]
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.1] = 0
    out = output_shape(shape, size, **kw)
    assume(min(out[2:]) >= 1)
    G = rng.standard_normal(out).astype(dtype)
    check_max(x, G, size, **kw)
    check_avg(x, G, size, count_include_pad=problem["include"], **kw)
    check_lp(x, G, size, problem["p"], **kw)


# ----------------------------------------------------------------------------- zero size


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("NC", [(0, 3), (2, 0), (0, 0)])
def test_zero_size(NC, d):
    shape = NC + IN[d]
    x = np.zeros(shape, np.float32)
    out = output_shape(shape, 2, stride=1, padding=1)
    for f in (convlab.max_pool, convlab.avg_pool, convlab.lp_pool):
        y = f(x, 2, stride=1, padding=1)
        assert y.shape == out and y.dtype == np.float32
    G = np.zeros(out, np.float32)
    for dx in (convlab.max_pool_grad(G, x, 2, stride=1, padding=1),
               convlab.avg_pool_grad(G, shape, 2, stride=1, padding=1),
               convlab.lp_pool_grad(G, x, 2, 3, stride=1, padding=1)):
        assert dx.shape == shape and dx.dtype == np.float32


# ----------------------------------------------------------------------------- layouts, dtypes


X_SHAPE = (3, 2, 7, 8)
KWS = {"pairs": (2, dict()), "overlap": (3, dict(stride=(1, 2), padding=1))}


def _base(rng, dtype, size, kw):
    x = rng.standard_normal(X_SHAPE).astype(dtype)
    return dict(x=x, grad_out=rng.standard_normal(output_shape(X_SHAPE, size, **kw)).astype(dtype))


CALLS = {
    "max_pool": (("x",), lambda a, size, **kw: convlab.max_pool(a["x"], size, **kw)),
    "avg_pool": (("x",), lambda a, size, **kw: convlab.avg_pool(a["x"], size, **kw)),
    "lp_pool": (("x",), lambda a, size, **kw: convlab.lp_pool(a["x"], size, 3, **kw)),
    "max_pool_grad": (("grad_out", "x"),
                      lambda a, size, **kw: convlab.max_pool_grad(a["grad_out"], a["x"], size, **kw)),
    "avg_pool_grad": (("grad_out",),
                      lambda a, size, **kw: convlab.avg_pool_grad(a["grad_out"], X_SHAPE, size, **kw)),
    "lp_pool_grad": (("grad_out", "x"),
                     lambda a, size, **kw: convlab.lp_pool_grad(a["grad_out"], a["x"], size, 3, **kw)),
}


@pytest.mark.parametrize("windows", list(KWS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("name", list(CALLS))
def test_layouts_give_same_result(name, dtype, layout, windows, rng):
    """Any memory layout gives the C-contiguous copy's result bit for bit; inputs untouched."""
    keys, function = CALLS[name]
    size, kw = KWS[windows]
    base = _base(rng, dtype, size, kw)
    for key in keys:
        args = dict(base)
        args[key] = LAYOUTS[layout](base[key])
        before = args[key].tobytes(order="A")
        got = function(args, size, **kw)
        want = function({k: np.ascontiguousarray(v) for k, v in args.items()}, size, **kw)
        assert args[key].tobytes(order="A") == before
        assert got.dtype == want.dtype and got.dtype.isnative and got.flags.c_contiguous
        assert same_bits(got, want), f"{key} as {layout}"


@pytest.mark.parametrize("name", list(CALLS))
def test_promotion_and_array_likes(name, rng):
    """float16 computes in float32, integers and bool in float64, lists are accepted."""
    keys, function = CALLS[name]
    size, kw = KWS["overlap"]
    base = _base(rng, np.float64, size, kw)
    ints = {k: np.round(v * 3).astype(np.int16) for k, v in base.items()}
    got = function(ints, size, **kw)
    assert got.dtype == np.float64
    assert same_bits(got, function({k: v.astype(np.float64) for k, v in ints.items()}, size, **kw))
    assert same_bits(function({k: v.tolist() for k, v in ints.items()}, size, **kw), got)
    half = {k: v.astype(np.float16) for k, v in base.items()}
    got = function(half, size, **kw)
    assert got.dtype == np.float32
    assert same_bits(got, function({k: v.astype(np.float32) for k, v in half.items()}, size, **kw))
    bools = {k: v > 0 for k, v in base.items()}
    assert function(bools, size, **kw).dtype == np.float64
    if len(keys) == 2:   # mixed precisions: float64 wins
        mixed = {"grad_out": base["grad_out"].astype(np.float32), "x": base["x"]}
        assert function(mixed, size, **kw).dtype == np.float64
        mixed = {"grad_out": base["grad_out"], "x": base["x"].astype(np.float32)}
        assert function(mixed, size, **kw).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.dtype(object), np.dtype("U3"), np.dtype("M8[s]"),
                                   np.dtype(np.complex128), np.dtype(np.complex64),
                                   np.dtype(np.longdouble)], ids=str)
@pytest.mark.parametrize("name", list(CALLS))
def test_unsupported_dtypes(name, dtype, rng):
    keys, function = CALLS[name]
    size, kw = KWS["pairs"]
    for key in keys:
        args = _base(rng, np.float64, size, kw)
        args[key] = bad_dtype_array(dtype, args[key].shape)
        with pytest.raises(TypeError, match=re.escape(key)):
            function(args, size, **kw)


@pytest.mark.parametrize("per_thread", ["default", 1], ids=["default", "small-tasks"])
def test_workers_and_threads_give_identical_bits(per_thread, rng, monkeypatch):
    """Every worker count gives the same bits; calls from several Python threads agree
    (also with the small problems spread over the threads, which the library runs on one
    thread by default)."""
    if per_thread != "default":
        monkeypatch.setattr(_pooling, "_SAMPLES_PER_THREAD", per_thread)
    base = {}
    for windows, (size, kw) in KWS.items():
        base[windows] = _base(rng, np.float32, size, kw)
        base[windows]["x"][0, 0, 0, :3] = np.nan
    big = rng.standard_normal((8, 8, 64, 60)).astype(np.float32)
    big_g = rng.standard_normal((8, 8, 32, 30)).astype(np.float32)
    lp_g = rng.standard_normal(output_shape(big.shape, (2, 3), 2, 1)).astype(np.float32)

    def run(workers):
        out = []
        for windows, (size, kw) in KWS.items():
            out += [function(base[windows], size, workers=workers, **kw)
                    for function in (c[1] for c in CALLS.values())]
        out += [convlab.max_pool(big, 2, workers=workers), convlab.avg_pool(big, 2, workers=workers),
                convlab.max_pool_grad(big_g, big, 2, workers=workers),
                convlab.max_pool_grad(convlab.max_pool(big, 3, stride=1, workers=workers), big, 3,
                                      stride=1, workers=workers),
                convlab.lp_pool_grad(lp_g, big, (2, 3), 2.5, stride=(2, 2), padding=1,
                                     workers=workers)]
        return out

    reference = run(1)
    for workers in (2, 3, -1, None):
        for got, want in zip(run(workers), reference):
            assert same_bits(got, want), workers
    with ThreadPoolExecutor(4) as pool:
        for values in pool.map(lambda _: run(None), range(6)):
            for got, want in zip(values, reference):
                assert same_bits(got, want)


# ----------------------------------------------------------------------------- errors


def _max(x=np.ones(X_SHAPE), size=2, **kw):
    return lambda: convlab.max_pool(x, size, **kw)


def _lp(p, **kw):
    return lambda: convlab.lp_pool(np.ones(X_SHAPE), 2, p, **kw)


G_SHAPE = output_shape(X_SHAPE, 2)     # (3, 2, 3, 4)

VALUE_ERRORS = {
    "x_ndim_2": (_max(x=np.ones((3, 4))), ["x", "3, 4 or 5 dimensions", "(3, 4)"]),
    "x_ndim_6": (_max(x=np.ones((1,) * 6)), ["x", "3, 4 or 5 dimensions", "(1, 1, 1, 1, 1, 1)"]),
    "size_0": (_max(size=0), ["size", ">= 1", "0"]),
    "size_negative": (_max(size=(2, -1)), ["size", ">= 1", "(2, -1)"]),
    "size_count": (_max(size=(2, 2, 2)), ["size", "2", "3 entries"]),
    "stride_0": (_max(stride=0), ["stride", ">= 1", "0"]),
    "stride_count": (_max(stride=(1,)), ["stride", "1 entries"]),
    "padding_negative": (_max(padding=-1), ["padding", "non-negative", "-1"]),
    "padding_too_large": (_max(padding=(1, 2)), ["padding", "size // 2", "(1, 2)", "(2, 2)"]),
    "padding_too_large_1": (_max(size=3, padding=2), ["padding", "size // 2", "2"]),
    "padding_size_1": (_max(size=1, padding=1), ["padding", "size // 2"]),
    "padding_string": (_max(padding="same"), ["padding", "same"]),
    "padding_pairs": (_max(padding=((1, 1), (0, 0))), ["padding", "pairs"]),
    "padding_count": (_max(padding=(1, 1, 1)), ["padding", "3 entries"]),
    "output_too_small": (_max(x=np.ones((1, 1, 2, 9)), size=3), ["input size 2", "window size 3"]),
    "output_too_small_padded": (_max(x=np.ones((1, 1, 9, 1)), size=(2, 4), padding=(0, 1)),
                                ["input size 1", "padding 1", "window size 4"]),
    "empty_spatial": (_max(x=np.ones((2, 2, 0, 4)), size=1), ["x", "empty", "(2, 2, 0, 4)"]),
    "size_huge": (_max(size=2**50, padding=2**49), ["size", "at most"]),
    "p_below_1": (_lp(0.5), ["p", ">= 1", "0.5"]),
    "p_zero": (_lp(0), ["p", ">= 1"]),
    "p_nan": (_lp(float("nan")), ["p", ">= 1", "nan"]),
    "p_minus_inf": (_lp(-math.inf), ["p", ">= 1", "-inf"]),
    "grad_shape": (lambda: convlab.max_pool_grad(np.ones((3, 2, 4, 4)), np.ones(X_SHAPE), 2),
                   ["grad_out", str(G_SHAPE), "(3, 2, 4, 4)"]),
    "grad_shape_stride": (lambda: convlab.max_pool_grad(np.ones(G_SHAPE), np.ones(X_SHAPE), 2,
                                                        stride=1),
                          ["grad_out", "(3, 2, 6, 7)", str(G_SHAPE)]),
    "lp_grad_shape": (lambda: convlab.lp_pool_grad(np.ones((3, 2, 4)), np.ones(X_SHAPE), 2),
                      ["grad_out", str(G_SHAPE), "(3, 2, 4)"]),
    "avg_grad_shape": (lambda: convlab.avg_pool_grad(np.ones(G_SHAPE), (3, 2, 9, 8), 2),
                       ["grad_out", "(3, 2, 4, 4)", str(G_SHAPE)]),
    "avg_input_shape_ndim": (lambda: convlab.avg_pool_grad(np.ones(G_SHAPE), (3, 2), 2),
                             ["input_shape", "3, 4 or 5 dimensions", "(3, 2)"]),
    "avg_input_shape_negative": (lambda: convlab.avg_pool_grad(np.ones(G_SHAPE), (3, 2, -7, 8), 2),
                                 ["input_shape", "non-negative"]),
    "workers_0": (_max(workers=0), ["workers", "0"]),
}

TYPE_ERRORS = {
    "size_float": (_max(size=2.0), ["size", "2.0"]),
    "size_bool": (_max(size=True), ["size", "True"]),
    "size_string": (_max(size="2"), ["size", "'2'"]),
    "size_none": (_max(size=None), ["size", "None"]),
    "stride_float": (_max(stride=(1.5, 1)), ["stride", "1.5"]),
    "padding_float": (_max(padding=0.5), ["padding", "0.5"]),
    "padding_none": (_max(padding=None), ["padding", "None"]),
    "p_string": (_lp("2"), ["p", "'2'"]),
    "p_complex": (_lp(2j), ["p", "2j"]),
    "p_bool": (_lp(True), ["p", "True"]),
    "p_none": (_lp(None), ["p", "None"]),
    "avg_input_shape_float": (lambda: convlab.avg_pool_grad(np.ones(G_SHAPE), (3, 2, 7.0, 8), 2),
                              ["input_shape", "7.0"]),
    "avg_input_shape_int": (lambda: convlab.avg_pool_grad(np.ones(G_SHAPE), 7, 2),
                            ["input_shape", "7"]),
    "x_ragged": (_max(x=[[[1.0, 2.0], [3.0]]]), ["x"]),
    "workers_string": (_max(workers="2"), ["workers", "'2'"]),
}


@pytest.mark.parametrize("case", list(VALUE_ERRORS))
def test_value_errors(case):
    function, fragments = VALUE_ERRORS[case]
    with pytest.raises(ValueError) as info:
        function()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.parametrize("case", list(TYPE_ERRORS))
def test_type_errors(case):
    function, fragments = TYPE_ERRORS[case]
    with pytest.raises(TypeError) as info:
        function()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


@pytest.mark.parametrize("name", ["max_pool", "avg_pool", "lp_pool", "max_pool_grad",
                                  "avg_pool_grad", "lp_pool_grad"])
def test_errors_name_the_function_and_come_first(name):
    """Each function checks its own arguments (the message names it), the p of the Lp
    functions included, before touching the data."""
    x = np.ones((2, 2, 5))
    bad = np.ones((2, 2, 5, 5, 5, 5))
    calls = {
        "max_pool": lambda a: convlab.max_pool(a, 2),
        "avg_pool": lambda a: convlab.avg_pool(a, 2),
        "lp_pool": lambda a: convlab.lp_pool(a, 2),
        "max_pool_grad": lambda a: convlab.max_pool_grad(np.ones((2, 2, 2)), a, 2),
        "avg_pool_grad": lambda a: convlab.avg_pool_grad(np.ones((2, 2, 2)), a.shape, 2),
        "lp_pool_grad": lambda a: convlab.lp_pool_grad(np.ones((2, 2, 2)), a, 2),
    }
    calls[name](x)
    with pytest.raises(ValueError, match=name):
        calls[name](bad)
    if name.startswith("lp"):
        args = (np.ones((2, 2, 2)), x) if name.endswith("grad") else (x,)
        with pytest.raises(ValueError, match="p must be >= 1"):
            getattr(convlab, name)(*args, 2, 0.9)


def test_memory_error_before_allocating():
    """A broadcast view costs nothing, its pooled result would not fit: MemoryError first."""
    x = np.broadcast_to(np.float32(1), (10**6, 10**6, 4, 4))
    with pytest.raises(MemoryError):
        convlab.max_pool(x, 2)
    with pytest.raises(MemoryError):
        convlab.avg_pool_grad(np.broadcast_to(np.float32(1), (10**6, 10**6, 2, 2)),
                              (10**6, 10**6, 4, 4), 2)


# ----------------------------------------------------------------------------- every sample


@pytest.mark.parametrize("gradient", [None, "scatter", "gather"])
@pytest.mark.parametrize("size, kw", [(2, {}), (3, {}), (2, dict(padding=1)), (3, dict(stride=2)),
                                      (2, dict(stride=3))], ids=str)
def test_gradients_write_every_sample(size, kw, gradient, generic_paths, rng):
    """Large results come from convlab's pool of freed blocks, which hold old data: every
    sample of a gradient must be written. A block full of NaN is handed back to the pool
    right before each gradient that will take it."""
    from convlab._kernels import _memory

    generic_paths(True, gradient)
    shape = (1, 8, 512, 2 * (_memory.MIN_POOLED_BYTES // (8 * 8 * 512 * 2)) + 2)
    assert math.prod(shape) * 8 >= _memory.MIN_POOLED_BYTES
    x = rng.standard_normal(shape)
    G = rng.standard_normal(output_shape(shape, size, **kw))
    for function in (lambda: convlab.max_pool_grad(G, x, size, **kw),
                     lambda: convlab.avg_pool_grad(G, shape, size, **kw),
                     lambda: convlab.lp_pool_grad(G, x, size, 3, **kw)):
        garbage = _memory.empty(shape, np.float64)
        garbage[...] = np.nan
        del garbage
        dx = function()
        assert not np.isnan(dx).any()
