/* Register-blocked 1-D passes of the separable layer kernels (private).
 *
 *   rows pass   out[o][i] (+)= sum_m w[m] src[o * stride + m * dilation][i]   (rows of `inner`)
 *   line pass   out[o]    (+)= sum_m w[m] src[o * stride + m * dilation]
 *
 * and, for the gradients, their adjoints (gathered) and the tap-by-tap dot products.
 *
 * Each output vector is summed over the taps in registers and written once (a loop over the
 * taps outside would load and store the output k times). GCC / Clang vector extension,
 * 32-byte vectors; other compilers get plain loops with the same sums.
 */
#ifndef CONVLAB_SEPARABLE_BLOCKS_H
#define CONVLAB_SEPARABLE_BLOCKS_H

#include <stddef.h>
#include <string.h>

#ifndef CONVLAB_SEP_VECTORS
#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_SEP_VECTORS 1
#else
#define CONVLAB_SEP_VECTORS 0
#endif
#endif

#define CONVLAB_SEP_PASSES(T, REAL)                                                         \
static void convlab_sep_rows_plain_##T(const REAL* src, Py_ssize_t inner, const REAL* w,   \
                                       Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,\
                                       Py_ssize_t length, REAL* out, int accumulate,       \
                                       Py_ssize_t first) {                                 \
    for (Py_ssize_t o = 0; o < length; o++)                                                \
        for (Py_ssize_t i = first; i < inner; i++) {                                       \
            REAL sum = accumulate ? out[o * inner + i] : 0;                                \
            for (Py_ssize_t m = 0; m < k; m++)                                             \
                sum += w[m] * src[(o * stride + m * dilation) * inner + i];                \
            out[o * inner + i] = sum;                                                      \
        }                                                                                  \
}                                                                                           \
static void convlab_sep_rows_adjoint_plain_##T(const REAL* src, Py_ssize_t inner,          \
                                               const REAL* w, Py_ssize_t k,                \
                                               Py_ssize_t dilation, Py_ssize_t length,     \
                                               Py_ssize_t extent, REAL* out,               \
                                               Py_ssize_t first) {                         \
    for (Py_ssize_t i = 0; i < extent; i++)                                                \
        for (Py_ssize_t c = first; c < inner; c++) {                                       \
            REAL sum = out[i * inner + c];                                                 \
            for (Py_ssize_t m = 0; m < k; m++) {                                           \
                Py_ssize_t o = i - m * dilation;                                           \
                if (o >= 0 && o < length) sum += w[m] * src[o * inner + c];                \
            }                                                                              \
            out[i * inner + c] = sum;                                                      \
        }                                                                                  \
}                                                                                           \
static void convlab_sep_line_adjoint_plain_##T(const REAL* src, const REAL* w, Py_ssize_t k,\
                                               Py_ssize_t dilation, Py_ssize_t length,     \
                                               Py_ssize_t lo, Py_ssize_t hi, REAL* out) {  \
    for (Py_ssize_t i = lo; i < hi; i++) {                                                 \
        REAL sum = out[i];                                                                 \
        for (Py_ssize_t m = 0; m < k; m++) {                                               \
            Py_ssize_t o = i - m * dilation;                                               \
            if (o >= 0 && o < length) sum += w[m] * src[o];                                \
        }                                                                                  \
        out[i] = sum;                                                                      \
    }                                                                                      \
}                                                                                           \
static void convlab_sep_dot_plain_##T(const REAL* g, const REAL* src, Py_ssize_t k,        \
                                      Py_ssize_t dilation, Py_ssize_t length,              \
                                      Py_ssize_t first, REAL* dw) {                        \
    for (Py_ssize_t m = 0; m < k; m++) {                                                   \
        REAL sum = 0;                                                                      \
        for (Py_ssize_t o = first; o < length; o++) sum += g[o] * src[o + m * dilation];   \
        dw[m] += sum;                                                                      \
    }                                                                                      \
}                                                                                           \
static void convlab_sep_line_plain_##T(const REAL* src, const REAL* w, Py_ssize_t k,       \
                                       Py_ssize_t stride, Py_ssize_t dilation,             \
                                       Py_ssize_t length, REAL* out, int accumulate,       \
                                       Py_ssize_t first) {                                 \
    for (Py_ssize_t o = first; o < length; o++) {                                          \
        REAL sum = accumulate ? out[o] : 0;                                                \
        for (Py_ssize_t m = 0; m < k; m++) sum += w[m] * src[o * stride + m * dilation];   \
        out[o] = sum;                                                                      \
    }                                                                                      \
}

