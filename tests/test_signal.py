"""correlate / convolve / choose_method against scipy.signal and the plain-numpy reference.

The oracle is always computed in float64 / complex128 from the same input values, so its own
rounding is negligible next to a float32 / complex64 tolerance and of the same order as a
float64 one (covered by the factor in the bound). Tolerances are the classical error bounds
of the two methods, derived from ``np.finfo(result dtype).eps``:

* direct summation, elementwise: ``c * n * eps * sum |a_i b_i|`` (n products per output);
* FFT, normwise: ``c * eps * log2(L) * ||in1|| * ||in2||`` (added whenever convlab may use it).
"""

import itertools

import numpy as np
import pytest
import scipy.signal

import convlab
from _reference import (
    MODES,
    assert_matches,
    convolve_ref,
    correlate_ref,
    direct_tolerance,
    fft_tolerance,
    output_shape,
    random_array,
    reference,
    scipy_oracle,
)

OPS = ("correlate", "convolve")
FLOAT_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
METHODS = ("direct", "fft", "auto")

# (in1 shape, in2 shape) per d, with an odd and an even kernel (the even one exercises the
# 'same' centring rule: K // 2 zeros of extension before the signal for correlate).
SHAPES = {
    1: {"odd": ((13,), (5,)), "even": ((12,), (4,))},
    2: {"odd": ((9, 8), (3, 5)), "even": ((8, 9), (4, 2))},
    3: {"odd": ((6, 5, 7), (3, 3, 1)), "even": ((5, 6, 4), (2, 4, 2))},
}


def tolerance(op, in1, in2, mode, method, dtype, *, stride=1, axes=None):
    tol = direct_tolerance(op, in1, in2, mode, stride=stride, axes=axes, dtype=dtype)
    if method != "direct":
        tol = tol + fft_tolerance(in1, in2, axes=axes, dtype=dtype)
    return tol


def check(op, in1, in2, mode="full", method="auto", *, stride=1, axes=None, expected_dtype=None,
          oracle="scipy", **kwargs):
    """Run convlab and compare with the oracle (shape, dtype, values)."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    result = getattr(convlab, op)(in1, in2, mode, method, stride=stride, axes=axes, **kwargs)
    if expected_dtype is None:
        expected_dtype = np.result_type(in1.dtype, in2.dtype)
    assert result.dtype == np.dtype(expected_dtype), (result.dtype, expected_dtype)
    if oracle == "scipy":
        expected = scipy_oracle(op, in1, in2, mode, stride=stride, axes=axes)
    else:
        expected = reference(op, in1, in2, mode, stride=stride, axes=axes)
    tol = tolerance(op, in1, in2, mode, method, expected_dtype, stride=stride, axes=axes)
    assert_matches(result, expected, tol)
    return result


# ------------------------------------------------------------------------ the main matrix


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("parity", ["odd", "even"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_matches_scipy(op, mode, dtype, d, parity, method, rng):
    s1, s2 = SHAPES[d][parity]
    in1 = random_array(rng, s1, dtype)
    in2 = random_array(rng, s2, dtype)
    check(op, in1, in2, mode, method, expected_dtype=dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_four_dimensional(op, mode, method, rng):
    in1 = random_array(rng, (5, 4, 3, 6), np.float64)
    in2 = random_array(rng, (2, 3, 2, 3), np.float64)
    out = check(op, in1, in2, mode, method)
    # ... and the numpy reference agrees as well.
    tol = tolerance(op, in1, in2, mode, method, np.float64)
    assert_matches(out, reference(op, in1, in2, mode), tol)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_four_dimensional_complex_and_single(op, mode, dtype, method, rng):
    in1 = random_array(rng, (3, 5, 2, 4), dtype)
    in2 = random_array(rng, (2, 2, 2, 3), dtype)
    check(op, in1, in2, mode, method, expected_dtype=dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", [
    ((3, 4, 2, 3, 4), (2, 2, 2, 1, 3), None, 1),
    ((3, 4, 2, 3, 4), (2, 2, 2, 1, 3), None, (1, 2, 1, 1, 2)),
    ((3, 4, 2, 3, 4, 2), (2, 2, 1, 1, 3, 2), None, 2),
    ((3, 4, 2, 3, 4), (1, 2, 2, 3, 3), (1, 2, 3, 4), 1),
    ((2, 3, 4, 5, 3), (2, 1, 2, 2, 3), (4, 0, 2, 3), (2, 1, 1, 3)),
], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_more_than_three_convolved_axes(op, mode, case, method, rng):
    """Beyond the kernels' native three axes (a generic path or the FFT)."""
    s1, s2, axes, stride = case
    in1 = random_array(rng, s1, np.complex128)
    in2 = random_array(rng, s2, np.float64)
    check(op, in1, in2, mode, method, stride=stride, axes=axes, expected_dtype=np.complex128)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shapes", [((5,), (9,)), ((4,), (8,)), ((4, 3), (6, 7)), ((3, 2, 2), (4, 5, 3)),
                                    ((1,), (6,)), ((2, 1), (1, 5))],
                         ids=str)
