"""Unshared convolution: locally connected (``local_conv``) and tiled (``tiled_conv``) layers.

A locally connected layer gives every output location its own filters, weights
``(F, *out, C, *k)``; a tiled convolution (Ngiam et al., 2010) shares filters between the
locations that are a whole number of tiles apart, weights ``(F, *tiles, C, *k)``.

How they are computed:

- locally connected: ``convlab._kernels._unshared``, one small matrix product per location
  over a batch-last copy of the (padded) input, a batch chunk at a time;
- tiled, tiles = 1 along every axis: :func:`convlab.conv` itself;
- tiled, otherwise: the same kernels as locally connected, location o using the kernel
  slot ``o % tiles``;
- tiled with a batch too small to fill the kernels' vectors: the phase decomposition. The
  locations ``o = t + j * tiles`` of one phase t use one kernel and form a strided
  convolution (stride ``stride * tiles``, window origin shifted by ``t * stride``),
  computed by the GEMM path of :func:`convlab.conv`.
"""

import functools
import math

import numpy as np

from convlab._kernels import _gemm, _memory, _unshared
from convlab._layers import (
    _COPY_BYTES,
    _WEIGHT_GRADIENT_PARTS,
    _WORKSPACE_BYTES,
    _batch_chunks,
    _bias_gradient_input,
    _check_memory,
    _check_shape,
    _geometry,
    _Geometry,
    _real_dtype,
    _rows,
    _spatially_flipped,
    _Threads,
    _weights,
    conv,
    conv_grad_input,
    conv_grad_weight,
)
from convlab._shapes import window_extents
from convlab._validation import as_array, normalize_positive_ints, normalize_shape
from convlab._workers import threads_for, usable_cores

__all__ = [
    "local_conv",
    "local_conv_grad_input",
    "local_conv_grad_weight",
    "local_conv_grad_bias",
    "tiled_conv",
    "tiled_conv_grad_input",
    "tiled_conv_grad_weight",
    "tiled_conv_grad_bias",
]

# Per-thread buffers of the locally connected kernels (one location's filters x a batch
# chunk) stay below this size, so that they live in the core's cache.
_LOCATION_BUFFER_BYTES = 1 << 20
# The weight gradient of a tiled convolution gathers the output gradients of up to this many
# bytes of locations sharing a kernel, and sums them before reducing its vectors.
_GROUP_BYTES = 128 << 10
# The input gradient splits the output rows into up to this many stripes (see there).
_INPUT_GRADIENT_STRIPES = 8
# A tiled convolution runs on the locally connected kernels, its kernel slots being the tile
# positions, unless the batch fills less than this many vectors of those kernels and the
# phases have at least this many locations on average (enough for a GEMM).
_PHASE_BATCH_VECTORS = 1
_PHASE_MIN_LOCATIONS = 16

_LAYOUTS = {"local": "(F, *out, C, *k)", "tiled": "(F, *tiles, C, *k)"}
_MIDDLE = {"local": "out", "tiled": "tiles"}


class _Unshared:
    """A checked unshared call: the shared-convolution geometry of its windows plus the
    sizes of the weight axes between F and C (the output size or the tiles)."""

    def __init__(self, geometry, middle):
        self.geometry = geometry
        self.middle = middle

    @property
    def d(self):
        return self.geometry.d

    @property
    def locations(self):
        return math.prod(self.geometry.out_sizes)

    @property
    def slots(self):
        """Kernels per filter: one per location (local) or per tile position (tiled)."""
        return math.prod(self.middle)

    @property
    def taps(self):
        """Channels times kernel taps: the length of one location's filter."""
        return self.geometry.channels * math.prod(self.geometry.k_sizes)


def _unshared_geometry(function, kind, x_shape, w_shape, stride, padding, x_name="x",
                       w_name="w"):
    layout = _LAYOUTS[kind]
    if len(w_shape) not in (4, 6, 8):
        raise ValueError(f"{function}: {w_name} must have 4, 6 or 8 dimensions {layout} for 1, "
                         f"2 or 3 spatial axes; got {w_name}.shape={tuple(w_shape)}")
    d = (len(w_shape) - 2) // 2
    if len(x_shape) != d + 2:
        raise ValueError(f"{function}: {x_name} must have {d + 2} dimensions (N, C, *spatial) to "
                         f"match {w_name}.shape={tuple(w_shape)} {layout}; got "
                         f"{x_name}.shape={tuple(x_shape)}")
    filters, middle, channels = w_shape[0], tuple(w_shape[1:1 + d]), w_shape[1 + d]
    if x_shape[1] == 0 or filters == 0:
        raise ValueError(f"{function}: channels must be nonzero; got C={x_shape[1]} "
                         f"({x_name}.shape={tuple(x_shape)}) and F={filters} "
                         f"({w_name}.shape={tuple(w_shape)})")
    if channels != x_shape[1]:
        raise ValueError(f"{function}: {x_name} has C={x_shape[1]} channels but {w_name}.shape="
                         f"{tuple(w_shape)} {layout} expects C={channels}")
    if kind == "tiled" and min(middle) < 1:
        raise ValueError(f"{function}: tiles must be >= 1 along every spatial axis; got tiles="
                         f"{middle} ({w_name}.shape={tuple(w_shape)} {layout})")
    geometry = _geometry(function, x_shape, (filters, channels) + tuple(w_shape[2 + d:]),
                         stride, padding, 1, 1, x_name=x_name, w_name=w_name)
    if kind == "local" and middle != geometry.out_sizes:
        raise ValueError(f"{function}: {w_name}.shape={tuple(w_shape)} {layout} has kernels for "
                         f"an output of size {middle}, but {x_name}, stride and padding give "
                         f"an output of size {geometry.out_sizes}")
    return _Unshared(geometry, middle)


