"""Separable convolution at the layer level (SPEC §3.4): one 1-D pass per spatial axis.

The kernel of filter f and input channel c is the outer product of d factors,
``w[f, c, m] = ws[0][f, c, m_0] * ... * ws[d-1][f, c, m_{d-1}]``; the passes run in
``convlab._kernels._separable``. 1-D and 2-D problems take the lane kernels (a block of
filters, or of channels for the input gradient, in the vector lanes). A task takes an image
(a chunk of images for the factors' gradients, which are summed per chunk) and every block
of it, or one block when there are too few images to keep the threads busy; the fused
backward computes the column factor's gradient inside the input gradient's passes. 3-D
problems (and very wide 1-D rows) take the plane
kernels, one filter at a time, per (image, block of 4 filters), (image, block of 4
channels) and (block of 4 filters, channel). No two tasks write the same output.
"""

import math

import numpy as np

from convlab._kernels import _memory, _separable
from convlab._layers import (
    _check_memory,
    _check_shape,
    _filter_sums,
    _geometry,
    _real_dtype,
)
from convlab._shapes import window_extents
from convlab._validation import as_array, normalize_shape
from convlab._workers import threads_for

__all__ = ["separable_conv", "separable_conv_grad_input", "separable_conv_grad_weights",
           "separable_conv_grad_bias", "separable_conv_backward"]


def _factors(function, ws):
    if isinstance(ws, np.ndarray) or isinstance(ws, (str, bytes)) or not hasattr(ws, "__len__"):
        raise TypeError(f"{function}: ws must be a sequence of d arrays (F, C, k_i), one per "
                        f"spatial axis; got {type(ws).__name__}")
    ws = [as_array(w, f"ws[{i}]") for i, w in enumerate(ws)]
    if len(ws) not in (1, 2, 3):
        raise ValueError(f"{function}: ws must hold 1, 2 or 3 factors (one per spatial axis); "
                         f"got {len(ws)}")
    for i, w in enumerate(ws):
        if w.ndim != 3:
            raise ValueError(f"{function}: ws[{i}] must have 3 dimensions (F, C, k_{i}); got "
                             f"shape {w.shape}")
        if w.shape[:2] != ws[0].shape[:2]:
            raise ValueError(f"{function}: every factor must have the same (F, C); ws[0] has "
                             f"{ws[0].shape[:2]} and ws[{i}] has {w.shape[:2]}")
    return ws


def _call(function, x_shape, ws, stride, padding, dilation, x_name="x"):
    """The geometry of the dense equivalent convolution (F, C, *k), checked."""
    if len(x_shape) != len(ws) + 2:
        raise ValueError(f"{function}: {x_name} must have {len(ws) + 2} dimensions (N, C, "
                         f"*spatial), one spatial axis per factor ({len(ws)} in ws); got "
                         f"{x_name}.shape={tuple(x_shape)}")
    if x_shape[1] != ws[0].shape[1]:
        raise ValueError(f"{function}: {x_name} has C={x_shape[1]} channels but the factors "
                         f"(F, C, k_i) have C={ws[0].shape[1]}")
    shape = (ws[0].shape[0], ws[0].shape[1]) + tuple(w.shape[2] for w in ws)
    return _geometry(function, x_shape, shape, stride, padding, dilation, 1, x_name=x_name,
                     w_name="the dense kernel")


def _gradient_call(function, grad_out, x, ws, stride, padding, dilation, flip):
    """The checked inputs of a call that takes (grad_out, x, ws): g, x, ws, dtype, geometry
    and _three_axes' plan."""
    g = as_array(grad_out, "grad_out")
    x = as_array(x, "x")
    ws = _factors(function, ws)
    dtype = _real_dtype(function, [("grad_out", g), ("x", x)]
                        + [(f"ws[{i}]", w) for i, w in enumerate(ws)])
    geometry = _call(function, x.shape, ws, stride, padding, dilation)
    _check_shape(function, "grad_out", g, (geometry.batch, geometry.filters) + geometry.out_sizes,
                 "the forward output")
    return g, x, ws, dtype, geometry, _three_axes(geometry, ws, dtype, flip)


def _gradient_reach(geometry, padded, ws):
    """The extent of the output gradient padded for the input gradient: (k - 1) d past each
    side of the windows' extent."""
    return tuple(p + (w.shape[2] - 1) * dl for p, w, dl in zip(padded, ws, geometry.dilations))