@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("op", OPS)
def test_kernel_larger_than_input(op, mode, shapes, method, rng):
    in1 = random_array(rng, shapes[0], np.float64)
    in2 = random_array(rng, shapes[1], np.float64)
    out = check(op, in1, in2, mode, method)
    if mode == "same":
        assert out.shape == in1.shape


# ------------------------------------------------------------------------ 'valid' swap rule


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("shapes", [((4,), (9,)), ((3, 5), (6, 5)), ((2, 3, 4), (5, 3, 6)), ((3, 2), (7, 8))],
                         ids=str)
@pytest.mark.parametrize("op", OPS)
def test_valid_swap_rule(op, shapes, dtype, method, rng):
    """in2 at least as large as in1 in every axis: SciPy swaps the inputs (and for correlate
    reverses and conjugates the result); convlab gives the same numbers."""
    in1 = random_array(rng, shapes[0], dtype)
    in2 = random_array(rng, shapes[1], dtype)
    out = check(op, in1, in2, "valid", method, expected_dtype=dtype)
    assert out.shape == tuple(b - a + 1 for a, b in zip(shapes[0], shapes[1]))


@pytest.mark.parametrize("shapes", [((4, 7), (6, 5)), ((5, 3, 3), (4, 4, 3)), ((2, 9, 5), (3, 2, 5))], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_valid_mixed_sizes_raise(op, shapes):
    in1 = np.ones(shapes[0])
    in2 = np.ones(shapes[1])
    with pytest.raises(ValueError, match="valid"):  # scipy's rule, which scipy also enforces:
        getattr(scipy.signal, op)(in1, in2, "valid")
    for method in METHODS:
        with pytest.raises(ValueError, match="valid"):
            getattr(convlab, op)(in1, in2, "valid", method)
    # The other modes accept the same shapes.
    for mode in ("full", "same"):
        check(op, in1, in2, mode)


@pytest.mark.parametrize("op", OPS)
def test_valid_swap_rule_only_over_convolved_axes(op, rng):
    """Broadcast (non-convolved) axes do not take part in the 'valid' size rule."""
    in1 = random_array(rng, (5, 3, 1), np.float64)   # axis 0: 5 < 7 ... but not convolved
    in2 = random_array(rng, (1, 6, 4), np.float64)
    check(op, in1, in2, "valid", axes=1, oracle="scipy")
    # and the other way round along the convolved axis
    check(op, in2, in1, "valid", axes=1, oracle="scipy")


# ------------------------------------------------------------------------ strides


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", [
    ((17,), (4,), 2), ((17,), (5,), 3), ((16,), (3,), 16), ((7,), (3,), 100),
    ((9, 10), (3, 4), 2), ((9, 10), (3, 4), (3, 1)), ((9, 10), (4, 3), [1, 4]),
    ((7, 6, 8), (2, 3, 3), (2, 3, 2)), ((7, 6, 8), (3, 2, 2), 2),
], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_stride_is_slice_of_stride_one(op, mode, case, method, rng):
    s1, s2, stride = case
    for dtype in (np.float64, np.complex64):
        in1 = random_array(rng, s1, dtype)
        in2 = random_array(rng, s2, dtype)
        out = check(op, in1, in2, mode, method, stride=stride, expected_dtype=dtype)
        assert out.shape == output_shape(s1, s2, mode, stride)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_stride_with_valid_swap(op, mode, method, rng):
    in1 = random_array(rng, (4, 5), np.float64)
    in2 = random_array(rng, (9, 11), np.float64)
    check(op, in1, in2, mode, method, stride=(2, 3))


# ------------------------------------------------------------------------ axes and broadcasting


