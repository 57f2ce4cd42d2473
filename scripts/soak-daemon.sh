#!/usr/bin/env bash
# Live soak of the daemon: mgptd at its configured rate (100 Hz by default) fed by mgpt-sim for
# --seconds (default 60), then SIGTERM. Prints the daemon's final status counters and the
# end-to-end latency (frame publish → intent receive over ipc://, measured by
# clients/python/latency_probe.py in a second run), and mgptd's resident memory (VmRSS from
# /proc/PID/status) after a warm-up (5 s; 1 s for runs under 20 s) and at the end of the feed, for
# the drift (goal: ≤ 1024 kB over an hour). Last line:
#   ticks=… deadline_misses=… overruns=… max_tick_us=… e2e_p50_us=… e2e_p99_us=… rss_start_kb=… rss_end_kb=… rss_drift_kb=…
# --scratch-path DIR builds into DIR instead of .build (e.g. beside another build in the same tree).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=60; CONFIG=Configs/robot.json; SCRATCH=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECS=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --scratch-path) SCRATCH=(--scratch-path "$2"); shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--config FILE] [--scratch-path DIR]" >&2; exit 64 ;;
  esac
done
swift build -c release "${SCRATCH[@]}" --product mgptd >&2
swift build -c release "${SCRATCH[@]}" --product mgpt-sim >&2
BIN=$(swift build -c release "${SCRATCH[@]}" --show-bin-path)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The same config with ipc endpoints in a private folder and recording off.
python3 - "$CONFIG" "$tmp" <<'PY'
import json, os, sys
src, tmp = sys.argv[1], sys.argv[2]
c = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
c["model"]["path"] = os.path.normpath(os.path.join(base, c["model"]["path"]))
c.setdefault("io", {})["sensor_endpoint"] = f"ipc://{tmp}/obs"
c["io"]["publish_endpoint"] = f"ipc://{tmp}/out"
c["record"] = {"enabled": False}
json.dump(c, open(f"{tmp}/robot.json", "w"))
PY
echo "== soak: ${SECS} s with mgpt-sim feed" >&2
"$BIN/mgptd" --config "$tmp/robot.json" 2> "$tmp/mgptd.log" &
d=$!
python3 clients/python/subscriber.py --endpoint "ipc://$tmp/out" --topics status --json --quiet --seconds $((SECS + 3)) > /dev/null &
# Resident set size in kB of process $1 (VmRSS, proc(5)); "n/a" once it is gone.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo n/a; }
WARM=$(( SECS >= 20 ? 5 : 1 ))
( sleep "$WARM"; rss_kb $d > "$tmp/rss_start" ) &
sampler=$!
"$BIN/mgpt-sim" feed --scenario sim/scenarios/cluttered.json --rate 50 --publish-every 5 \
  --endpoint "ipc://$tmp/obs" --seconds "$SECS" > /dev/null
wait $sampler
rss_end=$(rss_kb $d)
rss_start=$(cat "$tmp/rss_start")
kill -TERM $d; wait $d
if [ "$rss_start" != n/a ] && [ "$rss_end" != n/a ]; then rss_drift=$((rss_end - rss_start)); else rss_drift=n/a; fi
echo "mgptd VmRSS: ${rss_start} kB after ${WARM} s warm-up, ${rss_end} kB at the end: drift ${rss_drift} kB (goal ≤ 1024 kB)" >&2
tail -1 "$tmp/mgptd.log" >&2
stats=$(tail -1 "$tmp/mgptd.log" | grep -o 'ticks=[0-9]*\|deadline_misses=[0-9]*\|overruns=[0-9]*\|max_tick_us=[0-9]*' | tr '\n' ' ')
echo "== end-to-end latency over ipc:// (latency_probe.py as the feeder)" >&2
"$BIN/mgptd" --config "$tmp/robot.json" --quiet &
d=$!
lat=$(python3 clients/python/latency_probe.py --obs "ipc://$tmp/obs" --out "ipc://$tmp/out" --frames 600 --rate 20 | tail -1)
kill -TERM $d; wait $d
echo "${stats}${lat} rss_start_kb=${rss_start} rss_end_kb=${rss_end} rss_drift_kb=${rss_drift}"
