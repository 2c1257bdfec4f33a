"""Locally connected (unshared) convolution kernels (private).

Every output location o has its own filters w[f, o, r], r = (c, m) running over the input
channels and kernel taps:

    forward        y[n, f, o]   = bias[f, o] + sum_r w[f, o, r] * xpad[n, rows[r] + bases[o]]
    input grad     dxpad[n, rows[r] + bases[o]] += sum_f w[f, o, r] * G[n, f, o]
    weight grad    dw[f, o, r] += sum_n G[n, f, o] * xpad[n, rows[r] + bases[o]]

where ``bases[o]`` is where the window of o starts in the padded input and ``rows[r]`` where
tap r sits inside the window (both computed by the caller; a true convolution is the same
with the taps of each kernel reversed in ``rows``).

The padded input is stored batch-last, ``xt[sample, n]`` with the batch padded with zeros to
whole vectors, so that every weight multiplies a vector of images (``_unshared_blocks.h``).
The output gradient of one location is gathered into such vectors in a per-thread buffer,
and the forward result of one location leaves through one. Nothing the size of the
unfolded input is ever made: the caller converts the batch a chunk at a time.

Parallelism: the forward pass splits the locations over the threads (each location writes
only its own outputs), the weight gradient its kernel slots (a tiled layer's slots in a
fixed number of parts); the input gradient, whose locations add into overlapping windows,
runs stripes of output rows whose windows do not overlap side by side.
"""

from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from convlab._kernels._fused cimport real_t

cdef extern from "_unshared_blocks.h" nogil:
    enum:
        CONVLAB_LANES_FLOAT
        CONVLAB_LANES_DOUBLE
    void convlab_local_forward_float(const float* x, const Py_ssize_t* rows, Py_ssize_t nrows,
                                     const float* w, Py_ssize_t wstride, Py_ssize_t filters,
                                     Py_ssize_t nvec, float* out)
    void convlab_local_forward_double(const double* x, const Py_ssize_t* rows,
                                      Py_ssize_t nrows, const double* w, Py_ssize_t wstride,
                                      Py_ssize_t filters, Py_ssize_t nvec, double* out)
    void convlab_local_grad_input_float(float* dx, const Py_ssize_t* rows, Py_ssize_t nrows,
                                        const float* w, Py_ssize_t wstride,
                                        Py_ssize_t filters, const float* g,
                                        Py_ssize_t gstride, Py_ssize_t nvec)
    void convlab_local_grad_input_double(double* dx, const Py_ssize_t* rows,
                                         Py_ssize_t nrows, const double* w,
                                         Py_ssize_t wstride, Py_ssize_t filters,
                                         const double* g, Py_ssize_t gstride,
                                         Py_ssize_t nvec)
    void convlab_local_grad_weight_float(float* dw, Py_ssize_t wstride, Py_ssize_t filters,
                                         const float* const* xs, Py_ssize_t nloc,
                                         const Py_ssize_t* rows, Py_ssize_t nrows,
                                         const float* g, Py_ssize_t gstride,
                                         Py_ssize_t lstride, Py_ssize_t width)
    void convlab_local_grad_weight_double(double* dw, Py_ssize_t wstride, Py_ssize_t filters,
                                          const double* const* xs, Py_ssize_t nloc,
                                          const Py_ssize_t* rows, Py_ssize_t nrows,
                                          const double* g, Py_ssize_t gstride,
                                          Py_ssize_t lstride, Py_ssize_t width)


def lanes(dtype):
    """Images per vector of the kernels for `dtype` (the batch is padded to a multiple)."""
    return CONVLAB_LANES_FLOAT if dtype.itemsize == 4 else CONVLAB_LANES_DOUBLE


cdef inline Py_ssize_t lanes_of(real_t* dummy) noexcept nogil:
    if real_t is float:
        return CONVLAB_LANES_FLOAT
    else:
        return CONVLAB_LANES_DOUBLE