AXES_CASES = [
    # (in1 shape, in2 shape, axes, stride)
    ((4, 10), (1, 3), 1, 1),
    ((4, 10), (1, 3), -1, 2),
    ((1, 10), (4, 3), (1,), 1),
    ((1, 10, 3), (5, 4, 1), [1], 1),
    ((6, 3, 7), (2, 3, 3), (0, 2), (2, 1)),
    ((6, 3, 7), (2, 1, 3), (2, 0), (1, 2)),        # stride[i] belongs to axes[i], in that order
    ((6, 3, 7), (2, 3, 3), (-1, -3), (3, 1)),
    ((3, 8, 2, 5), (1, 3, 2, 2), (1, 3), 1),
    ((2, 1, 9), (1, 4, 4), 2, 1),
    ((5, 7), (5, 3), 1, 1),
    ((5, 7), (1, 9), 1, 1),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", AXES_CASES, ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_axes_with_broadcasting(op, mode, case, method, rng):
    s1, s2, axes, stride = case
    for dtype in (np.float64, np.complex128):
        in1 = random_array(rng, s1, dtype)
        in2 = random_array(rng, s2, dtype)
        try:
            expected_shape = output_shape(s1, s2, mode, stride, axes)
            scipy_oracle(op, in1, in2, mode, axes=axes)
        except ValueError:  # 'valid' with mixed sizes along the convolved axes
            with pytest.raises(ValueError, match="valid"):
                getattr(convlab, op)(in1, in2, mode, method, stride=stride, axes=axes)
            continue
        out = check(op, in1, in2, mode, method, stride=stride, axes=axes, expected_dtype=dtype)
        assert out.shape == expected_shape
        # The numpy reference agrees too (independent of the per-slice scipy loop).
        tol = tolerance(op, in1, in2, mode, method, dtype, stride=stride, axes=axes)
        assert_matches(out, reference(op, in1, in2, mode, stride=stride, axes=axes), tol)


@pytest.mark.parametrize("op", OPS)
def test_axes_none_equals_all_axes(op, rng):
    in1 = random_array(rng, (5, 6, 3), np.float64)
    in2 = random_array(rng, (2, 3, 2), np.float64)
    f = getattr(convlab, op)
    a = f(in1, in2, "same", "direct")
    for axes in [(0, 1, 2), [-3, -2, -1], (2, 0, 1)]:
        b = f(in1, in2, "same", "direct", axes=axes)
        assert_matches(b, a, direct_tolerance(op, in1, in2, "same", dtype=np.float64))


@pytest.mark.parametrize("op", OPS)
def test_empty_axes_is_elementwise_product(op, rng):
    """axes=() convolves over nothing: the broadcast product (conjugated for correlate)."""
    in1 = random_array(rng, (3, 1), np.complex128)
    in2 = random_array(rng, (1, 4), np.complex128)
    out = getattr(convlab, op)(in1, in2, axes=())
    expected = in1 * (np.conj(in2) if op == "correlate" else in2)
    assert out.shape == (3, 4)
    assert_matches(out, expected, 4 * np.finfo(np.float64).eps * np.abs(expected))


# ------------------------------------------------------------------------ dtypes


DTYPE_RULES = [
    # in1, in2, result
    (np.int8, np.float32, np.float64),
    (np.int8, np.int8, np.float64),
    (np.uint8, np.uint8, np.float64),
    (np.int64, np.int32, np.float64),
    (np.uint64, np.float32, np.float64),
    (np.bool_, np.bool_, np.float64),
    (np.bool_, np.float32, np.float64),
    (np.bool_, np.complex64, np.complex128),
    (np.float16, np.float16, np.float32),
    (np.float16, np.float32, np.float32),
    (np.float16, np.float64, np.float64),
    (np.float16, np.complex64, np.complex64),
    (np.float32, np.float32, np.float32),
    (np.float32, np.float64, np.float64),
    (np.float32, np.complex64, np.complex64),
    (np.complex64, np.complex64, np.complex64),
    (np.complex64, np.float64, np.complex128),
    (np.float64, np.complex128, np.complex128),
    (np.int16, np.complex64, np.complex128),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("rule", DTYPE_RULES, ids=lambda r: f"{np.dtype(r[0]).name}-{np.dtype(r[1]).name}")
@pytest.mark.parametrize("op", OPS)
def test_dtype_promotion(op, rule, method, rng):
    t1, t2, expected = rule
    in1 = random_array(rng, (7, 5), t1)
    in2 = random_array(rng, (3, 2), t2)
    check(op, in1, in2, "same", method, expected_dtype=expected)
    # the other order gives the same dtype
    out = getattr(convlab, op)(in2, in1, "full", method)
    assert out.dtype == np.dtype(expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", OPS)
def test_small_integers_do_not_wrap_around(op, method):
    """int8 inputs compute in float64: 100 * 100 * 3 = 30000 exactly, where SciPy's int8
    result wraps around."""
    in1 = np.full(5, 100, dtype=np.int8)
    in2 = np.full(3, 100, dtype=np.int8)
    out = getattr(convlab, op)(in1, in2, "valid", method)
    assert out.dtype == np.float64
    exact = np.full(3, 30000.0)
    assert_matches(out, exact, 64 * np.finfo(np.float64).eps * exact)
    wrapped = getattr(scipy.signal, op)(in1, in2, "valid", method="direct")
    assert wrapped.dtype == np.int8 and not np.array_equal(wrapped.astype(np.float64), exact)
    # int8 with float32 is float64 as well, and exact
    out = getattr(convlab, op)(in1, in2.astype(np.float32), "valid", method)
    assert out.dtype == np.float64
    assert_matches(out, exact, 64 * np.finfo(np.float64).eps * exact)


@pytest.mark.parametrize("op", OPS)
def test_float16_computes_in_float32(op, rng):
    in1 = random_array(rng, (40,), np.float16)
    in2 = random_array(rng, (6,), np.float16)
    out = getattr(convlab, op)(in1, in2)
    assert out.dtype == np.float32
    # float32 precision, not float16: compare with the exact float64 result of the same values
    tol = direct_tolerance(op, in1, in2, "full", dtype=np.float32) + fft_tolerance(in1, in2, dtype=np.float32)
    assert_matches(out, reference(op, in1, in2, "full"), tol)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.complex64], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("op", OPS)
def test_single_precision_stays_single_and_accurate(op, dtype, method, rng):
    in1 = random_array(rng, (64, 48), dtype)
    in2 = random_array(rng, (9, 7), dtype)
    check(op, in1, in2, "same", method, expected_dtype=dtype, oracle="reference")


@pytest.mark.parametrize("op", OPS)
def test_fft_of_real_inputs_is_real(op, rng):
    for dtype in (np.float32, np.float64, np.int16, np.bool_, np.float16):
        in1 = random_array(rng, (30, 20), dtype)
        in2 = random_array(rng, (5, 4), dtype)
        out = getattr(convlab, op)(in1, in2, "full", "fft")
        assert out.dtype.kind == "f", (dtype, out.dtype)
    out = getattr(convlab, op)(in1.astype(np.float64), in2.astype(np.complex64), "full", "fft")
    assert out.dtype == np.complex128


# ------------------------------------------------------------------------ 0-d inputs


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_zero_dimensional_inputs(op, mode, method):
    a = np.array(2.0 - 1.5j)
    b = np.array(0.5 + 3.0j)
    out = getattr(convlab, op)(a, b, mode, method)
    expected = getattr(scipy.signal, op)(a, b, mode)
    assert out.shape == () and out.dtype == np.complex128
    by_hand = complex(a) * (complex(b).conjugate() if op == "correlate" else complex(b))
    assert out == pytest.approx(by_hand, rel=4 * np.finfo(np.float64).eps)
    assert complex(expected) == pytest.approx(by_hand, rel=4 * np.finfo(np.float64).eps)
    # real and integer scalars, as plain Python numbers too
    out = getattr(convlab, op)(3, np.float32(2.5), mode, method)
    assert out.shape == () and out.dtype == np.float64 and out == 7.5
    out = getattr(convlab, op)(np.float32(3), np.float32(2.5), mode, method)
    assert out.dtype == np.float32 and out == np.float32(7.5)
    assert convlab.choose_method(a, b, mode) in ("direct", "fft")


# ------------------------------------------------------------------------ the numpy reference


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", [
    ((96, 80), (11, 6), None, 1),
    ((100, 100), (20, 20), None, (2, 3)),         # 'auto' picks fft here
    ((24, 24, 24), (7, 7, 7), None, 1),
    ((3, 2000), (1, 63), 1, 4),
    ((4096,), (512,), None, 1),
], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_larger_cases_against_numpy_reference(op, mode, case, method, rng):
    s1, s2, axes, stride = case
    in1 = random_array(rng, s1, np.float64)
    in2 = random_array(rng, s2, np.float64)
    check(op, in1, in2, mode, method, stride=stride, axes=axes, oracle="reference")


@pytest.mark.parametrize("op", OPS)
def test_methods_agree_with_each_other(op, rng):
    in1 = random_array(rng, (40, 33), np.complex128)
    in2 = random_array(rng, (12, 9), np.complex128)
    results = {m: getattr(convlab, op)(in1, in2, "same", m) for m in METHODS}
    tol = tolerance(op, in1, in2, "same", "fft", np.complex128)
    for m in METHODS:
        assert_matches(results[m], results["direct"], 2 * tol)


# ------------------------------------------------------------------------ choose_method


CHOOSE_CASES = [
    ((1000,), (3,), "full", 1, None),
    ((4096,), (512,), "same", 1, None),
    ((10000,), (1000,), "valid", 1, None),
    ((100, 100), (20, 20), "full", 1, None),
    ((100, 100), (20, 20), "same", (2, 2), None),
    ((128, 128), (32, 32), "valid", 1, None),
    ((24, 24, 24), (7, 7, 7), "same", 1, None),
    ((5, 600), (1, 120), "same", 1, 1),
    ((30, 40), (5, 5), "full", 3, None),
]


def _layouts(x):
    """The same values in C order, Fortran order, a strided slice and a reversed view."""
    yield "C", np.ascontiguousarray(x)
    yield "F", np.asfortranarray(x)
    big = np.zeros(tuple(2 * n for n in x.shape), dtype=x.dtype)
    view = big[tuple(slice(None, None, 2) for _ in x.shape)]
    view[...] = x
    yield "strided", view
    rev = np.ascontiguousarray(np.flip(x))
    yield "negative", np.flip(rev)


@pytest.mark.parametrize("case", CHOOSE_CASES, ids=str)
def test_choose_method_is_layout_independent(case, rng):
    s1, s2, mode, stride, axes = case
    for dtype in (np.float64, np.float32, np.complex128):
        in1 = random_array(rng, s1, dtype)
        in2 = random_array(rng, s2, dtype)
        base = convlab.choose_method(in1, in2, mode, stride=stride, axes=axes)
        assert base in ("direct", "fft")
        assert isinstance(base, str)
        for (n1, a), (n2, b) in itertools.product(_layouts(in1), _layouts(in2)):
            assert convlab.choose_method(a, b, mode, stride=stride, axes=axes) == base, (n1, n2)


def test_choose_method_picks_both():
    """The cost model is not constant: tiny kernels are direct, big 2-D ones FFT."""
    assert convlab.choose_method(np.ones(1000), np.ones(3)) == "direct"
    assert convlab.choose_method(np.ones((512, 512)), np.ones((64, 64)), "same") == "fft"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["in1", "in2"])
