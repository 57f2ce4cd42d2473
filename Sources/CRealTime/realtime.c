#define _GNU_SOURCE
#include "CRealTime.h"
#include <errno.h>
#include <time.h>
#if defined(__linux__)
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>

int mgrt_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0) == 0 ? 0 : errno;
}

int mgrt_set_affinity(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) return EINVAL;
        CPU_SET(cpus[i], &set);
    }
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}

int mgrt_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0) == 0 ? 0 : errno;
}

int mgrt_wait_readable(int fd, uint64_t deadline_ns) {
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint64_t t = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
        if (t >= deadline_ns) return 0;
        uint64_t left = deadline_ns - t;
        struct timespec timeout = { .tv_sec = (time_t)(left / 1000000000ull), .tv_nsec = (long)(left % 1000000000ull) };
        int rc = ppoll(&p, 1, &timeout, NULL);
        if (rc > 0) return 1;
        if (rc == 0) continue;  /* the timeout: loop once more to confirm the deadline passed */
        if (errno == EINTR) continue;
        return -errno;
    }
}
#else
#include <unistd.h>
int mgrt_set_timer_slack(unsigned long nanoseconds) { (void)nanoseconds; return ENOSYS; }
int mgrt_set_affinity(const int *cpus, int count) { (void)cpus; (void)count; return ENOSYS; }
int mgrt_set_thread_name(const char *name) { (void)name; return ENOSYS; }
int mgrt_wait_readable(int fd, uint64_t deadline_ns) { (void)fd; (void)deadline_ns; return -ENOSYS; }
#endif