def _three_axes(geometry, ws, dtype, flip):
    """Factors, padded extents, output sizes, strides and dilations over three axes (leading
    axes of extent 1 with the factor 1)."""
    lead = 3 - geometry.d
    factors = [np.ones((geometry.filters, geometry.channels, 1), dtype)] * lead
    for w in ws:
        w = np.asarray(w, dtype=dtype)
        factors.append(np.ascontiguousarray(w[..., ::-1] if flip else w))
    padded = window_extents(geometry)
    return (factors, (1,) * lead + padded, (1,) * lead + geometry.out_sizes,
            (1,) * lead + geometry.strides, (1,) * lead + geometry.dilations, padded)


def _window(geometry, padded):
    """For each axis: the slice of the padded input that holds x, and the slice of x that
    lands there (the padded extent may cut x's trailing samples, which no window reads)."""
    inside, source = [], []
    for n, (before, _), p in zip(geometry.in_sizes, geometry.pads, padded):
        stop = min(before + n, p)
        inside.append(slice(before, stop))
        source.append(slice(0, max(stop - before, 0)))
    return tuple(inside), tuple(source)


def _covers(box, shape):
    """Whether the slices `box` (one per trailing axis) cover all of `shape`'s trailing axes."""
    return all(b.start == 0 and b.stop == n for b, n in zip(box, shape[-len(box):]))


def _embedded(array, shape, box, source, dtype):
    """A (pooled) array of `shape` holding array[..., source] in [..., box] and zeros around
    it; `array` itself, read-only use, when it already is that."""
    if (_covers(box, shape) and array.shape == tuple(shape) and array.dtype == dtype
            and array.flags.c_contiguous):
        return array
    out = _memory.empty(shape, dtype)
    lead = (slice(None),) * (len(shape) - len(box))
    for axis, b in enumerate(box):
        before = (slice(None),) * axis
        out[lead + before + (slice(0, b.start),)] = 0
        out[lead + before + (slice(b.stop, None),)] = 0
    out[lead + box] = array[lead + source]
    return out


def _as_plane(values, fill=1):
    """One or two spatial sizes (or offsets, fill=0) as (rows, columns)."""
    return (fill,) * (2 - len(values)) + tuple(values)


def _embedded_planes(array, plane, padded_plane, offsets, dtype, workers):
    """(N, C, rows x columns) planes of `array` placed at `offsets` in zero planes of
    `padded_plane`, as (N, C, prod(padded_plane)), in parallel."""
    planes = np.ascontiguousarray(array, dtype=dtype).reshape(array.shape[:2] + (-1,))
    out = _memory.empty(array.shape[:2] + (math.prod(padded_plane),), dtype)
    _separable.embed_planes(planes, *plane, out, *padded_plane, *offsets, workers)
    return out


def _padded_input(x, geometry, padded, dtype, workers):
    inside, source = _window(geometry, padded)
    shape = (geometry.batch, geometry.channels) + padded
    if geometry.d == 3 or (_covers(inside, padded) and x.shape == shape):
        xp = _embedded(x, shape, inside, source, dtype)
        return xp.reshape(geometry.batch, geometry.channels, -1)
    return _embedded_planes(x, _as_plane(geometry.in_sizes), _as_plane(padded),
                            _as_plane([before for before, _ in geometry.pads], 0), dtype, workers)


# The lane kernels hold STRIP rows of the padded width per thread, in lanes: past this width
# (long 1-D signals) the plane kernels run instead.
_LANES_MAX_WIDTH = 16384


def _lanes_serve(geometry, padded):
    """Whether the lane kernels (1-D and 2-D problems, filters in the vector lanes) serve
    this call."""
    return geometry.d <= 2 and padded[-1] <= _LANES_MAX_WIDTH


def _threads(geometry, workers):
    """Threads for a call: the passes cost k_1 + ... + k_d products per output and channel."""
    g = geometry
    return threads_for(workers, g.batch * g.filters * g.channels * sum(g.k_sizes)
                       * math.prod(g.out_sizes))


