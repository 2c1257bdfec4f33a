/* Register-blocked 1-D passes of the separable layer kernels (private).
 *
 *   rows pass   out[o][i] (+)= sum_m w[m] src[o * stride + m * dilation][i]   (rows of `inner`)
 *   line pass   out[o]    (+)= sum_m w[m] src[o * stride + m * dilation]
 *
 * Each output vector is summed over the taps in registers and written once (a loop over the
 * taps outside would load and store the output k times). GCC / Clang vector extension,
 * 32-byte vectors; other compilers get plain loops with the same sums.
 */
#ifndef CONVLAB_SEPARABLE_BLOCKS_H
#define CONVLAB_SEPARABLE_BLOCKS_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_SEP_VECTORS 1
#else
#define CONVLAB_SEP_VECTORS 0
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

#define CONVLAB_SEP_VECTOR_PASSES(T, REAL, LANES)                                           \
typedef REAL convlab_sep_v_##T __attribute__((vector_size(32)));                           \
static inline convlab_sep_v_##T convlab_sep_load_##T(const REAL* p) {                      \
    convlab_sep_v_##T v; memcpy(&v, p, sizeof v); return v;                                \
}                                                                                           \
static inline void convlab_sep_store_##T(REAL* p, convlab_sep_v_##T v) {                   \
    memcpy(p, &v, sizeof v);                                                               \
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
    if (singles < inner)                                                                   \
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
    convlab_sep_line_plain_##T(src, w, k, stride, dilation, length, out, accumulate, o);   \
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

#endif

#endif  /* CONVLAB_SEPARABLE_BLOCKS_H */
