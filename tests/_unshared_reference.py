"""Plain-numpy oracles for the unshared layers (no convlab code is used here).

Locally connected (SPEC §3.2), weights (F, *out, C, *k), bias (F, *out):

    y[n, f, o] = bias[f, o] + sum_{c, m} xpad[n, c, o s + m] w[f, o, c, m]

computed from the windows of the zero-padded input (``sliding_window_view``, every s-th
window) contracted with ``np.einsum`` location by location. The gradients are computed
independently of the forward, kernel offset by kernel offset m:

    grad_xpad[n, c, m + o s] += sum_f G[n, f, o] w[f, o, c, m]     (scatter; cropped)
    grad_w[f, o, c, m]        = sum_n G[n, f, o] xpad[n, c, m + o s]
    grad_bias[f, o]           = sum_n G[n, f, o]

Tiled (SPEC §3.3), weights (F, *tiles, C, *k), bias (F, *tiles): location o uses the kernel
``w[:, o % tiles]``; the oracle builds the (F, *out, C, *k) weights of the equivalent
locally connected layer by that rule, and folds weight and bias gradients back with
``np.add.at`` over the same index.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from _layer_reference import padding_pairs, per_axis


def local_output_sizes(x_shape, k_sizes, stride=1, padding=0):
    d = len(k_sizes)
    stride = per_axis(stride, d)
    pairs = padding_pairs(tuple(x_shape[2:]), k_sizes, padding, stride)
    return tuple((n + b + a - k) // s + 1
                 for n, k, (b, a), s in zip(x_shape[2:], k_sizes, pairs, stride))


def _flip(w, d):
    return np.flip(w, axis=tuple(range(w.ndim - d, w.ndim)))


def _windows(x, k_sizes, stride, padding):
    """(N, C, *out, *k) windows of the padded input, and the padding pairs."""
    d = len(k_sizes)
    stride = per_axis(stride, d)
    pairs = padding_pairs(x.shape[2:], k_sizes, padding, stride)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pairs))
    outs = local_output_sizes(x.shape, k_sizes, stride, pairs)
    win = sliding_window_view(xp, k_sizes, axis=tuple(range(2, d + 2)))
    index = (slice(None), slice(None)) + tuple(slice(0, s * (o - 1) + 1, s)
                                               for s, o in zip(stride, outs))
    return win[index], pairs, outs


def local_conv_ref(x, w, bias=None, *, stride=1, padding=0, flip=False, dtype=np.float64):
    x = np.asarray(x, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    d = (w.ndim - 2) // 2
    if flip:
        w = _flip(w, d)
    k_sizes = w.shape[d + 2:]
    win, _, outs = _windows(x, k_sizes, stride, padding)
    assert w.shape[1:d + 1] == outs, (w.shape, outs)
    o = "xyz"[:d]
    t = "XYZ"[:d]
    y = np.einsum(f"nc{o}{t},f{o}c{t}->nf{o}", win, w)
    if bias is not None:
        y = y + np.asarray(bias, dtype=dtype)
    return y


def local_conv_grad_input_ref(G, w, input_shape, *, stride=1, padding=0, flip=False,
                              dtype=np.float64):
    G = np.asarray(G, dtype=dtype)
    w = np.asarray(w, dtype=dtype)
    d = (w.ndim - 2) // 2
    if flip:
        w = _flip(w, d)
    k_sizes = w.shape[d + 2:]
    stride = per_axis(stride, d)
    pairs = padding_pairs(tuple(input_shape[2:]), k_sizes, padding, stride)
    outs = G.shape[2:]
    padded = tuple(n + b + a for n, (b, a) in zip(input_shape[2:], pairs))
    buf = np.zeros(tuple(input_shape[:2]) + padded, dtype)
    o = "xyz"[:d]
    for m in np.ndindex(*k_sizes):
        region = tuple(slice(mi, mi + s * (c - 1) + 1, s) for mi, s, c in zip(m, stride, outs))
        wm = w[(Ellipsis,) + m]  # (F, *out, C)
        buf[(slice(None), slice(None)) + region] += np.einsum(f"nf{o},f{o}c->nc{o}", G, wm)
    crop = (slice(None), slice(None)) + tuple(slice(b, b + n)
                                              for n, (b, _) in zip(input_shape[2:], pairs))
    return np.ascontiguousarray(buf[crop])


def local_conv_grad_weight_ref(G, x, weight_shape, *, stride=1, padding=0, flip=False,
                               dtype=np.float64):
    G = np.asarray(G, dtype=dtype)
    x = np.asarray(x, dtype=dtype)
    d = (len(weight_shape) - 2) // 2
    k_sizes = tuple(weight_shape[d + 2:])
    stride = per_axis(stride, d)
    pairs = padding_pairs(x.shape[2:], k_sizes, padding, stride)
    xp = np.pad(x, [(0, 0), (0, 0)] + list(pairs))
    outs = G.shape[2:]
    gw = np.zeros(tuple(weight_shape), dtype)
    o = "xyz"[:d]
    for m in np.ndindex(*k_sizes):
        region = tuple(slice(mi, mi + s * (c - 1) + 1, s) for mi, s, c in zip(m, stride, outs))
        samples = xp[(slice(None), slice(None)) + region]  # (N, C, *out)
        gw[(Ellipsis,) + m] = np.einsum(f"nf{o},nc{o}->f{o}c", G, samples)
    if flip:
        gw = _flip(gw, d)
    return np.ascontiguousarray(gw)


def local_conv_grad_bias_ref(G, dtype=np.float64):
    return np.asarray(G, dtype=dtype).sum(axis=0)


def tile_index(out_sizes, tiles):
    """For every output location (C order), its tile position, as d index arrays."""
    grid = np.indices(out_sizes).reshape(len(out_sizes), -1)
    return tuple(g % t for g, t in zip(grid, tiles))


def tiles_to_local(w, out_sizes):
    """(F, *tiles, C, *k) -> (F, *out, C, *k) with location o holding w[:, o % tiles]."""
    w = np.asarray(w)
    d = len(out_sizes)
    tiles = w.shape[1:d + 1]
    index = tile_index(out_sizes, tiles)
    local = w[(slice(None),) + index]  # (F, P, C, *k)
    return local.reshape((w.shape[0],) + tuple(out_sizes) + w.shape[d + 1:])


def fold_to_tiles(a, tiles, out_sizes):
    """(F, *out, ...) summed into (F, *tiles, ...) by o % tiles."""
    d = len(out_sizes)
    flat = a.reshape((a.shape[0], -1) + a.shape[d + 1:])
    out = np.zeros((a.shape[0],) + tuple(tiles) + a.shape[d + 1:], a.dtype)
    index = tile_index(out_sizes, tiles)
    for p in range(flat.shape[1]):
        out[(slice(None),) + tuple(i[p] for i in index)] += flat[:, p]
    return out


def tiled_conv_ref(x, w, bias=None, *, stride=1, padding=0, flip=False, dtype=np.float64):
    d = (np.ndim(w) - 2) // 2
    outs = local_output_sizes(np.shape(x), np.shape(w)[d + 2:], stride, padding)
    wl = tiles_to_local(w, outs)
    bl = None
    if bias is not None:
        b = np.asarray(bias)
        bl = b[(slice(None),) + tile_index(outs, b.shape[1:])].reshape((b.shape[0],) + outs)
    return local_conv_ref(x, wl, bl, stride=stride, padding=padding, flip=flip, dtype=dtype)


def tiled_conv_grad_input_ref(G, w, input_shape, *, stride=1, padding=0, flip=False,
                              dtype=np.float64):
    return local_conv_grad_input_ref(G, tiles_to_local(w, np.shape(G)[2:]), input_shape,
                                     stride=stride, padding=padding, flip=flip, dtype=dtype)


def tiled_conv_grad_weight_ref(G, x, weight_shape, *, stride=1, padding=0, flip=False,
                               dtype=np.float64):
    d = (len(weight_shape) - 2) // 2
    outs = tuple(np.shape(G)[2:])
    local_shape = (weight_shape[0],) + outs + tuple(weight_shape[d + 1:])
    gl = local_conv_grad_weight_ref(G, x, local_shape, stride=stride, padding=padding,
                                    flip=flip, dtype=dtype)
    return fold_to_tiles(gl, weight_shape[1:d + 1], outs)


def tiled_conv_grad_bias_ref(G, tiles, dtype=np.float64):
    G = np.asarray(G, dtype=dtype)
    d = G.ndim - 2
    return fold_to_tiles(G.sum(axis=0), per_axis(tiles, d), G.shape[2:])


def local_tolerance(x, w, bias=None, *, dtype, factor=4.0, **kw):
    """factor * terms * eps * the forward of |x|, |w| (|bias|): a bound for any order."""
    eps = np.finfo(dtype).eps
    d = (np.ndim(w) - 2) // 2
    absb = None if bias is None else np.abs(np.asarray(bias, dtype=np.float64))
    ref = local_conv_ref(np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64)),
                         absb, **kw)
    terms = int(np.prod(np.shape(w)[d + 1:])) + 2
    return factor * terms * eps * ref + np.finfo(dtype).tiny
