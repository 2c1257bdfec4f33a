"""Direct-summation correlation kernels (private).

The one operation, per convolved axis t (up to three), is

    out[b, i] = sum_j a[ia[b], offset + i * stride + j * dilation] * k[ik[b], j]

summed over the taps j whose sample lies inside ``a``; samples outside are not terms.
Forward correlation, true convolution (reversed kernel) and both gradients are this one
operation with other offsets, strides and dilations (see ``convlab/_methods.py``).
"""

from cython.parallel cimport prange
from libc.string cimport memset

from convlab._kernels._fused cimport real_t, floor_div, ceil_div, clamp, tap_range

cdef extern from *:
    """
    #ifdef _OPENMP
    #define CONVLAB_HAVE_OPENMP 1
    #else
    #define CONVLAB_HAVE_OPENMP 0
    #endif
    """
    int CONVLAB_HAVE_OPENMP


# Outputs per task along the last axis: small enough that the output block stays in L1
# while every tap is added into it, large enough that a task amortises its set-up.
cdef enum:
    BLOCK = 2048


def openmp_enabled():
    """Whether this build runs the outer kernel loops in parallel (OpenMP)."""
    return bool(CONVLAB_HAVE_OPENMP)


cdef struct Geometry:
    Py_ssize_t n[3]          # input extent per axis
    Py_ssize_t taps[3]       # kernel extent per axis
    Py_ssize_t m[3]          # output extent per axis
    Py_ssize_t offset[3]
    Py_ssize_t stride[3]
    Py_ssize_t dilation[3]


cdef inline void correlate_line(const real_t* a, Py_ssize_t n, const real_t* k, Py_ssize_t taps,
                                Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t dilation,
                                real_t* out, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # out[i] += sum_j a[offset + i * stride + j * dilation] * k[j], for lo <= i < hi.
    cdef Py_ssize_t i, j, first, stop, start, inner_lo, inner_hi
    cdef real_t acc, kj
    cdef const real_t* src
    # Outputs whose taps all land inside a: no range checks in the hot loop.
    inner_lo = clamp(ceil_div(-offset, stride), lo, hi)
    inner_hi = clamp(floor_div(n - 1 - offset - (taps - 1) * dilation, stride) + 1, inner_lo, hi)
    for i in range(lo, inner_lo):
        start = offset + i * stride
        tap_range(start, n, taps, dilation, &first, &stop)
        acc = 0
        for j in range(first, stop):
            acc = acc + a[start + j * dilation] * k[j]
        out[i] += acc
    for i in range(inner_hi, hi):
        start = offset + i * stride
        tap_range(start, n, taps, dilation, &first, &stop)
        acc = 0
        for j in range(first, stop):
            acc = acc + a[start + j * dilation] * k[j]
        out[i] += acc
    if stride == 1:
        for j in range(taps):
            kj = k[j]
            src = a + offset + j * dilation
            for i in range(inner_lo, inner_hi):
                out[i] += kj * src[i]
    else:
        for j in range(taps):
            kj = k[j]
            src = a + offset + j * dilation
            for i in range(inner_lo, inner_hi):
                out[i] += kj * src[i * stride]


cdef void correlate_block(const real_t* a, const real_t* k, real_t* out, const Geometry* g,
                          Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t lo, Py_ssize_t hi,
                          bint accumulate) noexcept nogil:
    # One block of one output line: out[i0, i1, lo:hi] (out points at the line's start).
    cdef Py_ssize_t j0, j1, first0, stop0, first1, stop1, row0, row1
    cdef Py_ssize_t start0 = g.offset[0] + i0 * g.stride[0]
    cdef Py_ssize_t start1 = g.offset[1] + i1 * g.stride[1]
    if not accumulate:
        memset(out + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
    tap_range(start0, g.n[0], g.taps[0], g.dilation[0], &first0, &stop0)
    tap_range(start1, g.n[1], g.taps[1], g.dilation[1], &first1, &stop1)
    for j0 in range(first0, stop0):
        row0 = start0 + j0 * g.dilation[0]
        for j1 in range(first1, stop1):
            row1 = start1 + j1 * g.dilation[1]
            correlate_line(a + (row0 * g.n[1] + row1) * g.n[2], g.n[2],
                           k + (j0 * g.taps[1] + j1) * g.taps[2], g.taps[2],
                           g.offset[2], g.stride[2], g.dilation[2], out, lo, hi)


def correlate(const real_t[:, :, :, ::1] a, const real_t[:, :, :, ::1] k,
              real_t[:, :, :, ::1] out,
              const Py_ssize_t[::1] a_index, const Py_ssize_t[::1] k_index,
              offset, stride, dilation, bint accumulate=False, int num_threads=1):
    """out[b] (+)= the correlation of a[a_index[b]] with k[k_index[b]] (see module docstring).

    Shapes are (batch, 3 axes); unused axes have extent 1, offset 0, stride 1, dilation 1.
    The caller validates every argument; this function only computes.
    """
    cdef Geometry g
    cdef Py_ssize_t t, task, ntasks, nblocks, b, i0, i1, blk, lo, hi, line
    cdef Py_ssize_t batch = out.shape[0]
    for t in range(3):
        g.n[t] = a.shape[t + 1]
        g.taps[t] = k.shape[t + 1]
        g.m[t] = out.shape[t + 1]
        g.offset[t] = offset[t]
        g.stride[t] = stride[t]
        g.dilation[t] = dilation[t]
    if batch == 0 or g.m[0] == 0 or g.m[1] == 0 or g.m[2] == 0:
        return
    if a.shape[0] == 0 or k.shape[0] == 0 or a_index.shape[0] != batch or k_index.shape[0] != batch:
        raise ValueError("correlate kernel: inconsistent batch arguments")
    if g.n[0] * g.n[1] * g.n[2] == 0 or g.taps[0] * g.taps[1] * g.taps[2] == 0:
        raise ValueError("correlate kernel: empty input or kernel")
    nblocks = (g.m[2] + BLOCK - 1) // BLOCK
    ntasks = batch * g.m[0] * g.m[1] * nblocks
    cdef const real_t* a_ptr = &a[0, 0, 0, 0]
    cdef const real_t* k_ptr = &k[0, 0, 0, 0]
    cdef real_t* out_ptr = &out[0, 0, 0, 0]
    cdef Py_ssize_t a_size = g.n[0] * g.n[1] * g.n[2]
    cdef Py_ssize_t k_size = g.taps[0] * g.taps[1] * g.taps[2]
    with nogil:
        for task in prange(ntasks, num_threads=num_threads, schedule='static'):
            blk = task % nblocks
            line = task // nblocks
            i1 = line % g.m[1]
            i0 = (line // g.m[1]) % g.m[0]
            b = line // (g.m[1] * g.m[0])
            lo = blk * BLOCK
            hi = lo + BLOCK
            if hi > g.m[2]:
                hi = g.m[2]
            correlate_block(a_ptr + a_index[b] * a_size, k_ptr + k_index[b] * k_size,
                            out_ptr + line * g.m[2], &g, i0, i1, lo, hi, accumulate)
