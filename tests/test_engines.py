"""The private engines against a plain numpy oracle of the one operation they compute:

    out[..., i] = sum_j a[..., offset + i * stride + j * dilation] * k[..., j]

per trailing axis, over the taps whose sample lies inside ``a``. The public functions are
tested against SciPy elsewhere; these tests reach the paths the public API only meets for
particular shapes (tap splitting, more than three axes, dilation, offsets beyond the input,
both adjoints).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from convlab import _methods


def reference_op(a, k, offsets, lengths, strides, dilations):
    """Zero-pad ``a`` so every window is inside, take strided, dilated windows, contract."""
    d = len(offsets)
    nb = a.ndim - d
    taps = k.shape[nb:]
    pad = []
    for n, t, off, m, s, dl in zip(a.shape[nb:], taps, offsets, lengths, strides, dilations):
        before = max(0, -off)
        after = max(0, off + (m - 1) * s + (t - 1) * dl + 1 - n)
        pad.append((before, after))
    padded = np.pad(a, [(0, 0)] * nb + pad)
    windows = padded
    for axis, (off, m, s, dl, t, (before, _)) in enumerate(zip(offsets, lengths, strides, dilations, taps, pad)):
        ax = nb + axis
        span = (t - 1) * dl + 1
        start = off + before
        windows = np.take(sliding_window_view(windows, span, axis=ax), np.arange(m) * s + start, axis=ax)
        windows = np.take(windows, np.arange(t) * dl, axis=-1)
    # windows: (*batch, *lengths, *taps) with the tap axes last, in axis order.
    batch_letters = "abcdefgh"[:nb]
    out_letters = "ijkl"[:d]
    tap_letters = "mnop"[:d]
    spec = f"{batch_letters}{out_letters}{tap_letters},{batch_letters}{tap_letters}->{batch_letters}{out_letters}"
    batch = np.broadcast_shapes(windows.shape[:nb], k.shape[:nb])
    windows = np.broadcast_to(windows, batch + windows.shape[nb:])
    k = np.broadcast_to(k, batch + k.shape[nb:])
    return np.einsum(spec, windows, k)


def reference_adjoint(g, k, offsets, strides, sizes):
    """Scatter form of the gradient with respect to ``a`` (dilation 1)."""
    d = len(offsets)
    nb = g.ndim - d
    batch = np.broadcast_shapes(g.shape[:nb], k.shape[:nb])
    g = np.broadcast_to(g, batch + g.shape[nb:])
    k = np.broadcast_to(k, batch + k.shape[nb:])
    grad = np.zeros(batch + tuple(sizes))
    for i in itertools.product(*(range(m) for m in g.shape[nb:])):
        for j in itertools.product(*(range(t) for t in k.shape[nb:])):
            p = tuple(off + ii * s + jj for off, ii, s, jj in zip(offsets, i, strides, j))
            if all(0 <= pp < n for pp, n in zip(p, sizes)):
                grad[(Ellipsis,) + p] += g[(Ellipsis,) + i] * k[(Ellipsis,) + j]
    return grad


ENGINES = [_methods.direct_correlate, _methods.fft_correlate]


def tolerance(dtype, terms):
    return 50 * np.finfo(dtype).eps * max(terms, 1) ** 0.5


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "a_shape, k_shape, offsets, lengths, strides, dilations",
    [
        ((30,), (4,), [-3], [12], (3,), (2,)),
        ((2, 30), (1, 5), [5], [7], (2,), (3,)),               # starts inside, batch broadcast
        ((9, 13), (3, 4), [-4, -6], [6, 9], (2, 2), (1, 2)),   # starts before the input
        ((9, 13), (3, 4), [7, 10], [5, 4], (1, 1), (1, 1)),    # runs past the end
        ((5, 6, 7), (2, 3, 2), [-1, 0, -2], [5, 3, 4], (1, 2, 3), (2, 1, 3)),
        ((4, 5, 4, 6), (2, 2, 3, 2), [-1, 0, -2, 1], [4, 4, 3, 3], (1, 1, 1, 2), (1, 2, 1, 1)),
        ((3, 1, 20), (1, 4, 5), [-2], [9], (2,), (1,)),         # two batch axes, each broadcast
    ],
)
def test_engine_matches_reference(engine, dtype, a_shape, k_shape, offsets, lengths, strides, dilations):
    rng = np.random.default_rng(7)
    a = rng.standard_normal(a_shape).astype(dtype)
    k = rng.standard_normal(k_shape).astype(dtype)
    expected = reference_op(a.astype(np.float64), k.astype(np.float64), offsets, lengths, strides, dilations)
    result = engine(a, k, offsets, lengths, strides, dilations, np.dtype(dtype), 2)
    assert result.dtype == dtype
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, atol=tolerance(dtype, k.size) * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "a_shape, k_shape",
    [((300, 500), (299, 497)), ((5000,), (4990,)), ((2, 64, 64), (1, 60, 61))],
)
def test_tap_splitting(dtype, a_shape, k_shape):
    """Few output lines over a long kernel: the kernel splits the taps into shares; the sum
    of the shares is the same operation (and does not depend on the thread count)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal(a_shape).astype(dtype)
    k = rng.standard_normal(k_shape).astype(dtype)
    d = 2 if len(a_shape) == 3 else len(a_shape)
    nb = len(a_shape) - d
    lengths = [n - t + 1 for n, t in zip(a.shape[nb:], k.shape[nb:])]
    ones = (1,) * d
    expected = reference_op(a.astype(np.float64), k.astype(np.float64), [0] * d, lengths, ones, ones)
    serial = _methods.direct_correlate(a, k, [0] * d, lengths, ones, ones, np.dtype(dtype), 1)
    parallel = _methods.direct_correlate(a, k, [0] * d, lengths, ones, ones, np.dtype(dtype), 2)
    np.testing.assert_array_equal(serial, parallel)
    np.testing.assert_allclose(serial, expected, atol=tolerance(dtype, k.size) * np.abs(expected).max())


