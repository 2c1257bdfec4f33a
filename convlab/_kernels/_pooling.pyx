"""Pooling kernels (private): max, average and Lp pooling and their gradients.

Each (n, c) plane of the input is pooled on its own. Along spatial axis a, window o covers
the padded samples ``o * s[a] - p[a] + r``, ``0 <= r < k[a]``; the padding is never stored:
a window loop runs over the samples that lie in the input only. That is exact for every
operation because padding never wins a maximum (it is -inf, and a window always holds a
real sample since p <= k // 2), adds 0 to a sum and to an Lp norm, and only counts in the
divisor of a mean with ``include_pad``. One- and two-dimensional problems come padded to
three axes with leading axes of extent 1 (k = s = 1, p = 0).

Per window, in row-major window order:

    max      y = x[first maximum]       a NaN beats every number; the first NaN wins
    mean     y = (sum x) / divisor      divisor: prod(k), or the samples in the input
    Lp       y = m * (sum (|x| / m)^p)^(1/p),  m = max |x|    (no term above 1: no overflow)
    L1       y = sum |x|
    Linf     y = |x[first maximum of |x|]|

Gradients (dx of one sample = the sum over the windows holding it, in row-major window
order):

    max      g to the window's first maximum, 0 to the others
    mean     g / divisor to every sample of the window
    Lp       g * sign(x) * (|x| / y)^(p - 1), 0 in a window whose norm y is 0
    Linf     g * sign(x) to the first maximum of |x|

Three ways to compute them, which give the same bits (each sample of dx is 0 + its shares
in row-major window order):

- windows that do not overlap (stride >= size along every axis): a task per output row
  recomputes each window's maximum or norm from x and writes the samples of its cell (its
  window and the gap up to the next window), no stored positions (the 2 x 2 loops, the
  mean and Lp write every sample of dx once; the generic max clears its rows first);
- overlapping windows, many planes: a task per plane clears its dx and adds the windows'
  shares to it, window after window (each window's maximum or norm recomputed from x);
- overlapping windows, few planes (too few tasks for the threads): the caller first
  stores each window's maximum's position (or its norm, which is the forward result), then
  a task per input row gathers, for each sample, the shares of the windows holding it.

2 x 2 windows with stride 2 and no padding go through the vector loops of
``_pooling_rows.h``, and so do the max and mean windows of an output row that lie inside
the input along the last axis (side by side, one pass over the row per window sample);
they compute the same values in the same order as the window-by-window loops. Every
output and every sample of dx is computed by one task in a fixed order, so the results do
not depend on the number of threads. (The module is compiled without fused multiply-adds,
so that every path rounds exactly as written.)
"""

from cython.parallel cimport parallel, prange
from libc.stdlib cimport free, malloc
from libc.math cimport pow, powf, sqrt, sqrtf, fabs, fabsf, INFINITY
from libc.string cimport memset

from convlab._kernels._fused cimport real_t, floor_div, ceil_div

cdef extern from "_pooling_rows.h" nogil:
    void convlab_max_pairs_float(const float* a, const float* b, float* out, Py_ssize_t m)
    void convlab_max_pairs_double(const double* a, const double* b, double* out, Py_ssize_t m)
    void convlab_mean_pairs_float(const float* a, const float* b, float* out, Py_ssize_t m)
    void convlab_mean_pairs_double(const double* a, const double* b, double* out,
                                   Py_ssize_t m)
    void convlab_max_pairs_grad_float(const float* a, const float* b, const float* g,
                                      float* da, float* db, Py_ssize_t m)
    void convlab_max_pairs_grad_double(const double* a, const double* b, const double* g,
                                       double* da, double* db, Py_ssize_t m)
    void convlab_mean_pairs_grad_float(const float* g, float* da, float* db, Py_ssize_t m)
    void convlab_mean_pairs_grad_double(const double* g, double* da, double* db, Py_ssize_t m)
    void convlab_window_max_float(const float* plane, Py_ssize_t n1, Py_ssize_t n2,
                                  Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,
                                  Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,
                                  Py_ssize_t stride, Py_ssize_t m, float* top, float* win)
    void convlab_window_max_double(const double* plane, Py_ssize_t n1, Py_ssize_t n2,
                                   Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,
                                   Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,
                                   Py_ssize_t stride, Py_ssize_t m, double* top, double* win)
    void convlab_window_sum_float(const float* plane, Py_ssize_t n1, Py_ssize_t n2,
                                  Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,
                                  Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,
                                  Py_ssize_t stride, Py_ssize_t m, float* total)
    void convlab_window_sum_double(const double* plane, Py_ssize_t n1, Py_ssize_t n2,
                                   Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,
                                   Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,
                                   Py_ssize_t stride, Py_ssize_t m, double* total)


