"""SPEC §4 for the signal-level functions: memory layouts, argument errors, zero-size arrays,
NaN / Inf propagation, huge broadcast inputs.

Functions covered: correlate, convolve, correlate_grad, convolve_grad, choose_method,
set_workers (workers only).
"""

import os
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.signal

import convlab
from _layouts import LAYOUTS
from _reference import (
    MODES,
    assert_matches,
    bad_dtype_array,
    direct_tolerance,
    fft_tolerance,
    output_shape,
    random_array,
    reference,
    vjp_ref,
)

OPS = ("correlate", "convolve")
GRADS = ("correlate_grad", "convolve_grad")
ALL = OPS + GRADS + ("choose_method",)
WITH_WORKERS = OPS + GRADS


def call(name, in1, in2, mode="full", method="auto", *, grad_out=None, **kwargs):
    """Call any of the five functions with the arguments it takes."""
    f = getattr(convlab, name)
    if name in OPS:
        return f(in1, in2, mode, method, **kwargs)
    if name == "choose_method":
        kwargs.pop("workers", None)
        return f(in1, in2, mode, **kwargs)
    if grad_out is None:
        try:
            shape = output_shape(np.shape(in1), np.shape(in2), mode, kwargs.get("stride", 1),
                                 kwargs.get("axes"))
        except Exception:  # arguments the test makes invalid on purpose
            shape = (1,)
        grad_out = np.ones(shape)
    return f(grad_out, in1, in2, mode, **kwargs)


def assert_mentions(excinfo, *fragments):
    """The error message names the argument, what was expected and what was given."""
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in message {message!r}"


# ---------------------------------------------------------------------------- layouts


LAYOUT_CASES = [
    # in1 shape, in2 shape, mode, stride, axes, dtype
    ((11,), (4,), "same", 2, None, np.float64),
    ((7, 6), (3, 4), "full", (2, 1), None, np.float64),
    ((7, 6), (3, 4), "valid", 1, None, np.float32),
    ((5, 6, 4), (2, 3, 2), "same", 1, None, np.complex128),
    ((4, 9, 3), (4, 2, 1), "full", 2, 1, np.float64),
    ((6, 5), (9, 8), "valid", 1, None, np.complex64),
]


def _snapshot(*arrays):
    return [(a.shape, a.dtype, a.tobytes(order="A"), a.strides) for a in arrays]


# convlab's three methods for correlate / convolve; the gradients and choose_method have none.
NAME_METHODS = [(n, m) for n in OPS for m in ("direct", "fft", "auto")] + [(n, "auto") for n in GRADS + ("choose_method",)]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", LAYOUT_CASES, ids=str)
@pytest.mark.parametrize("name,method", NAME_METHODS)
def test_layouts_give_same_result(name, method, case, layout, rng):
    s1, s2, mode, stride, axes, dtype = case
    if name in GRADS and np.dtype(dtype).kind == "c":
        dtype = np.float64
    make = LAYOUTS[layout]
    base = {"in1": random_array(rng, s1, dtype), "in2": random_array(rng, s2, dtype)}
    base["grad_out"] = random_array(rng, output_shape(s1, s2, mode, stride, axes), dtype)
    targets = ["in1", "in2"] + (["grad_out"] if name in GRADS else [])
    for target in targets:
        args = dict(base)
        args[target] = make(base[target])
        contiguous = {k: np.ascontiguousarray(v) for k, v in args.items()}
        before = _snapshot(*args.values())
        kwargs = {"stride": stride, "axes": axes}
        if name in GRADS:
            kwargs["grad_out"] = args["grad_out"]
            ckw = dict(kwargs, grad_out=contiguous["grad_out"])
        else:
            ckw = kwargs
        got = call(name, args["in1"], args["in2"], mode, method, **kwargs)
        want = call(name, contiguous["in1"], contiguous["in2"], mode, method, **ckw)
        assert _snapshot(*args.values()) == before, f"{target} was modified"
        if name == "choose_method":
            assert got == want
            continue
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == w.dtype
            assert g.dtype.isnative
            if method == "direct" or name in GRADS:
                # the same sums of the same products: bit for bit
                assert np.array_equal(g, w), f"{target} as {layout}: max diff {np.abs(g - w).max()}"
            else:
                assert_matches(g, w, fft_tolerance(contiguous["in1"], contiguous["in2"], axes=axes, dtype=g.dtype))


