"""Separable correlation and convolution at the signal level (SPEC §2): correlate_separable,
convolve_separable, their gradients and separable_factors.

Oracles: ``scipy.signal.correlate`` / ``convolve`` with the dense outer-product kernel,
``scipy.ndimage.correlate1d`` passes, ``numpy.linalg.svd`` for the factors, central
differences of the dense scipy forward for the gradients, and the adjoint identity.
Tolerances: ``c * n * eps * sum |terms|`` with ``sum |terms|`` from the dense oracle on
absolute values.
"""

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
from hypothesis import given, note
from hypothesis import strategies as st

import convlab
from _reference import assert_matches, central_difference_vjp, random_array

FLOATS = (np.float32, np.float64)
ALL = (np.float32, np.float64, np.complex64, np.complex128)
DTYPE_ID = lambda t: np.dtype(t).name  # noqa: E731
MODES = ("full", "same", "valid")


def dense(kernels, ndim, axes):
    """The outer-product kernel, shaped to broadcast over the axes that are not convolved."""
    shape = [1] * ndim
    full = np.ones([1] * ndim, dtype=np.result_type(*kernels))
    for ax, kern in zip(axes, kernels):
        s = list(shape)
        s[ax] = len(kern)
        full = full * np.asarray(kern).reshape(s)
    return full


def oracle(function, x, kernels, mode, axes, stride):
    """scipy.signal with the dense kernel, the stride as slicing; computed in complex128 or
    float64 from the same values."""
    ndim = x.ndim
    K = dense(kernels, ndim, axes)
    wide = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(K) else np.float64
    scipy_fn = scipy.signal.correlate if function == "correlate" else scipy.signal.convolve
    xx, KK = np.asarray(x, wide), np.asarray(K, wide)
    if ndim and sorted(axes) != list(range(ndim)):
        y = _axes_oracle(scipy_fn, xx, KK, mode, axes)   # scipy.signal.correlate has no axes
    else:
        y = scipy_fn(xx, KK, mode=mode, method="direct")
    index = [slice(None)] * ndim
    for ax, s in zip(axes, stride):
        index[ax] = slice(None, None, s)
    return y[tuple(index)]


def _axes_oracle(scipy_fn, x, K, mode, axes):
    """Loop over the non-convolved axes (K is broadcast along them)."""
    other = [ax for ax in range(x.ndim) if ax not in axes]
    xm = np.moveaxis(x, other, range(len(other)))
    Km = np.moveaxis(K, other, range(len(other)))[(0,) * len(other)]
    out = [scipy_fn(xm[idx], Km, mode=mode, method="direct") for idx in np.ndindex(*xm.shape[:len(other)])]
    out = np.array(out).reshape(xm.shape[:len(other)] + out[0].shape)
    return np.moveaxis(out, range(len(other)), other)


def tolerance(function, x, kernels, mode, axes, stride, dtype):
    absk = [np.abs(np.asarray(k)) for k in kernels]
    scale = np.abs(oracle(function, np.abs(x), absk, mode, axes, stride))
    terms = int(np.prod([len(k) for k in kernels])) + 2
    return 8 * terms * np.finfo(np.dtype(dtype)).eps * scale + np.finfo(np.dtype(dtype)).tiny


CASES = [
    ((17,), (4,), None),
    ((12, 11), (3, 4), None),
    ((9, 7), (5, 2), (1, 0)),
    ((6, 5, 7), (3, 2, 4), None),
    ((3, 10, 9), (4, 3), (1, 2)),      # batch axis 0, not convolved
    ((8, 4, 9), (2, 5), (-1, 0)),      # axes out of order, negative
]


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", ALL, ids=DTYPE_ID)
@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_matches_dense_scipy(function, dtype, case, mode, stride, rng):
    shape, lengths, axes = case
    x = random_array(rng, shape, dtype)
    kernels = [random_array(rng, (n,), dtype) for n in lengths]
    norm_axes = tuple(a % len(shape) for a in (axes if axes is not None else range(len(shape))))
    strides = (stride,) * len(kernels)
    fn = getattr(convlab, f"{function}_separable")
    got = fn(x, kernels, mode, stride=stride, axes=axes)
    want = oracle(function, x, kernels, mode, norm_axes, strides)
    assert got.dtype == np.dtype(dtype)
    assert_matches(got, want, tolerance(function, x, kernels, mode, norm_axes, strides, dtype))


