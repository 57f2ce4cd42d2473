#ifndef CREALTIME_H
#define CREALTIME_H
/// Linux calls Swift's Glibc module does not expose (prctl(2), sched_setaffinity(2) need
/// <sys/prctl.h> and _GNU_SOURCE). Each returns 0 on success or an errno value.
int mgrt_set_timer_slack(unsigned long nanoseconds);
int mgrt_set_affinity(const int *cpus, int count);
#endif
