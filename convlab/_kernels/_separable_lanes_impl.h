/* One element type of _separable_lanes.h: included there with SEPV_T (float or double) and
 * SEPV_LANES set. All names end in _float or _double. */

#define REAL SEPV_T
#define LN SEPV_LANES
#define FN(name) CONVLAB_SEPV_CAT(CONVLAB_SEPV_CAT(convlab_sepv_, name), \
                                  CONVLAB_SEPV_CAT(_, SEPV_T))
#define VEC FN(vec)
#define RS CONVLAB_SEPV_RESTRICT
#define STRIP CONVLAB_SEPV_STRIP
#define COLS CONVLAB_SEPV_COLUMNS
/* sums kept in registers per call of a contraction: larger tap counts run in groups */
#define MAXK 8

#if CONVLAB_SEPV_VECTORS
typedef REAL VEC __attribute__((vector_size(SEPV_LANES * sizeof(REAL))));
CONVLAB_SEPV_INLINE VEC FN(load)(const REAL* p) { VEC v; memcpy(&v, p, sizeof v); return v; }
CONVLAB_SEPV_INLINE void FN(store)(REAL* p, VEC v) { memcpy(p, &v, sizeof v); }
CONVLAB_SEPV_INLINE VEC FN(bcast)(REAL s) {
    /* an initialiser, not a loop over the lanes: GCC turns the loop into lane inserts */
#if SEPV_LANES == 8
    VEC v = {s, s, s, s, s, s, s, s};
#elif SEPV_LANES == 4
    VEC v = {s, s, s, s};
#else
#error "lane count"
#endif
    return v;
}
CONVLAB_SEPV_INLINE VEC FN(zero)(void) { VEC v = {0}; return v; }
CONVLAB_SEPV_INLINE VEC FN(fma)(VEC acc, VEC a, VEC b) { return acc + a * b; }
CONVLAB_SEPV_INLINE VEC FN(add)(VEC a, VEC b) { return a + b; }
#else
typedef struct { REAL v[LN]; } VEC;
CONVLAB_SEPV_INLINE VEC FN(load)(const REAL* p) { VEC v; memcpy(&v, p, sizeof v); return v; }
CONVLAB_SEPV_INLINE void FN(store)(REAL* p, VEC v) { memcpy(p, &v, sizeof v); }
CONVLAB_SEPV_INLINE VEC FN(bcast)(REAL s) {
    VEC v;
    for (int l = 0; l < LN; l++) v.v[l] = s;
    return v;
}
CONVLAB_SEPV_INLINE VEC FN(zero)(void) { return FN(bcast)(0); }
CONVLAB_SEPV_INLINE VEC FN(fma)(VEC acc, VEC a, VEC b) {
    for (int l = 0; l < LN; l++) acc.v[l] += a.v[l] * b.v[l];
    return acc;
}
CONVLAB_SEPV_INLINE VEC FN(add)(VEC a, VEC b) {
    for (int l = 0; l < LN; l++) a.v[l] += b.v[l];
    return a;
}
#endif

/* Along H: a[r][j] = sum_m w[m] x[(r S + m D) row + j col] for r < rows, j < width; a has rows
 * of `stride` vectors. (col > 1 reads a transposed plane: the broadcasts do not need adjacent
 * samples.) */
