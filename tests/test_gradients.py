"""correlate_grad / convolve_grad: central finite differences of the numpy reference forward
(float64) and the adjoint identity <f(x1, x2), G> == <x1, grad1> == <x2, grad2>.

The forward is bilinear, so each input's map is linear: central differences have no
truncation error (only rounding, ~ eps * sum |G| |f| / h), and the adjoint identity holds
exactly up to rounding. Broadcast inputs: the gradient is summed back to the input's shape.
"""

import numpy as np
import pytest
import scipy.signal

import convlab
from _reference import (
    MODES,
    adjoint_sides,
    adjoint_tolerance,
    assert_matches,
    central_difference_vjp,
    fft_tolerance,
    mode_slice,
    output_shape,
    random_array,
    reference,
    terms_per_output,
)

OPS = ("correlate", "convolve")
H = 2.0 ** -3

# (in1 shape, in2 shape, axes, stride); d = 1..3, kernel larger than the input, broadcasting.
CASES = [
    ((7,), (3,), None, 1),
    ((8,), (4,), None, 3),
    ((4,), (6,), None, 2),
    ((5, 4), (2, 3), None, 1),
    ((5, 6), (3, 2), None, (2, 1)),
    ((3, 4), (5, 6), None, (1, 2)),
    ((2, 6), (1, 3), 1, 2),                 # in2 broadcast along axis 0
    ((1, 6), (3, 2), -1, 1),                # in1 broadcast along axis 0
    ((4, 1, 5), (1, 3, 2), (0, 2), (1, 2)),  # both broadcast along axis 1
    ((3, 4, 3), (2, 2, 2), None, 1),
    ((4, 3, 5), (2, 3, 2), None, (2, 1, 3)),
    ((3, 2, 5), (2, 1, 2), (2, 0), (2, 1)),  # stride[i] belongs to axes[i]
]


def _valid_allowed(s1, s2, axes):
    ndim = len(s1)
    axes = range(ndim) if axes is None else [a % ndim for a in ((axes,) if np.ndim(axes) == 0 else axes)]
    return all(s1[a] >= s2[a] for a in axes) or all(s2[a] >= s1[a] for a in axes)


def _expect_valid_error(op, s1, s2, axes, stride):
    """'valid' with neither input at least as large along every convolved axis: ValueError."""
    with pytest.raises(ValueError, match="valid"):
        getattr(convlab, f"{op}_grad")(np.ones(1), np.ones(s1), np.ones(s2), "valid", stride=stride, axes=axes)


def _fd_gradients(op, G, x1, x2, mode, stride, axes):
    ref = lambda a, b: reference(op, a, b, mode, stride=stride, axes=axes)  # noqa: E731
    g1 = central_difference_vjp(lambda a: ref(a, x2), x1, G, H)
    g2 = central_difference_vjp(lambda b: ref(x1, b), x2, G, H)
    return g1, g2


def _fd_tolerances(op, G, x1, x2, mode, stride, axes, dtype):
    """Elementwise: the rounding of convlab's gradient (n products of |G| and |other input|,
    in `dtype`) plus that of the float64 central difference (~ eps64 * sum |G| |f| / h)."""
    eps = np.finfo(dtype).eps
    eps64 = np.finfo(np.float64).eps
    ref = lambda a, b: reference(op, a, b, mode, stride=stride, axes=axes)  # noqa: E731
    absG = np.abs(G)
    a1, a2 = np.abs(x1) + H, np.abs(x2) + H
    n = terms_per_output(x1.shape, x2.shape, axes) + G.size
    # |grad1| bound: the VJP with absolute values (linear in x1, so x1's value is irrelevant)
    b1 = central_difference_vjp(lambda a: ref(a, a2), np.zeros(x1.shape), absG, 1.0)
    b2 = central_difference_vjp(lambda b: ref(a1, b), np.zeros(x2.shape), absG, 1.0)
    fd_err = 8 * eps64 * n * float(np.sum(ref(a1, a2) * absG)) / H
    return 4 * eps * n * b1 + fd_err, 4 * eps * n * b2 + fd_err