def to_batch_last(const real_t[:, :, ::1] x, real_t[:, ::1] xt, tuple in_sizes,
                  tuple padded, tuple before, int num_threads):
    """xt[(c, i + before), n] = x[n, c, i], zero elsewhere (the padding, the lanes past the
    batch). x (N, C, prod(in_sizes)), xt (C * prod(padded), lanes); three spatial axes."""
    cdef Py_ssize_t images = x.shape[0], channels = x.shape[1], width = xt.shape[1]
    cdef Py_ssize_t n0 = in_sizes[0], n1 = in_sizes[1], n2 = in_sizes[2]
    cdef Py_ssize_t p0 = padded[0], p1 = padded[1], p2 = padded[2]
    cdef Py_ssize_t b0 = before[0], b1 = before[1], b2 = before[2]
    cdef Py_ssize_t line, c, i0, i1, i2, j, n, lo, hi
    cdef real_t* out
    cdef const real_t* src
    with nogil:
        for line in prange(channels * p0 * p1, num_threads=num_threads, schedule='static'):
            c = line // (p0 * p1)
            i0 = (line // p1) % p0 - b0
            i1 = line % p1 - b1
            out = &xt[line * p2, 0]
            if i0 < 0 or i0 >= n0 or i1 < 0 or i1 >= n1:
                memset(out, 0, <size_t>(p2 * width) * sizeof(real_t))
                continue
            src = &x[0, c, (i0 * n1 + i1) * n2]
            # image by image, each image's row read in order (faster than reading the
            # images side by side, a sample from each, in same-process timings)
            lo = min(max(b2, 0), p2)
            hi = min(max(b2 + n2, lo), p2)
            memset(out, 0, <size_t>(lo * width) * sizeof(real_t))
            memset(out + hi * width, 0, <size_t>((p2 - hi) * width) * sizeof(real_t))
            for n in range(images):
                for j in range(lo, hi):
                    out[j * width + n] = src[n * channels * n0 * n1 * n2 + j - b2]
            if images < width:
                for j in range(lo, hi):
                    memset(out + j * width + images, 0,
                           <size_t>(width - images) * sizeof(real_t))


def from_batch_last(const real_t[:, ::1] xt, real_t[:, :, ::1] x, tuple in_sizes,
                    tuple padded, tuple before, int num_threads):
    """x[n, c, i] = xt[(c, i + before), n], the inverse of ``to_batch_last`` (input samples
    past the padded extent, which no window reads, get zero)."""
    cdef Py_ssize_t images = x.shape[0], channels = x.shape[1], width = xt.shape[1]
    cdef Py_ssize_t n0 = in_sizes[0], n1 = in_sizes[1], n2 = in_sizes[2]
    cdef Py_ssize_t p0 = padded[0], p1 = padded[1], p2 = padded[2]
    cdef Py_ssize_t b0 = before[0], b1 = before[1], b2 = before[2]
    cdef Py_ssize_t line, c, i0, i1, i2, j, n, plane = n0 * n1 * n2
    cdef real_t* out
    cdef const real_t* src
    with nogil:
        for line in prange(channels * n0 * n1, num_threads=num_threads, schedule='static'):
            c = line // (n0 * n1)
            i0 = (line // n1) % n0
            i1 = line % n1
            out = &x[0, c, (i0 * n1 + i1) * n2]
            if i0 + b0 >= p0 or i1 + b1 >= p1:
                for n in range(images):
                    memset(out + n * channels * plane, 0, <size_t>n2 * sizeof(real_t))
                continue
            src = &xt[((c * p0 + i0 + b0) * p1 + i1 + b1) * p2, 0]
            # image by image, writing each image's row in order (faster than a sample of
            # every image at a time, in same-process timings)
            for n in range(images):
                for i2 in range(n2):
                    j = i2 + b2
                    out[n * channels * plane + i2] = src[j * width + n] if j < p2 else 0


cdef inline void forward_location(const real_t* x, const Py_ssize_t* rows, Py_ssize_t nrows,
                                  const real_t* w, Py_ssize_t wstride, Py_ssize_t filters,
                                  Py_ssize_t nvec, real_t* out) noexcept nogil:
    if real_t is float:
        convlab_local_forward_float(x, rows, nrows, w, wstride, filters, nvec, out)
    else:
        convlab_local_forward_double(x, rows, nrows, w, wstride, filters, nvec, out)


cdef inline void grad_input_location(real_t* dx, const Py_ssize_t* rows, Py_ssize_t nrows,
                                     const real_t* w, Py_ssize_t wstride, Py_ssize_t filters,
                                     const real_t* g, Py_ssize_t gstride,
                                     Py_ssize_t nvec) noexcept nogil:
    if real_t is float:
        convlab_local_grad_input_float(dx, rows, nrows, w, wstride, filters, g, gstride, nvec)
    else:
        convlab_local_grad_input_double(dx, rows, nrows, w, wstride, filters, g, gstride, nvec)


cdef inline void grad_weight_locations(real_t* dw, Py_ssize_t wstride, Py_ssize_t filters,
                                       const real_t** xs, Py_ssize_t nloc,
                                       const Py_ssize_t* rows, Py_ssize_t nrows,
                                       const real_t* g, Py_ssize_t gstride, Py_ssize_t lstride,
                                       Py_ssize_t width) noexcept nogil:
    if real_t is float:
        convlab_local_grad_weight_float(dw, wstride, filters, xs, nloc, rows, nrows, g,
                                        gstride, lstride, width)
    else:
        convlab_local_grad_weight_double(dw, wstride, filters, xs, nloc, rows, nrows, g,
                                         gstride, lstride, width)


cdef inline void gather_location(const real_t* g, Py_ssize_t images, Py_ssize_t filters,
                                 Py_ssize_t locations, Py_ssize_t o, Py_ssize_t first,
                                 Py_ssize_t width, real_t* buf) noexcept nogil:
    # buf[f, j] = G[first + j, f, o], zero for the images past the batch
    cdef Py_ssize_t f, j
    for f in range(filters):
        for j in range(width):
            if first + j < images:
                buf[f * width + j] = g[((first + j) * filters + f) * locations + o]
            else:
                buf[f * width + j] = 0


def _check(const Py_ssize_t[::1] rows, const Py_ssize_t[::1] bases,
           const Py_ssize_t[::1] slots,
           Py_ssize_t nslots, Py_ssize_t samples, Py_ssize_t width, Py_ssize_t lanes):
    # The kernels trust these offsets; one wrong one would read or write out of bounds.
    cdef Py_ssize_t r, o, lo = 0, hi = 0
    if width % lanes:
        raise ValueError("local kernels: the batch width is not a whole number of vectors")
    if slots.shape[0] != bases.shape[0]:
        raise ValueError("local kernels: one kernel slot per location expected")
    for r in range(rows.shape[0]):
        lo = min(lo, rows[r])
        hi = max(hi, rows[r])
    for o in range(bases.shape[0]):
        if bases[o] + lo < 0 or bases[o] + hi + width > samples * width:
            raise ValueError("local kernels: a window reaches outside the padded input")
        if slots[o] < 0 or slots[o] >= nslots:
            raise ValueError("local kernels: a kernel slot is out of range")


def forward(const real_t[:, ::1] xt, const real_t[:, :, ::1] w, const real_t[:, ::1] bias,
            real_t[:, :, ::1] y, const Py_ssize_t[::1] rows, const Py_ssize_t[::1] bases,
            const Py_ssize_t[::1] slots, int num_threads):
    """y[n, f, o] = bias[f, s] + sum_r w[f, s, r] * xt[bases[o] + rows[r], n] with s = slots[o];
    xt (samples, width), w (F, S, R), bias (F, S) or (0, 0) for none, y (N, F, P) with
    N <= width."""
    cdef Py_ssize_t images = y.shape[0], filters = w.shape[0], nslots = w.shape[1]
    cdef Py_ssize_t nrows = w.shape[2], width = xt.shape[1], locations = y.shape[2]
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Py_ssize_t nvec = width // lanes, o, f, n, thread_count = max(num_threads, 1)
    cdef bint has_bias = bias.shape[0] > 0
    cdef real_t* buffers
    cdef real_t* buf
    cdef real_t b
    _check(rows, bases, slots, nslots, xt.shape[0], width, lanes)
    if images == 0 or locations == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * filters * width) * sizeof(real_t))
    if buffers == NULL:
        raise MemoryError("local_conv: cannot allocate the per-thread buffers")
    try:
        with nogil:
            # runs of 32 locations per thread: the outputs y[n, f, o] of neighbouring
            # locations share cache lines, which two threads should not write at once
            for o in prange(locations, num_threads=num_threads, schedule='dynamic',
                            chunksize=32):
                buf = buffers + threadid() * filters * width
                forward_location(&xt[0, 0] + bases[o], &rows[0], nrows, &w[0, slots[o], 0],
                                 nslots * nrows, filters, nvec, buf)
                for f in range(filters):
                    b = bias[f, slots[o]] if has_bias else 0
                    for n in range(images):
                        y[n, f, o] = buf[f * width + n] + b
    finally:
        free(buffers)


