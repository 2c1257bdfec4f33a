/* Two register-blocked inner loops of the direct kernel (private), written with the GCC /
 * Clang vector extension because the compiler's auto-vectoriser spills or reloads the
 * equivalent Cython loops; other compilers get plain C loops with the same sums.
 *
 * Pair blocks, stride 1:
 *   out_a[i + u] += sum_r sum_j a_krows[r][j] * rows[r][offset + i + u + j * dilation]
 *   out_b[i + u] += sum_r sum_j b_krows[r][j] * rows[r][offset + i + u + j * dilation]
 * for one block of outputs u = 0 .. 4 * LANES - 1; a NULL kernel row means the line does not
 * use that input row. Every input vector loaded serves both lines.
 *
 * Few outputs, long kernel rows (dilation 1), as a kernel gradient has:
 *   out[i + u] += sum_r sum_j krows[r][j] * rows[r][offset + (i + u) * stride + j]
 * for u < COUNT <= 4, over the taps j whose sample lies inside the row (n samples). The taps
 * that every output has in range run in vectors (each kernel vector loaded once for all
 * outputs), the others one at a time.
 */
#ifndef CONVLAB_SIMD_BLOCKS_H
#define CONVLAB_SIMD_BLOCKS_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_VECTOR_EXTENSION 1
#else
#define CONVLAB_VECTOR_EXTENSION 0
#endif

static inline Py_ssize_t convlab_clamp(Py_ssize_t v, Py_ssize_t lo, Py_ssize_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

#if CONVLAB_VECTOR_EXTENSION

/* An empty asm statement that "modifies" the loaded vectors: without it the compiler folds
   each load into both multiply-adds that use it, loading every input vector twice. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__AVX__)
#define CONVLAB_KEEP_IN_REGISTERS(a, b, c, d) __asm__("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d))
#define CONVLAB_KEEP_TWO_IN_REGISTERS(a, b) __asm__("" : "+x"(a), "+x"(b))
#else
#define CONVLAB_KEEP_IN_REGISTERS(a, b, c, d) ((void)0)
#define CONVLAB_KEEP_TWO_IN_REGISTERS(a, b) ((void)0)
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


/* The same for one vector of outputs per line (short lines). */
#define CONVLAB_DEFINE_NARROW_PAIR_BLOCK(NAME, PAIR, REAL, LANES)                              \
static inline void NAME(const REAL* const* rows, const REAL* const* a_krows,                  \
                        const REAL* const* b_krows, Py_ssize_t nrows, Py_ssize_t taps,        \
                        Py_ssize_t offset, Py_ssize_t dilation, REAL* out_a, REAL* out_b,     \
                        Py_ssize_t i) {                                                       \
    PAIR##_vec a0 = PAIR##_load(out_a + i), b0 = PAIR##_load(out_b + i);                      \
    for (Py_ssize_t r = 0; r < nrows; r++) {                                                  \
        const REAL* src = rows[r] + offset + i;                                               \
        const REAL* ka = a_krows[r];                                                          \
        const REAL* kb = b_krows[r];                                                          \
        if (ka != NULL && kb != NULL) {                                                       \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation) {                          \
                PAIR##_vec x0 = PAIR##_load(src);                                             \
                a0 += ka[j] * x0;                                                             \
                b0 += kb[j] * x0;                                                             \
            }                                                                                 \
        } else if (ka != NULL) {                                                              \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation)                            \
                a0 += ka[j] * PAIR##_load(src);                                               \
        } else {                                                                              \
            for (Py_ssize_t j = 0; j < taps; j++, src += dilation)                            \
                b0 += kb[j] * PAIR##_load(src);                                               \
        }                                                                                     \
    }                                                                                         \
    PAIR##_store(out_a + i, a0);                                                              \
    PAIR##_store(out_b + i, b0);                                                              \
}

