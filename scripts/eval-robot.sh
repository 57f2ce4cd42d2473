#!/usr/bin/env bash
# Closed-loop evaluation of a robot model: mgptd drives the simulated robot (mgpt-sim run) through
# N held-out scenarios, one after another, at 3x real time (at most 30 s each); prints each episode's metrics and the
# goal rate.   scripts/eval-robot.sh [--episodes 10] [--config Configs/robot.json] [--families pillars,zigzag]
# (pillars and zigzag are the simulator's held-out layout families: never in the training corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
EPISODES=10; CONFIG=Configs/robot.json; FAMILIES=pillars,zigzag; SEED=100
while [ $# -gt 0 ]; do
  case "$1" in
    --episodes) EPISODES=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --families) FAMILIES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    *) echo "usage: $0 [--episodes N] [--config FILE] [--families a,b] [--seed S]" >&2; exit 64 ;;
  esac
done
swift build -c release --product mgptd >&2
swift build -c release --product mgpt-sim >&2
BIN=$(swift build -c release --show-bin-path)
goals=0; collisions=0
IFS=, read -r -a FAM <<< "$FAMILIES"
for i in $(seq 1 "$EPISODES"); do
  FAMILY=${FAM[$(( (i - 1) % ${#FAM[@]} ))]}
  "$BIN/mgptd" --config "$CONFIG" --quiet &
  d=$!
  sleep 0.5
  line=$("$BIN/mgpt-sim" run --family "$FAMILY" --seed $((SEED + i)) --rate 150 --publish-every 5 \
           --endpoint tcp://127.0.0.1:5555 --intent-endpoint tcp://127.0.0.1:5556 --seconds 30 | tail -1)
  kill -TERM $d; wait $d || true
  echo "episode $i (family $FAMILY, seed $((SEED + i))): $line"
  case "$line" in *goal_reached=true*|*goal_reached=1*) goals=$((goals + 1)) ;; esac
  c=$(echo "$line" | sed -n 's/.*collisions=\([0-9]*\).*/\1/p'); collisions=$((collisions + ${c:-0}))
done
echo "episodes=$EPISODES goal_rate=$(python3 -c "print(f'{$goals/$EPISODES:.2f}')") collisions=$collisions"
