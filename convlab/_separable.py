"""Separable correlation and convolution at the signal level, and kernel factorisation.

A d-dimensional kernel that is an outer product of d vectors, ``K = k_1 (x) ... (x) k_d``,
correlates as d one-dimensional passes, one per convolved axis: O(k_1 + ... + k_d) work per
output instead of O(k_1 * ... * k_d). Each pass is a :func:`convlab.correlate` (or
:func:`convlab.convolve`) along one axis with the mode and the stride of that axis, so every
rule of the dense call (SciPy's 'valid' swap and 'same' centring, complex conjugation,
broadcasting over the other axes) holds pass by pass.
"""

import warnings

import numpy as np

from convlab._shapes import (
    SIGNAL_MODES,
    signal_axis_geometry,
    strided_length,
    valid_mode_order,
)
from convlab._signal import _all_finite, convolve, convolve_grad, correlate, correlate_grad
from convlab._validation import (
    as_array,
    check_choice,
    check_memory,
    normalize_axes,
    normalize_positive_ints,
    require_real,
    result_dtype,
)

__all__ = [
    "correlate_separable",
    "convolve_separable",
    "correlate_separable_grad",
    "convolve_separable_grad",
    "separable_factors",
]


def _kernel_list(function, kernels):
    """The 1-D kernels as a list of arrays, each checked."""
    if isinstance(kernels, np.ndarray):
        if kernels.ndim != 2:
            raise ValueError(f"{function}: kernels must be a sequence of 1-D arrays, one per "
                             f"convolved axis; got an array of shape {kernels.shape}")
        kernels = list(kernels)
    elif isinstance(kernels, (str, bytes)) or not hasattr(kernels, "__len__"):
        raise TypeError(f"{function}: kernels must be a sequence of 1-D arrays, one per "
                        f"convolved axis; got {type(kernels).__name__}")
    out = []
    for i, k in enumerate(kernels):
        k = as_array(k, f"kernels[{i}]")
        if k.ndim != 1:
            raise ValueError(f"{function}: kernels[{i}] must be 1-D (a factor of the kernel "
                             f"along one axis); got shape {k.shape}")
        if k.shape[0] == 0:
            raise ValueError(f"{function}: kernels[{i}] is empty; every factor needs at least "
                             "one tap")
        out.append(k)
    return out


class _Passes:
    """A checked separable call: the axes, kernels, strides and result dtype of its passes."""

    def __init__(self, function, in1, kernels, mode, stride, axes, grad_out=None):
        self.in1 = as_array(in1, "in1")
        self.kernels = _kernel_list(function, kernels)
        check_choice(mode, "mode", SIGNAL_MODES)
        self.mode = mode
        ndim = self.in1.ndim
        self.axes = normalize_axes(axes, ndim)
        if len(self.kernels) != len(self.axes):
            raise ValueError(f"{function}: kernels must hold one 1-D kernel per convolved axis: "
                             f"{len(self.axes)} for axes {self.axes} of in1 (ndim={ndim}); got "
                             f"{len(self.kernels)}")
        self.strides = normalize_positive_ints(stride, len(self.axes), "stride")
        named = [("in1", self.in1)] + [(f"kernels[{i}]", k) for i, k in enumerate(self.kernels)]
        if grad_out is not None:
            named.append(("grad_out", grad_out))
        self.dtype = result_dtype(*named)
        for ax in self.axes:
            if self.in1.shape[ax] == 0:
                raise ValueError(f"{function}: in1 is empty along convolved axis {ax} (shape "
                                 f"{self.in1.shape}); every convolved axis needs at least one "
                                 "sample")
        # the dense kernel's shape: what SciPy's 'valid' rule compares in1 with
        self.kernel_shape = [1] * ndim
        for ax, k in zip(self.axes, self.kernels):
            self.kernel_shape[ax] = k.shape[0]
        if mode == "valid":
            valid_mode_order(self.in1.shape, self.kernel_shape, self.axes)
        elements = 2 * float(np.prod(self.in1.shape, dtype=np.float64)) * (
            1 + (mode == "full") * max((k.shape[0] for k in self.kernels), default=1))
        check_memory(elements * self.dtype.itemsize,
                     f"{function} (its passes' results and working copies)")

        # SciPy's 'valid' swap (the kernel at least as large along every convolved axis)
        # is decided for the dense kernel; a pass whose other convolved axes have kernel
        # size 1 would decide it differently, so such calls pass along one axis at a time.
        self.one_axis = mode == "valid" and not all(
            self.in1.shape[ax] >= self.kernel_shape[ax] for ax in self.axes)

    def along(self, i):
        """The i-th kernel shaped to broadcast along the i-th convolved axis."""
        shape = [1] * self.in1.ndim
        shape[self.axes[i]] = -1
        return np.asarray(self.kernels[i], dtype=self.dtype).reshape(shape)

    def pass_keywords(self, i):
        """The axes and stride of the i-th pass. Every convolved axis is named (the other
        ones with a kernel of size 1 and stride 1), so that the engine runs along the axes
        in place rather than moving the pass axis last, which costs a strided copy."""
        if self.one_axis:
            return dict(axes=self.axes[i], stride=self.strides[i])
        return dict(axes=self.axes, stride=tuple(s if j == i else 1
                                                 for j, s in enumerate(self.strides)))


