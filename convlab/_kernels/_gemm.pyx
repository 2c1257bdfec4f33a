"""Layer-level convolution as matrix products (private): im2col / col2im and BLAS GEMM.

For one image n and one group g, with the input patches of a tile of output positions laid
out as the rows of ``col`` (one row per (channel, kernel offset), one column per position),

    forward        y[n, g]    = w[g] @ col              (F_g x P)  = (F_g x C_gK) (C_gK x P)
    kernel grad    dw[g]     += G[n, g] @ col.T         (F_g x C_gK)
    input grad     col_grad   = w[g].T @ G[n, g],   then col2im adds it back into dx[n, g]

where ``col[(c, m), p] = xpad[n, c, o(p) * stride + m * dilation]`` (zero where the position
falls in the padding). Spatial shapes are padded to three axes (leading axes of extent 1).

Parallelism: tasks are (image, group[, tile]) pairs run with OpenMP, each calling a
single-threaded GEMM (the caller pins BLAS to one thread) on a buffer of its own. When there
are fewer images x groups than threads, the caller runs the tasks in one thread and lets BLAS
use the threads instead.
"""

from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
from scipy.linalg.cython_blas cimport sgemm, dgemm

from convlab._kernels._fused cimport real_t, floor_div, ceil_div, clamp


cdef struct Layout:
    Py_ssize_t n[3]          # input spatial extent
    Py_ssize_t k[3]          # kernel spatial extent
    Py_ssize_t m[3]          # output spatial extent
    Py_ssize_t before[3]     # zero padding before the input
    Py_ssize_t stride[3]
    Py_ssize_t dilation[3]
    Py_ssize_t channels      # input channels per group (C_g)
    Py_ssize_t filters       # output channels per group (F_g)
    Py_ssize_t groups
    Py_ssize_t in_size       # prod(n)
    Py_ssize_t out_size      # prod(m) = P
    Py_ssize_t taps          # prod(k)


cdef inline void gemm(char transa, char transb, int m, int n, int k, real_t alpha,
                      const real_t* a, int lda, const real_t* b, int ldb, real_t beta,
                      real_t* c, int ldc) noexcept nogil:
    # Column-major BLAS GEMM: c = alpha * op(a) @ op(b) + beta * c.
    if real_t is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb, &beta,
              c, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb, &beta,
              c, &ldc)


cdef inline void valid_run(Py_ssize_t first_in, Py_ssize_t step, Py_ssize_t n,
                           Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t* run_lo,
                           Py_ssize_t* run_hi) noexcept nogil:
    # The outputs o in [lo, hi) whose sample first_in + o * step lies in [0, n).
    run_lo[0] = clamp(ceil_div(-first_in, step), lo, hi)
    run_hi[0] = clamp(floor_div(n - 1 - first_in, step) + 1, run_lo[0], hi)


