"""Plain-numpy oracles for the signal-level tests (no convlab code is used here).

``correlate_ref`` / ``convolve_ref`` compute SciPy's N-d correlation / convolution along chosen
axes, broadcasting the others, from :func:`numpy.lib.stride_tricks.sliding_window_view` and
:func:`numpy.einsum` on a zero-padded copy of ``in1``:

    full[k] = sum_l in1pad[k + l] * conj(in2[l])      (in1pad: K - 1 zeros on each side)

and the mode is a slice of the 'full' result along each convolved axis (SciPy's rules; only
the windows of the kept outputs are formed):

    'full'  start 0,               length N + K - 1
    'valid' start min(N, K) - 1,   length |N - K| + 1   (either input may be the larger one)
    'same'  start (K - 1) // 2,    length N

and a stride ``s`` keeps ``[start::s]`` of that. ``nonfinite=True`` switches to a masked
product-sum whose terms are only the overlapping samples (a product with the zero extension
is not a term), which is where direct summation puts NaN and Inf.

``scipy_oracle`` wraps ``scipy.signal.correlate`` / ``convolve`` (float64 / complex128) with
``axes`` (one SciPy call per broadcast slice) and ``stride`` (slicing), which SciPy lacks.

The gradient helpers are central finite differences (float64) of any function and the scalar
sides of the adjoint identity ``<f(x1, x2), G> == <x1, grad1> == <x2, grad2>``.
"""

import itertools
import string

import numpy as np
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view

MODES = ("full", "valid", "same")


def _normalize_axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    if np.ndim(axes) == 0:
        axes = (int(axes),)
    return tuple(int(a) % ndim for a in axes)


def _normalize_stride(stride, d):
    if np.ndim(stride) == 0:
        return (int(stride),) * d
    stride = tuple(int(s) for s in stride)
    assert len(stride) == d
    return stride


def mode_slice(n, k, mode, stride=1):
    """The slice of the 'full' result (length n + k - 1) that `mode` keeps, with `stride`."""
    if mode == "full":
        start, length = 0, n + k - 1
    elif mode == "valid":
        start, length = min(n, k) - 1, abs(n - k) + 1
    elif mode == "same":
        start, length = (k - 1) // 2, n
    else:
        raise ValueError(mode)
    return slice(start, start + length, stride)


def output_shape(shape1, shape2, mode, stride=1, axes=None):
    """Shape of the result: mode sizes (strided) along the convolved axes, broadcast elsewhere."""
    ndim = len(shape1)
    axes = _normalize_axes(axes, ndim)
    strides = dict(zip(axes, _normalize_stride(stride, len(axes))))
    out = []
    for ax in range(ndim):
        n, k = shape1[ax], shape2[ax]
        if ax in strides:
            sl = mode_slice(n, k, mode, strides[ax])
            out.append(len(range(sl.start, sl.stop, sl.step)))
        else:
            out.append(0 if 0 in (n, k) else max(n, k))
    return tuple(out)


def promoted_dtype(*dtypes):
    """SPEC §2: bool / int -> float64, float16 -> float32, then numpy.result_type."""
    conv = []
    for dt in dtypes:
        dt = np.dtype(dt)
        if dt.kind in "biu":
            conv.append(np.dtype(np.float64))
        elif dt == np.float16:
            conv.append(np.dtype(np.float32))
        else:
            conv.append(dt)
    return np.result_type(*conv)


def _correlate_slices(in1, kern, axes, slices, nonfinite):
    """Correlation of in1 with `kern` (already conjugated) along `axes`, keeping only the
    'full'-result indices ``slices[i]`` (a slice with a step) along ``axes[i]``.

    Only the windows that are kept are formed (views of the zero-padded copy)."""
    d = len(axes)
    ndim = in1.ndim
    last = tuple(range(ndim - d, ndim))
    a = np.moveaxis(in1, axes, last)
    k = np.moveaxis(kern, axes, last)
    taps = k.shape[ndim - d:]
    pad = [(0, 0)] * (ndim - d) + [(t - 1, t - 1) for t in taps]
    ap = np.pad(a, pad)
    cut = tuple([slice(None)] * (ndim - d) + [slice(sl.start, sl.stop + t - 1) for sl, t in zip(slices, taps)])
    step = (slice(None),) * (ndim - d) + tuple(slice(None, None, sl.step) for sl in slices)
    win = sliding_window_view(ap[cut], taps, axis=last)[step]  # (*batch, *kept, *taps)
    batch = np.broadcast_shapes(win.shape[: ndim - d], k.shape[: ndim - d])
    letters = string.ascii_letters
    o = letters[:d]
    t = letters[d: 2 * d]
    if not nonfinite:
        res = np.einsum(f"...{o}{t},...{t}->...{o}", win, k)
    else:
        inside = np.pad(np.ones(a.shape, dtype=bool), pad)
        mwin = sliding_window_view(inside[cut], taps, axis=last)[step]
        kb = k.reshape(k.shape[: ndim - d] + (1,) * d + taps)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 masked out; inf - inf is NaN
            terms = np.where(mwin, win * kb, 0)
            res = terms.sum(axis=tuple(range(-d, 0)))
    res = np.broadcast_to(res, batch + res.shape[ndim - d:])
    return np.moveaxis(res, last, axes)