def _separable(function, one_pass, in1, kernels, mode, stride, axes, workers):
    passes = _Passes(function, in1, kernels, mode, stride, axes)
    x = np.asarray(passes.in1, dtype=passes.dtype)
    if not passes.axes:
        return x.copy()
    for i in range(len(passes.axes)):
        x = one_pass(x, passes.along(i), mode, workers=workers, **passes.pass_keywords(i))
    return x


def _separable_grad(function, one_pass, one_grad, grad_out, in1, kernels, mode, stride, axes,
                    workers):
    g = as_array(grad_out, "grad_out")
    passes = _Passes(function, in1, kernels, mode, stride, axes, grad_out=g)
    for name, value in [("grad_out", g), ("in1", passes.in1)] + [
            (f"kernels[{i}]", k) for i, k in enumerate(passes.kernels)]:
        require_real(result_dtype((name, value)), function)
    x = np.asarray(passes.in1, dtype=passes.dtype)
    # the input of every pass (the forward is replayed: each kernel's gradient needs what
    # its pass read)
    inputs = [x]
    for i in range(len(passes.axes) - 1):
        inputs.append(one_pass(inputs[-1], passes.along(i), mode, workers=workers,
                               **passes.pass_keywords(i)))
    expected = _result_shape(passes, inputs[-1])
    if g.shape != expected:
        raise ValueError(f"{function}: grad_out must have the forward result's shape "
                         f"{expected}; got {g.shape}")
    g = np.asarray(g, dtype=passes.dtype)
    if not passes.axes:
        return g.copy(), []
    grads = [None] * len(passes.axes)
    # back through the passes, last first: each one's adjoint gives the gradient of the
    # pass before it, and its kernel's gradient
    for i in reversed(range(len(passes.axes))):
        g, gk = one_grad(g, inputs[i], passes.along(i), mode, workers=workers,
                         **passes.pass_keywords(i))
        grads[i] = gk.reshape(-1)
    return g, grads


def _result_shape(passes, last_input):
    """The forward result's shape, from the sizes alone (the last pass is not run)."""
    if not passes.axes:
        return passes.in1.shape
    shape = list(last_input.shape)
    ax, k, s = passes.axes[-1], passes.kernels[-1].shape[0], passes.strides[-1]
    _, length = signal_axis_geometry(shape[ax], k, passes.mode)
    shape[ax] = strided_length(length, min(s, length))
    return tuple(shape)