@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_valid_swap_rule(function, rng):
    """The kernel larger than the signal along every axis: SciPy's swap, as the dense call."""
    x = random_array(rng, (3, 4), np.float64)
    kernels = [random_array(rng, (7,), np.float64), random_array(rng, (6,), np.float64)]
    got = getattr(convlab, f"{function}_separable")(x, kernels, "valid")
    want = oracle(function, x, kernels, "valid", (0, 1), (1, 1))
    assert_matches(got, want, 1e-12 * (1 + np.abs(want)))
    with pytest.raises(ValueError, match="valid"):
        getattr(convlab, f"{function}_separable")(x, [kernels[0], np.ones(2)], "valid")


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_matches_ndimage_correlate1d_passes(dtype, rng):
    """'same' with odd kernels is scipy.ndimage.correlate1d with zero extension, axis by axis."""
    x = random_array(rng, (23, 19, 6), dtype)
    kernels = [random_array(rng, (n,), dtype) for n in (5, 3, 7)]
    want = x.astype(np.float64)
    for ax, k in enumerate(kernels):
        want = scipy.ndimage.correlate1d(want, k.astype(np.float64), axis=ax, mode="constant")
    got = convlab.correlate_separable(x, kernels, "same")
    assert_matches(got, want, tolerance("correlate", x, kernels, "same", (0, 1, 2), (1, 1, 1), dtype))


def test_dtype_promotion(rng):
    x = np.arange(20, dtype=np.int8).reshape(4, 5)
    k = [np.array([1, 2], np.int16), np.array([1.0, -1.0], np.float32)]
    got = convlab.correlate_separable(x, k)
    assert got.dtype == np.float64
    assert_matches(got, oracle("correlate", x.astype(float), [k[0].astype(float), k[1].astype(float)],
                               "full", (0, 1), (1, 1)), 1e-12)
    half = convlab.correlate_separable(x.astype(np.float16), [k[1].astype(np.float16)] * 2)
    assert half.dtype == np.float32


def test_layouts_and_workers_give_same_result(rng):
    x = random_array(rng, (9, 8, 7), np.float64)
    kernels = [random_array(rng, (n,), np.float64) for n in (3, 4, 2)]
    want = convlab.correlate_separable(x, kernels, "same", stride=(1, 2, 1))
    views = [np.asfortranarray(x), np.flip(np.ascontiguousarray(np.flip(x))), x.astype(">f8")]
    for view in views:
        got = convlab.correlate_separable(view, [k[::-1].copy()[::-1] for k in kernels], "same",
                                          stride=(1, 2, 1))
        assert np.array_equal(got, want)
    for workers in (1, 2, -1):
        assert np.array_equal(convlab.correlate_separable(x, kernels, "same", stride=(1, 2, 1),
                                                          workers=workers), want)


# ------------------------------------------------------------------------------ gradients


GRAD_CASES = [
    ((9,), (3,), None, "full", 1),
    ((6, 7), (3, 2), None, "same", (2, 1)),
    ((7, 5), (2, 4), (1, 0), "valid", 1),
    ((3, 5, 4), (2, 3), (2, 1), "full", (1, 2)),
    ((4, 3, 5), (2, 2, 3), None, "same", 1),
]