def correlate_ref(in1, in2, mode="full", *, stride=1, axes=None, nonfinite=False, dtype=None):
    """SciPy's ``correlate`` along `axes` (broadcasting the others), then ``[::stride]``.

    Computed in `dtype` (default: float64 / complex128 of the promoted inputs).
    """
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    assert in1.ndim == in2.ndim
    if dtype is None:
        dtype = np.result_type(promoted_dtype(in1.dtype, in2.dtype), np.float64)
    in1 = in1.astype(dtype)
    in2 = in2.astype(dtype)
    if in1.ndim == 0:
        return in1 * np.conj(in2)
    axes = _normalize_axes(axes, in1.ndim)
    strides = _normalize_stride(stride, len(axes))
    slices = [mode_slice(in1.shape[ax], in2.shape[ax], mode, s) for ax, s in zip(axes, strides)]
    return np.ascontiguousarray(_correlate_slices(in1, np.conj(in2), axes, slices, nonfinite))


def convolve_ref(in1, in2, mode="full", *, stride=1, axes=None, nonfinite=False, dtype=None):
    """SciPy's ``convolve``: correlation with in2 reversed along the convolved axes, unconjugated."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    if in1.ndim == 0:
        if dtype is None:
            dtype = np.result_type(promoted_dtype(in1.dtype, in2.dtype), np.float64)
        return in1.astype(dtype) * in2.astype(dtype)
    ax = _normalize_axes(axes, in1.ndim)
    flipped = np.conj(np.flip(in2, axis=ax))
    return correlate_ref(in1, flipped, mode, stride=stride, axes=axes, nonfinite=nonfinite, dtype=dtype)


def reference(op, *args, **kwargs):
    return {"correlate": correlate_ref, "convolve": convolve_ref}[op](*args, **kwargs)


def terms_per_output(shape1, shape2, axes=None):
    """Upper bound on the number of products summed into one output."""
    axes = _normalize_axes(axes, len(shape1))
    n = 1
    for ax in axes:
        n *= max(1, min(shape1[ax], shape2[ax]))
    return n


def direct_tolerance(op, in1, in2, mode, *, stride=1, axes=None, dtype, factor=4.0):
    """Elementwise error bound of a direct summation in `dtype`: the classical
    ``n * eps * sum |a_i b_i|`` (complex products add a few more roundings)."""
    eps = np.finfo(dtype).eps
    abs_ref = reference(op, np.abs(np.asarray(in1)), np.abs(np.asarray(in2)),
                        mode, stride=stride, axes=axes)
    n = terms_per_output(np.shape(in1), np.shape(in2), axes) + 4
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny


def fft_tolerance(in1, in2, *, axes=None, dtype, factor=16.0):
    """Normwise error bound of an FFT convolution in `dtype`: ``eps * log2(L) * ||a|| ||b||``
    per output, with L the transform length (the error is not relative to each output)."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    eps = np.finfo(dtype).eps
    axes = _normalize_axes(axes, in1.ndim) if in1.ndim else ()
    length = 1
    for ax in axes:
        length *= in1.shape[ax] + in2.shape[ax]
    norm1 = np.sqrt(np.sum(np.abs(in1.astype(np.complex128)) ** 2))
    norm2 = np.sqrt(np.sum(np.abs(in2.astype(np.complex128)) ** 2))
    return factor * eps * (np.log2(length + 1) + 1) * norm1 * norm2