def correlate_separable(in1, kernels, mode="full", *, stride=1, axes=None, workers=None):
    r"""Correlate with a separable kernel, one 1-D pass per convolved axis.

    .. math::

        z[k] = \sum_{m} \mathrm{in1}[o + k \cdot s + m] \,
               \prod_{i} \overline{\mathrm{kernels}[i][m_i]}

    (``k``, ``m``, ``o`` and ``s`` hold one entry per convolved axis, in `axes` order; ``o``
    is where the mode starts the output, as in :func:`correlate_grad`; only samples inside
    `in1` are terms). Pass i contracts axis ``axes[i]`` alone, ``v_{i+1}[..., k_i, ...] =
    sum_l v_i[..., o_i + k_i s_i + l, ...] * conj(kernels[i][l])`` (the index shown is
    along ``axes[i]``), from ``v_0 = in1`` to ``z = v_d``.

    Equals ``correlate(in1, K, mode)`` for the outer-product kernel
    ``K = kernels[0] (x) kernels[1] (x) ...`` (``kernels[i]`` along ``axes[i]``), with
    ``k_1 + ... + k_d`` products per output instead of ``k_1 * ... * k_d``.

    Parameters
    ----------
    in1 : array_like
        The signal.
    kernels : sequence of array_like
        One 1-D kernel per convolved axis, in `axes` order.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`correlate`, applied to the dense kernel ``K`` (SciPy's 'valid' rule
        compares `in1` with ``K``'s shape).
    stride : int or sequence of int, optional
        Keep every ``stride``-th output along each convolved axis.
    axes : int or sequence of int, optional
        Axes to correlate over (default: all); ``kernels[i]`` belongs to ``axes[i]``.
    workers : int, optional
        Threads (see :func:`set_workers`).

    Returns
    -------
    ndarray
        The correlation. Its dtype is ``numpy.result_type`` of `in1` and the kernels after
        bool and integers become float64 and float16 becomes float32; float32, float64,
        complex64 and complex128 keep their precision (as :func:`correlate` gives).

    Raises
    ------
    ValueError
        If there is not one 1-D, non-empty kernel per convolved axis, or as in
        :func:`correlate`.
    TypeError
        For dtypes without kernels.

    See Also
    --------
    convolve_separable, correlate_separable_grad, separable_factors

    Notes
    -----
    Each pass is :func:`correlate` along one axis (its own choice of direct summation or
    FFT), in the result dtype. Results equal the dense call's to floating-point tolerance:
    the sums are grouped axis by axis instead of all at once.

    Examples
    --------
    A 3 x 3 box blur as two 3-tap passes:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> box = np.ones(3) / 3
    >>> y = convlab.correlate_separable(x, [box, box], mode="same")
    >>> np.allclose(y, convlab.correlate(x, np.ones((3, 3)) / 9, mode="same"))
    True
    >>> y.round(2)
    array([[ 1.11,  2.  ,  2.67,  2.  ],
           [ 3.  ,  5.  ,  6.  ,  4.33],
           [ 5.67,  9.  , 10.  ,  7.  ],
           [ 4.67,  7.33,  8.  ,  5.56]])
    """
    return _separable("correlate_separable", correlate, in1, kernels, mode, stride, axes,
                      workers)