#define CONVLAB_DEFINE_FEW_OUTPUTS(NAME, PAIR, REAL, LANES, COUNT)                            \
static inline void NAME(const REAL* const* rows, const REAL* const* krows, Py_ssize_t nrows, \
                        Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t stride, \
                        REAL* out, Py_ssize_t i) {                                           \
    PAIR##_vec acc[COUNT][2];                                                                 \
    REAL single[COUNT];                                                                       \
    Py_ssize_t first[COUNT], stop[COUNT], vector_first = 0, vector_stop = taps;              \
    for (int u = 0; u < COUNT; u++) {                                                         \
        Py_ssize_t start = offset + (i + u) * stride;                                         \
        first[u] = convlab_clamp(-start, 0, taps);                                            \
        stop[u] = convlab_clamp(n - start, first[u], taps);                                   \
        if (first[u] > vector_first) vector_first = first[u];                                 \
        if (stop[u] < vector_stop) vector_stop = stop[u];                                     \
        acc[u][0] = acc[u][1] = (PAIR##_vec){0};                                              \
        single[u] = 0;                                                                        \
    }                                                                                         \
    /* the vector part: whole pairs of vectors inside every output's range */                \
    Py_ssize_t vector_end = vector_first;                                                     \
    if (vector_stop > vector_first)                                                           \
        vector_end += (vector_stop - vector_first) / (2 * LANES) * (2 * LANES);              \
    for (Py_ssize_t r = 0; r < nrows; r++) {                                                  \
        const REAL* k = krows[r];                                                             \
        if (k == NULL) continue;                                                              \
        const REAL* x = rows[r] + offset + i * stride;                                        \
        for (Py_ssize_t j = vector_first; j < vector_end; j += 2 * LANES) {                   \
            PAIR##_vec k0 = PAIR##_load(k + j), k1 = PAIR##_load(k + j + LANES);              \
            CONVLAB_KEEP_TWO_IN_REGISTERS(k0, k1);                                            \
            for (int u = 0; u < COUNT; u++) {                                                 \
                acc[u][0] += k0 * PAIR##_load(x + u * stride + j);                            \
                acc[u][1] += k1 * PAIR##_load(x + u * stride + j + LANES);                    \
            }                                                                                 \
        }                                                                                     \
        for (int u = 0; u < COUNT; u++) {                                                     \
            Py_ssize_t head_stop = stop[u] < vector_first ? stop[u] : vector_first;           \
            Py_ssize_t tail_first = first[u] > vector_end ? first[u] : vector_end;            \
            for (Py_ssize_t j = first[u]; j < head_stop; j++)                                 \
                single[u] += k[j] * x[u * stride + j];                                        \
            for (Py_ssize_t j = tail_first; j < stop[u]; j++)                                 \
                single[u] += k[j] * x[u * stride + j];                                        \
        }                                                                                     \
    }                                                                                         \
    for (int u = 0; u < COUNT; u++) {                                                         \
        PAIR##_vec both = acc[u][0] + acc[u][1];                                              \
        REAL total = 0;                                                                       \
        for (int l = 0; l < LANES; l++) total += both[l];                                     \
        out[i + u] += total + single[u];                                                      \
    }                                                                                         \
}

#else  /* plain C: the same sums, one output at a time */

/* Both pair blocks as one loop over their WIDTH outputs per line. */
#define CONVLAB_SCALAR_PAIR_BLOCK(NAME, REAL, WIDTH)                                          \
static inline void NAME(const REAL* const* rows, const REAL* const* a_krows,                  \
                        const REAL* const* b_krows, Py_ssize_t nrows, Py_ssize_t taps,        \
                        Py_ssize_t offset, Py_ssize_t dilation, REAL* out_a, REAL* out_b,     \
                        Py_ssize_t i) {                                                       \
    for (Py_ssize_t u = i; u < i + (WIDTH); u++) {                                            \
        REAL sa = out_a[u], sb = out_b[u];                                                    \
        for (Py_ssize_t r = 0; r < nrows; r++) {                                              \
            const REAL* src = rows[r] + offset + u;                                           \
            for (Py_ssize_t j = 0; j < taps; j++) {                                           \
                if (a_krows[r] != NULL) sa += a_krows[r][j] * src[j * dilation];              \
                if (b_krows[r] != NULL) sb += b_krows[r][j] * src[j * dilation];              \
            }                                                                                 \
        }                                                                                     \
        out_a[u] = sa; out_b[u] = sb;                                                         \
    }                                                                                         \
}
#define CONVLAB_DEFINE_NARROW_PAIR_BLOCK(NAME, PAIR, REAL, LANES)                              \
    CONVLAB_SCALAR_PAIR_BLOCK(NAME, REAL, LANES)
#define CONVLAB_DEFINE_PAIR_BLOCK(NAME, REAL, LANES)                                          \
    CONVLAB_SCALAR_PAIR_BLOCK(NAME, REAL, 4 * (LANES))

#define CONVLAB_DEFINE_FEW_OUTPUTS(NAME, PAIR, REAL, LANES, COUNT)                            \
static inline void NAME(const REAL* const* rows, const REAL* const* krows, Py_ssize_t nrows, \
                        Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t stride, \
                        REAL* out, Py_ssize_t i) {                                           \
    for (int u = 0; u < COUNT; u++) {                                                         \
        Py_ssize_t start = offset + (i + u) * stride;                                         \
        Py_ssize_t first = convlab_clamp(-start, 0, taps);                                    \
        Py_ssize_t stop = convlab_clamp(n - start, first, taps);                              \
        REAL total = 0;                                                                       \
        for (Py_ssize_t r = 0; r < nrows; r++) {                                              \
            if (krows[r] == NULL) continue;                                                   \
            for (Py_ssize_t j = first; j < stop; j++)                                         \
                total += krows[r][j] * rows[r][start + j];                                    \
        }                                                                                     \
        out[i + u] += total;                                                                  \
    }                                                                                         \
}

#endif

/* 8 floats or 4 doubles per 256-bit register: 16 outputs (4 registers) per line. */
CONVLAB_DEFINE_PAIR_BLOCK(convlab_pair_block_float, float, 8)
CONVLAB_DEFINE_PAIR_BLOCK(convlab_pair_block_double, double, 4)

#define CONVLAB_PAIR_BLOCK_FLOAT 32
#define CONVLAB_PAIR_BLOCK_DOUBLE 16

CONVLAB_DEFINE_NARROW_PAIR_BLOCK(convlab_narrow_pair_block_float, convlab_pair_block_float, float, 8)
CONVLAB_DEFINE_NARROW_PAIR_BLOCK(convlab_narrow_pair_block_double, convlab_pair_block_double, double, 4)
#define CONVLAB_NARROW_PAIR_BLOCK_FLOAT 8
#define CONVLAB_NARROW_PAIR_BLOCK_DOUBLE 4
/* Half a register of floats (4 outputs per line) for what is left of a short line. */
CONVLAB_DEFINE_PAIR_BLOCK(convlab_pair_block_float4, float, 4)
CONVLAB_DEFINE_NARROW_PAIR_BLOCK(convlab_half_pair_block_float, convlab_pair_block_float4, float, 4)
#define CONVLAB_HALF_PAIR_BLOCK_FLOAT 4

/* Stride 2 along the line, one line: out[i + u] += sum_r sum_j krows[r][j] *
 * rows[r][offset + 2 (i + u) + j * dilation] for u < 4 * LANES. Each vector of outputs
 * takes the even elements of two consecutive input vectors (one shuffle) instead of a
 * gather. Defined where the compiler has __builtin_shufflevector. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector) && CONVLAB_VECTOR_EXTENSION
#define CONVLAB_HAVE_STRIDE2_BLOCK 1
#endif
#endif
#ifndef CONVLAB_HAVE_STRIDE2_BLOCK
#define CONVLAB_HAVE_STRIDE2_BLOCK 0
#endif

#if CONVLAB_HAVE_STRIDE2_BLOCK
#define CONVLAB_DEFINE_STRIDE2_BLOCK(NAME, PAIR, REAL, LANES, ...)                              \
static inline PAIR##_vec NAME##_even(const REAL* p) {                                         \
    return __builtin_shufflevector(PAIR##_load(p), PAIR##_load(p + LANES), __VA_ARGS__);      \
}                                                                                             \
static inline void NAME(const REAL* const* rows, const REAL* const* krows, Py_ssize_t nrows, \
                        Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t dilation, REAL* out,  \
                        Py_ssize_t i) {                                                      \
    PAIR##_vec a0 = PAIR##_load(out + i), a1 = PAIR##_load(out + i + LANES);                  \
    PAIR##_vec a2 = PAIR##_load(out + i + 2 * LANES), a3 = PAIR##_load(out + i + 3 * LANES);  \
    for (Py_ssize_t r = 0; r < nrows; r++) {                                                  \
        const REAL* src = rows[r] + offset + 2 * i;                                           \
        const REAL* k = krows[r];                                                             \
        for (Py_ssize_t j = 0; j < taps; j++, src += dilation) {                              \
            REAL w = k[j];                                                                    \
            a0 += w * NAME##_even(src);                                                       \
            a1 += w * NAME##_even(src + 2 * LANES);                                           \
            a2 += w * NAME##_even(src + 4 * LANES);                                           \
            a3 += w * NAME##_even(src + 6 * LANES);                                           \
        }                                                                                     \
    }                                                                                         \
    PAIR##_store(out + i, a0); PAIR##_store(out + i + LANES, a1);                             \
    PAIR##_store(out + i + 2 * LANES, a2); PAIR##_store(out + i + 3 * LANES, a3);             \
}
CONVLAB_DEFINE_STRIDE2_BLOCK(convlab_stride2_block_float, convlab_pair_block_float, float, 8,
                             0, 2, 4, 6, 8, 10, 12, 14)
CONVLAB_DEFINE_STRIDE2_BLOCK(convlab_stride2_block_double, convlab_pair_block_double, double, 4,
                             0, 2, 4, 6)
#else
/* Without the vector extension: never called (CONVLAB_HAVE_STRIDE2_BLOCK is 0). */
#define CONVLAB_STRIDE2_UNAVAILABLE(NAME, REAL)                                               \
static inline void NAME(const REAL* const* rows, const REAL* const* krows, Py_ssize_t nrows, \
                        Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t dilation, REAL* out,  \
                        Py_ssize_t i) {                                                      \
    (void)rows; (void)krows; (void)nrows; (void)taps; (void)offset; (void)dilation;           \
    (void)out; (void)i;                                                                       \
}
CONVLAB_STRIDE2_UNAVAILABLE(convlab_stride2_block_float, float)
CONVLAB_STRIDE2_UNAVAILABLE(convlab_stride2_block_double, double)
#endif

CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_float_1, convlab_pair_block_float, float, 8, 1)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_float_2, convlab_pair_block_float, float, 8, 2)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_float_3, convlab_pair_block_float, float, 8, 3)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_float_4, convlab_pair_block_float, float, 8, 4)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_double_1, convlab_pair_block_double, double, 4, 1)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_double_2, convlab_pair_block_double, double, 4, 2)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_double_3, convlab_pair_block_double, double, 4, 3)
CONVLAB_DEFINE_FEW_OUTPUTS(convlab_few_double_4, convlab_pair_block_double, double, 4, 4)

