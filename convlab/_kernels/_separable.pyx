"""Separable layer-level convolution kernels (private): one 1-D pass per spatial axis.

For filter f and input channel c the kernel is w[f, c, m] = w0[f, c, m0] w1[f, c, m1]
w2[f, c, m2] (three spatial axes; the caller pads 1-D and 2-D problems with leading axes of
extent 1 and factors [1.0]). With xp the zero-padded input, cut to the extent the windows
read, the forward pass is three passes

    A[o0, i1, i2] = sum_m0 w0[m0] xp[o0 s0 + m0 d0, i1, i2]
    B[o0, o1, i2] = sum_m1 w1[m1] A[o0, o1 s1 + m1 d1, i2]
    y[o0, o1, o2] += sum_m2 w2[m2] B[o0, o1, o2 s2 + m2 d2]         (summed over c)

k0 + k1 + k2 products per output and channel instead of k0 k1 k2. The input gradient runs
the adjoint passes (scatters) in reverse order, the weight gradient contracts the output
gradient with the input passed along the two other axes. Each pass is a loop whose inner
loop runs along the contiguous last axis.
"""

from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

from convlab._kernels._fused cimport real_t


# Filters (or channels) per task: the planes one image contributes stay in cache while the
# block's filters pass over them.
cdef enum:
    BLOCK = 4


cdef struct Shape3:
    Py_ssize_t n[3]


cdef inline Py_ssize_t size3(Shape3 s) noexcept nogil:
    return s.n[0] * s.n[1] * s.n[2]


cdef extern from "_separable_blocks.h" nogil:
    void convlab_sep_rows_float(const float* src, Py_ssize_t inner, const float* w,
                                Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,
                                Py_ssize_t length, float* out, int accumulate)
    void convlab_sep_rows_double(const double* src, Py_ssize_t inner, const double* w,
                                 Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,
                                 Py_ssize_t length, double* out, int accumulate)
    void convlab_sep_line_float(const float* src, const float* w, Py_ssize_t k,
                                Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t length,
                                float* out, int accumulate)
    void convlab_sep_line_double(const double* src, const double* w, Py_ssize_t k,
                                 Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t length,
                                 double* out, int accumulate)
    void convlab_sep_rows_adjoint_float(const float* src, Py_ssize_t inner, const float* w,
                                        Py_ssize_t k, Py_ssize_t dilation, Py_ssize_t length,
                                        Py_ssize_t extent, float* out)
    void convlab_sep_rows_adjoint_double(const double* src, Py_ssize_t inner, const double* w,
                                         Py_ssize_t k, Py_ssize_t dilation, Py_ssize_t length,
                                         Py_ssize_t extent, double* out)
    void convlab_sep_line_adjoint_float(const float* src, const float* w, Py_ssize_t k,
                                        Py_ssize_t dilation, Py_ssize_t length,
                                        Py_ssize_t extent, float* out)
    void convlab_sep_line_adjoint_double(const double* src, const double* w, Py_ssize_t k,
                                         Py_ssize_t dilation, Py_ssize_t length,
                                         Py_ssize_t extent, double* out)
    void convlab_sep_line_adjoint_padded_float(const float* src, const float* w, Py_ssize_t k,
                                               Py_ssize_t dilation, Py_ssize_t length,
                                               Py_ssize_t extent, float* out, float* scratch,
                                               int accumulate)
    void convlab_sep_line_adjoint_padded_double(const double* src, const double* w,
                                                Py_ssize_t k, Py_ssize_t dilation,
                                                Py_ssize_t length, Py_ssize_t extent,
                                                double* out, double* scratch, int accumulate)
    void convlab_sep_dot_float(const float* g, const float* src, Py_ssize_t k,
                               Py_ssize_t dilation, Py_ssize_t length, float* dw)
    void convlab_sep_dot_double(const double* g, const double* src, Py_ssize_t k,
                                Py_ssize_t dilation, Py_ssize_t length, double* dw)
    void convlab_sep_dot_rows_float(const float* g, Py_ssize_t gstride, const float* src,
                                    Py_ssize_t sstride, Py_ssize_t rows, Py_ssize_t k,
                                    Py_ssize_t dilation, Py_ssize_t length, float* dw)
    void convlab_sep_dot_rows_double(const double* g, Py_ssize_t gstride, const double* src,
                                     Py_ssize_t sstride, Py_ssize_t rows, Py_ssize_t k,
                                     Py_ssize_t dilation, Py_ssize_t length, double* dw)


cdef extern from "_separable_lanes.h" nogil:
    enum:
        CONVLAB_SEPV_LANES_FLOAT
        CONVLAB_SEPV_LANES_DOUBLE
        CONVLAB_SEPV_STRIP
    void convlab_sepv_forward_task_float(
        const float* x, Py_ssize_t channels, Py_ssize_t P1, Py_ssize_t P2, Py_ssize_t lo,
        Py_ssize_t hi, const float* w1,
        Py_ssize_t k1, Py_ssize_t s1, Py_ssize_t d1, const float* w2, Py_ssize_t k2,
        Py_ssize_t s2, Py_ssize_t d2, Py_ssize_t O1, Py_ssize_t O2, float* a, float* ys,
        float* y, Py_ssize_t plane, Py_ssize_t nf, const float* xl, Py_ssize_t xl_row,
        float* dw2)
    void convlab_sepv_forward_task_double(
        const double* x, Py_ssize_t channels, Py_ssize_t P1, Py_ssize_t P2, Py_ssize_t lo,
        Py_ssize_t hi, const double* w1,
        Py_ssize_t k1, Py_ssize_t s1, Py_ssize_t d1, const double* w2, Py_ssize_t k2,
        Py_ssize_t s2, Py_ssize_t d2, Py_ssize_t O1, Py_ssize_t O2, double* a, double* ys,
        double* y, Py_ssize_t plane, Py_ssize_t nf, const double* xl, Py_ssize_t xl_row,
        double* dw2)
    void convlab_sepv_factor_task_float(
        const float* x, Py_ssize_t x_image, Py_ssize_t x_plane, Py_ssize_t xr, Py_ssize_t xc,
        Py_ssize_t channels, const float* g, Py_ssize_t g_image, Py_ssize_t gr, Py_ssize_t gc,
        Py_ssize_t images, Py_ssize_t P2, const float* w1, Py_ssize_t k1, Py_ssize_t s1,
        Py_ssize_t d1, Py_ssize_t k2, Py_ssize_t s2, Py_ssize_t d2, Py_ssize_t O1,
        Py_ssize_t O2, float* b, float* dw2)
    void convlab_sepv_factor_task_double(
        const double* x, Py_ssize_t x_image, Py_ssize_t x_plane, Py_ssize_t xr, Py_ssize_t xc,
        Py_ssize_t channels, const double* g, Py_ssize_t g_image, Py_ssize_t gr, Py_ssize_t gc,
        Py_ssize_t images, Py_ssize_t P2, const double* w1, Py_ssize_t k1, Py_ssize_t s1,
        Py_ssize_t d1, Py_ssize_t k2, Py_ssize_t s2, Py_ssize_t d2, Py_ssize_t O1,
        Py_ssize_t O2, double* b, double* dw2)