def convolve_separable(in1, kernels, mode="full", *, stride=1, axes=None, workers=None):
    r"""Convolve with a separable kernel, one 1-D pass per convolved axis.

    .. math::

        z[k] = \sum_{m} \mathrm{in1}[o + k \cdot s - m] \, \prod_{i} \mathrm{kernels}[i][m_i]

    (one entry of ``k``, ``m``, ``o`` and ``s`` per convolved axis, in `axes` order; ``o`` is
    the index of the 'full' convolution at which the mode's output starts, 0 for 'full';
    only samples inside `in1` are terms). Pass i contracts axis ``axes[i]`` alone,
    ``v_{i+1}[..., k_i, ...] = sum_l v_i[..., o_i + k_i s_i - l, ...] * kernels[i][l]`` (the
    index shown is along ``axes[i]``), from ``v_0 = in1`` to ``z = v_d``.

    Equals ``convolve(in1, K, mode)`` for the outer-product kernel
    ``K = kernels[0] (x) kernels[1] (x) ...`` (``kernels[i]`` along ``axes[i]``).

    Parameters
    ----------
    in1 : array_like
        The signal.
    kernels : sequence of array_like
        One 1-D kernel per convolved axis, in `axes` order.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`, applied to the dense kernel.
    stride : int or sequence of int, optional
        Keep every ``stride``-th output along each convolved axis.
    axes : int or sequence of int, optional
        Axes to convolve over (default: all).
    workers : int, optional
        Threads (see :func:`set_workers`).

    Returns
    -------
    ndarray
        The convolution. Its dtype is ``numpy.result_type`` of `in1` and the kernels after
        bool and integers become float64 and float16 becomes float32; float32, float64,
        complex64 and complex128 keep their precision.

    Raises
    ------
    ValueError
        If there is not one 1-D, non-empty kernel per convolved axis, or as in
        :func:`convolve`.
    TypeError
        For dtypes without kernels.

    See Also
    --------
    correlate_separable, convolve_separable_grad, separable_factors

    Examples
    --------
    A Sobel filter is the outer product of a smoothing and a difference kernel:

    >>> import numpy as np
    >>> import convlab
    >>> x = np.outer(np.ones(5), np.arange(5.0))   # a ramp along the last axis
    >>> sobel = convlab.convolve_separable(x, [[1.0, 2.0, 1.0], [1.0, 0.0, -1.0]], "valid")
    >>> sobel
    array([[8., 8., 8.],
           [8., 8., 8.],
           [8., 8., 8.]])
    """
    return _separable("convolve_separable", convolve, in1, kernels, mode, stride, axes,
                      workers)


def correlate_separable_grad(grad_out, in1, kernels, mode="full", *, stride=1, axes=None,
                             workers=None):
    r"""Gradients of :func:`correlate_separable`: ``(grad_in1, [grad_kernel_i])``.

    .. math::

        h[n] = \sum_{k, m:\; o + k \cdot s + m = n} G[k] \prod_{j} \mathrm{kernels}[j][m_j],
        \qquad
        g_i[l] = \sum_{k} \sum_{m:\; m_i = l} G[k] \, \mathrm{in1}[o + k \cdot s + m]
                 \prod_{j \ne i} \mathrm{kernels}[j][m_j]

    with ``G = grad_out``, ``h = grad_in1`` and ``g_i = grad_kernels[i]``, in the notation of
    :func:`correlate_separable` (``k`` also runs over the axes that are not convolved).
    The vector-Jacobian products of ``<correlate_separable(in1, kernels, ...), grad_out>``
    with respect to `in1` and to each 1-D kernel: the adjoints of the passes, last pass
    first.

    Parameters
    ----------
    grad_out : array_like
        Gradient of a scalar loss with respect to the result.
    in1 : array_like
        The forward call's signal.
    kernels : sequence of array_like
        The forward call's 1-D kernels.
    mode, stride, axes, workers : optional
        As in :func:`correlate_separable`.

    Returns
    -------
    grad_in1 : ndarray
        Shape of `in1`.
    grad_kernels : list of ndarray
        One per kernel, of its shape. All gradients have the dtype ``numpy.result_type``
        of `grad_out`, `in1` and the kernels after bool and integers become float64 and
        float16 becomes float32 (float32 and float64 keep their precision; complex inputs
        raise TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward result's shape, or as in
        :func:`correlate_separable`.
    TypeError
        For complex inputs (gradients are defined for real dtypes) or dtypes without kernels.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(12.0).reshape(3, 4)
    >>> ks = [np.array([1.0, -1.0]), np.array([1.0, 2.0])]
    >>> y = convlab.correlate_separable(x, ks, "valid")
    >>> gx, (g0, g1) = convlab.correlate_separable_grad(np.ones_like(y), x, ks, "valid")
    >>> float((y * np.ones_like(y)).sum()), float((ks[0] * g0).sum()), float((ks[1] * g1).sum())
    (-72.0, -72.0, -72.0)
    """
    return _separable_grad("correlate_separable_grad", correlate, correlate_grad, grad_out, in1,
                           kernels, mode, stride, axes, workers)


