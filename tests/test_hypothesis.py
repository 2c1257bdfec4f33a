"""Property tests: random ndim (1..3), shapes (1..12 per axis), kernel shapes, modes, strides,
axes subsets (with broadcasting along the others) and dtypes, against scipy.signal (one call
per broadcast slice, then ``[::stride]``); and the gradients' adjoint identity.

The profile (tests/conftest.py) derandomizes, so CI sees the same examples every run;
``CONVLAB_HYPOTHESIS_PROFILE=convlab-long`` explores more.
"""

import numpy as np
import pytest
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import convlab
from _reference import (
    MODES,
    adjoint_sides,
    adjoint_tolerance,
    assert_matches,
    direct_tolerance,
    fft_tolerance,
    output_shape,
    promoted_dtype,
    random_array,
    reference,
    scipy_oracle,
)

# Multiples of the loaded profile's max_examples (tests/conftest.py): cheap tests run more.
EXAMPLES = settings().max_examples

FORWARD_DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int16, np.bool_, np.float16]


@st.composite
def problems(draw, dtypes=FORWARD_DTYPES, max_side=12):
    """(in1, in2, mode, stride, axes): a valid or an invalid-'valid' problem."""
    ndim = draw(st.integers(1, 3))
    which = draw(st.one_of(st.none(), st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))
    conv = list(range(ndim)) if which is None else which
    if which is not None and draw(st.booleans()):
        axes = [a - ndim if draw(st.booleans()) else a for a in which]  # negative axes
    else:
        axes = which
    if axes is not None and len(axes) == 1 and draw(st.booleans()):
        axes = axes[0]  # a plain int
    s1, s2 = [], []
    side = st.integers(1, max_side)
    for ax in range(ndim):
        if ax in conv:
            s1.append(draw(side))
            s2.append(draw(side))
        else:
            n = draw(st.integers(1, 4))
            kind = draw(st.sampled_from(["equal", "in1", "in2"]))
            s1.append(1 if kind == "in1" else n)
            s2.append(1 if kind == "in2" else n)
    mode = draw(st.sampled_from(MODES))
    if draw(st.booleans()):
        stride = draw(st.integers(1, 4))
    else:
        stride = tuple(draw(st.integers(1, 4)) for _ in conv)
    t1 = draw(st.sampled_from(dtypes))
    t2 = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return random_array(rng, tuple(s1), t1), random_array(rng, tuple(s2), t2), mode, stride, axes, conv


def _valid_ok(s1, s2, conv):
    return all(s1[a] >= s2[a] for a in conv) or all(s2[a] >= s1[a] for a in conv)


@settings(max_examples=8 * EXAMPLES)
@given(problem=problems(), op=st.sampled_from(["correlate", "convolve"]),
       method=st.sampled_from(["direct", "fft", "auto"]))
def test_forward_matches_scipy(problem, op, method):
    in1, in2, mode, stride, axes, conv = problem
    note(f"{op}({in1.shape} {in1.dtype}, {in2.shape} {in2.dtype}, {mode!r}, {method!r}, "
         f"stride={stride}, axes={axes})")
    f = getattr(convlab, op)
    if mode == "valid" and not _valid_ok(in1.shape, in2.shape, conv):
        with pytest.raises(ValueError, match="valid"):
            f(in1, in2, mode, method, stride=stride, axes=axes)
        return
    out = f(in1, in2, mode, method, stride=stride, axes=axes)
    dtype = promoted_dtype(in1.dtype, in2.dtype)
    assert out.dtype == dtype
    assert out.shape == output_shape(in1.shape, in2.shape, mode, stride, axes)
    expected = scipy_oracle(op, in1, in2, mode, stride=stride, axes=axes)
    tol = direct_tolerance(op, in1, in2, mode, stride=stride, axes=axes, dtype=dtype)
    if method != "direct":
        tol = tol + fft_tolerance(in1, in2, axes=axes, dtype=dtype)
    assert_matches(out, expected, tol)


