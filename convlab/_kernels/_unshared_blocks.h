/* Register blocks of the locally connected kernels (private).
 *
 * The input is stored batch-last: the images of one sample are consecutive, x[offset + n]
 * with n < nvec * LANES (the batch padded with zeros to whole vectors). For one output
 * location, whose R kernel taps read the samples at offsets rows[0 .. R-1]:
 *
 *   forward        out[f * nvec * LANES + n]  = sum_r w[f * wstride + r] * x[rows[r] + n]
 *   input grad     dx[rows[r] + n]           += sum_f w[f * wstride + r] * g[f * gstride + n]
 *   weight grad    dw[f * wstride + r]       += sum_n g[f * gstride + n] * x[rows[r] + n]
 *
 * The weight gradient takes several locations that share their kernel (a tiled convolution)
 * at once, x = xs[l] and g + l * lstride for the l-th, and reduces the vectors of per-lane
 * sums to numbers once for all of them.
 *
 * Each sum runs over vectors of images: a weight is loaded once and multiplies a whole
 * vector of images. The blocks are written with the GCC / Clang vector extension (32-byte
 * vectors: AVX2, or halves of them on older machines; 64-byte float64 vectors on AVX-512
 * machines, see CONVLAB_UNSHARED_BYTES_DOUBLE); other compilers get plain C loops with the
 * same sums.
 */
#ifndef CONVLAB_UNSHARED_BLOCKS_H
#define CONVLAB_UNSHARED_BLOCKS_H

#include <stddef.h>
#include <string.h>

#ifndef CONVLAB_VECTOR_EXTENSION
#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_VECTOR_EXTENSION 1
#else
#define CONVLAB_VECTOR_EXTENSION 0
#endif
#endif

#define CONVLAB_UNSHARED_BYTES 32
/* The forward and input-gradient blocks of float64 take whole 64-byte vectors where the
   machine has them (AVX-512): a batch of 32 images is then one block of four vectors, each
   weight loaded once for all of them. The weight gradient, which reduces its vectors to
   numbers, keeps 32-byte ones (wider reductions cost more than the wider vectors save). */
#if CONVLAB_VECTOR_EXTENSION && defined(__AVX512F__)
#define CONVLAB_UNSHARED_BYTES_DOUBLE 64
#else
#define CONVLAB_UNSHARED_BYTES_DOUBLE 32
#endif
#define CONVLAB_LANES_FLOAT (CONVLAB_UNSHARED_BYTES / 4)
#define CONVLAB_LANES_DOUBLE (CONVLAB_UNSHARED_BYTES_DOUBLE / 8)
#define CONVLAB_GW_LANES_FLOAT (CONVLAB_UNSHARED_BYTES / 4)
#define CONVLAB_GW_LANES_DOUBLE (CONVLAB_UNSHARED_BYTES / 8)

#if CONVLAB_VECTOR_EXTENSION

#if defined(__clang__)
#define CONVLAB_SHUFFLE(a, b, mask_type, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define CONVLAB_SHUFFLE(a, b, mask_type, ...) __builtin_shuffle(a, b, (mask_type){__VA_ARGS__})
#endif
#define CONVLAB_UNROLL _Pragma("GCC unroll 16")
/* An empty asm statement that "modifies" a loaded vector: without it the compiler folds the
   load into every multiply-add that uses it, loading the same vector B times. */
#if (defined(__x86_64__) || defined(__i386__)) && defined(__AVX__)
#define CONVLAB_IN_REGISTER(v) __asm__("" : "+x"(v))
#else
#define CONVLAB_IN_REGISTER(v) ((void)0)
#endif

typedef float convlab_vf __attribute__((vector_size(CONVLAB_UNSHARED_BYTES)));
typedef double convlab_vd __attribute__((vector_size(CONVLAB_UNSHARED_BYTES_DOUBLE)));
typedef double convlab_vd_gw __attribute__((vector_size(CONVLAB_UNSHARED_BYTES)));
typedef int convlab_mask_f __attribute__((vector_size(CONVLAB_UNSHARED_BYTES)));
typedef long long convlab_mask_d __attribute__((vector_size(CONVLAB_UNSHARED_BYTES)));
typedef float convlab_vf_half __attribute__((vector_size(CONVLAB_UNSHARED_BYTES / 2)));

/* The four lane sums of a, b, c, d added to s[0..3]: pairwise shuffles and adds rather than
   a lane-by-lane loop (a weight gradient ends every block with such sums). */
