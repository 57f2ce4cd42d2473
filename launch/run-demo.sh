#!/usr/bin/env bash
# The README's main command: the simulated robot (mgpt-sim, closed loop), the decision daemon
# (mgptd, shipped default model) and the example Python subscriber, together on loopback.
#
#   launch/run-demo.sh [--seconds 20] [--scenario sim/scenarios/simple_room.json] [--config Configs/robot.json]
#
# Ends by itself; prints the subscriber's decisions, the sim's episode metrics and the daemon's
# counters, and the path of the MCAP recording (replay it with `mgpt replay FILE`).
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

"$BIN/mgptd" --config "$CONFIG" --seconds $((SECONDS_TO_RUN + 2)) &
pids+=($!)
python3 clients/python/subscriber.py --endpoint tcp://127.0.0.1:5556 --seconds "$SECONDS_TO_RUN" &
sub=$!
pids+=($sub)
sleep 0.5
# The sim steps physics at 50 Hz and publishes every 5th frame: 10 decisions a second, the spacing
# the model was trained on (docs/sim.md); mgptd ticks at 100 Hz and runs the model on each new frame.
"$BIN/mgpt-sim" run --scenario "$SCENARIO" --endpoint tcp://127.0.0.1:5555 \
  --intent-endpoint tcp://127.0.0.1:5556 --rate 50 --publish-every 5 --seconds "$SECONDS_TO_RUN" &
pids+=($!)
wait "$sub"
wait
