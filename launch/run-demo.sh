#!/usr/bin/env bash
# The README's main command: the simulated robot (mgpt-sim, closed loop), the decision daemon
# (mgptd, shipped default model) and the example Python subscriber, together on loopback.
#
#   launch/run-demo.sh [--seconds 20] [--scenario sim/scenarios/simple_room.json] [--config Configs/robot.json]
#
# Ends by itself; prints the subscriber's decisions, the sim's episode metrics and the daemon's
# counters, then the episode outcome and the path of the MCAP recording (replay it with
# `mgpt replay FILE`). Exit status 0 when the robot reached the goal, 3 when it did not.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=20
SCENARIO=sim/scenarios/simple_room.json
CONFIG=Configs/robot.json
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_TO_RUN=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--scenario FILE] [--config FILE]" >&2; exit 64 ;;
  esac
done
scripts/setup.sh
echo "== building (release)" >&2
swift build -c release --product mgptd >&2
swift build -c release --product mgpt-sim >&2
BIN=$(swift build -c release --show-bin-path)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
log=$(mktemp) dlog=$(mktemp)

# The daemon's log goes to the terminal and to $dlog (for the recording's path at the end).
"$BIN/mgptd" --config "$CONFIG" --seconds $((SECONDS_TO_RUN + 5)) 2> >(tee "$dlog" >&2) &
daemon=$!
pids+=($daemon)
python3 clients/python/subscriber.py --endpoint tcp://127.0.0.1:5556 --seconds $((SECONDS_TO_RUN + 3)) &
sub=$!
pids+=($sub)
sleep 0.5
# A daemon that could not start (e.g. another mgptd holds the ports) must stop the demo: otherwise
# the sim would be driven by whatever else answers on them.
if ! kill -0 "$daemon" 2>/dev/null; then
  code=0; wait "$daemon" || code=$?
  echo "== mgptd exited at start (status $code): see its error above; nothing was run" >&2
  exit "$code"
fi
# The sim steps physics at 50 Hz and publishes every 5th frame: 10 decisions a second, the spacing
# the model was trained on (docs/sim.md); mgptd ticks at 100 Hz and runs the model on each new frame.
# It ends at the robot's DONE or after --seconds; then the subscriber (SIGTERM: prints its counts)
# and the daemon (SIGTERM: final status, recording closed) are stopped.
"$BIN/mgpt-sim" run --scenario "$SCENARIO" --endpoint tcp://127.0.0.1:5555 \
  --intent-endpoint tcp://127.0.0.1:5556 --rate 50 --publish-every 5 --seconds "$SECONDS_TO_RUN" | tee "$log"
sleep 0.3
kill -TERM "$sub" 2>/dev/null || true
wait "$sub" 2>/dev/null || true
kill -TERM "$daemon" 2>/dev/null || true
wait "$daemon" 2>/dev/null || true

outcome=$(grep '^goal_reached=' "$log" || true)
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$outcome"; }
echo
if [ "$(field goal_reached)" = "true" ]; then
  echo "== episode outcome: GOAL REACHED ($SCENARIO): the robot said DONE $(field final_distance) m from the target after $(field seconds) s, $(field collisions) collisions"
  status=0
else
  echo "== episode outcome: goal NOT reached ($SCENARIO) — ${outcome:-mgpt-sim run printed no result}"
  status=3
fi
rec=$(sed -n 's/.*recording to \(.*\.mcap\).*/\1/p' "$dlog" | head -1)
echo "   recording: ${rec:-none} (replay: $BIN/mgpt replay FILE)"
rm -f "$log" "$dlog"
exit $status
