"""Layer-level convolution (PyTorch's conventions): conv, its three gradients and conv_transpose.

Arrays are ``(N, C, *spatial)`` with d = 1, 2 or 3 spatial axes; weights ``(F, C // groups,
*k)``. The work is done by ``convlab._kernels._gemm``: patches gathered by im2col (the zero
padding is never materialised) multiplied by the weights with BLAS GEMM, one image and group
per task, the tasks spread over the threads.
"""

import math
import threading
from dataclasses import dataclass

import numpy as np

from convlab._kernels import _gemm, _memory
from convlab._shapes import layer_output_size, layer_padding, transpose_output_size
from convlab._validation import (
    as_array,
    check_memory,
    normalize_padding,
    normalize_positive_ints,
    normalize_shape,
    result_dtype,
)
from convlab._workers import threads_for, usable_cores

__all__ = ["conv", "conv_grad_input", "conv_grad_weight", "conv_grad_bias", "conv_transpose"]

# Patch buffers of all threads together stay below this many bytes; the output positions of
# one image are processed in tiles when a whole image's patches would not fit.
_WORKSPACE_BYTES = 64 << 20
# Patch tiles of about this size stay in a core's L2 cache between im2col and the GEMM (a
# whole image's patches would go out to memory and back); never fewer positions than the
# minimum, which keeps the GEMM long enough to run at speed.
_TILE_BYTES = 5 << 18   # 1.25 MiB
_TILE_MIN_POSITIONS = 64
# Inputs that need converting (another dtype, byte order or memory layout) are converted a
# batch chunk at a time, so that the copies stay below this many bytes whatever N is.
_COPY_BYTES = 128 << 20
# conv_grad_weight sums its work in up to this many independent parts (at least one per
# core), all of them within the workspace.
_WEIGHT_GRADIENT_PARTS = 8
# From this many filters per group, a stride-1 input gradient is computed as a convolution
# of the output gradient (gathered patches, a GEMM as long as the forward's) rather than by
# GEMM and col2im.
_GRADIENT_CONV_FILTERS = 16
# BLAS takes 32-bit sizes.
_BLAS_LIMIT = 2**31 - 1


@dataclass
class _Geometry:
    batch: int
    channels: int
    filters: int
    groups: int
    in_sizes: tuple
    k_sizes: tuple
    out_sizes: tuple
    pads: list
    strides: tuple
    dilations: tuple

    @property
    def d(self):
        return len(self.in_sizes)

    @property
    def rows(self):
        """Rows of one group's patch matrix: channels of the group times kernel taps."""
        return self.channels // self.groups * math.prod(self.k_sizes)

    def kernel_args(self):
        """Spatial description padded to the three axes the kernels take."""
        lead = (1,) * (3 - self.d)
        return (lead + self.in_sizes, lead + self.k_sizes, lead + self.out_sizes,
                (0,) * (3 - self.d) + tuple(b for b, _ in self.pads),
                lead + self.strides, lead + self.dilations)


