/* The 2 x 2, stride 2 pooling of two input rows a and b into one output row (private).
 *
 *   max    out[j] = first maximum of a[2j], a[2j+1], b[2j], b[2j+1]   (a NaN wins)
 *   mean   out[j] = (((a[2j] + a[2j+1]) + b[2j]) + b[2j+1]) / 4
 *
 * and their gradients, which write every sample of the two rows' first 2m columns (the
 * winner gets 0 + g[j], the other three 0; the mean gives 0 + g[j] / 4 to all four: a sum
 * of one share, started at zero). They compute exactly what the generic window loops of
 * _pooling.pyx compute, in the same order, so both paths give the same bits.
 *
 * Each routine runs blocks of a fixed number of outputs (one 64-byte vector of results),
 * plain loops without branches that the compiler vectorises; a row whose length is not a
 * whole number of blocks ends with one block that overlaps the previous one (its outputs
 * are computed, and written, twice, with the same values) instead of a slow scalar tail:
 * rows of 28 or 56 outputs are common.
 */
#ifndef CONVLAB_POOLING_ROWS_H
#define CONVLAB_POOLING_ROWS_H

#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_POOL_RESTRICT __restrict__
#define CONVLAB_POOL_INLINE static inline __attribute__((always_inline))
#else
#define CONVLAB_POOL_RESTRICT
#define CONVLAB_POOL_INLINE static inline
#endif

/* v replaces the best so far when it is larger, or when it is the window's first NaN: when
 * the best so far is a number and v is not at most it (v larger, or v NaN). */
#define CONVLAB_POOL_REPLACES(v, best) (!((v) <= (best)) && (best) == (best))

/* Runs BLOCK(a, b, ..., j0, count) over [0, m): whole blocks of `width`, then the last
 * `width` outputs again when m is not a multiple of it. */
#define CONVLAB_POOL_BLOCKS(BLOCK, width, m, ...)                                          \
    do {                                                                                    \
        Py_ssize_t j0_ = 0;                                                                 \
        if ((m) < (width)) {                                                                \
            BLOCK(__VA_ARGS__, 0, (m));                                                     \
            break;                                                                          \
        }                                                                                   \
        for (; j0_ + (width) <= (m); j0_ += (width))                                        \
            BLOCK(__VA_ARGS__, j0_, (width));                                               \
        if (j0_ < (m))                                                                      \
            BLOCK(__VA_ARGS__, (m) - (width), (width));                                     \
    } while (0)

