"""Signal-level correlation and convolution (SciPy's conventions) and their gradients."""

import math
import warnings
from dataclasses import dataclass

import numpy as np

from convlab import _methods
from convlab._kernels import _separable as _kernels
from convlab._shapes import SIGNAL_MODES, signal_axis_geometry, strided_length, valid_mode_order
from convlab._validation import (
    as_array,
    check_choice,
    check_memory,
    normalize_axes,
    normalize_positive_ints,
    require_real,
    result_dtype,
)
from convlab._workers import threads_for

__all__ = ["correlate", "convolve", "correlate_grad", "convolve_grad", "choose_method"]

METHODS = ("auto", "direct", "fft", "separable")


@dataclass
class _Plan:
    """A validated signal-level call: the operation along the trailing convolved axes."""

    a: np.ndarray           # in1 with the convolved axes moved last (in `axes` order)
    kernel: np.ndarray      # conj(in2) for correlate, in2 reversed for convolve; axes moved last
    axes: tuple
    dtype: np.dtype
    offsets: list
    lengths: list
    strides: tuple
    out_shape: tuple        # the result's shape in the caller's axis order

    @property
    def batch_ndim(self):
        return self.a.ndim - len(self.axes)

    def to_caller_layout(self, result):
        d = len(self.axes)
        return np.moveaxis(result, range(result.ndim - d, result.ndim), self.axes)


def _plan(function, in1, in2, mode, stride, axes, flip):
    in1 = as_array(in1, "in1")
    in2 = as_array(in2, "in2")
    dtype = result_dtype(("in1", in1), ("in2", in2))
    check_choice(mode, "mode", SIGNAL_MODES)
    if in1.ndim != in2.ndim:
        raise ValueError(f"{function}: in1 and in2 must have the same number of dimensions; "
                         f"got in1.ndim={in1.ndim} and in2.ndim={in2.ndim}")
    ndim = in1.ndim
    axes = normalize_axes(axes, ndim)
    strides = normalize_positive_ints(stride, len(axes), "stride")
    out_shape = []
    for ax in range(ndim):
        if ax in axes:
            continue
        n1, n2 = in1.shape[ax], in2.shape[ax]
        if n1 != n2 and n1 != 1 and n2 != 1:
            raise ValueError(f"{function}: along axis {ax}, which is not convolved, in1 and in2 must "
                             f"have equal sizes or size 1 (broadcast); got {n1} and {n2}")
    for ax in axes:
        for name, array in (("in1", in1), ("in2", in2)):
            if array.shape[ax] == 0:
                raise ValueError(f"{function}: {name} is empty along convolved axis {ax} "
                                 f"(shape {array.shape}); every convolved axis needs at least one sample")
    if mode == "valid":
        valid_mode_order(in1.shape, in2.shape, axes)
    offsets, lengths, kept_strides = [], [], []
    for ax, s in zip(axes, strides):
        offset, length = signal_axis_geometry(in1.shape[ax], in2.shape[ax], mode)
        # A stride at or beyond the stride-1 length keeps only the first output, as any
        # larger one would: clamping it keeps FFT sizes and C integers sized by the data.
        s = min(s, length)
        offsets.append(offset)
        lengths.append(strided_length(length, s))
        kept_strides.append(s)
    strides = tuple(kept_strides)
    conv_sizes = dict(zip(axes, lengths))
    out_shape = tuple(conv_sizes[ax] if ax in conv_sizes else max(in1.shape[ax], in2.shape[ax])
                      if 0 not in (in1.shape[ax], in2.shape[ax]) else 0 for ax in range(ndim))
    # The result, plus the contiguous copies the kernels may take of the inputs.
    elements = sum(float(np.prod(shape, dtype=np.float64)) for shape in (out_shape, in1.shape, in2.shape))
    check_memory(elements * dtype.itemsize, f"{function} (its result and working copies)")
    d = len(axes)
    last = tuple(range(ndim - d, ndim))
    a = np.moveaxis(in1, axes, last)
    kernel = np.moveaxis(in2, axes, last)
    if flip:
        kernel = np.flip(kernel, axis=last)
    elif kernel.dtype.kind == "c":
        kernel = np.conj(kernel)
    return _Plan(a, kernel, axes, dtype, offsets, lengths, strides, out_shape)