cdef enum:
    # Input samples a thread takes at a time (in whole rows of tasks): a thread slowed down
    # by other work on its core leaves the rest to the others, and each chunk is still
    # long enough that handing it out costs nothing.
    CHUNK_SAMPLES = 16384


cdef inline Py_ssize_t chunk_rows(Py_ssize_t per_row) noexcept nogil:
    return max(1, CHUNK_SAMPLES // max(per_row, 1))


cdef enum:
    MAX = 0
    MEAN = 1
    LP = 2
    LP_INF = 3

OP_MAX = MAX
OP_MEAN = MEAN
OP_LP = LP
OP_LP_INF = LP_INF


cdef struct Geom:
    Py_ssize_t n[3]         # input extent per axis
    Py_ssize_t k[3]         # window size
    Py_ssize_t s[3]         # stride
    Py_ssize_t p[3]         # padding before (and after) the input
    Py_ssize_t out[3]       # windows per axis
    int op
    double power            # p of Lp pooling (LP only)
    double window_size      # prod(k), the divisor of a mean with include_pad
    bint include_pad
    bint vectors            # the vector loops of _pooling_rows.h may be used
    bint pairs              # ... and these are 2 x 2 windows, stride 2, no padding


cdef Geom make_geom(tuple in_sizes, tuple out_sizes, tuple k, tuple s, tuple p, int op,
                    double power, bint include_pad, bint allow_vectors) except *:
    # The loops trust this geometry: check it once, here, so that no window reaches outside
    # its plane whatever the caller passed.
    cdef Geom g
    cdef int a
    if not (len(in_sizes) == len(out_sizes) == len(k) == len(s) == len(p) == 3):
        raise ValueError("pooling kernels: three spatial axes expected")
    g.window_size = 1
    for a in range(3):
        g.n[a] = in_sizes[a]
        g.k[a] = k[a]
        g.s[a] = s[a]
        g.p[a] = p[a]
        g.out[a] = out_sizes[a]
        if g.n[a] < 1 or g.k[a] < 1 or g.s[a] < 1 or not 0 <= g.p[a] <= g.k[a] // 2:
            raise ValueError("pooling kernels: invalid window geometry")
        if (g.n[a] + 2 * g.p[a] < g.k[a]
                or g.out[a] != floor_div(g.n[a] + 2 * g.p[a] - g.k[a], g.s[a]) + 1):
            raise ValueError("pooling kernels: the output size does not match the windows")
        g.window_size *= <double>g.k[a]
    if op not in (MAX, MEAN, LP, LP_INF):
        raise ValueError("pooling kernels: unknown operation")
    if op == LP and not power >= 1:
        raise ValueError("pooling kernels: p must be >= 1")
    g.op = op
    g.power = power
    g.include_pad = include_pad
    g.vectors = allow_vectors
    g.pairs = (allow_vectors and (op == MAX or op == MEAN) and g.k[0] == 1
               and g.k[1] == 2 and g.k[2] == 2 and g.s[1] == 2 and g.s[2] == 2
               and g.p[1] == 0 and g.p[2] == 0)
    return g


cdef void check_planes(Py_ssize_t expected, Py_ssize_t got, str name) except *:
    if got != expected:
        raise ValueError(f"pooling kernels: {name} has {got} planes, expected {expected}")


cdef tuple spatial(Py_ssize_t* shape):
    return (shape[1], shape[2], shape[3])


cdef void check_extent(tuple got, tuple expected, str name) except *:
    if got != expected:
        raise ValueError(f"pooling kernels: {name} has spatial extent {got}, expected "
                         f"{expected}")


# ----------------------------------------------------------------------------- one window

cdef struct Span:
    Py_ssize_t lo, hi


# (Spans are returned by value: a variable assigned through a pointer inside a prange body
# would be shared between the threads.)

cdef inline Span window(const Geom* g, int a, Py_ssize_t o) noexcept nogil:
    # the samples [lo, hi) of window o along axis a that lie in the input
    cdef Py_ssize_t start = o * g.s[a] - g.p[a]
    cdef Span r
    r.lo = start if start > 0 else 0
    r.hi = start + g.k[a] if start + g.k[a] < g.n[a] else g.n[a]
    return r


cdef inline Span cell(const Geom* g, int a, Py_ssize_t o) noexcept nogil:
    # the samples [lo, hi) between the start of window o and the start of the next one (to
    # the end of the input for the last window): windows that do not overlap have disjoint
    # cells, and the cells of one axis cover it
    cdef Py_ssize_t start = o * g.s[a] - g.p[a]
    cdef Span r
    r.lo = start if start > 0 else 0
    r.hi = start + g.s[a] if o + 1 < g.out[a] else g.n[a]
    if r.hi > g.n[a]:
        r.hi = g.n[a]
    return r


cdef inline Span holders(const Geom* g, int a, Py_ssize_t i) noexcept nogil:
    # the windows [lo, hi) along axis a that hold sample i: o s - p <= i <= o s - p + k - 1
    cdef Span r
    r.lo = ceil_div(i + g.p[a] - g.k[a] + 1, g.s[a])
    if r.lo < 0:
        r.lo = 0
    r.hi = floor_div(i + g.p[a], g.s[a]) + 1
    if r.hi > g.out[a]:
        r.hi = g.out[a]
    return r


cdef inline real_t magnitude(real_t v) noexcept nogil:
    if real_t is float:
        return fabsf(v)
    else:
        return fabs(v)


cdef inline real_t raise_to(real_t base, double exponent) noexcept nogil:
    if real_t is float:
        return powf(base, <float>exponent)
    else:
        return pow(base, exponent)


cdef inline real_t sign(real_t v) noexcept nogil:
    # 0 stays 0 and NaN stays NaN
    if v > 0:
        return 1
    if v < 0:
        return -1
    return v


cdef inline bint replaces(real_t v, real_t best) noexcept nogil:
    # the first maximum in row-major order wins; a NaN beats every number, the first NaN
    # wins: v replaces a best that is a number when v is not at most it (larger, or NaN)
    return not (v <= best) and best == best


cdef struct Box:
    # the samples of one window that lie in the input: [lo[a], hi[a]) along each axis
    Py_ssize_t lo[3]
    Py_ssize_t hi[3]


cdef inline Box window_box(const Geom* g, Py_ssize_t o0, Py_ssize_t o1,
                           Py_ssize_t o2) noexcept nogil:
    cdef Box b
    cdef Span w
    w = window(g, 0, o0)
    b.lo[0] = w.lo
    b.hi[0] = w.hi
    w = window(g, 1, o1)
    b.lo[1] = w.lo
    b.hi[1] = w.hi
    w = window(g, 2, o2)
    b.lo[2] = w.lo
    b.hi[2] = w.hi
    return b


cdef inline Py_ssize_t window_argmax(const real_t* x, const Geom* g, Py_ssize_t o0,
                                     Py_ssize_t o1, Py_ssize_t o2,
                                     bint absolute) noexcept nogil:
    # where (in the plane) the window's first maximum of x (or of |x|) sits
    cdef Box b = window_box(g, o0, o1, o2)
    cdef Py_ssize_t i0, i1, i2, row, best
    cdef real_t v, top
    cdef bint r
    best = (b.lo[0] * g.n[1] + b.lo[1]) * g.n[2] + b.lo[2]
    top = magnitude(x[best]) if absolute else x[best]
    for i0 in range(b.lo[0], b.hi[0]):
        for i1 in range(b.lo[1], b.hi[1]):
            row = (i0 * g.n[1] + i1) * g.n[2]
            for i2 in range(b.lo[2], b.hi[2]):
                v = magnitude(x[row + i2]) if absolute else x[row + i2]
                # selects rather than a branch (which random data mispredicts)
                r = replaces(v, top)
                top = v if r else top
                best = row + i2 if r else best
    return best


cdef inline double divisor(const Geom* g, Py_ssize_t o0, Py_ssize_t o1,
                           Py_ssize_t o2) noexcept nogil:
    # a mean divides by the window size, or by its samples in the input without include_pad
    cdef Box b
    if g.include_pad:
        return g.window_size
    b = window_box(g, o0, o1, o2)
    return <double>((b.hi[0] - b.lo[0]) * (b.hi[1] - b.lo[1]) * (b.hi[2] - b.lo[2]))


cdef inline real_t window_sum(const real_t* x, const Geom* g, Py_ssize_t o0, Py_ssize_t o1,
                              Py_ssize_t o2, bint absolute) noexcept nogil:
    # sum of x (or |x|) over the window's samples in the input (the padding adds 0)
    cdef Box b = window_box(g, o0, o1, o2)
    cdef Py_ssize_t i0, i1, i2, row
    # -0.0 + v == v for every v: the sum starts with the first sample, sign of zero included
    cdef real_t total = -0.0
    for i0 in range(b.lo[0], b.hi[0]):
        for i1 in range(b.lo[1], b.hi[1]):
            row = (i0 * g.n[1] + i1) * g.n[2]
            for i2 in range(b.lo[2], b.hi[2]):
                total += magnitude(x[row + i2]) if absolute else x[row + i2]
    return total


cdef inline real_t window_lp(const real_t* x, const Geom* g, Py_ssize_t o0, Py_ssize_t o1,
                             Py_ssize_t o2) noexcept nogil:
    # (sum |x|^p)^(1/p) = m (sum (|x| / m)^p)^(1/p) with m = max |x|: every term is at most
    # 1, so nothing overflows however large p is
    cdef Box b
    cdef Py_ssize_t i0, i1, i2, row
    cdef real_t m, t, total = 0
    cdef double p = g.power
    if p == 1:
        return window_sum(x, g, o0, o1, o2, True)
    m = magnitude(x[window_argmax(x, g, o0, o1, o2, True)])
    if not (m > 0 and m < INFINITY):
        return m        # all zeros: 0; an infinity: inf; a NaN: NaN
    b = window_box(g, o0, o1, o2)
    for i0 in range(b.lo[0], b.hi[0]):
        for i1 in range(b.lo[1], b.hi[1]):
            row = (i0 * g.n[1] + i1) * g.n[2]
            for i2 in range(b.lo[2], b.hi[2]):
                t = magnitude(x[row + i2]) / m
                total += t * t if p == 2 else raise_to(t, p)
    if p == 2:
        if real_t is float:
            return m * sqrtf(total)
        else:
            return m * sqrt(total)
    return m * raise_to(total, 1 / p)


cdef inline real_t window_value(const real_t* x, const Geom* g, Py_ssize_t o0, Py_ssize_t o1,
                                Py_ssize_t o2) noexcept nogil:
    if g.op == MAX:
        return x[window_argmax(x, g, o0, o1, o2, False)]
    if g.op == MEAN:
        return window_sum(x, g, o0, o1, o2, False) / <real_t>divisor(g, o0, o1, o2)
    if g.op == LP_INF:
        return magnitude(x[window_argmax(x, g, o0, o1, o2, True)])
    return window_lp(x, g, o0, o1, o2)


cdef inline real_t lp_share(const Geom* g, real_t grad, real_t v, real_t norm) noexcept nogil:
    # d y / d x times the output gradient: grad sign(x) (|x| / y)^(p - 1); a window whose
    # norm is 0 (all zeros) has no gradient
    if norm == 0:
        return 0
    if g.power == 1:
        return grad * sign(v)
    if g.power == 2:
        return grad * (v / norm)
    return grad * sign(v) * raise_to(magnitude(v) / norm, g.power - 1)


cdef inline real_t share(const Geom* g, const real_t* xp, Py_ssize_t at, Py_ssize_t chosen,
                         real_t grad, real_t norm, Py_ssize_t o0, Py_ssize_t o1,
                         Py_ssize_t o2) noexcept nogil:
    # what window o gives the sample at position `at` of its plane (`chosen`: the position
    # of the window's maximum, `norm`: its Lp norm)
    if g.op == MAX:
        return grad if at == chosen else 0
    if g.op == LP_INF:
        return grad * sign(xp[at]) if at == chosen else 0
    if g.op == MEAN:
        return grad / <real_t>divisor(g, o0, o1, o2)
    return lp_share(g, grad, xp[at], norm)


# ----------------------------------------------------------------------------- output rows

cdef inline Span interior(const Geom* g) noexcept nogil:
    # the outputs along the last axis whose windows lie inside the input (o s - p >= 0 and
    # o s - p + k <= n): the same columns of the same rows for each, which the vector loops
    # of _pooling_rows.h run side by side
    cdef Span r
    r.lo = min(ceil_div(g.p[2], g.s[2]), g.out[2])
    r.hi = min(floor_div(g.n[2] - g.k[2] + g.p[2], g.s[2]) + 1, g.out[2])
    if r.hi < r.lo:
        r.hi = r.lo
    return r


cdef void row_values(const real_t* xp, const Geom* g, Span inner, Py_ssize_t o0,
                     Py_ssize_t o1, real_t* yrow) noexcept nogil:
    # yrow[o2] = window_value(o0, o1, o2) for the whole output row; max and mean windows
    # inside the input along the last axis in vectors
    cdef Py_ssize_t o2, first, m = inner.hi - inner.lo
    cdef Span w0, w1
    if m == 0 or not g.vectors or not (g.op == MAX or g.op == MEAN):
        for o2 in range(g.out[2]):
            yrow[o2] = window_value(xp, g, o0, o1, o2)
        return
    for o2 in range(inner.lo):
        yrow[o2] = window_value(xp, g, o0, o1, o2)
    w0 = window(g, 0, o0)
    w1 = window(g, 1, o1)
    first = inner.lo * g.s[2] - g.p[2]
    if g.op == MAX:
        if real_t is float:
            convlab_window_max_float(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                     g.k[2], g.s[2], m, yrow + inner.lo, NULL)
        else:
            convlab_window_max_double(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                      g.k[2], g.s[2], m, yrow + inner.lo, NULL)
    else:
        if real_t is float:
            convlab_window_sum_float(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                     g.k[2], g.s[2], m, yrow + inner.lo)
        else:
            convlab_window_sum_double(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                      g.k[2], g.s[2], m, yrow + inner.lo)
        for o2 in range(inner.lo, inner.hi):
            yrow[o2] = yrow[o2] / <real_t>divisor(g, o0, o1, o2)
    for o2 in range(inner.hi, g.out[2]):
        yrow[o2] = window_value(xp, g, o0, o1, o2)


cdef void row_argmax(const real_t* xp, const Geom* g, Span inner, Py_ssize_t o0,
                     Py_ssize_t o1, bint absolute, Py_ssize_t* pos, real_t* top,
                     real_t* win) noexcept nogil:
    # pos[o2] = window_argmax(o0, o1, o2) for the whole output row; the maxima of x (not
    # |x|) inside the input along the last axis in vectors, which find each winner's place
    # q in its window's row-major order (top, win: scratch of out[2] samples)
    cdef Py_ssize_t o2, j, q, r, first, m = inner.hi - inner.lo, rows1
    cdef Span w0, w1
    w0 = window(g, 0, o0)
    w1 = window(g, 1, o1)
    rows1 = w1.hi - w1.lo
    # q is held in a real_t: exact below 2^24 in float
    if (m == 0 or absolute or not g.vectors or (real_t is float and
                               (w0.hi - w0.lo) * rows1 * g.k[2] > (1 << 24))):
        for o2 in range(g.out[2]):
            pos[o2] = window_argmax(xp, g, o0, o1, o2, absolute)
        return
    for o2 in range(inner.lo):
        pos[o2] = window_argmax(xp, g, o0, o1, o2, absolute)
    first = inner.lo * g.s[2] - g.p[2]
    if real_t is float:
        convlab_window_max_float(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                 g.k[2], g.s[2], m, top, win)
    else:
        convlab_window_max_double(xp, g.n[1], g.n[2], w0.lo, w0.hi, w1.lo, w1.hi, first,
                                  g.k[2], g.s[2], m, top, win)
    for j in range(m):
        q = <Py_ssize_t>win[j]
        r = q // g.k[2]
        pos[inner.lo + j] = (((w0.lo + r // rows1) * g.n[1] + w1.lo + r % rows1) * g.n[2]
                             + first + j * g.s[2] + q % g.k[2])
    for o2 in range(inner.hi, g.out[2]):
        pos[o2] = window_argmax(xp, g, o0, o1, o2, absolute)


# ----------------------------------------------------------------------------- forward

def forward(const real_t[:, :, :, ::1] x, real_t[:, :, :, ::1] y, tuple k, tuple s, tuple p,
            int op, double power, bint include_pad, bint allow_vectors, int num_threads):
    """y[plane, o] = the pooled window o of x[plane]; x (planes, *in), y (planes, *out),
    three spatial axes. A task is one output row."""
    cdef Geom g = make_geom(spatial(x.shape), spatial(y.shape), k, s, p, op, power,
                            include_pad, allow_vectors)
    cdef Py_ssize_t planes = x.shape[0], rows, chunk, task, plane, o0, o1
    cdef Span inner = interior(&g)
    cdef const real_t* xp
    cdef const real_t* a
    cdef real_t* yrow
    check_planes(planes, y.shape[0], "y")
    rows = planes * g.out[0] * g.out[1]
    chunk = chunk_rows(g.k[0] * g.k[1] * g.n[2])
    if rows == 0:
        return
    with nogil:
        for task in prange(rows, num_threads=num_threads, schedule='dynamic', chunksize=chunk):
            plane = task // (g.out[0] * g.out[1])
            o0 = (task // g.out[1]) % g.out[0]
            o1 = task % g.out[1]
            xp = &x[plane, 0, 0, 0]
            yrow = &y[plane, o0, o1, 0]
            if g.pairs:
                # input rows 2 o1 and 2 o1 + 1 of slab o0 s0 (k0 = 1)
                a = xp + (o0 * g.s[0] * g.n[1] + 2 * o1) * g.n[2]
                if g.op == MAX:
                    if real_t is float:
                        convlab_max_pairs_float(a, a + g.n[2], yrow, g.out[2])
                    else:
                        convlab_max_pairs_double(a, a + g.n[2], yrow, g.out[2])
                else:
                    if real_t is float:
                        convlab_mean_pairs_float(a, a + g.n[2], yrow, g.out[2])
                    else:
                        convlab_mean_pairs_double(a, a + g.n[2], yrow, g.out[2])
            else:
                row_values(xp, &g, inner, o0, o1, yrow)


# ----------------------------------------------------------------------------- gradients
#
# Every sample of dx is 0 + the sum of the shares of the windows that hold it, added in
# row-major window order, whichever of the three kernels computes it (so they agree bit for
# bit; the explicit 0 makes a lone share of -0.0 give +0.0, as a sum that starts at zero).

def backward_cells(const real_t[:, :, :, ::1] grad, const real_t[:, :, :, ::1] x,
                   real_t[:, :, :, ::1] dx, tuple k, tuple s, tuple p, int op, double power,
                   bint include_pad, bint allow_vectors, int num_threads):
    """dx for windows that do not overlap (stride >= size along every axis): a task per
    output row writes the cells of its windows, recomputing each window's maximum or norm
    from x (once per sample, except that the generic max and Linf clear the window rows
    before they write the winners). `x` is not read for a mean (any array will do)."""
    cdef Geom g = make_geom(spatial(dx.shape), spatial(grad.shape), k, s, p, op, power,
                            include_pad, allow_vectors)
    cdef Py_ssize_t planes = dx.shape[0], rows, chunk, task, plane, o0, o1, o2, a
    cdef Py_ssize_t i0, i1, i2, row, chosen, end, done
    cdef Span c0, c1, c2, w0, w1
    cdef const real_t* xp
    cdef const real_t* grow
    cdef const real_t* xa
    cdef real_t* dxp
    cdef real_t* da
    cdef real_t norm
    cdef Span inner = interior(&g)
    cdef bint routed = op == MAX or op == LP_INF, rows_found
    cdef Py_ssize_t* pos
    cdef real_t* scratch
    for a in range(3):
        if g.s[a] < g.k[a]:
            raise ValueError("pooling kernels: backward_cells needs windows that do not overlap")
    check_planes(planes, grad.shape[0], "grad")
    if op != MEAN:
        check_planes(planes, x.shape[0], "x")
        check_extent(spatial(x.shape), spatial(dx.shape), "x")
    rows = planes * g.out[0] * g.out[1]
    chunk = chunk_rows(g.k[0] * g.k[1] * g.n[2])
    if rows == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        # per thread: the winners of one output row and the vector loops' scratch (without
        # them, if they cannot be had, each winner is found on its own: the same ones)
        pos = <Py_ssize_t*>malloc(<size_t>g.out[2] * sizeof(Py_ssize_t))
        scratch = <real_t*>malloc(<size_t>(2 * g.out[2]) * sizeof(real_t))
        rows_found = routed and not g.pairs and pos != NULL and scratch != NULL
        for task in prange(rows, schedule='dynamic', chunksize=chunk):
            plane = task // (g.out[0] * g.out[1])
            o0 = (task // g.out[1]) % g.out[0]
            o1 = task % g.out[1]
            xp = &x[plane, 0, 0, 0] if op != MEAN else NULL
            dxp = &dx[plane, 0, 0, 0]
            grow = &grad[plane, o0, o1, 0]
            c0 = cell(&g, 0, o0)
            c1 = cell(&g, 1, o1)
            w0 = window(&g, 0, o0)
            w1 = window(&g, 1, o1)
            # rows of the cell past the window (the gap up to the next one): zeros
            for i0 in range(c0.lo, c0.hi):
                for i1 in range(c1.lo, c1.hi):
                    if i0 >= w0.hi or i1 >= w1.hi:
                        memset(dxp + (i0 * g.n[1] + i1) * g.n[2], 0,
                               <size_t>g.n[2] * sizeof(real_t))
            if g.pairs:
                # window rows 2 o1 and 2 o1 + 1 of slab o0 s0, columns [0, 2 out2)
                row = (w0.lo * g.n[1] + w1.lo) * g.n[2]
                xa = xp + row if op == MAX else NULL
                da = dxp + row
                if op == MAX:
                    if real_t is float:
                        convlab_max_pairs_grad_float(xa, xa + g.n[2], grow, da, da + g.n[2],
                                                     g.out[2])
                    else:
                        convlab_max_pairs_grad_double(xa, xa + g.n[2], grow, da, da + g.n[2],
                                                      g.out[2])
                else:
                    if real_t is float:
                        convlab_mean_pairs_grad_float(grow, da, da + g.n[2], g.out[2])
                    else:
                        convlab_mean_pairs_grad_double(grow, da, da + g.n[2], g.out[2])
                done = 2 * g.out[2]
                if done < g.n[2]:   # an odd row length: its last column is in no window
                    da[done] = 0
                    da[g.n[2] + done] = 0
            elif routed:
                # the window rows (whole: the cells of the row's windows cover them) are
                # cleared, then each window's winner gets its share
                for i0 in range(w0.lo, w0.hi):
                    for i1 in range(w1.lo, w1.hi):
                        memset(dxp + (i0 * g.n[1] + i1) * g.n[2], 0,
                               <size_t>g.n[2] * sizeof(real_t))
                if rows_found:
                    row_argmax(xp, &g, inner, o0, o1, op == LP_INF, pos, scratch,
                               scratch + g.out[2])
                for o2 in range(g.out[2]):
                    chosen = (pos[o2] if rows_found
                              else window_argmax(xp, &g, o0, o1, o2, op == LP_INF))
                    dxp[chosen] = 0 + share(&g, xp, chosen, chosen, grow[o2], 0, o0, o1, o2)
            else:
                for o2 in range(g.out[2]):
                    chosen = -1
                    norm = window_lp(xp, &g, o0, o1, o2) if op == LP else 0
                    c2 = cell(&g, 2, o2)
                    end = o2 * g.s[2] - g.p[2] + g.k[2]     # the window ends before `end`
                    for i0 in range(w0.lo, w0.hi):
                        for i1 in range(w1.lo, w1.hi):
                            row = (i0 * g.n[1] + i1) * g.n[2]
                            for i2 in range(c2.lo, c2.hi):
                                if i2 < end:
                                    dxp[row + i2] = 0 + share(&g, xp, row + i2, chosen,
                                                              grow[o2], norm, o0, o1, o2)
                                else:
                                    dxp[row + i2] = 0
        free(pos)
        free(scratch)


def backward_scatter(const real_t[:, :, :, ::1] grad, const real_t[:, :, :, ::1] x,
                     real_t[:, :, :, ::1] dx, tuple k, tuple s, tuple p, int op, double power,
                     bint include_pad, bint allow_vectors, int num_threads):
    """dx for any windows, overlapping ones included: a task per plane clears its dx, then
    adds each window's shares, window after window in row-major order (recomputing each
    window's maximum or norm from x). `x` is not read for a mean (any array will do)."""
    cdef Geom g = make_geom(spatial(dx.shape), spatial(grad.shape), k, s, p, op, power,
                            include_pad, allow_vectors)
    cdef Py_ssize_t planes = dx.shape[0], plane, o0, o1, o2, i0, i1, i2, row, at
    cdef Span inner = interior(&g)
    cdef bint routed = op == MAX or op == LP_INF, rows_found
    cdef Box b
    cdef const real_t* xp
    cdef const real_t* gp
    cdef real_t* dxp
    cdef real_t gv, norm, part
    cdef Py_ssize_t* pos
    cdef real_t* scratch
    check_planes(planes, grad.shape[0], "grad")
    if op != MEAN:
        check_planes(planes, x.shape[0], "x")
        check_extent(spatial(x.shape), spatial(dx.shape), "x")
    if planes == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        # per thread: the winners of one output row and the vector loops' scratch (without
        # them, if they cannot be had, each winner is found on its own: the same ones)
        pos = <Py_ssize_t*>malloc(<size_t>g.out[2] * sizeof(Py_ssize_t))
        scratch = <real_t*>malloc(<size_t>(2 * g.out[2]) * sizeof(real_t))
        rows_found = routed and pos != NULL and scratch != NULL
        for plane in prange(planes, schedule='dynamic', chunksize=1):
            xp = &x[plane, 0, 0, 0] if op != MEAN else NULL
            gp = &grad[plane, 0, 0, 0]
            dxp = &dx[plane, 0, 0, 0]
            memset(dxp, 0, <size_t>(g.n[0] * g.n[1] * g.n[2]) * sizeof(real_t))
            for o0 in range(g.out[0]):
                for o1 in range(g.out[1]):
                    if rows_found:
                        row_argmax(xp, &g, inner, o0, o1, op == LP_INF, pos, scratch,
                                   scratch + g.out[2])
                    for o2 in range(g.out[2]):
                        gv = gp[(o0 * g.out[1] + o1) * g.out[2] + o2]
                        if routed:
                            at = (pos[o2] if rows_found
                                  else window_argmax(xp, &g, o0, o1, o2, op == LP_INF))
                            dxp[at] = dxp[at] + share(&g, xp, at, at, gv, 0, o0, o1, o2)
                            continue
                        norm = window_lp(xp, &g, o0, o1, o2) if op == LP else 0
                        part = share(&g, xp, 0, 0, gv, 0, o0, o1, o2) if op == MEAN else 0
                        b = window_box(&g, o0, o1, o2)
                        for i0 in range(b.lo[0], b.hi[0]):
                            for i1 in range(b.lo[1], b.hi[1]):
                                row = (i0 * g.n[1] + i1) * g.n[2]
                                for i2 in range(b.lo[2], b.hi[2]):
                                    if op == LP:
                                        part = lp_share(&g, gv, xp[row + i2], norm)
                                    dxp[row + i2] = dxp[row + i2] + part
        free(pos)
        free(scratch)


def argmax(const real_t[:, :, :, ::1] x, Py_ssize_t[:, :, :, ::1] where, tuple k, tuple s,
           tuple p, bint absolute, bint allow_vectors, int num_threads):
    """where[plane, o] = the position in the plane of window o's first maximum of x (or of
    |x| with `absolute`), for backward_gather."""
    cdef Geom g = make_geom(spatial(x.shape), spatial(where.shape), k, s, p,
                            LP_INF if absolute else MAX, 1.0, True, allow_vectors)
    cdef Py_ssize_t planes = x.shape[0], rows, chunk, task, plane, o0, o1, o2
    cdef Span inner = interior(&g)
    cdef const real_t* xp
    cdef real_t* scratch
    check_planes(planes, where.shape[0], "where")
    rows = planes * g.out[0] * g.out[1]
    chunk = chunk_rows(g.k[0] * g.k[1] * g.n[2])
    if rows == 0:
        return
    with nogil, parallel(num_threads=num_threads):
        scratch = <real_t*>malloc(<size_t>(2 * g.out[2]) * sizeof(real_t))
        for task in prange(rows, schedule='dynamic', chunksize=chunk):
            plane = task // (g.out[0] * g.out[1])
            o0 = (task // g.out[1]) % g.out[0]
            o1 = task % g.out[1]
            xp = &x[plane, 0, 0, 0]
            if scratch != NULL:
                row_argmax(xp, &g, inner, o0, o1, absolute, &where[plane, o0, o1, 0], scratch,
                           scratch + g.out[2])
            else:
                for o2 in range(g.out[2]):
                    where[plane, o0, o1, o2] = window_argmax(xp, &g, o0, o1, o2, absolute)
        free(scratch)


def backward_gather(const real_t[:, :, :, ::1] grad, const real_t[:, :, :, ::1] x,
                    const Py_ssize_t[:, :, :, ::1] where, const real_t[:, :, :, ::1] norms,
                    real_t[:, :, :, ::1] dx, tuple k, tuple s, tuple p, int op, double power,
                    bint include_pad, int num_threads):
    """dx for any windows, split by input rows (for few planes, which backward_scatter
    cannot spread over the threads): a task per input row; each sample sums the shares of
    the windows holding it, in row-major window order. `where` (max, Linf) holds each
    window's maximum's position (from `argmax`), `norms` (Lp) each window's norm (the
    forward result); the arrays an operation does not use (x for a mean) are not read."""
    cdef Geom g = make_geom(spatial(dx.shape), spatial(grad.shape), k, s, p, op, power,
                            include_pad, False)
    cdef Py_ssize_t planes = dx.shape[0], rows, chunk, task, plane, i0, i1, i2, at
    cdef Py_ssize_t o0, o1, o2, here, lo2, hi2
    cdef Span h0, h1
    cdef const real_t* xp
    cdef const real_t* gp
    cdef const Py_ssize_t* wp
    cdef const real_t* norm_p
    cdef real_t* dxrow
    cdef real_t total
    check_planes(planes, grad.shape[0], "grad")
    if op != MEAN:
        check_planes(planes, x.shape[0], "x")
        check_extent(spatial(x.shape), spatial(dx.shape), "x")
    if op == MAX or op == LP_INF:
        check_planes(planes, where.shape[0], "where")
        check_extent(spatial(where.shape), spatial(grad.shape), "where")
    if op == LP:
        check_planes(planes, norms.shape[0], "norms")
        check_extent(spatial(norms.shape), spatial(grad.shape), "norms")
    rows = planes * g.n[0] * g.n[1]
    chunk = chunk_rows(g.n[2])
    if rows == 0:
        return
    with nogil:
        for task in prange(rows, num_threads=num_threads, schedule='dynamic', chunksize=chunk):
            plane = task // (g.n[0] * g.n[1])
            i0 = (task // g.n[1]) % g.n[0]
            i1 = task % g.n[1]
            xp = &x[plane, 0, 0, 0] if op != MEAN else NULL
            gp = &grad[plane, 0, 0, 0]
            wp = &where[plane, 0, 0, 0] if op == MAX or op == LP_INF else NULL
            norm_p = &norms[plane, 0, 0, 0] if op == LP else NULL
            dxrow = &dx[plane, i0, i1, 0]
            h0 = holders(&g, 0, i0)
            h1 = holders(&g, 1, i1)
            # the windows [lo2, hi2) along the last axis that hold sample i2, moved along
            # with i2 (no division per sample)
            lo2 = 0
            hi2 = 0
            for i2 in range(g.n[2]):
                while hi2 < g.out[2] and hi2 * g.s[2] - g.p[2] <= i2:
                    hi2 = hi2 + 1
                while lo2 < hi2 and lo2 * g.s[2] - g.p[2] + g.k[2] <= i2:
                    lo2 = lo2 + 1
                at = (i0 * g.n[1] + i1) * g.n[2] + i2
                total = 0
                for o0 in range(h0.lo, h0.hi):
                    for o1 in range(h1.lo, h1.hi):
                        for o2 in range(lo2, hi2):
                            here = (o0 * g.out[1] + o1) * g.out[2] + o2
                            if (op == MAX or op == LP_INF) and wp[here] != at:
                                continue    # this window routes its gradient elsewhere
                            total = total + share(&g, xp, at, at, gp[here],
                                                  norm_p[here] if op == LP else 0, o0, o1, o2)
                dxrow[i2] = total