static inline void convlab_add_sums4_float(convlab_vf a, convlab_vf b, convlab_vf c,
                                           convlab_vf d, float* s) {
    convlab_vf ab = CONVLAB_SHUFFLE(a, b, convlab_mask_f, 0, 8, 2, 10, 4, 12, 6, 14)
                  + CONVLAB_SHUFFLE(a, b, convlab_mask_f, 1, 9, 3, 11, 5, 13, 7, 15);
    convlab_vf cd = CONVLAB_SHUFFLE(c, d, convlab_mask_f, 0, 8, 2, 10, 4, 12, 6, 14)
                  + CONVLAB_SHUFFLE(c, d, convlab_mask_f, 1, 9, 3, 11, 5, 13, 7, 15);
    /* [a, b, c, d] partial sums of lanes 0-3, then of lanes 4-7 */
    convlab_vf abcd = CONVLAB_SHUFFLE(ab, cd, convlab_mask_f, 0, 1, 8, 9, 4, 5, 12, 13)
                    + CONVLAB_SHUFFLE(ab, cd, convlab_mask_f, 2, 3, 10, 11, 6, 7, 14, 15);
    convlab_vf_half lo, hi, out;
    memcpy(&lo, &abcd, sizeof lo);
    memcpy(&hi, (const char*)&abcd + sizeof lo, sizeof hi);
    memcpy(&out, s, sizeof out);
    out += lo + hi;
    memcpy(s, &out, sizeof out);
}

static inline void convlab_add_sums4_double(convlab_vd_gw a, convlab_vd_gw b,
                                            convlab_vd_gw c, convlab_vd_gw d, double* s) {
    convlab_vd_gw ab = CONVLAB_SHUFFLE(a, b, convlab_mask_d, 0, 4, 2, 6)
                     + CONVLAB_SHUFFLE(a, b, convlab_mask_d, 1, 5, 3, 7);
    convlab_vd_gw cd = CONVLAB_SHUFFLE(c, d, convlab_mask_d, 0, 4, 2, 6)
                     + CONVLAB_SHUFFLE(c, d, convlab_mask_d, 1, 5, 3, 7);
    convlab_vd_gw out;
    memcpy(&out, s, sizeof out);
    out += CONVLAB_SHUFFLE(ab, cd, convlab_mask_d, 0, 1, 4, 5)
         + CONVLAB_SHUFFLE(ab, cd, convlab_mask_d, 2, 3, 6, 7);
    memcpy(s, &out, sizeof out);
}

#define CONVLAB_LOCAL_BLOCKS(T, REAL, VEC, LANES, GVEC, GLANES)                             \
static inline VEC convlab_load_##T(const REAL* p) { VEC v; memcpy(&v, p, sizeof v); return v; } \
static inline void convlab_store_##T(REAL* p, VEC v) { memcpy(p, &v, sizeof v); }          \
static inline GVEC convlab_gload_##T(const REAL* p) {                                      \
    GVEC v; memcpy(&v, p, sizeof v); return v;                                             \
}                                                                                           \
                                                                                            \
/* forward: B filters x V image vectors of out, summed over the taps */                    \
CONVLAB_LOCAL_FORWARD_BLOCK(T, REAL, VEC, LANES, 4, 4)                                     \
CONVLAB_LOCAL_FORWARD_BLOCK(T, REAL, VEC, LANES, 4, 1)                                     \
CONVLAB_LOCAL_FORWARD_BLOCK(T, REAL, VEC, LANES, 1, 4)                                     \
CONVLAB_LOCAL_FORWARD_BLOCK(T, REAL, VEC, LANES, 1, 1)                                     \
static void convlab_local_forward_##T(const REAL* x, const Py_ssize_t* rows,               \
                                      Py_ssize_t nrows, const REAL* w, Py_ssize_t wstride, \
                                      Py_ssize_t filters, Py_ssize_t nvec, REAL* out) {    \
    Py_ssize_t ostride = nvec * LANES, f = 0, v;                                           \
    for (; f + 4 <= filters; f += 4) {                                                     \
        for (v = 0; v + 4 <= nvec; v += 4)                                                 \
            convlab_fwd_##T##_4x4(x + v * LANES, rows, nrows, w + f * wstride, wstride,    \
                                  out + f * ostride + v * LANES, ostride);                 \
        for (; v < nvec; v++)                                                              \
            convlab_fwd_##T##_4x1(x + v * LANES, rows, nrows, w + f * wstride, wstride,    \
                                  out + f * ostride + v * LANES, ostride);                 \
    }                                                                                      \
    for (; f < filters; f++) {                                                             \
        for (v = 0; v + 4 <= nvec; v += 4)                                                 \
            convlab_fwd_##T##_1x4(x + v * LANES, rows, nrows, w + f * wstride, wstride,    \
                                  out + f * ostride + v * LANES, ostride);                 \
        for (; v < nvec; v++)                                                              \
            convlab_fwd_##T##_1x1(x + v * LANES, rows, nrows, w + f * wstride, wstride,    \
                                  out + f * ostride + v * LANES, ostride);                 \
    }                                                                                      \
}                                                                                           \
                                                                                            \