#if CONVLAB_SEP_VECTORS

#define CONVLAB_SEP_DOT_GROUP(T, REAL, LANES, COUNT)                                        \
static inline void convlab_sep_dot_group##COUNT##_##T(const REAL* g, Py_ssize_t gstride,   \
                                                      const REAL* src, Py_ssize_t sstride, \
                                                      Py_ssize_t rows, Py_ssize_t m0,      \
                                                      Py_ssize_t dilation, Py_ssize_t full,\
                                                      REAL* dw) {                          \
    convlab_sep_v_##T acc[COUNT];                                                          \
    for (int j = 0; j < COUNT; j++) acc[j] = (convlab_sep_v_##T){0};                       \
    for (Py_ssize_t r = 0; r < rows; r++) {                                                \
        const REAL* gr = g + r * gstride;                                                  \
        const REAL* p = src + r * sstride + m0 * dilation;                                 \
        for (Py_ssize_t o = 0; o < full; o += LANES) {                                     \
            convlab_sep_v_##T gv = convlab_sep_load_##T(gr + o);                           \
            _Pragma("GCC unroll 4")                                                        \
            for (int j = 0; j < COUNT; j++)                                                \
                acc[j] += gv * convlab_sep_load_##T(p + o + j * dilation);                 \
        }                                                                                  \
    }                                                                                      \
    for (int j = 0; j < COUNT; j++) dw[m0 + j] += convlab_sep_sum_##T(acc[j]);             \
}

#define CONVLAB_SEP_VECTOR_PASSES(T, REAL, LANES)                                           \
typedef REAL convlab_sep_v_##T __attribute__((vector_size(32)));                           \
static inline convlab_sep_v_##T convlab_sep_load_##T(const REAL* p) {                      \
    convlab_sep_v_##T v; memcpy(&v, p, sizeof v); return v;                                \
}                                                                                           \
static inline void convlab_sep_store_##T(REAL* p, convlab_sep_v_##T v) {                   \
    memcpy(p, &v, sizeof v);                                                               \
}                                                                                           \
static inline REAL convlab_sep_sum_##T(convlab_sep_v_##T v) {                             \
    REAL sum = 0;                                                                          \
    for (int lane = 0; lane < LANES; lane++) sum += v[lane];                               \
    return sum;                                                                            \
}                                                                                           \
static void convlab_sep_rows_##T(const REAL* src, Py_ssize_t inner, const REAL* w,         \
                                 Py_ssize_t k, Py_ssize_t stride, Py_ssize_t dilation,     \
                                 Py_ssize_t length, REAL* out, int accumulate) {           \
    Py_ssize_t blocks = inner / (4 * LANES) * (4 * LANES);                                 \
    for (Py_ssize_t o = 0; o < length; o++) {                                              \
        const REAL* base = src + o * stride * inner;                                       \
        REAL* dst = out + o * inner;                                                       \
        for (Py_ssize_t i = 0; i < blocks; i += 4 * LANES) {                               \
            convlab_sep_v_##T a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                      \
            if (accumulate) {                                                              \
                a0 = convlab_sep_load_##T(dst + i);                                        \
                a1 = convlab_sep_load_##T(dst + i + LANES);                                \
                a2 = convlab_sep_load_##T(dst + i + 2 * LANES);                            \
                a3 = convlab_sep_load_##T(dst + i + 3 * LANES);                            \
            }                                                                              \
            for (Py_ssize_t m = 0; m < k; m++) {                                           \
                const REAL* row = base + m * dilation * inner + i;                         \
                REAL wm = w[m];                                                            \
                a0 += wm * convlab_sep_load_##T(row);                                      \
                a1 += wm * convlab_sep_load_##T(row + LANES);                              \
                a2 += wm * convlab_sep_load_##T(row + 2 * LANES);                          \
                a3 += wm * convlab_sep_load_##T(row + 3 * LANES);                          \
            }                                                                              \
            convlab_sep_store_##T(dst + i, a0);                                            \
            convlab_sep_store_##T(dst + i + LANES, a1);                                    \
            convlab_sep_store_##T(dst + i + 2 * LANES, a2);                                \
            convlab_sep_store_##T(dst + i + 3 * LANES, a3);                                \
        }                                                                                  \
    }                                                                                      \
    Py_ssize_t singles = inner / LANES * LANES;                                            \
    for (Py_ssize_t o = 0; o < length && blocks < singles; o++) {                          \
        const REAL* base = src + o * stride * inner;                                       \
        REAL* dst = out + o * inner;                                                       \
        for (Py_ssize_t i = blocks; i < singles; i += LANES) {                             \
            convlab_sep_v_##T a0 = {0};                                                    \
            if (accumulate) a0 = convlab_sep_load_##T(dst + i);                            \
            for (Py_ssize_t m = 0; m < k; m++)                                             \
                a0 += w[m] * convlab_sep_load_##T(base + m * dilation * inner + i);        \
            convlab_sep_store_##T(dst + i, a0);                                            \
        }                                                                                  \
    }                                                                                      \
    if (singles < inner && !accumulate && inner >= LANES) {                                \
        /* the last columns as one vector ending at the row's end: it recomputes a few    \
           columns already written, with the same sums (only when not accumulating) */     \
        Py_ssize_t i = inner - LANES;                                                      \
        for (Py_ssize_t o = 0; o < length; o++) {                                          \
            const REAL* base = src + o * stride * inner;                                   \
            convlab_sep_v_##T a0 = {0};                                                    \
            for (Py_ssize_t m = 0; m < k; m++)                                             \
                a0 += w[m] * convlab_sep_load_##T(base + m * dilation * inner + i);        \
            convlab_sep_store_##T(out + o * inner + i, a0);                                \
        }                                                                                  \
    } else if (singles < inner)                                                            \
        convlab_sep_rows_plain_##T(src, inner, w, k, stride, dilation, length, out,        \
                                   accumulate, singles);                                   \
}                                                                                           \
static void convlab_sep_line_##T(const REAL* src, const REAL* w, Py_ssize_t k,             \
                                 Py_ssize_t stride, Py_ssize_t dilation, Py_ssize_t length,\
                                 REAL* out, int accumulate) {                              \
    Py_ssize_t o = 0;                                                                      \
    if (stride == 1) {                                                                     \
        for (; o + 2 * LANES <= length; o += 2 * LANES) {                                  \
            convlab_sep_v_##T a0 = {0}, a1 = {0};                                          \
            if (accumulate) {                                                              \
                a0 = convlab_sep_load_##T(out + o);                                        \
                a1 = convlab_sep_load_##T(out + o + LANES);                                \
            }                                                                              \
            for (Py_ssize_t m = 0; m < k; m++) {                                           \
                const REAL* p = src + o + m * dilation;                                    \
                REAL wm = w[m];                                                            \
                a0 += wm * convlab_sep_load_##T(p);                                        \
                a1 += wm * convlab_sep_load_##T(p + LANES);                                \
            }                                                                              \
            convlab_sep_store_##T(out + o, a0);                                            \
            convlab_sep_store_##T(out + o + LANES, a1);                                    \
        }                                                                                  \
        for (; o + LANES <= length; o += LANES) {                                          \
            convlab_sep_v_##T a0 = {0};                                                    \
            if (accumulate) a0 = convlab_sep_load_##T(out + o);                            \
            for (Py_ssize_t m = 0; m < k; m++)                                             \
                a0 += w[m] * convlab_sep_load_##T(src + o + m * dilation);                 \
            convlab_sep_store_##T(out + o, a0);                                            \
        }                                                                                  \
    }                                                                                      \
    if (stride == 1 && o < length && length >= LANES) {                                    \
        /* the tail as one vector of sums ending at the line's end: stored whole when not  \
           accumulating (it recomputes a few samples with the same sums), else only its    \
           last lanes added */                                                              \
        Py_ssize_t last = length - LANES;                                                  \
        convlab_sep_v_##T a0 = {0};                                                        \
        for (Py_ssize_t m = 0; m < k; m++)                                                 \
            a0 += w[m] * convlab_sep_load_##T(src + last + m * dilation);                  \
        if (!accumulate) {                                                                 \
            convlab_sep_store_##T(out + last, a0);                                         \
        } else {                                                                           \
            for (Py_ssize_t j = o - last; j < LANES; j++) out[last + j] += a0[j];          \
        }                                                                                  \
        return;                                                                            \
    }                                                                                      \
    convlab_sep_line_plain_##T(src, w, k, stride, dilation, length, out, accumulate, o);   \
}                                                                                            \
/* adjoint of the rows pass at stride 1, gathered: out[i] += sum over the taps m with      \
   0 <= i - m * dilation < length of w[m] src[i - m * dilation] */                          \