def convolve_separable_grad(grad_out, in1, kernels, mode="full", *, stride=1, axes=None,
                            workers=None):
    r"""Gradients of :func:`convolve_separable`: ``(grad_in1, [grad_kernel_i])``.

    .. math::

        h[n] = \sum_{k, m:\; o + k \cdot s - m = n} G[k] \prod_{j} \mathrm{kernels}[j][m_j],
        \qquad
        g_i[l] = \sum_{k} \sum_{m:\; m_i = l} G[k] \, \mathrm{in1}[o + k \cdot s - m]
                 \prod_{j \ne i} \mathrm{kernels}[j][m_j]

    with ``G = grad_out``, ``h = grad_in1`` and ``g_i = grad_kernels[i]``, in the notation of
    :func:`convolve_separable` (``k`` also runs over the axes that are not convolved): the
    vector-Jacobian products of ``<convolve_separable(in1, kernels, ...), grad_out>`` with
    respect to `in1` and to each 1-D kernel, computed as the adjoints of the passes, last
    pass first.

    Parameters
    ----------
    grad_out : array_like
        Gradient of a scalar loss with respect to the result.
    in1 : array_like
        The forward call's signal.
    kernels : sequence of array_like
        The forward call's 1-D kernels.
    mode, stride, axes, workers : optional
        As in :func:`convolve_separable`.

    Returns
    -------
    grad_in1 : ndarray
        Shape of `in1`.
    grad_kernels : list of ndarray
        One per kernel, of its shape. All gradients have the dtype ``numpy.result_type``
        of `grad_out`, `in1` and the kernels after bool and integers become float64 and
        float16 becomes float32 (float32 and float64 keep their precision; complex inputs
        raise TypeError).

    Raises
    ------
    ValueError
        If `grad_out` does not have the forward result's shape, or as in
        :func:`convolve_separable`.
    TypeError
        For complex inputs or dtypes without kernels.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> gx, gks = convlab.convolve_separable_grad(np.ones((3, 4)), x, [[1.0, 1.0], [1.0, 1.0]])
    >>> gx
    array([[4., 4., 4.],
           [4., 4., 4.]])
    """
    return _separable_grad("convolve_separable_grad", convolve, convolve_grad, grad_out, in1,
                           kernels, mode, stride, axes, workers)