/* input gradient: B taps x V image vectors, summed over the filters, added into dx */     \
CONVLAB_LOCAL_GRAD_INPUT_BLOCK(T, REAL, VEC, LANES, 4, 4)                                  \
CONVLAB_LOCAL_GRAD_INPUT_BLOCK(T, REAL, VEC, LANES, 4, 1)                                  \
CONVLAB_LOCAL_GRAD_INPUT_BLOCK(T, REAL, VEC, LANES, 1, 4)                                  \
CONVLAB_LOCAL_GRAD_INPUT_BLOCK(T, REAL, VEC, LANES, 1, 1)                                  \
static void convlab_local_grad_input_##T(REAL* dx, const Py_ssize_t* rows,                 \
                                         Py_ssize_t nrows, const REAL* w,                  \
                                         Py_ssize_t wstride, Py_ssize_t filters,           \
                                         const REAL* g, Py_ssize_t gstride,                \
                                         Py_ssize_t nvec) {                                \
    Py_ssize_t r = 0, v;                                                                   \
    for (; r + 4 <= nrows; r += 4) {                                                       \
        for (v = 0; v + 4 <= nvec; v += 4)                                                 \
            convlab_gin_##T##_4x4(dx + v * LANES, rows + r, w + r, wstride, filters,       \
                                  g + v * LANES, gstride);                                 \
        for (; v < nvec; v++)                                                              \
            convlab_gin_##T##_4x1(dx + v * LANES, rows + r, w + r, wstride, filters,       \
                                  g + v * LANES, gstride);                                 \
    }                                                                                      \
    for (; r < nrows; r++) {                                                               \
        for (v = 0; v + 4 <= nvec; v += 4)                                                 \
            convlab_gin_##T##_1x4(dx + v * LANES, rows + r, w + r, wstride, filters,       \
                                  g + v * LANES, gstride);                                 \
        for (; v < nvec; v++)                                                              \
            convlab_gin_##T##_1x1(dx + v * LANES, rows + r, w + r, wstride, filters,       \
                                  g + v * LANES, gstride);                                 \
    }                                                                                      \
}                                                                                           \
                                                                                            \
/* weight gradient: 4 filters x 4 taps, each a vector of per-lane sums over the images of  \
   every location given (locations sharing a kernel, as in a tiled convolution), reduced to \
   4 x 4 sums once at the end */                                                           \