@pytest.mark.parametrize("function", ["correlate", "convolve"])
@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
def test_gradients_by_finite_differences(function, case, rng):
    shape, lengths, axes, mode, stride = case
    x = random_array(rng, shape, np.float64)
    kernels = [random_array(rng, (n,), np.float64) for n in lengths]
    norm_axes = tuple(a % len(shape) for a in (axes if axes is not None else range(len(shape))))
    strides = tuple(stride if np.ndim(stride) else (stride,) * len(kernels))
    forward = getattr(convlab, f"{function}_separable")
    grad = getattr(convlab, f"{function}_separable_grad")
    y = forward(x, kernels, mode, stride=stride, axes=axes)
    G = random_array(rng, y.shape, np.float64)
    gx, gks = grad(G, x, kernels, mode, stride=stride, axes=axes)
    h = 2.0 ** -3

    def f_x(a):
        return oracle(function, a, kernels, mode, norm_axes, strides)

    fd_x = central_difference_vjp(f_x, x, G, h)
    assert_matches(gx, fd_x, 1e-9 * (1 + np.abs(fd_x).max()))
    for i, k in enumerate(kernels):
        def f_k(v, i=i):
            ks = list(kernels)
            ks[i] = v
            return oracle(function, x, ks, mode, norm_axes, strides)

        fd_k = central_difference_vjp(f_k, k, G, h)
        assert gks[i].shape == k.shape
        assert_matches(gks[i], fd_k, 1e-9 * (1 + np.abs(fd_k).max()))
    assert np.abs(fd_x).max() > 0


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("function", ["correlate", "convolve"])
@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
def test_adjoint_identity(case, function, dtype, rng):
    """<f(x, k), G> == <x, grad_x> == <k_i, grad_k_i> for every kernel (f is linear in each)."""
    shape, lengths, axes, mode, stride = case
    x = random_array(rng, shape, dtype)
    kernels = [random_array(rng, (n,), dtype) for n in lengths]
    y = getattr(convlab, f"{function}_separable")(x, kernels, mode, stride=stride, axes=axes)
    G = random_array(rng, y.shape, dtype)
    gx, gks = getattr(convlab, f"{function}_separable_grad")(G, x, kernels, mode, stride=stride,
                                                             axes=axes)
    assert gx.dtype == np.dtype(dtype) and all(g.dtype == np.dtype(dtype) for g in gks)
    f64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    lhs = float(np.sum(f64(y) * f64(G)))
    scale = float(np.sum(np.abs(f64(y)) * np.abs(f64(G)))) + 1.0
    terms = int(np.prod(lengths)) + G.size + x.size
    tol = 8 * np.finfo(dtype).eps * terms * scale
    assert abs(lhs - float(np.sum(f64(x) * f64(gx)))) <= tol
    for k, gk in zip(kernels, gks):
        assert abs(lhs - float(np.sum(f64(k) * f64(gk)))) <= tol


# ------------------------------------------------------------------------------ hypothesis


@st.composite
def separable_problems(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    nax = draw(st.integers(1, ndim))
    axes = tuple(draw(st.permutations(range(ndim)))[:nax])
    lengths = tuple(draw(st.integers(1, 6)) for _ in axes)
    mode = draw(st.sampled_from(MODES))
    if mode == "valid":
        larger = draw(st.booleans())
        lengths = tuple(min(k, shape[ax]) if larger else max(k, shape[ax])
                        for k, ax in zip(lengths, axes))
    stride = tuple(draw(st.integers(1, 3)) for _ in axes)
    dtype = draw(st.sampled_from(ALL))
    function = draw(st.sampled_from(["correlate", "convolve"]))
    return shape, axes, lengths, mode, stride, dtype, function


@given(problem=separable_problems(), seed=st.integers(0, 2**32 - 1))
def test_hypothesis_against_dense(problem, seed):
    note(repr(problem))
    shape, axes, lengths, mode, stride, dtype, function = problem
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype)
    kernels = [random_array(rng, (n,), dtype) for n in lengths]
    got = getattr(convlab, f"{function}_separable")(x, kernels, mode, stride=stride, axes=axes)
    assert_matches(got, oracle(function, x, kernels, mode, axes, stride),
                   tolerance(function, x, kernels, mode, axes, stride, dtype))
    if np.dtype(dtype).kind == "f":
        G = random_array(rng, got.shape, dtype)
        gx, gks = getattr(convlab, f"{function}_separable_grad")(G, x, kernels, mode,
                                                                 stride=stride, axes=axes)
        assert gx.shape == x.shape and [g.shape for g in gks] == [k.shape for k in kernels]


# ------------------------------------------------------------------------------ factors


