"""The one place that computes output sizes and where each output starts in its input.

Every operation in convlab is, along each convolved axis,

    out[i] = sum_j a[offset + i * stride + j * dilation] * k[j],   0 <= i < length,

summed over the taps whose sample lies inside ``a``. This module turns the user-facing
description (a mode, a stride) into ``(offset, length)`` per axis.
"""

import numpy as np

SIGNAL_MODES = ("full", "valid", "same")


def signal_axis_geometry(n, k, mode):
    """``(offset, length)`` of the stride-1 signal-level result along one axis.

    `n` is the size of ``in1``, `k` of the kernel ``in2``. 'full' has every overlap,
    'valid' the ``|n - k| + 1`` complete overlaps (also when the kernel is the larger one:
    SciPy's swap rule), 'same' the ``n`` outputs centred as ``scipy.signal.correlate``
    centres them (for an even kernel, ``k // 2`` samples of zero extension before the signal
    and ``(k - 1) // 2`` after it).
    """
    if mode == "full":
        return -(k - 1), n + k - 1
    if mode == "valid":
        return min(n, k) - k, abs(n - k) + 1
    if mode == "same":
        return -(k // 2), n
    raise AssertionError(mode)  # pragma: no cover - validated by the caller


def strided_length(length, stride):
    """Outputs kept by ``result[::stride]`` from `length` outputs."""
    return -(-length // stride)


def valid_mode_order(shape1, shape2, axes):
    """For mode='valid': check SciPy's rule that one input is at least as large as the other
    along every convolved axis (either may be the larger one)."""
    first_larger = all(shape1[ax] >= shape2[ax] for ax in axes)
    second_larger = all(shape2[ax] >= shape1[ax] for ax in axes)
    if not (first_larger or second_larger):
        sizes1 = tuple(shape1[ax] for ax in axes)
        sizes2 = tuple(shape2[ax] for ax in axes)
        raise ValueError(
            "mode='valid' needs one input at least as large as the other along every convolved "
            f"axis; in1 has sizes {sizes1} and in2 has sizes {sizes2} along axes {tuple(axes)}"
        )


def overlap_terms(n, k, offset, length, stride, dilation):
    """How many products ``a[offset + i*stride + j*dilation] * k[j]`` with the sample inside ``a``
    a direct summation along one axis computes (the work of the direct method)."""
    if length <= k:
        i = np.arange(length, dtype=np.int64)
        start = offset + i * stride
        first = np.clip(np.ceil(-start / dilation), 0, k)
        stop = np.clip(np.floor((n - 1 - start) / dilation) + 1, first, k)
        return int((stop - first).sum())
    j = np.arange(k, dtype=np.int64)
    start = offset + j * dilation
    first = np.clip(np.ceil(-start / stride), 0, length)
    stop = np.clip(np.floor((n - 1 - start) / stride) + 1, first, length)
    return int((stop - first).sum())


# ----------------------------------------------------------------------------------------
# Layer level: zero padding, stride and dilation per spatial axis (SPEC §3).


def layer_padding(padding, in_sizes, k_sizes, strides, dilations):
    """``(before, after)`` per spatial axis from a normalised padding (pairs or a string).

    'valid' is no padding; 'full' pads ``(k - 1) * dilation`` on both sides; 'same' is
    TensorFlow's rule: ``ceil(n / stride)`` outputs, the total padding split with the odd
    sample after.
    """
    if padding == "valid":
        return [(0, 0)] * len(in_sizes)
    if padding == "full":
        return [((k - 1) * dl, (k - 1) * dl) for k, dl in zip(k_sizes, dilations)]
    if padding == "same":
        pairs = []
        for n, k, s, dl in zip(in_sizes, k_sizes, strides, dilations):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * dl + 1 - n, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    return list(padding)


def layer_output_size(n, k, before, after, stride, dilation, axis):
    """``floor((n + before + after - dilation * (k - 1) - 1) / stride) + 1``, at least 1."""
    span = dilation * (k - 1) + 1
    out = (n + before + after - span) // stride + 1
    if out < 1:
        raise ValueError(
            f"spatial axis {axis}: the output would have {out} samples: input size {n} with "
            f"padding ({before}, {after}) is smaller than the kernel's extent {span} (kernel "
            f"size {k}, dilation {dilation}; stride {stride})"
        )
    return out


def window_extents(geometry):
    """Per spatial axis, the extent of the padded input that the windows of a layer read:
    ``(out - 1) * stride + (k - 1) * dilation + 1`` (padded samples past it are never read).
    `geometry` has ``out_sizes``, ``strides``, ``k_sizes`` and ``dilations``."""
    return tuple((m - 1) * s + (k - 1) * dl + 1 for m, s, k, dl
                 in zip(geometry.out_sizes, geometry.strides, geometry.k_sizes,
                        geometry.dilations))


def transpose_output_size(n, k, padding, output_padding, stride, dilation, axis):
    """PyTorch's ``conv_transpose`` size: ``(n - 1) * stride - 2 * padding +
    dilation * (k - 1) + output_padding + 1``, at least 1."""
    out = (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"spatial axis {axis}: conv_transpose would give {out} samples from input size {n} "
            f"(kernel size {k}, stride {stride}, padding {padding}, dilation {dilation}, "
            f"output_padding {output_padding})"
        )
    return out


def pool_output_size(n, size, padding, stride, axis):
    """Windows of a pooling layer along one axis: ``floor((n + 2 * padding - size) / stride)
    + 1`` (PyTorch's rule with ``ceil_mode=False``: the last window ends inside the padded
    input), at least 1."""
    out = (n + 2 * padding - size) // stride + 1
    if out < 1:
        raise ValueError(
            f"spatial axis {axis}: the pooling output would have {out} samples: input size {n} "
            f"with padding {padding} on each side is smaller than the window size {size} "
            f"(stride {stride})"
        )
    return out