cdef void apply_pass(const real_t* src, Shape3 shape, int axis, const real_t* w, Py_ssize_t k,
                     Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t length, real_t* out,
                     bint accumulate) noexcept nogil:
    # out[..., o, ...] (+)= sum_m w[m] src[..., o * stride + m * dilation, ...] along `axis`,
    # o < length; out has src's shape with `length` along `axis`.
    cdef Py_ssize_t a, inner, outer, n_axis = shape.n[axis]
    if axis < 2:
        # rows: everything after `axis` is contiguous
        inner = 1
        for a in range(axis + 1, 3):
            inner *= shape.n[a]
        outer = 1
        for a in range(axis):
            outer *= shape.n[a]
        for a in range(outer):
            if real_t is float:
                convlab_sep_rows_float(src + a * n_axis * inner, inner, w, k, stride, dilation,
                                       length, out + a * length * inner, accumulate)
            else:
                convlab_sep_rows_double(src + a * n_axis * inner, inner, w, k, stride,
                                        dilation, length, out + a * length * inner, accumulate)
    else:
        outer = shape.n[0] * shape.n[1]
        for a in range(outer):
            if real_t is float:
                convlab_sep_line_float(src + a * n_axis, w, k, stride, dilation, length,
                                       out + a * length, accumulate)
            else:
                convlab_sep_line_double(src + a * n_axis, w, k, stride, dilation, length,
                                        out + a * length, accumulate)


