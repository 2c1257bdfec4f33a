"""How many threads a call may use: the ``workers`` argument and :func:`set_workers`."""

import contextlib
import contextvars
import operator
import os

__all__ = ["set_workers"]

# A context variable (not a plain global) so that each thread, and each asyncio task, sees the
# default its own ``set_workers`` block installed.
_default_workers = contextvars.ContextVar("convlab_default_workers", default=None)

# GNU OpenMP cannot start threads in a child forked from a process whose OpenMP threads
# already ran: the child would hang in its first parallel loop. So once this process has run
# threads, its forked children run convlab serially (start parallel children with the
# 'spawn' or 'forkserver' method of multiprocessing to keep their threads).
_threads_started = False
_serial_after_fork = False


def _after_fork_in_child():
    global _serial_after_fork
    if _threads_started:
        _serial_after_fork = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def usable_cores():
    """Number of cores this process may run on (its CPU affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def _validate_workers(workers):
    """A thread count >= 1 from an int (or None: every usable core).

    Counts above the number of usable cores are capped at it: extra threads would only
    oversubscribe the cores (and a huge count must not reach a C integer).
    """
    if workers is None:
        return usable_cores()
    if isinstance(workers, bool):
        raise TypeError(f"workers must be an int or None, got {workers!r} (a bool)")
    try:
        count = operator.index(workers)
    except TypeError:
        raise TypeError(
            f"workers must be an int or None, got {workers!r} of type {type(workers).__name__}"
        ) from None
    if count == 0:
        raise ValueError("workers must be a nonzero int: >= 1 threads, or -n to count back from "
                         f"the {usable_cores()} usable cores; got 0")
    if count < 0:
        cores = usable_cores()
        if count < -cores:
            raise ValueError(f"workers={count} counts back from {cores} usable cores; "
                             f"expected a value >= {-cores}")
        count = cores + 1 + count
    return min(count, usable_cores())


def resolve_workers(workers):
    """Turn a ``workers`` argument into a thread count >= 1 (SPEC §5 / scipy.fft rules).

    None takes the value of the innermost :func:`set_workers` block, or every usable core.
    In a child forked after this process ran threads, the count is 1 (see above).
    """
    global _threads_started
    if workers is None:
        workers = _default_workers.get()
    count = usable_cores() if workers is None else _validate_workers(workers)
    if _serial_after_fork:
        return 1
    if count > 1:
        _threads_started = True
    return count


# Below this many multiply-adds per thread, a call runs on fewer threads (down to one):
# starting and joining threads costs more than such work, and on a machine busy with other
# processes a thread that waits at the end of a parallel loop for a descheduled one can wait
# a whole time slice (milliseconds) for microseconds of work.
_WORK_PER_THREAD = _WORK_PER_THREAD_DEFAULT = 1 << 20


def threads_for(workers, work, per_thread=None):
    """The threads a call with `work` units uses out of ``workers`` (None, or an int as
    :func:`resolve_workers` takes it): at least `per_thread` units each (by default
    ``_WORK_PER_THREAD`` multiply-adds), at least one thread. Results do not depend on it:
    every kernel gives the same bits at any thread count."""
    count = resolve_workers(workers)
    per_thread = _WORK_PER_THREAD if per_thread is None else per_thread
    return max(1, min(count, int(work // per_thread)))


@contextlib.contextmanager
def set_workers(workers):
    """Context manager setting the default number of threads for convlab calls.

    Inside the block, every convlab call made with ``workers=None`` (the default) uses this
    many threads. The setting belongs to the thread (and asyncio task) that entered the
    block; other threads keep their own default.

    Parameters
    ----------
    workers : int or None
        Number of threads: ``>= 1`` a count (capped at the number of usable cores), ``-n``
        counts back from the number of usable cores (``-1`` is all of them, ``-2`` all but
        one), as in :mod:`scipy.fft`; None is every usable core. ``0`` is a ValueError.

    Yields
    ------
    int
        The resolved number of threads.

    Raises
    ------
    ValueError
        If `workers` is 0 or counts back further than the number of cores.
    TypeError
        If `workers` is not an integer.

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(6.0)
    >>> with convlab.set_workers(1):
    ...     convlab.correlate(x, [1.0, 1.0], mode="valid")
    array([1., 3., 5., 7., 9.])
    """
    count = _validate_workers(workers)
    token = _default_workers.set(count)
    try:
        yield count
    finally:
        _default_workers.reset(token)
