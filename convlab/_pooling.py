"""Pooling (SPEC §3.5): max, average and Lp pooling of ``(N, C, *spatial)`` batches, and
their gradients, in PyTorch's conventions (``ceil_mode=False``).

Along each of the d = 1, 2 or 3 spatial axes, window ``o`` covers the samples
``o * stride - padding + r``, ``0 <= r < size``, of the input extended by ``padding``
samples on both sides (-inf for max pooling, 0 for average and Lp pooling). There are
``floor((n + 2 * padding - size) / stride) + 1`` windows, and ``padding <= size // 2``
keeps at least one input sample in every window.

The work is done by ``convlab._kernels._pooling``, which reads each (n, c) plane in place
(the padding is never materialised): forward passes and the gradients of windows that do
not overlap in one pass over the output rows; the gradients of overlapping windows plane by
plane, or, for few planes, row by row after a pass that finds each window's maximum (or
norm).
"""

import math
from dataclasses import dataclass

import numpy as np

from convlab._kernels import _memory, _pooling
from convlab._layers import _check_shape, _real_dtype
from convlab._shapes import pool_output_size
from convlab._validation import (
    as_array,
    check_memory,
    normalize_norm_order,
    normalize_padding,
    normalize_positive_ints,
    normalize_shape,
)
from convlab._workers import threads_for

__all__ = ["max_pool", "avg_pool", "lp_pool", "max_pool_grad", "avg_pool_grad", "lp_pool_grad"]

# Overlapping windows: the gradient of fewer planes than this is split by input rows
# (backward_gather) rather than by planes (backward_scatter), so that the threads have
# work. A constant, not the thread count: the choice must not depend on `workers`.
_GATHER_BELOW_PLANES = 16

# Private switches, for the tests that compare the kernels' paths bit for bit: the vector
# loops (for 2 x 2 windows with stride 2, and for the windows of an output row that lie
# inside the input; off: the generic window loops, one window at a time), and the gradient
# kernel (None: chosen as above; "scatter" or "gather": that one, for any windows).
_VECTORS = True
_GRADIENT = None

# A thread takes at least this many input samples: below, starting and joining threads
# costs more than it saves (and a thread whose core is busy with another process can hold
# up the whole call for a time slice).
_SAMPLES_PER_THREAD = 1 << 16

# Window sizes and strides above this are refused: the kernels' index arithmetic (window
# starts, products of extents) must stay far inside 64-bit integers.
_LIMIT = 2**40


@dataclass(frozen=True)
class _Pool:
    """A checked pooling call: the input shape and, per spatial axis, the window size,
    stride, padding and number of windows."""

    shape: tuple
    sizes: tuple
    strides: tuple
    pads: tuple
    out_sizes: tuple

    @property
    def d(self):
        return len(self.sizes)

    @property
    def planes(self):
        return self.shape[0] * self.shape[1]

    @property
    def out_shape(self):
        return tuple(self.shape[:2]) + self.out_sizes

    def threads(self, workers):
        """The threads to use out of `workers` (the argument): small problems run on fewer,
        down to one (convlab's one rule, counted here in input samples)."""
        samples = self.planes * math.prod(self.shape[2:])
        return threads_for(workers, samples, _SAMPLES_PER_THREAD)

    @property
    def overlapping(self):
        return any(s < k for s, k in zip(self.strides, self.sizes))

    def _lead(self, values, fill):
        return (fill,) * (3 - self.d) + tuple(values)

    def planes_in(self):
        """The input as the kernels take it: (planes, three spatial axes)."""
        return (self.planes,) + self._lead(self.shape[2:], 1)

    def planes_out(self):
        return (self.planes,) + self._lead(self.out_sizes, 1)

    def windows(self):
        """Window size, stride and padding padded to three axes (extent-1 leading axes)."""
        return (self._lead(self.sizes, 1), self._lead(self.strides, 1),
                self._lead(self.pads, 0))


