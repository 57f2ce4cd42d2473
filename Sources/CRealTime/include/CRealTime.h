#ifndef CREALTIME_H
#define CREALTIME_H
#include <stdint.h>
/// Linux calls Swift's Glibc module does not expose (prctl(2), sched_setaffinity(2), ppoll(2) need
/// <sys/prctl.h> / <poll.h> and _GNU_SOURCE). Each returns 0 on success or an errno value unless
/// it says otherwise.
int mgrt_set_timer_slack(unsigned long nanoseconds);
int mgrt_set_affinity(const int *cpus, int count);
/// Names the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept).
int mgrt_set_thread_name(const char *name);
/// Waits until `fd` is readable or CLOCK_MONOTONIC reaches `deadline_ns` (absolute), with ppoll(2)
/// and a nanosecond timeout (poll(2) and zmq_poll take milliseconds). Resumes after signals.
/// Returns 1 when readable, 0 at the deadline, -errno on failure. No allocation.
int mgrt_wait_readable(int fd, uint64_t deadline_ns);
#endif