@settings(max_examples=3 * EXAMPLES)
@given(problem=problems(dtypes=[np.float64, np.complex128]), op=st.sampled_from(["correlate", "convolve"]))
def test_stride_and_axes_are_slices_of_the_plain_call(problem, op):
    """The strided result is the stride-1 result sliced along the convolved axes (to
    floating-point tolerance: the summation order may differ), and matches the oracle."""
    in1, in2, mode, stride, axes, conv = problem
    assume(mode != "valid" or _valid_ok(in1.shape, in2.shape, conv))
    f = getattr(convlab, op)
    full = f(in1, in2, mode, "direct", axes=axes)
    strided = f(in1, in2, mode, "direct", stride=stride, axes=axes)
    strides = (stride,) * len(conv) if np.ndim(stride) == 0 else stride
    index = [slice(None)] * in1.ndim
    for ax, s in zip(conv, strides):
        index[ax] = slice(None, None, s)
    tol = direct_tolerance(op, in1, in2, mode, stride=stride, axes=axes, dtype=strided.dtype)
    assert_matches(strided, full[tuple(index)], 2 * tol)
    # and the oracle agrees with both
    expected = reference(op, in1, in2, mode, stride=stride, axes=axes)
    assert_matches(strided, expected, tol)


@settings(max_examples=5 * EXAMPLES)
@given(problem=problems(dtypes=[np.float32, np.float64], max_side=8), op=st.sampled_from(["correlate", "convolve"]))
def test_gradient_adjoint_identity(problem, op):
    in1, in2, mode, stride, axes, conv = problem
    grad = getattr(convlab, f"{op}_grad")
    if mode == "valid" and not _valid_ok(in1.shape, in2.shape, conv):
        with pytest.raises(ValueError, match="valid"):
            grad(np.ones(1), in1, in2, mode, stride=stride, axes=axes)
        return
    dtype = promoted_dtype(in1.dtype, in2.dtype)
    G = random_array(np.random.default_rng(in1.size * 7 + in2.size), output_shape(in1.shape, in2.shape, mode,
                                                                                   stride, axes), dtype)
    g1, g2 = grad(G, in1, in2, mode, stride=stride, axes=axes)
    assert g1.shape == in1.shape and g2.shape == in2.shape
    assert g1.dtype == dtype and g2.dtype == dtype
    forward = reference(op, in1, in2, mode, stride=stride, axes=axes)
    lhs, r1, r2 = adjoint_sides(forward, G, in1, g1, in2, g2)
    tol = adjoint_tolerance(op, in1, in2, G, mode, stride=stride, axes=axes, dtype=dtype)
    assert abs(lhs - r1) <= tol, (lhs, r1, tol)
    assert abs(lhs - r2) <= tol, (lhs, r2, tol)


@settings(max_examples=3 * EXAMPLES)
@given(problem=problems(dtypes=[np.float64], max_side=6), op=st.sampled_from(["correlate", "convolve"]))
def test_gradient_is_the_transposed_jacobian(problem, op):
    """Elementwise: grad1[i] = <f(e_i, x2), G> (the forward is linear in x1; the reference
    applied to unit vectors is the Jacobian's column)."""
    in1, in2, mode, stride, axes, conv = problem
    assume(mode != "valid" or _valid_ok(in1.shape, in2.shape, conv))
    G = random_array(np.random.default_rng(in1.size), output_shape(in1.shape, in2.shape, mode, stride, axes),
                     np.float64)
    g1, g2 = getattr(convlab, f"{op}_grad")(G, in1, in2, mode, stride=stride, axes=axes)
    e1 = np.zeros(in1.shape)
    e2 = np.zeros(in2.shape)
    for i in range(in1.size):
        unit = np.zeros(in1.shape)
        unit.flat[i] = 1.0
        e1.flat[i] = np.sum(reference(op, unit, in2, mode, stride=stride, axes=axes) * G)
    for i in range(in2.size):
        unit = np.zeros(in2.shape)
        unit.flat[i] = 1.0
        e2.flat[i] = np.sum(reference(op, in1, unit, mode, stride=stride, axes=axes) * G)
    eps = np.finfo(np.float64).eps
    n = in1.size + in2.size + G.size
    scale = float(np.abs(G).sum()) * (np.abs(in1).max() + np.abs(in2).max() + 1)
    assert_matches(g1, e1, 4 * eps * n * scale)
    assert_matches(g2, e2, 4 * eps * n * scale)