@pytest.mark.parametrize("name", OPS + GRADS)
def test_array_likes(name):
    """Lists and tuples are array_like; the result matches the ndarray call."""
    a = [1.0, 2.0, 3.0, 4.0]
    b = (1, -1)
    got = call(name, a, b, "full", grad_out=[1.0, 0.5, 0.25, 0.0, -1.0] if name in GRADS else None)
    want = call(name, np.array(a), np.array(b, dtype=float), "full",
                grad_out=np.array([1.0, 0.5, 0.25, 0.0, -1.0]) if name in GRADS else None)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert np.array_equal(g, w)


# ---------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize("bad", ["foo", "FULL", "Same", "", "valid "])
@pytest.mark.parametrize("name", ALL)
def test_bad_mode(name, bad):
    with pytest.raises(ValueError, match="mode") as info:
        call(name, np.ones(5), np.ones(3), bad)
    assert_mentions(info, repr(bad), "'full'", "'valid'", "'same'")


@pytest.mark.parametrize("bad", [None, 1, b"full"])
@pytest.mark.parametrize("name", ALL)
def test_non_string_mode(name, bad):
    with pytest.raises((ValueError, TypeError), match="mode") as info:
        call(name, np.ones(5), np.ones(3), bad)
    assert_mentions(info, "'full'", "'valid'", "'same'")


@pytest.mark.parametrize("bad", ["fast", "FFT", "", "Separable", None, 2])
@pytest.mark.parametrize("name", OPS)
def test_bad_method(name, bad):
    expected = ValueError if isinstance(bad, str) else (ValueError, TypeError)
    with pytest.raises(expected, match="method") as info:
        call(name, np.ones(5), np.ones(3), "full", bad)
    assert_mentions(info, "'auto'", "'direct'", "'fft'", "'separable'")
    if isinstance(bad, str) and bad:
        assert_mentions(info, repr(bad))


@pytest.mark.parametrize("bad", [0, -1, -3, (1, 0), (2, -2), [0, 1]])
@pytest.mark.parametrize("name", ALL)
def test_stride_below_one(name, bad):
    with pytest.raises(ValueError, match="stride") as info:
        call(name, np.ones((5, 4)), np.ones((2, 2)), "full", stride=bad)
    assert_mentions(info, ">= 1")


@pytest.mark.parametrize("bad", [1.5, 2.0, "2", None, (1, 1.5), (1, "2"), np.float64(2.0)])
@pytest.mark.parametrize("name", ALL)
def test_stride_not_int(name, bad):
    with pytest.raises(TypeError, match="stride") as info:
        call(name, np.ones((5, 4)), np.ones((2, 2)), "full", stride=bad)
    if not isinstance(bad, tuple):
        assert_mentions(info, repr(bad))


@pytest.mark.parametrize("bad,axes", [((1, 2, 3), None), ((2,), None), ((1, 1), 0), ((), None), ((2, 2, 2), (0, 1))])
@pytest.mark.parametrize("name", ALL)
def test_stride_wrong_length(name, bad, axes):
    with pytest.raises(ValueError, match="stride") as info:
        call(name, np.ones((5, 4)), np.ones((2, 2)), "full", stride=bad, axes=axes)
    n_axes = 2 if axes is None else np.size(axes)
    assert_mentions(info, str(n_axes), str(len(bad)))