def _arithmetic_quietly():
    """Direct summation gives inf - inf = nan as IEEE arithmetic does, silently; numpy's
    floating-point warnings would make that a warning in some code paths and not others."""
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


def _all_finite(x, workers=None):
    """No NaN and no infinity in x (in either part of a complex value)."""
    if x.dtype.kind not in "fc":
        return True
    part = x.dtype.itemsize // (2 if x.dtype.kind == "c" else 1)
    if x.flags.c_contiguous and x.dtype.isnative and part in (4, 8):
        # the exponent bits of every value, in parallel: 'auto' reads a large input once
        # more for this (on one thread, about a tenth of the time of P2's passes)
        raw = x.reshape(-1).view(np.uint8)
        return not _kernels.has_nonfinite(raw, part, threads_for(workers, x.size))
    # a finite sum means every value is finite; an infinite one may be an overflow of
    # finite values, which the exact test tells apart
    with np.errstate(all="ignore"):
        if np.isfinite(np.add.reduce(x, axis=None)):
            return True
    return bool(np.isfinite(x).all())


def _finite(*arrays):
    return all(_all_finite(x) for x in arrays)


def _pick(method, plan_shapes, dtype, arrays):
    """The engine for one operation: 'auto' asks the cost model, then falls back to direct
    summation when an input holds NaN or Inf (FFT would smear them over the whole result)."""
    if method != "auto":
        return method
    choice = _methods.choose(*plan_shapes, dtype)
    if choice == "fft" and not _finite(*arrays):
        return "direct"
    return choice


_ENGINES = {"direct": _methods.direct_correlate, "fft": _methods.fft_correlate}
_ADJOINTS = {"direct": _methods.direct_correlate_adjoint, "fft": _methods.fft_correlate_adjoint}


def _forward(function, in1, in2, mode, method, stride, axes, workers, flip, rank=None):
    check_choice(method, "method", METHODS)
    if rank is not None and method != "separable":
        raise ValueError(f"{function}: rank={rank!r} applies to method='separable' only; got "
                         f"method={method!r}")
    plan = _plan(function, in1, in2, mode, stride, axes, flip)
    threads = threads_for(workers, math.prod(plan.out_shape) * plan.kernel.size)
    if not plan.axes:
        with _arithmetic_quietly():
            return np.asarray(plan.a * plan.kernel, dtype=plan.dtype)
    if method in ("auto", "separable"):
        from convlab._separable import separable_call

        result = separable_call(function, in1, in2, mode, stride, plan.axes, workers, flip,
                                plan, required=method == "separable", rank=rank)
        if result is not None:
            return result
    ones = (1,) * len(plan.axes)
    shapes = (plan.a.shape, plan.kernel.shape, plan.offsets, plan.lengths, plan.strides, ones)
    chosen = _pick(method, shapes, plan.dtype, (plan.a, plan.kernel))
    with _arithmetic_quietly():
        result = _ENGINES[chosen](plan.a, plan.kernel, plan.offsets, plan.lengths, plan.strides,
                                  ones, plan.dtype, threads)
    if method == "fft" and not np.isfinite(result).all():
        warnings.warn(f"{function}(method='fft'): the result holds NaN or Inf; the FFT spreads a "
                      "non-finite input over the whole output (use method='direct' to keep them "
                      "where direct summation puts them)", RuntimeWarning, stacklevel=3)
    return plan.to_caller_layout(result)


def _sum_to_shape(x, shape):
    """Sum the broadcast batch axes of a gradient back to the input's own sizes."""
    axes = tuple(ax for ax, (have, want) in enumerate(zip(x.shape, shape)) if want == 1 and have != 1)
    if axes:
        x = x.sum(axis=axes, keepdims=True)
    return x