static void convlab_sep_rows_adjoint_##T(const REAL* src, Py_ssize_t inner, const REAL* w, \
                                         Py_ssize_t k, Py_ssize_t dilation,                \
                                         Py_ssize_t length, Py_ssize_t extent, REAL* out) {\
    Py_ssize_t blocks = inner / (4 * LANES) * (4 * LANES);                                 \
    Py_ssize_t singles = inner / LANES * LANES;                                            \
    for (Py_ssize_t i = 0; i < extent; i++) {                                              \
        REAL* dst = out + i * inner;                                                       \
        Py_ssize_t m_lo = i - (length - 1) > 0 ? (i - (length - 1) + dilation - 1) / dilation : 0; \
        Py_ssize_t m_hi = i / dilation + 1 < k ? i / dilation + 1 : k;                     \
        Py_ssize_t c = 0;                                                                  \
        for (; c < blocks; c += 4 * LANES) {                                               \
            convlab_sep_v_##T a0 = convlab_sep_load_##T(dst + c);                          \
            convlab_sep_v_##T a1 = convlab_sep_load_##T(dst + c + LANES);                  \
            convlab_sep_v_##T a2 = convlab_sep_load_##T(dst + c + 2 * LANES);              \
            convlab_sep_v_##T a3 = convlab_sep_load_##T(dst + c + 3 * LANES);              \
            for (Py_ssize_t m = m_lo; m < m_hi; m++) {                                     \
                const REAL* row = src + (i - m * dilation) * inner + c;                    \
                REAL wm = w[m];                                                            \
                a0 += wm * convlab_sep_load_##T(row);                                      \
                a1 += wm * convlab_sep_load_##T(row + LANES);                              \
                a2 += wm * convlab_sep_load_##T(row + 2 * LANES);                          \
                a3 += wm * convlab_sep_load_##T(row + 3 * LANES);                          \
            }                                                                              \
            convlab_sep_store_##T(dst + c, a0);                                            \
            convlab_sep_store_##T(dst + c + LANES, a1);                                    \
            convlab_sep_store_##T(dst + c + 2 * LANES, a2);                                \
            convlab_sep_store_##T(dst + c + 3 * LANES, a3);                                \
        }                                                                                  \
        for (; c < singles; c += LANES) {                                                  \
            convlab_sep_v_##T a0 = convlab_sep_load_##T(dst + c);                          \
            for (Py_ssize_t m = m_lo; m < m_hi; m++)                                       \
                a0 += w[m] * convlab_sep_load_##T(src + (i - m * dilation) * inner + c);   \
            convlab_sep_store_##T(dst + c, a0);                                            \
        }                                                                                  \
    }                                                                                      \
    if (singles < inner)                                                                   \
        convlab_sep_rows_adjoint_plain_##T(src, inner, w, k, dilation, length, extent, out,\
                                           singles);                                      \
}                                                                                           \
/* adjoint of the line pass at stride 1, gathered; the interior (every tap in range) in   \
   vectors, the edges one sample at a time */                                               \