@pytest.mark.parametrize("dtype", ALL, ids=DTYPE_ID)
@pytest.mark.parametrize("true_rank", [1, 2, 3])
def test_factors_2d(true_rank, dtype, rng):
    terms = [(random_array(rng, (5,), dtype), random_array(rng, (7,), dtype)) for _ in range(true_rank)]
    K = sum(np.outer(a, b) for a, b in terms)
    found = convlab.separable_factors(K)
    assert len(found) == true_rank
    rebuilt = sum(np.outer(a, b) for a, b in found)
    eps = np.finfo(np.dtype(dtype)).eps
    assert_matches(rebuilt, K, 50 * eps * np.abs(K).max())
    assert all(a.ndim == 1 and b.ndim == 1 for a, b in found)


def test_factors_truncated_rank_is_best_approximation(rng):
    K = rng.standard_normal((6, 8))
    s = np.linalg.svd(K, compute_uv=False)
    for r in (1, 2, 4):
        terms = convlab.separable_factors(K, rank=r)
        assert len(terms) == r
        error = np.linalg.norm(K - sum(np.outer(a, b) for a, b in terms), 2)
        assert abs(error - s[r]) <= 1e-12 * s[0]          # the largest dropped singular value


@pytest.mark.parametrize("dtype", ALL, ids=DTYPE_ID)
def test_factors_nd_rank_one(dtype, rng):
    vs = [random_array(rng, (n,), dtype) for n in (3, 4, 2)]
    K = np.multiply.outer(np.multiply.outer(vs[0], vs[1]), vs[2])
    (terms,) = convlab.separable_factors(K)
    rebuilt = np.multiply.outer(np.multiply.outer(*terms[:2]), terms[2])
    assert_matches(rebuilt, K, 50 * np.finfo(np.dtype(dtype)).eps * np.abs(K).max())
    y = convlab.correlate_separable(np.ones((6, 6, 6), dtype), list(terms), "valid")
    want = scipy.signal.correlate(np.ones((6, 6, 6), dtype), K, "valid")
    assert_matches(y, want, 1e-3 * np.abs(want).max())


