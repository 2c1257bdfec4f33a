"""The two ways convlab computes its one operation, and the cost model choosing between them.

Along each of the ``d`` trailing (convolved) axes of ``a`` (shape ``(*batch_a, *n)``) and
``k`` (shape ``(*batch_k, *taps)``),

    out[..., i] = sum_j a[..., offset + i * stride + j * dilation] * k[..., j]

over the taps whose sample lies inside ``a``; the leading axes broadcast. No conjugation
happens here: the caller passes ``conj(in2)`` for a correlation and the reversed ``in2`` for
a convolution.

* ``direct``: the Cython kernels of :mod:`convlab._kernels._direct` (exact term by term, so
  NaN and Inf stay where direct summation puts them);
* ``fft``: :mod:`scipy.fft`, real transforms for real data, with the stride applied by
  folding the spectrum so that the inverse transform is only as long as the strided output.

The adjoint of the operation with respect to ``a`` (the input gradient) has its own entry
points, as a sum of stride-1 operations over the stride phases (direct) or one transform of
the zero-upsampled gradient (fft).
"""

import itertools
import math

import numpy as np
import scipy.fft

from convlab._kernels import _direct
from convlab._shapes import overlap_terms
from convlab._validation import check_memory

# Native rank of the Cython kernels; more convolved axes loop over the leading ones.
_KERNEL_AXES = 3


def _broadcast_batch(a_shape, k_shape, d):
    nb = len(a_shape) - d
    return np.broadcast_shapes(tuple(a_shape[:nb]), tuple(k_shape[:nb]))


def _batch_index(batch_shape, own_shape):
    """Flat index into ``own_shape`` (a broadcastable batch shape) for every batch element."""
    count = math.prod(own_shape)
    flat = np.arange(count, dtype=np.intp).reshape(own_shape)
    return np.ascontiguousarray(np.broadcast_to(flat, batch_shape).reshape(-1))


# ----------------------------------------------------------------------------------------
# direct summation


# With fewer tasks (output line blocks) than this, the kernel also splits the taps of its
# longest kernel axis, so that both cores have work. A constant, not the thread count, so that
# the result does not depend on `workers` (the split changes the order of the sums).
_MIN_TASKS = 32


