"""Memory layouts every public function must read as its C-contiguous copy (SPEC §4): views
that are not contiguous, negative strides, Fortran order, big-endian, read-only, unaligned,
0-stride (broadcast) and transposed-back arrays. Each maker takes a C-contiguous array and
returns a view (or copy) in that layout; the broadcast one repeats the first entry along
axis 0, so a test compares with that view's own contiguous copy."""

import numpy as np


def _noncontiguous(x):
    big = np.zeros(tuple(2 * n + 1 for n in x.shape), dtype=x.dtype)
    view = big[tuple(slice(1, None, 2) for _ in x.shape)]
    view[...] = x
    assert not view.flags.c_contiguous or x.size <= 1
    return view


def _readonly(x):
    y = x.copy()
    y.flags.writeable = False
    return y


def _unaligned(x):
    buf = np.zeros(x.nbytes + x.dtype.itemsize, dtype=np.uint8)
    y = buf[1: 1 + x.nbytes].view(x.dtype).reshape(x.shape)
    y[...] = x
    return y


LAYOUTS = {
    "noncontiguous": _noncontiguous,
    "negative_strides": lambda x: np.flip(np.ascontiguousarray(np.flip(x))),
    "fortran": np.asfortranarray,
    "big_endian": lambda x: x.astype(x.dtype.newbyteorder(">")),
    "readonly": _readonly,
    "unaligned": _unaligned,
    "broadcast_0_stride": lambda x: np.broadcast_to(x[:1], x.shape),
    "transposed": lambda x: np.ascontiguousarray(x.T).T,
}