def _gradient(function, grad_out, in1, in2, mode, stride, axes, workers, flip):
    for name, value in (("grad_out", grad_out), ("in1", in1), ("in2", in2)):
        require_real(result_dtype((name, as_array(value, name))), function)
    plan = _plan(function, in1, in2, mode, stride, axes, flip)
    g = as_array(grad_out, "grad_out")
    dtype = result_dtype(("grad_out", g), ("in1", plan.a), ("in2", plan.kernel))
    if g.shape != plan.out_shape:
        raise ValueError(f"{function}: grad_out must have the forward result's shape {plan.out_shape}; "
                         f"got {g.shape}")
    threads = threads_for(workers, math.prod(plan.out_shape) * plan.kernel.size)
    in1_shape = np.shape(in1)
    in2_shape = np.shape(in2)
    with _arithmetic_quietly():
        return _gradient_terms(plan, g, in1_shape, in2_shape, dtype, threads, flip)


def _gradient_terms(plan, g, in1_shape, in2_shape, dtype, threads, flip):
    if not plan.axes:
        grad1 = np.asarray(_sum_to_shape(g * plan.kernel, in1_shape), dtype=dtype)
        grad2 = np.asarray(_sum_to_shape(g * plan.a, in2_shape), dtype=dtype)
        return grad1, grad2
    d = len(plan.axes)
    nb = plan.batch_ndim
    last = tuple(range(nb, nb + d))
    g = np.moveaxis(g, plan.axes, last)
    ones = (1,) * d
    n_sizes = plan.a.shape[nb:]
    taps = plan.kernel.shape[nb:]
    # Input gradient h(K, G, s): the adjoint of the forward operation, same cost and geometry.
    forward = (plan.a.shape, plan.kernel.shape, plan.offsets, plan.lengths, plan.strides, ones)
    engine = _pick("auto", forward, dtype, (g, plan.kernel))
    grad_a = _ADJOINTS[engine](g, plan.kernel, plan.offsets, plan.strides, n_sizes, dtype, threads)
    # Kernel gradient g(G, V, s)[j] = sum_i a[offset + j + i * stride] * G[i]: the same operation
    # with G as the kernel, dilated by the stride.
    kernel_op = (plan.a.shape, g.shape, plan.offsets, list(taps), ones, plan.strides)
    engine = _pick("auto", kernel_op, dtype, (plan.a, g))
    grad_k = _ENGINES[engine](plan.a, g, plan.offsets, list(taps), ones, plan.strides, dtype, threads)
    if flip:
        grad_k = np.flip(grad_k, axis=last)
    grad_a = _sum_to_shape(grad_a, plan.a.shape)
    grad_k = _sum_to_shape(grad_k, plan.kernel.shape)
    return plan.to_caller_layout(grad_a), plan.to_caller_layout(grad_k)