def separable_factors(kernel, *, rank=None, rtol=None):
    r"""Factor a kernel into a sum of outer products of 1-D kernels.

    .. math::

        \mathrm{kernel}[m_0, \ldots, m_{d-1}] \approx \sum_{r=0}^{R-1} \prod_{i=0}^{d-1}
        t_r[i][m_i]

    with ``t_r`` the r-th returned term. For a 2-D kernel R is `rank` when given, otherwise
    the number of singular values above ``rtol * s_max`` (0 for a zero kernel, `rank` or
    not); a 1-D
    kernel has R = 1, and an N-D kernel (3 or more axes) R = 1 when every unfolding has
    rank 1 by that rule (else a ValueError); a zero 1-D or N-D kernel has R = 0. Equality
    holds up to the dropped singular values.

    Parameters
    ----------
    kernel : array_like
        A 1-D, 2-D or N-D kernel (real or complex).
    rank : int, optional
        2-D kernels: keep exactly this many terms (the truncated SVD, the best rank-`rank`
        approximation in the 2-norm and the Frobenius norm). N-D kernels (3 or more axes):
        only 1.
    rtol : float, optional
        Without `rank`, keep the singular values larger than ``rtol * s_max``; default
        ``max(kernel.shape) * eps`` of the kernel's dtype. N-D kernels count as rank 1 when
        every unfolding has rank 1 by the same rule.

    Returns
    -------
    list of tuple of ndarray
        The rank-1 terms, each a tuple of one 1-D array per axis; ``[]`` for a zero
        kernel.
        For a 2-D kernel the term of singular value s and singular vectors u, v is
        ``(sqrt(s) u, sqrt(s) v^H)``. The factors have the kernel's dtype after bool and
        integers become float64 and float16 becomes float32 (float32, float64, complex64
        and complex128 keep their precision).

    Raises
    ------
    ValueError
        For an empty or 0-d kernel, a `rank` below 1 or above ``min(kernel.shape)``, or an
        N-D kernel (3 or more axes) that is not of rank 1 (the message names the rank of its
        unfolding along the first axis that has more than one term).
    TypeError
        For dtypes without kernels.

    Notes
    -----
    The error of a truncated 2-D factorisation is reported by the singular values it drops:
    ``||kernel - sum of the kept terms||_2`` is the largest dropped singular value (the
    Frobenius error is the root of the sum of their squares).
    ``numpy.linalg.svd(kernel, compute_uv=False)`` lists them all; for a kernel that is
    exactly of rank r (within `rtol`) they are below ``rtol * s_max``.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> g = np.array([1.0, 2.0, 1.0])
    >>> terms = convlab.separable_factors(np.outer(g, [1.0, 0.0, -1.0]))
    >>> len(terms)
    1
    >>> a, b = terms[0]
    >>> np.allclose(np.outer(a, b), np.outer(g, [1.0, 0.0, -1.0]))
    True

    A difference of Gaussians has rank 2:

    >>> t = np.arange(-3, 4)
    >>> dog = np.outer(np.exp(-t**2 / 2), np.exp(-t**2 / 2)) - np.outer(
    ...     np.exp(-t**2 / 8), np.exp(-t**2 / 8)) / 4
    >>> len(convlab.separable_factors(dog))
    2
    """
    k = as_array(kernel, "kernel")
    dtype = result_dtype(("kernel", k))
    if k.ndim == 0 or k.size == 0:
        raise ValueError(f"separable_factors: kernel must have at least one axis and one tap; "
                         f"got shape {k.shape}")
    k = np.asarray(k, dtype=dtype)
    eps = np.finfo(dtype).eps
    if rtol is None:
        rtol = max(k.shape) * eps
    if rank is not None:
        rank = normalize_positive_ints(rank, 1, "rank")[0]
    if not np.isfinite(k).all():
        raise ValueError("separable_factors: kernel holds NaN or Inf; it has no factorisation")
    if k.ndim == 1:
        if rank not in (None, 1):
            raise ValueError(f"separable_factors: a 1-D kernel has rank 1; got rank={rank}")
        return [] if not np.any(k) else [(k.copy(),)]
    if k.ndim == 2:
        u, s, vh = np.linalg.svd(k, full_matrices=False)
        if rank is not None:
            if rank > s.shape[0]:
                raise ValueError(f"separable_factors: rank must be at most min(kernel.shape) = "
                                 f"{s.shape[0]}; got rank={rank}")
            keep = rank if s[0] > 0 else 0            # a zero kernel has no terms
        else:
            keep = int(np.sum(s > rtol * s[0])) if s[0] > 0 else 0
        roots = np.sqrt(s[:keep]).astype(k.real.dtype)
        return [(np.ascontiguousarray(u[:, i] * roots[i]),
                 np.ascontiguousarray(vh[i] * roots[i])) for i in range(keep)]
    # N-D: rank 1 exactly when every unfolding has rank 1
    if rank not in (None, 1):
        raise ValueError(f"separable_factors: kernels with 3 or more axes are factored at rank "
                         f"1 only; got rank={rank}")
    if not np.any(k):
        return []
    vectors = []
    for axis, (found, u) in enumerate(_unfoldings(k, rtol)):
        if found > 1:
            raise ValueError(f"separable_factors: the kernel is not of rank 1: its unfolding "
                             f"along axis {axis} has rank {found} (singular values above rtol "
                             f"* s_max); a kernel with {k.ndim} axes is factored only when it "
                             "is an outer product of 1-D kernels")
        vectors.append(u)
    # the scale: the kernel's component along the outer product of the unit vectors
    outer = vectors[0]
    for v in vectors[1:]:
        outer = np.multiply.outer(outer, v)
    scale = np.sum(k * np.conj(outer))
    factors = [np.ascontiguousarray(vectors[0] * scale)] + [np.ascontiguousarray(v)
                                                            for v in vectors[1:]]
    return [tuple(f.astype(dtype, copy=False) for f in factors)]