def _geometry(function, shape, size, stride, padding, name="x"):
    """Check the shapes and keywords of a pooling call (SPEC §3.5)."""
    shape = tuple(shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"{function}: {name} must have 3, 4 or 5 dimensions (N, C, *spatial) "
                         f"for 1, 2 or 3 spatial axes; got {name}.shape={shape}")
    d = len(shape) - 2
    sizes = normalize_positive_ints(size, d, "size")
    strides = sizes if stride is None else normalize_positive_ints(stride, d, "stride")
    pads = tuple(before for before, _ in normalize_padding(padding, d, allow_strings=False,
                                                           allow_pairs=False))
    for what, values in (("size", sizes), ("stride", strides)):
        if max(values) > _LIMIT:
            raise ValueError(f"{function}: {what} must be at most {_LIMIT} along every axis; "
                             f"got {what}={values}")
    for axis, (k, p) in enumerate(zip(sizes, pads)):
        if p > k // 2:
            raise ValueError(
                f"{function}: padding must be at most size // 2 along every axis, so that "
                f"every window holds an input sample; got padding={pads} with size={sizes} "
                f"(spatial axis {axis}: padding {p} > {k} // 2 = {k // 2})")
    in_sizes = shape[2:]
    for axis, n in enumerate(in_sizes):
        if n == 0:
            raise ValueError(f"{function}: spatial axis {axis} of {name} is empty "
                             f"({name}.shape={shape}); every spatial axis needs at least one "
                             "sample")
    out_sizes = tuple(pool_output_size(n, k, p, s, axis) for axis, (n, k, p, s)
                      in enumerate(zip(in_sizes, sizes, pads, strides)))
    return _Pool(shape, sizes, strides, pads, out_sizes)


def _needs_copy(array, dtype):
    return not (array.dtype == dtype and array.flags.c_contiguous)


def _check_memory(function, dtype, result_shape, copies, extra=0):
    """MemoryError before allocating a result, the converted copies of the inputs that need
    one and `extra` bytes of work arrays, when they could not fit."""
    elements = math.prod(result_shape) + sum(math.prod(a.shape) for a in copies
                                             if _needs_copy(a, dtype))
    check_memory(elements * dtype.itemsize + extra, f"{function} (its result and working copies)")


def _planes(array, dtype, shape):
    """`array` as a C-contiguous array of `dtype` in the kernels' (planes, 3 axes) shape."""
    return np.ascontiguousarray(array, dtype=dtype).reshape(shape)


def _forward(function, x, size, stride, padding, workers, op, power=1.0, include_pad=True):
    x = as_array(x, "x")
    dtype = _real_dtype(function, [("x", x)])
    geo = _geometry(function, x.shape, size, stride, padding)
    threads = geo.threads(workers)
    _check_memory(function, dtype, geo.out_shape, [x])
    y = _memory.empty(geo.out_shape, dtype)
    if y.size == 0:
        return y
    _pooling.forward(_planes(x, dtype, geo.planes_in()), y.reshape(geo.planes_out()),
                     *geo.windows(), op, power, include_pad, _VECTORS, threads)
    return y


def _gradient_inputs(function, grad_out, x, size, stride, padding, workers):
    """The checked arguments of max_pool_grad / lp_pool_grad."""
    g = as_array(grad_out, "grad_out")
    x = as_array(x, "x")
    dtype = _real_dtype(function, [("grad_out", g), ("x", x)])
    geo = _geometry(function, x.shape, size, stride, padding)
    _check_shape(function, "grad_out", g, geo.out_shape,
                 f"the forward output for x.shape={geo.shape}")
    return g, x, dtype, geo, geo.threads(workers)


def _gradient_kernel(geo):
    if _GRADIENT is not None:
        return _GRADIENT
    if not geo.overlapping:
        return "cells"
    return "gather" if geo.planes < _GATHER_BELOW_PLANES else "scatter"