CONVLAB_SEPV_INLINE void FN(along_h_body)(const REAL* RS x, Py_ssize_t row, Py_ssize_t col,
                                          Py_ssize_t width,
                                          const REAL* RS w, Py_ssize_t rows, REAL* RS a,
                                          Py_ssize_t stride, const Py_ssize_t K,
                                          const Py_ssize_t S, const Py_ssize_t D) {
    if (rows == STRIP) {
        Py_ssize_t j = 0;
        /* two columns at a time: 2 STRIP independent sums in flight */
        for (; j + 2 <= width; j += 2) {
            VEC left[STRIP], right[STRIP];
            for (int r = 0; r < STRIP; r++) left[r] = right[r] = FN(zero)();
            for (Py_ssize_t m = 0; m < K; m++) {
                VEC wm = FN(load)(w + m * LN);
                for (int r = 0; r < STRIP; r++) {
                    const REAL* p = x + (r * S + m * D) * row + j * col;
                    left[r] = FN(fma)(left[r], wm, FN(bcast)(p[0]));
                    right[r] = FN(fma)(right[r], wm, FN(bcast)(p[col]));
                }
            }
            for (int r = 0; r < STRIP; r++) {
                FN(store)(a + (r * stride + j) * LN, left[r]);
                FN(store)(a + (r * stride + j + 1) * LN, right[r]);
            }
        }
        for (; j < width; j++) {
            VEC acc[STRIP];
            for (int r = 0; r < STRIP; r++) acc[r] = FN(zero)();
            for (Py_ssize_t m = 0; m < K; m++) {
                VEC wm = FN(load)(w + m * LN);
                for (int r = 0; r < STRIP; r++)
                    acc[r] = FN(fma)(acc[r], wm, FN(bcast)(x[(r * S + m * D) * row + j * col]));
            }
            for (int r = 0; r < STRIP; r++) FN(store)(a + (r * stride + j) * LN, acc[r]);
        }
        return;
    }
    for (Py_ssize_t r = 0; r < rows; r++)
        for (Py_ssize_t j = 0; j < width; j++) {
            VEC acc = FN(zero)();
            for (Py_ssize_t m = 0; m < K; m++)
                acc = FN(fma)(acc, FN(load)(w + m * LN),
                              FN(bcast)(x[(r * S + m * D) * row + j * col]));
            FN(store)(a + (r * stride + j) * LN, acc);
        }
}

/* Along W, adding: y[r][o] += sum_m w[m] a[r][o S + m D] for r < rows, o < out; a has rows of
 * width vectors, y rows of out vectors. */
CONVLAB_SEPV_INLINE void FN(along_w_body)(const REAL* RS a, Py_ssize_t width,
                                          const REAL* RS w, Py_ssize_t rows, Py_ssize_t out,
                                          REAL* RS y, const Py_ssize_t K, const Py_ssize_t S,
                                          const Py_ssize_t D) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        const REAL* ar = a + r * width * LN;
        REAL* yr = y + r * out * LN;
        Py_ssize_t o = 0;
        for (; o + COLS <= out; o += COLS) {
            VEC acc[COLS];
            for (int t = 0; t < COLS; t++) acc[t] = FN(load)(yr + (o + t) * LN);
            for (Py_ssize_t m = 0; m < K; m++) {
                VEC wm = FN(load)(w + m * LN);
                for (int t = 0; t < COLS; t++)
                    acc[t] = FN(fma)(acc[t], wm, FN(load)(ar + ((o + t) * S + m * D) * LN));
            }
            for (int t = 0; t < COLS; t++) FN(store)(yr + (o + t) * LN, acc[t]);
        }
        for (; o < out; o++) {
            VEC acc = FN(load)(yr + o * LN);
            for (Py_ssize_t m = 0; m < K; m++)
                acc = FN(fma)(acc, FN(load)(w + m * LN), FN(load)(ar + (o * S + m * D) * LN));
            FN(store)(yr + o * LN, acc);
        }
    }
}

/* dw[m] += sum_o g[o] b[o S + m D] for m < K <= MAXK, o < out, vector g[o] at g + o step: two
 * sets of sums (even and odd o), so that consecutive products into one tap do not wait on
 * each other. */