def _forward_arrays(function, x, w, bias, kind, stride, padding):
    x = as_array(x, "x")
    w = as_array(w, "w")
    named = [("x", x), ("w", w)]
    if bias is not None:
        bias = as_array(bias, "bias")
        named.append(("bias", bias))
    dtype = _real_dtype(function, named)
    call = _unshared_geometry(function, kind, x.shape, w.shape, stride, padding)
    if bias is not None:
        _check_shape(function, "bias", bias, (call.geometry.filters,) + call.middle,
                     f"one value per filter and {_MIDDLE[kind]} position, (F, *{_MIDDLE[kind]})")
    return x, w, bias, dtype, call


def _gradient_arrays(function, g, other, other_name, shape, shape_name, kind, stride, padding,
                     input_gradient):
    g = as_array(g, "grad_out")
    other = as_array(other, other_name)
    shape = normalize_shape(shape, shape_name)
    dtype = _real_dtype(function, [("grad_out", g), (other_name, other)])
    if input_gradient:
        call = _unshared_geometry(function, kind, shape, other.shape, stride, padding,
                                  x_name=shape_name)
    else:
        call = _unshared_geometry(function, kind, other.shape, shape, stride, padding,
                                  w_name=shape_name)
    geometry = call.geometry
    _check_shape(function, "grad_out", g, (geometry.batch, geometry.filters) + geometry.out_sizes,
                 f"the forward output for {shape_name}={shape}")
    return g, other, shape, dtype, call


# ----------------------------------------------------------------------------------------
# Locally connected: the kernels of convlab._kernels._unshared


@functools.lru_cache(maxsize=32)
def _offsets(channels, k3, out3, strides3, padded3, middle, width, flip):
    """The index arrays of the locally connected kernels (read-only, cached: a training loop
    asks for the same ones at every step).

    rows[(c, m)]: where tap (c, m) sits inside a window of the batch-last padded input;
    bases[o]: where the window of location o starts; slots[o]: the kernel of location o,
    ``o % middle`` (itself for a locally connected layer, its tile position for a tiled
    one); order, starts: the locations of slot s are ``order[starts[s]:starts[s + 1]]``.
    """
    taps = np.indices((channels,) + k3).reshape(4, -1)
    if flip:
        taps[1:] = np.array(k3)[:, None] - 1 - taps[1:]
    _, p1, p2 = padded3
    p0 = padded3[0]
    rows = (((taps[0] * p0 + taps[1]) * p1 + taps[2]) * p2 + taps[3]) * width
    o = np.indices(out3).reshape(3, -1)
    bases = (((o[0] * strides3[0]) * p1 + o[1] * strides3[1]) * p2 + o[2] * strides3[2]) * width
    d = len(middle)
    slots = np.ravel_multi_index(tuple(a % m for a, m in zip(o[3 - d:], middle)), middle)
    order = np.argsort(slots, kind="stable")
    starts = np.searchsorted(slots[order], np.arange(math.prod(middle) + 1))
    arrays = tuple(np.ascontiguousarray(a, dtype=np.intp) for a in (rows, bases, slots, order,
                                                                     starts))
    for a in arrays:
        a.flags.writeable = False
    return arrays