@pytest.mark.parametrize("adjoint", [_methods.direct_correlate_adjoint, _methods.fft_correlate_adjoint])
@pytest.mark.parametrize(
    "g_shape, k_shape, offsets, strides, sizes",
    [
        ((7,), (3,), [-2], (2,), (12,)),
        ((5,), (6,), [-5], (3,), (9,)),          # kernel longer than the stride phases
        ((4, 5), (3, 2), [-1, 0], (2, 3), (9, 13)),
        ((2, 3, 4), (1, 2, 3), [0, -2], (3, 1), (8, 6)),
        ((3, 3, 2), (2, 2, 2), [1, -1, 0], (1, 2, 2), (6, 6, 5)),
    ],
)
def test_adjoint_matches_scatter(adjoint, g_shape, k_shape, offsets, strides, sizes):
    rng = np.random.default_rng(11)
    g = rng.standard_normal(g_shape)
    k = rng.standard_normal(k_shape)
    expected = reference_adjoint(g, k, offsets, strides, sizes)
    result = adjoint(g, k, offsets, strides, sizes, np.dtype(np.float64), 2)
    np.testing.assert_allclose(result, expected, atol=1e-12 * max(1.0, np.abs(expected).max()))


@settings(max_examples=60)
@given(
    data=st.data(),
    d=st.integers(1, 3),
)
def test_engines_agree_hypothesis(data, d):
    n = data.draw(st.lists(st.integers(1, 9), min_size=d, max_size=d))
    t = data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d))
    strides = tuple(data.draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    dilations = tuple(data.draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    offsets = [data.draw(st.integers(-(tt - 1) * dl - 2, nn + 1)) for nn, tt, dl in zip(n, t, dilations)]
    lengths = [data.draw(st.integers(1, 8)) for _ in range(d)]
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    k = rng.standard_normal(t)
    expected = reference_op(a, k, offsets, lengths, strides, dilations)
    for engine in ENGINES:
        result = engine(a, k, offsets, lengths, strides, dilations, np.dtype(np.float64), 1)
        np.testing.assert_allclose(result, expected, atol=1e-12 * max(1.0, np.abs(a).max() * np.abs(k).sum()))