def _backward(function, g, x, geo, dtype, threads, op, power=1.0, include_pad=True):
    """d <pool(x), g> / dx. `x` is None for a mean (whose gradient does not depend on it)."""
    kernel = _gradient_kernel(geo)
    work = 0
    if kernel == "gather" and op != _pooling.OP_MEAN:
        work = math.prod(geo.out_shape) * (np.dtype(np.intp).itemsize if op != _pooling.OP_LP
                                           else dtype.itemsize)
    _check_memory(function, dtype, geo.shape, [g] + ([x] if x is not None else []), work)
    dx = _memory.empty(geo.shape, dtype)
    if dx.size == 0:
        return dx
    g4 = _planes(g, dtype, geo.planes_out())
    x4 = _planes(x, dtype, geo.planes_in()) if x is not None else np.empty((0, 0, 0, 0), dtype)
    dx4 = dx.reshape(geo.planes_in())
    windows = geo.windows()
    if kernel == "cells":
        _pooling.backward_cells(g4, x4, dx4, *windows, op, power, include_pad, _VECTORS, threads)
    elif kernel == "scatter":
        _pooling.backward_scatter(g4, x4, dx4, *windows, op, power, include_pad, _VECTORS,
                                  threads)
    else:
        where = np.empty((0, 0, 0, 0), np.intp)
        norms = np.empty((0, 0, 0, 0), dtype)
        if op in (_pooling.OP_MAX, _pooling.OP_LP_INF):
            where = np.empty(geo.planes_out(), np.intp)
            _pooling.argmax(x4, where, *windows, op == _pooling.OP_LP_INF, _VECTORS, threads)
        elif op == _pooling.OP_LP:
            norms = np.empty(geo.planes_out(), dtype)
            _pooling.forward(x4, norms, *windows, op, power, True, False, threads)
        _pooling.backward_gather(g4, x4, where, norms, dx4, *windows, op, power, include_pad,
                                 threads)
    return dx


def _lp_op(p):
    p = normalize_norm_order(p)
    return (_pooling.OP_LP_INF, 1.0) if p == math.inf else (_pooling.OP_LP, p)


# ----------------------------------------------------------------------------- public


def max_pool(x, size, *, stride=None, padding=0, workers=None):
    r"""Max pooling: the largest sample of each window, as :func:`torch.nn.functional.max_pool2d`.

    .. math::

        y[n, c, o] = \max_{0 \le r < \mathrm{size}}
                     x_{\mathrm{pad}}[n, c, o \cdot \mathrm{stride} - \mathrm{padding} + r]

    with :math:`x_{\mathrm{pad}}` the input extended by ``padding`` samples of -inf on both
    sides of every spatial axis (so the padding never wins).

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    size : int or sequence of int
        Window size along each spatial axis (>= 1).
    stride : int or sequence of int, optional
        Step between windows (>= 1). None (the default) is `size`: windows side by side.
    padding : int or sequence of int, optional
        Samples of -inf before and after the input along each axis, at most ``size // 2``.
    workers : int, optional
        Threads (see :func:`convlab.set_workers`).

    Returns
    -------
    ndarray, shape (N, C, \*out)
        ``out = floor((in + 2 * padding - size) / stride) + 1`` along each axis (PyTorch's
        rule with ``ceil_mode=False``). float32 for float32 (and float16) input, float64
        for float64, integer and bool input.

    Raises
    ------
    ValueError
        If `x` does not have 3, 4 or 5 dimensions or has an empty spatial axis, if `size`
        or `stride` is below 1, `padding` negative or above ``size // 2``, or an axis
        would have no window.
    TypeError
        On complex or non-numeric input, or on non-integer `size`, `stride` or `padding`.

    See Also
    --------
    max_pool_grad : its gradient.
    avg_pool, lp_pool : the other pooling layers.

    Notes
    -----
    A window holding a NaN gives NaN. The maximum that counts (for the gradient, see
    :func:`max_pool_grad`) is the window's first one in row-major window order, or its
    first NaN. N = 0 or C = 0 gives an empty result.

    Examples
    --------
    2 x 2 windows side by side (stride 2) on one 4 x 4 image:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[1, 3, -9, -22],
    ...               [44, -10, -11, -1],
    ...               [0, 10, 4, -3],
    ...               [11, 9, 321, 99]], dtype=float)
    >>> convlab.max_pool(x[None, None], 2)[0, 0]
    array([[ 44.,  -1.],
           [ 11., 321.]])

    Overlapping 3-sample windows (stride 1) along a 1-D signal, padded by one sample:

    >>> convlab.max_pool(np.array([[[3.0, 1.0, 4.0, 1.0, 5.0]]]), 3, stride=1, padding=1)
    array([[[3., 4., 4., 5., 5.]]])
    """
    return _forward("max_pool", x, size, stride, padding, workers, _pooling.OP_MAX)