static inline void convlab_gw_##T##_4x4(REAL* dw, Py_ssize_t wstride,                       \
                                        const REAL* const* xs, Py_ssize_t nloc,            \
                                        const Py_ssize_t* rows, const REAL* g,             \
                                        Py_ssize_t gstride, Py_ssize_t lstride,            \
                                        Py_ssize_t nvec) {                                 \
    GVEC acc[4][4];                                                                         \
    CONVLAB_UNROLL for (int b = 0; b < 4; b++)                                             \
        CONVLAB_UNROLL for (int j = 0; j < 4; j++) acc[b][j] = (GVEC){0};                   \
    for (Py_ssize_t l = 0; l < nloc; l++) {                                                \
        const REAL* x = xs[l];                                                             \
        const REAL* gl = g + l * lstride;                                                  \
        for (Py_ssize_t v = 0; v < nvec; v++) {                                            \
            GVEC gv[4], xv[4];                                                              \
            CONVLAB_UNROLL for (int b = 0; b < 4; b++) {                                   \
                gv[b] = convlab_gload_##T(gl + b * gstride + v * GLANES);                    \
                CONVLAB_IN_REGISTER(gv[b]);                                                \
            }                                                                              \
            CONVLAB_UNROLL for (int j = 0; j < 4; j++) {                                   \
                xv[j] = convlab_gload_##T(x + rows[j] + v * GLANES);                         \
                CONVLAB_IN_REGISTER(xv[j]);                                                \
            }                                                                              \
            CONVLAB_UNROLL for (int b = 0; b < 4; b++)                                     \
                CONVLAB_UNROLL for (int j = 0; j < 4; j++) acc[b][j] += gv[b] * xv[j];     \
        }                                                                                  \
    }                                                                                      \
    CONVLAB_UNROLL for (int b = 0; b < 4; b++)                                             \
        convlab_add_sums4_##T(acc[b][0], acc[b][1], acc[b][2], acc[b][3],                  \
                              dw + b * wstride);                                           \
}                                                                                           \
static inline void convlab_gw_##T##_1x1(REAL* dw, const REAL* const* xs, Py_ssize_t nloc,  \
                                        Py_ssize_t row, const REAL* g, Py_ssize_t lstride, \
                                        Py_ssize_t nvec) {                                 \
    GVEC acc = (GVEC){0};                                                                    \
    for (Py_ssize_t l = 0; l < nloc; l++)                                                  \
        for (Py_ssize_t v = 0; v < nvec; v++)                                              \
            acc += convlab_gload_##T(g + l * lstride + v * GLANES)                           \
                   * convlab_gload_##T(xs[l] + row + v * GLANES);                            \
    REAL sum = 0;                                                                          \
    for (int lane = 0; lane < GLANES; lane++) sum += acc[lane];                             \
    *dw += sum;                                                                            \
}                                                                                           \
static void convlab_local_grad_weight_##T(REAL* dw, Py_ssize_t wstride, Py_ssize_t filters,\
                                          const REAL* const* xs, Py_ssize_t nloc,          \
                                          const Py_ssize_t* rows, Py_ssize_t nrows,        \
                                          const REAL* g, Py_ssize_t gstride,               \
                                          Py_ssize_t lstride, Py_ssize_t width) {          \
    Py_ssize_t f = 0, r, nvec = width / GLANES;                                            \
    for (; f + 4 <= filters; f += 4) {                                                     \
        for (r = 0; r + 4 <= nrows; r += 4)                                                \
            convlab_gw_##T##_4x4(dw + f * wstride + r, wstride, xs, nloc, rows + r,        \
                                 g + f * gstride, gstride, lstride, nvec);                 \
        for (; r < nrows; r++)                                                             \
            for (Py_ssize_t b = f; b < f + 4; b++)                                         \
                convlab_gw_##T##_1x1(dw + b * wstride + r, xs, nloc, rows[r],              \
                                     g + b * gstride, lstride, nvec);                      \
    }                                                                                      \
    for (; f < filters; f++)                                                               \
        for (r = 0; r < nrows; r++)                                                        \
            convlab_gw_##T##_1x1(dw + f * wstride + r, xs, nloc, rows[r], g + f * gstride, \
                                 lstride, nvec);                                           \
}

#define CONVLAB_LOCAL_FORWARD_BLOCK(T, REAL, VEC, LANES, B, V)                              \
static inline void convlab_fwd_##T##_##B##x##V(const REAL* x, const Py_ssize_t* rows,      \
                                               Py_ssize_t nrows, const REAL* w,            \
                                               Py_ssize_t wstride, REAL* out,              \
                                               Py_ssize_t ostride) {                       \
    VEC acc[B][V];                                                                         \
    CONVLAB_UNROLL for (int b = 0; b < B; b++)                                             \
        CONVLAB_UNROLL for (int v = 0; v < V; v++) acc[b][v] = (VEC){0};                   \
    for (Py_ssize_t r = 0; r < nrows; r++) {                                               \
        VEC xv[V];                                                                         \
        CONVLAB_UNROLL for (int v = 0; v < V; v++) {                                       \
            xv[v] = convlab_load_##T(x + rows[r] + v * LANES);                             \
            CONVLAB_IN_REGISTER(xv[v]);                                                    \
        }                                                                                  \
        CONVLAB_UNROLL for (int b = 0; b < B; b++) {                                       \
            REAL wb = w[b * wstride + r];                                                  \
            CONVLAB_UNROLL for (int v = 0; v < V; v++) acc[b][v] += wb * xv[v];            \
        }                                                                                  \
    }                                                                                      \
    CONVLAB_UNROLL for (int b = 0; b < B; b++)                                             \
        CONVLAB_UNROLL for (int v = 0; v < V; v++)                                         \
            convlab_store_##T(out + b * ostride + v * LANES, acc[b][v]);                   \
}