#define CONVLAB_POOL_ROWS(T, REAL, WIDTH)                                                   \
CONVLAB_POOL_INLINE void convlab_max_block_##T(const REAL* CONVLAB_POOL_RESTRICT a,         \
                                               const REAL* CONVLAB_POOL_RESTRICT b,         \
                                               REAL* CONVLAB_POOL_RESTRICT out,             \
                                               Py_ssize_t j0, Py_ssize_t count) {           \
    a += 2 * j0; b += 2 * j0; out += j0;                                                    \
    for (Py_ssize_t j = 0; j < count; j++) {                                                \
        REAL best = a[2 * j], v;                                                            \
        v = a[2 * j + 1]; best = CONVLAB_POOL_REPLACES(v, best) ? v : best;                 \
        v = b[2 * j];     best = CONVLAB_POOL_REPLACES(v, best) ? v : best;                 \
        v = b[2 * j + 1]; best = CONVLAB_POOL_REPLACES(v, best) ? v : best;                 \
        out[j] = best;                                                                      \
    }                                                                                       \
}                                                                                           \
CONVLAB_POOL_INLINE void convlab_mean_block_##T(const REAL* CONVLAB_POOL_RESTRICT a,        \
                                                const REAL* CONVLAB_POOL_RESTRICT b,        \
                                                REAL* CONVLAB_POOL_RESTRICT out,            \
                                                Py_ssize_t j0, Py_ssize_t count) {          \
    a += 2 * j0; b += 2 * j0; out += j0;                                                    \
    for (Py_ssize_t j = 0; j < count; j++)                                                  \
        out[j] = (((a[2 * j] + a[2 * j + 1]) + b[2 * j]) + b[2 * j + 1]) / (REAL)4;         \
}                                                                                           \
CONVLAB_POOL_INLINE void convlab_max_grad_block_##T(const REAL* CONVLAB_POOL_RESTRICT a,    \
                                                    const REAL* CONVLAB_POOL_RESTRICT b,    \
                                                    const REAL* CONVLAB_POOL_RESTRICT g,    \
                                                    REAL* CONVLAB_POOL_RESTRICT da,         \
                                                    REAL* CONVLAB_POOL_RESTRICT db,         \
                                                    Py_ssize_t j0, Py_ssize_t count) {      \
    a += 2 * j0; b += 2 * j0; g += j0; da += 2 * j0; db += 2 * j0;                          \
    for (Py_ssize_t j = 0; j < count; j++) {                                                \
        /* the winner's place 0..3 as a REAL, not an int: GCC vectorises the loop then */   \
        REAL best = a[2 * j], v, win = 0;                                                   \
        v = a[2 * j + 1];                                                                   \
        win = CONVLAB_POOL_REPLACES(v, best) ? (REAL)1 : win;                               \
        best = CONVLAB_POOL_REPLACES(v, best) ? v : best;                                   \
        v = b[2 * j];                                                                       \
        win = CONVLAB_POOL_REPLACES(v, best) ? (REAL)2 : win;                               \
        best = CONVLAB_POOL_REPLACES(v, best) ? v : best;                                   \
        v = b[2 * j + 1];                                                                   \
        win = CONVLAB_POOL_REPLACES(v, best) ? (REAL)3 : win;                               \
        REAL share = (REAL)0 + g[j];                                                        \
        da[2 * j] = win == 0 ? share : (REAL)0;                                             \
        da[2 * j + 1] = win == 1 ? share : (REAL)0;                                         \
        db[2 * j] = win == 2 ? share : (REAL)0;                                             \
        db[2 * j + 1] = win == 3 ? share : (REAL)0;                                         \
    }                                                                                       \
}                                                                                           \
CONVLAB_POOL_INLINE void convlab_mean_grad_block_##T(const REAL* CONVLAB_POOL_RESTRICT g,   \
                                                     REAL* CONVLAB_POOL_RESTRICT da,        \
                                                     REAL* CONVLAB_POOL_RESTRICT db,        \
                                                     Py_ssize_t j0, Py_ssize_t count) {     \
    g += j0; da += 2 * j0; db += 2 * j0;                                                    \
    for (Py_ssize_t j = 0; j < count; j++) {                                                \
        REAL share = (REAL)0 + g[j] / (REAL)4;                                              \
        da[2 * j] = share;                                                                  \
        da[2 * j + 1] = share;                                                              \
        db[2 * j] = share;                                                                  \
        db[2 * j + 1] = share;                                                              \
    }                                                                                       \
}                                                                                           \
static void convlab_max_pairs_##T(const REAL* a, const REAL* b, REAL* out, Py_ssize_t m) {  \
    CONVLAB_POOL_BLOCKS(convlab_max_block_##T, WIDTH, m, a, b, out);                       \
}                                                                                           \
static void convlab_mean_pairs_##T(const REAL* a, const REAL* b, REAL* out, Py_ssize_t m) { \
    CONVLAB_POOL_BLOCKS(convlab_mean_block_##T, WIDTH, m, a, b, out);                      \
}                                                                                           \
static void convlab_max_pairs_grad_##T(const REAL* a, const REAL* b, const REAL* g,         \
                                       REAL* da, REAL* db, Py_ssize_t m) {                  \
    CONVLAB_POOL_BLOCKS(convlab_max_grad_block_##T, WIDTH, m, a, b, g, da, db);            \
}                                                                                           \
static void convlab_mean_pairs_grad_##T(const REAL* g, REAL* da, REAL* db, Py_ssize_t m) {  \
    CONVLAB_POOL_BLOCKS(convlab_mean_grad_block_##T, WIDTH, m, g, da, db);                 \
}

/* The windows of one output row whose extent along the last axis lies inside the input:
 * output j (0 <= j < m) covers columns first + j * stride + t, 0 <= t < k, of the input rows
 * (i0, i1) in [lo0, hi0) x [lo1, hi1) of a plane (rows of n2 samples, n1 rows per slab).
 * The samples of a window are visited in row-major window order, as by the generic loops
 * of _pooling.pyx, but all outputs of the row at once: one pass over the outputs per
 * sample of the window, which the compiler vectorises (stride 1 and 2 with plain loads).
 *
 *   window_max   top[j] = the window's first maximum (a NaN wins); with `win`, win[j] =
 *                its place q in the window's row-major order (exact: q < 2^24 for float)
 *   window_sum   sum[j] = -0.0 + the window's samples (the sum starts with the first one)
 */
#define CONVLAB_POOL_WINDOWS(T, REAL)                                                       \
CONVLAB_POOL_INLINE void convlab_window_max_step_##T(const REAL* CONVLAB_POOL_RESTRICT src, \
                                                     Py_ssize_t stride, Py_ssize_t m,       \
                                                     REAL* CONVLAB_POOL_RESTRICT top,       \
                                                     REAL* CONVLAB_POOL_RESTRICT win,       \
                                                     REAL q) {                              \
    if (win) {                                                                              \
        for (Py_ssize_t j = 0; j < m; j++) {                                                \
            REAL v = src[j * stride], best = top[j];                                        \
            win[j] = CONVLAB_POOL_REPLACES(v, best) ? q : win[j];                           \
            top[j] = CONVLAB_POOL_REPLACES(v, best) ? v : best;                             \
        }                                                                                   \
    } else {                                                                                \
        for (Py_ssize_t j = 0; j < m; j++) {                                                \
            REAL v = src[j * stride], best = top[j];                                        \
            top[j] = CONVLAB_POOL_REPLACES(v, best) ? v : best;                             \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
static void convlab_window_max_##T(const REAL* plane, Py_ssize_t n1, Py_ssize_t n2,         \
                                   Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,          \
                                   Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,          \
                                   Py_ssize_t stride, Py_ssize_t m, REAL* top, REAL* win) { \
    const REAL* start = plane + (lo0 * n1 + lo1) * n2 + first;                              \
    Py_ssize_t q = 0;                                                                       \
    for (Py_ssize_t j = 0; j < m; j++) {                                                    \
        top[j] = start[j * stride];                                                         \
        if (win) win[j] = 0;                                                                \
    }                                                                                       \
    for (Py_ssize_t i0 = lo0; i0 < hi0; i0++)                                               \
        for (Py_ssize_t i1 = lo1; i1 < hi1; i1++)                                           \
            for (Py_ssize_t t = 0; t < k; t++, q++) {                                       \
                const REAL* src = plane + (i0 * n1 + i1) * n2 + first + t;                  \
                if (q == 0) continue;                                                       \
                if (stride == 1)                                                            \
                    convlab_window_max_step_##T(src, 1, m, top, win, (REAL)q);              \
                else if (stride == 2)                                                       \
                    convlab_window_max_step_##T(src, 2, m, top, win, (REAL)q);              \
                else                                                                        \
                    convlab_window_max_step_##T(src, stride, m, top, win, (REAL)q);         \
            }                                                                               \
}                                                                                           \
static void convlab_window_sum_##T(const REAL* plane, Py_ssize_t n1, Py_ssize_t n2,         \
                                   Py_ssize_t lo0, Py_ssize_t hi0, Py_ssize_t lo1,          \
                                   Py_ssize_t hi1, Py_ssize_t first, Py_ssize_t k,          \
                                   Py_ssize_t stride, Py_ssize_t m,                         \
                                   REAL* CONVLAB_POOL_RESTRICT sum) {                       \
    for (Py_ssize_t j = 0; j < m; j++)                                                      \
        sum[j] = -(REAL)0;                                                                  \
    for (Py_ssize_t i0 = lo0; i0 < hi0; i0++)                                               \
        for (Py_ssize_t i1 = lo1; i1 < hi1; i1++)                                           \
            for (Py_ssize_t t = 0; t < k; t++) {                                            \
                const REAL* CONVLAB_POOL_RESTRICT src =                                     \
                    plane + (i0 * n1 + i1) * n2 + first + t;                                \
                if (stride == 1)                                                            \
                    for (Py_ssize_t j = 0; j < m; j++) sum[j] += src[j];                    \
                else if (stride == 2)                                                       \
                    for (Py_ssize_t j = 0; j < m; j++) sum[j] += src[2 * j];                \
                else                                                                        \
                    for (Py_ssize_t j = 0; j < m; j++) sum[j] += src[j * stride];           \
            }                                                                               \
}

CONVLAB_POOL_WINDOWS(float, float)
CONVLAB_POOL_WINDOWS(double, double)
CONVLAB_POOL_ROWS(float, float, 16)
CONVLAB_POOL_ROWS(double, double, 8)

#endif