def _in_lanes(factor, lanes):
    """(F, C, k) -> (blocks, C, k, lanes): block b's lane l holds filter b * lanes + l (zero
    past F)."""
    filters, channels, k = factor.shape
    blocks = -(-filters // lanes)
    packed = np.zeros((blocks * lanes, channels, k), factor.dtype)
    packed[:filters] = factor
    return np.ascontiguousarray(packed.reshape(blocks, lanes, channels, k).transpose(0, 2, 3, 1))


def _from_lanes(packed, filters):
    """The inverse of _in_lanes."""
    blocks, channels, k, lanes = packed.shape
    return np.ascontiguousarray(
        packed.transpose(0, 3, 1, 2).reshape(blocks * lanes, channels, k)[:filters])


# Gradients summed over the images (the factors') are summed in partial sums per chunk of
# images, then over the chunks: at most _IMAGE_CHUNKS chunks and _PARTIAL_BYTES of partial
# sums, numbers that depend on the shapes alone, so that the result does not depend on the
# threads.
_IMAGE_CHUNKS = 16
_PARTIAL_BYTES = 64 << 20


def _image_chunks(batch, chunk_bytes):
    """How many chunks of images (of ceil(batch / chunks) images, the last one shorter)."""
    if batch == 0:
        return 1
    most = max(1, min(batch, _IMAGE_CHUNKS, _PARTIAL_BYTES // max(chunk_bytes, 1)))
    per_chunk = -(-batch // most)
    return -(-batch // per_chunk)


def _plane(*three_axes):
    """The last two of each three-axis tuple: the H and W axes of the lane kernels."""
    return tuple(t[1:] for t in three_axes)


def separable_conv(x, ws, bias=None, *, stride=1, padding=0, dilation=1, flip=False,
                   workers=None):
    r"""Convolution layer whose kernels are outer products of 1-D factors.

    Computed as one 1-D pass per spatial axis.

    .. math::

        y[n, f, o] = \mathrm{bias}[f] + \sum_c \sum_m x_{\mathrm{pad}}[n, c,
                     o \cdot s + m \cdot \mathrm{dilation}] \prod_i ws_i[f, c, m_i]

    equal to :func:`conv` with the dense kernel
    ``w[f, c, m] = ws[0][f, c, m_0] * ws[1][f, c, m_1] * ...``, at ``k_1 + ... + k_d``
    products per output and channel instead of ``k_1 * ... * k_d``.

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = ``len(ws)`` spatial axes (1, 2 or 3).
    ws : sequence of array_like
        The factors, ``ws[i]`` of shape (F, C, k_i) along spatial axis i.
    bias : array_like, shape (F,), optional
        Added to every output of each filter.
    stride, padding, dilation, flip, workers : optional
        As in :func:`conv` (``flip`` reverses every factor).

    Returns
    -------
    ndarray, shape (N, F, \*out)
        As :func:`conv` gives for the dense kernel; float32 when `x`, every factor and
        `bias` are float32 or float16, float64 otherwise (bool and integers are promoted to
        float64; complex raises TypeError).

    Raises
    ------
    ValueError
        If the factors do not share (F, C), do not match x's channels or number of spatial
        axes, or as in :func:`conv`.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    separable_conv_grad_input, separable_conv_grad_weights, separable_conv_grad_bias
    correlate_separable : the signal-level counterpart.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(32.0).reshape(1, 2, 4, 4)
    >>> rows = np.array([[[1.0, 1.0], [0.0, 1.0]]])        # (F=1, C=2, 2)
    >>> cols = np.array([[[1.0, -1.0], [2.0, 0.0]]])       # (F=1, C=2, 2)
    >>> y = convlab.separable_conv(x, [rows, cols])
    >>> dense = rows[:, :, :, None] * cols[:, :, None, :]  # (1, 2, 2, 2)
    >>> bool(np.allclose(y, convlab.conv(x, dense)))
    True
    """
    x = as_array(x, "x")
    ws = _factors("separable_conv", ws)
    named = [("x", x)] + [(f"ws[{i}]", w) for i, w in enumerate(ws)]
    if bias is not None:
        bias = as_array(bias, "bias")
        named.append(("bias", bias))
    dtype = _real_dtype("separable_conv", named)
    geometry = _call("separable_conv", x.shape, ws, stride, padding, dilation)
    if bias is not None:
        _check_shape("separable_conv", "bias", bias, (geometry.filters,), "one value per filter")
    out_shape = (geometry.batch, geometry.filters) + geometry.out_sizes
    factors, padded3, out3, strides3, dilations3, padded = _three_axes(geometry, ws, dtype, flip)
    _check_memory("separable_conv", dtype, out_shape, (geometry.batch, geometry.channels)
                  + padded)
    y = _memory.empty(out_shape, dtype)
    if y.size == 0:
        return y
    threads = _threads(geometry, workers)
    xp = _padded_input(x, geometry, padded, dtype, threads)
    y3 = y.reshape(geometry.batch, geometry.filters, -1)
    if _lanes_serve(geometry, padded):
        lanes = _separable.lane_width(dtype)
        _separable.forward_lanes(xp, _in_lanes(factors[1], lanes), _in_lanes(factors[2], lanes),
                                 y3, *_plane(padded3, out3, strides3, dilations3), threads)
    else:
        _separable.forward(xp, *factors, y3, padded3, out3, strides3, dilations3,
                           geometry.d < 3, threads)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape((-1,) + (1,) * geometry.d)
    return y


def separable_conv_grad_input(grad_out, ws, input_shape, *, stride=1, padding=0, dilation=1,
                              flip=False, workers=None):
    r"""Gradient of :func:`separable_conv` with respect to its input.

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{f} \;
            \sum_{o, m:\; o \cdot s + m \cdot \mathrm{dilation} - p_{\mathrm{before}} = i}
            G[n, f, o] \prod_j ws_j[f, c, m_j]

    with ``G = grad_out``, ``s = stride`` and ``p_before`` the padding before each spatial
    axis (``flip=True`` reads every factor reversed): :func:`conv_grad_input` for the dense
    kernel. The adjoint passes (scatters), last axis first, summed over the filters.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`separable_conv`.
    ws : sequence of array_like
        The forward call's factors.
    input_shape : sequence of int
        ``(N, C, *in)``, the shape of the forward call's ``x``.
    stride, padding, dilation, flip, workers : optional
        As in :func:`separable_conv`.

    Returns
    -------
    ndarray, shape `input_shape`
        float32 when `grad_out` and every factor are float32 or float16, float64 otherwise
        (bool and integers are promoted to float64, as in :func:`separable_conv`; complex
        raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in
        :func:`separable_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> ws = [np.ones((1, 1, 2)), np.ones((1, 1, 2))]
    >>> convlab.separable_conv_grad_input(np.ones((1, 1, 2, 2)), ws, (1, 1, 3, 3))
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """
    g = as_array(grad_out, "grad_out")
    ws = _factors("separable_conv_grad_input", ws)
    input_shape = normalize_shape(input_shape, "input_shape")
    dtype = _real_dtype("separable_conv_grad_input",
                        [("grad_out", g)] + [(f"ws[{i}]", w) for i, w in enumerate(ws)])
    geometry = _call("separable_conv_grad_input", input_shape, ws, stride, padding, dilation,
                     x_name="input_shape")
    _check_shape("separable_conv_grad_input", "grad_out", g,
                 (geometry.batch, geometry.filters) + geometry.out_sizes,
                 f"the forward output for input_shape={input_shape}")
    factors, padded3, out3, strides3, dilations3, padded = _three_axes(geometry, ws, dtype, flip)
    _check_memory("separable_conv_grad_input", dtype, input_shape,
                  (geometry.batch, geometry.channels) + padded,
                  (geometry.batch, geometry.filters)
                  + _gradient_reach(geometry, padded, ws))   # the padded output gradient
    if math.prod(input_shape) == 0:
        return np.zeros(input_shape, dtype)
    dx, dxp = _input_gradient_buffers(geometry, padded, input_shape, dtype)
    if _by_forward(geometry, padded, factors):
        _grad_input_by_forward(g, factors, dxp, geometry, dtype, padded3, out3, dilations3,
                               _threads(geometry, workers))
    else:
        gc = np.ascontiguousarray(g, dtype=dtype).reshape(geometry.batch, geometry.filters, -1)
        _separable.grad_input(gc, *factors, dxp, padded3, out3, strides3, dilations3,
                              geometry.d < 3, _threads(geometry, workers))
    return _unpadded(dx, dxp, geometry, padded)


def _input_gradient_buffers(geometry, padded, input_shape, dtype):
    """dx, and the (N, C, prod(padded)) array the kernels write: a view of dx when the padded
    extent is the input's (then _unpadded has nothing to do)."""
    inside, source = _window(geometry, padded)
    dx = _memory.empty(input_shape, dtype)
    if _covers(inside, padded) and _covers(source, input_shape):
        return dx, dx.reshape(geometry.batch, geometry.channels, -1)
    return dx, _memory.empty((geometry.batch, geometry.channels, math.prod(padded)), dtype)


def _unpadded(dx, dxp, geometry, padded):
    """dx from the padded input's gradient dxp: the padding's gradient is dropped, trailing
    samples no window reads get zeros."""
    if np.shares_memory(dx, dxp):
        return dx
    inside, source = _window(geometry, padded)
    dxp = dxp.reshape((geometry.batch, geometry.channels) + padded)
    lead = (slice(None), slice(None))
    for axis, b in enumerate(source):
        dx[lead + (slice(None),) * axis + (slice(b.stop, None),)] = 0
    dx[lead + source] = dxp[lead + inside]
    return dx


def _by_forward(geometry, padded, factors):
    """Whether the input gradient runs as a forward pass of the lane kernels.

    At stride 1 the adjoint is the forward pass over the output gradient padded by (k - 1) d
    on each side, with the factors flipped and channels in the lanes. The padding's
    products with the taps are not terms of the gradient: zeros only while the taps are
    finite (a NaN tap takes the scatter kernels, as the definition does)."""
    return (_lanes_serve(geometry, padded) and all(s == 1 for s in geometry.strides)
            and all(np.isfinite(f).all() for f in factors))


def _grad_input_by_forward(g, factors, dxp, geometry, dtype, padded3, out3, dilations3,
                           workers, xl=None, dw2=None):
    """The input gradient into dxp (see _by_forward); with xl, the input in channel lanes,
    also the column factor's gradient, in partial sums per chunk of images into dw2 (see
    _separable.forward_lanes)."""
    spread = [(k - 1) * d for k, d in zip((f.shape[2] for f in factors), dilations3)][1:]
    extents = tuple(o + 2 * e for o, e in zip(out3[1:], spread))
    gp = _embedded_planes(g, out3[1:], extents, spread, dtype, workers)
    lanes = _separable.lane_width(dtype)
    flipped = [np.ascontiguousarray(f.transpose(1, 0, 2)[..., ::-1]) for f in factors[1:]]
    _separable.forward_lanes(gp, _in_lanes(flipped[0], lanes), _in_lanes(flipped[1], lanes), dxp,
                             extents, padded3[1:], (1, 1), dilations3[1:], workers,
                             (spread[1], spread[1] + out3[2]), xl, dw2)


def separable_conv_grad_weights(grad_out, x, ws, *, stride=1, padding=0, dilation=1,
                                flip=False, workers=None):
    r"""Gradients of :func:`separable_conv` with respect to its factors.

    .. math::

        \mathrm{dws}_i[f, c, l] = \sum_{n, o} \sum_{m:\; m_i = l} G[n, f, o] \,
            x_{\mathrm{pad}}[n, c, o \cdot s + m \cdot \mathrm{dilation}]
            \prod_{j \ne i} ws_j[f, c, m_j]

    for the gradient ``dws_i`` of factor ``ws[i]``, with ``G = grad_out``, ``s = stride`` and
    :math:`x_{\mathrm{pad}}` the zero-padded input (``flip=True`` reads every factor
    reversed and returns each gradient reversed).

    For factor i: the output gradient contracted with the input passed along every other
    axis, one tap of axis i at a time.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`separable_conv`.
    x : array_like, shape (N, C, \*in)
        The forward call's input.
    ws : sequence of array_like
        The forward call's factors (each factor's gradient depends on the others).
    stride, padding, dilation, flip, workers : optional
        As in :func:`separable_conv`.

    Returns
    -------
    tuple of ndarray
        One gradient per factor, of its shape; float32 when `grad_out`, `x` and every
        factor are float32 or float16, float64 otherwise (bool and integers are promoted to
        float64, as in :func:`separable_conv`; complex raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in
        :func:`separable_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> ws = [np.ones((1, 1, 2)), np.ones((1, 1, 2))]
    >>> g0, g1 = convlab.separable_conv_grad_weights(np.ones((1, 1, 2, 2)), x, ws)
    >>> g0, g1
    (array([[[20., 44.]]]), array([[[28., 36.]]]))
    """
    g, x, ws, dtype, geometry, plan = _gradient_call("separable_conv_grad_weights", grad_out,
                                                     x, ws, stride, padding, dilation, flip)
    factors, padded3, out3, strides3, dilations3, padded = plan
    _check_memory("separable_conv_grad_weights", dtype,
                  (geometry.batch, geometry.channels) + padded,
                  (geometry.batch, geometry.filters + 8) + geometry.out_sizes)  # g in lanes
    grads = [np.zeros(f.shape, dtype) for f in factors]
    if geometry.batch:
        threads = _threads(geometry, workers)
        xp = _padded_input(x, geometry, padded, dtype, threads)
        if _lanes_serve(geometry, padded):
            # a 1-D problem's row factor is the placeholder [1.0]: no gradient wanted
            grads[1:] = _lane_factor_gradients(g, xp, factors, geometry, dtype, plan, threads,
                                               row=geometry.d == 2)
        else:
            gc = np.ascontiguousarray(g, dtype=dtype).reshape(geometry.batch, geometry.filters,
                                                              -1)
            _separable.grad_weights(gc, xp, *factors, *grads, padded3, out3, strides3,
                                    dilations3, geometry.d < 3, threads)
    grads = grads[3 - geometry.d:]
    if flip:
        grads = [np.ascontiguousarray(gw[..., ::-1]) for gw in grads]
    return tuple(grads)


def _lane_factor_gradients(g, xp, factors, geometry, dtype, plan, threads, row=True,
                           column=True):
    """[row factor's gradient, column factor's gradient] from the lane kernels (None where
    not asked), each summed over the chunks of images; `plan` as _three_axes gives it."""
    _, padded3, out3, strides3, dilations3, _ = plan
    lanes = _separable.lane_width(dtype)
    blocks = -(-geometry.filters // lanes)
    gc = np.ascontiguousarray(g, dtype=dtype).reshape(geometry.batch, geometry.filters, -1)
    gl = _memory.empty((geometry.batch, blocks, gc.shape[2] * lanes), dtype)
    _separable.to_lanes(gc, gl, threads)
    packed = [_in_lanes(f, lanes) for f in factors[1:]]
    asked = (row, column)
    chunks = _image_chunks(geometry.batch, sum(p.nbytes for p, a in zip(packed, asked) if a))
    partial = [_memory.empty((chunks,) + p.shape, dtype) if a else None
               for p, a in zip(packed, asked)]
    _separable.grad_weights_lanes(gl, xp, *packed, *partial,
                                  *_plane(padded3, out3, strides3, dilations3), threads)
    return [None if p is None else _from_lanes(p.sum(axis=0), geometry.filters)
            for p in partial]


def separable_conv_backward(grad_out, x, ws, *, stride=1, padding=0, dilation=1, flip=False,
                            workers=None):
    r"""Input and factor gradients of :func:`separable_conv` in one call.

    Returns what :func:`separable_conv_grad_input` and :func:`separable_conv_grad_weights`
    return, for the cost of fewer passes: at stride 1 in one and two spatial dimensions,
    the output gradient passed along the rows with the row factor,

    .. math::

        G_1[n, f, c, i, j] = \sum_a ws_0[f, c, a] \, G[n, f, i - a \cdot \mathrm{dilation}, j],

    is both the first pass of the input gradient and what the column factor's gradient
    contracts with the input,

    .. math::

        \mathrm{dws}_1[f, c, b] = \sum_{n, i, j} G_1[n, f, c, i, j] \,
            x_{\mathrm{pad}}[n, c, i, j + b \cdot \mathrm{dilation}],

    so it is computed once (``G = grad_out``, zero outside its rows; ``i, j`` index the
    zero-padded input; ``flip=True`` reads the factors reversed, as in
    :func:`separable_conv`; a 1-D problem has only the column factor). In
    the other cases (strides, 3-D, factors with NaN or infinity) it calls the two functions.
    The bias gradient is :func:`separable_conv_grad_bias`.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`separable_conv`.
    x : array_like, shape (N, C, \*in)
        The forward call's input.
    ws : sequence of array_like
        The forward call's factors.
    stride, padding, dilation, flip, workers : optional
        As in :func:`separable_conv`.

    Returns
    -------
    grad_input : ndarray, shape (N, C, \*in)
        As :func:`separable_conv_grad_input` returns, up to rounding.
    grad_weights : tuple of ndarray
        As :func:`separable_conv_grad_weights` returns, up to rounding (float32 when
        `grad_out`, `x` and every factor are float32 or float16, float64 otherwise).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in
        :func:`separable_conv`.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    separable_conv_grad_input, separable_conv_grad_weights, separable_conv_grad_bias

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> ws = [np.ones((1, 1, 2)), np.ones((1, 1, 2))]
    >>> dx, (g0, g1) = convlab.separable_conv_backward(np.ones((1, 1, 2, 2)), x, ws)
    >>> dx
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    >>> g0, g1
    (array([[[20., 44.]]]), array([[[28., 36.]]]))
    """
    name = "separable_conv_backward"
    g, x, ws, dtype, geometry, plan = _gradient_call(name, grad_out, x, ws, stride, padding,
                                                     dilation, flip)
    factors, padded3, out3, strides3, dilations3, padded = plan
    if not (geometry.batch and _by_forward(geometry, padded, factors)):
        keywords = dict(stride=stride, padding=padding, dilation=dilation, flip=flip,
                        workers=workers)
        return (separable_conv_grad_input(g, ws, x.shape, **keywords),
                separable_conv_grad_weights(g, x, ws, **keywords))
    batch, filters, channels = geometry.batch, geometry.filters, geometry.channels
    lanes = _separable.lane_width(dtype)
    channel_blocks, filter_blocks = -(-channels // lanes), -(-filters // lanes)
    _check_memory(name, dtype, x.shape, (batch, channels) + padded,     # dx, padded x
                  (batch, channel_blocks * lanes) + padded,            # x in channel lanes
                  (batch, filters) + _gradient_reach(geometry, padded, ws),  # padded grad_out
                  (batch, filter_blocks * lanes) + geometry.out_sizes)  # grad_out in lanes
    threads = _threads(geometry, workers)
    xp = _padded_input(x, geometry, padded, dtype, threads)
    xl = _memory.empty((batch, channel_blocks, xp.shape[2] * lanes), dtype)
    _separable.to_lanes(xp, xl, threads)
    column_shape = (channel_blocks, filters, factors[2].shape[2], lanes)
    chunks = _image_chunks(batch, math.prod(column_shape) * dtype.itemsize)
    partial = _memory.empty((chunks,) + column_shape, dtype)
    dx, dxp = _input_gradient_buffers(geometry, padded, x.shape, dtype)
    _grad_input_by_forward(g, factors, dxp, geometry, dtype, padded3, out3, dilations3,
                           threads, xl, partial)
    dx = _unpadded(dx, dxp, geometry, padded)
    del xl
    column = partial.sum(axis=0)                 # (channel blocks, F, k, lanes)
    column = column.transpose(1, 0, 3, 2).reshape(filters, channel_blocks * lanes, -1)
    grads = [np.ascontiguousarray(column[:, :channels])]
    if geometry.d == 2:
        grads.insert(0, _lane_factor_gradients(g, xp, factors, geometry, dtype, plan, threads,
                                               column=False)[0])
    if flip:
        grads = [np.ascontiguousarray(gw[..., ::-1]) for gw in grads]
    return dx, tuple(grads)


def separable_conv_grad_bias(grad_out):
    r"""Gradient of :func:`separable_conv` with respect to its bias.

    .. math::

        \mathrm{db}[f] = \sum_{n, o} G[n, f, o]

    The sum of `grad_out` (``G``) over the batch and the spatial axes, as
    :func:`conv_grad_bias`.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output, 1, 2 or 3 spatial axes.

    Returns
    -------
    ndarray, shape (F,)
        float32 for float32 or float16 `grad_out`, float64 otherwise (bool and integers are
        promoted to float64; complex raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have 3, 4 or 5 dimensions.
    TypeError
        On complex or non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> convlab.separable_conv_grad_bias(np.ones((2, 3, 4, 4)))
    array([32., 32., 32.])
    """
    return _filter_sums("separable_conv_grad_bias", grad_out)