static void convlab_sep_line_adjoint_##T(const REAL* src, const REAL* w, Py_ssize_t k,     \
                                         Py_ssize_t dilation, Py_ssize_t length,           \
                                         Py_ssize_t extent, REAL* out) {                   \
    Py_ssize_t lo = (k - 1) * dilation, hi = length, i = lo;                               \
    if (hi <= lo) {                                                                        \
        convlab_sep_line_adjoint_plain_##T(src, w, k, dilation, length, 0, extent, out);   \
        return;                                                                            \
    }                                                                                      \
    convlab_sep_line_adjoint_plain_##T(src, w, k, dilation, length, 0, lo, out);           \
    for (; i + 2 * LANES <= hi; i += 2 * LANES) {                                          \
        convlab_sep_v_##T a0 = convlab_sep_load_##T(out + i);                             \
        convlab_sep_v_##T a1 = convlab_sep_load_##T(out + i + LANES);                     \
        for (Py_ssize_t m = 0; m < k; m++) {                                               \
            const REAL* p = src + i - m * dilation;                                        \
            a0 += w[m] * convlab_sep_load_##T(p);                                          \
            a1 += w[m] * convlab_sep_load_##T(p + LANES);                                  \
        }                                                                                  \
        convlab_sep_store_##T(out + i, a0);                                                \
        convlab_sep_store_##T(out + i + LANES, a1);                                        \
    }                                                                                      \
    for (; i + LANES <= hi; i += LANES) {                                                  \
        convlab_sep_v_##T a0 = convlab_sep_load_##T(out + i);                             \
        for (Py_ssize_t m = 0; m < k; m++)                                                 \
            a0 += w[m] * convlab_sep_load_##T(src + i - m * dilation);                     \
        convlab_sep_store_##T(out + i, a0);                                                \
    }                                                                                      \
    convlab_sep_line_adjoint_plain_##T(src, w, k, dilation, length, i, extent, out);       \
}                                                                                           \
/* the same through a zero-padded copy of the row in `scratch` (extent + (k - 1) dilation  \
   samples, then k for the reversed taps): every output a full sum, all in vectors */       \