def grad_input(const real_t[:, :, ::1] g, const real_t[:, :, ::1] w, real_t[:, ::1] dxt,
               const Py_ssize_t[::1] rows, const Py_ssize_t[::1] bases,
               const Py_ssize_t[::1] slots, const Py_ssize_t[::1] stripes, int num_threads):
    """dxt[bases[o] + rows[r], n] = the sum over the locations o and filters f of
    w[f, slots[o], r] * G[n, f, o]; g (N, F, P), w (F, S, R), dxt (samples, width) with
    N <= width, zeroed here.

    The windows of neighbouring locations overlap, so two threads must not add the same
    samples at once. The locations come in stripes ``stripes[i]:stripes[i + 1]`` whose
    windows overlap only those of the next stripe: the even stripes run side by side, then
    the odd ones, each stripe a task over all the images. A single stripe has its image
    vectors split over the threads instead. Every sample adds its terms in the same order
    whatever the number of threads."""
    cdef Py_ssize_t images = g.shape[0], filters = w.shape[0], nslots = w.shape[1]
    cdef Py_ssize_t nrows = w.shape[2], width = dxt.shape[1], samples = dxt.shape[0]
    cdef Py_ssize_t locations = g.shape[2], nstripes = stripes.shape[0] - 1
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Py_ssize_t nvec = width // lanes, thread_count = max(num_threads, 1)
    cdef Py_ssize_t ranges = 1, task, v0, v1, o, lo, hi, i, parity
    cdef Py_ssize_t zero_steps = max(1, min(samples, 64))
    cdef real_t* buffers
    cdef real_t* buf
    _check(rows, bases, slots, nslots, samples, width, lanes)
    if nstripes < 1 or stripes[0] != 0 or stripes[nstripes] != locations:
        raise ValueError("local kernels: the stripes do not cover the locations")
    for i in range(nstripes):
        if stripes[i + 1] < stripes[i]:
            raise ValueError("local kernels: the stripes are out of order")
    if nstripes == 1:
        ranges = max(1, min(nvec, num_threads))
    if samples == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * filters * width) * sizeof(real_t))
    if buffers == NULL:
        raise MemoryError("local_conv_grad_input: cannot allocate the per-thread buffers")
    try:
        with nogil:
            for task in prange(zero_steps, num_threads=num_threads, schedule='static'):
                lo = samples * task // zero_steps
                hi = samples * (task + 1) // zero_steps
                memset(&dxt[lo, 0], 0, <size_t>((hi - lo) * width) * sizeof(real_t))
            if images > 0 and nstripes > 1:
                for parity in range(2):
                    for task in prange((nstripes - parity + 1) // 2, num_threads=num_threads,
                                       schedule='dynamic', chunksize=1):
                        i = 2 * task + parity
                        buf = buffers + threadid() * filters * width
                        for o in range(stripes[i], stripes[i + 1]):
                            gather_location(&g[0, 0, 0], images, filters, locations, o, 0,
                                            width, buf)
                            grad_input_location(&dxt[0, 0] + bases[o], &rows[0], nrows,
                                                &w[0, slots[o], 0], nslots * nrows, filters,
                                                buf, width, nvec)
            elif images > 0:
                for task in prange(ranges, num_threads=num_threads, schedule='static',
                                   chunksize=1):
                    v0 = nvec * task // ranges
                    v1 = nvec * (task + 1) // ranges
                    buf = buffers + filters * v0 * lanes
                    for o in range(locations):
                        gather_location(&g[0, 0, 0], images, filters, locations, o, v0 * lanes,
                                        (v1 - v0) * lanes, buf)
                        grad_input_location(&dxt[0, 0] + bases[o] + v0 * lanes, &rows[0],
                                            nrows, &w[0, slots[o], 0], nslots * nrows,
                                            filters, buf, (v1 - v0) * lanes, v1 - v0)
    finally:
        free(buffers)