cdef void patches(real_t* image, real_t* col, const Layout* L, Py_ssize_t p0, Py_ssize_t p1,
                  bint scatter) noexcept nogil:
    # For one image and one group (image points at its first channel), rows (c, m0, m1, m2)
    # and output positions p in [p0, p1):
    #   gather  (im2col):  col[row, p - p0] = xpad[c, o(p) * stride + m * dilation]
    #   scatter (col2im):  image[c, o(p) * stride + m * dilation] += col[row, p - p0]
    # where gathering writes zeros for the padding and scattering drops what falls there.
    # Positions are walked run by run (a run: consecutive positions along the last output
    # axis), with no division in the walk: runs are short and many.
    cdef Py_ssize_t width = p1 - p0
    cdef Py_ssize_t c, j0, j1, j2, p, o0, o1, o2, end, i0, i1, first2, run_lo, run_hi, o
    cdef Py_ssize_t start0 = p0 // (L.m[2] * L.m[1]), start1 = (p0 // L.m[2]) % L.m[1]
    cdef Py_ssize_t start2 = p0 % L.m[2], valid_lo, valid_hi, run_end
    cdef real_t* plane
    cdef real_t* line
    cdef real_t* patch
    for c in range(L.channels):
        plane = image + c * L.in_size
        for j0 in range(L.k[0]):
            for j1 in range(L.k[1]):
                for j2 in range(L.k[2]):
                    patch = col + (((c * L.k[0] + j0) * L.k[1] + j1) * L.k[2] + j2) * width
                    # the outputs of a whole run whose sample lies inside the input row
                    first2 = -L.before[2] + j2 * L.dilation[2]
                    valid_run(first2, L.stride[2], L.n[2], 0, L.m[2], &valid_lo, &valid_hi)
                    p = p0
                    o0, o1, o2 = start0, start1, start2
                    while p < p1:
                        # one run of positions along the last output axis: [p, end)
                        end = min(p - o2 + L.m[2], p1)
                        run_end = o2 + end - p
                        i0 = o0 * L.stride[0] - L.before[0] + j0 * L.dilation[0]
                        i1 = o1 * L.stride[1] - L.before[1] + j1 * L.dilation[1]
                        if i0 < 0 or i0 >= L.n[0] or i1 < 0 or i1 >= L.n[1]:
                            if not scatter:
                                memset(patch + (p - p0), 0, <size_t>(end - p) * sizeof(real_t))
                        else:
                            line = plane + (i0 * L.n[1] + i1) * L.n[2]
                            run_lo = clamp(valid_lo, o2, run_end)
                            run_hi = clamp(valid_hi, run_lo, run_end)
                            if scatter:
                                for o in range(run_lo, run_hi):
                                    line[first2 + o * L.stride[2]] += patch[p - p0 + o - o2]
                            else:
                                for o in range(o2, run_lo):
                                    patch[p - p0 + o - o2] = 0
                                if L.stride[2] == 1:
                                    memcpy(patch + (p - p0 + run_lo - o2), line + first2 + run_lo,
                                           <size_t>(run_hi - run_lo) * sizeof(real_t))
                                else:
                                    for o in range(run_lo, run_hi):
                                        patch[p - p0 + o - o2] = line[first2 + o * L.stride[2]]
                                for o in range(run_hi, run_end):
                                    patch[p - p0 + o - o2] = 0
                        p = end
                        o2 = 0
                        o1 += 1
                        if o1 == L.m[1]:
                            o1 = 0
                            o0 += 1


cdef inline void im2col(const real_t* x, real_t* col, const Layout* L, Py_ssize_t p0,
                        Py_ssize_t p1) noexcept nogil:
    patches(<real_t*>x, col, L, p0, p1, False)   # gathering only reads x


cdef inline void col2im(const real_t* col, real_t* dx, const Layout* L, Py_ssize_t p0,
                        Py_ssize_t p1) noexcept nogil:
    patches(dx, <real_t*>col, L, p0, p1, True)   # scattering only reads col


cdef inline bint is_pointwise(const Layout* L) noexcept nogil:
    # 1 x 1 kernel, stride 1, no padding: the input itself is the patch matrix.
    cdef int t
    for t in range(3):
        if L.k[t] != 1 or L.stride[t] != 1 or L.before[t] != 0 or L.m[t] != L.n[t]:
            return False
    return True


cdef Layout make_layout(tuple in_sizes, tuple k_sizes, tuple out_sizes, tuple before,
                        tuple strides, tuple dilations, Py_ssize_t channels,
                        Py_ssize_t filters, Py_ssize_t groups):
    cdef Layout L
    cdef int t
    for t in range(3):
        L.n[t] = in_sizes[t]
        L.k[t] = k_sizes[t]
        L.m[t] = out_sizes[t]
        L.before[t] = before[t]
        L.stride[t] = strides[t]
        L.dilation[t] = dilations[t]
    L.channels = channels
    L.filters = filters
    L.groups = groups
    L.in_size = L.n[0] * L.n[1] * L.n[2]
    L.out_size = L.m[0] * L.m[1] * L.m[2]
    L.taps = L.k[0] * L.k[1] * L.k[2]
    return L


