"""No kernel reads outside its inputs: every input ends exactly where an inaccessible page
begins, so a read one element too far crashes the test process (SPEC §4: never a segfault,
never a silent wrong answer). Linux only (mmap + mprotect through ctypes)."""

import ctypes
import ctypes.util
import mmap
import sys

import numpy as np
import pytest

import convlab

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="guard pages through mprotect (Linux)")

_PAGE = mmap.PAGESIZE
_PROT_NONE = 0


class _GuardedArrays:
    """Arrays placed at the end of a mapping whose next page has no access rights."""

    def __init__(self):
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._keep = []

    def __call__(self, shape, dtype, rng):
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        nbytes = count * dtype.itemsize
        pages = -(-nbytes // _PAGE) + 1
        mapping = mmap.mmap(-1, pages * _PAGE)
        raw = (ctypes.c_char * (pages * _PAGE)).from_buffer(mapping)
        guard = ctypes.addressof(raw) + (pages - 1) * _PAGE
        # an anonymous private mapping can always be protected on Linux: a failure here is
        # a broken test environment, reported as such rather than skipped
        assert self._libc.mprotect(ctypes.c_void_p(guard), _PAGE, _PROT_NONE) == 0, \
            f"mprotect failed (errno {ctypes.get_errno()})"
        array = np.frombuffer(mapping, dtype=dtype, count=count,
                              offset=(pages - 1) * _PAGE - nbytes).reshape(shape)
        array[...] = rng.standard_normal(shape)
        self._keep.append((mapping, raw))
        return array


@pytest.fixture
def guarded():
    return _GuardedArrays()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_signal_kernels_stay_inside_their_inputs(guarded, rng, dtype, stride, mode):
    for n in (40, 63, 64, 65, 97, 130, 257):
        for k in (1, 2, 3, 5, 7):
            x = guarded((3, n), dtype, rng)
            kernel = guarded((2, k), dtype, rng)
            expected = convlab.correlate(x.copy(), kernel.copy(), mode, "direct")[:, ::stride]
            got = convlab.correlate(x, kernel, mode, "direct", stride=(1, stride))
            # the strided kernels may sum in another order than the stride-1 ones
            tol = 8 * k * np.finfo(dtype).eps * (np.abs(x).max() * np.abs(kernel).max())
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
            convlab.convolve(x, kernel, mode, "direct", stride=(1, stride))
            grad = guarded(got.shape, dtype, rng)
            convlab.correlate_grad(grad, x, kernel, mode, stride=(1, stride))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_kernels_stay_inside_their_inputs(guarded, rng, dtype):
    for stride, padding, k in [(1, 0, 3), (2, 1, 3), (1, "same", 4), (3, 2, 5), (1, 0, 1)]:
        x = guarded((2, 3, 11, 13), dtype, rng)
        w = guarded((4, 3, k, k), dtype, rng)
        y = convlab.conv(x, w, stride=stride, padding=padding)
        np.testing.assert_array_equal(y, convlab.conv(x.copy(), w.copy(), stride=stride,
                                                      padding=padding))
        g = guarded(y.shape, dtype, rng)
        convlab.conv_grad_input(g, w, x.shape, stride=stride, padding=padding)
        convlab.conv_grad_weight(g, x, w.shape, stride=stride, padding=padding)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unshared_kernels_stay_inside_their_inputs(guarded, rng, dtype):
    """local_conv / tiled_conv read the weights and the output gradient in place: batches
    that are not whole vectors, remainders of the register blocks, strides and paddings."""
    for n, c, f, stride, padding, k in [(1, 1, 1, 1, 0, 1), (5, 3, 5, 2, 1, 3),
                                        (9, 2, 7, 1, "same", 2), (13, 5, 4, 3, "full", 3)]:
        x = guarded((n, c, 9, 7), dtype, rng)
        y_shape = convlab.conv(x, np.ones((f, c, k, k), dtype), stride=stride,
                               padding=padding).shape
        w = guarded((f,) + y_shape[2:] + (c, k, k), dtype, rng)
        y = convlab.local_conv(x, w, stride=stride, padding=padding)
        np.testing.assert_array_equal(y, convlab.local_conv(x.copy(), w.copy(), stride=stride,
                                                            padding=padding))
        g = guarded(y.shape, dtype, rng)
        convlab.local_conv_grad_input(g, w, x.shape, stride=stride, padding=padding)
        convlab.local_conv_grad_weight(g, x, w.shape, stride=stride, padding=padding)
        convlab.local_conv_grad_bias(g)
        for tiles in [(2, 3), (1, 2), y_shape[2:]]:
            wt = guarded((f,) + tiles + (c, k, k), dtype, rng)
            yt = convlab.tiled_conv(x, wt, stride=stride, padding=padding)
            np.testing.assert_array_equal(yt, convlab.tiled_conv(x.copy(), wt.copy(),
                                                                 stride=stride, padding=padding))
            convlab.tiled_conv_grad_input(g, wt, x.shape, stride=stride, padding=padding)
            convlab.tiled_conv_grad_weight(g, x, wt.shape, stride=stride, padding=padding)
            convlab.tiled_conv_grad_bias(g, tiles)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_separable_kernels_stay_inside_their_inputs(guarded, rng, dtype):
    """correlate_separable and separable_conv read the factors and the output gradient in
    place: strides, dilations, paddings and rows that are not whole vectors."""
    for n in (7, 9, 17, 33):
        x = guarded((3, n, n + 2), dtype, rng)
        ks = [guarded((k,), dtype, rng) for k in (3, 5)]
        y = convlab.correlate_separable(x, ks, "same", axes=(1, 2))
        np.testing.assert_array_equal(y, convlab.correlate_separable(x.copy(), [k.copy() for k in ks],
                                                                     "same", axes=(1, 2)))
        g = guarded(y.shape, dtype, rng)
        convlab.correlate_separable_grad(g, x, ks, "same", axes=(1, 2))
    for stride, padding, dilation in [(1, 0, 1), (2, 1, 1), (1, "same", 2), (3, "full", 1)]:
        x = guarded((2, 3, 13, 11), dtype, rng)
        ws = [guarded((4, 3, 3), dtype, rng), guarded((4, 3, 2), dtype, rng)]
        kw = dict(stride=stride, padding=padding, dilation=dilation)
        y = convlab.separable_conv(x, ws, **kw)
        np.testing.assert_array_equal(y, convlab.separable_conv(x.copy(), [w.copy() for w in ws], **kw))
        g = guarded(y.shape, dtype, rng)
        convlab.separable_conv_grad_input(g, ws, x.shape, **kw)
        convlab.separable_conv_grad_weights(g, x, ws, **kw)
        convlab.separable_conv_backward(g, x, ws, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_kernels_stay_inside_their_inputs(guarded, rng, dtype):
    """max/avg/lp pooling and their gradients read x and grad_out in place: the 2 x 2 vector
    loops (rows shorter than a block, not a whole number of blocks, odd lengths), windows
    side by side, overlapping, with gaps and padded; 1, 2 and 3 spatial axes."""
    cases = [((2, 3, 9, 11), 2, {}), ((1, 2, 4, 34), 2, {}), ((1, 1, 2, 67), 2, {}),
             ((2, 2, 7, 6), 3, dict(stride=1, padding=1)), ((2, 2, 8, 9), (2, 3), dict(stride=(3, 4))),
             ((3, 2, 13), 4, dict(stride=2, padding=2)), ((1, 2, 4, 5, 6), (1, 2, 2), {}),
             ((1, 2, 4, 5, 6), 2, dict(stride=1, padding=1))]
    for shape, size, kw in cases:
        x = guarded(shape, dtype, rng)
        for function in (convlab.max_pool, convlab.avg_pool, convlab.lp_pool):
            y = function(x, size, **kw)
            np.testing.assert_array_equal(y, function(x.copy(), size, **kw))
        g = guarded(y.shape, dtype, rng)
        want = convlab.max_pool_grad(g.copy(), x.copy(), size, **kw)
        np.testing.assert_array_equal(convlab.max_pool_grad(g, x, size, **kw), want)
        convlab.avg_pool_grad(g, shape, size, **kw)
        for p in (1, 3, np.inf):
            convlab.lp_pool_grad(g, x, size, p, **kw)
