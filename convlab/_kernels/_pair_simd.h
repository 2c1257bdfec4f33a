/* Register-blocked inner loop for two output lines at once, stride 1 (private).
 *
 *   out_a[i + u] += sum_r sum_j a_krows[r][j] * rows[r][offset + i + u + j * dilation]
 *   out_b[i + u] += sum_r sum_j b_krows[r][j] * rows[r][offset + i + u + j * dilation]
 *
 * for one block of outputs u = 0 .. 4 * LANES - 1; a NULL kernel row means the line does not
 * use that input row. Every input vector loaded serves both lines. Written with the GCC /
 * Clang vector extension because the compiler's auto-vectoriser spills the sixteen
 * accumulators of the equivalent Cython loop; other compilers get the plain C loop.
 */
#ifndef CONVLAB_PAIR_SIMD_H
#define CONVLAB_PAIR_SIMD_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_VECTOR_EXTENSION 1
#else
#define CONVLAB_VECTOR_EXTENSION 0
#endif

#if CONVLAB_VECTOR_EXTENSION

/* An empty asm statement that "modifies" the loaded vectors: without it the compiler folds
   each load into both multiply-adds that use it, loading every input vector twice. */
#if defined(__x86_64__) || defined(__i386__)
#define CONVLAB_KEEP_IN_REGISTERS(a, b, c, d) __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))
#else
#define CONVLAB_KEEP_IN_REGISTERS(a, b, c, d) ((void)0)
#endif

#define CONVLAB_DEFINE_PAIR_BLOCK(NAME, REAL, LANES)                                         \
typedef REAL NAME##_vec __attribute__((vector_size(LANES * sizeof(REAL))));                 \
static inline NAME##_vec NAME##_load(const REAL* p) {                                      \
    NAME##_vec v; memcpy(&v, p, sizeof v); return v;                                       \
}                                                                                           \
static inline void NAME##_store(REAL* p, NAME##_vec v) { memcpy(p, &v, sizeof v); }        \
static inline void NAME(const REAL* const* rows, const REAL* const* a_krows,               \
                        const REAL* const* b_krows, Py_ssize_t nrows, Py_ssize_t taps,     \
                        Py_ssize_t offset, Py_ssize_t dilation, REAL* out_a, REAL* out_b,  \
                        Py_ssize_t i) {                                                    \
    NAME##_vec a0 = NAME##_load(out_a + i), a1 = NAME##_load(out_a + i + LANES);            \
    NAME##_vec a2 = NAME##_load(out_a + i + 2 * LANES), a3 = NAME##_load(out_a + i + 3 * LANES); \
    NAME##_vec b0 = NAME##_load(out_b + i), b1 = NAME##_load(out_b + i + LANES);            \
    NAME##_vec b2 = NAME##_load(out_b + i + 2 * LANES), b3 = NAME##_load(out_b + i + 3 * LANES); \
    for (Py_ssize_t r = 0; r < nrows; r++) {                                               \
        const REAL* src = rows[r] + offset + i;                                            \
        const REAL* ka = a_krows[r];                                                        \
        const REAL* kb = b_krows[r];                                                        \
        if (ka != NULL && kb != NULL) {                                                     \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation) {                       \
                NAME##_vec x0 = NAME##_load(src), x1 = NAME##_load(src + LANES);           \
                NAME##_vec x2 = NAME##_load(src + 2 * LANES), x3 = NAME##_load(src + 3 * LANES); \
                CONVLAB_KEEP_IN_REGISTERS(x0, x1, x2, x3);                                 \
                REAL wa = ka[j], wb = kb[j];                                               \
                a0 += wa * x0; a1 += wa * x1; a2 += wa * x2; a3 += wa * x3;                \
                b0 += wb * x0; b1 += wb * x1; b2 += wb * x2; b3 += wb * x3;                \
            }                                                                               \
        } else if (ka != NULL) {                                                            \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation) {                       \
                REAL wa = ka[j];                                                           \
                a0 += wa * NAME##_load(src); a1 += wa * NAME##_load(src + LANES);          \
                a2 += wa * NAME##_load(src + 2 * LANES); a3 += wa * NAME##_load(src + 3 * LANES); \
            }                                                                               \
        } else {                                                                            \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation) {                       \
                REAL wb = kb[j];                                                           \
                b0 += wb * NAME##_load(src); b1 += wb * NAME##_load(src + LANES);          \
                b2 += wb * NAME##_load(src + 2 * LANES); b3 += wb * NAME##_load(src + 3 * LANES); \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    NAME##_store(out_a + i, a0); NAME##_store(out_a + i + LANES, a1);                       \
    NAME##_store(out_a + i + 2 * LANES, a2); NAME##_store(out_a + i + 3 * LANES, a3);       \
    NAME##_store(out_b + i, b0); NAME##_store(out_b + i + LANES, b1);                       \
    NAME##_store(out_b + i + 2 * LANES, b2); NAME##_store(out_b + i + 3 * LANES, b3);       \
}

#else  /* plain C: the same sums, one output at a time */

#define CONVLAB_DEFINE_PAIR_BLOCK(NAME, REAL, LANES)                                         \
static inline void NAME(const REAL* const* rows, const REAL* const* a_krows,               \
                        const REAL* const* b_krows, Py_ssize_t nrows, Py_ssize_t taps,     \
                        Py_ssize_t offset, Py_ssize_t dilation, REAL* out_a, REAL* out_b,  \
                        Py_ssize_t i) {                                                    \
    for (Py_ssize_t u = i; u < i + 4 * LANES; u++) {                                       \
        REAL sa = out_a[u], sb = out_b[u];                                                 \
        for (Py_ssize_t r = 0; r < nrows; r++) {                                           \
            const REAL* src = rows[r] + offset + u;                                        \
            for (Py_ssize_t j = 0; j < taps; j++) {                                        \
                if (a_krows[r] != NULL) sa += a_krows[r][j] * src[j * dilation];           \
                if (b_krows[r] != NULL) sb += b_krows[r][j] * src[j * dilation];           \
            }                                                                               \
        }                                                                                   \
        out_a[u] = sa; out_b[u] = sb;                                                      \
    }                                                                                       \
}

#endif

/* 8 floats or 4 doubles per 256-bit register: 16 outputs (4 registers) per line. */
CONVLAB_DEFINE_PAIR_BLOCK(convlab_pair_block_float, float, 8)
CONVLAB_DEFINE_PAIR_BLOCK(convlab_pair_block_double, double, 4)

#define CONVLAB_PAIR_BLOCK_FLOAT 32
#define CONVLAB_PAIR_BLOCK_DOUBLE 16

#endif