def correlate(in1, in2, mode="full", method="auto", *, stride=1, axes=None, workers=None,
              rank=None):
    r"""Cross-correlate two N-dimensional arrays, as :func:`scipy.signal.correlate` does.

    .. math::

        z[k] = \sum_{l} \mathrm{in1}[l + k - K + 1] \, \overline{\mathrm{in2}[l]}

    over the samples where both arrays overlap (``K`` is the size of ``in2``; the 'full'
    result has ``N + K - 1`` outputs along each convolved axis). With ``stride`` the result
    is ``correlate(in1, in2, mode)[::stride]``, computed without the skipped outputs.

    Parameters
    ----------
    in1 : array_like
        First input (the signal).
    in2 : array_like
        Second input (the kernel); same number of dimensions as `in1`.
    mode : {'full', 'valid', 'same'}, optional
        'full': every overlap, ``N + K - 1`` outputs per axis. 'valid': the ``|N - K| + 1``
        positions where one input lies entirely inside the other (one input must be at least
        as large as the other along every convolved axis). 'same': ``N`` outputs centred as
        SciPy centres them (for an even kernel the extra zero goes before the signal).
    method : {'auto', 'direct', 'fft', 'separable'}, optional
        'direct' sums term by term (Cython, OpenMP), 'fft' uses :mod:`scipy.fft` (real
        transforms for real inputs; the result of real inputs is real), 'separable' factors
        the kernel into 1-D kernels and runs one pass per axis (a ValueError naming the
        rank when the kernel is not of rank 1), 'auto' picks the cheapest by a cost model,
        preferring 'direct' when the costs are comparable and always when an input holds
        NaN or Inf. See :func:`choose_method`.
    stride : int or sequence of int, optional
        Keep every ``stride``-th output along each convolved axis (one value per axis in
        `axes` order, or one for all), starting with the first.
    axes : int or sequence of int, optional
        Axes to correlate over (default: all). Along the other axes the inputs must have
        equal sizes or size 1, and the result has the broadcast size.
    workers : int, optional
        Threads to use: None (default) all usable cores (or the value of an enclosing
        :func:`set_workers`), ``-n`` counts back from the number of cores.
    rank : int, optional
        With ``method='separable'`` only: the kernel as a sum of up to `rank` separable
        terms (its truncated SVD for a 2-D kernel, see :func:`separable_factors`), one set of
        passes per term. When the kernel's rank is larger, the result is an approximation
        and a RuntimeWarning gives its relative error (the largest dropped singular value
        over the largest one).

    Returns
    -------
    ndarray
        The correlation. Its dtype is ``numpy.result_type`` of the inputs after bool and
        integers become float64 and float16 becomes float32; float32, float64, complex64
        and complex128 keep their precision.

    Raises
    ------
    ValueError
        For an unknown `mode` or `method`, inputs of different ndim, an empty convolved axis,
        incompatible non-convolved axes, a stride < 1, a repeated axis, or, in 'valid' mode,
        neither input at least as large as the other.
    TypeError
        For dtypes without kernels (long double, object, str, datetime).

    See Also
    --------
    convolve, correlate_grad, choose_method

    Notes
    -----
    Direct summation only adds products of overlapping samples: a NaN in the kernel that
    only ever meets the zero extension leaves the output finite (as SciPy's 1-D direct path;
    its N-d direct path multiplies the zero extension instead). An explicit ``method='fft'``
    spreads non-finite values and warns with a RuntimeWarning when the result holds any.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> convlab.correlate(x, [1.0, 0.0, -1.0])
    array([-1., -2., -2., -2.,  3.,  4.])
    >>> convlab.correlate(x, [1.0, 0.0, -1.0], mode="valid")
    array([-2., -2.])
    >>> convlab.correlate(x, [1.0, 0.0, -1.0], mode="same", stride=2)
    array([-2., -2.])
    """
    return _forward("correlate", in1, in2, mode, method, stride, axes, workers, flip=False,
                    rank=rank)


def convolve(in1, in2, mode="full", method="auto", *, stride=1, axes=None, workers=None,
             rank=None):
    r"""Convolve two N-dimensional arrays, as :func:`scipy.signal.convolve` does.

    .. math::

        z[k] = \sum_{l} \mathrm{in1}[l] \, \mathrm{in2}[k - l]

    over the samples where both arrays overlap: the correlation with ``in2`` reversed along
    every convolved axis (and not conjugated). Modes, strides, axes, dtypes and methods are
    those of :func:`correlate`.

    Parameters
    ----------
    in1 : array_like
        First input.
    in2 : array_like
        Second input (the kernel); same number of dimensions as `in1`.
    mode : {'full', 'valid', 'same'}, optional
        Output size rule, as in :func:`correlate`.
    method : {'auto', 'direct', 'fft', 'separable'}, optional
        How to compute, as in :func:`correlate`.
    stride : int or sequence of int, optional
        Keep every ``stride``-th output along each convolved axis.
    axes : int or sequence of int, optional
        Axes to convolve over (default: all); the others broadcast.
    workers : int, optional
        Threads to use (None: all usable cores).
    rank : int, optional
        With ``method='separable'`` only: up to `rank` separable terms, as in
        :func:`correlate`.

    Returns
    -------
    ndarray
        The convolution. Its dtype is ``numpy.result_type`` of the inputs after bool and
        integers become float64 and float16 becomes float32; float32, float64, complex64
        and complex128 keep their precision (as for :func:`correlate`).

    Raises
    ------
    ValueError
        As :func:`correlate`.
    TypeError
        As :func:`correlate`.

    See Also
    --------
    correlate, convolve_grad

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> convlab.convolve(x, [1.0, 0.0, -1.0])
    array([ 1.,  2.,  2.,  2., -3., -4.])
    >>> convlab.convolve(np.eye(3), np.ones((2, 2)), mode="valid")
    array([[2., 1.],
           [1., 2.]])
    """
    return _forward("convolve", in1, in2, mode, method, stride, axes, workers, flip=True,
                    rank=rank)


