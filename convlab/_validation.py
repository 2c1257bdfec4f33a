"""The one place that checks and normalises arguments (dtypes, axes, strides, strings).

Every public function goes through these helpers, so that every error names the argument,
what was expected and what was given, and is raised before any work is done.
"""

import functools
import numbers
import operator
import os

import numpy as np

_FLOAT_KINDS = {
    np.dtype(np.float32): np.dtype(np.float32),
    np.dtype(np.float64): np.dtype(np.float64),
    np.dtype(np.complex64): np.dtype(np.complex64),
    np.dtype(np.complex128): np.dtype(np.complex128),
    np.dtype(np.float16): np.dtype(np.float32),
}


def compute_dtype(dtype, name):
    """The dtype convlab computes in for an input of `dtype` (SPEC §2 dtype rules).

    bool and integers become float64, float16 becomes float32, float32 / float64 /
    complex64 / complex128 stay; anything else (long double, object, str, datetime...) is a
    TypeError naming the argument.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    native = dtype.newbyteorder("=")
    if native in _FLOAT_KINDS:
        return _FLOAT_KINDS[native]
    raise TypeError(
        f"{name} has dtype {dtype}, which convlab does not support; expected bool, an integer, "
        "float16, float32, float64, complex64 or complex128 (long double has no kernels)"
    )


def as_array(value, name):
    """``numpy.asarray`` that turns conversion failures into a TypeError naming `name`."""
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers; {exc}") from None
    return array


def result_dtype(*named_arrays):
    """``numpy.result_type`` of the inputs after the bool/int -> float64, float16 -> float32 rule."""
    return np.result_type(*(compute_dtype(array.dtype, name) for name, array in named_arrays))


def require_real(dtype, function):
    if np.dtype(dtype).kind == "c":
        raise TypeError(f"{function} is defined for real inputs only; got complex dtype {dtype}")


def check_choice(value, name, choices):
    """A string argument that must be one of `choices` (listed in the error)."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def _int_entry(item, name, whole):
    """One entry of a sequence argument as an int (bools and non-integers are a TypeError)."""
    if isinstance(item, bool):
        raise TypeError(f"{name} must hold ints; got {item!r} in {whole!r}")
    try:
        return operator.index(item)
    except TypeError:
        raise TypeError(f"{name} must hold ints; got {item!r} in {whole!r}") from None