def _geometry(function, x_shape, w_shape, stride, padding, dilation, groups,
              x_name="x", w_name="w"):
    """Check the shapes and keywords of a layer-level call; the output size per axis."""
    if len(w_shape) not in (3, 4, 5):
        raise ValueError(f"{function}: {w_name} must have 3, 4 or 5 dimensions (F, C // groups, "
                         f"*kernel) for 1, 2 or 3 spatial axes; got {w_name}.shape={tuple(w_shape)}")
    d = len(w_shape) - 2
    if len(x_shape) != d + 2:
        raise ValueError(f"{function}: {x_name} must have {d + 2} dimensions (N, C, *spatial) to "
                         f"match {w_name}.shape={tuple(w_shape)}; got {x_name}.shape={tuple(x_shape)}")
    groups = normalize_positive_ints(groups, 1, "groups")[0]
    batch, channels = x_shape[0], x_shape[1]
    filters, group_channels = w_shape[0], w_shape[1]
    if channels == 0 or filters == 0:
        raise ValueError(f"{function}: channels must be nonzero; got C={channels} "
                         f"({x_name}.shape={tuple(x_shape)}) and F={filters} "
                         f"({w_name}.shape={tuple(w_shape)})")
    if channels % groups or filters % groups:
        raise ValueError(f"{function}: groups={groups} must divide both the input channels "
                         f"C={channels} and the filters F={filters}")
    if group_channels * groups != channels:
        raise ValueError(f"{function}: {x_name} has C={channels} channels but {w_name}.shape="
                         f"{tuple(w_shape)} expects C // groups = {group_channels}, i.e. C = "
                         f"{group_channels * groups} with groups={groups}")
    in_sizes, k_sizes = tuple(x_shape[2:]), tuple(w_shape[2:])
    for axis, (n, k) in enumerate(zip(in_sizes, k_sizes)):
        if n == 0 or k == 0:
            raise ValueError(f"{function}: spatial axis {axis} is empty ({x_name} size {n}, "
                             f"kernel size {k}); every spatial axis needs at least one sample")
    strides = normalize_positive_ints(stride, d, "stride")
    dilations = normalize_positive_ints(dilation, d, "dilation")
    pads = layer_padding(normalize_padding(padding, d), in_sizes, k_sizes, strides, dilations)
    out_sizes = tuple(layer_output_size(n, k, b, a, s, dl, axis) for axis, (n, k, (b, a), s, dl)
                      in enumerate(zip(in_sizes, k_sizes, pads, strides, dilations)))
    geometry = _Geometry(batch, channels, filters, groups, in_sizes, k_sizes, out_sizes, pads,
                         strides, dilations)
    sizes = (geometry.rows, math.prod(out_sizes), math.prod(in_sizes), filters)
    if max(sizes) > _BLAS_LIMIT:
        raise ValueError(f"{function}: a matrix dimension of {max(sizes)} exceeds what 32-bit "
                         "BLAS can address")
    return geometry


def _real_dtype(function, named):
    for name, array in named:
        dtype = result_dtype((name, array))
        if dtype.kind == "c":
            raise TypeError(f"{function}: {name} has complex dtype {array.dtype}; the layer-level "
                            "functions take real inputs only")
    return result_dtype(*named)


def _check_memory(function, dtype, *shapes):
    """MemoryError before allocating a result and working copies that cannot fit."""
    elements = sum(math.prod(shape) for shape in shapes)        # exact Python integers
    check_memory(elements * dtype.itemsize + _WORKSPACE_BYTES,
                 f"{function} (its result and working copies)")


def _check_shape(function, name, array, expected, what):
    if tuple(array.shape) != tuple(expected):
        raise ValueError(f"{function}: {name} must have the shape {tuple(expected)} of {what}; "
                         f"got {tuple(array.shape)}")