def forward(const real_t[:, ::1] x, const real_t[:, ::1] w, const real_t[::1] bias,
            real_t[:, ::1] y, tuple in_sizes, tuple k_sizes, tuple out_sizes, tuple before,
            tuple strides, tuple dilations, Py_ssize_t groups, Py_ssize_t tile,
            int num_threads):
    """y[n, f, :] = bias[f] + the sum over the group's channels and taps; shapes flattened:
    x (N, C * in_size), w (F, C_g * taps), bias (F,) or empty for none, y (N, F * out_size)."""
    cdef Py_ssize_t batch = x.shape[0]
    cdef Layout L = make_layout(in_sizes, k_sizes, out_sizes, before, strides, dilations,
                                w.shape[1] // (k_sizes[0] * k_sizes[1] * k_sizes[2]),
                                w.shape[0] // groups, groups)
    cdef Py_ssize_t rows = L.channels * L.taps
    cdef Py_ssize_t tiles = (L.out_size + tile - 1) // tile
    cdef Py_ssize_t ntasks = batch * groups * tiles
    cdef bint pointwise = is_pointwise(&L)
    cdef Py_ssize_t task, n, g, q, p0, p1, thread_count = max(num_threads, 1)
    cdef real_t* buffers = NULL
    cdef real_t* col
    cdef real_t* y_tile
    cdef const real_t* x_ptr
    cdef real_t* y_ptr
    cdef real_t beta = 0
    cdef bint has_bias = bias.shape[0] > 0
    cdef Py_ssize_t f, p
    if has_bias and bias.shape[0] != w.shape[0]:
        raise ValueError("conv kernel: bias length differs from the number of filters")
    if has_bias:
        beta = 1
    if ntasks == 0:
        return
    if not pointwise:
        buffers = <real_t*>malloc(<size_t>(thread_count * rows * tile) * sizeof(real_t))
        if buffers == NULL:
            raise MemoryError("conv: cannot allocate the patch buffers")
    x_ptr = &x[0, 0]
    y_ptr = &y[0, 0]
    try:
        with nogil:
            for task in prange(ntasks, num_threads=num_threads, schedule='dynamic'):
                q = task % tiles
                g = (task // tiles) % groups
                n = task // (tiles * groups)
                p0 = q * tile
                p1 = min(p0 + tile, L.out_size)
                y_tile = y_ptr + (n * groups + g) * L.filters * L.out_size + p0
                if has_bias:
                    # the product is added to the bias (GEMM with beta = 1)
                    for f in range(L.filters):
                        for p in range(p1 - p0):
                            y_tile[f * L.out_size + p] = bias[g * L.filters + f]
                if pointwise:
                    col = <real_t*>(x_ptr + (n * groups + g) * L.channels * L.in_size + p0)
                    gemm(c'N', c'N', <int>(p1 - p0), <int>L.filters, <int>rows, 1,
                         col, <int>L.in_size, &w[g * L.filters, 0], <int>rows, beta,
                         y_tile, <int>L.out_size)
                else:
                    col = buffers + threadid() * rows * tile
                    im2col(x_ptr + (n * groups + g) * L.channels * L.in_size, col, &L, p0, p1)
                    gemm(c'N', c'N', <int>(p1 - p0), <int>L.filters, <int>rows, 1,
                         col, <int>(p1 - p0), &w[g * L.filters, 0], <int>rows, beta,
                         y_tile, <int>L.out_size)
    finally:
        free(buffers)


def grad_weight(const real_t[:, ::1] g_out, const real_t[:, ::1] x, real_t[:, :, ::1] dw,
                tuple in_sizes, tuple k_sizes, tuple out_sizes, tuple before, tuple strides,
                tuple dilations, Py_ssize_t groups, Py_ssize_t tile, int num_threads):
    """dw[s] = the part of sum_n G[n] @ col(x[n]).T over the s-th of ``dw.shape[0]`` equal
    ranges of the (image, group, tile) tasks, summed in task order (the caller adds the
    parts in order: the result does not depend on the number of threads).
    g_out (N, F * out_size), x (N, C * in_size), dw (slots, F, C_g * taps)."""
    cdef Py_ssize_t batch = x.shape[0]
    cdef Layout L = make_layout(in_sizes, k_sizes, out_sizes, before, strides, dilations,
                                dw.shape[2] // (k_sizes[0] * k_sizes[1] * k_sizes[2]),
                                dw.shape[1] // groups, groups)
    cdef Py_ssize_t rows = L.channels * L.taps
    cdef Py_ssize_t tiles = (L.out_size + tile - 1) // tile
    cdef Py_ssize_t ntasks = batch * groups * tiles
    cdef Py_ssize_t slots = dw.shape[0]
    cdef bint pointwise = is_pointwise(&L)
    cdef Py_ssize_t slot, task, n, g, q, p0, p1, thread_count = max(num_threads, 1)
    cdef real_t* buffers = NULL
    cdef real_t* col
    cdef const real_t* x_ptr
    cdef const real_t* g_ptr
    cdef real_t* dw_ptr
    memset(&dw[0, 0, 0], 0, <size_t>(dw.shape[0] * dw.shape[1] * dw.shape[2]) * sizeof(real_t))
    if ntasks == 0:
        return
    if not pointwise:
        buffers = <real_t*>malloc(<size_t>(thread_count * rows * tile) * sizeof(real_t))
        if buffers == NULL:
            raise MemoryError("conv_grad_weight: cannot allocate the patch buffers")
    x_ptr = &x[0, 0]
    g_ptr = &g_out[0, 0]
    dw_ptr = &dw[0, 0, 0]
    try:
        with nogil:
            for slot in prange(slots, num_threads=num_threads, schedule='dynamic'):
                col = buffers + threadid() * rows * tile
                for task in range(ntasks * slot // slots, ntasks * (slot + 1) // slots):
                    q = task % tiles
                    g = (task // tiles) % groups
                    n = task // (tiles * groups)
                    p0 = q * tile
                    p1 = min(p0 + tile, L.out_size)
                    if pointwise:
                        col = <real_t*>(x_ptr + (n * groups + g) * L.channels * L.in_size + p0)
                        gemm(c'T', c'N', <int>rows, <int>L.filters, <int>(p1 - p0), 1,
                             col, <int>L.in_size,
                             g_ptr + (n * groups + g) * L.filters * L.out_size + p0,
                             <int>L.out_size, 1,
                             dw_ptr + (slot * groups + g) * L.filters * rows, <int>rows)
                    else:
                        im2col(x_ptr + (n * groups + g) * L.channels * L.in_size, col, &L,
                               p0, p1)
                        gemm(c'T', c'N', <int>rows, <int>L.filters, <int>(p1 - p0), 1,
                             col, <int>(p1 - p0),
                             g_ptr + (n * groups + g) * L.filters * L.out_size + p0,
                             <int>L.out_size, 1,
                             dw_ptr + (slot * groups + g) * L.filters * rows, <int>rows)
    finally:
        free(buffers)


def grad_input(const real_t[:, ::1] g_out, const real_t[:, ::1] w, real_t[:, ::1] dx,
               tuple in_sizes, tuple k_sizes, tuple out_sizes, tuple before, tuple strides,
               tuple dilations, Py_ssize_t groups, Py_ssize_t tile, int num_threads,
               bint accumulate=False):
    """dx[n] = col2im(w.T @ G[n]) per group (added to dx with `accumulate`): g_out
    (N, F * out_size), w (F, C_g * taps), dx (N, C * in_size). One task per (image, group):
    its tiles add into the same dx."""
    cdef Py_ssize_t batch = dx.shape[0]
    cdef Layout L = make_layout(in_sizes, k_sizes, out_sizes, before, strides, dilations,
                                w.shape[1] // (k_sizes[0] * k_sizes[1] * k_sizes[2]),
                                w.shape[0] // groups, groups)
    cdef Py_ssize_t rows = L.channels * L.taps
    cdef Py_ssize_t ntasks = batch * groups
    cdef bint pointwise = is_pointwise(&L)
    cdef Py_ssize_t task, n, g, p0, p1, thread_count = max(num_threads, 1)
    cdef real_t* buffers = NULL
    cdef real_t* col
    cdef real_t* dx_ptr
    cdef const real_t* g_ptr
    cdef real_t beta = 1 if accumulate else 0
    if ntasks == 0:
        return
    if not pointwise:
        buffers = <real_t*>malloc(<size_t>(thread_count * rows * tile) * sizeof(real_t))
        if buffers == NULL:
            raise MemoryError("conv_grad_input: cannot allocate the patch buffers")
    dx_ptr = &dx[0, 0]
    g_ptr = &g_out[0, 0]
    try:
        with nogil:
            for task in prange(ntasks, num_threads=num_threads, schedule='dynamic'):
                g = task % groups
                n = task // groups
                if pointwise:
                    gemm(c'N', c'T', <int>L.out_size, <int>rows, <int>L.filters, 1,
                         g_ptr + (n * groups + g) * L.filters * L.out_size, <int>L.out_size,
                         &w[g * L.filters, 0], <int>rows, beta,
                         dx_ptr + (n * groups + g) * L.channels * L.in_size, <int>L.in_size)
                    continue
                if not accumulate:
                        memset(dx_ptr + (n * groups + g) * L.channels * L.in_size, 0,
                           <size_t>(L.channels * L.in_size) * sizeof(real_t))
                col = buffers + threadid() * rows * tile
                p0 = 0
                while p0 < L.out_size:
                    p1 = min(p0 + tile, L.out_size)
                    gemm(c'N', c'T', <int>(p1 - p0), <int>rows, <int>L.filters, 1,
                         g_ptr + (n * groups + g) * L.filters * L.out_size + p0,
                         <int>L.out_size, &w[g * L.filters, 0], <int>rows, 0,
                         col, <int>(p1 - p0))
                    col2im(col, dx_ptr + (n * groups + g) * L.channels * L.in_size, &L, p0, p1)
                    p0 = p1
    finally:
        free(buffers)
