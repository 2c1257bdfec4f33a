"""Memory for large results: freed blocks are kept for the next call of the same size (private).

A large result (tens of MiB) that the C library maps fresh from the kernel costs a page
fault and a page clearing per 4 KiB: for a 2048 x 2048 float64 image that is as long as
computing a 3 x 3 correlation of it. Results allocated through :func:`empty` carry this
module's numpy memory handler; when such an array is freed, a block of at least
``MIN_BLOCK`` bytes goes back into a small pool (at most ``SLOTS`` blocks and ``limit``
bytes; when full, the block given back longest ago is released to make room) instead of
to the system, and the next request of about that size takes it again.
Smaller blocks go straight to ``malloc`` / ``free``, which recycle them already.

On Linux a large block is its own mapping, aligned to 2 MiB and advised to use transparent
huge pages. From ``malloc`` it could be heap memory that earlier arrays faulted in 4 KiB
pages, and the kernels stream these buffers: with P3's inputs on 4 KiB pages instead of
huge pages, its forward pass took about 5% longer.

Every block starts with a header holding its capacity, so a block is recognised whatever
size numpy reports when it frees it (``ndarray.resize`` reallocates through the handler).
"""

from cpython.pycapsule cimport PyCapsule_New
from cpython.pythread cimport (
    PyThread_type_lock, PyThread_allocate_lock, PyThread_acquire_lock,
    PyThread_release_lock, WAIT_LOCK,
)
from libc.stdint cimport uint8_t, SIZE_MAX
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcpy, memset, strcpy

import os

cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "numpy/ndarraytypes.h":
    ctypedef struct PyDataMemAllocator:
        void* ctx
        void* (*malloc)(void* ctx, size_t size) noexcept nogil
        void* (*calloc)(void* ctx, size_t nelem, size_t elsize) noexcept nogil
        void* (*realloc)(void* ctx, void* ptr, size_t new_size) noexcept nogil
        void (*free)(void* ctx, void* ptr, size_t size) noexcept nogil

    ctypedef struct PyDataMem_Handler:
        char name[127]
        uint8_t version
        PyDataMemAllocator allocator

cdef extern from "numpy/arrayobject.h":
    object PyDataMem_SetHandler(object handler)

cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    #include <stdlib.h>
    /* A large block: on Linux a fresh anonymous mapping aligned to 2 MiB, advised to take
       transparent huge pages (512 times fewer page faults when first written, and fewer
       TLB misses while the kernels stream it); elsewhere malloc. Released with
       convlab_release_block(block, size), size as given here. */
    #define CONVLAB_HUGE_PAGE ((size_t)2 << 20)
    static size_t convlab_mapped_length(size_t size) {
        return (size + CONVLAB_HUGE_PAGE - 1) & ~(CONVLAB_HUGE_PAGE - 1);
    }
    static void *convlab_map_block(size_t size) {
    #if defined(__linux__) && defined(MAP_ANONYMOUS)
        size_t length = convlab_mapped_length(size);
        if (length < size || length + CONVLAB_HUGE_PAGE < length) return NULL;
        char *raw = (char *)mmap(NULL, length + CONVLAB_HUGE_PAGE, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == (char *)MAP_FAILED) return NULL;
        char *start = (char *)(((uintptr_t)raw + CONVLAB_HUGE_PAGE - 1)
                               & ~(uintptr_t)(CONVLAB_HUGE_PAGE - 1));
        if (start > raw) munmap(raw, (size_t)(start - raw));
        size_t tail = (size_t)(raw + length + CONVLAB_HUGE_PAGE - (start + length));
        if (tail) munmap(start + length, tail);
    #if defined(MADV_HUGEPAGE)
        madvise(start, length, MADV_HUGEPAGE);
    #endif
        return start;
    #else
        return malloc(size);
    #endif
    }
    static void convlab_release_block(void *block, size_t size) {
    #if defined(__linux__) && defined(MAP_ANONYMOUS)
        munmap(block, convlab_mapped_length(size));
    #else
        (void)size;
        free(block);
    #endif
    }
    """
    void* convlab_map_block(size_t size) nogil
    void convlab_release_block(void* block, size_t size) nogil


cdef enum:
    # Bytes before the caller's pointer: the capacity, padded to keep 64-byte alignment of
    # whatever alignment malloc gave.
    HEADER = 64
    # a call's working copies and result (the fused separable backward holds five large
    # blocks), and the next call's
    SLOTS = 8
    MIN_BLOCK = 8 << 20

MIN_POOLED_BYTES = MIN_BLOCK
POOL_SLOTS = SLOTS

cdef void* pooled[SLOTS]
cdef size_t pooled_capacity[SLOTS]
cdef unsigned long long pooled_stamp[SLOTS]     # when each block was given back
cdef unsigned long long pool_clock = 0
cdef size_t pool_limit = 0
cdef PyThread_type_lock pool_lock = NULL
cdef PyDataMem_Handler handler


cdef inline void* user_pointer(char* block, size_t capacity) noexcept nogil:
    (<size_t*>block)[0] = capacity
    return block + HEADER


cdef inline char* block_of(void* ptr) noexcept nogil:
    return <char*>ptr - HEADER


cdef inline void release_large(char* block, size_t capacity) noexcept nogil:
    # a block of at least MIN_BLOCK bytes (its own mapping on Linux)
    convlab_release_block(block, capacity + HEADER)


cdef void* take_pooled(size_t size) noexcept nogil:
    # A pooled block that holds `size` bytes without wasting more than a quarter of it.
    cdef int s
    cdef void* found = NULL
    if pool_lock == NULL:
        return NULL
    PyThread_acquire_lock(pool_lock, WAIT_LOCK)
    for s in range(SLOTS):
        if pooled[s] != NULL and size <= pooled_capacity[s] <= size + size // 4:
            found = pooled[s]
            pooled[s] = NULL
            pooled_capacity[s] = 0
            break
    PyThread_release_lock(pool_lock)
    return found


cdef bint give_back(char* block, size_t capacity) noexcept nogil:
    # Keep `block` in the pool, making room by releasing the blocks given back longest ago
    # when the slots or the byte limit run out: a pool left full of blocks of sizes no
    # longer asked for would otherwise send every new size to fresh pages. True if kept.
    cdef int s, empty, oldest, dropped = 0
    cdef size_t kept
    cdef void* drop[SLOTS]
    cdef size_t drop_capacity[SLOTS]
    cdef bint stored = False
    global pool_clock
    if pool_lock == NULL:
        return False
    PyThread_acquire_lock(pool_lock, WAIT_LOCK)
    if capacity <= pool_limit:
        while True:
            kept = 0
            empty = -1
            oldest = -1
            for s in range(SLOTS):
                kept += pooled_capacity[s]
                if pooled[s] == NULL:
                    if empty < 0:
                        empty = s
                elif oldest < 0 or pooled_stamp[s] < pooled_stamp[oldest]:
                    oldest = s
            if empty >= 0 and kept + capacity <= pool_limit:
                break
            # (oldest >= 0 here: with every slot empty, kept is 0 and the block fits)
            drop[dropped] = pooled[oldest]
            drop_capacity[dropped] = pooled_capacity[oldest]
            dropped += 1
            pooled[oldest] = NULL
            pooled_capacity[oldest] = 0
        pool_clock += 1
        pooled[empty] = block
        pooled_capacity[empty] = capacity
        pooled_stamp[empty] = pool_clock
        stored = True
    PyThread_release_lock(pool_lock)
    for s in range(dropped):
        release_large(<char*>drop[s], drop_capacity[s])
    return stored



cdef void* pool_malloc(void* ctx, size_t size) noexcept nogil:
    cdef void* block
    if size > SIZE_MAX - HEADER:
        return NULL
    if size >= MIN_BLOCK:
        block = take_pooled(size)
        if block != NULL:
            return <char*>block + HEADER
    if size >= MIN_BLOCK:
        block = convlab_map_block(size + HEADER)
    else:
        block = malloc(size + HEADER)
    if block == NULL:
        return NULL
    return user_pointer(<char*>block, size)


cdef void* pool_calloc(void* ctx, size_t nelem, size_t elsize) noexcept nogil:
    cdef size_t size
    cdef void* ptr
    if elsize != 0 and nelem > (SIZE_MAX - HEADER) // elsize:
        return NULL
    size = nelem * elsize
    ptr = pool_malloc(ctx, size)
    if ptr != NULL:
        memset(ptr, 0, size)
    return ptr


cdef void* pool_realloc(void* ctx, void* ptr, size_t new_size) noexcept nogil:
    cdef void* block
    cdef void* moved
    cdef size_t capacity
    if ptr == NULL:
        return pool_malloc(ctx, new_size)
    if new_size > SIZE_MAX - HEADER:
        return NULL
    capacity = (<size_t*>block_of(ptr))[0]
    if capacity >= MIN_BLOCK or new_size >= MIN_BLOCK:
        # a large block is a mapping of its own: move to a block of the new size
        moved = pool_malloc(ctx, new_size)
        if moved == NULL:
            return NULL
        memcpy(moved, ptr, min(capacity, new_size))
        pool_free(ctx, ptr, capacity)
        return moved
    block = realloc(block_of(ptr), new_size + HEADER)
    if block == NULL:
        return NULL
    return user_pointer(<char*>block, new_size)


cdef void pool_free(void* ctx, void* ptr, size_t size) noexcept nogil:
    cdef char* block
    cdef size_t capacity
    if ptr == NULL:
        return
    block = block_of(ptr)
    capacity = (<size_t*>block)[0]
    if capacity >= MIN_BLOCK:
        if not give_back(block, capacity):
            release_large(block, capacity)
        return
    free(block)


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 1 << 33


def _init():
    global pool_lock, pool_limit
    cdef int s
    for s in range(SLOTS):
        pooled[s] = NULL
        pooled_capacity[s] = 0
        pooled_stamp[s] = 0
    pool_lock = PyThread_allocate_lock()
    if pool_lock == NULL:
        raise MemoryError("convlab: cannot allocate the result pool's lock")
    pool_limit = min(1 << 30, _physical_memory() // 16)
    if os.environ.get("CONVLAB_RESULT_POOL_MIB"):
        pool_limit = int(os.environ["CONVLAB_RESULT_POOL_MIB"]) << 20
    strcpy(handler.name, b"convlab_result_pool")
    handler.version = 1
    handler.allocator.ctx = NULL
    handler.allocator.malloc = pool_malloc
    handler.allocator.calloc = pool_calloc
    handler.allocator.realloc = pool_realloc
    handler.allocator.free = pool_free
    # numpy finds the handler through a capsule named "mem_handler"; the struct is static,
    # so arrays that outlive every reference to this module still free correctly.
    return PyCapsule_New(&handler, b"mem_handler", NULL)


_HANDLER = _init()


def _after_fork_in_child():
    # Another thread of the parent may have held the lock at the fork: the child takes a
    # fresh one (the pooled blocks themselves are the child's copy and stay valid). Without
    # a lock the pool is bypassed.
    global pool_lock
    pool_lock = PyThread_allocate_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def empty(shape, dtype):
    """``numpy.empty(shape, dtype)`` whose memory comes from (and returns to) the pool."""
    previous = PyDataMem_SetHandler(_HANDLER)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def set_limit(size_t limit):
    """Most bytes the pool may keep (0 disables it); returns the previous limit. Blocks
    already kept beyond the new limit are released."""
    global pool_limit
    cdef size_t previous
    cdef int s
    cdef void* drop[SLOTS]
    cdef size_t drop_capacity[SLOTS]
    cdef size_t kept = 0
    if pool_lock == NULL:
        raise MemoryError("convlab: the result pool has no lock (its allocation failed)")
    PyThread_acquire_lock(pool_lock, WAIT_LOCK)
    previous = pool_limit
    pool_limit = limit
    for s in range(SLOTS):
        drop[s] = NULL
        if pooled[s] != NULL:
            if kept + pooled_capacity[s] > limit:
                drop[s] = pooled[s]
                drop_capacity[s] = pooled_capacity[s]
                pooled[s] = NULL
                pooled_capacity[s] = 0
            else:
                kept += pooled_capacity[s]
    PyThread_release_lock(pool_lock)
    for s in range(SLOTS):
        if drop[s] != NULL:
            release_large(<char*>drop[s], drop_capacity[s])
    return previous


def pooled_bytes():
    """Bytes the pool holds now (for tests)."""
    cdef size_t kept = 0
    cdef int s
    if pool_lock == NULL:
        return 0
    PyThread_acquire_lock(pool_lock, WAIT_LOCK)
    for s in range(SLOTS):
        kept += pooled_capacity[s]
    PyThread_release_lock(pool_lock)
    return kept
