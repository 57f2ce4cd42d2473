#!/usr/bin/env bash
# Live soak of the daemon: mgptd at its configured rate (100 Hz by default) fed by mgpt-sim for
# --seconds (default 60), then SIGTERM. Prints the daemon's final status counters and the
# end-to-end latency (frame publish → intent receive over ipc://, measured by
# clients/python/latency_probe.py in a second run of --seconds, at most 120 s, at 20 frames/s, random phase), and
# mgptd's resident memory (VmRSS from /proc/PID/status) after a warm-up (5 s; 1 s for runs under
# 20 s) and at the end of the feed, for the drift (goal: ≤ 1024 kB over an hour). Both runs count
# the loop thread's heap allocations (MGPTD_COUNT_ALLOCATIONS=1; 0 expected, libzmq included).
# Last line:
#   ticks=… on_arrival=… deadline_misses=… overruns=… max_tick_us=… loop_allocs=… e2e_p50_us=… e2e_p99_us=… e2e_max_us=…
#   … probe_overruns=… probe_deadline_misses=… probe_loop_allocs=… rss_start_kb=… rss_end_kb=… rss_drift_kb=…
# --probe c measures the end-to-end latency with clients/c/latency_probe.c (plain libzmq, built here
# with cc) instead of the Python probe: what a C / C++ subscriber sees, without an interpreter.
# --scratch-path DIR builds into DIR instead of .build (e.g. beside another build in the same tree).
# --priority N runs mgptd's loop at SCHED_FIFO N (loop.realtime.priority; its publisher and libzmq
# I/O threads at N-1) and the feeders (mgpt-sim, latency_probe.py) at SCHED_FIFO N-10 with chrt(1),
# as on a robot whose sensor stack is real-time too: on a shared machine the figures then show the
# daemon, not the other tenants (needs root or CAP_SYS_NICE).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=60; CONFIG=Configs/robot.json; SCRATCH=(); PRIO=0; PROBE=python
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --scratch-path) SCRATCH=(--scratch-path "$2"); shift 2 ;;
    --priority) PRIO=$2; shift 2 ;;
    --probe) PROBE=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--config FILE] [--scratch-path DIR] [--priority N] [--probe python|c]" >&2; exit 64 ;;
  esac
done
case "$PROBE" in python|c) ;; *) echo "$0: --probe expects python or c, found '$PROBE'" >&2; exit 64 ;; esac
swift build -c release "${SCRATCH[@]}" --product mgptd >&2
swift build -c release "${SCRATCH[@]}" --product mgpt-sim >&2
BIN=$(swift build -c release "${SCRATCH[@]}" --show-bin-path)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The same config with ipc endpoints in a private folder and recording off.
FEED=()
if [ "$PRIO" -gt 0 ]; then FEED=(chrt -f $(( PRIO > 10 ? PRIO - 10 : 1 ))); fi
python3 - "$CONFIG" "$tmp" "$PRIO" <<'PY'
import json, os, sys
src, tmp, prio = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
c["model"]["path"] = os.path.normpath(os.path.join(base, c["model"]["path"]))
c.setdefault("io", {})["sensor_endpoint"] = f"ipc://{tmp}/obs"
c["io"]["publish_endpoint"] = f"ipc://{tmp}/out"
c["record"] = {"enabled": False}
if prio > 0:
    c.setdefault("loop", {}).setdefault("realtime", {})["priority"] = prio
json.dump(c, open(f"{tmp}/robot.json", "w"))
PY
echo "== soak: ${SECS} s with mgpt-sim feed" >&2
MGPTD_COUNT_ALLOCATIONS=1 "$BIN/mgptd" --config "$tmp/robot.json" 2> "$tmp/mgptd.log" &
d=$!
python3 clients/python/subscriber.py --endpoint "ipc://$tmp/out" --topics status --json --quiet --seconds $((SECS + 3)) > /dev/null &
# Resident set size in kB of process $1 (VmRSS, proc(5)); "n/a" once it is gone.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo n/a; }
WARM=$(( SECS >= 20 ? 5 : 1 ))
( sleep "$WARM"; rss_kb $d > "$tmp/rss_start" ) &
sampler=$!
"${FEED[@]}" "$BIN/mgpt-sim" feed --scenario sim/scenarios/cluttered.json --rate 50 --publish-every 5 \
  --endpoint "ipc://$tmp/obs" --seconds "$SECS" > /dev/null
wait $sampler
rss_end=$(rss_kb $d)
rss_start=$(cat "$tmp/rss_start")
kill -TERM $d; wait $d
if [ "$rss_start" != n/a ] && [ "$rss_end" != n/a ]; then rss_drift=$((rss_end - rss_start)); else rss_drift=n/a; fi
echo "mgptd VmRSS: ${rss_start} kB after ${WARM} s warm-up, ${rss_end} kB at the end: drift ${rss_drift} kB (goal ≤ 1024 kB)" >&2
tail -1 "$tmp/mgptd.log" >&2
pick() { grep -o "$1" | tr '\n' ' '; }
stats=$(tail -1 "$tmp/mgptd.log" | pick '\bticks=[0-9]*\|on_arrival=[0-9]*\|deadline_misses=[0-9]*\|overruns=[0-9]*\|max_tick_us=[0-9]*\|loop_allocs=[0-9a-z/]*')
# The latency probe runs at most 120 s (enough for a stable p99; an hour soak need not wait another hour).
PROBE_SECS=$(( SECS < 120 ? SECS : 120 ))
case "$PROBE" in
  python) PROBE_CMD=(python3 clients/python/latency_probe.py) ;;
  c) cc -O2 -std=c11 -o "$tmp/latency_probe" clients/c/latency_probe.c $(pkg-config --cflags --libs libzmq) -lm
     PROBE_CMD=("$tmp/latency_probe") ;;
esac
echo "== end-to-end latency over ipc:// (${PROBE} latency probe as the feeder, ${PROBE_SECS} s at 20 frames/s)" >&2
MGPTD_COUNT_ALLOCATIONS=1 "$BIN/mgptd" --config "$tmp/robot.json" 2> "$tmp/probe.log" &
d=$!
lat=$("${FEED[@]}" "${PROBE_CMD[@]}" --obs "ipc://$tmp/obs" --out "ipc://$tmp/out" --frames $((PROBE_SECS * 20)) --rate 20 | tail -1)
kill -TERM $d; wait $d
tail -1 "$tmp/probe.log" >&2
probe=$(tail -1 "$tmp/probe.log" | pick 'deadline_misses=[0-9]*\|overruns=[0-9]*\|loop_allocs=[0-9a-z/]*' | sed 's/\([a-z_]*=\)/probe_\1/g')
echo "${stats}${lat} ${probe}rss_start_kb=${rss_start} rss_end_kb=${rss_end} rss_drift_kb=${rss_drift}"