def correlate_grad(grad_out, in1, in2, mode="full", *, stride=1, axes=None, workers=None):
    r"""Gradients of :func:`correlate` with respect to both inputs.

    For ``z = correlate(in1, in2, mode, stride=stride, axes=axes)`` and the gradient ``G``
    of a scalar loss with respect to ``z``, returns the exact vector-Jacobian products

    .. math::

        h[n] = \sum_{k,l:\; o + k s + l = n} G[k] \, \mathrm{in2}[l], \qquad
        g[l] = \sum_{k} G[k] \, \mathrm{in1}[o + k s + l]

    (Goodfellow et al.'s input gradient ``h(K, G, s)`` and kernel gradient ``g(G, V, s)``;
    ``o`` is where the mode starts the output), so that
    ``<correlate(x, y), G> == <x, h> == <y, g>``. Broadcast axes are summed back to each
    input's own size.

    Parameters
    ----------
    grad_out : array_like
        Gradient with respect to the result; must have the result's shape.
    in1, in2 : array_like
        The forward inputs (real).
    mode : {'full', 'valid', 'same'}, optional
        The forward mode.
    stride : int or sequence of int, optional
        The forward stride.
    axes : int or sequence of int, optional
        The forward axes.
    workers : int, optional
        Threads to use (None: all usable cores).

    Returns
    -------
    grad_in1 : ndarray
        Gradient with respect to `in1`, of `in1`'s shape.
    grad_in2 : ndarray
        Gradient with respect to `in2`, of `in2`'s shape. Both gradients have the dtype
        ``numpy.result_type`` of `grad_out`, `in1` and `in2` after bool and integers become
        float64 and float16 becomes float32 (float32 and float64 keep their precision;
        complex inputs raise TypeError).

    Raises
    ------
    TypeError
        For complex inputs (gradients are defined for real data) and unsupported dtypes.
    ValueError
        If `grad_out` does not have the forward result's shape, and as :func:`correlate`.

    See Also
    --------
    correlate, convolve_grad

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([1.0, 2.0, 3.0, 4.0])
    >>> k = np.array([1.0, -1.0])
    >>> g = np.ones(3)             # d(sum(z)) / dz for z = correlate(x, k, "valid")
    >>> gx, gk = convlab.correlate_grad(g, x, k, mode="valid")
    >>> gx
    array([ 1.,  0.,  0., -1.])
    >>> gk
    array([6., 9.])
    """
    return _gradient("correlate_grad", grad_out, in1, in2, mode, stride, axes, workers, flip=False)


def convolve_grad(grad_out, in1, in2, mode="full", *, stride=1, axes=None, workers=None):
    r"""Gradients of :func:`convolve` with respect to both inputs.

    For ``z[k] = sum_l in1[o + k s - l] in2[l]``, the result of ``convolve(in1, in2, mode,
    stride=stride, axes=axes)``, and the gradient ``G`` of a scalar loss with respect to
    ``z``, returns

    .. math::

        h[n] = \sum_{k,l:\; o + k s - l = n} G[k] \, \mathrm{in2}[l], \qquad
        g[l] = \sum_{k} G[k] \, \mathrm{in1}[o + k s - l]

    (``o`` is the index of the 'full' convolution at which the mode's output starts, 0 for
    'full'; only samples inside `in1` are terms), the formulas of :func:`correlate_grad`
    with the kernel reversed. These are the exact vector-Jacobian products of ``z``:
    ``<convolve(x, y), G> == <x, grad_in1> == <y, grad_in2>``. Broadcast axes
    are summed back to each input's own size.

    Parameters
    ----------
    grad_out : array_like
        Gradient with respect to the result; must have the result's shape.
    in1, in2 : array_like
        The forward inputs (real).
    mode : {'full', 'valid', 'same'}, optional
        The forward mode.
    stride : int or sequence of int, optional
        The forward stride.
    axes : int or sequence of int, optional
        The forward axes.
    workers : int, optional
        Threads to use (None: all usable cores).

    Returns
    -------
    grad_in1 : ndarray
        Gradient with respect to `in1`, of `in1`'s shape.
    grad_in2 : ndarray
        Gradient with respect to `in2`, of `in2`'s shape. Both gradients have the dtype
        ``numpy.result_type`` of `grad_out`, `in1` and `in2` after bool and integers become
        float64 and float16 becomes float32 (float32 and float64 keep their precision;
        complex inputs raise TypeError).

    Raises
    ------
    TypeError
        For complex inputs and unsupported dtypes.
    ValueError
        If `grad_out` does not have the forward result's shape, and as :func:`convolve`.

    See Also
    --------
    convolve, correlate_grad

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> k = np.array([1.0, 2.0])
    >>> gx, gk = convlab.convolve_grad(np.ones(4), x, k)   # loss = sum(convolve(x, k))
    >>> gx, gk
    (array([3., 3., 3.]), array([6., 6.]))
    """
    return _gradient("convolve_grad", grad_out, in1, in2, mode, stride, axes, workers, flip=True)