def normalize_axes(axes, ndim, name="axes"):
    """``None`` -> all axes; an int or a sequence of ints -> a tuple of non-negative axes.

    The order is kept (``stride[i]`` belongs to ``axes[i]``); a repeated axis is an error.
    """
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (str, bytes)) or isinstance(axes, bool):
        raise TypeError(f"{name} must be None, an int or a sequence of ints; got {axes!r}")
    try:
        items = [operator.index(axes)]
    except TypeError:
        try:
            items = list(axes)
        except TypeError:
            raise TypeError(f"{name} must be None, an int or a sequence of ints; got {axes!r}") from None
    result = []
    for item in items:
        axis = _int_entry(item, name, axes)
        if not -ndim <= axis < ndim:
            raise ValueError(f"{name} entry {axis} is out of range for inputs with {ndim} dimensions "
                             f"(expected {-ndim} <= axis < {ndim})")
        result.append(axis % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{name} must not repeat an axis; got {axes!r}")
    return tuple(result)


def normalize_positive_ints(value, count, name):
    """An int or `count` ints, each >= 1 (stride, dilation) -> a tuple of `count` ints."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a sequence of {count} ints; got {value!r}")
    try:
        values = (operator.index(value),) * count
    except TypeError:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be an int or a sequence of {count} ints; got {value!r}") from None
        try:
            items = list(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or a sequence of {count} ints; "
                            f"got {value!r}") from None
        if len(items) != count:
            raise ValueError(f"{name} must have one entry per convolved axis ({count}); "
                             f"got {len(items)} entries: {value!r}")
        values = tuple(_int_entry(item, name, value) for item in items)
    for v in values:
        if v < 1:
            raise ValueError(f"{name} must be >= 1 along every axis; got {value!r}")
    return values


@functools.lru_cache(maxsize=None)
def physical_memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 46


def check_memory(nbytes, what):
    """MemoryError before allocating buffers that could never fit in this machine's memory."""
    total = physical_memory_bytes()
    if nbytes > total:
        raise MemoryError(
            f"{what} would need {nbytes / 2**30:.3g} GiB, more than this machine's "
            f"{total / 2**30:.3g} GiB of memory"
        )


PADDING_STRINGS = ("valid", "same", "full")


def normalize_padding(padding, d, name="padding", allow_strings=True, allow_pairs=True):
    """A layer-level padding argument -> one of the strings, or d ``(before, after)`` pairs.

    Accepted: an int (every side), d ints (both sides of each axis), d nested
    ``(before, after)`` pairs, or 'valid' / 'same' / 'full' (resolved against the shapes by
    :func:`convlab._shapes.layer_padding`). Every amount must be a non-negative int.
    """
    if isinstance(padding, str):
        if not allow_strings:
            raise ValueError(f"{name} must be an int or {d} ints; got the string {padding!r}")
        return check_choice(padding, name, PADDING_STRINGS)
    expected = (f"an int, {d} ints, {d} (before, after) pairs or one of "
                f"{', '.join(repr(s) for s in PADDING_STRINGS)}" if allow_pairs and allow_strings
                else f"an int or {d} ints")

    def amount(value, where):
        if isinstance(value, bool):
            raise TypeError(f"{name} must be {expected}; got {value!r} in {padding!r}")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be {expected}; got {value!r} in {padding!r}") from None
        if value < 0:
            raise ValueError(f"{name} must be non-negative; got {value} {where} in {padding!r}")
        return value

    if isinstance(padding, (bytes, bool)) or padding is None:
        raise TypeError(f"{name} must be {expected}; got {padding!r}")
    try:
        single = operator.index(padding)
    except TypeError:
        pass
    else:
        single = amount(single, "")
        return [(single, single)] * d
    try:
        items = list(padding)
    except TypeError:
        raise TypeError(f"{name} must be {expected}; got {padding!r}") from None
    if len(items) != d:
        raise ValueError(f"{name} must have one entry per spatial axis ({d}); got {len(items)} "
                         f"entries: {padding!r}")
    pairs = []
    for axis, item in enumerate(items):
        if isinstance(item, (str, bytes)):
            raise TypeError(f"{name} must be {expected}; got {item!r} in {padding!r}")
        try:
            operator.index(item)
        except TypeError:
            if not allow_pairs:
                raise ValueError(f"{name} must be {expected} (no (before, after) pairs); "
                                 f"got {padding!r}") from None
            try:
                pair = list(item)
            except TypeError:
                raise TypeError(f"{name} must be {expected}; got {item!r} in {padding!r}") from None
            if len(pair) != 2:
                raise ValueError(f"{name} pairs must be (before, after); got {item!r} for axis "
                                 f"{axis} in {padding!r}")
            pairs.append((amount(pair[0], f"for axis {axis}"), amount(pair[1], f"for axis {axis}")))
        else:
            value = amount(item, f"for axis {axis}")
            pairs.append((value, value))
    return pairs


def normalize_shape(shape, name):
    """A shape argument (sequence of non-negative ints) -> a tuple of ints."""
    if isinstance(shape, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of ints; got {shape!r}")
    try:
        items = list(shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints; got {shape!r}") from None
    result = tuple(_int_entry(item, name, shape) for item in items)
    if any(value < 0 for value in result):
        raise ValueError(f"{name} must hold non-negative sizes; got {shape!r}")
    return result


def normalize_norm_order(p, name="p"):
    """The order of an Lp norm: a real number >= 1, or ``inf`` -> a float."""
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a real number >= 1 or inf; got {p!r} of type "
                        f"{type(p).__name__}")
    value = float(p)
    if not value >= 1:   # NaN too
        raise ValueError(f"{name} must be >= 1 or inf; got {p!r}")
    return value