def test_choose_method_direct_for_nonfinite(where, bad, rng):
    for s1, s2 in [((160, 160), (40, 40)), ((4096,), (512,)), ((512, 512), (64, 64))]:
        in1 = random_array(rng, s1, np.float64)
        in2 = random_array(rng, s2, np.float64)
        assert convlab.choose_method(in1, in2, "same") == "fft"  # the finite inputs use fft
        target = in1 if where == "in1" else in2
        target[tuple(n // 3 for n in target.shape)] = bad
        assert convlab.choose_method(in1, in2, "same") == "direct"
        assert convlab.choose_method(np.asfortranarray(in1), in2[::-1][::-1], "same") == "direct"


@pytest.mark.parametrize("op", OPS)
def test_auto_with_nonfinite_equals_direct_summation(op, rng):
    """Where the cost model would pick fft, a NaN/Inf input keeps 'auto' exact and local."""
    in1 = random_array(rng, (100, 100), np.float64)
    in2 = random_array(rng, (20, 20), np.float64)
    in1[50, 50] = np.nan
    in1[10, 80] = np.inf
    out = getattr(convlab, op)(in1, in2, "same")
    expected = reference(op, in1, in2, "same", nonfinite=True)
    assert np.array_equal(np.isnan(out), np.isnan(expected))
    assert np.array_equal(np.isposinf(out), np.isposinf(expected))
    assert np.array_equal(np.isneginf(out), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite.sum() > out.size // 2  # most of the output stays finite
    in1c = np.where(np.isfinite(in1), in1, 0)
    tol = direct_tolerance(op, in1c, in2, "same", dtype=np.float64)
    assert_matches(out[finite], expected[finite], tol[finite])


def test_convolve_is_correlate_with_reversed_kernel(rng):
    """A structural identity (independent of any oracle): convolve(x, k) == correlate(x, conj(k[::-1]))."""
    x = random_array(rng, (9, 7), np.complex128)
    k = random_array(rng, (4, 3), np.complex128)
    for mode in ("full", "valid"):  # ('same' centres an even kernel differently once reversed)
        a = convlab.convolve(x, k, mode, "direct")
        b = convlab.correlate(x, np.conj(k[::-1, ::-1]), mode, "direct")
        assert_matches(a, b, direct_tolerance("convolve", x, k, mode, dtype=np.complex128))
    full = convolve_ref(x, k)
    assert_matches(convlab.convolve(x, k), full, tolerance("convolve", x, k, "full", "auto", np.complex128))
    full = correlate_ref(x, k)
    assert_matches(convlab.correlate(x, k), full, tolerance("correlate", x, k, "full", "auto", np.complex128))