def _case_id(case):
    return f"{case[0]}x{case[1]}-axes{case[2]}-s{case[3]}".replace(" ", "")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_finite_differences_float64(op, mode, case, rng):
    s1, s2, axes, stride = case
    x1 = random_array(rng, s1, np.float64)
    x2 = random_array(rng, s2, np.float64)
    grad = getattr(convlab, f"{op}_grad")
    if mode == "valid" and not _valid_allowed(s1, s2, axes):
        return _expect_valid_error(op, s1, s2, axes, stride)
    G = random_array(rng, output_shape(s1, s2, mode, stride, axes), np.float64)
    g1, g2 = grad(G, x1, x2, mode, stride=stride, axes=axes)
    assert g1.shape == x1.shape and g2.shape == x2.shape
    assert g1.dtype == np.float64 and g2.dtype == np.float64
    e1, e2 = _fd_gradients(op, G, x1, x2, mode, stride, axes)
    t1, t2 = _fd_tolerances(op, G, x1, x2, mode, stride, axes, np.float64)
    assert_matches(g1, e1, t1)
    assert_matches(g2, e2, t2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("case", CASES + [
    ((17, 9), (4, 3), None, (3, 2)),
    ((9, 30), (1, 7), 1, 4),
    ((6, 7, 8), (3, 2, 4), None, 2),
    ((12, 10, 4), (12, 1, 3), (1, 2), 1),
], ids=_case_id)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_adjoint_identity(op, mode, case, dtype, rng):
    s1, s2, axes, stride = case
    if mode == "valid" and not _valid_allowed(s1, s2, axes):
        return _expect_valid_error(op, s1, s2, axes, stride)
    x1 = random_array(rng, s1, dtype)
    x2 = random_array(rng, s2, dtype)
    G = random_array(rng, output_shape(s1, s2, mode, stride, axes), dtype)
    g1, g2 = getattr(convlab, f"{op}_grad")(G, x1, x2, mode, stride=stride, axes=axes)
    assert g1.dtype == dtype and g2.dtype == dtype
    assert g1.shape == x1.shape and g2.shape == x2.shape
    forward = reference(op, x1, x2, mode, stride=stride, axes=axes)  # float64 oracle
    lhs, r1, r2 = adjoint_sides(forward, G, x1, g1, x2, g2)
    tol = adjoint_tolerance(op, x1, x2, G, mode, stride=stride, axes=axes, dtype=dtype)
    assert abs(lhs - r1) <= tol, (lhs, r1, tol)
    assert abs(lhs - r2) <= tol, (lhs, r2, tol)
    # convlab's own forward satisfies it too
    fwd = getattr(convlab, op)(x1, x2, mode, stride=stride, axes=axes)
    lhs2, _, _ = adjoint_sides(fwd, G, x1, g1, x2, g2)
    assert abs(lhs2 - r1) <= 2 * tol


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_float32_gradients_at_float32_precision(op, mode, case, rng):
    """float32 in, float32 out, accurate to float32's eps (against the float64 oracle)."""
    s1, s2, axes, stride = case
    if mode == "valid" and not _valid_allowed(s1, s2, axes):
        return _expect_valid_error(op, s1, s2, axes, stride)
    x1 = random_array(rng, s1, np.float32)
    x2 = random_array(rng, s2, np.float32)
    G = random_array(rng, output_shape(s1, s2, mode, stride, axes), np.float32)
    g1, g2 = getattr(convlab, f"{op}_grad")(G, x1, x2, mode, stride=stride, axes=axes)
    assert g1.dtype == np.float32 and g2.dtype == np.float32
    e1, e2 = _fd_gradients(op, G.astype(np.float64), x1.astype(np.float64), x2.astype(np.float64),
                           mode, stride, axes)
    t1, t2 = _fd_tolerances(op, G.astype(np.float64), x1.astype(np.float64), x2.astype(np.float64),
                            mode, stride, axes, np.float32)
    assert_matches(g1, e1, t1)
    assert_matches(g2, e2, t2)


@pytest.mark.parametrize("op", OPS)
def test_gradient_dtypes(op, rng):
    grad = getattr(convlab, f"{op}_grad")
    x1 = random_array(rng, (6, 5), np.float64)
    x2 = random_array(rng, (3, 2), np.float64)
    G = random_array(rng, (8, 6), np.float64)
    cases = [
        ((G, x1, x2), np.float64),
        ((G.astype(np.float32), x1, x2), np.float64),
        ((G.astype(np.float32), x1.astype(np.float32), x2.astype(np.float32)), np.float32),
        ((G.astype(np.float16), x1.astype(np.float16), x2.astype(np.float16)), np.float32),
        ((G.astype(np.float32), x1.astype(np.int8), x2.astype(np.float32)), np.float64),
        ((G, (x1 > 0), x2.astype(np.int32)), np.float64),
        ((G.astype(np.float32), x1.astype(np.float32), x2.astype(bool)), np.float64),
    ]
    for args, expected in cases:
        g1, g2 = grad(*args)
        assert g1.dtype == expected and g2.dtype == expected, ([a.dtype for a in args], g1.dtype, g2.dtype)
        assert g1.shape == x1.shape and g2.shape == x2.shape
        # values: finite differences of the reference at the promoted precision
        a = [np.asarray(v, dtype=np.float64) for v in args]
        e1, e2 = _fd_gradients(op, a[0], a[1], a[2], "full", 1, None)
        t1, t2 = _fd_tolerances(op, a[0], a[1], a[2], "full", 1, None, expected)
        assert_matches(g1, e1, t1)
        assert_matches(g2, e2, t2)


@pytest.mark.parametrize("op", OPS)
def test_gradient_zero_dimensional(op):
    g1, g2 = getattr(convlab, f"{op}_grad")(np.array(3.0), np.array(2.0), np.array(-0.5))
    assert g1.shape == () and g2.shape == ()
    assert g1 == -1.5 and g2 == 6.0


@pytest.mark.parametrize("op", OPS)
def test_gradient_of_broadcast_input_is_summed(op, rng):
    """A size-1 axis that broadcasts gets the sum over the broadcast copies: the same as the
    gradient with respect to the explicitly repeated input, summed along that axis."""
    x1 = random_array(rng, (1, 9), np.float64)
    x2 = random_array(rng, (4, 3), np.float64)
    G = random_array(rng, (4, 9), np.float64)
    grad = getattr(convlab, f"{op}_grad")
    g1, g2 = grad(G, x1, x2, "same", axes=1)
    assert g1.shape == (1, 9)
    e1, e2 = grad(G, np.repeat(x1, 4, axis=0), x2, "same", axes=1)
    tol = 16 * np.finfo(np.float64).eps * (np.abs(G).sum() * np.abs(x2).max() + 1)
    assert_matches(g1, e1.sum(axis=0, keepdims=True), tol)
    assert_matches(g2, e2, tol)
    # and finite differences of the reference agree
    f1, f2 = _fd_gradients(op, G, x1, x2, "same", 1, 1)
    t1, t2 = _fd_tolerances(op, G, x1, x2, "same", 1, 1, np.float64)
    assert_matches(g1, f1, t1)
    assert_matches(g2, f2, t2)


@pytest.mark.parametrize("which", ["grad_out", "in1", "in2"])
@pytest.mark.parametrize("ctype", [np.complex64, np.complex128], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("op", OPS)
def test_complex_raises_type_error(op, ctype, which):
    args = {"grad_out": np.ones(6), "in1": np.ones(4), "in2": np.ones(3)}
    args[which] = args[which].astype(ctype)
    with pytest.raises(TypeError, match="complex"):
        getattr(convlab, f"{op}_grad")(args["grad_out"], args["in1"], args["in2"])


@pytest.mark.parametrize("op", OPS)
def test_grad_out_wrong_shape(op):
    grad = getattr(convlab, f"{op}_grad")
    x1, x2 = np.ones((5, 4)), np.ones((2, 3))
    for mode, shape in [("full", (6, 5)), ("full", (6, 6, 1)), ("valid", (5, 4)), ("same", (4, 2)),
                        ("full", (3, 3)), ("same", ())]:
        with pytest.raises(ValueError, match="grad_out"):
            grad(np.ones(shape), x1, x2, mode)
    # with a stride, the strided shape is required and the unstrided one rejected
    with pytest.raises(ValueError, match="grad_out"):
        grad(np.ones((6, 6)), x1, x2, "full", stride=2)
    g1, g2 = grad(np.ones((3, 3)), x1, x2, "full", stride=2)
    assert g1.shape == x1.shape and g2.shape == x2.shape
    # broadcasting grad_out is not allowed either: it must be exactly the result's shape
    with pytest.raises(ValueError, match="grad_out"):
        grad(np.ones((1, 6)), np.ones((4, 5)), np.ones((1, 2)), "full", axes=1)


def _scipy_gradients(op, G, x, k, mode, stride):
    """Independent gradients from scipy.signal (stride-1 formulas on a zero-embedded G).

    With ``Gf`` the 'full'-length array holding G at the outputs the mode and stride keep,
    correlate's gradients are ``convolve(Gf, k, 'valid')`` and ``correlate(Gf, x, 'valid')``
    reversed; convolve's use the reversed kernel.
    """
    strides = (stride,) * x.ndim if np.ndim(stride) == 0 else tuple(stride)
    index = tuple(mode_slice(n, t, mode, s) for n, t, s in zip(x.shape, k.shape, strides))
    Gf = np.zeros(tuple(n + t - 1 for n, t in zip(x.shape, k.shape)))
    Gf[index] = G
    kc = k if op == "correlate" else np.flip(k)
    g1 = scipy.signal.fftconvolve(Gf, kc, "valid")
    g2 = np.flip(scipy.signal.correlate(Gf, x, "valid", method="fft"))
    if op == "convolve":
        g2 = np.flip(g2)
    return g1, g2


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("case", [
    ((100, 100), (20, 20), "same", 1),      # sizes where 'auto' prefers the FFT
    ((100, 100), (20, 20), "same", 2),
    ((4096,), (512,), "full", 3),
    ((24, 24, 24), (7, 7, 7), "valid", 1),
    ((30, 40), (50, 45), "valid", (2, 1)),  # the swap rule
    ((128, 128), (32, 32), "full", (1, 3)),
], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_large_gradients_against_scipy(op, case, dtype, rng):
    s1, s2, mode, stride = case
    x = random_array(rng, s1, dtype)
    k = random_array(rng, s2, dtype)
    G = random_array(rng, output_shape(s1, s2, mode, stride), dtype)
    g1, g2 = getattr(convlab, f"{op}_grad")(G, x, k, mode, stride=stride)
    assert g1.dtype == dtype and g2.dtype == dtype
    e1, e2 = _scipy_gradients(op, G.astype(np.float64), x.astype(np.float64), k.astype(np.float64), mode, stride)
    # either engine: the direct bound (n eps sum|G||other|) is below the FFT's normwise one
    assert_matches(g1, e1, 2 * fft_tolerance(G, k, dtype=dtype))
    assert_matches(g2, e2, 2 * fft_tolerance(G, x, dtype=dtype))
    # the adjoint identity at this size, against the scipy forward
    forward = getattr(scipy.signal, op)(x.astype(np.float64), k.astype(np.float64), mode)
    strides = (stride,) * len(s1) if np.ndim(stride) == 0 else stride
    forward = forward[tuple(slice(None, None, s) for s in strides)]
    lhs, r1, r2 = adjoint_sides(forward, G, x, g1, k, g2)
    # |<x, g1 - e1>| <= ||x||_1 max|g1 - e1|, plus the float64 forward's own error against G
    fwd_err = float(np.abs(G).astype(np.float64).sum()) * fft_tolerance(x, k, dtype=np.float64)
    tol1 = float(np.abs(x).astype(np.float64).sum()) * 2 * fft_tolerance(G, k, dtype=dtype) + fwd_err
    tol2 = float(np.abs(k).astype(np.float64).sum()) * 2 * fft_tolerance(G, x, dtype=dtype) + fwd_err
    assert abs(lhs - r1) <= tol1, (lhs, r1, tol1)
    assert abs(lhs - r2) <= tol2, (lhs, r2, tol2)