def avg_pool(x, size, *, stride=None, padding=0, count_include_pad=True, workers=None):
    r"""Average pooling: the mean of each window, as :func:`torch.nn.functional.avg_pool2d`.

    .. math::

        y[n, c, o] = \frac{1}{D(o)} \sum_{0 \le r < \mathrm{size}}
                     x_{\mathrm{pad}}[n, c, o \cdot \mathrm{stride} - \mathrm{padding} + r]

    with :math:`x_{\mathrm{pad}}` the input extended by ``padding`` zeros on both sides of
    every spatial axis, and the divisor :math:`D(o)` the window size ``prod(size)``
    (``count_include_pad=True``) or the number of input samples in window o, padding left
    out (``count_include_pad=False``).

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    size : int or sequence of int
        Window size along each spatial axis (>= 1).
    stride : int or sequence of int, optional
        Step between windows (>= 1). None (the default) is `size`.
    padding : int or sequence of int, optional
        Zeros before and after the input along each axis, at most ``size // 2``.
    count_include_pad : bool, optional
        Whether the padding counts in the divisor (PyTorch's default, True) or not.
    workers : int, optional
        Threads (see :func:`convlab.set_workers`).

    Returns
    -------
    ndarray, shape (N, C, \*out)
        ``out = floor((in + 2 * padding - size) / stride) + 1`` along each axis. float32
        for float32 (and float16) input, float64 otherwise.

    Raises
    ------
    ValueError
        As in :func:`max_pool`.
    TypeError
        As in :func:`max_pool`.

    See Also
    --------
    avg_pool_grad : its gradient.
    max_pool, lp_pool : the other pooling layers.

    Notes
    -----
    The sum runs over the window's input samples in row-major order, then is divided by
    the divisor; NaN and Inf propagate to the windows that hold them.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> convlab.avg_pool(x, 2)
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])

    With padding, the divisor counts the padding zeros or not:

    >>> x = np.array([[[2.0, 4.0, 6.0]]])
    >>> convlab.avg_pool(x, 2, stride=1, padding=1)
    array([[[1., 3., 5., 3.]]])
    >>> convlab.avg_pool(x, 2, stride=1, padding=1, count_include_pad=False)
    array([[[2., 3., 5., 6.]]])
    """
    return _forward("avg_pool", x, size, stride, padding, workers, _pooling.OP_MEAN,
                    include_pad=bool(count_include_pad))


def lp_pool(x, size, p=2, *, stride=None, padding=0, workers=None):
    r"""Lp pooling: the p-norm of each window.

    .. math::

        y[n, c, o] = \Bigl(\sum_{0 \le r < \mathrm{size}}
                     |x_{\mathrm{pad}}[n, c, o \cdot \mathrm{stride} - \mathrm{padding} + r]|^p
                     \Bigr)^{1/p}

    with :math:`x_{\mathrm{pad}}` the input extended by ``padding`` zeros on both sides of
    every spatial axis. ``p = inf`` is the largest :math:`|x|` of the window, ``p = 1`` the
    sum of :math:`|x|`, ``p = 2`` the Euclidean norm.

    Parameters
    ----------
    x : array_like, shape (N, C, \*in)
        Input batch with d = 1, 2 or 3 spatial axes.
    size : int or sequence of int
        Window size along each spatial axis (>= 1).
    p : float, optional
        Order of the norm: a real number >= 1, or ``inf``. Default 2.
    stride : int or sequence of int, optional
        Step between windows (>= 1). None (the default) is `size`.
    padding : int or sequence of int, optional
        Zeros before and after the input along each axis, at most ``size // 2``.
    workers : int, optional
        Threads (see :func:`convlab.set_workers`).

    Returns
    -------
    ndarray, shape (N, C, \*out)
        ``out = floor((in + 2 * padding - size) / stride) + 1`` along each axis. float32
        for float32 (and float16) input, float64 otherwise.

    Raises
    ------
    ValueError
        If `p` is below 1 or NaN, or as in :func:`max_pool`.
    TypeError
        If `p` is not a real number, or as in :func:`max_pool`.

    See Also
    --------
    lp_pool_grad : its gradient.
    max_pool, avg_pool : the other pooling layers.

    Notes
    -----
    For 1 < p < inf the norm is computed as :math:`m (\sum (|x| / m)^p)^{1/p}` with
    :math:`m` the window's largest :math:`|x|`: no term exceeds 1, so large orders (p = 50,
    200) do not overflow where the norm itself is finite. A window holding NaN gives NaN,
    one holding an infinity (and no NaN) gives inf.

    Unlike :func:`torch.nn.functional.lp_pool2d`, which raises the samples themselves to
    the power p (so that negative samples give NaN or negative terms) and has no padding,
    this is the norm of the window's samples.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[3.0, -4.0, 0.0, 5.0, 12.0, -5.0]]])
    >>> convlab.lp_pool(x, 2)
    array([[[ 5.,  5., 13.]]])
    >>> convlab.lp_pool(x, 3, p=np.inf)
    array([[[ 4., 12.]]])
    >>> convlab.lp_pool(x, 3, p=1)
    array([[[ 7., 22.]]])
    """
    op, power = _lp_op(p)
    return _forward("lp_pool", x, size, stride, padding, workers, op, power)