def test_factors_edge_cases():
    assert convlab.separable_factors(np.zeros((3, 4))) == []
    assert convlab.separable_factors(np.zeros((3, 4)), rank=2) == []   # SPEC: a zero kernel returns []
    assert convlab.separable_factors(np.zeros((2, 2, 2))) == []
    (one,) = convlab.separable_factors([1.0, 2.0])
    assert len(one) == 1 and np.array_equal(one[0], [1.0, 2.0])
    K = np.zeros((3, 3, 3))
    K[0, 0, 0] = K[1, 1, 1] = 1.0
    with pytest.raises(ValueError, match="rank 2"):
        convlab.separable_factors(K)
    with pytest.raises(ValueError, match="rank"):
        convlab.separable_factors(np.ones((3, 3)), rank=4)
    with pytest.raises(ValueError, match="rank"):
        convlab.separable_factors(np.ones((3, 3, 3)), rank=2)
    with pytest.raises(ValueError, match="rank"):
        convlab.separable_factors(np.ones((3, 3)), rank=0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        convlab.separable_factors(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        convlab.separable_factors(np.ones((0, 3)))
    with pytest.raises(TypeError):
        convlab.separable_factors(np.ones((2, 2), dtype=object))


# ------------------------------------------------------------------------------ errors


X = np.ones((6, 5))
K2 = [np.ones(3), np.ones(2)]

ERRORS = {
    "too_few_kernels": (lambda: convlab.correlate_separable(X, [np.ones(3)]), ValueError,
                        ["one 1-D kernel per convolved axis", "2", "got 1"]),
    "too_many_for_axes": (lambda: convlab.convolve_separable(X, K2, axes=1), ValueError,
                          ["one 1-D kernel per convolved axis", "(1,)"]),
    "factor_not_1d": (lambda: convlab.correlate_separable(X, [np.ones((3, 1)), np.ones(2)]),
                      ValueError, ["kernels[0]", "1-D", "(3, 1)"]),
    "empty_factor": (lambda: convlab.correlate_separable(X, [np.ones(3), np.ones(0)]), ValueError,
                     ["kernels[1]", "empty"]),
    "not_a_sequence": (lambda: convlab.correlate_separable(X, 3.0), TypeError, ["kernels"]),
    "array_3d": (lambda: convlab.correlate_separable(X, np.ones((2, 3, 1))), ValueError, ["(2, 3, 1)"]),
    "bad_mode": (lambda: convlab.correlate_separable(X, K2, "half"), ValueError, ["mode", "half"]),
    "stride0": (lambda: convlab.correlate_separable(X, K2, stride=0), ValueError, ["stride"]),
    "repeated_axis": (lambda: convlab.correlate_separable(X, K2, axes=(0, 0)), ValueError, ["repeat"]),
    "empty_axis": (lambda: convlab.correlate_separable(np.ones((0, 5)), K2), ValueError, ["empty"]),
    "bad_dtype": (lambda: convlab.correlate_separable(X.astype(object), K2), TypeError, ["object"]),
    "grad_shape": (lambda: convlab.correlate_separable_grad(np.ones((3, 3)), X, K2), ValueError,
                   ["grad_out", "(8, 6)", "(3, 3)"]),
    "grad_complex": (lambda: convlab.correlate_separable_grad(np.ones((8, 6)), X + 0j, K2), TypeError,
                     ["complex"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(case):
    fn, kind, fragments = ERRORS[case]
    with pytest.raises(kind) as info:
        fn()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


# ------------------------------------------------------------------------------ method="separable" / "auto"


@pytest.mark.parametrize("dtype", ALL, ids=DTYPE_ID)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_method_separable_matches_dense(function, mode, dtype, rng):
    x = random_array(rng, (13, 11, 4), dtype)
    kernels = [random_array(rng, (n,), dtype) for n in (4, 3)]
    K = dense(kernels, 3, (0, 1))
    got = getattr(convlab, function)(x, K, mode, method="separable", stride=(2, 1), axes=(0, 1))
    want = oracle(function, x, kernels, mode, (0, 1), (2, 1))
    assert got.dtype == np.dtype(dtype)
    assert_matches(got, want, 10 * tolerance(function, x, kernels, mode, (0, 1), (2, 1), dtype))


def test_method_separable_batch_of_kernels(rng):
    """A kernel varying along a non-convolved axis: each slice factored on its own."""
    x = random_array(rng, (3, 9, 8), np.float64)
    kernels = [[random_array(rng, (n,), np.float64) for n in (3, 2)] for _ in range(3)]
    K = np.stack([np.outer(a, b) for a, b in kernels])          # (3, 3, 2)
    got = convlab.correlate(x, K, "same", method="separable", axes=(1, 2))
    want = np.stack([scipy.signal.correlate(x[i], K[i], "same") for i in range(3)])
    assert_matches(got, want, 1e-12 * (1 + np.abs(want)))
    with pytest.raises(ValueError, match="rank 2"):
        convlab.correlate(x, K + rng.standard_normal(K.shape), "same", method="separable",
                          axes=(1, 2))


@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_method_separable_names_the_rank(function, rng):
    x = np.ones((12, 12))
    with pytest.raises(ValueError, match="rank 2") as info:
        getattr(convlab, function)(x, np.eye(2), method="separable")
    assert "rank=r" in str(info.value)
    K = np.zeros((3, 3, 3))
    K[0, 0, 0] = K[1, 1, 1] = 1.0
    with pytest.raises(ValueError, match="rank 2 along axis 0"):
        getattr(convlab, function)(np.ones((5, 5, 5)), K, method="separable")
    # a 1-D kernel and a zero kernel are separable
    assert_matches(convlab.correlate(np.arange(5.0), [1.0, 2.0], method="separable"),
                   scipy.signal.correlate(np.arange(5.0), [1.0, 2.0]), 1e-12)
    assert not np.any(convlab.correlate(np.ones((6, 6)), np.zeros((3, 3)), method="separable"))


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
def test_auto_detects_separable_kernels(dtype, rng):
    """'auto' finds an exactly separable kernel when its passes are much cheaper, with a
    result equal to the dense one to tolerance; a kernel of rank 2 stays dense."""
    x = random_array(rng, (300, 280), dtype)
    a, b = random_array(rng, (15,), dtype), random_array(rng, (13,), dtype)
    K = np.outer(a, b)
    assert convlab.choose_method(x, K, "same") == "separable"
    got = convlab.correlate(x, K, "same")
    assert_matches(got, oracle("correlate", x, [a, b], "same", (0, 1), (1, 1)),
                   10 * tolerance("correlate", x, [a, b], "same", (0, 1), (1, 1), dtype))
    rank2 = K + np.outer(b[:1].repeat(15), a[:1].repeat(13)) * np.arange(15)[:, None]
    assert convlab.choose_method(x, rank2, "same") != "separable"
    # the same choice for any memory layout
    assert convlab.choose_method(np.asfortranarray(x), K[::-1].copy()[::-1], "same") == "separable"
    # tiny problems are not worth the test
    assert convlab.choose_method(np.ones((8, 8)), np.ones((3, 3))) == "direct"


def test_auto_keeps_non_finite_inputs_dense(rng):
    x = rng.standard_normal((300, 280))
    K = np.outer(np.ones(15), np.ones(13))
    x[5, 7] = np.nan
    assert convlab.choose_method(x, K, "same") == "direct"
    got = convlab.correlate(x, K, "same")
    want = convlab.correlate(x, K, "same", method="direct")
    assert np.array_equal(np.isnan(got), np.isnan(want))
    K2 = K.copy()
    K2[0, 0] = np.inf
    assert convlab.choose_method(rng.standard_normal((300, 280)), K2, "same") != "separable"


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128, ">f8"])
def test_auto_finds_every_non_finite_input_value(dtype, rng):
    """'auto' tests the input's values for NaN and infinity in parallel chunks of 65,536 (of
    each part of a complex value; a non-native byte order takes numpy's test): one such
    value anywhere, in either part, at a chunk's first or last element, keeps the dense
    answer; the largest finite value, a subnormal and -0.0 do not."""
    x = random_array(rng, (400, 330), np.dtype(dtype).newbyteorder("=")).astype(dtype)
    K = np.outer(np.ones(15), np.ones(13)).astype(x.real.dtype)
    assert convlab.choose_method(x, K, "same") == "separable"
    parts = 2 if np.dtype(dtype).kind == "c" else 1
    for position in (0, 65535, 65536, x.size * parts - 1):
        for value in (np.nan, np.inf, -np.inf):
            y = x.copy()
            flat = y.reshape(-1).view(y.real.dtype) if parts == 2 else y.reshape(-1)
            flat[position] = value
            assert convlab.choose_method(y, K, "same") == "direct", (position, value)
    y = x.copy()
    flat = y.reshape(-1).view(y.real.dtype) if parts == 2 else y.reshape(-1)
    flat[:3] = [np.finfo(flat.dtype).max, np.finfo(flat.dtype).smallest_subnormal, -0.0]
    assert convlab.choose_method(y, K, "same") == "separable"


def _difference_of_gaussians():
    t = np.arange(-7, 8)
    g1, g2 = np.exp(-t**2 / 2), np.exp(-t**2 / 8)
    return np.outer(g1, g1) - np.outer(g2, g2) / 4


@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_method_separable_with_rank(function, rng, recwarn):
    """A rank-2 kernel as two separable terms: exact, no warning; rank=1 approximates it and
    reports the relative error in a RuntimeWarning."""
    x = rng.standard_normal((40, 37))
    dog = _difference_of_gaussians()
    want = getattr(scipy.signal, function)(x, dog, "same")
    got = getattr(convlab, function)(x, dog, "same", method="separable", rank=2)
    assert_matches(got, want, 1e-12 * (1 + np.abs(want)))
    got = getattr(convlab, function)(x, dog, "same", method="separable", rank=5)   # more than needed
    assert_matches(got, want, 1e-12 * (1 + np.abs(want)))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    s = np.linalg.svd(dog, compute_uv=False)
    with pytest.warns(RuntimeWarning, match=f"relative 2-norm error {s[1] / s[0]:.3g}") as record:
        approx = getattr(convlab, function)(x, dog, "same", method="separable", rank=1)
    assert record[0].filename == __file__        # points at the caller
    a, b = convlab.separable_factors(dog, rank=1)[0]
    assert_matches(approx, getattr(scipy.signal, function)(x, np.outer(a, b), "same"), 1e-12)


def test_rank_keyword_errors():
    with pytest.raises(ValueError, match="method='separable' only"):
        convlab.correlate(np.ones((9, 9)), np.ones((3, 3)), rank=2)
    with pytest.raises(ValueError, match="rank"):
        convlab.correlate(np.ones((9, 9)), np.ones((3, 3)), method="separable", rank=0)
    K = np.zeros((3, 3, 3))
    K[0, 0, 0] = K[1, 1, 1] = 1.0
    with pytest.raises(ValueError, match="rank 2 along axis 0"):
        convlab.convolve(np.ones((5, 5, 5)), K, method="separable", rank=2)


# ------------------------------------------------------------------------------ depthwise-separable


@pytest.mark.parametrize("dtype", FLOATS, ids=DTYPE_ID)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_depthwise_separable_recipe_equals_dense_kernel(d, dtype, rng):
    """conv(groups=C) then a 1 x 1 conv (SPEC §3.4's recipe) equals one conv with the dense
    kernel pointwise[f, c] * depthwise[c, 0], gradients included."""
    from _layer_reference import conv_ref

    C, F = 3, 4
    ins = {1: (11,), 2: (7, 8), 3: (5, 6, 4)}[d]
    ks = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[d]
    x = random_array(rng, (2, C) + ins, dtype)
    depthwise = random_array(rng, (C, 1) + ks, dtype)
    pointwise = random_array(rng, (F, C) + (1,) * d, dtype)
    kw = dict(padding="same", stride=2)
    y = convlab.conv(convlab.conv(x, depthwise, groups=C, **kw), pointwise)
    dense_kernel = pointwise.reshape((F, C) + (1,) * d) * depthwise[:, 0][None]
    want = conv_ref(x, dense_kernel, **kw)
    scale = conv_ref(np.abs(x), np.abs(dense_kernel), **kw)
    assert_matches(y, want, 16 * np.prod(ks) * C * np.finfo(dtype).eps * scale + np.finfo(dtype).tiny)
    # the gradient with respect to x through both layers is that of the dense kernel
    G = random_array(rng, y.shape, dtype)
    mid = convlab.conv_grad_input(G, pointwise, (2, C) + convlab.conv(x, depthwise, groups=C, **kw).shape[2:])
    gx = convlab.conv_grad_input(mid, depthwise, x.shape, groups=C, **kw)
    want_gx = convlab.conv_grad_input(G.astype(np.float64), dense_kernel.astype(np.float64), x.shape, **kw)
    assert_matches(gx, want_gx, 1e-3 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", ALL, ids=DTYPE_ID)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("swap", [False, True], ids=["kernel_smaller", "kernel_larger"])
@pytest.mark.parametrize("function", ["correlate", "convolve"])
def test_auto_separable_equals_dense_direct(function, swap, mode, dtype, rng):
    """Whenever 'auto' takes the passes, the result equals direct summation to tolerance:
    every mode, SciPy's 'valid' swap, complex conjugation, strides."""
    big, small = (210, 190), (15, 13)
    x = random_array(rng, small if swap else big, dtype)
    kernels = [random_array(rng, (n,), dtype) for n in (big if swap else small)]
    K = np.outer(*kernels)
    fn = getattr(convlab, function)
    chosen = convlab.choose_method(x, K, mode, stride=(2, 1))
    got = fn(x, K, mode, stride=(2, 1))
    want = fn(x, K, mode, method="direct", stride=(2, 1))
    bound = tolerance(function, x, kernels, mode, (0, 1), (2, 1), dtype)
    if chosen == "separable":
        assert_matches(got, want, 10 * bound)
    else:
        # the cost model kept this case dense (FFT rounds by the norm, not term by term)
        assert chosen in ("direct", "fft")
        assert_matches(got, want, 100 * bound + 1e3 * np.finfo(np.dtype(dtype)).eps * np.abs(want).max())
