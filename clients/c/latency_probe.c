// End-to-end latency of mgptd from C: frame publish → intent receive, measured in one process.
// The same measurement as clients/python/latency_probe.py, without an interpreter in the path,
// and an example of reading the wire protocol (docs/protocol.md) from C or C++ with plain libzmq.
//
//   cc -O2 -std=c11 -o latency_probe clients/c/latency_probe.c $(pkg-config --cflags --libs libzmq)
//   ./latency_probe --obs ipc:///tmp/mgpt-obs --out ipc:///tmp/mgpt-out [--frames 600] [--rate 10] [--seed 1]
//
// Acts as the sensor feeder (binds a PUB on --obs, as mgpt-sim does) and as a subscriber of the
// daemon's intents (connects a SUB to --out, topic "intent"). Each frame carries a new `seq`; when
// an intent with `"fresh":true` and `"obs_seq"` equal to it arrives, latency = its receive time −
// the frame's send time (both CLOCK_MONOTONIC). Frames are sent with a random phase (period ×
// U[0.5, 1.5]) against the daemon's tick clock. Last line (the Python probe's keys):
//   e2e_p50_us=… e2e_p99_us=… e2e_max_us=… matched=… sent=… on_arrival=…
// Exit status: 0 ok, 1 no intent matched a frame, 2 bad arguments, 3 a socket failed.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// xorshift64*: deterministic frames for a given --seed.
static uint64_t rng_state = 1;
static double uniform(double lo, double hi) {
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return lo + (hi - lo) * (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

// One synthetic fused frame (protocol v2) into buf; returns its length.
static int synthetic(char *buf, size_t cap, int seq) {
    static const char *colours[] = {"red", "blue", "green"};
    int n = snprintf(buf, cap, "{\"v\":2,\"seq\":%d,\"t\":%.1f,\"ranges\":[", seq, seq * 0.1);
    for (int i = 0; i < 16; i++) n += snprintf(buf + n, cap - n, "%s%.3f", i ? "," : "", 0.3 + uniform(0, 4.5));
    n += snprintf(buf + n, cap - n, "],\"range_max\":5.0,\"detections\":[");
    if (uniform(0, 1) < 0.6)
        n += snprintf(buf + n, cap - n, "{\"colour\":\"%s\",\"kind\":\"box\",\"bearing\":%.3f,\"distance\":%.3f}",
                      colours[(int)uniform(0, 2.999)], uniform(-0.5, 0.5), uniform(0.5, 4));
    n += snprintf(buf + n, cap - n, "],\"odom\":{\"x\":0.0,\"y\":0.0,\"theta\":0.0,\"v\":%.3f,\"w\":0.0},"
                  "\"bump\":false,\"battery\":0.9,\"route\":{\"bearing\":%.3f,\"distance\":%.3f}}",
                  uniform(0, 0.4), uniform(-1, 1), uniform(0, 4));
    return n;
}

// The value after "key": in a flat JSON object (the intent message: its string values are intent
// names, reasons and the model id, which never contain a quoted key). NULL when absent.
static const char *field(const char *json, size_t len, const char *key) {
    char pat[64];
    int k = snprintf(pat, sizeof pat, "\"%s\":", key);
    for (size_t i = 0; i + (size_t)k <= len; i++)
        if (memcmp(json + i, pat, (size_t)k) == 0) return json + i + k;
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *sorted, int n, double q) {
    int i = (int)ceil(q * n) - 1;
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s --obs ENDPOINT --out ENDPOINT [--frames N] [--rate HZ] [--seed S]\n", argv0);
    return 2;
}

int main(int argc, char **argv) {
    const char *obs = NULL, *out = NULL;
    int frames = 600;
    double rate = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage(argv[0]);
        if (!strcmp(a, "--obs")) obs = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--frames")) frames = atoi(v);
        else if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--seed")) rng_state = strtoull(v, NULL, 10) | 1;
        else return usage(argv[0]);
        i++;
    }
    if (!obs || !out || frames <= 0 || !(rate > 0)) return usage(argv[0]);

    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB), *sub = zmq_socket(ctx, ZMQ_SUB);
    if (zmq_bind(pub, obs) != 0 || zmq_connect(sub, out) != 0 || zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "intent", 6) != 0) {
        fprintf(stderr, "latency_probe: %s (--obs %s, --out %s)\n", zmq_strerror(zmq_errno()), obs, out);
        return 3;
    }
    struct timespec slow_joiner = {1, 0};  // let mgptd's SUB connect to us and ours to it
    nanosleep(&slow_joiner, NULL);

    int64_t *sent = malloc(sizeof(int64_t) * (size_t)frames);
    double *lat = malloc(sizeof(double) * (size_t)frames);
    for (int i = 0; i < frames; i++) sent[i] = -1;
    int matched = 0, arrivals = 0, seq = 0;
    char frame[1024], body[8192];
    const double period_ns = 1e9 / rate;
    double next_send = (double)now_ns();
    int64_t deadline = 0;
    for (;;) {
        int64_t now = now_ns();
        if (seq < frames && now >= (int64_t)next_send) {
            int n = synthetic(frame, sizeof frame, seq);
            sent[seq] = now_ns();
            zmq_send(pub, "obs", 3, ZMQ_SNDMORE);
            zmq_send(pub, frame, (size_t)n, 0);
            seq++;
            next_send += period_ns * uniform(0.5, 1.5);
            if (seq == frames) deadline = now_ns() + 1000000000;
        }
        if (deadline && now_ns() > deadline) break;
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 1) <= 0 || !(item.revents & ZMQ_POLLIN)) continue;
        // Two frames: the topic, then the JSON body.
        char topic[32];
        int more = 0;
        size_t more_size = sizeof more;
        if (zmq_recv(sub, topic, sizeof topic, 0) < 0) continue;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &more_size);
        if (!more) continue;
        int len = zmq_recv(sub, body, sizeof body, 0);
        int64_t t = now_ns();
        if (len < 0) continue;
        if (len > (int)sizeof body) len = sizeof body;  // truncated: the fields we read come first
        const char *fresh = field(body, (size_t)len, "fresh"), *os = field(body, (size_t)len, "obs_seq");
        if (!fresh || strncmp(fresh, "true", 4) != 0 || !os) continue;
        long s = strtol(os, NULL, 10);
        if (s < 0 || s >= frames || sent[s] < 0) continue;
        lat[matched++] = (double)(t - sent[s]) / 1000.0;
        sent[s] = -1;
        const char *oa = field(body, (size_t)len, "on_arrival");
        if (oa && strncmp(oa, "true", 4) == 0) arrivals++;
    }
    zmq_close(pub);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    if (matched == 0) {
        fprintf(stderr, "no intent matched a frame: is mgptd running with io.sensor_endpoint = %s?\n", obs);
        return 1;
    }
    qsort(lat, (size_t)matched, sizeof *lat, cmp_double);
    printf("frames sent %d at %g Hz, intents matched %d\n", frames, rate, matched);
    printf("e2e_p50_us=%.0f e2e_p99_us=%.0f e2e_max_us=%.0f matched=%d sent=%d on_arrival=%.3f\n",
           pct(lat, matched, 0.5), pct(lat, matched, 0.99), lat[matched - 1], matched, frames, (double)arrivals / matched);
    free(sent);
    free(lat);
    return 0;
}