def assert_matches(actual, expected, tol):
    """|actual - expected| <= tol elementwise (tol broadcast), same shape, no NaN surprise."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = np.abs(actual.astype(np.complex128) - expected.astype(np.complex128))
    tol = np.broadcast_to(tol, err.shape)
    bad = ~(err <= tol)
    if bad.any():
        idx = np.argwhere(bad)[:5]
        raise AssertionError(
            f"{bad.sum()} of {err.size} elements differ beyond the tolerance; "
            f"first at {idx.tolist()}: actual={actual[tuple(idx[0])]!r}, "
            f"expected={expected[tuple(idx[0])]!r}, err={err[tuple(idx[0])]:.3g}, "
            f"tol={tol[tuple(idx[0])]:.3g}; max err {err.max():.3g}"
        )


def random_array(rng, shape, dtype):
    """Random values of `dtype`: normal for floats / complex, small integers, booleans."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -100), min(info.max, 100)
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- scipy oracle


def _oracle_dtype(*arrays):
    return np.complex128 if any(np.iscomplexobj(a) for a in arrays) else np.float64


def scipy_oracle(op, in1, in2, mode, *, stride=1, axes=None, method="direct"):
    """scipy.signal.correlate / convolve in float64 / complex128 along `axes` (SciPy has no
    `axes`: one call per broadcast slice of the other axes), then ``[::stride]``."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    dt = _oracle_dtype(in1, in2)
    in1 = in1.astype(dt)
    in2 = in2.astype(dt)
    func = getattr(scipy.signal, op)
    ndim = in1.ndim
    if ndim == 0:
        return func(in1, in2, mode, method=method)
    axes = tuple(range(ndim)) if axes is None else tuple(
        a % ndim for a in ((axes,) if np.ndim(axes) == 0 else axes))
    strides = (stride,) * len(axes) if np.ndim(stride) == 0 else tuple(stride)
    other = [ax for ax in range(ndim) if ax not in axes]
    # Move the non-convolved axes first, the convolved ones last in *sorted* order
    # (scipy's own axis order), then place every axis back where it was.
    conv_sorted = sorted(axes)
    a = np.moveaxis(in1, other + conv_sorted, range(ndim))
    b = np.moveaxis(in2, other + conv_sorted, range(ndim))
    nb = len(other)
    batch = np.broadcast_shapes(a.shape[:nb], b.shape[:nb])
    out = None
    for idx in itertools.product(*(range(n) for n in batch)):
        ia = tuple(i if a.shape[j] > 1 else 0 for j, i in enumerate(idx))
        ib = tuple(i if b.shape[j] > 1 else 0 for j, i in enumerate(idx))
        r = func(a[ia], b[ib], mode, method=method)
        if out is None:
            out = np.empty(batch + r.shape, dtype=r.dtype)
        out[idx] = r
    if out is None:  # an empty batch: only the shape matters
        shape = output_shape(a.shape, b.shape, mode)[nb:]
        out = np.empty(batch + shape, dtype=dt)
    out = np.moveaxis(out, range(ndim), other + conv_sorted)
    index = [slice(None)] * ndim
    for ax, s in zip(axes, strides):
        index[ax] = slice(None, None, s)
    return out[tuple(index)]


# ----------------------------------------------------------------------------- gradients


def central_difference_vjp(f, x, G, h=2.0 ** -3):
    """``d <f(x), G> / dx`` by central differences in float64, one coordinate at a time.

    For a function linear in `x` (each input of a bilinear op) the truncation error is zero
    and only rounding remains: about ``eps * sum |f| * |G| / h``.
    """
    x = np.array(x, dtype=np.float64)
    G = np.asarray(G, dtype=np.float64)
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = np.vdot(G, f(x))
        flat[i] = old - h
        fm = np.vdot(G, f(x))
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return grad


def correlate_vjp_ref(G, in1, in2, mode="full", *, stride=1, axes=None):
    """Gradients of ``<correlate_ref(in1, in2), G>`` (real inputs) by direct summation over the
    same terms as the forward: only products of overlapping samples, only kept outputs.

    ``grad_in2[l] = sum_m G[m] in1[pos(m, l)]`` from the forward's windows, and
    ``grad_in1[pos(m, l)] += G[m] in2[l]`` scattered tap by tap; broadcast axes summed back.
    Non-finite values land exactly where direct summation puts them.
    """
    G = np.asarray(G, dtype=np.float64)
    a = np.asarray(in1, dtype=np.float64)
    k = np.asarray(in2, dtype=np.float64)
    ndim = a.ndim
    axes = _normalize_axes(axes, ndim)
    strides = _normalize_stride(stride, len(axes))
    slices = [mode_slice(a.shape[ax], k.shape[ax], mode, s) for ax, s in zip(axes, strides)]
    d = len(axes)
    nb = ndim - d
    last = tuple(range(nb, ndim))
    a_m = np.moveaxis(a, axes, last)
    k_m = np.moveaxis(k, axes, last)
    g_m = np.moveaxis(G, axes, last)
    batch = np.broadcast_shapes(a_m.shape[:nb], k_m.shape[:nb])
    taps = k_m.shape[nb:]
    pad = [(0, 0)] * nb + [(t - 1, t - 1) for t in taps]
    ap = np.broadcast_to(np.pad(a_m, pad), batch + tuple(n + 2 * (t - 1) for n, t in zip(a_m.shape[nb:], taps)))
    inside = np.pad(np.ones(a_m.shape[nb:], dtype=bool), [(t - 1, t - 1) for t in taps])
    kb = np.broadcast_to(k_m, batch + taps)
    grad_k = np.zeros(batch + taps)
    grad_ap = np.zeros(ap.shape)
    lengths = g_m.shape[nb:]
    with np.errstate(invalid="ignore", over="ignore"):
        for t in np.ndindex(*taps):
            region = tuple(slice(sl.start + tt, sl.start + tt + sl.step * (n - 1) + 1, sl.step)
                           for sl, tt, n in zip(slices, t, lengths))
            mask = inside[region]
            samples = ap[(Ellipsis,) + region]
            grad_k[(Ellipsis,) + t] = np.where(mask, g_m * samples, 0).sum(axis=tuple(range(nb, ndim)))
            grad_ap[(Ellipsis,) + region] += np.where(mask, g_m * kb[(Ellipsis,) + t][(Ellipsis,) + (None,) * d], 0)
    grad_a = grad_ap[(Ellipsis,) + tuple(slice(t - 1, t - 1 + n) for t, n in zip(taps, a_m.shape[nb:]))]

    def sum_back(x, shape):
        red = tuple(i for i in range(nb) if shape[i] == 1 and x.shape[i] != 1)
        return x.sum(axis=red, keepdims=True) if red else x

    grad_a = np.moveaxis(sum_back(grad_a, a_m.shape), last, axes)
    grad_k = np.moveaxis(sum_back(grad_k, k_m.shape), last, axes)
    return grad_a, grad_k


def vjp_ref(op, G, in1, in2, mode="full", *, stride=1, axes=None):
    """correlate_vjp_ref, or for convolve the same with the kernel reversed (and its gradient
    reversed back)."""
    if op == "correlate":
        return correlate_vjp_ref(G, in1, in2, mode, stride=stride, axes=axes)
    ax = _normalize_axes(axes, np.ndim(in1))
    g1, g2 = correlate_vjp_ref(G, in1, np.flip(in2, axis=ax), mode, stride=stride, axes=axes)
    return g1, np.flip(g2, axis=ax)


def adjoint_sides(forward_value, G, x1, grad1, x2, grad2):
    """The three scalars of the adjoint identity <f(x1, x2), G>, <x1, grad1>, <x2, grad2>."""
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    lhs = float(np.sum(f64(forward_value) * f64(G)))
    r1 = float(np.sum(f64(x1) * f64(grad1)))
    r2 = float(np.sum(f64(x2) * f64(grad2)))
    return lhs, r1, r2


def adjoint_tolerance(op, x1, x2, G, mode, *, stride=1, axes=None, dtype):
    """Bound on the rounding of the three sides: every side sums the same products
    |x1| |x2| |G|, each computed with at most (terms + sizes) roundings."""
    eps = np.finfo(dtype).eps
    abs_f = reference(op, np.abs(x1), np.abs(x2), mode, stride=stride, axes=axes)
    scale = float(np.sum(abs_f * np.abs(np.asarray(G, dtype=np.float64))))
    n = terms_per_output(np.shape(x1), np.shape(x2), axes) + np.size(G) + np.size(x1) + np.size(x2)
    return 4 * eps * n * scale + np.finfo(dtype).tiny


def bad_dtype_array(dtype, shape):
    """An array of `shape` in an unsupported `dtype` (object, str, datetime, complex, ...)."""
    if dtype.kind == "O":
        return np.ones(shape).astype(object)
    if dtype.kind in "US":
        return np.full(shape, "1", dtype=dtype)
    if dtype.kind in "mM":
        return np.ones(shape, dtype=np.int64).astype(dtype)
    return np.ones(shape, dtype=dtype)
