#!/usr/bin/env bash
# The live daemon and the in-process evaluator on the same scenarios: gated rate of the decisions
# (intents with fresh=true) published by a real mgptd driven by `mgpt-sim run` over ipc://, next
# to `mgpt-sim eval --scenario` (the daemon's DecisionCore in process, simulated clock). Target:
# within 2 points. Prints one line per scenario, then
#   scenarios=… live_gated_rate=… inprocess_gated_rate=… difference=… live_goals=… inprocess_goals=…
# Usage: scripts/controller-agreement.sh [--config FILE] [--scratch-path DIR] [SCENARIO.json ...]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=Configs/robot.json; SCRATCH=(); SCENARIOS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG=$2; shift 2 ;;
    --scratch-path) SCRATCH=(--scratch-path "$2"); shift 2 ;;
    -*) echo "usage: $0 [--config FILE] [--scratch-path DIR] [SCENARIO.json ...]" >&2; exit 64 ;;
    *) SCENARIOS+=("$1"); shift ;;
  esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(sim/scenarios/simple_room.json sim/scenarios/cluttered.json sim/scenarios/unseen_colour.json sim/scenarios/faults_dropout.json sim/scenarios/faults_contradict.json)
swift build -c release "${SCRATCH[@]}" --product mgptd >&2
swift build -c release "${SCRATCH[@]}" --product mgpt-sim >&2
BIN=$(swift build -c release "${SCRATCH[@]}" --show-bin-path)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for sc in "${SCENARIOS[@]}"; do
  # The config with this scenario's instruction, ipc endpoints in a private folder, recording off.
  python3 - "$CONFIG" "$tmp" "$sc" <<'PY'
import json, os, sys
src, tmp, sc = sys.argv[1:4]
c = json.load(open(src))
base = os.path.dirname(os.path.abspath(src))
c["model"]["path"] = os.path.normpath(os.path.join(base, c["model"]["path"]))
c.setdefault("io", {})["sensor_endpoint"] = f"ipc://{tmp}/obs"
c["io"]["publish_endpoint"] = f"ipc://{tmp}/out"
c["record"] = {"enabled": False}
task = json.load(open(sc)).get("task", {})
if "instruction" in task:
    c["context"]["instruction"] = task["instruction"]
json.dump(c, open(f"{tmp}/robot.json", "w"))
PY
  "$BIN/mgptd" --config "$tmp/robot.json" --quiet 2> "$tmp/mgptd.log" &
  d=$!
  sleep 1
  # 50 Hz physics, every 5th frame published: the 10 Hz decision spacing the model was trained on.
  live=$("$BIN/mgpt-sim" run --scenario "$sc" --endpoint "ipc://$tmp/obs" --intent-endpoint "ipc://$tmp/out" --rate 50 --publish-every 5 2>&1 | tail -1)
  kill -TERM $d; wait $d || true
  inproc=$("$BIN/mgpt-sim" eval --model "$(python3 -c "import json;print(json.load(open('$tmp/robot.json'))['model']['path'])")" --config "$tmp/robot.json" --scenario "$sc" | tail -1)
  ld=$(grep -o 'decisions=[0-9]*' <<<"$live" | cut -d= -f2); lg=$(grep -o 'gated_rate=[0-9.]*' <<<"$live" | cut -d= -f2)
  ig=$(grep -o 'gated_rate=[0-9.]*' <<<"$inproc" | cut -d= -f2)
  lgoal=$(grep -o 'goal_reached=[a-z]*' <<<"$live" | cut -d= -f2); igoal=$(grep -o '^goal_rate=[0-9.]*' <<<"$inproc" | cut -d= -f2)
  echo "scenario=$(basename "$sc" .json) live_decisions=$ld live_gated_rate=$lg live_goal=$lgoal inprocess_gated_rate=$ig inprocess_goal_rate=$igoal"
  echo "$lg $ig $lgoal $igoal" >> "$tmp/rows"
done
# Means over scenarios (each scenario weighs the same on both sides).
python3 - "$tmp/rows" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
n = len(rows)
live = sum(float(r[0]) for r in rows) / n
inproc = sum(float(r[1]) for r in rows) / n
lg = sum(r[2] == "true" for r in rows)
ig = sum(round(float(r[3])) for r in rows)
print(f"scenarios={n} live_gated_rate={live:.4f} inprocess_gated_rate={inproc:.4f} difference={abs(live - inproc):.4f} live_goals={lg} inprocess_goals={ig}")
PY
