#!/usr/bin/env bash
# Reproduces the shipped robot model Models/robot from scratch (deterministic: fixed seeds):
#   1. the simulator writes the corpus (expert-labelled episodes, 20 % with sensor faults),
#   2. mgpt trains the default phase-15 shape on it (Configs/train/robot.json, loss on intents),
#   3. the model is scored: intent match vs the expert on held-out scenario families.
# Takes about 5 minutes on an idle 2-core machine. Closed-loop goal rate: scripts/eval-robot.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product mgpt >&2
swift build -c release --product mgpt-sim >&2
BIN=$(swift build -c release --show-bin-path)
mkdir -p data
"$BIN/mgpt-sim" corpus --episodes 3000 --seed 1 --fault-fraction 0.2 --out data/sim
"$BIN/mgpt" train --recipe Configs/train/robot.json "$@"
"$BIN/mgpt" eval-intents --model Models/robot --corpus data/sim.val.jsonl | tail -1
"$BIN/mgpt" eval-intents --model Models/robot --corpus data/sim.heldout.jsonl | tail -1