def _unfoldings(k, rtol):
    """For each axis: (the rank of the kernel unfolded along it, its leading singular
    vector), the rank counting the singular values above ``rtol * s_max``."""
    out = []
    for axis in range(k.ndim):
        unfolding = np.moveaxis(k, axis, 0).reshape(k.shape[axis], -1)
        u, s, _ = np.linalg.svd(unfolding, full_matrices=False)
        out.append((int(np.sum(s > rtol * s[0])), u[:, 0]))
    return out


# ----------------------------------------------------------------------------------------
# method="separable" and the separable choice of method="auto" in correlate / convolve

# 'auto' looks for a separable kernel only when the dense operation is estimated to take at
# least this long (the test is an SVD of the kernel) ...
_DETECT_MIN_SECONDS = 1e-4
# ... and takes the passes only when they are estimated this much cheaper than the dense
# operation (the passes group the sums differently, so the dense call wins a close race).
_SEPARABLE_ADVANTAGE = 1.25


def _dense_kernel(in2, axes):
    """in2 over the convolved axes only (in `axes` order), or None when it varies along a
    non-convolved axis (a batch of kernels)."""
    moved = np.moveaxis(in2, axes, range(len(axes)))
    if any(n != 1 for n in moved.shape[len(axes):]):
        return None
    return moved.reshape(moved.shape[:len(axes)])


def _rank_one(kernel, dtype):
    """(1-D factors, rank): the factors when `kernel` has rank 1 (or 0) within
    :func:`separable_factors`' tolerance, else (None, a description of its rank)."""
    kernel = np.asarray(kernel, dtype=dtype)
    if kernel.ndim == 1:
        return [kernel], "1"
    if kernel.ndim > 2 and np.any(kernel):
        ranks = [found for found, _ in _unfoldings(kernel, max(kernel.shape)
                                                   * np.finfo(kernel.dtype).eps)]
        if max(ranks) > 1:
            axis = int(np.argmax(ranks))
            return None, f"{ranks[axis]} along axis {axis} (the rank of its unfolding there)"
    terms = separable_factors(kernel)
    if not terms:
        return [np.zeros(n, dtype) for n in kernel.shape], "0"
    if len(terms) == 1:
        return list(terms[0]), "1"
    return None, f"{len(terms)}"


def _chosen_seconds(a_shape, k_shape, offsets, lengths, strides, dtype):
    """Estimated seconds of the engine 'auto' would pick for one operation."""
    from convlab import _methods

    return _methods.choose_with_seconds(a_shape, k_shape, offsets, lengths, strides,
                                        (1,) * len(lengths), dtype)[1]


def _estimates(plan, taps):
    """Estimated seconds of (the dense operation, the passes) for a plan of
    ``convlab._signal`` whose kernel factors have lengths `taps`."""
    d = len(plan.axes)
    nb = plan.a.ndim - d
    dense = _chosen_seconds(plan.a.shape, plan.kernel.shape, plan.offsets, plan.lengths,
                            plan.strides, plan.dtype)
    sizes = list(plan.a.shape[nb:])
    passes = 0.0
    for i in range(d):
        k_shape = [1] * d
        k_shape[i] = taps[i]
        offsets, lengths, strides = [0] * d, list(sizes), [1] * d
        offsets[i], lengths[i], strides[i] = plan.offsets[i], plan.lengths[i], plan.strides[i]
        passes += _chosen_seconds(plan.a.shape[:nb] + tuple(sizes), (1,) * nb + tuple(k_shape),
                                  offsets, lengths, strides, plan.dtype)
        sizes[i] = plan.lengths[i]
    return dense, passes