def _direct_real(a, k, out, offsets, strides, dilations, accumulate, threads):
    """out (+)= op(a, k) for real arrays; `out` is C-contiguous of the result dtype."""
    d = len(offsets)
    nb = a.ndim - d
    if d > _KERNEL_AXES:
        # Peel the first convolved axis: each output slab is a sum of (d-1)-axis operations.
        n0, taps0 = a.shape[nb], k.shape[nb]
        for i0 in range(out.shape[nb]):
            slab = out[(slice(None),) * nb + (i0,)]
            part = np.zeros(slab.shape, out.dtype)
            start = offsets[0] + i0 * strides[0]
            for j0 in range(taps0):
                pos = start + j0 * dilations[0]
                if 0 <= pos < n0:
                    _direct_real(a[(slice(None),) * nb + (pos,)], k[(slice(None),) * nb + (j0,)],
                                 part, offsets[1:], strides[1:], dilations[1:], True, threads)
            if accumulate:
                slab += part
            else:
                slab[...] = part
        return
    pad = (1,) * (_KERNEL_AXES - d)
    batch = out.shape[:nb]
    a_batch, k_batch = a.shape[:nb], k.shape[:nb]
    a3 = np.ascontiguousarray(a, dtype=out.dtype).reshape((math.prod(a_batch),) + pad + a.shape[nb:])
    k3 = np.ascontiguousarray(k, dtype=out.dtype).reshape((math.prod(k_batch),) + pad + k.shape[nb:])
    lines = math.prod(batch) * math.prod(out.shape[nb:-1])
    tasks = lines * -(-out.shape[-1] // _direct.LINE_BLOCK)
    split_axis = int(np.argmax(k3.shape[1:]))
    nsplit = 1
    if tasks < _MIN_TASKS:
        nsplit = min(k3.shape[1 + split_axis], -(-_MIN_TASKS // tasks))
    geometry = ((0,) * len(pad) + tuple(offsets), pad + tuple(strides), pad + tuple(dilations))
    indices = (_batch_index(batch, a_batch), _batch_index(batch, k_batch))
    out3 = out.reshape((math.prod(batch),) + pad + out.shape[nb:])
    if nsplit == 1:
        _direct.correlate(a3, k3, out3, *indices, *geometry, accumulate, threads)
        return
    parts = np.empty((nsplit * out3.shape[0],) + out3.shape[1:], out.dtype)
    _direct.correlate(a3, k3, parts, *indices, *geometry, False, threads, split_axis, nsplit)
    total = parts.reshape((nsplit,) + out3.shape).sum(axis=0)
    if accumulate:
        out3 += total
    else:
        out3[...] = total


def _real_parts(x):
    """``(real, imag)`` of `x` as separate real arrays; ``imag`` is None for real `x`."""
    if x.dtype.kind == "c":
        return x.real, x.imag
    return x, None


def direct_correlate(a, k, offsets, lengths, strides, dilations, dtype, threads):
    """The operation by direct summation; returns a new C-contiguous array of `dtype`."""
    d = len(lengths)
    batch = _broadcast_batch(a.shape, k.shape, d)
    out = np.empty(batch + tuple(lengths), dtype)
    if out.size == 0:
        return out
    if dtype.kind != "c":
        _direct_real(a, k, out, offsets, strides, dilations, False, threads)
        return out
    # Complex data as real passes on the real and imaginary parts: the same four products as
    # the textbook complex multiply, at the speed of the real kernels.
    real_dtype = np.dtype(dtype.char.lower())
    a_re, a_im = _real_parts(a)
    k_re, k_im = _real_parts(k)
    out_re = np.empty(out.shape, real_dtype)
    out_im = np.empty(out.shape, real_dtype)
    geometry = (offsets, strides, dilations)
    real_terms = [(a_re, k_re)] + ([(a_im, -k_im)] if a_im is not None and k_im is not None else [])
    imag_terms = ([(a_re, k_im)] if k_im is not None else []) + ([(a_im, k_re)] if a_im is not None else [])
    for target, terms in ((out_re, real_terms), (out_im, imag_terms)):
        if not terms:
            target[...] = 0
        for index, (x, y) in enumerate(terms):
            _direct_real(x, y, target, *geometry, index > 0, threads)
    out.real = out_re
    out.imag = out_im
    return out


def direct_correlate_adjoint(g, k, offsets, strides, input_sizes, dtype, threads):
    """Gradient of the (dilation 1) operation with respect to ``a``, by direct summation.

    Along one axis ``grad_a[p] = sum g[i] k[j]`` over the pairs with ``offset + i*stride + j = p``.
    The outputs ``p`` of one residue class modulo the stride meet only the taps ``j`` of one
    residue class, so the adjoint is ``stride**d`` stride-1 operations on ``g`` with the
    reversed, decimated kernels, each writing every ``stride``-th output: exactly the terms
    of the definition, nothing multiplied by an inserted zero.
    """
    d = len(offsets)
    nb = g.ndim - d
    batch = _broadcast_batch(g.shape, k.shape, d)
    grad = np.zeros(batch + tuple(input_sizes), dtype)
    if grad.size == 0:
        return grad
    taps = k.shape[nb:]
    per_axis = []
    for axis in range(d):
        n, t, off, s = input_sizes[axis], taps[axis], offsets[axis], strides[axis]
        phases = []
        for rho in range(min(s, t)):
            count_taps = -(-(t - rho) // s)
            q_min = -((off + rho) // s)          # ceil(-(off + rho) / s)
            q_max = (n - 1 - off - rho) // s
            count = q_max - q_min + 1
            if count <= 0:
                continue
            first = off + rho + s * q_min
            phases.append((slice(rho, None, s), q_min - count_taps + 1, count,
                           slice(first, first + (count - 1) * s + 1, s)))
        per_axis.append(phases)
    for combo in itertools.product(*per_axis):
        kernel_slices = (Ellipsis,) + tuple(c[0] for c in combo)
        phase_kernel = np.flip(k[kernel_slices], axis=tuple(range(nb, nb + d)))
        part = direct_correlate(g, phase_kernel, [c[1] for c in combo], [c[2] for c in combo],
                                (1,) * d, (1,) * d, dtype, threads)
        grad[(Ellipsis,) + tuple(c[3] for c in combo)] = part
    return grad


# ----------------------------------------------------------------------------------------
# FFT


def _fft_lengths(n_sizes, taps, offsets, lengths, strides, real):
    """Transform length per axis: long enough that the circular correlation equals the linear
    one at every requested output, and a multiple of the stride (for the spectral fold)."""
    sizes = []
    for axis, (n, t, off, m, s) in enumerate(zip(n_sizes, taps, offsets, lengths, strides)):
        need = max(n - min(off, 0), off + (m - 1) * s + t, n)
        last = real and axis == len(n_sizes) - 1
        sizes.append(s * scipy.fft.next_fast_len(-(-need // s), real=last))
    return sizes


def _fold(spectrum, axis, stride):
    """Spectrum of ``x[::stride]`` (times ``stride``) from the spectrum of ``x``."""
    shape = spectrum.shape
    length = shape[axis]
    folded = spectrum.reshape(shape[:axis] + (stride, length // stride) + shape[axis + 1:])
    return folded.sum(axis=axis)


def _fold_half(spectrum, length, stride):
    """Like :func:`_fold` along the last axis of a real transform's half spectrum."""
    half = length // 2 + 1
    mirror = np.conj(spectrum[..., length - half:0:-1])
    full = np.concatenate([spectrum, mirror], axis=-1)
    folded = _fold(full, full.ndim - 1, stride)
    return folded[..., : (length // stride) // 2 + 1]


def _dilate(k, dilations, nb):
    if all(dl == 1 for dl in dilations):
        return k
    taps = k.shape[nb:]
    shape = k.shape[:nb] + tuple((t - 1) * dl + 1 for t, dl in zip(taps, dilations))
    dilated = np.zeros(shape, k.dtype)
    dilated[(Ellipsis,) + tuple(slice(None, None, dl) for dl in dilations)] = k
    return dilated


def fft_correlate(a, k, offsets, lengths, strides, dilations, dtype, threads):
    """The operation through scipy.fft; returns a new C-contiguous array of `dtype`."""
    d = len(lengths)
    nb = a.ndim - d
    batch = _broadcast_batch(a.shape, k.shape, d)
    if math.prod(batch) * math.prod(lengths) == 0:
        return np.zeros(batch + tuple(lengths), dtype)
    real = dtype.kind != "c"
    a = np.asarray(a, dtype=dtype)
    k = _dilate(np.asarray(k, dtype=dtype), dilations, nb)
    axes = tuple(range(nb, nb + d))
    n_sizes, taps = a.shape[nb:], k.shape[nb:]
    sizes = _fft_lengths(n_sizes, taps, offsets, lengths, strides, real)
    buffers = (math.prod(a.shape[:nb]) + math.prod(k.shape[:nb]) + 2 * math.prod(batch))
    check_memory(buffers * math.prod(sizes) * np.dtype(dtype).itemsize * (1 if real else 2),
                 "the FFT buffers of this call")
    # Shift a so that output i lands at index i * stride of the circular correlation.
    padded = np.zeros(a.shape[:nb] + tuple(sizes), dtype)
    padded[(Ellipsis,) + tuple(slice(0, n) for n in n_sizes)] = a
    shifts = [-off for off in offsets]
    if any(shifts):
        padded = np.roll(padded, shifts, axis=axes)
    if real:
        spec_a = scipy.fft.rfftn(padded, axes=axes, workers=threads)
        spec_k = scipy.fft.rfftn(k, s=sizes, axes=axes, workers=threads)
        # sum_j a[q + j] k[j] is the correlation of a with conj(k) = k.
        product = spec_a * np.conj(spec_k)
    else:
        spec_a = scipy.fft.fftn(padded, axes=axes, workers=threads)
        spec_k = scipy.fft.fftn(np.conj(k), s=sizes, axes=axes, workers=threads)
        product = spec_a * np.conj(spec_k)
    del padded, spec_a, spec_k
    full_axes = axes[:-1] if real else axes
    for axis, s in zip(full_axes, strides):
        if s > 1:
            product = _fold(product, axis, s)
    if real:
        if len(full_axes):
            product = scipy.fft.ifftn(product, axes=full_axes, workers=threads)
        length, s = sizes[-1], strides[-1]
        if s > 1:
            product = _fold_half(product, length, s)
        result = scipy.fft.irfft(product, n=length // s, axis=-1, workers=threads)
    else:
        result = scipy.fft.ifftn(product, axes=axes, workers=threads)
    scale = math.prod(strides)
    result = result[(Ellipsis,) + tuple(slice(0, m) for m in lengths)]
    if scale != 1:
        result = result / scale
    return np.ascontiguousarray(result, dtype=dtype)


def fft_correlate_adjoint(g, k, offsets, strides, input_sizes, dtype, threads):
    """Gradient of the (dilation 1) operation with respect to ``a`` through scipy.fft: the
    zero-upsampled gradient correlated with the reversed kernel."""
    d = len(offsets)
    nb = g.ndim - d
    lengths = g.shape[nb:]
    if any(s > 1 for s in strides):
        up = np.zeros(g.shape[:nb] + tuple((m - 1) * s + 1 for m, s in zip(lengths, strides)), g.dtype)
        up[(Ellipsis,) + tuple(slice(None, None, s) for s in strides)] = g
        g = up
    taps = k.shape[nb:]
    reversed_k = np.flip(k, axis=tuple(range(nb, nb + d)))
    return fft_correlate(g, reversed_k, [-off - t + 1 for off, t in zip(offsets, taps)],
                         list(input_sizes), (1,) * d, (1,) * d, dtype, threads)


# ----------------------------------------------------------------------------------------
# cost model

# Seconds per unit, measured on the development machine (Intel Xeon, AVX-512, 2 cores) by
# benchmarks/calibrate.py; only their ratios matter.
_DIRECT_SECONDS_PER_TERM = {"f": 0.11e-9, "d": 0.22e-9}
_DIRECT_SECONDS_PER_OUTPUT = {"f": 0.4e-9, "d": 0.5e-9}
_FFT_SECONDS_PER_POINT_LOG = {"f": 0.45e-9, "d": 0.75e-9}
# FFT is chosen only when clearly cheaper: direct summation is exact term by term.
_FFT_ADVANTAGE = 1.5


def direct_cost(a_shape, k_shape, offsets, lengths, strides, dilations, complex_data):
    d = len(lengths)
    nb = len(a_shape) - d
    batch = math.prod(_broadcast_batch(a_shape, k_shape, d))
    terms = batch
    for axis in range(d):
        terms *= overlap_terms(a_shape[nb + axis], k_shape[nb + axis], offsets[axis],
                               lengths[axis], strides[axis], dilations[axis])
    outputs = batch * math.prod(lengths)
    return terms, outputs, (4 if complex_data else 1)


def choose(a_shape, k_shape, offsets, lengths, strides, dilations, dtype):
    """'direct' or 'fft' for the operation on arrays of these shapes (layout-independent)."""
    d = len(lengths)
    nb = len(a_shape) - d
    char = np.dtype(dtype).char.lower()
    char = "f" if char == "f" else "d"
    complex_data = np.dtype(dtype).kind == "c"
    terms, outputs, factor = direct_cost(a_shape, k_shape, offsets, lengths, strides, dilations,
                                         complex_data)
    direct_seconds = factor * (terms * _DIRECT_SECONDS_PER_TERM[char]
                               + outputs * _DIRECT_SECONDS_PER_OUTPUT[char])
    taps = [(t - 1) * dl + 1 for t, dl in zip(k_shape[nb:], dilations)]
    sizes = _fft_lengths(a_shape[nb:], taps, offsets, lengths, strides, not complex_data)
    points = math.prod(sizes)
    log_points = math.log2(max(points, 2))
    batch = math.prod(_broadcast_batch(a_shape, k_shape, d))
    transforms = (math.prod(a_shape[:nb]) + math.prod(k_shape[:nb])) * points * log_points
    transforms += batch * points / math.prod(strides) * log_points + 2 * batch * points
    fft_seconds = transforms * _FFT_SECONDS_PER_POINT_LOG[char] * (1.0 if complex_data else 0.5)
    return "fft" if fft_seconds * _FFT_ADVANTAGE < direct_seconds else "direct"
