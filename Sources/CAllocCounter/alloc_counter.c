// Allocation counter: malloc interposition forwarding to glibc. See include/CAllocCounter.h.
//
// Rules for everything in this file, since it runs inside malloc itself: no allocation, no lock,
// no call into anything that might allocate (no printf, no dlsym), no recursion.
#include <stdlib.h>   // also defines __GLIBC__ through <features.h> on glibc systems
#include "CAllocCounter.h"

#if defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#    define MGAC_SANITIZED 1   // the sanitizer owns malloc; interposing it too would break both
#  endif
#endif

#if defined(__linux__) && defined(__GLIBC__) && !defined(MGAC_SANITIZED)

#include <stdatomic.h>
#include <stddef.h>

// glibc's allocator entry points, exported so that a replacement malloc can forward to them.
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

// Number of active enables; counting runs while > 0.
static _Atomic int mgac_enables;
// Process-wide counts.
static _Atomic long long mgac_malloc_count;
static _Atomic long long mgac_free_count;
// Per-thread counts. initial-exec: a fixed offset from the thread pointer, so reading them never
// calls __tls_get_addr (which may allocate) and never re-enters malloc.
static __thread long long mgac_thread_malloc_count __attribute__((tls_model("initial-exec")));
static __thread long long mgac_thread_free_count __attribute__((tls_model("initial-exec")));

static inline int counting(void) {
    return atomic_load_explicit(&mgac_enables, memory_order_relaxed) > 0;
}

static inline void count_malloc(void) {
    atomic_fetch_add_explicit(&mgac_malloc_count, 1, memory_order_relaxed);
    mgac_thread_malloc_count += 1;
}

static inline void count_free(void) {
    atomic_fetch_add_explicit(&mgac_free_count, 1, memory_order_relaxed);
    mgac_thread_free_count += 1;
}

void *malloc(size_t size) {
    if (counting()) count_malloc();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    if (counting()) count_malloc();
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size) {
    if (counting()) {
        if (ptr == NULL) {
            count_malloc();                 // realloc(NULL, n) is malloc(n)
        } else if (size == 0) {
            count_free();                   // glibc: realloc(p, 0) frees p
        } else {
            count_malloc();                 // may move: count as a new block replacing the old
            count_free();
        }
    }
    return __libc_realloc(ptr, size);
}

void free(void *ptr) {
    if (ptr != NULL && counting()) count_free();
    __libc_free(ptr);
}

void mgac_enable(int on) {
    if (on) {
        atomic_fetch_add_explicit(&mgac_enables, 1, memory_order_relaxed);
        return;
    }
    int n = atomic_load_explicit(&mgac_enables, memory_order_relaxed);
    while (n > 0 && !atomic_compare_exchange_weak_explicit(&mgac_enables, &n, n - 1,
                                                           memory_order_relaxed, memory_order_relaxed)) {
    }
}

int mgac_supported(void) { return 1; }
long long mgac_mallocs(void) { return atomic_load_explicit(&mgac_malloc_count, memory_order_relaxed); }
long long mgac_frees(void) { return atomic_load_explicit(&mgac_free_count, memory_order_relaxed); }
long long mgac_thread_mallocs(void) { return mgac_thread_malloc_count; }
long long mgac_thread_frees(void) { return mgac_thread_free_count; }

#else   // not glibc (or a sanitizer build): the API only, reporting "unsupported"

void mgac_enable(int on) { (void)on; }
int mgac_supported(void) { return 0; }
long long mgac_mallocs(void) { return -1; }
long long mgac_frees(void) { return -1; }
long long mgac_thread_mallocs(void) { return -1; }
long long mgac_thread_frees(void) { return -1; }

#endif
