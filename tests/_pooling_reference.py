"""Plain-numpy oracles for pooling (SPEC §3.5); no convlab code is used here.

Layout ``x`` (N, C, *in), d = x.ndim - 2 spatial axes. Per axis, window o covers the padded
samples ``o * stride + r``, ``0 <= r < size``, of the input padded by ``padding`` on both
sides; there are ``(n + 2 * padding - size) // stride + 1`` windows.

Forward: ``np.pad`` (-inf for max, 0 for average and Lp), the windows of the kept outputs
from :func:`numpy.lib.stride_tricks.sliding_window_view`, then a reduction over the window
axes:

- max: ``max``, NaN where the window holds a NaN;
- average: ``sum`` / divisor (the window size, or with ``count_include_pad=False`` the same
  windows of a padded array of ones, summed: the number of input samples);
- Lp: ``(sum |x|^p)^(1/p)`` directly in ``np.longdouble`` (80-bit on x86-64: |x|^p of
  moderate samples stays finite up to p of several hundred, so no rescaling is needed, unlike
  the library); ``p = inf`` is ``max |x|``.

Gradients, independently of the forward: explicit Python loops over every window, its
samples in row-major window order, following SPEC's rules (max: the first NaN if any, else
the first sample strictly larger than all before it; Lp: ``g sign(x) (|x| / y)^(p-1)``, 0 in
a window whose norm is 0; Linf: ``g sign(x)`` to the first largest ``|x|``), accumulated into
``dx`` in float64 (Lp in longdouble). Samples of the padding are skipped (they receive
nothing). Only meant for small arrays.
"""

import itertools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def per_axis(value, d):
    if np.ndim(value) == 0:
        return (int(value),) * d
    value = tuple(int(v) for v in value)
    assert len(value) == d
    return value


def geometry(shape, size, stride=None, padding=0):
    """(sizes, strides, paddings, output sizes) of a pooling call on an input of `shape`."""
    d = len(shape) - 2
    sizes = per_axis(size, d)
    strides = sizes if stride is None else per_axis(stride, d)
    pads = per_axis(padding, d)
    outs = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(shape[2:], sizes, strides, pads))
    return sizes, strides, pads, outs


def output_shape(shape, size, stride=None, padding=0):
    return tuple(shape[:2]) + geometry(shape, size, stride, padding)[3]


def promoted(dtype):
    """SPEC §2: bool / int -> float64, float16 -> float32."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    return dtype.newbyteorder("=")


def _windows(x, size, stride, padding, fill):
    """(N, C, *out, K): the samples of every kept window, flattened in row-major order."""
    d = x.ndim - 2
    sizes, strides, pads, outs = geometry(x.shape, size, stride, padding)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pads], constant_values=fill)
    win = sliding_window_view(xp, sizes, axis=tuple(range(2, 2 + d)))
    kept = (slice(None), slice(None)) + tuple(slice(0, (o - 1) * s + 1, s)
                                              for o, s in zip(outs, strides))
    win = win[kept]
    return win.reshape(win.shape[:2 + d] + (int(np.prod(sizes)),))


def max_pool_ref(x, size, stride=None, padding=0):
    x = np.asarray(x)
    x = x.astype(promoted(x.dtype))
    win = _windows(x, size, stride, padding, -np.inf)
    with np.errstate(invalid="ignore"):
        top = win.max(axis=-1)
    return np.where(np.isnan(win).any(axis=-1), np.nan, top).astype(x.dtype)


def avg_pool_ref(x, size, stride=None, padding=0, count_include_pad=True, dtype=np.float64):
    x = np.asarray(x).astype(dtype)
    with np.errstate(invalid="ignore"):    # inf - inf
        total = _windows(x, size, stride, padding, 0).sum(axis=-1)
    if count_include_pad:
        return total / np.prod(per_axis(size, x.ndim - 2))
    counts = _windows(np.ones(x.shape), size, stride, padding, 0).sum(axis=-1)
    return total / counts


def lp_pool_ref(x, size, p=2, stride=None, padding=0):
    """In np.longdouble (returned as such)."""
    x = np.abs(np.asarray(x).astype(np.longdouble))
    win = _windows(x, size, stride, padding, 0)
    if p == np.inf:
        with np.errstate(invalid="ignore"):
            top = win.max(axis=-1)
        return np.where(np.isnan(win).any(axis=-1), np.longdouble(np.nan), top)
    with np.errstate(over="ignore"):
        return (win ** np.longdouble(p)).sum(axis=-1) ** (1 / np.longdouble(p))


def _window_positions(in_sizes, sizes, strides, pads, o):
    """Input positions (inside the input) of window o, in row-major window order."""
    axes = [range(oi * s - p, oi * s - p + k) for oi, s, p, k in zip(o, strides, pads, sizes)]
    for idx in itertools.product(*axes):
        if all(0 <= i < n for i, n in zip(idx, in_sizes)):
            yield idx


def _first_max(values):
    """Index of the first NaN, else of the first maximum (strictly larger than all before)."""
    best = None
    for j, v in enumerate(values):
        if np.isnan(v):
            return j
        if best is None or v > values[best]:
            best = j
    return best


def _loop(G, x_shape, size, stride, padding, share, dtype=np.float64):
    """dx[n, c, i] = sum over the windows o holding i of share(n, c, o, positions, i-th)."""
    sizes, strides, pads, outs = geometry(x_shape, size, stride, padding)
    dx = np.zeros(x_shape, dtype)
    for n, c in itertools.product(range(x_shape[0]), range(x_shape[1])):
        for o in itertools.product(*(range(m) for m in outs)):
            positions = list(_window_positions(x_shape[2:], sizes, strides, pads, o))
            for idx, value in share(n, c, o, positions):
                dx[(n, c) + idx] += value
    return dx


def max_pool_grad_ref(G, x, size, stride=None, padding=0):
    G = np.asarray(G, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)

    def share(n, c, o, positions):
        values = [x[(n, c) + idx] for idx in positions]
        return [(positions[_first_max(values)], G[(n, c) + o])]

    return _loop(G, x.shape, size, stride, padding, share)


def avg_pool_grad_ref(G, input_shape, size, stride=None, padding=0, count_include_pad=True):
    G = np.asarray(G, dtype=np.float64)
    window = np.prod(per_axis(size, len(input_shape) - 2))

    def share(n, c, o, positions):
        divisor = window if count_include_pad else len(positions)
        return [(idx, G[(n, c) + o] / divisor) for idx in positions]

    return _loop(G, tuple(input_shape), size, stride, padding, share)


def lp_pool_grad_ref(G, x, size, p=2, stride=None, padding=0):
    """In np.longdouble (returned as such)."""
    G = np.asarray(G, dtype=np.longdouble)
    x = np.asarray(x).astype(np.longdouble)

    def share(n, c, o, positions):
        values = [x[(n, c) + idx] for idx in positions]
        g = G[(n, c) + o]
        if p == np.inf:
            j = _first_max([abs(v) for v in values])
            return [(positions[j], g * np.sign(values[j]))]
        norm = sum(abs(v) ** np.longdouble(p) for v in values) ** (1 / np.longdouble(p))
        if norm == 0:
            return []
        return [(idx, g * np.sign(v) * (abs(v) / norm) ** np.longdouble(p - 1))
                for idx, v in zip(positions, values)]

    # the formula as written where the norm is NaN or inf (inf / inf, NaN / NaN)
    with np.errstate(invalid="ignore", over="ignore"):
        return _loop(G, x.shape, size, stride, padding, share, dtype=np.longdouble)