CONVLAB_SEPV_INLINE void FN(contract_w_body)(const REAL* RS g, Py_ssize_t step,
                                             const REAL* RS b, Py_ssize_t out, REAL* RS dw,
                                             const Py_ssize_t K, const Py_ssize_t S,
                                             const Py_ssize_t D) {
    VEC even[MAXK], odd[MAXK];
    for (Py_ssize_t m = 0; m < K; m++) even[m] = odd[m] = FN(zero)();
    Py_ssize_t o = 0;
    for (; o + 2 <= out; o += 2) {
        VEC g0 = FN(load)(g + o * step), g1 = FN(load)(g + (o + 1) * step);
        for (Py_ssize_t m = 0; m < K; m++) {
            even[m] = FN(fma)(even[m], g0, FN(load)(b + (o * S + m * D) * LN));
            odd[m] = FN(fma)(odd[m], g1, FN(load)(b + ((o + 1) * S + m * D) * LN));
        }
    }
    if (o < out) {
        VEC g0 = FN(load)(g + o * step);
        for (Py_ssize_t m = 0; m < K; m++)
            even[m] = FN(fma)(even[m], g0, FN(load)(b + (o * S + m * D) * LN));
    }
    for (Py_ssize_t m = 0; m < K; m++)
        FN(store)(dw + m * LN, FN(add)(FN(load)(dw + m * LN), FN(add)(even[m], odd[m])));
}

/* The variants: tap counts 1, 3, 5, 7 at stride and dilation 1 (constants the compiler
 * unrolls), and every other case. */
typedef void (*FN(h_fn))(const REAL*, Py_ssize_t, Py_ssize_t, Py_ssize_t, const REAL*,
                         Py_ssize_t, REAL*, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t);
typedef void (*FN(w_fn))(const REAL*, Py_ssize_t, const REAL*, Py_ssize_t, Py_ssize_t, REAL*,
                         Py_ssize_t, Py_ssize_t, Py_ssize_t);
typedef void (*FN(cw_fn))(const REAL*, Py_ssize_t, const REAL*, Py_ssize_t, REAL*, Py_ssize_t,
                          Py_ssize_t, Py_ssize_t);

#define SEPV_VARIANT(SUFFIX, KK, SS, DD)                                                     \
static void FN(CONVLAB_SEPV_CAT(along_h_, SUFFIX))(const REAL* x, Py_ssize_t row,           \
        Py_ssize_t col, Py_ssize_t width, const REAL* w, Py_ssize_t rows, REAL* a,          \
        Py_ssize_t stride, Py_ssize_t k, Py_ssize_t s, Py_ssize_t d) {                      \
    (void)k; (void)s; (void)d;                                                              \
    FN(along_h_body)(x, row, col, width, w, rows, a, stride, KK, SS, DD);                   \
}                                                                                           \
static void FN(CONVLAB_SEPV_CAT(along_w_, SUFFIX))(const REAL* a, Py_ssize_t width,         \
        const REAL* w, Py_ssize_t rows, Py_ssize_t out, REAL* y, Py_ssize_t k,              \
        Py_ssize_t s, Py_ssize_t d) {                                                       \
    (void)k; (void)s; (void)d;                                                              \
    FN(along_w_body)(a, width, w, rows, out, y, KK, SS, DD);                                \
}                                                                                           \
static void FN(CONVLAB_SEPV_CAT(contract_w_, SUFFIX))(const REAL* g, Py_ssize_t step,     \
        const REAL* b, Py_ssize_t out, REAL* dw, Py_ssize_t k, Py_ssize_t s, Py_ssize_t d) { \
    (void)k; (void)s; (void)d;                                                              \
    for (Py_ssize_t m0 = 0; m0 < (KK); m0 += MAXK)                                          \
        FN(contract_w_body)(g, step, b + m0 * (DD) * LN, out, dw + m0 * LN,                 \
                            (KK) - m0 < MAXK ? (KK) - m0 : MAXK, SS, DD);                   \
}

SEPV_VARIANT(k1, 1, 1, 1)
SEPV_VARIANT(k3, 3, 1, 1)
SEPV_VARIANT(k5, 5, 1, 1)
SEPV_VARIANT(k7, 7, 1, 1)
SEPV_VARIANT(any, k, s, d)
#undef SEPV_VARIANT