@pytest.mark.parametrize("stride", [7, 10**6, 2**31, 2**40, 2**70])
@pytest.mark.parametrize("name,method", NAME_METHODS)
def test_stride_larger_than_the_output(name, method, stride):
    """Any int >= 1 is a valid stride: beyond the output length only the first output is
    kept (SPEC: the result is the stride-1 result sliced [::s], first element kept). Nothing
    may be sized by the stride itself (no MemoryError, no C integer overflow)."""
    x = np.arange(1.0, 6.0)
    k = np.array([1.0, 10.0])
    got = call(name, x, k, "full", method, stride=stride,
               grad_out=np.array([2.0]) if name in GRADS else None)
    if name == "choose_method":
        assert got in ("direct", "fft")
        return
    if name in GRADS:
        # only output 0 (= x[0] * k[1] for correlate, x[0] * k[0] for convolve) is kept
        e1, e2 = vjp_ref(name[: -len("_grad")], np.array([2.0]), x, k, "full", stride=stride)
        assert_matches(got[0], e1, 1e-15)
        assert_matches(got[1], e2, 1e-15)
        return
    expected = reference(name, x, k, "full")[::stride]
    assert got.shape == (1,)
    assert_matches(got, expected, direct_tolerance(name, x, k, "full", dtype=np.float64)[:1]
                   + fft_tolerance(x, k, dtype=np.float64))


@pytest.mark.parametrize("name", ALL)
def test_stride_numpy_ints_accepted(name):
    a, b = np.arange(12.0).reshape(4, 3), np.ones((2, 2))
    got = call(name, a, b, "full", stride=np.int64(2))
    want = call(name, a, b, "full", stride=2)
    got2 = call(name, a, b, "full", stride=np.array([2, 2]))
    for g, w, g2 in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, want, got2))):
        assert np.array_equal(g, w) and np.array_equal(g2, w)


@pytest.mark.parametrize("bad", [2, -3, 7, (0, 2), [-3], (0, 1, 2)])
@pytest.mark.parametrize("name", ALL)
def test_axes_out_of_range(name, bad):
    with pytest.raises(ValueError, match="ax") as info:  # numpy.exceptions.AxisError is a ValueError
        call(name, np.ones((5, 4)), np.ones((2, 2)), "full", axes=bad)
    out_of_range = [a for a in np.atleast_1d(bad) if not -2 <= a < 2][0]
    assert_mentions(info, str(out_of_range))


@pytest.mark.parametrize("bad", [(0, 0), (1, -2), [0, 1, 0], (-3, 0)])
@pytest.mark.parametrize("name", ALL)
def test_axes_repeated(name, bad):
    with pytest.raises(ValueError, match="axes") as info:
        call(name, np.ones((5, 4, 3)), np.ones((2, 4, 3)), "full", axes=bad, stride=1)
    assert_mentions(info, "repeat")


@pytest.mark.parametrize("bad", [1.0, "0", [0.5], (0, None), {"a": 1}, b"\x00"])
@pytest.mark.parametrize("name", ALL)
def test_axes_wrong_type(name, bad):
    with pytest.raises(TypeError, match="axes"):
        call(name, np.ones((5, 4)), np.ones((2, 2)), "full", axes=bad)


@pytest.mark.parametrize("shapes", [((5,), (2, 2)), ((5, 4), (3,)), ((), (3,)), ((2, 2, 2), (2, 2))], ids=str)
@pytest.mark.parametrize("name", ALL)
def test_ndim_mismatch(name, shapes):
    with pytest.raises(ValueError, match="in1") as info:
        call(name, np.ones(shapes[0]), np.ones(shapes[1]), "full")
    assert_mentions(info, "in2", str(len(shapes[0])), str(len(shapes[1])))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("which", ["in1", "in2"])
@pytest.mark.parametrize("name", ALL)
def test_empty_convolved_axis(name, which, mode):
    shapes = {"in1": (5, 4), "in2": (2, 3)}
    shapes[which] = (shapes[which][0], 0)
    with pytest.raises(ValueError, match=which) as info:
        call(name, np.ones(shapes["in1"]), np.ones(shapes["in2"]), mode)
    assert_mentions(info, "1")  # the axis
    # also when only that axis is convolved, and in 1-D
    with pytest.raises(ValueError, match=which):
        call(name, np.ones(shapes["in1"]), np.ones(shapes["in2"]), mode, axes=-1)
    with pytest.raises(ValueError, match=which):
        call(name, np.ones(shapes["in1"][1:]), np.ones(shapes["in2"][1:]), mode)


@pytest.mark.parametrize("name", ALL)
def test_incompatible_broadcast_axis(name):
    with pytest.raises(ValueError, match="axis 0") as info:
        call(name, np.ones((3, 5)), np.ones((4, 2)), "full", axes=1)
    assert_mentions(info, "3", "4")