def max_pool_grad(grad_out, x, size, *, stride=None, padding=0, workers=None):
    r"""Gradient of :func:`max_pool` with respect to its input.

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{o:\; o \cdot \mathrm{stride} - \mathrm{padding}
            + r^*(n, c, o) = i} G[n, c, o]

    with ``G = grad_out`` and :math:`r^*(n, c, o)` the offset in window o of its winner: the
    first offset r, in row-major window order, whose sample lies inside the input and holds
    the window's maximum (or its first NaN).

    ``max_pool_grad(G, x, size, ...)`` is ``d <max_pool(x, size, ...), G> / dx``: each
    window's output gradient ``G[n, c, o]`` goes to the sample that won the window, its
    first maximum in row-major window order (PyTorch's rule), or its first NaN if it holds
    one. Windows that overlap (stride < size) add their gradients where they share a
    winner. The padding never wins, so it receives nothing.

    Parameters
    ----------
    grad_out : array_like, shape (N, C, \*out)
        Gradient of a scalar loss with respect to the output of :func:`max_pool`.
    x : array_like, shape (N, C, \*in)
        The input of the forward call (the winners are found again from it).
    size : int or sequence of int
        As in :func:`max_pool`.
    stride, padding, workers : optional
        As in :func:`max_pool`.

    Returns
    -------
    ndarray, shape (N, C, \*in)
        The dtype of ``grad_out`` and ``x`` combined (float32 when both are float32 or
        float16, float64 otherwise).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`max_pool`.
    TypeError
        On complex or non-numeric inputs.

    See Also
    --------
    max_pool

    Examples
    --------
    The two windows of [1, 3, 3, 2] (size 2) are won by 3 (the first of the tie is the
    second sample) and by 3 again:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[1.0, 3.0, 3.0, 2.0]]])
    >>> convlab.max_pool_grad(np.array([[[10.0, 20.0]]]), x, 2)
    array([[[ 0., 10., 20.,  0.]]])

    Overlapping windows (size 3, stride 1) that share their winner add up:

    >>> convlab.max_pool_grad(np.ones((1, 1, 2)), x, 3, stride=1)
    array([[[0., 2., 0., 0.]]])
    """
    g, x, dtype, geo, threads = _gradient_inputs("max_pool_grad", grad_out, x, size, stride,
                                                 padding, workers)
    return _backward("max_pool_grad", g, x, geo, dtype, threads, _pooling.OP_MAX)


def avg_pool_grad(grad_out, input_shape, size, *, stride=None, padding=0,
                  count_include_pad=True, workers=None):
    r"""Gradient of :func:`avg_pool` with respect to its input.

    .. math::

        \mathrm{dx}[n, c, i] = \sum_{o, r:\; o \cdot \mathrm{stride} - \mathrm{padding}
            + r = i} \frac{G[n, c, o]}{D(o)}

    with ``G = grad_out``, ``0 <= r < size`` and D(o) the divisor of :func:`avg_pool`.

    ``avg_pool_grad(G, x.shape, size, ...)`` is ``d <avg_pool(x, size, ...), G> / dx``:
    every input sample of window o receives ``G[n, c, o] / D(o)``, with D(o) the divisor
    of the forward call; samples in several windows (stride < size) sum their shares, and
    samples in no window (stride > size) receive 0. Average pooling is linear, so this is
    its adjoint and does not depend on the input's values.

    Parameters
    ----------
    grad_out : array_like, shape (N, C, \*out)
        Gradient of a scalar loss with respect to the output of :func:`avg_pool`.
    input_shape : sequence of int
        ``(N, C, *in)``, the shape of the forward call's ``x``.
    size : int or sequence of int
        As in :func:`avg_pool`.
    stride, padding, count_include_pad, workers : optional
        As in :func:`avg_pool`.

    Returns
    -------
    ndarray, shape `input_shape`
        float32 for float32 (and float16) ``grad_out``, float64 otherwise.

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`avg_pool`.
    TypeError
        On complex or non-numeric `grad_out`, or a non-integer `input_shape`.

    See Also
    --------
    avg_pool

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> convlab.avg_pool_grad(np.array([[[4.0, 8.0]]]), (1, 1, 5), 2)
    array([[[2., 2., 4., 4., 0.]]])
    >>> convlab.avg_pool_grad(np.ones((1, 1, 4)), (1, 1, 3), 2, stride=1, padding=1,
    ...                       count_include_pad=False)
    array([[[1.5, 1. , 1.5]]])
    """
    g = as_array(grad_out, "grad_out")
    input_shape = normalize_shape(input_shape, "input_shape")
    dtype = _real_dtype("avg_pool_grad", [("grad_out", g)])
    geo = _geometry("avg_pool_grad", input_shape, size, stride, padding, name="input_shape")
    _check_shape("avg_pool_grad", "grad_out", g, geo.out_shape,
                 f"the forward output for input_shape={geo.shape}")
    return _backward("avg_pool_grad", g, None, geo, dtype, geo.threads(workers),
                     _pooling.OP_MEAN, include_pad=bool(count_include_pad))


