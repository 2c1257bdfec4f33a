"""Plain-numpy oracles for the layer-level tests (no convlab code is used here).

Layout as in PyTorch: ``x`` (N, C, *in), ``w`` (F, C // groups, *k), d = w.ndim - 2 spatial axes.
Everything is computed in float64 (or `dtype`, e.g. ``np.longdouble``) from the given values.

Padding (SPEC §3), resolved to one (before, after) pair per spatial axis:

    int p / d ints        (p, p) per axis
    d (before, after)     as given (always nested, one pair per axis)
    'valid'               (0, 0)
    'same'                out = ceil(in / s); total = max((out - 1) s + (k - 1) dil + 1 - in, 0);
                          before = total // 2, after = total - before       (TensorFlow 'SAME')
    'full'                ((k - 1) dil, (k - 1) dil)

    out = floor((in + before + after - dil (k - 1) - 1) / s) + 1

Forward (``conv_ref``): zero-pad with ``np.pad``, take the windows of the kept outputs with
``sliding_window_view`` (window span (k - 1) dil + 1, then ``[::dil]`` inside a window and
``[::s]`` across windows) and contract with ``np.einsum`` group by group:

    y[n, f, o] = bias[f] + sum_{c in group(f), m} xpad[n, c, o s + m dil] w[f, c', m]

The padding zeros are part of the input, so ``0 * NaN`` is a NaN term (PyTorch semantics).

Gradients, computed *independently* of the forward, kernel offset by kernel offset ``m`` (the
outputs that use offset ``m`` read the padded input at the strided slice starting at ``m dil``):

    grad_xpad[n, c, m dil + o s] += sum_{f in group} G[n, f, o] w[f, c', m]   (scatter; cropped)
    grad_w[f, c', m]              = sum_{n, o} G[n, f, o] xpad[n, c, m dil + o s]
    grad_bias[f]                  = sum_{n, o} G[n, f, o]

``conv_transpose_ref`` is the same scatter as grad input (the adjoint of ``conv``), with
PyTorch's output size ``(in - 1) s - 2 p + dil (k - 1) + output_padding + 1`` and ``w`` in the
(F, C // groups, *k) layout that ``torch.nn.functional.conv_transposeNd`` uses.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from _reference import promoted_dtype

PADDING_STRINGS = ("valid", "same", "full")


# ----------------------------------------------------------------------------- shared cases

# The cases the layer-level test modules share. Spatial sizes and kernel sizes per d: odd
# and even sizes, so 'same' has asymmetric totals.
IN = {1: (11,), 2: (7, 8), 3: (5, 6, 4)}
K = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}

# Padding forms, per d: int, per-axis ints, nested (before, after) pairs, the three strings.
PADDINGS = {
    "int0": {1: 0, 2: 0, 3: 0},
    "int1": {1: 1, 2: 1, 3: 1},
    "per_axis": {1: (2,), 2: (1, 0), 3: (0, 2, 1)},
    "pairs": {1: ((2, 0),), 2: ((0, 1), (2, 1)), 3: ((1, 0), (0, 2), (1, 1))},
    "valid": {1: "valid", 2: "valid", 3: "valid"},
    "same": {1: "same", 2: "same", 3: "same"},
    "full": {1: "full", 2: "full", 3: "full"},
}
STRIDES = {"s1": {1: 1, 2: 1, 3: 1}, "s2": {1: 2, 2: 2, 3: 2}, "mixed": {1: (3,), 2: (2, 1), 3: (1, 2, 3)}}


# ----------------------------------------------------------------------------- sizes


def per_axis(value, d):
    """An int or d ints -> a tuple of d ints."""
    if np.ndim(value) == 0:
        return (int(value),) * d
    value = tuple(int(v) for v in value)
    assert len(value) == d, (value, d)
    return value


def padding_pairs(in_sizes, k_sizes, padding, stride=1, dilation=1):
    """SPEC §3's padding rule: one (before, after) pair per spatial axis."""
    d = len(in_sizes)
    stride = per_axis(stride, d)
    dilation = per_axis(dilation, d)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * d
        if padding == "full":
            return [((k - 1) * dl, (k - 1) * dl) for k, dl in zip(k_sizes, dilation)]
        if padding == "same":
            pairs = []
            for n, k, s, dl in zip(in_sizes, k_sizes, stride, dilation):
                out = -(-n // s)
                total = max((out - 1) * s + (k - 1) * dl + 1 - n, 0)
                pairs.append((total // 2, total - total // 2))
            return pairs
        raise ValueError(padding)
    if np.ndim(padding) == 0:
        return [(int(padding), int(padding))] * d
    padding = list(padding)
    assert len(padding) == d, (padding, d)
    if all(np.ndim(p) == 0 for p in padding):
        return [(int(p), int(p)) for p in padding]
    return [(int(b), int(a)) for b, a in padding]


def output_size(n, k, before, after, stride=1, dilation=1):
    """floor((in + before + after - dil (k - 1) - 1) / s) + 1 (may be < 1: an invalid problem)."""
    return (n + before + after - dilation * (k - 1) - 1) // stride + 1


def conv_output_shape(x_shape, w_shape, *, stride=1, padding=0, dilation=1):
    """(N, F, *out) of conv(x, w)."""
    d = len(w_shape) - 2
    ins, ks = tuple(x_shape[2:]), tuple(w_shape[2:])
    stride, dilation = per_axis(stride, d), per_axis(dilation, d)
    pairs = padding_pairs(ins, ks, padding, stride, dilation)
    out = tuple(output_size(n, k, b, a, s, dl) for n, k, (b, a), s, dl in zip(ins, ks, pairs, stride, dilation))
    return (x_shape[0], w_shape[0]) + out


def conv_transpose_output_shape(x_shape, w_shape, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """(N, C, *out) of conv_transpose(x, w): out = (in - 1) s - 2 p + dil (k - 1) + op + 1."""
    d = len(w_shape) - 2
    s, p, op, dl = (per_axis(v, d) for v in (stride, padding, output_padding, dilation))
    out = tuple((n - 1) * si - 2 * pi + di * (k - 1) + oi + 1
                for n, k, si, pi, oi, di in zip(x_shape[2:], w_shape[2:], s, p, op, dl))
    return (x_shape[0], w_shape[1] * groups) + out


# SPEC §2/§3 share one promotion rule (bool / int -> float64, float16 -> float32, then
# numpy.result_type): the signal-level tests' oracle of it.
layer_dtype = promoted_dtype


# ----------------------------------------------------------------------------- helpers


def _region(starts, stride, counts):
    """The strided slices (one per spatial axis) that hold `counts` samples from `starts`."""
    return tuple(slice(b, b + s * (c - 1) + 1, s) for b, s, c in zip(starts, stride, counts))


def _prepare(w, flip, dtype):
    w = np.asarray(w, dtype=dtype)
    if flip:
        w = np.flip(w, axis=tuple(range(2, w.ndim)))
    return w


# ----------------------------------------------------------------------------- forward


def conv_ref(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, flip=False, dtype=np.float64):
    """The layer-level forward (SPEC §3.1) by sliding windows and einsum, in `dtype`."""
    x = np.asarray(x, dtype=dtype)
    w = _prepare(w, flip, dtype)
    d = w.ndim - 2
    assert x.ndim == d + 2 and d >= 1
    N, C = x.shape[:2]
    F, Cg = w.shape[:2]
    assert C == Cg * groups and F % groups == 0
    Fg = F // groups
    ks = w.shape[2:]
    stride, dilation = per_axis(stride, d), per_axis(dilation, d)
    pairs = padding_pairs(x.shape[2:], ks, padding, stride, dilation)
    outs = conv_output_shape(x.shape, w.shape, stride=stride, padding=pairs, dilation=dilation)[2:]
    assert min(outs) >= 1, outs
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pairs))
    span = tuple((k - 1) * dl + 1 for k, dl in zip(ks, dilation))
    spatial = tuple(range(2, d + 2))
    win = sliding_window_view(xp, span, axis=spatial)  # (N, C, *positions, *span)
    index = (slice(None), slice(None))
    index += tuple(slice(0, s * (o - 1) + 1, s) for s, o in zip(stride, outs))
    index += tuple(slice(None, None, dl) for dl in dilation)
    win = win[index]  # (N, C, *out, *k)
    assert win.shape[2:] == tuple(outs) + tuple(ks), (win.shape, outs, ks)
    win = win.reshape((N, groups, Cg) + win.shape[2:])
    wg = w.reshape((groups, Fg, Cg) + ks)
    o = "xyz"[:d]  # output positions (letters distinct from n, g, f, c)
    t = "XYZ"[:d]  # kernel offsets
    y = np.einsum(f"ngc{o}{t},gfc{t}->ngf{o}", win, wg).reshape((N, F) + tuple(outs))
    if bias is not None:
        y = y + np.asarray(bias, dtype=dtype).reshape((F,) + (1,) * d)
    return y


# ----------------------------------------------------------------------------- gradients


def _scatter(G, w, padded_sizes, stride, dilation, groups, dtype):
    """sum over kernel offsets m of G (N, F, *out) times w[:, :, m], added into a zero buffer
    (N, C, *padded_sizes) at the positions m dil + o s."""
    G = np.asarray(G, dtype=dtype)
    N, F = G.shape[:2]
    outs = G.shape[2:]
    Fg, Cg = F // groups, w.shape[1]
    buf = np.zeros((N, Cg * groups) + tuple(padded_sizes), dtype=dtype)
    for m in np.ndindex(*w.shape[2:]):
        region = _region([mi * dl for mi, dl in zip(m, dilation)], stride, outs)
        for g in range(groups):
            fs, cs = slice(g * Fg, (g + 1) * Fg), slice(g * Cg, (g + 1) * Cg)
            # (N, Fg, *out) x (Fg, Cg) -> (N, Cg, *out)
            contrib = np.tensordot(G[:, fs], w[(fs, slice(None)) + m], axes=([1], [0]))
            buf[(slice(None), cs) + region] += np.moveaxis(contrib, -1, 1)
    return buf


def conv_grad_input_ref(G, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1, flip=False,
                        dtype=np.float64):
    """d <conv(x, w), G> / dx: the scatter of G through w, cropped to the unpadded input."""
    w = _prepare(w, flip, dtype)
    d = w.ndim - 2
    ins = tuple(input_shape[2:])
    stride, dilation = per_axis(stride, d), per_axis(dilation, d)
    pairs = padding_pairs(ins, w.shape[2:], padding, stride, dilation)
    expected = conv_output_shape(input_shape, w.shape, stride=stride, padding=pairs, dilation=dilation)
    assert tuple(np.shape(G)) == expected, (np.shape(G), expected)
    padded = tuple(n + b + a for n, (b, a) in zip(ins, pairs))
    buf = _scatter(G, w, padded, stride, dilation, groups, dtype)
    crop = (slice(None), slice(None)) + tuple(slice(b, b + n) for n, (b, _) in zip(ins, pairs))
    return np.ascontiguousarray(buf[crop])


def conv_grad_weight_ref(G, x, weight_shape, *, stride=1, padding=0, dilation=1, groups=1, flip=False,
                         dtype=np.float64):
    """d <conv(x, w), G> / dw: per kernel offset, the sum of G times the samples it met."""
    G = np.asarray(G, dtype=dtype)
    x = np.asarray(x, dtype=dtype)
    d = len(weight_shape) - 2
    F, Cg = weight_shape[:2]
    ks = tuple(weight_shape[2:])
    Fg = F // groups
    stride, dilation = per_axis(stride, d), per_axis(dilation, d)
    pairs = padding_pairs(x.shape[2:], ks, padding, stride, dilation)
    expected = conv_output_shape(x.shape, weight_shape, stride=stride, padding=pairs, dilation=dilation)
    assert G.shape == expected, (G.shape, expected)
    outs = G.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pairs))
    gw = np.zeros(tuple(weight_shape), dtype=dtype)
    sp = tuple(range(2, d + 2))
    for m in np.ndindex(*ks):
        region = _region([mi * dl for mi, dl in zip(m, dilation)], stride, outs)
        for g in range(groups):
            fs, cs = slice(g * Fg, (g + 1) * Fg), slice(g * Cg, (g + 1) * Cg)
            samples = xp[(slice(None), cs) + region]  # (N, Cg, *out)
            gw[(fs, slice(None)) + m] = np.tensordot(G[:, fs], samples, axes=([0] + list(sp), [0] + list(sp)))
    if flip:
        gw = np.flip(gw, axis=sp)
    return np.ascontiguousarray(gw)