BAD_DTYPES = [
    np.dtype(object),
    np.dtype("U3"),
    np.dtype("S3"),
    np.dtype("datetime64[s]"),
    np.dtype("timedelta64[s]"),
    np.dtype([("a", np.float64), ("b", np.float64)]),
]
if np.dtype(np.longdouble) != np.dtype(np.float64):  # extended precision (x86-64 Linux: float128)
    BAD_DTYPES += [np.dtype(np.longdouble), np.dtype(np.clongdouble)]


@pytest.mark.parametrize("which", ["in1", "in2", "grad_out"])
@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=str)
@pytest.mark.parametrize("name", ALL)
def test_unsupported_dtypes(name, dtype, which):
    if which == "grad_out" and name not in GRADS:
        which = "in2"
    args = {"in1": np.ones((5, 4)), "in2": np.ones((2, 3)), "grad_out": np.ones((6, 6))}
    args[which] = bad_dtype_array(dtype, args[which].shape)
    with pytest.raises(TypeError, match=which) as info:
        call(name, args["in1"], args["in2"], "full", grad_out=args["grad_out"])
    if dtype.kind != "V":
        assert_mentions(info, str(dtype))


@pytest.mark.parametrize("name", ALL)
def test_ragged_input(name):
    with pytest.raises((TypeError, ValueError), match="in1"):
        call(name, [[1.0, 2.0], [3.0]], np.ones((2, 2)), "full", grad_out=np.ones((3, 3)))


@pytest.mark.parametrize("name", WITH_WORKERS)
def test_bad_workers(name):
    a, b = np.ones((5, 4)), np.ones((2, 2))
    with pytest.raises(ValueError, match="workers") as info:
        call(name, a, b, "full", workers=0)
    assert_mentions(info, "0")
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="workers"):
        call(name, a, b, "full", workers=-cores - 1)
    for bad in (1.5, "2", 2.0, [2]):
        with pytest.raises(TypeError, match="workers"):
            call(name, a, b, "full", workers=bad)


@pytest.mark.parametrize("workers", [64, 2**40, 2**70])
@pytest.mark.parametrize("name", WITH_WORKERS)
def test_large_workers(name, workers):
    """More threads than cores is either used (capped) or a ValueError naming `workers`;
    never an OverflowError from a C conversion."""
    x = np.arange(1.0, 30.0)
    k = np.array([1.0, -1.0, 0.5])
    want = call(name, x, k, "same", workers=1)
    try:
        got = call(name, x, k, "same", workers=workers)
    except ValueError as exc:
        assert "workers" in str(exc)
    else:
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert np.array_equal(g, w)


def test_set_workers_bad_values():
    for bad in (0, -len(os.sched_getaffinity(0)) - 1):
        with pytest.raises(ValueError, match="workers"):
            with convlab.set_workers(bad):
                pass
    for bad in (1.5, "2", [1]):
        with pytest.raises(TypeError, match="workers"):
            with convlab.set_workers(bad):
                pass


def test_set_workers_none():
    """SPEC §5: set_workers has the meaning of `workers`, where None is every usable core.
    Accepting None is one consistent answer; rejecting it (as scipy.fft.set_workers does) is
    another, but then the message must not list None as a valid value."""
    from convlab import _workers

    try:
        with convlab.set_workers(None):
            resolved = _workers.resolve_workers(None)
    except TypeError as exc:
        assert "workers" in str(exc)
        assert "or None" not in str(exc), f"rejects None while listing it as valid: {exc}"
    else:
        assert resolved == len(os.sched_getaffinity(0))


def test_errors_before_work_on_huge_input():
    """A bad argument is reported before anything is sized or allocated."""
    huge = np.broadcast_to(np.float64(1.0), (2**22, 2**22))
    with pytest.raises(ValueError, match="mode"):
        convlab.correlate(huge, huge, "bogus")
    with pytest.raises(ValueError, match="method"):
        convlab.convolve(huge, huge, "full", "bogus")
    with pytest.raises(ValueError, match="stride"):
        convlab.correlate(huge, huge, stride=0)


# ---------------------------------------------------------------------------- zero-size


