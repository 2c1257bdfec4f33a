# Shared typed helpers for the convlab kernels.

ctypedef fused real_t:
    float
    double


cdef inline Py_ssize_t floor_div(Py_ssize_t num, Py_ssize_t den) noexcept nogil:
    # C division truncates toward zero; the index algebra needs floor for negative numerators.
    cdef Py_ssize_t q = num // den
    if (num % den != 0) and ((num < 0) != (den < 0)):
        q -= 1
    return q


cdef inline Py_ssize_t ceil_div(Py_ssize_t num, Py_ssize_t den) noexcept nogil:
    return -floor_div(-num, den)


cdef inline Py_ssize_t clamp(Py_ssize_t value, Py_ssize_t low, Py_ssize_t high) noexcept nogil:
    if value < low:
        return low
    if value > high:
        return high
    return value


cdef inline void tap_range(Py_ssize_t start, Py_ssize_t n, Py_ssize_t taps, Py_ssize_t dilation,
                           Py_ssize_t* first, Py_ssize_t* stop) noexcept nogil:
    # The taps j in [first, stop) with 0 <= start + j * dilation < n: the only terms of the sum
    # (samples outside the input are absent, not zeros, so a NaN tap there poisons nothing).
    first[0] = clamp(ceil_div(-start, dilation), 0, taps)
    stop[0] = clamp(floor_div(n - 1 - start, dilation) + 1, first[0], taps)