def conv_grad_bias_ref(G, dtype=np.float64):
    G = np.asarray(G, dtype=dtype)
    return G.sum(axis=(0,) + tuple(range(2, G.ndim)))


# ----------------------------------------------------------------------------- transpose


def conv_transpose_ref(x, w, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                       dtype=np.float64):
    """torch.nn.functional.conv_transposeNd: x (N, F, *in), w (F, C // groups, *k) -> (N, C, *out).

    The adjoint of conv (the same scatter as the input gradient) on a buffer padded by p on
    both sides plus output_padding at the end, cropped to [p, p + out)."""
    w = np.asarray(w, dtype=dtype)
    d = w.ndim - 2
    s, p, op, dl = (per_axis(v, d) for v in (stride, padding, output_padding, dilation))
    shape = conv_transpose_output_shape(np.shape(x), w.shape, stride=s, padding=p, output_padding=op,
                                        dilation=dl, groups=groups)
    outs = shape[2:]
    padded = tuple(o + 2 * pi for o, pi in zip(outs, p))
    buf = _scatter(x, w, padded, s, dl, groups, dtype)
    crop = (slice(None), slice(None)) + tuple(slice(pi, pi + o) for o, pi in zip(outs, p))
    y = np.ascontiguousarray(buf[crop])
    if bias is not None:
        y = y + np.asarray(bias, dtype=dtype).reshape((-1,) + (1,) * d)
    return y