ZERO_CASES = [
    # in1, in2, axes  (the zero-size axis is never convolved)
    ((0, 5), (1, 3), 1),
    ((1, 5), (0, 3), 1),
    ((0, 5), (0, 3), -1),
    ((3, 0, 6), (3, 1, 2), (0, 2)),
    ((4, 7, 0), (2, 3, 1), (1, 0)),
]


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ZERO_CASES, ids=str)
@pytest.mark.parametrize("name", OPS + GRADS)
def test_zero_size_non_convolved_axis(name, case, mode, method):
    s1, s2, axes = case
    expected = output_shape(s1, s2, mode, 2, axes)
    assert 0 in expected
    if name in GRADS:
        g1, g2 = getattr(convlab, name)(np.ones(expected), np.ones(s1), np.ones(s2), mode, stride=2, axes=axes)
        assert g1.shape == s1 and g2.shape == s2
        assert g1.dtype == np.float64 and g2.dtype == np.float64
        # a gradient over an empty batch is zero where the input has entries
        assert not g1.any() and not g2.any()
        return
    out = call(name, np.ones(s1, dtype=np.float32), np.ones(s2, dtype=np.float32), mode, method,
               stride=2, axes=axes)
    assert out.shape == expected and out.dtype == np.float32


def test_choose_method_zero_size_non_convolved_axis():
    assert convlab.choose_method(np.ones((0, 50)), np.ones((1, 7)), "full", axes=1) in ("direct", "fft")


# ---------------------------------------------------------------------------- NaN and Inf


def _same_nonfinite_pattern(out, expected):
    for part in (np.real, np.imag):
        o, e = part(out), part(expected)
        assert np.array_equal(np.isnan(o), np.isnan(e)), (o, e)
        assert np.array_equal(np.isposinf(o), np.isposinf(e)), (o, e)
        assert np.array_equal(np.isneginf(o), np.isneginf(e)), (o, e)


def _check_nonfinite(op, in1, in2, mode, method="direct", **kw):
    before = _snapshot(in1, in2)
    out = getattr(convlab, op)(in1, in2, mode, method, **kw)
    assert _snapshot(in1, in2) == before
    expected = reference(op, in1, in2, mode, nonfinite=True, **kw)
    _same_nonfinite_pattern(out, expected)
    finite = np.isfinite(expected)
    tol = direct_tolerance(op, np.where(np.isfinite(in1), in1, 0), np.where(np.isfinite(in2), in2, 0), mode,
                           dtype=out.dtype, **kw)
    assert_matches(out[finite], expected[finite], tol[finite])
    return out, expected


