#!/usr/bin/env bash
# Reproduces the shipped phase-15 model Models/robot-phase15 from scratch and measures it
# (deterministic: fixed seeds; every figure of Models/robot-phase15/README.md comes from here).
#   1. corpus: the simulator's expert episodes, as for Models/robot (skipped when present; frames v2,
#      with the planner's route hint — delete data/ after a change of the encoder);
#   2. stage 1 (Configs/train/robot-phase15-base.json): FP32 from scratch on the expert corpus,
#      exit heads after blocks 2 and 3 trained by the auxiliary loss;
#   3. DAgger iteration 1: the stage-1 model drives the simulator (β 0.5), the expert labels its states;
#   4. stage 2 (Configs/train/robot-phase15-qat.json): QAT fine-tune (fake INT8 attention + FFN
#      weights, straight-through) with the exit loss on expert + DAgger 1; the config gains the
#      INT8 KV cache with a 128-position window;
#   5. DAgger iteration 2 (β 0.3), then 3 (β 0.3) and 4 (β 0) *through the daemon's
#      meta-controller*, all driven by stage 2's INT8 model (--config Configs/robot.json: a gated tick executes the STOP fallback), so
#      the data hold the states the deployed controller visits, standstills included; 5 (β 0) the
#      same with 1-3 random sensor faults in every episode: the fallback's standstills during a
#      fault and the recoveries after it;
#   6. stage 3 (Configs/train/robot-phase15.json): QAT continues on expert + DAgger 1-5;
#   7. INT8 weights from the QAT master (mgpt quantize --attention --ffn) → Models/robot-phase15;
#   8. scores: intent match vs the expert, early exit, closed loop in process, decode vs Models/robot;
#   9. studies: stage 2 without QAT, then PTQ (QAT vs PTQ at 8, 4 and 2 bits); a LoRA adaptation to
#      the held-out layout families (Configs/train/robot-phase15-adapt.json), merged and quantized.
# About 45 minutes on an idle 2-core machine.      scripts/train-phase15.sh [--skip-studies]
set -euo pipefail
cd "$(dirname "$0")/.."
STUDIES=1
[ "${1:-}" = "--skip-studies" ] && STUDIES=0
scripts/setup.sh
swift build -c release --product mgpt >&2
swift build -c release --product mgpt-sim >&2
BIN=$(swift build -c release --show-bin-path)
mkdir -p data out
[ -f data/sim.heldout.jsonl ] || "$BIN/mgpt-sim" corpus --episodes 3000 --seed 1 --fault-fraction 0.2 --out data/sim
"$BIN/mgpt" train --recipe Configs/train/robot-phase15-base.json
"$BIN/mgpt-sim" dagger --model out/robot-p15-base --episodes 1500 --seed 11 --beta 0.5 --out data/dagger1.train.jsonl
"$BIN/mgpt" train --recipe Configs/train/robot-phase15-qat.json
rm -rf out/robot-p15-qat-int8
"$BIN/mgpt" quantize --model out/robot-p15-qat --out out/robot-p15-qat-int8 --attention --ffn
"$BIN/mgpt-sim" dagger --model out/robot-p15-qat-int8 --episodes 1500 --seed 12 --beta 0.3 --out data/dagger2.train.jsonl
"$BIN/mgpt-sim" dagger --model out/robot-p15-qat-int8 --config Configs/robot.json --episodes 1500 --seed 13 --beta 0.3 --out data/dagger3.train.jsonl
"$BIN/mgpt-sim" dagger --model out/robot-p15-qat-int8 --config Configs/robot.json --episodes 600 --seed 14 --beta 0 --out data/dagger4.train.jsonl
"$BIN/mgpt-sim" dagger --model out/robot-p15-qat-int8 --config Configs/robot.json --episodes 600 --seed 15 --beta 0 --fault-fraction 1 --out data/dagger5.train.jsonl
"$BIN/mgpt" train --recipe Configs/train/robot-phase15.json
rm -rf Models/robot-phase15/{config.json,model.safetensors,tokenizer.json,training.json}
"$BIN/mgpt" quantize --model out/robot-p15 --out Models/robot-phase15 --attention --ffn

echo "== Models/robot-phase15: scores"
ls -l Models/robot-phase15/model.safetensors
for split in val heldout; do
  "$BIN/mgpt" eval-intents --model Models/robot-phase15 --corpus data/sim.$split.jsonl | tail -1
done
"$BIN/mgpt" eval --model Models/robot-phase15 --engine --corpus data/sim.val.jsonl --seq-len 128 --json
for rule in after:3 after:2 confident:1.5 confident:2.0; do
  echo "exit=$rule $("$BIN/mgpt" eval-intents --model Models/robot-phase15 --corpus data/sim.val.jsonl --exit $rule | tail -1)"
done
# Closed loop on 200 unseen-layout episodes, the expert on the same scenarios (mgpt-sim eval):
# ungated, through the shipped controller, and with 30 % of the episodes faulted.
for m in Models/robot out/robot-p15-base out/robot-p15-qat-int8 Models/robot-phase15; do
  echo "model=$m ungated $("$BIN/mgpt-sim" eval --model $m --episodes 200 --seed 5 --families heldout | tail -1)"
  echo "model=$m controller $("$BIN/mgpt-sim" eval --model $m --config Configs/robot.json --episodes 200 --seed 5 --families heldout | tail -1)"