def grad_weight(const real_t[:, :, ::1] g, const real_t[:, ::1] xt, real_t[:, :, :, ::1] dw,
                const Py_ssize_t[::1] rows, const Py_ssize_t[::1] bases,
                const Py_ssize_t[::1] slots, const Py_ssize_t[::1] order,
                const Py_ssize_t[::1] starts, Py_ssize_t group,
                bint accumulate, int num_threads):
    """dw[p, f, s, r] (+)= sum_n G[n, f, o] * xt[bases[o] + rows[r], n] summed over the p-th of
    ``dw.shape[0]`` equal ranges of the locations o of slot s, which are
    ``order[starts[s]:starts[s + 1]]``, up to `group` locations at a time; without
    `accumulate` the sums replace dw. g (N, F, P), xt (samples, width) with N <= width,
    dw (parts, F, S, R). Each (slot, part) is one task: no two tasks write the same weights."""
    cdef Py_ssize_t images = g.shape[0], parts = dw.shape[0], filters = dw.shape[1]
    cdef Py_ssize_t nslots = dw.shape[2], nrows = dw.shape[3], width = xt.shape[1]
    cdef Py_ssize_t locations = g.shape[2]
    cdef Py_ssize_t lanes = lanes_of(<real_t*>NULL)
    cdef Py_ssize_t thread_count = max(num_threads, 1)
    cdef Py_ssize_t task, part, s, i, j, f, first, last, count, nloc
    cdef Py_ssize_t lstride = filters * width
    cdef real_t* buffers
    cdef const real_t** pointers
    cdef real_t* buf
    cdef const real_t** xs
    _check(rows, bases, slots, nslots, xt.shape[0], width, lanes)
    if order.shape[0] != locations or starts.shape[0] != nslots + 1 or starts[0] != 0 \
            or starts[nslots] != locations:
        raise ValueError("local kernels: the locations by slot do not cover the locations")
    for s in range(nslots):
        if starts[s + 1] < starts[s]:
            raise ValueError("local kernels: the locations by slot do not cover the locations")
        for i in range(starts[s], starts[s + 1]):
            if order[i] < 0 or order[i] >= locations or slots[order[i]] != s:
                raise ValueError("local kernels: a location is listed under the wrong slot")
    group = max(group, 1)
    if images == 0 or filters == 0 or nrows == 0:
        return
    buffers = <real_t*>malloc(<size_t>(thread_count * group * lstride) * sizeof(real_t))
    pointers = <const real_t**>malloc(<size_t>(thread_count * group) * sizeof(real_t*))
    if buffers == NULL or pointers == NULL:
        free(buffers)
        free(pointers)
        raise MemoryError("local_conv_grad_weight: cannot allocate the per-thread buffers")
    try:
        with nogil:
            for task in prange(nslots * parts, num_threads=num_threads, schedule='dynamic',
                               chunksize=4):
                buf = buffers + threadid() * group * lstride
                xs = pointers + threadid() * group
                s = task // parts
                part = task % parts
                if not accumulate:
                    for f in range(filters):
                        memset(&dw[part, f, s, 0], 0, <size_t>nrows * sizeof(real_t))
                count = starts[s + 1] - starts[s]
                first = starts[s] + count * part // parts
                last = starts[s] + count * (part + 1) // parts
                while first < last:
                    nloc = min(group, last - first)
                    for j in range(nloc):
                        gather_location(&g[0, 0, 0], images, filters, locations,
                                        order[first + j], 0, width, buf + j * lstride)
                        xs[j] = &xt[0, 0] + bases[order[first + j]]
                    grad_weight_locations(&dw[part, 0, s, 0], nslots * nrows, filters, xs,
                                          nloc, &rows[0], nrows, buf, width, lstride, width)
                    first = first + nloc
    finally:
        free(buffers)
        free(pointers)