static void convlab_sep_line_adjoint_padded_##T(const REAL* src, const REAL* w, Py_ssize_t k,\
                                                Py_ssize_t dilation, Py_ssize_t length,    \
                                                Py_ssize_t extent, REAL* out,              \
                                                REAL* scratch, int accumulate) {           \
    Py_ssize_t lead = (k - 1) * dilation, width = extent + lead;                           \
    REAL* row = scratch;                                                                   \
    REAL* reversed = scratch + width;                                                      \
    memset(row, 0, (size_t)width * sizeof(REAL));                                          \
    memcpy(row + lead, src, (size_t)(length < extent ? length : extent) * sizeof(REAL));   \
    for (Py_ssize_t m = 0; m < k; m++) reversed[m] = w[k - 1 - m];                         \
    /* out[i] += sum_m w[m] src[i - m d] = sum_m' w[k-1-m'] row[i + m' d] */               \
    convlab_sep_line_##T(row, reversed, k, 1, dilation, extent, out, accumulate);          \
}                                                                                           \
/* dw[m0 + j] += sum over rows r and o < length of g[r * gstride + o]                     \
   src[r * sstride + o + (m0 + j) * dilation] for j < COUNT: COUNT independent vector sums \
   carried across the rows (each vector of g loaded once for all of them), reduced once */ \
CONVLAB_SEP_DOT_GROUP(T, REAL, LANES, 4)                                                   \
CONVLAB_SEP_DOT_GROUP(T, REAL, LANES, 3)                                                   \
CONVLAB_SEP_DOT_GROUP(T, REAL, LANES, 2)                                                   \
CONVLAB_SEP_DOT_GROUP(T, REAL, LANES, 1)                                                   \
/* dw[m] += sum over rows r and o < length of g[r * gstride + o] src[r * sstride + o +     \
   m * dilation], the taps in groups of at most four */                                     \
static void convlab_sep_dot_rows_##T(const REAL* g, Py_ssize_t gstride, const REAL* src,   \
                                     Py_ssize_t sstride, Py_ssize_t rows, Py_ssize_t k,    \
                                     Py_ssize_t dilation, Py_ssize_t length, REAL* dw) {   \
    Py_ssize_t full = length / LANES * LANES, m = 0;                                       \
    for (; m + 4 <= k; m += 4)                                                             \
        convlab_sep_dot_group4_##T(g, gstride, src, sstride, rows, m, dilation, full, dw); \
    if (k - m == 3)                                                                        \
        convlab_sep_dot_group3_##T(g, gstride, src, sstride, rows, m, dilation, full, dw); \
    else if (k - m == 2)                                                                   \
        convlab_sep_dot_group2_##T(g, gstride, src, sstride, rows, m, dilation, full, dw); \
    else if (k - m == 1)                                                                   \
        convlab_sep_dot_group1_##T(g, gstride, src, sstride, rows, m, dilation, full, dw); \
    if (full < length)                                                                     \
        for (Py_ssize_t r = 0; r < rows; r++)                                              \
            convlab_sep_dot_plain_##T(g + r * gstride, src + r * sstride, k, dilation,     \
                                      length, full, dw);                                   \
}                                                                                           \
/* dw[m] += sum_o g[o] src[o + m * dilation], o < length (one row) */                      \
static inline void convlab_sep_dot_##T(const REAL* g, const REAL* src, Py_ssize_t k,       \
                                       Py_ssize_t dilation, Py_ssize_t length, REAL* dw) { \
    convlab_sep_dot_rows_##T(g, length, src, length, 1, k, dilation, length, dw);          \
}