/* Outputs [lo, hi) of one line, four at a time. */
#define CONVLAB_DEFINE_FEW_OUTPUTS_RANGE(NAME, REAL, PREFIX)                                 \
static inline void NAME(const REAL** rows, const REAL** krows, Py_ssize_t nrows,             \
                        Py_ssize_t n, Py_ssize_t taps, Py_ssize_t offset, Py_ssize_t stride, \
                        REAL* out, Py_ssize_t lo, Py_ssize_t hi) {                           \
    Py_ssize_t i = lo;                                                                        \
    for (; i + 4 <= hi; i += 4)                                                               \
        PREFIX##_4(rows, krows, nrows, n, taps, offset, stride, out, i);                      \
    switch (hi - i) {                                                                         \
        case 3: PREFIX##_3(rows, krows, nrows, n, taps, offset, stride, out, i); break;       \
        case 2: PREFIX##_2(rows, krows, nrows, n, taps, offset, stride, out, i); break;       \
        case 1: PREFIX##_1(rows, krows, nrows, n, taps, offset, stride, out, i); break;       \
        default: break;                                                                       \
    }                                                                                         \
}
CONVLAB_DEFINE_FEW_OUTPUTS_RANGE(convlab_few_outputs_float, float, convlab_few_float)
CONVLAB_DEFINE_FEW_OUTPUTS_RANGE(convlab_few_outputs_double, double, convlab_few_double)

#endif
