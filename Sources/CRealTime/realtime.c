#define _GNU_SOURCE
#include "CRealTime.h"
#include <errno.h>
#if defined(__linux__)
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
#else
int mgrt_set_timer_slack(unsigned long nanoseconds) { (void)nanoseconds; return ENOSYS; }
int mgrt_set_affinity(const int *cpus, int count) { (void)cpus; (void)count; return ENOSYS; }
#endif