cdef bint finite_taps(const real_t* w, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t m
    for m in range(k):
        if not (w[m] - w[m] == 0):      # false for NaN and for infinities
            return False
    return True


cdef void adjoint_pass(const real_t* src, Shape3 shape, int axis, const real_t* w,
                       Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t extent,
                       real_t* out, real_t* scratch) noexcept nogil:
    # out[..., o * stride + m * dilation, ...] += w[m] src[..., o, ...]: the adjoint of
    # apply_pass; src has `shape` (the pass's output), out has `extent` along `axis`.
    cdef Py_ssize_t a, o, m, i, inner, outer, length = shape.n[axis]
    cdef const real_t* row
    cdef real_t* dst
    cdef real_t wm
    if stride == 1:
        # gathered: each output sample sums its taps in registers
        if axis < 2:
            inner = 1
            for a in range(axis + 1, 3):
                inner *= shape.n[a]
            outer = 1
            for a in range(axis):
                outer *= shape.n[a]
            for a in range(outer):
                if real_t is float:
                    convlab_sep_rows_adjoint_float(src + a * length * inner, inner, w, k,
                                                   dilation, length, extent,
                                                   out + a * extent * inner)
                else:
                    convlab_sep_rows_adjoint_double(src + a * length * inner, inner, w, k,
                                                    dilation, length, extent,
                                                    out + a * extent * inner)
        else:
            if scratch != NULL and not finite_taps(w, k):
                # the padded row's zeros times a NaN or infinite tap are not terms of the
                # adjoint: write zeros and gather only the real terms
                memset(out, 0, <size_t>(shape.n[0] * shape.n[1] * extent) * sizeof(real_t))
                scratch = NULL
            for a in range(shape.n[0] * shape.n[1]):
                if scratch != NULL:
                    # (out is written, not added to: the caller passes a scratch only for
                    # the first pass into a buffer)
                    if real_t is float:
                        convlab_sep_line_adjoint_padded_float(src + a * length, w, k, dilation,
                                                              length, extent, out + a * extent,
                                                              scratch, 0)
                    else:
                        convlab_sep_line_adjoint_padded_double(src + a * length, w, k,
                                                               dilation, length, extent,
                                                               out + a * extent, scratch, 0)
                elif real_t is float:
                    convlab_sep_line_adjoint_float(src + a * length, w, k, dilation, length,
                                                   extent, out + a * extent)
                else:
                    convlab_sep_line_adjoint_double(src + a * length, w, k, dilation, length,
                                                    extent, out + a * extent)
        return
    if axis < 2:
        inner = 1
        for a in range(axis + 1, 3):
            inner *= shape.n[a]
        outer = 1
        for a in range(axis):
            outer *= shape.n[a]
        for a in range(outer):
            for o in range(length):
                row = src + (a * length + o) * inner
                for m in range(k):
                    wm = w[m]
                    dst = out + (a * extent + o * stride + m * dilation) * inner
                    for i in range(inner):
                        dst[i] = dst[i] + wm * row[i]
    else:
        outer = shape.n[0] * shape.n[1]
        for a in range(outer):
            row = src + a * length
            dst = out + a * extent
            for m in range(k):
                wm = w[m]
                for o in range(length):
                    dst[o * stride + m * dilation] = dst[o * stride + m * dilation] + wm * row[o]


cdef void contract(const real_t* g, Shape3 gshape, const real_t* src, Py_ssize_t src_extent,
                   int axis, Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,
                   real_t* dw) noexcept nogil:
    # dw[m] += sum_o g[o] src[..., o_axis * stride + m * dilation, ...]; src has g's shape
    # except `src_extent` along `axis`.
    cdef Py_ssize_t a, o, m, i, inner, outer, length = gshape.n[axis]
    cdef const real_t* row
    cdef const real_t* grow
    cdef real_t total
    inner = 1
    for a in range(axis + 1, 3):
        inner *= gshape.n[a]
    outer = 1
    for a in range(axis):
        outer *= gshape.n[a]
    if stride == 1 and axis == 2:
        # along the rows: the sums carried over all rows, reduced once
        if real_t is float:
            convlab_sep_dot_rows_float(g, length, src, src_extent, outer, k, dilation, length,
                                       dw)
        else:
            convlab_sep_dot_rows_double(g, length, src, src_extent, outer, k, dilation, length,
                                        dw)
        return
    if stride == 1:
        # per block of rows, one accumulator per tap: the taps of one block are a dot
        # product of flattened rows, shifted by dilation * inner
        for a in range(outer):
            if real_t is float:
                convlab_sep_dot_float(g + a * length * inner, src + a * src_extent * inner, k,
                                      dilation * inner, length * inner, dw)
            else:
                convlab_sep_dot_double(g + a * length * inner, src + a * src_extent * inner, k,
                                       dilation * inner, length * inner, dw)
        return
    for m in range(k):
        total = 0
        if axis < 2:
            for a in range(outer):
                for o in range(length):
                    grow = g + (a * length + o) * inner
                    row = src + (a * src_extent + o * stride + m * dilation) * inner
                    for i in range(inner):
                        total = total + grow[i] * row[i]
        else:
            # inner == 1: the taps run along the rows
            for a in range(outer):
                grow = g + a * length
                row = src + a * src_extent + m * dilation
                if stride == 1:
                    for o in range(length):
                        total = total + grow[o] * row[o]
                else:
                    for o in range(length):
                        total = total + grow[o] * row[o * stride]
        dw[m] += total


cdef bint _all_ones(const real_t[:, :, ::1] w):
    cdef Py_ssize_t i, j, m
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            for m in range(w.shape[2]):
                if w[i, j, m] != 1:
                    return False
    return True


cdef inline Shape3 with_axis(Shape3 s, int axis, Py_ssize_t n) noexcept nogil:
    s.n[axis] = n
    return s


cdef struct Passes:
    Shape3 P                 # the padded input's extent the windows read
    Shape3 O                 # the output
    Py_ssize_t s[3]
    Py_ssize_t dl[3]
    Py_ssize_t k[3]
    bint leading             # axis 0 is the added axis of a 1-D or 2-D problem


cdef inline bint windows_fit(Py_ssize_t padded, Py_ssize_t out, Py_ssize_t stride,
                             Py_ssize_t dilation, Py_ssize_t k) noexcept nogil:
    # the windows of `out` outputs stay inside `padded` samples
    return (out >= 1 and stride >= 1 and dilation >= 1 and k >= 1
            and padded >= (out - 1) * stride + (k - 1) * dilation + 1)


cdef Passes make_passes(tuple padded, tuple out, tuple strides, tuple dilations,
                        const real_t[:, :, ::1] w0, const real_t[:, :, ::1] w1,
                        const real_t[:, :, ::1] w2, bint leading_axis) except *:
    # The geometry of the three passes, checked: the kernels trust it to stay inside the
    # buffers. With `leading_axis`, axis 0 (extent 1, factor [1]) is not passed along.
    cdef Passes G
    cdef int t
    for t in range(3):
        G.P.n[t] = padded[t]
        G.O.n[t] = out[t]
        G.s[t] = strides[t]
        G.dl[t] = dilations[t]
    G.k[0], G.k[1], G.k[2] = w0.shape[2], w1.shape[2], w2.shape[2]
    for t in range(3):
        if not windows_fit(G.P.n[t], G.O.n[t], G.s[t], G.dl[t], G.k[t]):
            raise ValueError("separable kernels: the windows reach outside the padded input")
    if leading_axis and (G.P.n[0] != 1 or G.O.n[0] != 1 or G.k[0] != 1 or not _all_ones(w0)):
        raise ValueError("separable kernels: axis 0 is not an added leading axis")
    G.leading = leading_axis
    return G


def forward(const real_t[:, :, ::1] xp, const real_t[:, :, ::1] w0, const real_t[:, :, ::1] w1,
            const real_t[:, :, ::1] w2, real_t[:, :, ::1] y, tuple padded, tuple out,
            tuple strides, tuple dilations, bint leading_axis, int num_threads):
    """y[n, f] = sum_c the three passes of xp[n, c]; xp (N, C, prod(padded)), wa (F, C, k_a),
    y (N, F, prod(out)). The caller adds the bias. With `leading_axis` (a 1-D or 2-D
    problem), axis 0 is the added axis of extent 1 and factor [1], not passed along."""
    cdef Py_ssize_t images = xp.shape[0], channels = xp.shape[1], filters = y.shape[1]
    cdef Passes G = make_passes(padded, out, strides, dilations, w0, w1, w2, leading_axis)
    cdef Shape3 P = G.P, O = G.O, SA, SB
    cdef Py_ssize_t* s = G.s
    cdef Py_ssize_t* dl = G.dl
    cdef Py_ssize_t* k = G.k
    SA = with_axis(P, 0, O.n[0])          # after the pass along axis 0
    SB = with_axis(SA, 1, O.n[1])         # after the passes along axes 0 and 1
    cdef Py_ssize_t per_thread = size3(SA) + size3(SB)
    cdef Py_ssize_t thread_count = max(num_threads, 1), task, n, f, c, f0, f1
    cdef Py_ssize_t fblocks = (filters + BLOCK - 1) // BLOCK
    cdef real_t* buffers
    cdef real_t* a_buffer
    cdef real_t* A
    cdef real_t* B
    cdef bint lead0 = G.leading
    if images == 0 or filters == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * per_thread) * sizeof(real_t))
    if buffers == NULL:
        raise MemoryError("separable_conv: cannot allocate the pass buffers")
    try:
        with nogil:
            # a task is one image and a block of filters: each input plane is read once
            # for the whole block while it is in cache
            for task in prange(images * fblocks, num_threads=num_threads, schedule='dynamic'):
                n = task // fblocks
                f0 = (task % fblocks) * BLOCK
                f1 = min(f0 + BLOCK, filters)
                a_buffer = buffers + threadid() * per_thread
                B = a_buffer + size3(SA)
                for f in range(f0, f1):
                    memset(&y[n, f, 0], 0, <size_t>size3(O) * sizeof(real_t))
                for c in range(channels):
                    for f in range(f0, f1):
                        if lead0:
                            A = <real_t*>&xp[n, c, 0]    # a leading axis: nothing to pass
                        else:
                            A = a_buffer
                            apply_pass(&xp[n, c, 0], P, 0, &w0[f, c, 0], k[0], s[0], dl[0],
                                       O.n[0], A, False)
                        apply_pass(A, SA, 1, &w1[f, c, 0], k[1], s[1], dl[1], O.n[1], B, False)
                        apply_pass(B, SB, 2, &w2[f, c, 0], k[2], s[2], dl[2], O.n[2],
                                   &y[n, f, 0], True)
    finally:
        free(buffers)