#define SEPV_PICK(KIND)                                                                     \
static FN(CONVLAB_SEPV_CAT(KIND, _fn)) FN(CONVLAB_SEPV_CAT(pick_, KIND))(Py_ssize_t k,     \
        Py_ssize_t s, Py_ssize_t d) {                                                       \
    if (s == 1 && d == 1) {                                                                 \
        if (k == 1) return FN(CONVLAB_SEPV_CAT(KIND, _k1));                                 \
        if (k == 3) return FN(CONVLAB_SEPV_CAT(KIND, _k3));                                 \
        if (k == 5) return FN(CONVLAB_SEPV_CAT(KIND, _k5));                                 \
        if (k == 7) return FN(CONVLAB_SEPV_CAT(KIND, _k7));                                 \
    }                                                                                       \
    return FN(CONVLAB_SEPV_CAT(KIND, _any));                                                \
}
typedef FN(h_fn) FN(along_h_fn);
typedef FN(w_fn) FN(along_w_fn);
typedef FN(cw_fn) FN(contract_w_fn);
SEPV_PICK(along_h)
SEPV_PICK(along_w)
SEPV_PICK(contract_w)
#undef SEPV_PICK

/* Forward pass of one image and one block of nf <= LN filters:
 *   y[f][o1 O2 + o2] = sum_c sum_{m1, m2} w1[c][m1][f] w2[c][m2][f] x[c][(o1 s1 + m1 d1) P2
 *                                                                       + o2 s2 + m2 d2]
 * x: the image's C planes of P1 x P2, zero outside the columns [lo, hi) (whose products
 * with the taps are then zeros: the caller passes lo = 0, hi = P2 unless the taps are
 * finite); w1, w2: the block's taps (C, k, LN); y: the block's first output plane, planes
 * `plane` apart. Scratch: a (STRIP P2 LN), ys (STRIP O2 LN).
 *
 * With xl not NULL (the input gradient at stride 1, x the padded output gradient, "channels"
 * the filters): the pass along H is G1, the output gradient passed along H with the row
 * factor, which is also what the column factor's gradient contracts with the input:
 *   dw2[c][m] += sum_{r, j} a[r][lo + j] xl[r][j + m d2],   j < hi - lo
 * xl: the image's input in lanes (O1 rows of xl_row vectors); dw2 (channels, k2, LN) is
 * added to. Sharing G1 saves one pass of the separate gradient functions. */
static void FN(forward_task)(const REAL* x, Py_ssize_t channels, Py_ssize_t P1, Py_ssize_t P2,
                             Py_ssize_t lo, Py_ssize_t hi, const REAL* w1, Py_ssize_t k1,
                             Py_ssize_t s1, Py_ssize_t d1, const REAL* w2, Py_ssize_t k2,
                             Py_ssize_t s2, Py_ssize_t d2, Py_ssize_t O1, Py_ssize_t O2,
                             REAL* a, REAL* ys, REAL* y, Py_ssize_t plane, Py_ssize_t nf,
                             const REAL* xl, Py_ssize_t xl_row, REAL* dw2) {
    FN(h_fn) along_h = FN(pick_along_h)(k1, s1, d1);
    FN(w_fn) along_w = FN(pick_along_w)(k2, s2, d2);
    FN(cw_fn) contract_w = FN(pick_contract_w)(k2, 1, d2);
    for (Py_ssize_t r = 0; r < STRIP; r++) {
        memset(a + r * P2 * LN, 0, (size_t)(lo * LN) * sizeof(REAL));
        memset(a + (r * P2 + hi) * LN, 0, (size_t)((P2 - hi) * LN) * sizeof(REAL));
    }
    for (Py_ssize_t r0 = 0; r0 < O1; r0 += STRIP) {
        Py_ssize_t rows = O1 - r0 < STRIP ? O1 - r0 : STRIP;
        memset(ys, 0, (size_t)(rows * O2 * LN) * sizeof(REAL));
        for (Py_ssize_t c = 0; c < channels; c++) {
            along_h(x + c * P1 * P2 + r0 * s1 * P2 + lo, P2, 1, hi - lo, w1 + c * k1 * LN,
                    rows, a + lo * LN, P2, k1, s1, d1);
            if (xl != NULL)
                for (Py_ssize_t r = 0; r < rows; r++)
                    contract_w(a + (r * P2 + lo) * LN, LN, xl + (r0 + r) * xl_row * LN,
                               hi - lo, dw2 + c * k2 * LN, k2, 1, d2);
            along_w(a, P2, w2 + c * k2 * LN, rows, O2, ys, k2, s2, d2);
        }
        for (Py_ssize_t f = 0; f < nf; f++) {
            REAL* yf = y + f * plane + r0 * O2;
            for (Py_ssize_t i = 0; i < rows * O2; i++) yf[i] = ys[i * LN + f];
        }
    }
}