CONVLAB_SEP_PASSES(float, float)
CONVLAB_SEP_PASSES(double, double)
CONVLAB_SEP_VECTOR_PASSES(float, float, 8)
CONVLAB_SEP_VECTOR_PASSES(double, double, 4)

#else

CONVLAB_SEP_PASSES(float, float)
CONVLAB_SEP_PASSES(double, double)
#define convlab_sep_rows_float(s, n, w, k, st, d, l, o, a) \
    convlab_sep_rows_plain_float(s, n, w, k, st, d, l, o, a, 0)
#define convlab_sep_rows_double(s, n, w, k, st, d, l, o, a) \
    convlab_sep_rows_plain_double(s, n, w, k, st, d, l, o, a, 0)
#define convlab_sep_line_float(s, w, k, st, d, l, o, a) \
    convlab_sep_line_plain_float(s, w, k, st, d, l, o, a, 0)
#define convlab_sep_line_double(s, w, k, st, d, l, o, a) \
    convlab_sep_line_plain_double(s, w, k, st, d, l, o, a, 0)
#define convlab_sep_rows_adjoint_float(s, n, w, k, d, l, e, o) \
    convlab_sep_rows_adjoint_plain_float(s, n, w, k, d, l, e, o, 0)
#define convlab_sep_rows_adjoint_double(s, n, w, k, d, l, e, o) \
    convlab_sep_rows_adjoint_plain_double(s, n, w, k, d, l, e, o, 0)
#define convlab_sep_line_adjoint_float(s, w, k, d, l, e, o) \
    convlab_sep_line_adjoint_plain_float(s, w, k, d, l, 0, e, o)
#define convlab_sep_line_adjoint_double(s, w, k, d, l, e, o) \
    convlab_sep_line_adjoint_plain_double(s, w, k, d, l, 0, e, o)
#define convlab_sep_line_adjoint_padded_float(s, w, k, d, l, e, o, scratch, a) \
    do { if (!(a)) memset(o, 0, (size_t)(e) * sizeof(float)); \
         convlab_sep_line_adjoint_plain_float(s, w, k, d, l, 0, e, o); } while (0)
#define convlab_sep_line_adjoint_padded_double(s, w, k, d, l, e, o, scratch, a) \
    do { if (!(a)) memset(o, 0, (size_t)(e) * sizeof(double)); \
         convlab_sep_line_adjoint_plain_double(s, w, k, d, l, 0, e, o); } while (0)
#define convlab_sep_dot_float(g, s, k, d, l, dw) convlab_sep_dot_plain_float(g, s, k, d, l, 0, dw)
static void convlab_sep_dot_rows_float(const float* g, Py_ssize_t gs, const float* s,
                                       Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t k,
                                       Py_ssize_t d, Py_ssize_t l, float* dw) {
    for (Py_ssize_t r = 0; r < rows; r++) convlab_sep_dot_plain_float(g + r * gs, s + r * ss, k, d, l, 0, dw);
}
static void convlab_sep_dot_rows_double(const double* g, Py_ssize_t gs, const double* s,
                                        Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t k,
                                        Py_ssize_t d, Py_ssize_t l, double* dw) {
    for (Py_ssize_t r = 0; r < rows; r++) convlab_sep_dot_plain_double(g + r * gs, s + r * ss, k, d, l, 0, dw);
}
#define convlab_sep_dot_double(g, s, k, d, l, dw) convlab_sep_dot_plain_double(g, s, k, d, l, 0, dw)

#endif

#endif  /* CONVLAB_SEPARABLE_BLOCKS_H */