def choose_method(in1, in2, mode="full", *, stride=1, axes=None):
    """The method ``method='auto'`` would use for these inputs: 'direct', 'fft' or 'separable'.

    The choice depends on the shapes of `in1` and `in2`, the convolved `axes`, the `mode`,
    the `stride` and the result dtype (single or double precision, real or complex; bool and
    integers count as float64, float16 as float32, as in :func:`correlate`), and on the
    values only through two tests: whether both inputs are finite and whether the kernel
    `in2` has rank at most 1. It never depends on the memory layout, the byte order or the
    number of workers, and it is the same for :func:`correlate` and :func:`convolve`. The
    rule, in order:

    1. 'direct' when no axis is convolved.
    2. 'separable' when at least two convolved axes have a kernel size above 1, `in2` is one
       kernel (size 1 along every axis that is not convolved), the dense computation is
       estimated at 100 microseconds or more, the 1-D passes are estimated more than 1.25
       times cheaper, both inputs are finite and the kernel has rank at most 1 within
       :func:`separable_factors`' default tolerance (a zero kernel qualifies).
    3. 'fft' when its estimated time is more than 1.5 times below that of direct summation
       and both inputs are finite.
    4. 'direct' otherwise: direct summation is preferred whenever its cost is comparable,
       and always when an input holds NaN or Inf.

    The estimates come from a single-core cost model of the work (products summed, rows
    visited and outputs written by direct summation; transform sizes for the FFT), with
    constants calibrated on the development machine.

    Parameters
    ----------
    in1, in2 : array_like
        The inputs of :func:`correlate` or :func:`convolve` (the choice is the same for both).
    mode : {'full', 'valid', 'same'}, optional
        The output size rule.
    stride : int or sequence of int, optional
        The stride along each convolved axis.
    axes : int or sequence of int, optional
        The convolved axes (default: all).

    Returns
    -------
    str
        'direct', 'fft' or 'separable' (a kernel of rank at most 1 within
        :func:`separable_factors`' tolerance, the same for every broadcast slice, whose
        passes are estimated clearly cheaper; never for inputs holding NaN or Inf).

    Raises
    ------
    ValueError, TypeError
        For the arguments :func:`correlate` rejects.

    See Also
    --------
    correlate, convolve

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> convlab.choose_method(np.ones(1000), np.ones(3))
    'direct'
    >>> convlab.choose_method(np.ones((512, 512)), np.ones((64, 64)), mode="same")
    'fft'

    A box blur is an outer product of two 1-D kernels: one pass per axis.

    >>> convlab.choose_method(np.ones((512, 512)), np.ones((15, 15)), mode="same")
    'separable'
    """
    plan = _plan("choose_method", in1, in2, mode, stride, axes, flip=False)
    if not plan.axes:
        return "direct"
    from convlab._separable import auto_factors

    if auto_factors(plan, in2) is not None:
        return "separable"
    ones = (1,) * len(plan.axes)
    shapes = (plan.a.shape, plan.kernel.shape, plan.offsets, plan.lengths, plan.strides, ones)
    return _pick("auto", shapes, plan.dtype, (plan.a, plan.kernel))