def auto_factors(plan, in2, workers=None):
    """The 1-D factors 'auto' uses for a plan of ``convlab._signal`` (its passes cheaper
    than the dense operation, an exactly separable kernel), or None."""
    d = len(plan.axes)
    if d < 2 or sum(plan.kernel.shape[plan.a.ndim - d:][i] > 1 for i in range(d)) < 2:
        return None
    kernel = _dense_kernel(np.asarray(in2), plan.axes)
    if kernel is None:
        return None
    dense, passes = _estimates(plan, kernel.shape)
    if dense < _DETECT_MIN_SECONDS or passes * _SEPARABLE_ADVANTAGE >= dense:
        return None
    if not np.isfinite(kernel).all():
        return None
    factors, _ = _rank_one(kernel, plan.dtype)
    if factors is None or not _all_finite(plan.a, workers):
        return None
    return factors


def separable_call(function, in1, in2, mode, stride, axes, workers, flip, plan, required,
                   rank=None):
    """``correlate`` / ``convolve`` through the passes: for ``method='separable'``
    (`required`: a kernel of a rank above `rank`, default 1, is a ValueError for N-D
    kernels and an approximation with a RuntimeWarning for 2-D ones), or for 'auto' when it
    pays (None when it does not)."""
    one_pass = convolve_separable if flip else correlate_separable
    in2 = np.asarray(in2)
    if not required:
        factors = auto_factors(plan, in2, workers)
        if factors is None:
            return None
        return one_pass(in1, factors, mode, stride=stride, axes=plan.axes, workers=workers)
    if rank is not None:
        rank = normalize_positive_ints(rank, 1, "rank")[0]
    in1 = np.asarray(in1)
    kernel = _dense_kernel(in2, plan.axes)
    if kernel is not None:
        terms = _terms(function, kernel, plan.dtype, rank)
        result = None
        for term in terms:
            part = one_pass(in1, list(term), mode, stride=stride, axes=plan.axes,
                            workers=workers)
            result = part if result is None else result + part
        return result
    # a batch of kernels along non-convolved axes: each its own factors
    out = np.empty(plan.out_shape, plan.dtype)
    batch_axes = [ax for ax in range(in2.ndim) if ax not in plan.axes and in2.shape[ax] > 1]
    for index in np.ndindex(*(in2.shape[ax] for ax in batch_axes)):
        pick2 = [slice(None)] * in2.ndim
        pick1 = [slice(None)] * in1.ndim
        for ax, i in zip(batch_axes, index):
            pick2[ax] = slice(i, i + 1)
            pick1[ax] = slice(i, i + 1) if in1.shape[ax] > 1 else slice(0, 1)
        sub = correlate if not flip else convolve
        out[tuple(pick2)] = sub(in1[tuple(pick1)], in2[tuple(pick2)], mode, method="separable",
                                stride=stride, axes=plan.axes, workers=workers, rank=rank)
    return out


def _terms(function, kernel, dtype, rank):
    """The separable terms of `kernel` for method='separable' with `rank` (None: 1)."""
    factors, found = _rank_one(kernel, dtype)
    if factors is not None:
        return [factors]
    if rank is None or kernel.ndim > 2:
        raise ValueError(f"{function}(method='separable'): the kernel in2 must have rank 1 "
                         f"(an outer product of 1-D kernels); it has rank {found}. Pass "
                         "rank=r for a sum of r separable terms (2-D kernels), or use another "
                         "method")
    kernel = np.asarray(kernel, dtype=dtype)
    exact = separable_factors(kernel)
    if len(exact) <= rank:
        return exact
    s = np.linalg.svd(kernel, compute_uv=False)
    warnings.warn(f"{function}(method='separable', rank={rank}): the kernel has rank "
                  f"{len(exact)}; the result uses its best rank-{rank} approximation, of "
                  f"relative 2-norm error {s[rank] / s[0]:.3g} (the largest dropped singular "
                  "value over the largest one)", RuntimeWarning, stacklevel=5)
    return separable_factors(kernel, rank=rank)