#define CONVLAB_LOCAL_GRAD_INPUT_BLOCK(T, REAL, VEC, LANES, B, V)                           \
static inline void convlab_gin_##T##_##B##x##V(REAL* dx, const Py_ssize_t* rows,           \
                                               const REAL* w, Py_ssize_t wstride,          \
                                               Py_ssize_t filters, const REAL* g,          \
                                               Py_ssize_t gstride) {                       \
    VEC acc[B][V];                                                                         \
    CONVLAB_UNROLL for (int b = 0; b < B; b++)                                             \
        CONVLAB_UNROLL for (int v = 0; v < V; v++)                                         \
            acc[b][v] = convlab_load_##T(dx + rows[b] + v * LANES);                        \
    for (Py_ssize_t f = 0; f < filters; f++) {                                             \
        VEC gv[V];                                                                         \
        CONVLAB_UNROLL for (int v = 0; v < V; v++) {                                       \
            gv[v] = convlab_load_##T(g + f * gstride + v * LANES);                         \
            CONVLAB_IN_REGISTER(gv[v]);                                                    \
        }                                                                                  \
        CONVLAB_UNROLL for (int b = 0; b < B; b++) {                                       \
            REAL wb = w[f * wstride + b];                                                  \
            CONVLAB_UNROLL for (int v = 0; v < V; v++) acc[b][v] += wb * gv[v];            \
        }                                                                                  \
    }                                                                                      \
    CONVLAB_UNROLL for (int b = 0; b < B; b++)                                             \
        CONVLAB_UNROLL for (int v = 0; v < V; v++)                                         \
            convlab_store_##T(dx + rows[b] + v * LANES, acc[b][v]);                        \
}

CONVLAB_LOCAL_BLOCKS(float, float, convlab_vf, CONVLAB_LANES_FLOAT, convlab_vf,
                     CONVLAB_GW_LANES_FLOAT)
CONVLAB_LOCAL_BLOCKS(double, double, convlab_vd, CONVLAB_LANES_DOUBLE, convlab_vd_gw,
                     CONVLAB_GW_LANES_DOUBLE)

#else  /* plain C: the same sums, one image at a time */

#define CONVLAB_LOCAL_PLAIN(T, REAL, LANES)                                                 \
static void convlab_local_forward_##T(const REAL* x, const Py_ssize_t* rows,               \
                                      Py_ssize_t nrows, const REAL* w, Py_ssize_t wstride, \
                                      Py_ssize_t filters, Py_ssize_t nvec, REAL* out) {    \
    for (Py_ssize_t f = 0; f < filters; f++)                                               \
        for (Py_ssize_t n = 0; n < nvec * LANES; n++) {                                    \
            REAL sum = 0;                                                                  \
            for (Py_ssize_t r = 0; r < nrows; r++) sum += w[f * wstride + r] * x[rows[r] + n]; \
            out[f * nvec * LANES + n] = sum;                                               \
        }                                                                                  \
}                                                                                           \
static void convlab_local_grad_input_##T(REAL* dx, const Py_ssize_t* rows,                 \
                                         Py_ssize_t nrows, const REAL* w,                  \
                                         Py_ssize_t wstride, Py_ssize_t filters,           \
                                         const REAL* g, Py_ssize_t gstride,                \
                                         Py_ssize_t nvec) {                                \
    for (Py_ssize_t r = 0; r < nrows; r++)                                                 \
        for (Py_ssize_t n = 0; n < nvec * LANES; n++) {                                    \
            REAL sum = 0;                                                                  \
            for (Py_ssize_t f = 0; f < filters; f++)                                       \
                sum += w[f * wstride + r] * g[f * gstride + n];                            \
            dx[rows[r] + n] += sum;                                                        \
        }                                                                                  \
}                                                                                           \
static void convlab_local_grad_weight_##T(REAL* dw, Py_ssize_t wstride, Py_ssize_t filters,\
                                          const REAL* const* xs, Py_ssize_t nloc,          \
                                          const Py_ssize_t* rows, Py_ssize_t nrows,        \
                                          const REAL* g, Py_ssize_t gstride,               \
                                          Py_ssize_t lstride, Py_ssize_t width) {          \
    for (Py_ssize_t f = 0; f < filters; f++)                                               \
        for (Py_ssize_t r = 0; r < nrows; r++) {                                           \
            REAL sum = 0;                                                                  \
            for (Py_ssize_t l = 0; l < nloc; l++)                                          \
                for (Py_ssize_t n = 0; n < width; n++)                                     \
                    sum += g[l * lstride + f * gstride + n] * xs[l][rows[r] + n];          \
            dw[f * wstride + r] += sum;                                                    \
        }                                                                                  \
}

CONVLAB_LOCAL_PLAIN(float, float, CONVLAB_LANES_FLOAT)
CONVLAB_LOCAL_PLAIN(double, double, CONVLAB_LANES_DOUBLE)

#endif

#endif  /* CONVLAB_UNSHARED_BLOCKS_H */