done
echo "model=Models/robot-phase15 faults $("$BIN/mgpt-sim" eval --model Models/robot-phase15 --config Configs/robot.json --episodes 200 --seed 5 --families heldout --fault-fraction 0.3 | tail -1)"
echo "model=Models/robot-phase15 training-families $("$BIN/mgpt-sim" eval --model Models/robot-phase15 --config Configs/robot.json --episodes 200 --seed 21 --families training | tail -1)"
# Intent match on the model's own states (DAgger states through the controller, unseen layouts)
# beside the expert's states of the same families.
"$BIN/mgpt-sim" dagger --model Models/robot-phase15 --config Configs/robot.json --episodes 100 --seed 5 --families heldout --out data/own.heldout.jsonl | tail -1
echo "own-states $("$BIN/mgpt" eval-intents --model Models/robot-phase15 --corpus data/own.heldout.jsonl | tail -1)"
echo "expert-states $("$BIN/mgpt" eval-intents --model Models/robot-phase15 --corpus data/sim.heldout.jsonl | tail -1)"
"$BIN/mgpt" bench decode --model Models/robot-phase15 --baseline Models/robot | tail -1
"$BIN/mgpt" bench loop --config Configs/robot.json --ticks 5000 | tail -1

[ "$STUDIES" = 1 ] || exit 0
echo "== QAT vs PTQ: the same stage 2 without fake quantization, then post-training INT8"
python3 - <<'PY'
import json
r = json.load(open("Configs/train/robot-phase15-qat.json"))
del r["qat"]; r["out"] = "out/robot-p15-noqat"
r["comment"] = "Configs/train/robot-phase15-qat.json without QAT (written by scripts/train-phase15.sh)"
json.dump(r, open("out/robot-p15-noqat.json", "w"), indent=1)
PY
"$BIN/mgpt" train --recipe out/robot-p15-noqat.json
rm -rf out/robot-p15-noqat-int8
"$BIN/mgpt" quantize --model out/robot-p15-noqat --out out/robot-p15-noqat-int8 --attention --ffn
for m in out/robot-p15-noqat out/robot-p15-noqat-int8 out/robot-p15-qat out/robot-p15-qat-int8; do
  for split in val heldout; do
    echo "model=$m split=$split $("$BIN/mgpt" eval --model $m --engine --corpus data/sim.$split.jsonl --seq-len 128 --json | tr -d '\n ')"
  done
done
for split in val heldout; do
  echo "model=out/robot-p15-noqat-int8 split=$split $("$BIN/mgpt" eval-intents --model out/robot-p15-noqat-int8 --corpus data/sim.$split.jsonl | tail -1)"
done

echo "== QAT vs PTQ at simulated 4- and 2-bit weight grids (no kernels below 8 bits: FP32 storage)"
for bits in 4 2; do
  python3 - "$bits" <<'PY'
import json, sys
b = int(sys.argv[1])
r = json.load(open("Configs/train/robot-phase15-qat.json"))
r["qat"]["bits"] = b; r["out"] = f"out/robot-p15-qat{b}"
r["comment"] = f"Configs/train/robot-phase15-qat.json with {b}-bit QAT (written by scripts/train-phase15.sh)"
json.dump(r, open(f"out/robot-p15-qat{b}.json", "w"), indent=1)
PY
  "$BIN/mgpt" train --recipe out/robot-p15-qat$bits.json
  rm -rf out/robot-p15-noqat-fake$bits out/robot-p15-qat$bits-fake$bits
  "$BIN/mgpt" quantize --model out/robot-p15-noqat --out out/robot-p15-noqat-fake$bits --fake-bits $bits
  "$BIN/mgpt" quantize --model out/robot-p15-qat$bits --out out/robot-p15-qat$bits-fake$bits --fake-bits $bits
  for m in out/robot-p15-noqat-fake$bits out/robot-p15-qat$bits-fake$bits; do
    for split in val heldout; do
      echo "model=$m split=$split $("$BIN/mgpt" eval --model $m --engine --corpus data/sim.$split.jsonl --seq-len 128 --json | tr -d '\n ')"
      echo "model=$m split=$split $("$BIN/mgpt" eval-intents --model $m --corpus data/sim.$split.jsonl | tail -1)"
    done
  done
done

echo "== LoRA: adapt the phase-15 model to the held-out layout families"
[ -f data/adapt.heldout.jsonl ] || "$BIN/mgpt-sim" corpus --episodes 0 --heldout 600 --seed 2 --fault-fraction 0.2 --out data/adapt
"$BIN/mgpt" train --recipe Configs/train/robot-phase15-adapt.json
rm -rf out/robot-p15-adapt-merged out/robot-p15-adapt-int8
"$BIN/mgpt" lora merge --model out/robot-p15 --adapter out/robot-p15-adapt --out out/robot-p15-adapt-merged
"$BIN/mgpt" quantize --model out/robot-p15-adapt-merged --out out/robot-p15-adapt-int8 --attention --ffn
for m in Models/robot-phase15 out/robot-p15-adapt-int8; do
  for split in val heldout; do
    echo "model=$m split=$split $("$BIN/mgpt" eval-intents --model $m --corpus data/sim.$split.jsonl | tail -1)"
  done
done
"$BIN/mgpt-sim" eval --model out/robot-p15-adapt-int8 --episodes 200 --seed 5 --families heldout | tail -1
"$BIN/mgpt-sim" eval --model out/robot-p15-adapt-int8 --config Configs/robot.json --episodes 200 --seed 5 --families heldout | tail -1
