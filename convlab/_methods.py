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

from convlab._kernels import _direct, _memory
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
_SHARE_BYTES = 1 << 18


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
        # Shares small enough that the lines of one share find its kernel rows in cache.
        shares = max(-(-_MIN_TASKS // tasks), -(-k3[0].nbytes // _SHARE_BYTES))
        nsplit = min(k3.shape[1 + split_axis], shares)
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
    out = _memory.empty(batch + tuple(lengths), dtype)
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
    taps = k.shape[nb:]
    if all(s == 1 for s in strides):
        reversed_k = np.flip(k, axis=tuple(range(nb, nb + d)))
        return direct_correlate(g, reversed_k, [-off - t + 1 for off, t in zip(offsets, taps)],
                                list(input_sizes), strides, strides, dtype, threads)
    batch = _broadcast_batch(g.shape, k.shape, d)
    grad = _memory.empty(batch + tuple(input_sizes), dtype)
    if grad.size == 0:
        return grad
    # Input samples that no output reads keep a zero gradient (strides larger than the kernel).
    grad.fill(0)
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
        need = max(n - min(off, 0), off + (m - 1) * s + t, m * s)
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


def _place_wrapped(k, sizes, shifts, nb):
    """A zero array of `sizes` along the trailing axes holding ``k`` at index ``j + shift``
    modulo the size (so a negative shift wraps the kernel's start to the end)."""
    buffer = np.zeros(k.shape[:nb] + tuple(sizes), k.dtype)
    per_axis = []
    for size, taps, shift in zip(sizes, k.shape[nb:], shifts):
        start = shift % size
        head = min(taps, size - start)
        pieces = [(slice(start, start + head), slice(0, head))]
        if head < taps:
            pieces.append((slice(0, taps - head), slice(head, taps)))
        per_axis.append(pieces)
    for combo in itertools.product(*per_axis):
        buffer[(Ellipsis,) + tuple(dst for dst, _ in combo)] = k[(Ellipsis,) + tuple(src for _, src in combo)]
    return buffer


def fft_correlate(a, k, offsets, lengths, strides, dilations, dtype, threads):
    """The operation through scipy.fft; returns an array of `dtype` (possibly a view)."""
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
    # c[q] = sum_j a[q + j] k[j - offset] (indices modulo the transform length) is the
    # operation's output q / stride for q a multiple of the stride: the offset is applied by
    # placing the kernel, so the input goes to the transform unshifted.
    placed = _place_wrapped(k, sizes, offsets, nb)
    transform = scipy.fft.rfftn if real else scipy.fft.fftn
    spectrum = transform(a, s=sizes, axes=axes, workers=threads)
    kernel_spectrum = transform(placed if real else np.conj(placed), axes=axes, workers=threads)
    del placed
    # A correlation multiplies by the conjugate spectrum of the kernel.
    np.conjugate(kernel_spectrum, out=kernel_spectrum)
    if spectrum.shape == np.broadcast_shapes(spectrum.shape, kernel_spectrum.shape):
        spectrum *= kernel_spectrum
    else:
        spectrum = spectrum * kernel_spectrum
    del kernel_spectrum
    full_axes = axes[:-1] if real else axes
    for axis, s in zip(full_axes, strides):
        if s > 1:
            spectrum = _fold(spectrum, axis, s)
    if real:
        if len(full_axes):
            spectrum = scipy.fft.ifftn(spectrum, axes=full_axes, workers=threads, overwrite_x=True)
        length, s = sizes[-1], strides[-1]
        if s > 1:
            spectrum = _fold_half(spectrum, length, s)
        result = scipy.fft.irfft(spectrum, n=length // s, axis=-1, workers=threads)
    else:
        result = scipy.fft.ifftn(spectrum, axes=axes, workers=threads, overwrite_x=True)
    result = result[(Ellipsis,) + tuple(slice(0, m) for m in lengths)]
    scale = math.prod(strides)
    if scale != 1:
        result /= scale
    return result.astype(dtype, copy=False)


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

# Seconds per unit of work on one core, fitted by ``python benchmarks/calibrate.py`` on the
# development machine (Intel Xeon, Rocket Lake, AVX-512, 2 cores). Only their ratios matter.
_DIRECT_SECONDS = {  # (per product summed, per row visit, per output written)
    "f": (3.5e-11, 1.7e-10, 2.5e-11),
    "d": (6.5e-11, 2.0e-10, 3.2e-10),
}
_FFT_SECONDS = {"f": 4.2e-10, "d": 7.5e-10}  # per unit of fft_work()
# FFT is chosen only when clearly cheaper: direct summation is exact term by term.
_FFT_ADVANTAGE = 1.5


def direct_work(a_shape, k_shape, offsets, lengths, strides, dilations):
    """(products summed, kernel rows visited per output, outputs written) by direct summation.

    The kernels sum whole rows (the last axis) at a time, so a short last kernel axis costs
    more per product: the second count carries that overhead.
    """
    d = len(lengths)
    nb = len(a_shape) - d
    batch = math.prod(_broadcast_batch(a_shape, k_shape, d))
    rows = batch
    for axis in range(d - 1):
        rows *= overlap_terms(a_shape[nb + axis], k_shape[nb + axis], offsets[axis],
                              lengths[axis], strides[axis], dilations[axis])
    terms = rows * overlap_terms(a_shape[-1], k_shape[-1], offsets[-1], lengths[-1],
                                 strides[-1], dilations[-1])
    return terms, rows * lengths[-1], batch * math.prod(lengths)


def fft_work(a_shape, k_shape, offsets, lengths, strides, dilations, real):
    """Points times log2(points) of the transforms, plus the pointwise passes."""
    d = len(lengths)
    nb = len(a_shape) - d
    taps = [(t - 1) * dl + 1 for t, dl in zip(k_shape[nb:], dilations)]
    sizes = _fft_lengths(a_shape[nb:], taps, offsets, lengths, strides, real)
    points = math.prod(sizes) * (0.5 if real else 1.0)
    log_points = math.log2(max(points, 2))
    batch = math.prod(_broadcast_batch(a_shape, k_shape, d))
    forward = math.prod(a_shape[:nb]) + math.prod(k_shape[:nb])
    inverse = batch / math.prod(strides)
    return (forward + inverse) * points * log_points + 3 * batch * points


def estimate_seconds(a_shape, k_shape, offsets, lengths, strides, dilations, dtype):
    """Estimated single-core seconds of (direct, fft) for this operation."""
    dtype = np.dtype(dtype)
    real = dtype.kind != "c"
    char = "f" if dtype in (np.float32, np.complex64) else "d"
    work = direct_work(a_shape, k_shape, offsets, lengths, strides, dilations)
    direct = sum(w * c for w, c in zip(work, _DIRECT_SECONDS[char])) * (1 if real else 4)
    fft = fft_work(a_shape, k_shape, offsets, lengths, strides, dilations, real) * _FFT_SECONDS[char]
    return direct, fft


def choose_with_seconds(a_shape, k_shape, offsets, lengths, strides, dilations, dtype):
    """('direct' or 'fft', its estimated seconds) for the operation on arrays of these shapes
    (layout-independent)."""
    direct, fft = estimate_seconds(a_shape, k_shape, offsets, lengths, strides, dilations, dtype)
    return ("fft", fft) if fft * _FFT_ADVANTAGE < direct else ("direct", direct)


def choose(a_shape, k_shape, offsets, lengths, strides, dilations, dtype):
    """'direct' or 'fft' for the operation on arrays of these shapes (layout-independent)."""
    return choose_with_seconds(a_shape, k_shape, offsets, lengths, strides, dilations, dtype)[0]