def grad_input(const real_t[:, :, ::1] g, const real_t[:, :, ::1] w0,
               const real_t[:, :, ::1] w1, const real_t[:, :, ::1] w2, real_t[:, :, ::1] dxp,
               tuple padded, tuple out, tuple strides, tuple dilations, bint leading_axis,
               int num_threads):
    """dxp[n, c] = sum_f the adjoint passes of G[n, f] (last axis first); g (N, F,
    prod(out)), dxp (N, C, prod(padded)), zeroed here; `leading_axis` as in forward."""
    cdef Py_ssize_t images = dxp.shape[0], channels = dxp.shape[1], filters = g.shape[1]
    cdef Passes G = make_passes(padded, out, strides, dilations, w0, w1, w2, leading_axis)
    cdef Shape3 P = G.P, O = G.O, SA, SB
    cdef Py_ssize_t* s = G.s
    cdef Py_ssize_t* dl = G.dl
    cdef Py_ssize_t* k = G.k
    SA = with_axis(P, 0, O.n[0])
    SB = with_axis(SA, 1, O.n[1])
    # a padded row and the reversed taps for the last axis's adjoint pass
    cdef Py_ssize_t scratch_size = P.n[2] + 2 * (k[2] - 1) * dl[2] + k[2]
    cdef Py_ssize_t per_thread = size3(SA) + size3(SB) + scratch_size
    cdef Py_ssize_t thread_count = max(num_threads, 1), task, n, f, c, c0, c1
    cdef Py_ssize_t cblocks = (channels + BLOCK - 1) // BLOCK
    cdef real_t* buffers
    cdef real_t* A
    cdef real_t* B
    cdef real_t* scratch
    cdef bint lead0 = G.leading
    if images == 0 or channels == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * per_thread) * sizeof(real_t))
    if buffers == NULL:
        raise MemoryError("separable_conv_grad_input: cannot allocate the pass buffers")
    try:
        with nogil:
            # a task is one image and a block of channels: each output-gradient plane is
            # read once for the whole block
            for task in prange(images * cblocks, num_threads=num_threads, schedule='dynamic'):
                n = task // cblocks
                c0 = (task % cblocks) * BLOCK
                c1 = min(c0 + BLOCK, channels)
                A = buffers + threadid() * per_thread
                B = A + size3(SA)
                scratch = B + size3(SB)
                for c in range(c0, c1):
                    memset(&dxp[n, c, 0], 0, <size_t>size3(P) * sizeof(real_t))
                for f in range(filters):
                    for c in range(c0, c1):
                        # at stride 1 the pass writes B whole through the scratch row; a
                        # strided one scatters into it
                        if s[2] != 1:
                            memset(B, 0, <size_t>size3(SB) * sizeof(real_t))
                        adjoint_pass(&g[n, f, 0], O, 2, &w2[f, c, 0], k[2], s[2], dl[2], P.n[2],
                                     B, scratch if s[2] == 1 else NULL)
                        if lead0:
                            # a leading axis: the pass along axis 1 adds straight into dx
                            adjoint_pass(B, SB, 1, &w1[f, c, 0], k[1], s[1], dl[1], P.n[1],
                                         &dxp[n, c, 0], NULL)
                            continue
                        memset(A, 0, <size_t>size3(SA) * sizeof(real_t))
                        adjoint_pass(B, SB, 1, &w1[f, c, 0], k[1], s[1], dl[1], P.n[1], A,
                                     NULL)
                        adjoint_pass(A, SA, 0, &w0[f, c, 0], k[0], s[0], dl[0], P.n[0],
                                     &dxp[n, c, 0], NULL)
    finally:
        free(buffers)


