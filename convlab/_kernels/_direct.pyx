"""Direct-summation correlation kernels (private).

The one operation, per convolved axis t (up to three), is

    out[b, i] = sum_j a[ia[b], offset + i * stride + j * dilation] * k[ik[b], j]

summed over the taps j whose sample lies inside ``a``; samples outside are not terms.
Forward correlation, true convolution (reversed kernel) and both gradients are this one
operation with other offsets, strides and dilations (see ``convlab/_methods.py``).

Work is split into tasks of one block of one output line (the last axis), run in parallel
with OpenMP. When there are too few lines to keep the threads busy (a small output summing
over a large kernel, as a kernel gradient does), the taps of one kernel axis are split too,
each split summing into its own slice of ``out``; the caller adds the slices.
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


cdef extern from "_simd_blocks.h" nogil:
    void convlab_pair_block_float(const float** rows, const float** a_krows,
                                  const float** b_krows, Py_ssize_t nrows, Py_ssize_t taps,
                                  Py_ssize_t offset, Py_ssize_t dilation, float* out_a,
                                  float* out_b, Py_ssize_t i)
    void convlab_pair_block_double(const double** rows, const double** a_krows,
                                   const double** b_krows, Py_ssize_t nrows, Py_ssize_t taps,
                                   Py_ssize_t offset, Py_ssize_t dilation, double* out_a,
                                   double* out_b, Py_ssize_t i)
    void convlab_narrow_pair_block_float(const float** rows, const float** a_krows,
                                         const float** b_krows, Py_ssize_t nrows,
                                         Py_ssize_t taps, Py_ssize_t offset,
                                         Py_ssize_t dilation, float* out_a, float* out_b,
                                         Py_ssize_t i)
    void convlab_narrow_pair_block_double(const double** rows, const double** a_krows,
                                          const double** b_krows, Py_ssize_t nrows,
                                          Py_ssize_t taps, Py_ssize_t offset,
                                          Py_ssize_t dilation, double* out_a, double* out_b,
                                          Py_ssize_t i)
    void convlab_half_pair_block_float(const float** rows, const float** a_krows,
                                       const float** b_krows, Py_ssize_t nrows,
                                       Py_ssize_t taps, Py_ssize_t offset,
                                       Py_ssize_t dilation, float* out_a, float* out_b,
                                       Py_ssize_t i)
    enum:
        CONVLAB_PAIR_BLOCK_FLOAT
        CONVLAB_PAIR_BLOCK_DOUBLE
        CONVLAB_NARROW_PAIR_BLOCK_FLOAT
        CONVLAB_NARROW_PAIR_BLOCK_DOUBLE
        CONVLAB_HALF_PAIR_BLOCK_FLOAT
    int CONVLAB_HAVE_STRIDE2_BLOCK
    void convlab_stride2_block_float(const float** rows, const float** krows, Py_ssize_t nrows,
                                     Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t dilation,
                                     float* out, Py_ssize_t i)
    void convlab_stride2_block_double(const double** rows, const double** krows,
                                      Py_ssize_t nrows, Py_ssize_t taps, Py_ssize_t offset,
                                      Py_ssize_t dilation, double* out, Py_ssize_t i)
    void convlab_few_outputs_float(const float** rows, const float** krows, Py_ssize_t nrows,
                                   Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset,
                                   Py_ssize_t stride, float* out, Py_ssize_t lo, Py_ssize_t hi)
    void convlab_few_outputs_double(const double** rows, const double** krows,
                                    Py_ssize_t nrows, Py_ssize_t n, Py_ssize_t taps,
                                    Py_ssize_t offset, Py_ssize_t stride, double* out,
                                    Py_ssize_t lo, Py_ssize_t hi)


cdef enum:
    # Outputs per task along the last axis: the block stays in L1 while every tap is added.
    BLOCK = 2048
    # Kernel rows whose sums are kept in registers together (more rows: several passes).
    MAX_ROWS = 64
    # Outputs accumulated in registers at once: 8 vectors of 256 bits (64 floats or 32
    # doubles), then 8 at a time for the rest of the line.
    WIDE_FLOAT = 64
    WIDE_DOUBLE = 32
    WIDEST = 64
    NARROW = 8
    # A line of fewer than NARROW outputs over kernel rows at least this long (a kernel
    # gradient) is summed with the kernel in vectors, shared by its outputs.
    FEW_MIN_TAPS = 16
    DOT_WIDTH = 16


# Exposed so that the Python side counts tasks the way the kernel does.
LINE_BLOCK = BLOCK


def openmp_enabled():
    """Whether this build runs the outer kernel loops in parallel (OpenMP)."""
    return bool(CONVLAB_HAVE_OPENMP)


cdef struct Geometry:
    Py_ssize_t n[3]          # input extent per axis
    Py_ssize_t taps[3]       # kernel extent per axis (of this split)
    Py_ssize_t m[3]          # output extent per axis
    Py_ssize_t offset[3]
    Py_ssize_t stride[3]
    Py_ssize_t dilation[3]
    Py_ssize_t k_step[3]     # element strides of the whole kernel


cdef inline real_t dot(const real_t* x, const real_t* y, Py_ssize_t count,
                       Py_ssize_t step) noexcept nogil:
    # sum_j x[j * step] * y[j]; with step 1, DOT_WIDTH partial sums (vector registers).
    cdef real_t acc[DOT_WIDTH]
    cdef real_t total = 0
    cdef Py_ssize_t j = 0, u
    if step == 1 and count >= DOT_WIDTH:
        for u in range(DOT_WIDTH):
            acc[u] = 0
        while j + DOT_WIDTH <= count:
            for u in range(DOT_WIDTH):
                acc[u] = acc[u] + x[j + u] * y[j + u]
            j += DOT_WIDTH
        for u in range(DOT_WIDTH):
            total = total + acc[u]
    while j < count:
        total = total + x[j * step] * y[j]
        j += 1
    return total


cdef inline Py_ssize_t register_blocks(const real_t** rows, const real_t** krows,
                                      Py_ssize_t nrows, Py_ssize_t taps, Py_ssize_t offset,
                                      Py_ssize_t stride, Py_ssize_t dilation, real_t* out,
                                      Py_ssize_t i, Py_ssize_t hi,
                                      Py_ssize_t width) noexcept nogil:
    # Blocks of `width` outputs from i on, each summed over every tap of every row in
    # registers; returns the first output it did not compute. `width` is a literal at every
    # call, so that the compiler unrolls the block into vector registers.
    cdef real_t acc[WIDEST]
    cdef real_t kj
    cdef const real_t* src
    cdef Py_ssize_t j, r, u
    while i + width <= hi:
        for u in range(width):
            acc[u] = out[i + u]
        for r in range(nrows):
            for j in range(taps):
                kj = krows[r][j]
                src = rows[r] + offset + i * stride + j * dilation
                for u in range(width):
                    acc[u] = acc[u] + kj * src[u * stride]
        for u in range(width):
            out[i + u] = acc[u]
        i += width
    return i


cdef inline Py_ssize_t interior_blocks(const real_t** rows, const real_t** krows,
                                      Py_ssize_t nrows, Py_ssize_t taps, Py_ssize_t offset,
                                      Py_ssize_t stride, Py_ssize_t dilation, real_t* out,
                                      Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # Eight vector registers of outputs at a time (enough independent multiply-add chains to
    # hide their latency), then one register at a time.
    cdef Py_ssize_t i
    if real_t is float:
        i = register_blocks(rows, krows, nrows, taps, offset, stride, dilation, out, lo, hi,
                            WIDE_FLOAT)
    else:
        i = register_blocks(rows, krows, nrows, taps, offset, stride, dilation, out, lo, hi,
                            WIDE_DOUBLE)
    return register_blocks(rows, krows, nrows, taps, offset, stride, dilation, out, i, hi,
                           NARROW)


cdef inline bint few_outputs(const real_t** rows, const real_t** krows, Py_ssize_t nrows,
                             Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset,
                             Py_ssize_t stride, Py_ssize_t dilation, real_t* out,
                             Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # Sums the outputs [lo, hi) of a short line over long kernel rows (_simd_blocks.h) and
    # returns True; False (nothing done) when the line is not of that shape.
    if dilation != 1 or hi - lo >= NARROW or taps < FEW_MIN_TAPS:
        return False
    if real_t is float:
        convlab_few_outputs_float(rows, krows, nrows, n, taps, offset, stride, out, lo, hi)
    else:
        convlab_few_outputs_double(rows, krows, nrows, n, taps, offset, stride, out, lo, hi)
    return True


cdef inline Py_ssize_t stride2_blocks(const real_t** rows, const real_t** krows,
                                     Py_ssize_t nrows, Py_ssize_t n, Py_ssize_t taps,
                                     Py_ssize_t offset, Py_ssize_t dilation, real_t* out,
                                     Py_ssize_t i, Py_ssize_t hi) noexcept nogil:
    # Stride 2: blocks of 4 vector registers of outputs (_simd_blocks.h); returns the first
    # output not computed (i itself where the compiler lacks the shuffle builtin). A block
    # [i, i + B) loads up to sample offset + 2 (i + B) - 1 + (taps - 1) * dilation (one past
    # its last term, discarded by the shuffle), which must still lie inside the row.
    if not CONVLAB_HAVE_STRIDE2_BLOCK:
        return i
    hi = min(hi, floor_div(n - offset - (taps - 1) * dilation, 2))
    if real_t is float:
        while i + 32 <= hi:
            convlab_stride2_block_float(rows, krows, nrows, taps, offset, dilation, out, i)
            i += 32
    else:
        while i + 16 <= hi:
            convlab_stride2_block_double(rows, krows, nrows, taps, offset, dilation, out, i)
            i += 16
    return i


cdef inline void correlate_rows(const real_t** rows, const real_t** krows, Py_ssize_t nrows,
                                Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset,
                                Py_ssize_t stride, Py_ssize_t dilation,
                                real_t* out, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # out[i] += sum_r sum_j rows[r][offset + i * stride + j * dilation] * krows[r][j]
    # for lo <= i < hi, over the taps j that land inside the row (n samples).
    cdef Py_ssize_t i, r, first, stop, start, inner_lo, inner_hi
    cdef real_t total
    if few_outputs(rows, krows, nrows, n, taps, offset, stride, dilation, out, lo, hi):
        return
    # Outputs whose taps all land inside the row: no range checks in the hot loops.
    inner_lo = clamp(ceil_div(-offset, stride), lo, hi)
    inner_hi = clamp(floor_div(n - 1 - offset - (taps - 1) * dilation, stride) + 1, inner_lo, hi)
    for i in range(lo, inner_lo):
        start = offset + i * stride
        tap_range(start, n, taps, dilation, &first, &stop)
        total = 0
        for r in range(nrows):
            total = total + dot(rows[r] + start + first * dilation, krows[r] + first,
                                stop - first, dilation)
        out[i] += total
    for i in range(inner_hi, hi):
        start = offset + i * stride
        tap_range(start, n, taps, dilation, &first, &stop)
        total = 0
        for r in range(nrows):
            total = total + dot(rows[r] + start + first * dilation, krows[r] + first,
                                stop - first, dilation)
        out[i] += total
    # Literal strides let the compiler specialise the register-blocked loop for them.
    if stride == 1:
        i = interior_blocks(rows, krows, nrows, taps, offset, 1, dilation, out, inner_lo, inner_hi)
    elif stride == 2:
        i = stride2_blocks(rows, krows, nrows, n, taps, offset, dilation, out, inner_lo,
                           inner_hi)
        i = interior_blocks(rows, krows, nrows, taps, offset, 2, dilation, out, i, inner_hi)
    else:
        i = interior_blocks(rows, krows, nrows, taps, offset, stride, dilation, out,
                            inner_lo, inner_hi)
    # The rest of the interior, one output at a time.
    while i < inner_hi:
        start = offset + i * stride
        total = 0
        for r in range(nrows):
            total = total + dot(rows[r] + start, krows[r], taps, dilation)
        out[i] += total
        i += 1


cdef inline Py_ssize_t pair_interior_blocks(const real_t** rows, const real_t** a_krows,
                                           const real_t** b_krows, Py_ssize_t nrows,
                                           Py_ssize_t taps, Py_ssize_t offset,
                                           Py_ssize_t dilation, real_t* out_a, real_t* out_b,
                                           Py_ssize_t i, Py_ssize_t hi) noexcept nogil:
    # Stride 1 along the line: blocks of 4 vector registers per line, then of one (and of
    # half a register of floats) (_simd_blocks.h); the caller sums the rest one by one.
    if real_t is float:
        while i + CONVLAB_PAIR_BLOCK_FLOAT <= hi:
            convlab_pair_block_float(rows, a_krows, b_krows, nrows, taps, offset, dilation,
                                     out_a, out_b, i)
            i += CONVLAB_PAIR_BLOCK_FLOAT
    else:
        while i + CONVLAB_PAIR_BLOCK_DOUBLE <= hi:
            convlab_pair_block_double(rows, a_krows, b_krows, nrows, taps, offset, dilation,
                                      out_a, out_b, i)
            i += CONVLAB_PAIR_BLOCK_DOUBLE
    # then one vector register per line
    if real_t is float:
        while i + CONVLAB_NARROW_PAIR_BLOCK_FLOAT <= hi:
            convlab_narrow_pair_block_float(rows, a_krows, b_krows, nrows, taps, offset,
                                            dilation, out_a, out_b, i)
            i += CONVLAB_NARROW_PAIR_BLOCK_FLOAT
        if i + CONVLAB_HALF_PAIR_BLOCK_FLOAT <= hi:
            convlab_half_pair_block_float(rows, a_krows, b_krows, nrows, taps, offset,
                                          dilation, out_a, out_b, i)
            i += CONVLAB_HALF_PAIR_BLOCK_FLOAT
    else:
        while i + CONVLAB_NARROW_PAIR_BLOCK_DOUBLE <= hi:
            convlab_narrow_pair_block_double(rows, a_krows, b_krows, nrows, taps, offset,
                                             dilation, out_a, out_b, i)
            i += CONVLAB_NARROW_PAIR_BLOCK_DOUBLE
    return i


cdef inline void line_outputs(const real_t** rows, const real_t** krows, Py_ssize_t nrows,
                              Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset,
                              Py_ssize_t stride, Py_ssize_t dilation, real_t* out,
                              Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # out[i] += sum over the rows r this line uses (krows[r] not NULL) of the in-range taps,
    # one output at a time (line edges and interior remainders).
    cdef Py_ssize_t i, r, first, stop, start
    cdef real_t total
    for i in range(lo, hi):
        start = offset + i * stride
        tap_range(start, n, taps, dilation, &first, &stop)
        total = 0
        for r in range(nrows):
            if krows[r] != NULL:
                total = total + dot(rows[r] + start + first * dilation, krows[r] + first,
                                    stop - first, dilation)
        out[i] += total


cdef inline void correlate_rows_pair(const real_t** rows, const real_t** a_krows,
                                     const real_t** b_krows, Py_ssize_t nrows, Py_ssize_t n,
                                     Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t stride,
                                     Py_ssize_t dilation, real_t* out_a, real_t* out_b,
                                     Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # correlate_rows for two output lines reading (partly) the same input rows.
    cdef Py_ssize_t i, inner_lo, inner_hi
    if few_outputs(rows, a_krows, nrows, n, taps, offset, stride, dilation, out_a, lo, hi):
        few_outputs(rows, b_krows, nrows, n, taps, offset, stride, dilation, out_b, lo, hi)
        return
    inner_lo = clamp(ceil_div(-offset, stride), lo, hi)
    inner_hi = clamp(floor_div(n - 1 - offset - (taps - 1) * dilation, stride) + 1, inner_lo, hi)
    line_outputs(rows, a_krows, nrows, n, taps, offset, stride, dilation, out_a, lo, inner_lo)
    line_outputs(rows, a_krows, nrows, n, taps, offset, stride, dilation, out_a, inner_hi, hi)
    line_outputs(rows, b_krows, nrows, n, taps, offset, stride, dilation, out_b, lo, inner_lo)
    line_outputs(rows, b_krows, nrows, n, taps, offset, stride, dilation, out_b, inner_hi, hi)
    # Pairs are formed only for stride 1 along the line (see `correlate`).
    i = pair_interior_blocks(rows, a_krows, b_krows, nrows, taps, offset, dilation, out_a, out_b,
                             inner_lo, inner_hi)
    line_outputs(rows, a_krows, nrows, n, taps, offset, stride, dilation, out_a, i, inner_hi)
    line_outputs(rows, b_krows, nrows, n, taps, offset, stride, dilation, out_b, i, inner_hi)


cdef inline Py_ssize_t add_pair_row(const real_t** rows, const real_t** a_krows,
                                    const real_t** b_krows, Py_ssize_t nrows,
                                    const real_t* row, const real_t* a_krow,
                                    const real_t* b_krow, const Geometry* g, real_t* out_a,
                                    real_t* out_b, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    # Appends an input row (and the kernel rows lines A and B read it with) to the tables;
    # sums the tables into the two lines when they are full. Returns the new row count.
    rows[nrows] = row
    a_krows[nrows] = a_krow
    b_krows[nrows] = b_krow
    nrows += 1
    if nrows == MAX_ROWS:
        correlate_rows_pair(rows, a_krows, b_krows, nrows, g.n[2], g.taps[2], g.offset[2],
                            g.stride[2], g.dilation[2], out_a, out_b, lo, hi)
        nrows = 0
    return nrows


cdef void correlate_block_pair(const real_t* a, const real_t* k, real_t* out_a, real_t* out_b,
                               const Geometry* g, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t lo,
                               Py_ssize_t hi, bint accumulate) noexcept nogil:
    # correlate_block for the lines (i0, i1) -> out_a and (i0, i1 + 1) -> out_b. Line B's
    # input rows are line A's moved by the stride, so with shift = stride / dilation, the
    # row that line A reads through tap jA is the row line B reads through tap jA - shift.
    cdef const real_t* rows[MAX_ROWS]
    cdef const real_t* a_krows[MAX_ROWS]
    cdef const real_t* b_krows[MAX_ROWS]
    cdef Py_ssize_t j0, ja, jb, first0, stop0, first_a, stop_a, first_b, stop_b, plane
    cdef Py_ssize_t nrows = 0
    cdef Py_ssize_t shift = g.stride[1] // g.dilation[1]
    cdef Py_ssize_t start0 = g.offset[0] + i0 * g.stride[0]
    cdef Py_ssize_t start_a = g.offset[1] + i1 * g.stride[1]
    cdef Py_ssize_t start_b = start_a + g.stride[1]
    cdef const real_t* krow0
    if not accumulate:
        memset(out_a + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
        memset(out_b + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
    tap_range(start0, g.n[0], g.taps[0], g.dilation[0], &first0, &stop0)
    tap_range(start_a, g.n[1], g.taps[1], g.dilation[1], &first_a, &stop_a)
    tap_range(start_b, g.n[1], g.taps[1], g.dilation[1], &first_b, &stop_b)
    for j0 in range(first0, stop0):
        plane = (start0 + j0 * g.dilation[0]) * g.n[1]
        krow0 = k + j0 * g.k_step[0]
        # Rows line A reads, shared with line B where B reads them too ...
        for ja in range(first_a, stop_a):
            jb = ja - shift
            nrows = add_pair_row(rows, a_krows, b_krows, nrows,
                                 a + (plane + start_a + ja * g.dilation[1]) * g.n[2],
                                 krow0 + ja * g.k_step[1],
                                 krow0 + jb * g.k_step[1] if first_b <= jb < stop_b else NULL,
                                 g, out_a, out_b, lo, hi)
        # ... then the rows only line B reads.
        for jb in range(first_b, stop_b):
            if first_a <= jb + shift < stop_a:
                continue
            nrows = add_pair_row(rows, a_krows, b_krows, nrows,
                                 a + (plane + start_b + jb * g.dilation[1]) * g.n[2],
                                 NULL, krow0 + jb * g.k_step[1], g, out_a, out_b, lo, hi)
    if nrows:
        correlate_rows_pair(rows, a_krows, b_krows, nrows, g.n[2], g.taps[2], g.offset[2],
                            g.stride[2], g.dilation[2], out_a, out_b, lo, hi)



cdef void correlate_block(const real_t* a, const real_t* k, real_t* out, const Geometry* g,
                          Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t lo, Py_ssize_t hi,
                          bint accumulate) noexcept nogil:
    # One block of one output line: out[i0, i1, lo:hi] (out points at the line's start).
    cdef const real_t* rows[MAX_ROWS]
    cdef const real_t* krows[MAX_ROWS]
    cdef Py_ssize_t j0, j1, first0, stop0, first1, stop1, nrows = 0
    cdef Py_ssize_t start0 = g.offset[0] + i0 * g.stride[0]
    cdef Py_ssize_t start1 = g.offset[1] + i1 * g.stride[1]
    if not accumulate:
        memset(out + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
    tap_range(start0, g.n[0], g.taps[0], g.dilation[0], &first0, &stop0)
    tap_range(start1, g.n[1], g.taps[1], g.dilation[1], &first1, &stop1)
    for j0 in range(first0, stop0):
        for j1 in range(first1, stop1):
            rows[nrows] = a + ((start0 + j0 * g.dilation[0]) * g.n[1]
                               + start1 + j1 * g.dilation[1]) * g.n[2]
            krows[nrows] = k + j0 * g.k_step[0] + j1 * g.k_step[1]
            nrows += 1
            if nrows == MAX_ROWS:
                correlate_rows(rows, krows, nrows, g.n[2], g.taps[2], g.offset[2],
                               g.stride[2], g.dilation[2], out, lo, hi)
                nrows = 0
    if nrows:
        correlate_rows(rows, krows, nrows, g.n[2], g.taps[2], g.offset[2],
                       g.stride[2], g.dilation[2], out, lo, hi)


cdef void correlate_task(const real_t* a_ptr, const real_t* k_ptr, real_t* out_ptr,
                         const Py_ssize_t* a_index, const Py_ssize_t* k_index,
                         const Geometry* whole, Py_ssize_t batch, Py_ssize_t nsplit,
                         int split_axis, bint paired, Py_ssize_t task,
                         bint accumulate) noexcept nogil:
    # With `paired`, the task of an even line i1 computes lines i1 and i1 + 1 and the task of
    # an odd line has nothing to do.
    cdef Geometry g = whole[0]
    cdef Py_ssize_t nblocks = (g.m[2] + BLOCK - 1) // BLOCK
    cdef Py_ssize_t lines = batch * g.m[0] * g.m[1]
    cdef Py_ssize_t blk = task % nblocks
    cdef Py_ssize_t line = (task // nblocks) % lines
    cdef Py_ssize_t split = task // (nblocks * lines)
    cdef Py_ssize_t i1 = line % g.m[1]
    cdef Py_ssize_t i0 = (line // g.m[1]) % g.m[0]
    cdef Py_ssize_t b = line // (g.m[1] * g.m[0])
    cdef Py_ssize_t lo = blk * BLOCK
    cdef Py_ssize_t hi = lo + BLOCK
    cdef Py_ssize_t first = 0, stop, count = 1
    cdef real_t* out
    if paired:
        if i1 % 2 == 1:
            return
        if i1 + 1 < g.m[1]:
            count = 2
    if hi > g.m[2]:
        hi = g.m[2]
    out = out_ptr + (split * lines + line) * g.m[2]
    if nsplit > 1:
        # This split sums over the taps [first, stop) of one kernel axis only.
        first = whole.taps[split_axis] * split // nsplit
        stop = whole.taps[split_axis] * (split + 1) // nsplit
        if stop == first:
            if not accumulate:
                memset(out + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
                if count == 2:
                    memset(out + g.m[2] + lo, 0, <size_t>(hi - lo) * sizeof(real_t))
            return
        g.taps[split_axis] = stop - first
        g.offset[split_axis] += first * g.dilation[split_axis]
    a_ptr = a_ptr + a_index[b] * (g.n[0] * g.n[1] * g.n[2])
    k_ptr = (k_ptr + k_index[b] * (whole.taps[0] * whole.taps[1] * whole.taps[2])
             + first * g.k_step[split_axis])
    if count == 2:
        correlate_block_pair(a_ptr, k_ptr, out, out + g.m[2], &g, i0, i1, lo, hi, accumulate)
    else:
        correlate_block(a_ptr, k_ptr, out, &g, i0, i1, lo, hi, accumulate)


def correlate(const real_t[:, :, :, ::1] a, const real_t[:, :, :, ::1] k,
              real_t[:, :, :, ::1] out,
              const Py_ssize_t[::1] a_index, const Py_ssize_t[::1] k_index,
              offset, stride, dilation, bint accumulate=False, int num_threads=1,
              int split_axis=0, Py_ssize_t nsplit=1):
    """out[b] (+)= the correlation of a[a_index[b]] with k[k_index[b]] (see module docstring).

    Shapes are (batch, 3 axes); unused axes have extent 1, offset 0, stride 1, dilation 1.
    With ``nsplit > 1``, ``out`` has ``nsplit * batch`` entries: entry ``s * batch + b`` holds
    the part of output ``b`` summed over the s-th share of the taps along ``split_axis``.
    The caller validates every argument; this function only computes.
    """
    cdef Geometry g
    cdef Py_ssize_t t, task, ntasks, batch = a_index.shape[0]
    for t in range(3):
        g.n[t] = a.shape[t + 1]
        g.taps[t] = k.shape[t + 1]
        g.m[t] = out.shape[t + 1]
        g.offset[t] = offset[t]
        g.stride[t] = stride[t]
        g.dilation[t] = dilation[t]
    g.k_step[0] = g.taps[1] * g.taps[2]
    g.k_step[1] = g.taps[2]
    g.k_step[2] = 1
    if nsplit < 1 or not 0 <= split_axis < 3 or out.shape[0] != nsplit * batch \
            or k_index.shape[0] != batch:
        raise ValueError("correlate kernel: inconsistent batch or split arguments")
    if batch == 0 or g.m[0] * g.m[1] * g.m[2] == 0:
        return
    if a.shape[0] == 0 or k.shape[0] == 0:
        raise ValueError("correlate kernel: empty batch of inputs")
    if g.n[0] * g.n[1] * g.n[2] == 0 or g.taps[0] * g.taps[1] * g.taps[2] == 0:
        raise ValueError("correlate kernel: empty input or kernel")
    ntasks = nsplit * batch * g.m[0] * g.m[1] * ((g.m[2] + BLOCK - 1) // BLOCK)
    # Pairs of lines along the middle axis share input rows when the stride there is a
    # multiple of the dilation smaller than the kernel's extent; the paired inner loop is
    # written for stride 1 along the line.
    cdef bint paired = (g.m[1] >= 2 and g.stride[1] % g.dilation[1] == 0
                        and g.stride[1] // g.dilation[1] < g.taps[1] and g.stride[2] == 1)
    cdef const real_t* a_ptr = &a[0, 0, 0, 0]
    cdef const real_t* k_ptr = &k[0, 0, 0, 0]
    cdef real_t* out_ptr = &out[0, 0, 0, 0]
    cdef const Py_ssize_t* ai = &a_index[0]
    cdef const Py_ssize_t* ki = &k_index[0]
    with nogil:
        for task in prange(ntasks, num_threads=num_threads, schedule='guided'):
            correlate_task(a_ptr, k_ptr, out_ptr, ai, ki, &g, batch, nsplit, split_axis,
                           paired, task, accumulate)