class _LocalPlan:
    """Where each window and tap sits in the batch-last padded input, and the batch chunk
    converted at a time."""

    def __init__(self, call, dtype, flip, workers):
        g = call.geometry
        self.call = call
        self.threads = threads_for(workers, g.batch * g.filters * g.rows
                                   * math.prod(g.out_sizes))
        lanes = _unshared.lanes(dtype)
        lead = (1,) * (3 - g.d)
        # the extent of the padded input that the windows read (trailing samples that no
        # window reaches are left out)
        padded = window_extents(g)
        self.in_sizes = lead + g.in_sizes
        self.padded = lead + padded
        self.before = (0,) * (3 - g.d) + tuple(b for b, _ in g.pads)
        self.samples = g.channels * math.prod(padded)
        per_image = self.samples * dtype.itemsize
        chunk = min(_COPY_BYTES // per_image,
                    _LOCATION_BUFFER_BYTES // (g.filters * dtype.itemsize))
        chunk = max(lanes, chunk // lanes * lanes)
        self.chunk = min(chunk, -(-g.batch // lanes) * lanes) if g.batch else lanes
        self.width = self.chunk
        self.rows, self.bases, self.slots, self.order, self.starts = _offsets(
            g.channels, lead + g.k_sizes, lead + g.out_sizes, lead + g.strides, self.padded,
            call.middle, self.width, bool(flip))

    def chunks(self):
        batch = self.call.geometry.batch
        return [slice(start, min(start + self.chunk, batch))
                for start in range(0, batch, self.chunk)]

    def to_batch_last(self, x, part, dtype, xt):
        images = np.ascontiguousarray(x[part], dtype=dtype)
        images = images.reshape(images.shape[0], images.shape[1], -1)
        _unshared.to_batch_last(images, xt, self.in_sizes, self.padded, self.before,
                                self.threads)


def _local_weights(w, call, dtype):
    """(F, *middle, C, *k) -> (F, slots, C * taps) in `dtype`."""
    g = call.geometry
    return np.ascontiguousarray(w, dtype=dtype).reshape(g.filters, call.slots, call.taps)


def _local_bias(bias, call, dtype):
    if bias is None:
        return np.empty((0, 0), dtype)
    return np.ascontiguousarray(bias, dtype=dtype).reshape(call.geometry.filters, call.slots)


def _local_forward(x, w3, bias2, call, dtype, flip, workers):
    g = call.geometry
    out_shape = (g.batch, g.filters) + g.out_sizes
    y = _memory.empty(out_shape, dtype)
    if y.size == 0:
        return y
    plan = _LocalPlan(call, dtype, flip, workers)
    xt = np.empty((plan.samples, plan.width), dtype)
    y3 = y.reshape(g.batch, g.filters, call.locations)
    for part in plan.chunks():
        plan.to_batch_last(x, part, dtype, xt)
        _unshared.forward(xt, w3, bias2, y3[part], plan.rows, plan.bases, plan.slots,
                          plan.threads)
    return y


def _local_grad_input(grad, w3, input_shape, call, dtype, flip, workers):
    g = call.geometry
    dx = _memory.empty(input_shape, dtype)
    if dx.size == 0:
        return dx
    plan = _LocalPlan(call, dtype, flip, workers)
    dxt = np.empty((plan.samples, plan.width), dtype)
    dx3 = dx.reshape(g.batch, g.channels, -1)
    # Stripes of output rows (along the first spatial axis) tall enough that a stripe's
    # windows overlap only those of the next one; a fixed number of them, so that the sums'
    # order does not depend on the threads.
    rows_out, k, s = g.out_sizes[0], g.k_sizes[0], g.strides[0]
    height = max((k - 1) // s + 1, -(-rows_out // _INPUT_GRADIENT_STRIPES))
    per_row = call.locations // rows_out
    stripes = np.minimum(np.arange(0, rows_out + height, height), rows_out) * per_row
    stripes = np.unique(stripes).astype(np.intp)
    for part in plan.chunks():
        grads = np.ascontiguousarray(grad[part], dtype=dtype)
        grads = grads.reshape(grads.shape[0], g.filters, call.locations)
        _unshared.grad_input(grads, w3, dxt, plan.rows, plan.bases, plan.slots, stripes,
                             plan.threads)
        _unshared.from_batch_last(dxt, dx3[part], plan.in_sizes, plan.padded, plan.before,
                                  plan.threads)
    return dx


def _local_grad_weight(grad, x, call, dtype, flip, workers):
    """The gradient as (F, slots, C * taps)."""
    g = call.geometry
    if g.batch == 0:
        return np.zeros((g.filters, call.slots, call.taps), dtype)
    plan = _LocalPlan(call, dtype, flip, workers)
    # Slots shared by many locations (tiled) are summed in a fixed number of independent
    # parts, added in order at the end: work for every thread, bits that do not depend on
    # the threads.
    part_bytes = g.filters * call.slots * call.taps * dtype.itemsize
    parts = max(1, min(-(-_WEIGHT_GRADIENT_PARTS // call.slots), call.locations // call.slots,
                       _WORKSPACE_BYTES // part_bytes))
    shape = (parts, g.filters, call.slots, call.taps)
    dw = _memory.empty(shape, dtype) if parts == 1 else np.empty(shape, dtype)
    # locations of one slot summed together before their vectors are reduced to numbers
    group = max(1, min(call.locations // call.slots,
                       _GROUP_BYTES // (g.filters * plan.width * dtype.itemsize)))
    xt = np.empty((plan.samples, plan.width), dtype)
    for i, part in enumerate(plan.chunks()):
        plan.to_batch_last(x, part, dtype, xt)
        grads = np.ascontiguousarray(grad[part], dtype=dtype)
        grads = grads.reshape(grads.shape[0], g.filters, call.locations)
        _unshared.grad_weight(grads, xt, dw, plan.rows, plan.bases, plan.slots, plan.order,
                              plan.starts, group, i > 0, plan.threads)
    return dw[0] if parts == 1 else dw.sum(axis=0)


def _local_memory(function, call, dtype, *shapes):
    """MemoryError before allocating the result, the working copies and the batch-last
    buffer (one batch chunk of the padded input)."""
    g = call.geometry
    lanes = _unshared.lanes(dtype)
    samples = g.channels * math.prod(window_extents(g))
    width = min(-(-max(g.batch, 1) // lanes) * lanes,
                max(lanes, _COPY_BYTES // (samples * dtype.itemsize)))
    _check_memory(function, dtype, *shapes, (samples, width))


def local_conv(x, w, bias=None, *, stride=1, padding=0, flip=False, workers=None):
    r"""Locally connected layer: a convolution whose filters differ at every output location.

    .. math::

        y[n, f, o] = \mathrm{bias}[f, o] + \sum_{c, m}
                     x_{\mathrm{pad}}[n, c, o \cdot s + m] \, w[f, o, c, m]

    (cross-correlation; ``flip=True`` reverses every kernel along its spatial axes). The
    unshared convolution of Goodfellow et al., ch. 9.5, as in DeepFace-style layers.

    Which kernel serves which output, for a 1-D input of 5 samples and kernels of 3 taps
    (3 outputs)::

        x:    x0  x1  x2  x3  x4
        y0 =  w[:, 0] . (x0 x1 x2)
        y1 =      w[:, 1] . (x1 x2 x3)
        y2 =          w[:, 2] . (x2 x3 x4)

    every output position ``o`` has its own ``w[:, o]``, of shape (F, C, \*k).

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    w : array_like, shape (F, \*out, C, \*k)
        One (F, C, \*k) filter bank per output location; ``out`` must be the output size
        that `x`, `stride` and `padding` give.
    bias : array_like, shape (F, \*out), optional
        One bias per filter and output location.
    stride : int or sequence of int, optional
        Step between windows along each spatial axis (>= 1).
    padding : int, sequence of int, sequence of (int, int), or {'valid', 'same', 'full'}, optional
        Zero padding, as in :func:`convlab.conv`.
    flip : bool, optional
        True convolution: every kernel reversed along its spatial axes.
    workers : int, optional
        Threads (see :func:`convlab.set_workers`).

    Returns
    -------
    ndarray, shape (N, F, \*out)
        ``out = floor((in + before + after - k) / stride) + 1``; float32 when every input
        is float32 or float16, float64 otherwise (bool and integers are promoted to
        float64; complex raises TypeError).

    Raises
    ------
    ValueError
        If the weights' output size differs from the one `x`, `stride` and `padding` give
        (the error names both), on a channel mismatch, a bias of the wrong shape, an output
        size below 1, or a bad stride or padding.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    local_conv_grad_input, local_conv_grad_weight, local_conv_grad_bias : its gradients.
    tiled_conv : kernels shared between locations a whole number of tiles apart.
    conv : one kernel shared by every location.

    Notes
    -----
    Each location is a small matrix product over the batch; the input is copied batch-last
    (images adjacent in memory) a chunk of up to 128 MiB at a time (never less than one vector
    of 4 to 8 images), and the unfolded input (every window of every image) is never formed.
    With identical kernels at every location the result equals :func:`convlab.conv`.

    Examples
    --------
    Three locations, each with its own 2-tap kernel:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]).reshape(1, 3, 1, 2)
    >>> convlab.local_conv(x, w)
    array([[[ 1.,  3., -1.]]])
    """
    x, w, bias, dtype, call = _forward_arrays("local_conv", x, w, bias, "local", stride, padding)
    g = call.geometry
    _local_memory("local_conv", call, dtype, (g.batch, g.filters) + g.out_sizes, w.shape)
    return _local_forward(x, _local_weights(w, call, dtype), _local_bias(bias, call, dtype),
                          call, dtype, flip, workers)


def local_conv_grad_input(grad_out, w, input_shape, *, stride=1, padding=0, flip=False,
                          workers=None):
    r"""Gradient of :func:`local_conv` with respect to its input.

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{f} \;
            \sum_{o, m:\; o \cdot s + m - p_{\mathrm{before}} = i} G[n, f, o] \, w[f, o, c, m]

    with ``G = grad_out``, ``s = stride`` and ``p_before`` the padding before each spatial
    axis, `w` in its layout (F, \*out, C, \*k) (``flip=True`` reads ``w[f, o, c, k - 1 - m]``).

    ``local_conv_grad_input(G, w, x.shape, ...)`` is ``d <local_conv(x, w, ...), G> / dx``:
    each output gradient ``G[n, f, o]`` is spread back over the window of location o,
    weighted by that location's own kernel ``w[f, o]``.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`local_conv`.
    w : array_like, shape (F, \*out, C, \*k)
        The weights of the forward call.
    input_shape : sequence of int
        ``(N, C, *in)``, the shape of the forward call's ``x``.
    stride, padding, flip, workers : optional
        As in :func:`local_conv`.

    Returns
    -------
    ndarray, shape `input_shape`
        float32 when `grad_out` and `w` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64, as in :func:`local_conv`; complex raises
        TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`local_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]).reshape(1, 3, 1, 2)
    >>> convlab.local_conv_grad_input(np.ones((1, 1, 3)), w, (1, 1, 4))
    array([[[ 1.,  0.,  2., -1.]]])
    """
    g, w, input_shape, dtype, call = _gradient_arrays(
        "local_conv_grad_input", grad_out, w, "w", input_shape, "input_shape", "local", stride,
        padding, True)
    _local_memory("local_conv_grad_input", call, dtype, input_shape, w.shape)
    return _local_grad_input(g, _local_weights(w, call, dtype), input_shape, call, dtype, flip,
                             workers)


def local_conv_grad_weight(grad_out, x, weight_shape, *, stride=1, padding=0, flip=False,
                           workers=None):
    r"""Gradient of :func:`local_conv` with respect to its weights.

    .. math::

        \mathrm{dw}[f, o, c, m] = \sum_{n} G[n, f, o] \, x_{\mathrm{pad}}[n, c, o \cdot s + m]

    in the layout (F, \*out, C, \*k), with ``G = grad_out``, ``s = stride`` and
    :math:`x_{\mathrm{pad}}` the zero-padded input (``flip=True`` returns this reversed
    along the kernel's spatial axes).

    ``local_conv_grad_weight(G, x, w.shape, ...)`` is ``d <local_conv(x, w, ...), G> / dw``:
    the kernel of location o receives the sum over the batch of ``G[n, f, o]`` times the
    window of o (zero where the window lies in the padding).

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`local_conv`.
    x : array_like, shape (N, C, \*in)
        The input of the forward call.
    weight_shape : sequence of int
        ``(F, *out, C, *k)``, the shape of the forward call's ``w``.
    stride, padding, flip, workers : optional
        As in :func:`local_conv`.

    Returns
    -------
    ndarray, shape `weight_shape`
        float32 when `grad_out` and `x` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64, as in :func:`local_conv`; complex raises
        TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`local_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> G = np.array([[[1.0, 0.0, 2.0]]])
    >>> convlab.local_conv_grad_weight(G, x, (1, 3, 1, 2))[0, :, 0]
    array([[1., 2.],
           [0., 0.],
           [6., 8.]])
    """
    g, x, weight_shape, dtype, call = _gradient_arrays(
        "local_conv_grad_weight", grad_out, x, "x", weight_shape, "weight_shape", "local",
        stride, padding, False)
    _local_memory("local_conv_grad_weight", call, dtype, x.shape, weight_shape)
    return _local_grad_weight(g, x, call, dtype, flip, workers).reshape(weight_shape)


def local_conv_grad_bias(grad_out):
    r"""Gradient of :func:`local_conv` with respect to its bias.

    .. math::

        \mathrm{db}[f, o] = \sum_{n} G[n, f, o]

    ``grad_out`` (``G``) summed over the batch.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`local_conv`, with 1,
        2 or 3 spatial axes.

    Returns
    -------
    ndarray, shape (F, \*out)
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
    >>> convlab.local_conv_grad_bias(np.ones((4, 2, 3)))
    array([[4., 4., 4.],
           [4., 4., 4.]])
    """
    g = _bias_gradient_input("local_conv_grad_bias", grad_out)
    return g.sum(axis=0)


# ----------------------------------------------------------------------------------------
# Tiled: phases on the GEMM path, or the locally connected kernels


def _fold_tiles(a, tiles, first_axis):
    """Sum ``a`` (``*out`` on the axes from `first_axis`) over the locations of each tile:
    ``out[..., t, ...] = sum_j a[..., t + j * tiles, ...]`` (tiles past the output get 0)."""
    for i, t in enumerate(tiles):
        axis = first_axis + i
        size = a.shape[axis]
        blocks = -(-size // t)
        pad = [(0, 0)] * a.ndim
        pad[axis] = (0, blocks * t - size)
        a = np.pad(a, pad)
        a = a.reshape(a.shape[:axis] + (blocks, t) + a.shape[axis + 1:]).sum(axis=axis)
    return a


def _phases(call):
    """For each phase t with at least one location: (t, positions per axis, the phase's
    geometry as a strided convolution)."""
    g = call.geometry
    tiles = call.middle
    phases = []
    for t in np.ndindex(*tiles):
        counts = tuple(-(-(n - ti) // ti_size) if ti < n else 0
                       for ti, n, ti_size in zip(t, g.out_sizes, tiles))
        if 0 in counts:
            continue
        pads = [(b - ti * s, a) for ti, (b, a), s in zip(t, g.pads, g.strides)]
        strides = tuple(s * ti_size for s, ti_size in zip(g.strides, tiles))
        phase = _Geometry(g.batch, g.channels, g.filters, 1, g.in_sizes, g.k_sizes, counts,
                          pads, strides, (1,) * g.d)
        phases.append((t, counts, phase))
    return phases


def _phase_view(a, t, tiles):
    """The locations of phase t along the trailing axes of `a`."""
    return a[(Ellipsis,) + tuple(slice(ti, None, ts) for ti, ts in zip(t, tiles))]


def _uses_phases(call, dtype):
    """The phase decomposition for batches smaller than one vector of the locally connected
    kernels (whose lanes would mostly idle), when the phases are long enough for a GEMM."""
    phases = math.prod(min(t, n) for t, n in zip(call.middle, call.geometry.out_sizes))
    return (call.geometry.batch < _PHASE_BATCH_VECTORS * _unshared.lanes(dtype)
            and call.locations >= _PHASE_MIN_LOCATIONS * phases)


def _shared_weights(w, call):
    """The one kernel of a tiles = 1 call, shaped (F, C, *k) for conv."""
    g = call.geometry
    return w.reshape((g.filters, g.channels) + g.k_sizes)


def _phase_weights(w, t, call, dtype, flip):
    d = call.d
    return _weights(w[(slice(None),) + tuple(t)], dtype, flip, d)


def tiled_conv(x, w, bias=None, *, stride=1, padding=0, flip=False, workers=None):
    r"""Tiled convolution (Ngiam et al., 2010): kernels repeat every `tiles` locations.

    Kernels are shared between locations a whole number of tiles apart.

    .. math::

        y[n, f, o] = \mathrm{bias}[f, o \bmod T] + \sum_{c, m}
                     x_{\mathrm{pad}}[n, c, o \cdot s + m] \, w[f, o \bmod T, c, m]

    with T the tiles per axis. Tiles = 1 is :func:`convlab.conv`; tiles equal to the output
    size is :func:`local_conv`.

    Which kernel serves which output, for tiles = 2 and 5 outputs along one axis::

        y0   y1   y2   y3   y4
        w0   w1   w0   w1   w0        (w0 = w[:, 0], w1 = w[:, 1])

    and in 2-D with tiles = (2, 2) the kernels repeat as a 2 x 2 checkerboard::

        w00 w01 w00 w01 ...
        w10 w11 w10 w11 ...
        w00 w01 w00 w01 ...

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    w : array_like, shape (F, \*tiles, C, \*k)
        One (F, C, \*k) filter bank per tile position; tiles >= 1 along each axis (tiles
        that do not divide the output size, or exceed it, are allowed).
    bias : array_like, shape (F, \*tiles), optional
        One bias per filter and tile position.
    stride, padding, flip, workers : optional
        As in :func:`local_conv`.

    Returns
    -------
    ndarray, shape (N, F, \*out)
        ``out = floor((in + before + after - k) / stride) + 1``; float32 when every input
        is float32 or float16, float64 otherwise (bool and integers are promoted to
        float64; complex raises TypeError).

    Raises
    ------
    ValueError
        On tiles < 1, a channel mismatch, a bias of the wrong shape, an output size below 1,
        or a bad stride or padding.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    tiled_conv_grad_input, tiled_conv_grad_weight, tiled_conv_grad_bias : its gradients.
    local_conv, conv : the two ends of the family.

    Notes
    -----
    Computed by the kernels of :func:`local_conv`, location o reading the kernel of its tile
    position (the kernels stay in cache instead of streaming from memory). For a batch
    smaller than one vector of those kernels (8 float32 or 4 float64 images), the phase
    decomposition is used instead: the locations of one tile position t,
    ``o = t + j * tiles``, form a convolution with stride ``stride * tiles`` whose windows
    start ``t * stride`` later, computed as :func:`convlab.conv` computes a strided
    convolution (im2col and GEMM). With tiles = 1 it is :func:`convlab.conv`.

    Examples
    --------
    Two alternating kernels along a line:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    >>> convlab.tiled_conv(x, w)
    array([[[1., 3., 3., 5.]]])
    """
    x, w, bias, dtype, call = _forward_arrays("tiled_conv", x, w, bias, "tiled", stride, padding)
    g = call.geometry
    out_shape = (g.batch, g.filters) + g.out_sizes
    if all(t == 1 for t in call.middle):
        return conv(x, _shared_weights(w, call),
                    None if bias is None else bias.reshape(g.filters), stride=g.strides,
                    padding=g.pads, flip=flip, workers=workers).astype(dtype, copy=False)
    if not _uses_phases(call, dtype):
        _local_memory("tiled_conv", call, dtype, out_shape, w.shape)
        return _local_forward(x, _local_weights(w, call, dtype), _local_bias(bias, call, dtype),
                              call, dtype, flip, workers)
    _check_memory("tiled_conv", dtype, out_shape, out_shape, x.shape, w.shape)
    y = _memory.empty(out_shape, dtype)
    if y.size == 0:
        return y
    phases = _phases(call)
    weights = [_phase_weights(w, t, call, dtype, flip) for t, _, _ in phases]
    biases = [np.ascontiguousarray(bias[(slice(None),) + t], dtype=dtype) if bias is not None
              else np.empty(0, dtype) for t, _, _ in phases]
    with _Threads(g, workers) as threads:
        for part in _batch_chunks(dtype, g.batch, x):
            rows = _rows(x, part, dtype)
            for (t, counts, phase), wt, bt in zip(phases, weights, biases):
                yt = np.empty((rows.shape[0], g.filters) + counts, dtype)
                pthreads = _Threads(phase, threads.count)
                _gemm.forward(rows, wt, bt, yt.reshape(rows.shape[0], -1),
                              *phase.kernel_args(), 1, pthreads.tile(dtype.itemsize),
                              threads.count)
                _phase_view(y[part], t, call.middle)[...] = yt
    return y


def tiled_conv_grad_input(grad_out, w, input_shape, *, stride=1, padding=0, flip=False,
                          workers=None):
    r"""Gradient of :func:`tiled_conv` with respect to its input.

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{f} \;
            \sum_{o, m:\; o \cdot s + m - p_{\mathrm{before}} = i}
            G[n, f, o] \, w[f, o \bmod T, c, m]

    with ``G = grad_out``, ``s = stride``, ``p_before`` the padding before each spatial axis
    and T the tiles, `w` in its layout (F, \*tiles, C, \*k) (``flip=True`` reads
    ``w[f, o mod T, c, k - 1 - m]``).

    ``tiled_conv_grad_input(G, w, x.shape, ...)`` is ``d <tiled_conv(x, w, ...), G> / dx``:
    each output gradient ``G[n, f, o]`` is spread back over the window of o, weighted by the
    kernel ``w[f, o % tiles]`` that served it.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`tiled_conv`.
    w : array_like, shape (F, \*tiles, C, \*k)
        The weights of the forward call.
    input_shape : sequence of int
        ``(N, C, *in)``, the shape of the forward call's ``x``.
    stride, padding, flip, workers : optional
        As in :func:`tiled_conv`.

    Returns
    -------
    ndarray, shape `input_shape`
        float32 when `grad_out` and `w` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64, as in :func:`tiled_conv`; complex raises
        TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`tiled_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> w = np.array([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 1, 2)
    >>> convlab.tiled_conv_grad_input(np.ones((1, 1, 4)), w, (1, 1, 5))
    array([[[1., 0., 2., 0., 1.]]])
    """
    g, w, input_shape, dtype, call = _gradient_arrays(
        "tiled_conv_grad_input", grad_out, w, "w", input_shape, "input_shape", "tiled", stride,
        padding, True)
    geo = call.geometry
    if all(t == 1 for t in call.middle):
        return conv_grad_input(g, _shared_weights(w, call), input_shape, stride=geo.strides,
                               padding=geo.pads, flip=flip, workers=workers).astype(dtype,
                                                                                     copy=False)
    if not _uses_phases(call, dtype):
        _local_memory("tiled_conv_grad_input", call, dtype, input_shape, w.shape)
        return _local_grad_input(g, _local_weights(w, call, dtype), input_shape, call, dtype,
                                 flip, workers)
    _check_memory("tiled_conv_grad_input", dtype, input_shape, g.shape, w.shape)
    dx = _memory.empty(input_shape, dtype)
    if dx.size == 0:
        return dx
    phases = _phases(call)
    weights = [_phase_weights(w, t, call, dtype, flip) for t, _, _ in phases]
    dx2 = dx.reshape(geo.batch, -1)
    with _Threads(geo, workers) as threads:
        for part in _batch_chunks(dtype, geo.batch, g):
            for i, ((t, counts, phase), wt) in enumerate(zip(phases, weights)):
                gt = np.ascontiguousarray(_phase_view(g[part], t, call.middle), dtype=dtype)
                pthreads = _Threads(phase, threads.count)
                _gemm.grad_input(gt.reshape(gt.shape[0], -1), wt, dx2[part],
                                 *phase.kernel_args(), 1,
                                 pthreads.tile(dtype.itemsize, split=False),
                                 min(threads.count, gt.shape[0]), i > 0)
    return dx


def tiled_conv_grad_weight(grad_out, x, weight_shape, *, stride=1, padding=0, flip=False,
                           workers=None):
    r"""Gradient of :func:`tiled_conv` with respect to its weights.

    .. math::

        \mathrm{dw}[f, t, c, m] = \sum_{n} \sum_{o:\; o \bmod T = t} G[n, f, o] \,
            x_{\mathrm{pad}}[n, c, o \cdot s + m]

    in the layout (F, \*tiles, C, \*k), with ``G = grad_out``, ``s = stride``, T the tiles
    and :math:`x_{\mathrm{pad}}` the zero-padded input (``flip=True`` returns this reversed
    along the kernel's spatial axes).

    ``tiled_conv_grad_weight(G, x, w.shape, ...)`` is ``d <tiled_conv(x, w, ...), G> / dw``:
    the kernel of tile position t receives the sum, over the batch and over every location
    ``o`` with ``o % tiles == t``, of ``G[n, f, o]`` times the window of o.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`tiled_conv`.
    x : array_like, shape (N, C, \*in)
        The input of the forward call.
    weight_shape : sequence of int
        ``(F, *tiles, C, *k)``, the shape of the forward call's ``w``.
    stride, padding, flip, workers : optional
        As in :func:`tiled_conv`.

    Returns
    -------
    ndarray, shape `weight_shape`
        Kernels of tile positions that no location uses (tiles larger than the output)
        get zeros. float32 when `grad_out` and `x` are float32 or float16, float64
        otherwise (bool and integers are promoted to float64, as in :func:`tiled_conv`;
        complex raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`tiled_conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    >>> convlab.tiled_conv_grad_weight(np.ones((1, 1, 4)), x, (1, 2, 1, 2))[0, :, 0]
    array([[4., 6.],
           [6., 8.]])
    """
    g, x, weight_shape, dtype, call = _gradient_arrays(
        "tiled_conv_grad_weight", grad_out, x, "x", weight_shape, "weight_shape", "tiled",
        stride, padding, False)
    geo = call.geometry
    if all(t == 1 for t in call.middle):
        dw = conv_grad_weight(g, x, (geo.filters, geo.channels) + geo.k_sizes,
                              stride=geo.strides, padding=geo.pads, flip=flip, workers=workers)
        return dw.astype(dtype, copy=False).reshape(weight_shape)
    if not _uses_phases(call, dtype):
        _local_memory("tiled_conv_grad_weight", call, dtype, x.shape, weight_shape)
        return _local_grad_weight(g, x, call, dtype, flip, workers).reshape(weight_shape)
    dw = np.zeros((geo.filters,) + call.middle + (call.taps,), dtype)
    if geo.batch == 0:
        return dw.reshape(weight_shape)
    _check_memory("tiled_conv_grad_weight", dtype, g.shape, x.shape, weight_shape)
    phases = _phases(call)
    part_bytes = geo.filters * call.taps * dtype.itemsize
    slots = max(1, min(max(_WEIGHT_GRADIENT_PARTS, usable_cores()),
                       _WORKSPACE_BYTES // part_bytes))
    parts = np.empty((slots, geo.filters, call.taps), dtype)
    with _Threads(geo, workers) as threads:
        for part in _batch_chunks(dtype, geo.batch, g, x):
            rows = _rows(x, part, dtype)
            for t, counts, phase in phases:
                gt = np.ascontiguousarray(_phase_view(g[part], t, call.middle), dtype=dtype)
                pthreads = _Threads(phase, threads.count)
                _gemm.grad_weight(gt.reshape(gt.shape[0], -1), rows, parts,
                                  *phase.kernel_args(), 1, pthreads.tile(dtype.itemsize),
                                  min(threads.count, slots))
                dw[(slice(None),) + t] += parts.sum(axis=0)
    dw = dw.reshape(weight_shape)
    if flip:
        dw = np.ascontiguousarray(_spatially_flipped(dw, geo.d))
    return dw


def tiled_conv_grad_bias(grad_out, tiles):
    r"""Gradient of :func:`tiled_conv` with respect to its bias.

    .. math::

        \mathrm{db}[f, t] = \sum_{n} \sum_{o:\; o \bmod T = t} G[n, f, o]

    with T = `tiles`: ``grad_out`` (``G``) summed over the batch and over the locations of
    each tile position.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`tiled_conv`, with 1,
        2 or 3 spatial axes.
    tiles : int or sequence of int
        The tiles of the forward call (>= 1 along each axis).

    Returns
    -------
    ndarray, shape (F, \*tiles)
        float32 for float32 or float16 `grad_out`, float64 otherwise (bool and integers are
        promoted to float64; complex raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have 3, 4 or 5 dimensions, or on tiles < 1.
    TypeError
        On complex or non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> convlab.tiled_conv_grad_bias(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2)
    array([[9., 6.]])
    """
    g = _bias_gradient_input("tiled_conv_grad_bias", grad_out)
    tiles = normalize_positive_ints(tiles, g.ndim - 2, "tiles")
    return np.ascontiguousarray(_fold_tiles(g.sum(axis=0), tiles, 1))