def test_nan_kernel_tap_meeting_only_the_extension():
    """'same' with a kernel longer than the signal: the outer taps only ever meet the zero
    extension, so their NaN is never a term (SPEC §4)."""
    x = np.array([2.0, 3.0])
    k = np.array([np.nan, 1.0, 10.0, 100.0, np.nan])
    for method in ("direct", "auto"):
        out = convlab.correlate(x, k, "same", method)
        # by hand: before = K // 2 = 2, out[i] = sum_l x[l + i - 2] * k[l] over the overlap
        assert np.array_equal(out, np.array([2.0 * 10.0 + 3.0 * 100.0, 2.0 * 1.0 + 3.0 * 10.0]))
        out = convlab.convolve(x, k, "same", method)
        # convolve = correlate with the reversed kernel [nan, 100, 10, 1, nan]
        assert np.array_equal(out, np.array([2.0 * 10.0 + 3.0 * 1.0, 2.0 * 100.0 + 3.0 * 10.0]))
    # 2-D as well (SciPy's N-d direct path would give NaN here: a documented difference)
    x2 = np.array([[2.0, 3.0]])
    k2 = np.array([[np.nan, 1.0, 10.0, 100.0, np.nan]])
    out = convlab.correlate(x2, k2, "same", "direct")
    assert np.array_equal(out, np.array([[320.0, 32.0]]))
    # 'valid' with the swap rule: each output only uses the taps it overlaps
    out = convlab.correlate(x, k, "valid", "direct")
    expected = scipy.signal.correlate(x, k, "valid", method="direct")  # the 1-D (np.correlate) path
    _same_nonfinite_pattern(out, expected)
    assert np.array_equal(out[1:3], expected[1:3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128],
                         ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_nan_inf_1d_matches_scipy_direct(op, mode, dtype, rng):
    """1-D: SciPy's direct path (numpy.correlate / convolve) sums the overlapping samples only."""
    x = random_array(rng, (20,), dtype)
    k = random_array(rng, (5,), dtype)
    x[3] = np.nan
    k[0] = np.nan  # meets x[0..] at the edges only in part of the outputs
    if np.dtype(dtype).kind == "f":
        x[12] = np.inf
        x[15] = -np.inf
    out, ref = _check_nonfinite(op, x, k, mode)
    if mode != "same":
        oracle = getattr(scipy.signal, op)(x, k, mode, method="direct")
        _same_nonfinite_pattern(out, oracle)
    assert not np.isfinite(out).all()
    if mode != "valid":  # in 'valid' every output meets the NaN tap k[0]
        assert np.isfinite(out).any()


@pytest.mark.parametrize("case", [
    ((9, 8), (3, 4), None, 1),
    ((7, 6, 5), (2, 3, 2), None, (2, 1, 1)),
    ((4, 12), (1, 5), 1, 1),
], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_nan_inf_nd_direct_summation(op, mode, case, rng):
    s1, s2, axes, stride = case
    x = random_array(rng, s1, np.float64)
    k = random_array(rng, s2, np.float64)
    x[(2,) * len(s1)] = np.nan
    x[(-1,) * len(s1)] = np.inf
    x[(0,) * (len(s1) - 1) + (-2,)] = -np.inf
    k.flat[0] = np.nan
    for method in ("direct", "auto"):
        _check_nonfinite(op, x, k, mode, method, axes=axes, stride=stride)


@pytest.mark.parametrize("op", OPS)
def test_inf_minus_inf_is_nan(op):
    x = np.array([np.inf, 0.0, -np.inf, 1.0])
    k = np.array([1.0, 0.5, 1.0])
    out, ref = _check_nonfinite(op, x, k, "full")
    assert np.isnan(out).any() and np.isinf(out).any()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("op", OPS)
def test_explicit_fft_with_nonfinite_warns(op, bad):
    x = np.ones((12, 10))
    x[4, 4] = bad
    k = np.ones((3, 3))
    with pytest.warns(RuntimeWarning):
        out = getattr(convlab, op)(x, k, "same", "fft")
    assert not np.isfinite(out).all()
    with pytest.warns(RuntimeWarning):
        getattr(convlab, op)(k, x, "full", "fft")
    # direct and auto do not warn (filterwarnings = error turns any warning into a failure)
    for method in ("direct", "auto"):
        out = getattr(convlab, op)(x, k, "same", method)
        assert np.isfinite(out).sum() == out.size - 9


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("op", OPS)
def test_explicit_fft_warns_only_its_documented_warning(op, bad):
    """The one RuntimeWarning is convlab's (naming the method), not a numpy floating-point
    warning leaking from its internals (which under ``-W error`` or ``np.seterr(all='raise')``
    would surface as an error from inside convlab)."""
    x = np.ones((12, 10))
    x[4, 4] = bad
    k = np.ones((3, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = getattr(convlab, op)(x, k, "same", "fft")
    assert not np.isfinite(out).all()
    messages = [str(w.message) for w in caught]
    assert len(caught) == 1, messages
    assert issubclass(caught[0].category, RuntimeWarning)
    assert "fft" in messages[0], messages


@pytest.mark.parametrize("name", GRADS)
def test_gradient_nonfinite_propagates(name):
    """A NaN in grad_out reaches exactly the input samples that met it (direct summation)."""
    x = np.arange(1.0, 8.0)
    k = np.array([1.0, 2.0, 3.0])
    G = np.zeros(9)
    G[4] = np.nan
    g1, g2 = getattr(convlab, name)(G, x, k, "full")
    # full correlate/convolve: output 4 uses x[2..4]
    assert np.array_equal(np.isnan(g1), np.isin(np.arange(7), [2, 3, 4]))
    assert np.isnan(g2).all()


@pytest.mark.parametrize("where", ["grad_out", "in1"])
@pytest.mark.parametrize("name", GRADS)
def test_gradient_nonfinite_stays_local_at_fft_sizes(name, where, rng):
    """At sizes where the cost model prefers the FFT, a NaN / Inf still only reaches the
    gradient entries whose direct sums contain it (never an FFT smear, never a warning)."""
    x = random_array(rng, (160, 160), np.float64)
    k = random_array(rng, (40, 40), np.float64)
    G = random_array(rng, (160, 160), np.float64)
    assert convlab.choose_method(x, k, "same") == "fft"
    if where == "grad_out":
        G[80, 80] = np.nan
    else:
        x[3, 3] = np.inf
    g1, g2 = getattr(convlab, name)(G, x, k, "same")
    e1, e2 = vjp_ref(name[: -len("_grad")], G, x, k, "same")
    _same_nonfinite_pattern(g1, e1)
    _same_nonfinite_pattern(g2, e2)
    assert not np.isfinite(g2).all()
    if where == "grad_out":
        assert np.isfinite(g1).any() and not np.isfinite(g1).all()
    for g, e, other in ((g1, e1, k), (g2, e2, np.where(np.isfinite(x), x, 0))):
        finite = np.isfinite(e)
        tol = 2 * fft_tolerance(np.where(np.isfinite(G), G, 0), other, dtype=np.float64)
        assert_matches(g[finite], e[finite], tol)


@pytest.mark.parametrize("case", [
    ((9,), (4,), "full", 1, None),
    ((9, 8), (3, 4), "same", (2, 1), None),
    ((7, 6, 5), (2, 3, 2), "valid", 1, None),
    ((3, 12), (1, 5), "same", 2, 1),
], ids=str)
@pytest.mark.parametrize("where", ["grad_out", "in1", "in2"])
@pytest.mark.parametrize("name", GRADS)
def test_gradient_nonfinite_direct_summation(name, where, case, rng):
    s1, s2, mode, stride, axes = case
    args = {"in1": random_array(rng, s1, np.float64), "in2": random_array(rng, s2, np.float64),
            "grad_out": random_array(rng, output_shape(s1, s2, mode, stride, axes), np.float64)}
    target = args[where]
    target.flat[target.size // 2] = np.nan
    target.flat[-1] = np.inf
    target.flat[0] = -np.inf
    before = _snapshot(*args.values())
    g1, g2 = getattr(convlab, name)(args["grad_out"], args["in1"], args["in2"], mode, stride=stride, axes=axes)
    assert _snapshot(*args.values()) == before
    e1, e2 = vjp_ref(name[: -len("_grad")], args["grad_out"], args["in1"], args["in2"], mode,
                     stride=stride, axes=axes)
    _same_nonfinite_pattern(g1, e1)
    _same_nonfinite_pattern(g2, e2)


# ---------------------------------------------------------------------------- huge inputs


@pytest.mark.parametrize("name", ALL)
def test_huge_broadcast_input_fails_fast(name):
    """A 0-stride view whose result would need terabytes: MemoryError or ValueError, without
    allocating (peak traced memory stays small), and never a crash or a hang."""
    huge = np.broadcast_to(np.float64(1.0), (2**22, 2**22))          # 128 TiB if materialised
    cases = [
        (huge, np.ones((1, 3)), {"axes": 1}),
        (huge, huge, {}),
        (np.ones((1, 8)), np.broadcast_to(np.float32(1.0), (2**40, 3)), {"axes": 1}),
    ]
    for in1, in2, kw in cases:
        tracemalloc.start()
        try:
            if name in GRADS:
                shape = output_shape(in1.shape, in2.shape, "full", 1, kw.get("axes"))
                grad_out = np.broadcast_to(np.float64(1.0), shape)
                with pytest.raises((MemoryError, ValueError)):
                    call(name, in1, in2, "full", grad_out=grad_out, **kw)
            elif name == "choose_method":
                try:
                    choice = call(name, in1, in2, "full", **kw)
                except (MemoryError, ValueError):
                    pass
                else:
                    assert choice in ("direct", "fft")
            else:
                with pytest.raises((MemoryError, ValueError)):
                    call(name, in1, in2, "full", **kw)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated before failing"
