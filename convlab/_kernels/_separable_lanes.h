/* Separable layer kernels with the filters (or channels) in the vector lanes (private).
 *
 * For 1-D and 2-D problems (one row axis H, one contiguous axis W): a block of LANES filters
 * is computed at once, each vector holding one value of every filter of the block. The
 * taps of a channel are then vectors too (w[f0 .. f0 + LANES, c, m], packed by the caller as
 * (C, k, LANES)), a sample of the input is a broadcast, and both passes keep their sums in
 * registers:
 *
 *   along H   a[r][j]  = sum_m w1[m] x[r s1 + m d1][j]            (one broadcast per term)
 *   along W   y[r][o] += sum_m w2[m] a[r][o s2 + m d2]             (one vector per term)
 *
 * Neither pass reads a vector at an unaligned offset of a row, and at stride 1 the
 * broadcasts (along H) and vectors (along W) of neighbouring outputs are shared. The
 * output rows are computed in strips of STRIP rows over every channel before they are
 * written, so the strip's sums stay in L1. The input gradient at stride 1 is this forward
 * pass over the zero-padded output gradient with the flipped factors, channels in the lanes
 * (while the factors are finite: the padding's products are not terms of the gradient).
 *
 * The factors' gradients: for a block of filters and one channel, over the images,
 *
 *   dw2[m] += sum_{r, o} G[r][o] b[r][o s2 + m d2],  b = x passed along H with w1
 *
 * with G the output gradient in the same lane layout. The row factor's gradient dw1 is the
 * same computation with the axes swapped: the kernel reads x and G through strides, so the
 * transposed planes are never copied. The fused backward takes dw2 from the input gradient's
 * pass along H instead (see forward_task).
 *
 * Each pass has variants for the common tap counts at stride and dilation 1, where the
 * compiler unrolls the taps and shares the loads; the general variant takes every count.
 * GCC / Clang vector extension, 32-byte vectors; other compilers get arrays of LANES with
 * the same sums in the same order.
 */
#ifndef CONVLAB_SEPARABLE_LANES_H
#define CONVLAB_SEPARABLE_LANES_H

#include <stddef.h>
#include <string.h>

#ifndef CONVLAB_SEPV_VECTORS
#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_SEPV_VECTORS 1
#else
#define CONVLAB_SEPV_VECTORS 0
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CONVLAB_SEPV_INLINE static inline __attribute__((always_inline))
#define CONVLAB_SEPV_RESTRICT __restrict__
#else
#define CONVLAB_SEPV_INLINE static inline
#define CONVLAB_SEPV_RESTRICT
#endif

#define CONVLAB_SEPV_LANES_FLOAT 8
#define CONVLAB_SEPV_LANES_DOUBLE 4
/* output rows per strip (along H) and output columns per register block (along W) */
#define CONVLAB_SEPV_STRIP 4
#define CONVLAB_SEPV_COLUMNS 8

#define CONVLAB_SEPV_CAT_(a, b) a##b
#define CONVLAB_SEPV_CAT(a, b) CONVLAB_SEPV_CAT_(a, b)

#define SEPV_T float
#define SEPV_LANES CONVLAB_SEPV_LANES_FLOAT
#include "_separable_lanes_impl.h"
#undef SEPV_T
#undef SEPV_LANES

#define SEPV_T double
#define SEPV_LANES CONVLAB_SEPV_LANES_DOUBLE
#include "_separable_lanes_impl.h"
#undef SEPV_T
#undef SEPV_LANES

#endif