# ----------------------------------------------------------------------------- tolerances


def forward_terms(w_shape, bias=None):
    """Products summed into one output of conv (plus the bias)."""
    return int(np.prod(w_shape[1:])) + (bias is not None)


def conv_tolerance(x, w, bias=None, *, dtype, factor=4.0, **kw):
    """Elementwise bound of any summation order in `dtype`: factor * n * eps * sum |terms|."""
    eps = np.finfo(dtype).eps
    absb = None if bias is None else np.abs(np.asarray(bias, dtype=np.float64))
    abs_ref = conv_ref(np.abs(np.asarray(x, dtype=np.float64)), np.abs(np.asarray(w, dtype=np.float64)), absb, **kw)
    n = forward_terms(np.shape(w), bias) + 2
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny


def grad_input_tolerance(G, w, input_shape, *, dtype, factor=4.0, groups=1, **kw):
    eps = np.finfo(dtype).eps
    abs_ref = conv_grad_input_ref(np.abs(np.asarray(G, dtype=np.float64)), np.abs(np.asarray(w, dtype=np.float64)),
                                  input_shape, groups=groups, **kw)
    n = np.shape(w)[0] // groups * int(np.prod(np.shape(w)[2:])) + 2
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny


def grad_weight_tolerance(G, x, weight_shape, *, dtype, factor=4.0, **kw):
    eps = np.finfo(dtype).eps
    abs_ref = conv_grad_weight_ref(np.abs(np.asarray(G, dtype=np.float64)), np.abs(np.asarray(x, dtype=np.float64)),
                                   weight_shape, **kw)
    n = int(np.prod(np.shape(G)[:1] + np.shape(G)[2:])) + 2
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny


def grad_bias_tolerance(G, *, dtype, factor=4.0):
    eps = np.finfo(dtype).eps
    abs_ref = conv_grad_bias_ref(np.abs(np.asarray(G, dtype=np.float64)))
    n = int(np.prod(np.shape(G)[:1] + np.shape(G)[2:])) + 2
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny


def transpose_tolerance(x, w, bias=None, *, dtype, factor=4.0, groups=1, **kw):
    eps = np.finfo(dtype).eps
    absb = None if bias is None else np.abs(np.asarray(bias, dtype=np.float64))
    abs_ref = conv_transpose_ref(np.abs(np.asarray(x, dtype=np.float64)), np.abs(np.asarray(w, dtype=np.float64)),
                                 absb, groups=groups, **kw)
    n = np.shape(w)[0] // groups * int(np.prod(np.shape(w)[2:])) + 3
    return factor * n * eps * abs_ref + np.finfo(dtype).tiny