def _batch_chunks(dtype, batch, *arrays):
    """Ranges of the batch whose converted copies of `arrays` fit in ``_COPY_BYTES`` together
    (one range when every array is already C-contiguous in `dtype`: no copy at all)."""
    per_image = sum(math.prod(a.shape[1:]) * dtype.itemsize for a in arrays
                    if not (a.dtype == dtype and a.flags.c_contiguous))
    step = batch if per_image == 0 else max(1, _COPY_BYTES // per_image)
    return [slice(start, min(start + step, batch)) for start in range(0, batch, step)]


def _rows(array, part, dtype):
    """``array[part]`` as a C-contiguous (images, everything else) matrix of `dtype`."""
    chunk = np.ascontiguousarray(array[part], dtype=dtype)
    return chunk.reshape(chunk.shape[0], -1)


def _spatially_flipped(w, d):
    return w[(Ellipsis,) + (slice(None, None, -1),) * d]


def _weights(w, dtype, flip, d):
    if flip:
        w = _spatially_flipped(w, d)
    return np.ascontiguousarray(w, dtype=dtype).reshape(w.shape[0], -1)


class _Threads:
    """How a call uses its threads: OpenMP over tasks of (image, group, tile of output
    positions), each task calling a single-threaded BLAS. Small batches are cut into more
    tiles so that every thread has work.

    While any call with more than one thread is inside the block, BLAS is pinned to one
    thread (so that the tasks do not oversubscribe the cores); the first call in pins it and
    the last one out restores the previous setting, however calls from several Python
    threads interleave.
    """

    _lock = threading.Lock()
    _pinned = 0
    _limit = None
    _controller = None

    def __init__(self, geometry, workers):
        g = geometry
        self.count = threads_for(workers, g.batch * g.filters * g.rows
                                 * math.prod(g.out_sizes))
        self.geometry = geometry

    def tile(self, itemsize, split=True):
        """Output positions per patch buffer: all buffers fit in the workspace and, with
        `split`, there are at least as many tasks as threads."""
        g = self.geometry
        positions = math.prod(g.out_sizes)
        # a patch tile that stays in the core's cache while the GEMM reads it back
        cached = max(_TILE_MIN_POSITIONS, _TILE_BYTES // (g.rows * itemsize))
        tile = max(1, min(positions, cached,
                          _WORKSPACE_BYTES // (self.count * g.rows * itemsize)))
        tasks = g.batch * g.groups
        if split and tasks and tasks * -(-positions // tile) < self.count:
            tile = max(1, -(-positions // -(-self.count // tasks)))
        return tile

    def __enter__(self):
        # one thread: its BLAS calls may use BLAS's own threads (nothing to oversubscribe),
        # and small calls skip the cost of pinning
        self.pinning = self.count > 1
        if not self.pinning:
            return self
        with _Threads._lock:
            if _Threads._pinned == 0:
                if _Threads._controller is None:
                    from threadpoolctl import ThreadpoolController

                    _Threads._controller = ThreadpoolController()
                # the BLAS libraries' own setters (threadpoolctl's limit() would first read
                # every library's full description, on every call)
                _Threads._limit = [(lib, lib.num_threads)
                                   for lib in _Threads._controller.lib_controllers
                                   if lib.user_api == "blas"]
                for lib, _ in _Threads._limit:
                    lib.set_num_threads(1)
            _Threads._pinned += 1
        return self

    def __exit__(self, *exc):
        if not self.pinning:
            return False
        with _Threads._lock:
            _Threads._pinned -= 1
            if _Threads._pinned == 0:
                for lib, count in _Threads._limit:
                    lib.set_num_threads(count)
                _Threads._limit = None
        return False


def conv(x, w, bias=None, *, stride=1, padding=0, dilation=1, groups=1, flip=False,
         workers=None):
    r"""N-dimensional convolution layer, as :func:`torch.nn.functional.conv2d` computes it.

    .. math::

        y[n, f, o] = \mathrm{bias}[f] + \sum_{c \in \mathrm{group}(f)} \sum_m
                     x_{\mathrm{pad}}[n, c, o \cdot s + m \cdot \mathrm{dilation}] \, w[f, c', m]

    (cross-correlation, the deep-learning "convolution"; ``flip=True`` reverses the kernel
    for a true convolution). This is the forward map c(K, V, s) of Goodfellow et al., ch. 9.

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    w : array_like, shape (F, C // groups, \*k)
        Filters.
    bias : array_like, shape (F,), optional
        Added to every output of each filter.
    stride : int or sequence of int, optional
        Step between outputs along each spatial axis (>= 1).
    padding : int, sequence of int, sequence of (int, int), or {'valid', 'same', 'full'}, optional
        Zero padding: the same on every side, per axis (both sides), per axis as
        ``(before, after)`` pairs (always nested, one per axis), 'valid' (none), 'same'
        (TensorFlow's rule: ``ceil(in / stride)`` outputs, the odd padding sample after),
        or 'full' (``(k - 1) * dilation`` on both sides).
    dilation : int or sequence of int, optional
        Spacing between kernel taps (>= 1).
    groups : int, optional
        Channels and filters split into this many independent groups (``groups = C`` is a
        depthwise convolution). Must divide C and F.
    flip : bool, optional
        True convolution: the kernel reversed along its spatial axes.
    workers : int, optional
        Threads (see :func:`convlab.set_workers`).

    Returns
    -------
    ndarray, shape (N, F, \*out)
        ``out = floor((in + before + after - dilation * (k - 1) - 1) / stride) + 1``;
        float32 when every input is float32 or float16, float64 otherwise (bool and
        integers are promoted to float64; complex raises TypeError).

    Raises
    ------
    ValueError
        On a channel or group mismatch, a weight of the wrong number of dimensions, an
        output size below 1, or a bad stride, dilation or padding.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    conv_grad_input, conv_grad_weight, conv_grad_bias : its gradients.
    conv_transpose : its adjoint, with PyTorch's output-size rule.

    Notes
    -----
    The padding is part of the input, as in PyTorch: a NaN weight gives NaN at every output
    whose window it covers, padding included. Each image and group is a matrix product of
    the filters with the image's patches (BLAS GEMM); 1 x 1 convolutions use the input itself.

    Examples
    --------
    A 3 x 3 averaging filter on a 4 x 4 image, zero padded to keep its size:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.full((1, 1, 3, 3), 1 / 9)
    >>> convlab.conv(x, w, padding="same").round(2)
    array([[[[ 1.11,  2.  ,  2.67,  2.  ],
             [ 3.  ,  5.  ,  6.  ,  4.33],
             [ 5.67,  9.  , 10.  ,  7.  ],
             [ 4.67,  7.33,  8.  ,  5.56]]]])

    Stride 2 with two filters and a bias:

    >>> w2 = np.stack([w[0], -w[0]])
    >>> convlab.conv(x, w2, bias=[0.5, 0.0], stride=2, padding=1).shape
    (1, 2, 2, 2)

    A depthwise-separable convolution (MobileNet, Keras ``SeparableConv2D``) is a
    depthwise convolution, one filter per channel (``groups = C``), followed by a 1 x 1
    convolution that mixes the channels. It equals one convolution with the dense kernel
    ``pointwise[f, c] * depthwise[c, 0]``, at a fraction of the products:

    >>> rng = np.random.default_rng(0)
    >>> images = rng.standard_normal((2, 3, 8, 8))           # C = 3
    >>> depthwise = rng.standard_normal((3, 1, 3, 3))        # (C, 1, k, k)
    >>> pointwise = rng.standard_normal((5, 3, 1, 1))        # (F, C, 1, 1)
    >>> y = convlab.conv(convlab.conv(images, depthwise, groups=3, padding=1), pointwise)
    >>> dense = pointwise * depthwise[:, 0]                  # (F, C, k, k)
    >>> bool(np.allclose(y, convlab.conv(images, dense, padding=1)))
    True
    """
    x = as_array(x, "x")
    w = as_array(w, "w")
    named = [("x", x), ("w", w)]
    if bias is not None:
        bias = as_array(bias, "bias")
        named.append(("bias", bias))
    dtype = _real_dtype("conv", named)
    geometry = _geometry("conv", x.shape, w.shape, stride, padding, dilation, groups)
    if bias is not None:
        _check_shape("conv", "bias", bias, (geometry.filters,), "one value per filter")
    out_shape = (geometry.batch, geometry.filters) + geometry.out_sizes
    _check_memory("conv", dtype, out_shape, x.shape, w.shape)
    y = _memory.empty(out_shape, dtype)
    if y.size == 0:
        return y
    threads = _Threads(geometry, workers)
    w2 = _weights(w, dtype, flip, geometry.d)
    b = np.ascontiguousarray(bias, dtype=dtype) if bias is not None else np.empty(0, dtype)
    y2 = y.reshape(geometry.batch, -1)
    with threads:
        for part in _batch_chunks(dtype, geometry.batch, x):
            _gemm.forward(_rows(x, part, dtype), w2, b, y2[part], *geometry.kernel_args(),
                          geometry.groups, threads.tile(dtype.itemsize), threads.count)
    return y


def conv_grad_input(grad_out, w, input_shape, *, stride=1, padding=0, dilation=1, groups=1,
                    flip=False, workers=None):
    r"""Gradient of :func:`conv` with respect to its input: h(K, G, s).

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{f \in \mathrm{group}(c)} \;
            \sum_{o, m:\; o \cdot s + m \cdot \mathrm{dilation} - p_{\mathrm{before}} = i}
            G[n, f, o] \, w[f, c', m]

    with ``G = grad_out``, ``s = stride``, ``p_before`` the padding before each spatial axis
    and ``c'`` the index of channel c within its group (``flip=True`` reads
    ``w[f, c', k - 1 - m]``).

    ``conv_grad_input(G, w, x.shape, ...)`` is the vector-Jacobian product
    ``d <conv(x, w, ...), G> / dx``, which does not depend on ``x``: every output gradient
    is spread back over the input samples its window read (samples no window reads, as
    with a stride larger than the kernel, get zero).

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`conv`.
    w : array_like, shape (F, C // groups, \*k)
        The filters of the forward call.
    input_shape : sequence of int
        ``(N, C, *in)``, the shape of the forward call's ``x``.
    stride, padding, dilation, groups, flip, workers : optional
        As in :func:`conv`.

    Returns
    -------
    ndarray, shape `input_shape`
        float32 when `grad_out` and `w` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64, as in :func:`conv`; complex raises TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the shape of the forward output for `input_shape`, or as
        in :func:`conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    c, g and h on a tiny case: the forward map, the kernel gradient and the input gradient
    satisfy ``<c(x), G> == <x, h(G)> == <w, g(G)>``.

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    >>> w = np.array([[[1.0, -1.0]]])
    >>> c = convlab.conv(x, w)
    >>> c
    array([[[-1., -1., -1.]]])
    >>> G = np.array([[[1.0, 0.0, 2.0]]])
    >>> h = convlab.conv_grad_input(G, w, x.shape)
    >>> h
    array([[[ 1., -1.,  2., -2.]]])
    >>> g = convlab.conv_grad_weight(G, x, w.shape)
    >>> g
    array([[[ 7., 10.]]])
    >>> float((c * G).sum()), float((x * h).sum()), float((w * g).sum())
    (-3.0, -3.0, -3.0)
    """
    g = as_array(grad_out, "grad_out")
    w = as_array(w, "w")
    input_shape = normalize_shape(input_shape, "input_shape")
    dtype = _real_dtype("conv_grad_input", [("grad_out", g), ("w", w)])
    geometry = _geometry("conv_grad_input", input_shape, w.shape, stride, padding, dilation,
                         groups, x_name="input_shape")
    _check_shape("conv_grad_input", "grad_out", g,
                 (geometry.batch, geometry.filters) + geometry.out_sizes,
                 f"conv's output for input_shape={input_shape}")
    _check_memory("conv_grad_input", dtype, input_shape, g.shape, w.shape)
    if geometry.batch and _gradient_as_convolution(geometry):
        return _input_gradient_by_convolution(g, w, geometry, dtype, flip, workers)
    dx = _memory.empty(input_shape, dtype)
    if dx.size == 0:
        return dx
    threads = _Threads(geometry, workers)
    w2 = _weights(w, dtype, flip, geometry.d)
    dx2 = dx.reshape(geometry.batch, -1)
    with threads:
        for part in _batch_chunks(dtype, geometry.batch, g):
            # one task per (image, group): the tiles of a task add into the same dx
            _gemm.grad_input(_rows(g, part, dtype), w2, dx2[part], *geometry.kernel_args(),
                             geometry.groups, threads.tile(dtype.itemsize, split=False),
                             min(threads.count, geometry.batch * geometry.groups))
    return dx


def _gradient_as_convolution(geometry):
    """Whether the input gradient is better computed as a stride-1 convolution of the output
    gradient: stride 1, no more padding than the kernel's extent on any side, and enough
    filters per group for the product to be a real GEMM."""
    if geometry.filters // geometry.groups < _GRADIENT_CONV_FILTERS:
        return False
    return all(s == 1 and b <= (k - 1) * dl and a <= (k - 1) * dl
               for s, (b, a), k, dl in zip(geometry.strides, geometry.pads, geometry.k_sizes,
                                           geometry.dilations))


def _input_gradient_by_convolution(g, w, geometry, dtype, flip, workers):
    # With stride 1, dx[c, i] = sum_{f, m} G[f, i + before - m * dl] w[f, c, m]: a conv of G
    # with the filters transposed (F <-> C within each group) and reversed, padded by what
    # the forward padding leaves of the kernel's extent. The same products as col2im, as
    # gathered patches and one GEMM whose inner dimension is F_g * taps.
    d, groups = geometry.d, geometry.groups
    if not flip:
        w = _spatially_flipped(w, d)
    f_g, c_g = geometry.filters // groups, geometry.channels // groups
    w = np.asarray(w, dtype=dtype).reshape((groups, f_g, c_g) + geometry.k_sizes)
    w_t = np.ascontiguousarray(np.swapaxes(w, 1, 2)).reshape(
        (geometry.channels, f_g) + geometry.k_sizes)
    pads = [((k - 1) * dl - b, (k - 1) * dl - a) for (b, a), k, dl
            in zip(geometry.pads, geometry.k_sizes, geometry.dilations)]
    return conv(g, w_t, padding=pads, dilation=geometry.dilations, groups=groups,
                workers=workers)


def conv_grad_weight(grad_out, x, weight_shape, *, stride=1, padding=0, dilation=1, groups=1,
                     flip=False, workers=None):
    r"""Gradient of :func:`conv` with respect to its filters: g(G, V, s).

    .. math::

        \mathrm{dw}[f, c', m] = \sum_{n, o} G[n, f, o] \,
            x_{\mathrm{pad}}[n, c, o \cdot s + m \cdot \mathrm{dilation}]

    with ``G = grad_out``, ``s = stride``, :math:`x_{\mathrm{pad}}` the zero-padded input
    and c the channel of index ``c'`` in the group of filter f (``flip=True`` returns this
    reversed along the spatial axes).

    ``conv_grad_weight(G, x, w.shape, ...)`` is ``d <conv(x, w, ...), G> / dw``: for each
    filter tap, the sum over the batch and the output positions of the output gradient
    times the input sample that tap read (zero for samples in the padding).

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`conv`.
    x : array_like, shape (N, C, \*in)
        The input of the forward call.
    weight_shape : sequence of int
        ``(F, C // groups, *k)``, the shape of the forward call's ``w``.
    stride, padding, dilation, groups, flip, workers : optional
        As in :func:`conv`.

    Returns
    -------
    ndarray, shape `weight_shape`
        float32 when `grad_out` and `x` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64, as in :func:`conv`; complex raises TypeError).
        Zeros for an empty batch (N = 0).

    Raises
    ------
    ValueError
        If `grad_out` does not have the shape of the forward output, or as in :func:`conv`.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(8.0).reshape(1, 2, 4)
    >>> G = np.ones((1, 1, 3))
    >>> convlab.conv_grad_weight(G, x, (1, 2, 2))
    array([[[ 3.,  6.],
            [15., 18.]]])
    """
    g = as_array(grad_out, "grad_out")
    x = as_array(x, "x")
    weight_shape = normalize_shape(weight_shape, "weight_shape")
    dtype = _real_dtype("conv_grad_weight", [("grad_out", g), ("x", x)])
    geometry = _geometry("conv_grad_weight", x.shape, weight_shape, stride, padding, dilation,
                         groups, w_name="weight_shape")
    _check_shape("conv_grad_weight", "grad_out", g,
                 (geometry.batch, geometry.filters) + geometry.out_sizes, "conv's output")
    if geometry.batch == 0:
        return np.zeros(weight_shape, dtype)
    _check_memory("conv_grad_weight", dtype, g.shape, x.shape, weight_shape)
    threads = _Threads(geometry, workers)
    # Partial gradients over fixed ranges of the work, added in order: the same result
    # whatever the number of threads and however the threads share the ranges.
    part_bytes = geometry.filters * geometry.rows * dtype.itemsize
    slots = max(1, min(max(_WEIGHT_GRADIENT_PARTS, usable_cores()), _WORKSPACE_BYTES // part_bytes))
    parts = np.empty((slots, geometry.filters, geometry.rows), dtype)
    dw = np.zeros((geometry.filters, geometry.rows), dtype)
    with threads:
        for part in _batch_chunks(dtype, geometry.batch, g, x):
            _gemm.grad_weight(_rows(g, part, dtype), _rows(x, part, dtype), parts,
                              *geometry.kernel_args(), geometry.groups,
                              threads.tile(dtype.itemsize), min(threads.count, slots))
            dw += parts.sum(axis=0)
    dw = dw.reshape(weight_shape)
    if flip:
        dw = np.ascontiguousarray(_spatially_flipped(dw, geometry.d))
    return dw


def conv_grad_bias(grad_out):
    r"""Gradient of :func:`conv` with respect to its bias.

    .. math::

        \mathrm{db}[f] = \sum_{n, o} G[n, f, o]

    The sum of `grad_out` (``G``) over the batch and the spatial axes.

    Parameters
    ----------
    grad_out : array_like, shape (N, F, \*out)
        Gradient of a scalar loss with respect to the output of :func:`conv`, with 1, 2 or 3
        spatial axes.

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
    >>> convlab.conv_grad_bias(np.ones((2, 3, 4, 4)))
    array([32., 32., 32.])
    """
    return _filter_sums("conv_grad_bias", grad_out)


def _bias_gradient_input(function, grad_out):
    """`grad_out` of a layer's bias gradient, checked (N, F, *out with 1 to 3 spatial axes,
    a real dtype) and C-contiguous in its compute dtype, so that every bias gradient sums in
    one fixed order whatever the memory layout."""
    g = as_array(grad_out, "grad_out")
    dtype = _real_dtype(function, [("grad_out", g)])
    if g.ndim not in (3, 4, 5):
        raise ValueError(f"{function}: grad_out must have 3, 4 or 5 dimensions (N, F, *out); "
                         f"got grad_out.shape={g.shape}")
    return np.ascontiguousarray(g, dtype=dtype)


def _filter_sums(function, grad_out):
    """The gradient of a per-filter bias: `grad_out` summed over the batch and the spatial
    axes, in one fixed order (each image's positions, then the images)."""
    g = _bias_gradient_input(function, grad_out)
    positions = math.prod(g.shape[2:])
    return g.reshape(g.shape[0], g.shape[1], positions).sum(axis=2).sum(axis=0)


def conv_transpose(x, w, bias=None, *, stride=1, padding=0, output_padding=0, dilation=1,
                   groups=1, workers=None):
    r"""Transposed convolution, as :func:`torch.nn.functional.conv_transpose2d` computes it.

    .. math::

        y[n, c, j] = \mathrm{bias}[c] + \sum_{f \in \mathrm{group}(c)} \;
            \sum_{i, m:\; i \cdot s + m \cdot \mathrm{dilation} - \mathrm{padding} = j}
            x[n, f, i] \, w[f, c', m]

    with ``s = stride`` and ``c'`` the index of output channel c within its group, for
    ``0 <= j < out = (in - 1) * s - 2 * padding + dilation * (k - 1) + output_padding + 1``
    along each axis.

    The adjoint of :func:`conv`: each input sample scatters its value times the filter over
    the output, ``y[n, c, i * stride + m * dilation - padding] += x[n, f, i] * w[f, c', m]``,
    so ``conv_transpose(G, w, ...)`` equals :func:`conv_grad_input` for the input size below.

    Parameters
    ----------
    x : array_like, shape (N, F, \*in)
        Input batch with d = 1, 2 or 3 spatial axes (F channels).
    w : array_like, shape (F, C // groups, \*k)
        Filters in PyTorch's ``conv_transpose`` layout (the layout of the :func:`conv` whose
        adjoint this is).
    bias : array_like, shape (C,), optional
        Added to every output of each output channel.
    stride : int or sequence of int, optional
        Upsampling step (>= 1).
    padding : int or sequence of int, optional
        Samples removed from both ends of each axis (PyTorch's meaning; strings and pairs
        are not accepted).
    output_padding : int or sequence of int, optional
        Samples added at the end of each axis; each must be smaller than the stride or the
        dilation of its axis.
    dilation, groups, workers : optional
        As in :func:`conv`.

    Returns
    -------
    ndarray, shape (N, C, \*out)
        ``out = (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``;
        float32 when `x`, `w` and `bias` are float32 or float16, float64 otherwise (bool and
        integers are promoted to float64; complex raises TypeError).

    Raises
    ------
    ValueError
        On a channel or group mismatch, a bad padding or output padding, or an output size
        below 1.
    TypeError
        On complex or non-numeric inputs.

    Examples
    --------
    Upsampling by 2 with a length-2 kernel of ones repeats every sample:

    >>> import numpy as np
    >>> import convlab
    >>> convlab.conv_transpose(np.array([[[1.0, 2.0, 3.0]]]), np.ones((1, 1, 2)), stride=2)
    array([[[1., 1., 2., 2., 3., 3.]]])
    """
    x = as_array(x, "x")
    w = as_array(w, "w")
    named = [("x", x), ("w", w)]
    if bias is not None:
        bias = as_array(bias, "bias")
        named.append(("bias", bias))
    dtype = _real_dtype("conv_transpose", named)
    if w.ndim not in (3, 4, 5):
        raise ValueError("conv_transpose: w must have 3, 4 or 5 dimensions (F, C // groups, "
                         f"*kernel) for 1, 2 or 3 spatial axes; got w.shape={w.shape}")
    d = w.ndim - 2
    if x.ndim != d + 2:
        raise ValueError(f"conv_transpose: x must have {d + 2} dimensions (N, F, *spatial) to "
                         f"match w.shape={w.shape}; got x.shape={x.shape}")
    pads = [b for b, _ in normalize_padding(padding, d, allow_strings=False, allow_pairs=False)]
    extra = [b for b, _ in normalize_padding(output_padding, d, name="output_padding",
                                             allow_strings=False, allow_pairs=False)]
    strides = normalize_positive_ints(stride, d, "stride")
    dilations = normalize_positive_ints(dilation, d, "dilation")
    for axis, (op, s, dl) in enumerate(zip(extra, strides, dilations)):
        if op >= s and op >= dl:
            raise ValueError(f"conv_transpose: output_padding must be smaller than the stride or "
                             f"the dilation of its axis; got output_padding={op} with stride={s} "
                             f"and dilation={dl} along spatial axis {axis}")
    groups = normalize_positive_ints(groups, 1, "groups")[0]
    if bias is not None:
        _check_shape("conv_transpose", "bias", bias, (w.shape[1] * groups,),
                     "one value per output channel")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"conv_transpose: x has {x.shape[1]} channels but w.shape={w.shape} "
                         f"expects {w.shape[0]} (w is (F, C // groups, *k) with F the channels "
                         "of x)")
    out = tuple(transpose_output_size(n, k, p, op, s, dl, axis) for axis, (n, k, p, op, s, dl)
                in enumerate(zip(x.shape[2:], w.shape[2:], pads, extra, strides, dilations)))
    for axis, n in enumerate(x.shape[2:]):
        if n == 0:
            raise ValueError(f"conv_transpose: spatial axis {axis} of x is empty "
                             f"(x.shape={x.shape})")
    input_shape = (x.shape[0], w.shape[1] * groups) + out
    geometry = _geometry("conv_transpose", input_shape, w.shape, strides,
                         [(p, p) for p in pads], dilations, groups, x_name="the output")
    # With an output padding of at least the stride (allowed when smaller than the
    # dilation), the conv of that size has more outputs than x: they receive zeros.
    _check_memory("conv_transpose", dtype, input_shape, x.shape, w.shape)
    grow = [m - n for m, n in zip(geometry.out_sizes, x.shape[2:])]
    # computed in the result dtype (a float64 bias makes float32 inputs float64): the filters
    # are converted here, x a batch chunk at a time by conv_grad_input
    w = np.asarray(w, dtype=dtype)
    if any(grow):
        x = np.pad(x, [(0, 0), (0, 0)] + [(0, g) for g in grow])
    y = conv_grad_input(x, w, input_shape, stride=strides, padding=[(p, p) for p in pads],
                        dilation=dilations, groups=groups, workers=workers)
    y = y.astype(dtype, copy=False)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype).reshape((-1,) + (1,) * d)
    return y