/* The gradient of the column factor (w2) of one block of filters and `channels` channels,
 * summed over the images:
 *   dw2[m][f] += sum_{n, r, o} g[n][r][o][f] b[r][o s2 + m d2],
 *   b[r][j] = sum_m1 w1[m1][f] x[n][r s1 + m1 d1][j]
 * over the outputs that exist. Sample (i, j) of a plane of x is at x[i xr + j xc], planes
 * x_plane apart, images x_image apart; vector (r, o) of g at g + (r gr + o gc) LN, images
 * g_image apart. With the strides of the transposed planes (and the factors swapped) this
 * is the row factor's gradient: no copy of x or g is transposed. w1, dw2: the first
 * channel's (k, LN) taps, channels k LN apart; dw2 is added to. The images are the outer
 * loop, so that an image's output gradient is read from cache by every channel. Scratch:
 * b (STRIP P2 LN). */
static void FN(factor_task)(const REAL* x, Py_ssize_t x_image, Py_ssize_t x_plane,
                            Py_ssize_t xr, Py_ssize_t xc, Py_ssize_t channels, const REAL* g,
                            Py_ssize_t g_image, Py_ssize_t gr, Py_ssize_t gc,
                            Py_ssize_t images, Py_ssize_t P2, const REAL* w1, Py_ssize_t k1,
                            Py_ssize_t s1, Py_ssize_t d1, Py_ssize_t k2, Py_ssize_t s2,
                            Py_ssize_t d2, Py_ssize_t O1, Py_ssize_t O2, REAL* b, REAL* dw2) {
    FN(h_fn) along_h = FN(pick_along_h)(k1, s1, d1);
    FN(cw_fn) contract_w = FN(pick_contract_w)(k2, s2, d2);
    for (Py_ssize_t n = 0; n < images; n++) {
        const REAL* gn = g + n * g_image;
        for (Py_ssize_t ch = 0; ch < channels; ch++) {
            const REAL* xn = x + n * x_image + ch * x_plane;
            for (Py_ssize_t r0 = 0; r0 < O1; r0 += STRIP) {
                Py_ssize_t count = O1 - r0 < STRIP ? O1 - r0 : STRIP;
                along_h(xn + r0 * s1 * xr, xr, xc, P2, w1 + ch * k1 * LN, count, b, P2, k1, s1,
                        d1);
                for (Py_ssize_t r = 0; r < count; r++)
                    contract_w(gn + (r0 + r) * gr * LN, gc * LN, b + r * P2 * LN, O2,
                               dw2 + ch * k2 * LN, k2, s2, d2);
            }
        }
    }
}

#undef REAL
#undef LN
#undef FN
#undef VEC
#undef RS
#undef STRIP
#undef COLS
#undef MAXK
