#ifndef CALLOCCOUNTER_H
#define CALLOCCOUNTER_H
// CAllocCounter: counts heap allocations of the whole process, without dependencies.
//
// How: this target defines `malloc`, `calloc`, `realloc` and `free`. On Linux with glibc, a symbol
// defined in the executable interposes libc's for every library of the process (the Swift runtime,
// Foundation, libzmq, ...), so any executable that links this target (mgptd, the test bundle) routes
// every allocation through it. Each call forwards to glibc's own allocator (`__libc_malloc`, ...,
// exported for exactly this purpose, see glibc manual "Replacing malloc") and, while counting is
// enabled, bumps relaxed atomic counters. Disabled cost: one relaxed atomic load per call.
//
// Not intercepted: posix_memalign, aligned_alloc, memalign, valloc, pvalloc (glibc serves them
// directly; Swift uses them only for over-aligned types, alignment > 16). Frees of such blocks are
// counted, since they go through `free`.
//
// Elsewhere (macOS, musl, sanitizer builds) the target compiles to the API alone and every count
// is -1 ("unsupported"); mgac_supported() tells which.

/// Counting switch, nestable: mgac_enable(1) adds one enable, mgac_enable(0) removes one (never
/// below zero); counting runs while at least one enable is active. Nesting lets tests that run in
/// parallel switch counting on and off without cutting each other's measurement short.
void mgac_enable(int on);

/// 1 when allocations are intercepted in this build (Linux + glibc, no sanitizer), else 0.
int mgac_supported(void);

/// Allocations (malloc, calloc, realloc that allocates) counted so far in the whole process while
/// counting was enabled; -1 when unsupported. A realloc of an existing block counts as one
/// allocation and one free.
long long mgac_mallocs(void);

/// Frees of non-NULL blocks (free, realloc to size 0, realloc that moves) counted so far in the
/// whole process while counting was enabled; -1 when unsupported.
long long mgac_frees(void);

/// Same as mgac_mallocs, but only allocations made by the calling thread. Use this to measure a
/// stretch of code while other threads (other tests) allocate at the same time.
long long mgac_thread_mallocs(void);

/// Same as mgac_frees, but only frees made by the calling thread.
long long mgac_thread_frees(void);

#endif