def lp_pool_grad(grad_out, x, size, p=2, *, stride=None, padding=0, workers=None):
    r"""Gradient of :func:`lp_pool` with respect to its input.

    ``lp_pool_grad(G, x, size, p, ...)`` is ``d <lp_pool(x, size, p, ...), G> / dx``. For
    window o with norm :math:`y_o` and each of its input samples :math:`x_i`:

    .. math::

        \frac{\partial y_o}{\partial x_i} = \operatorname{sign}(x_i)
            \Bigl(\frac{|x_i|}{y_o}\Bigr)^{p - 1}

    (finite p), so the sample receives ``G[n, c, o]`` times that, summed over the windows
    that hold it. A window whose norm is 0 (all zeros) gives 0, not NaN. ``p = 1`` gives
    ``G * sign(x)``, with sign(0) = 0: a zero sample receives 0 (a subgradient).
    ``p = inf`` routes ``G * sign(x)`` to the window's first largest :math:`|x|` in
    row-major window order (the tie rule of :func:`max_pool_grad`).

    Parameters
    ----------
    grad_out : array_like, shape (N, C, \*out)
        Gradient of a scalar loss with respect to the output of :func:`lp_pool`.
    x : array_like, shape (N, C, \*in)
        The input of the forward call.
    size : int or sequence of int
        As in :func:`lp_pool`.
    p : float, optional
        As in :func:`lp_pool`. Default 2.
    stride, padding, workers : optional
        As in :func:`lp_pool`.

    Returns
    -------
    ndarray, shape (N, C, \*in)
        The dtype of ``grad_out`` and ``x`` combined (float32 when both are float32 or
        float16, float64 otherwise).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward output's shape, or as in :func:`lp_pool`.
    TypeError
        On complex or non-numeric inputs, or as in :func:`lp_pool`.

    See Also
    --------
    lp_pool

    Notes
    -----
    :math:`|x_i| / y_o \le 1`, so large orders do not overflow. The formula is evaluated
    as written where the norm is not finite: a window holding NaN gives NaN (for p > 1 at
    all its samples; for p = 1 at the NaN), and a window holding an infinity has an
    infinite norm, which gives 0 at its finite samples and NaN (inf / inf) at the infinite
    ones for p > 1.

    Examples
    --------
    The window [3, -4] has norm 5; its gradient is [3, -4] / 5:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([[[3.0, -4.0, 0.0, 0.0]]])
    >>> convlab.lp_pool_grad(np.ones((1, 1, 2)), x, 2)
    array([[[ 0.6, -0.8,  0. ,  0. ]]])
    >>> convlab.lp_pool_grad(np.ones((1, 1, 2)), x, 2, p=np.inf)
    array([[[ 0., -1.,  0.,  0.]]])
    """
    op, power = _lp_op(p)
    g, x, dtype, geo, threads = _gradient_inputs("lp_pool_grad", grad_out, x, size, stride,
                                                 padding, workers)
    return _backward("lp_pool_grad", g, x, geo, dtype, threads, op, power)