def grad_weights(const real_t[:, :, ::1] g, const real_t[:, :, ::1] xp,
                 const real_t[:, :, ::1] w0, const real_t[:, :, ::1] w1,
                 const real_t[:, :, ::1] w2, real_t[:, :, ::1] d0, real_t[:, :, ::1] d1,
                 real_t[:, :, ::1] d2, tuple padded, tuple out, tuple strides, tuple dilations,
                 bint leading_axis, int num_threads):
    """da[f, c, m] = sum_n sum_o G[n, f, o] times xp[n, c] passed along the two other axes
    and read at tap m along axis a; one task per (block of filters, c), the images summed in
    order. With `leading_axis` (a 1-D or 2-D problem), axis 0 is the added axis of extent 1
    and factor [1]: its gradient is not computed (d0 stays zero)."""
    cdef Py_ssize_t images = xp.shape[0], channels = xp.shape[1], filters = g.shape[1]
    cdef Passes G = make_passes(padded, out, strides, dilations, w0, w1, w2, leading_axis)
    cdef Shape3 P = G.P, O = G.O, S0, S01, S2, S12, S02
    cdef Py_ssize_t* s = G.s
    cdef Py_ssize_t* dl = G.dl
    cdef Py_ssize_t* k = G.k
    S0 = with_axis(P, 0, O.n[0])          # passed along 0            (O0, P1, P2)
    S01 = with_axis(S0, 1, O.n[1])        # passed along 0, 1         (O0, O1, P2)
    S02 = with_axis(S0, 2, O.n[2])        # passed along 0, 2         (O0, P1, O2)
    S2 = with_axis(P, 2, O.n[2])          # passed along 2            (P0, P1, O2)
    S12 = with_axis(S2, 1, O.n[1])        # passed along 2, 1         (P0, O1, O2)
    cdef Py_ssize_t per_thread = size3(S0) + size3(S01) + size3(S02) + size3(S2) + size3(S12)
    cdef Py_ssize_t thread_count = max(num_threads, 1), task, n, f, c, f0, f1
    cdef Py_ssize_t fblocks = (filters + BLOCK - 1) // BLOCK
    cdef real_t* buffers
    cdef real_t* b0
    cdef real_t* b01
    cdef real_t* b02
    cdef real_t* b2
    cdef real_t* b12
    cdef const real_t* a0
    cdef const real_t* gn
    cdef bint lead0 = G.leading
    memset(&d0[0, 0, 0], 0, <size_t>(d0.shape[0] * d0.shape[1] * d0.shape[2]) * sizeof(real_t))
    memset(&d1[0, 0, 0], 0, <size_t>(d1.shape[0] * d1.shape[1] * d1.shape[2]) * sizeof(real_t))
    memset(&d2[0, 0, 0], 0, <size_t>(d2.shape[0] * d2.shape[1] * d2.shape[2]) * sizeof(real_t))
    if images == 0 or filters == 0 or channels == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * per_thread) * sizeof(real_t))
    if buffers == NULL:
        raise MemoryError("separable_conv_grad_weights: cannot allocate the pass buffers")
    try:
        with nogil:
            # a task is a block of filters and one channel: each input plane is read once
            # for the whole block
            for task in prange(fblocks * channels, num_threads=num_threads, schedule='dynamic'):
                f0 = (task // channels) * BLOCK
                f1 = min(f0 + BLOCK, filters)
                c = task % channels
                b0 = buffers + threadid() * per_thread
                b01 = b0 + size3(S0)
                b02 = b01 + size3(S01)
                b2 = b02 + size3(S02)
                b12 = b2 + size3(S2)
                for n in range(images):
                    for f in range(f0, f1):
                        gn = &g[n, f, 0]
                        # axis 2: the input passed along 0 and 1
                        if lead0:
                            a0 = &xp[n, c, 0]
                        else:
                            a0 = b0
                            apply_pass(&xp[n, c, 0], P, 0, &w0[f, c, 0], k[0], s[0], dl[0],
                                       O.n[0], b0, False)
                        apply_pass(a0, S0, 1, &w1[f, c, 0], k[1], s[1], dl[1], O.n[1], b01,
                                   False)
                        contract(gn, O, b01, P.n[2], 2, k[2], s[2], dl[2], &d2[f, c, 0])
                        # axis 1: passed along 0 and 2
                        apply_pass(a0, S0, 2, &w2[f, c, 0], k[2], s[2], dl[2], O.n[2], b02,
                                   False)
                        contract(gn, O, b02, P.n[1], 1, k[1], s[1], dl[1], &d1[f, c, 0])
                        # axis 0 (no gradient wanted for a leading axis): passed along 2, 1
                        if not lead0:
                            apply_pass(&xp[n, c, 0], P, 2, &w2[f, c, 0], k[2], s[2], dl[2],
                                       O.n[2], b2, False)
                            apply_pass(b2, S2, 1, &w1[f, c, 0], k[1], s[1], dl[1], O.n[1], b12,
                                       False)
                            contract(gn, O, b12, P.n[0], 0, k[0], s[0], dl[0], &d0[f, c, 0])
    finally:
        free(buffers)


# ---- 1-D and 2-D problems: a block of filters (or channels) in the vector lanes ----------

def lane_width(dtype):
    """Filters per block of the lane kernels for this dtype (float32 or float64)."""
    return CONVLAB_SEPV_LANES_FLOAT if dtype.itemsize == 4 else CONVLAB_SEPV_LANES_DOUBLE


cdef inline Py_ssize_t lanes_of(const real_t* dummy) noexcept nogil:
    if real_t is float:
        return CONVLAB_SEPV_LANES_FLOAT
    else:
        return CONVLAB_SEPV_LANES_DOUBLE


# Channels per task of the lane kernels' factor gradients: each image's output gradient is
# read from cache by all of them.
cdef enum:
    CHANNEL_GROUP = 4


cdef struct Plane:
    Py_ssize_t P[2]          # the padded input's extent the windows read (H, W)
    Py_ssize_t O[2]          # the output (H, W)
    Py_ssize_t s[2]
    Py_ssize_t dl[2]
    Py_ssize_t k[2]


cdef Plane make_plane(tuple padded, tuple out, tuple strides, tuple dilations, Py_ssize_t k1,
                      Py_ssize_t k2) except *:
    # The geometry of the two passes, checked: the kernels trust it to stay inside the
    # buffers.
    cdef Plane G
    cdef int t
    for t in range(2):
        G.P[t] = padded[t]
        G.O[t] = out[t]
        G.s[t] = strides[t]
        G.dl[t] = dilations[t]
    G.k[0], G.k[1] = k1, k2
    for t in range(2):
        if not windows_fit(G.P[t], G.O[t], G.s[t], G.dl[t], G.k[t]):
            raise ValueError("separable lane kernels: the windows reach outside the padded input")
    return G


cdef size_t aligned_count(Py_ssize_t count, size_t itemsize) noexcept nogil:
    # elements, rounded up to whole 64-byte lines
    cdef size_t per_line = 64 // itemsize
    return (<size_t>count + per_line - 1) // per_line * per_line


def forward_lanes(const real_t[:, :, ::1] xp, const real_t[:, :, :, ::1] w1,
                  const real_t[:, :, :, ::1] w2, real_t[:, :, ::1] y, tuple padded, tuple out,
                  tuple strides, tuple dilations, int num_threads, tuple columns=None,
                  const real_t[:, :, ::1] xl=None, real_t[:, :, :, :, ::1] dw2=None):
    """y[n, f] = sum_c xp[n, c] passed along H with w1[., c] and along W with w2[., c];
    xp (N, C, P1 P2), y (N, F, O1 O2), w1 / w2 the factors in lanes: (blocks, C, k, lanes)
    with w[block, c, m, l] = factor[block * lanes + l, c, m] (zero past F). `columns`
    (lo, hi): xp is zero outside these columns and the taps are finite, so that the pass
    along H skips them (their products are zeros).

    The fused backward (stride 1, xp the padded output gradient, y the input gradient):
    with xl, the forward input in lanes (N, blocks, O1 O2 lanes), the column factor's
    gradient is computed from the pass along H (see forward_task), one partial sum per
    chunk of images: dw2 (chunks, blocks, C, k2, lanes), chunk q summing images
    [q per, (q + 1) per) in order, per = ceil(N / chunks) (the caller sums the chunks, so
    that the result does not depend on the threads)."""
    cdef Py_ssize_t images = xp.shape[0], channels = xp.shape[1], filters = y.shape[1]
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Plane G = make_plane(padded, out, strides, dilations, w1.shape[2], w2.shape[2])
    cdef Py_ssize_t blocks = (filters + lanes - 1) // lanes
    cdef Py_ssize_t lo = 0, hi = G.P[1]
    if columns is not None:
        lo, hi = columns
        if not 0 <= lo < hi <= G.P[1]:
            raise ValueError("separable lane kernels: the nonzero columns are out of range")
    if (w1.shape[0] != blocks or w2.shape[0] != blocks or w1.shape[1] != channels
            or w2.shape[1] != channels or w1.shape[3] != lanes or w2.shape[3] != lanes
            or xp.shape[2] != G.P[0] * G.P[1] or y.shape[0] != images
            or y.shape[2] != G.O[0] * G.O[1]):
        raise ValueError("separable lane kernels: the arrays do not match the geometry")
    cdef const real_t* xl_data = NULL
    cdef real_t* dw2_data = NULL
    cdef real_t* dw2_task = NULL
    cdef Py_ssize_t xl_image = 0, dw2_block = channels * G.k[1] * lanes
    cdef Py_ssize_t per_unit = 1, units = images    # a task's images: one unless fused
    if (xl is None) != (dw2 is None):
        raise ValueError("separable lane kernels: xl and dw2 go together")
    if xl is not None:
        if images:
            per_unit = (images + dw2.shape[0] - 1) // max(dw2.shape[0], 1)
            units = (images + per_unit - 1) // per_unit
        # the contraction reads xl[r][j + m d2] for j < hi - lo, m < k2
        if (G.s[0] != 1 or G.s[1] != 1 or xl.shape[0] != images or xl.shape[1] != blocks
                or xl.shape[2] != G.O[0] * G.O[1] * lanes
                or hi - lo + (G.k[1] - 1) * G.dl[1] > G.O[1]
                or dw2.shape[0] != units or dw2.shape[1] != blocks
                or dw2.shape[2] != channels or dw2.shape[3] != G.k[1] or dw2.shape[4] != lanes):
            raise ValueError("separable lane kernels: the fused arrays do not match the geometry")
        if images and blocks:
            xl_data = &xl[0, 0, 0]
            dw2_data = &dw2[0, 0, 0, 0, 0]
        xl_image = blocks * G.O[0] * G.O[1] * lanes
    cdef size_t a_size = aligned_count(CONVLAB_SEPV_STRIP * G.P[1] * lanes, sizeof(real_t))
    cdef size_t per_thread = a_size + aligned_count(CONVLAB_SEPV_STRIP * G.O[1] * lanes,
                                                    sizeof(real_t))
    cdef Py_ssize_t thread_count = max(num_threads, 1), task, unit, n, block, f0, b0, b1
    cdef Py_ssize_t parts = 1 if units >= 4 * thread_count else blocks
    cdef void* memory
    cdef const real_t* xl_task = NULL
    cdef real_t* buffers
    cdef real_t* a
    if images == 0 or filters == 0:
        return
    if channels == 0:
        y[:, :, :] = 0
        if dw2 is not None:
            dw2[...] = 0
        return
    memory = malloc(thread_count * per_thread * sizeof(real_t) + 64)
    if memory == NULL:
        raise MemoryError("separable_conv: cannot allocate the pass buffers")
    buffers = <real_t*>((<size_t>memory + 63) // 64 * 64)
    try:
        with nogil:
            # a task is one image (a chunk of images when fused) and every block of
            # filters, so that the image is read into cache once, or with fewer images than
            # that keeps the threads busy, one block: no two tasks write the same output
            for task in prange(units * parts, num_threads=num_threads, schedule='dynamic'):
                unit = task // parts
                b0 = 0 if parts == 1 else task % parts
                b1 = blocks if parts == 1 else b0 + 1
                a = buffers + threadid() * per_thread
                if xl_data != NULL:
                    memset(dw2_data + (unit * blocks + b0) * dw2_block, 0,
                           (b1 - b0) * dw2_block * sizeof(real_t))
                for n in range(unit * per_unit, min((unit + 1) * per_unit, images)):
                    for block in range(b0, b1):
                        f0 = block * lanes
                        if xl_data != NULL:
                            xl_task = xl_data + n * xl_image + block * G.O[0] * G.O[1] * lanes
                            dw2_task = dw2_data + (unit * blocks + block) * dw2_block
                        if real_t is float:
                            convlab_sepv_forward_task_float(
                                &xp[n, 0, 0], channels, G.P[0], G.P[1], lo, hi,
                                &w1[block, 0, 0, 0], G.k[0], G.s[0], G.dl[0],
                                &w2[block, 0, 0, 0], G.k[1], G.s[1], G.dl[1], G.O[0], G.O[1],
                                a, a + a_size, &y[n, f0, 0], G.O[0] * G.O[1],
                                min(lanes, filters - f0), xl_task, G.O[1], dw2_task)
                        else:
                            convlab_sepv_forward_task_double(
                                &xp[n, 0, 0], channels, G.P[0], G.P[1], lo, hi,
                                &w1[block, 0, 0, 0], G.k[0], G.s[0], G.dl[0],
                                &w2[block, 0, 0, 0], G.k[1], G.s[1], G.dl[1], G.O[0], G.O[1],
                                a, a + a_size, &y[n, f0, 0], G.O[0] * G.O[1],
                                min(lanes, filters - f0), xl_task, G.O[1], dw2_task)
    finally:
        free(memory)


def to_lanes(const real_t[:, :, ::1] g, real_t[:, :, ::1] gl, int num_threads,
             Py_ssize_t rows=0):
    """gl[n, block, i * lanes + l] = g[n, block * lanes + l, i] (zero past F); g (N, F, S),
    gl (N, blocks, S lanes). rows > 0: each plane of g (rows x S / rows) is also
    transposed, gl[n, block, (j rows + i) lanes + l] = g[n, block * lanes + l, i S / rows + j]
    (the factors' gradients with the axes swapped)."""
    cdef Py_ssize_t images = g.shape[0], filters = g.shape[1], size = g.shape[2]
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Py_ssize_t blocks = (filters + lanes - 1) // lanes
    cdef Py_ssize_t task, n, block, l, f, i, j, columns = 1
    if gl.shape[0] != images or gl.shape[1] != blocks or gl.shape[2] != size * lanes:
        raise ValueError("separable lane kernels: the arrays do not match the geometry")
    if rows > 0:
        if size % rows:
            raise ValueError("separable lane kernels: the planes do not have that many rows")
        columns = size // rows
    with nogil:
        for task in prange(images * blocks, num_threads=num_threads, schedule='static'):
            n = task // blocks
            block = task % blocks
            # written in order, read from `lanes` rows at once
            if rows == 0:
                for i in range(size):
                    for l in range(lanes):
                        f = block * lanes + l
                        gl[n, block, i * lanes + l] = g[n, f, i] if f < filters else 0
            else:
                for j in range(columns):
                    for i in range(rows):
                        for l in range(lanes):
                            f = block * lanes + l
                            gl[n, block, (j * rows + i) * lanes + l] = (
                                g[n, f, i * columns + j] if f < filters else 0)


def transpose_planes(const real_t[:, :, ::1] src, Py_ssize_t rows, real_t[:, :, ::1] dst,
                     int num_threads):
    """dst[n, c, j rows + i] = src[n, c, i columns + j]: every (rows x columns) plane
    transposed."""
    cdef Py_ssize_t planes = src.shape[0] * src.shape[1], size = src.shape[2]
    cdef Py_ssize_t task, n, c, i, j, i0, j0, columns
    if (dst.shape[0] != src.shape[0] or dst.shape[1] != src.shape[1] or dst.shape[2] != size
            or rows <= 0 or size % rows):
        raise ValueError("transpose_planes: the arrays do not match the plane sizes")
    columns = size // rows
    with nogil:
        for task in prange(planes, num_threads=num_threads, schedule='static'):
            n = task // src.shape[1]
            c = task % src.shape[1]
            # in tiles of 8 x 8, so that both planes are walked a cache line at a time
            for i0 in range(0, rows, 8):
                for j0 in range(0, columns, 8):
                    for j in range(j0, min(j0 + 8, columns)):
                        for i in range(i0, min(i0 + 8, rows)):
                            dst[n, c, j * rows + i] = src[n, c, i * columns + j]


def grad_weights_lanes(const real_t[:, :, ::1] gl, const real_t[:, :, ::1] xp,
                       const real_t[:, :, :, ::1] w1, const real_t[:, :, :, ::1] w2,
                       real_t[:, :, :, :, ::1] dw1, real_t[:, :, :, :, ::1] dw2, tuple padded,
                       tuple out, tuple strides, tuple dilations, int num_threads):
    """The factors' gradients in lanes, one partial sum per chunk of images: dw1 / dw2
    (chunks, blocks, C, k, lanes), chunk q summing images [q per, (q + 1) per) in order,
    per = ceil(N / chunks) (the caller sums the chunks: the result does not depend on the
    threads). gl: the output gradient in lanes (N, blocks, O1 O2 lanes, from to_lanes); xp
    (N, C, P1 P2); w1 / w2 (blocks, C, k, lanes). A factor's gradient given as None is not
    computed (the fused backward takes dw2 from the input gradient). The row factor's
    tasks read the planes transposed.

    A task is a chunk of images and one factor, every block of filters and channel inside,
    so that an image's input and output gradient are read into cache once; with fewer
    chunks than that keeps the threads busy, a task is also one block of filters and group
    of CHANNEL_GROUP channels."""
    cdef Py_ssize_t images = xp.shape[0], channels = xp.shape[1], blocks = gl.shape[1]
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Plane G = make_plane(padded, out, strides, dilations, w1.shape[2], w2.shape[2])
    cdef Py_ssize_t chunks = 0, per_chunk = 1
    cdef real_t[:, :, :, :, ::1] given = dw1 if dw1 is not None else dw2
    if given is None:
        return
    chunks = given.shape[0]
    if images:
        per_chunk = (images + chunks - 1) // max(chunks, 1)
    if (w1.shape[0] != blocks or w2.shape[0] != blocks or w1.shape[1] != channels
            or w2.shape[1] != channels or w1.shape[3] != lanes or w2.shape[3] != lanes
            or (dw1 is not None and (dw1.shape[0] != chunks or dw1.shape[1] != blocks
                                     or dw1.shape[2] != channels or dw1.shape[3] != G.k[0]
                                     or dw1.shape[4] != lanes))
            or (dw2 is not None and (dw2.shape[0] != chunks or dw2.shape[1] != blocks
                                     or dw2.shape[2] != channels or dw2.shape[3] != G.k[1]
                                     or dw2.shape[4] != lanes))
            or (images and (chunks < 1 or (images + per_chunk - 1) // per_chunk != chunks))
            or xp.shape[2] != G.P[0] * G.P[1] or gl.shape[0] != images
            or gl.shape[2] != G.O[0] * G.O[1] * lanes):
        raise ValueError("separable lane kernels: the arrays do not match the geometry")
    if dw1 is not None:
        dw1[...] = 0
    if dw2 is not None:
        dw2[...] = 0
    if images == 0 or channels == 0 or blocks == 0:
        return
    # the scratch holds STRIP rows of either pass along H: P2 wide, or P1 when transposed
    cdef size_t per_thread = aligned_count(CONVLAB_SEPV_STRIP * max(G.P[0], G.P[1]) * lanes,
                                           sizeof(real_t))
    cdef Py_ssize_t groups = (channels + CHANNEL_GROUP - 1) // CHANNEL_GROUP
    cdef Py_ssize_t thread_count = max(num_threads, 1), task, rest, part, chunk, factor, n
    cdef Py_ssize_t block, b0, b1, c0, c1, first = 0 if dw1 is not None else 1
    cdef Py_ssize_t factors = 2 if dw2 is not None else 1
    cdef Py_ssize_t x_image = channels * G.P[0] * G.P[1], g_image = blocks * G.O[0] * G.O[1] * lanes
    cdef Py_ssize_t plane = G.P[0] * G.P[1], g_plane = G.O[0] * G.O[1] * lanes
    cdef Py_ssize_t parts = 1
    if chunks * (factors - first) < 4 * thread_count:
        parts = blocks * groups
    cdef Py_ssize_t dw1_chunk = blocks * channels * G.k[0] * lanes
    cdef Py_ssize_t dw2_chunk = blocks * channels * G.k[1] * lanes
    cdef const real_t* x0 = &xp[0, 0, 0]
    cdef const real_t* g0 = &gl[0, 0, 0]
    cdef real_t* dw1_data = NULL
    cdef real_t* dw2_data = NULL
    cdef real_t* b
    cdef void* memory
    if dw1 is not None:
        dw1_data = &dw1[0, 0, 0, 0, 0]
    if dw2 is not None:
        dw2_data = &dw2[0, 0, 0, 0, 0]
    memory = malloc(thread_count * per_thread * sizeof(real_t) + 64)
    if memory == NULL:
        raise MemoryError("separable_conv_grad_weights: cannot allocate the pass buffers")
    try:
        with nogil:
            for task in prange(chunks * (factors - first) * parts, num_threads=num_threads,
                               schedule='dynamic'):
                chunk = task // ((factors - first) * parts)
                rest = task % ((factors - first) * parts)
                factor = first + rest // parts
                part = rest % parts
                if parts == 1:
                    b0, b1, c0, c1 = 0, blocks, 0, channels
                else:
                    b0 = part // groups
                    b1 = b0 + 1
                    c0 = (part % groups) * CHANNEL_GROUP
                    c1 = min(c0 + CHANNEL_GROUP, channels)
                b = <real_t*>((<size_t>memory + 63) // 64 * 64) + threadid() * per_thread
                for n in range(chunk * per_chunk, min((chunk + 1) * per_chunk, images)):
                    for block in range(b0, b1):
                        factor_pass(x0 + n * x_image + c0 * plane, plane, c1 - c0,
                                    g0 + n * g_image + block * g_plane, factor == 0,
                                    &w1[block, c0, 0, 0], &w2[block, c0, 0, 0], G, b,
                                    (dw1_data + chunk * dw1_chunk
                                     + ((block * channels + c0) * G.k[0]) * lanes)
                                    if factor == 0 else
                                    (dw2_data + chunk * dw2_chunk
                                     + ((block * channels + c0) * G.k[1]) * lanes))
    finally:
        free(memory)


cdef void factor_pass(const real_t* x, Py_ssize_t plane, Py_ssize_t channels, const real_t* g,
                      bint row_factor, const real_t* w1, const real_t* w2, Plane G, real_t* b,
                      real_t* target) noexcept nogil:
    # One image, one block of filters, `channels` channels: the column factor's gradient
    # (w1's pass along H, contracted along W), or the row factor's through transposed
    # strides (w2's pass along W, contracted along H); added to target.
    if row_factor:
        # rows of x^T are x's columns (stride 1, samples P2 apart), rows of G^T are G's
        # columns (vectors O2 apart)
        if real_t is float:
            convlab_sepv_factor_task_float(
                x, 0, plane, 1, G.P[1], channels, g, 0, 1, G.O[1], 1, G.P[0], w2, G.k[1],
                G.s[1], G.dl[1], G.k[0], G.s[0], G.dl[0], G.O[1], G.O[0], b, target)
        else:
            convlab_sepv_factor_task_double(
                x, 0, plane, 1, G.P[1], channels, g, 0, 1, G.O[1], 1, G.P[0], w2, G.k[1],
                G.s[1], G.dl[1], G.k[0], G.s[0], G.dl[0], G.O[1], G.O[0], b, target)
    else:
        if real_t is float:
            convlab_sepv_factor_task_float(
                x, 0, plane, G.P[1], 1, channels, g, 0, G.O[1], 1, 1, G.P[1], w1, G.k[0],
                G.s[0], G.dl[0], G.k[1], G.s[1], G.dl[1], G.O[0], G.O[1], b, target)
        else:
            convlab_sepv_factor_task_double(
                x, 0, plane, G.P[1], 1, channels, g, 0, G.O[1], 1, 1, G.P[1], w1, G.k[0],
                G.s[0], G.dl[0], G.k[1], G.s[1], G.dl[1], G.O[0], G.O[1], b, target)


cdef extern from *:
    """
    #include <stdint.h>
    /* A float is NaN or infinite when its exponent bits are all ones: an integer test that
       the compiler vectorises (a floating-point sum would have to keep its order). */
    static int convlab_nonfinite32(const uint32_t *p, Py_ssize_t n) {
        uint32_t found = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            found |= (uint32_t)((p[i] & UINT32_C(0x7f800000)) == UINT32_C(0x7f800000));
        return found != 0;
    }
    static int convlab_nonfinite64(const uint64_t *p, Py_ssize_t n) {
        uint64_t found = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            found |= (uint64_t)((p[i] & UINT64_C(0x7ff0000000000000))
                                == UINT64_C(0x7ff0000000000000));
        return found != 0;
    }
    """
    int convlab_nonfinite32(const unsigned int* p, Py_ssize_t n) nogil
    int convlab_nonfinite64(const unsigned long long* p, Py_ssize_t n) nogil


cdef enum:
    FINITE_CHUNK = 1 << 16


def has_nonfinite(const unsigned char[::1] raw, int itemsize, int num_threads):
    """Whether the float32 (itemsize 4) or float64 (8) values whose bytes are `raw` hold a
    NaN or an infinity (complex values: their two parts, as floats)."""
    cdef Py_ssize_t count, chunks, c, start, length
    cdef int found = 0
    if itemsize not in (4, 8) or raw.shape[0] % itemsize:
        raise ValueError("has_nonfinite: raw must hold whole float32 or float64 values")
    count = raw.shape[0] // itemsize
    if count == 0:
        return False
    chunks = (count + FINITE_CHUNK - 1) // FINITE_CHUNK
    with nogil:
        for c in prange(chunks, num_threads=num_threads, schedule='static'):
            start = c * FINITE_CHUNK
            length = min(<Py_ssize_t>FINITE_CHUNK, count - start)
            if itemsize == 4:
                found |= convlab_nonfinite32(<const unsigned int*>&raw[0] + start, length)
            else:
                found |= convlab_nonfinite64(<const unsigned long long*>&raw[0] + start,
                                             length)
    return found != 0


def embed_planes(const real_t[:, :, ::1] src, Py_ssize_t height, Py_ssize_t width,
                 real_t[:, :, ::1] dst, Py_ssize_t rows, Py_ssize_t columns, Py_ssize_t top,
                 Py_ssize_t left, int num_threads):
    """dst[n, c] (rows x columns) = src[n, c] (height x width) placed at (top, left), zero
    elsewhere; the part of src that falls outside dst is dropped."""
    cdef Py_ssize_t planes = src.shape[0] * src.shape[1], task, n, c, i, r, j0, j1
    cdef size_t item = sizeof(real_t)
    cdef real_t* out
    cdef const real_t* row
    if (dst.shape[0] != src.shape[0] or dst.shape[1] != src.shape[1]
            or src.shape[2] != height * width or dst.shape[2] != rows * columns
            or height < 0 or width < 0 or rows < 0 or columns < 0):
        raise ValueError("embed_planes: the arrays do not match the plane sizes")
    j0 = min(max(left, 0), columns)                 # dst columns [j0, j1) come from src
    j1 = max(min(left + width, columns), j0)
    with nogil:
        for task in prange(planes, num_threads=num_threads, schedule='static'):
            n = task // src.shape[1]
            c = task % src.shape[1]
            for i in range(rows):
                out = &dst[n, c, i * columns]
                r = i - top
                if r < 0 or r >= height or j1 == j0:
                    memset(out, 0, <size_t>columns * item)
                    continue
                row = &src[n, c, r * width]
                memset(out, 0, <size_t>j0 * item)
                memcpy(out + j0, row + (j0 - left), <size_t>(j1 - j0) * item)
                memset(out + j1, 0, <size_t>(columns - j1) * item)
