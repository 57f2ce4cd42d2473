#!/usr/bin/env bash
# The ladder's training-time phases, measured (docs/ladder.md, "Trained variants"): rows that the
# main ladder can only compute because they need a model trained differently — multi-head
# attention (4 KV heads) vs GQA (2), FFN 4·d (512) vs 2.5·d (320), label smoothing 0.05 vs 0 — each
# trained with one shared short recipe (Configs/train/robot-variant.json: 500 steps, the robot
# corpus) and three seeds, then scored the same way:
#   log-prob per intent  mgpt eval --engine --seq-len 128 on data/sim.val.jsonl
#   intent match         mgpt eval-intents on data/sim.val.jsonl (decoded as the daemon decodes)
#   decode µs / token    mgpt bench decode --no-numpy (127 cached positions)
#   parameters, bytes    mgpt inspect
# Writes docs/plots/ladder-robot-variants.{md,csv} with mean ± half-range over the seeds. Needs the
# corpus (scripts/train-robot.sh makes it). About 12 minutes on an idle 2-core machine.
#   scripts/ladder-variants.sh [SEEDS...]      (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=("$@"); [ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3)
[ -f data/sim.train.jsonl ] || { echo "data/sim.train.jsonl missing: run scripts/train-robot.sh (or mgpt-sim corpus) first" >&2; exit 66; }
swift build -c release --product mgpt >&2
BIN=$(swift build -c release --show-bin-path)
OUT=out/ladder/robot-variants
mkdir -p "$OUT"
VARIANTS=(gqa mha ffn4d nols)
for v in "${VARIANTS[@]}"; do
  for s in "${SEEDS[@]}"; do
    dir="$OUT/$v-s$s"
    python3 - "$v" "$s" "$dir" <<'PY'
import json, sys
v, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = json.load(open("Configs/train/robot-variant.json"))
if v == "mha": r["model"]["num_key_value_heads"] = 4
if v == "ffn4d": r["model"]["intermediate_size"] = 512
if v == "nols": r["training"]["label_smoothing"] = 0.0
r["training"]["seed"] = seed
r["out"] = out
r["comment"] = f"variant {v}, seed {seed} of Configs/train/robot-variant.json (written by scripts/ladder-variants.sh)"
json.dump(r, open(out + ".json", "w"), indent=1)
PY
    [ -f "$dir/model.safetensors" ] || "$BIN/mgpt" train --recipe "$dir.json" --quiet > /dev/null
    {
      echo "variant=$v seed=$s"
      "$BIN/mgpt" eval --model "$dir" --engine --corpus data/sim.val.jsonl --seq-len 128 --json | tr -d '\n '; echo
      "$BIN/mgpt" eval-intents --model "$dir" --corpus data/sim.val.jsonl | tail -1
      "$BIN/mgpt" bench decode --model "$dir" --no-numpy | tail -1
      "$BIN/mgpt" inspect --model "$dir" --json | tr -d '\n '; echo
    } > "$dir.scores"
  done
done
python3 - "$OUT" "${SEEDS[@]}" <<'PY'
import json, sys
out, seeds = sys.argv[1], sys.argv[2:]
names = {"gqa": "GQA 4 q / 2 kv heads, FFN 2.5·d, label smoothing 0.05 (the shipped shape)",
         "mha": "MHA: 4 KV heads (phase 11 undone)", "ffn4d": "FFN 4·d = 512 (phase 13 undone)",
         "nols": "no label smoothing (phase 12 undone)"}
rows = []
for v in ["gqa", "mha", "ffn4d", "nols"]:
    m = {"logprob": [], "intent": [], "us": [], "params": None, "bytes": None}
    for s in seeds:
        lines = open(f"{out}/{v}-s{s}.scores").read().splitlines()
        e = json.loads(lines[1])
        kv = dict(p.split("=", 1) for p in lines[2].split())
        b = dict(p.split("=", 1) for p in lines[3].split() if "=" in p)
        ins = json.loads(lines[4])
        m["logprob"].append(e["avg_logprob"]); m["intent"].append(float(kv["intent_accuracy"]))
        m["us"].append(float(b["median_us"]))
        m["params"] = ins.get("parameters"); m["bytes"] = b.get("weight_bytes")
    rows.append((v, m))
def ms(xs, d):
    mean = sum(xs) / len(xs); half = (max(xs) - min(xs)) / 2
    return f"{mean:.{d}f} ± {half:.{d}f}"
md = ["| variant | parameters | weight bytes / token | log-prob per intent (val) | intent match (val) | decode median µs |",
      "| --- | --- | --- | --- | --- | --- |"]
csv = ["variant,seed,avg_logprob,intent_accuracy,median_us"]
for v, m in rows:
    md.append(f"| {names[v]} | {m['params']} | {m['bytes']} | {ms(m['logprob'], 4)} | {ms(m['intent'], 4)} | {ms(m['us'], 1)} |")
    for s, a, b, c in zip(seeds, m["logprob"], m["intent"], m["us"]):
        csv.append(f"{v},{s},{a},{b},{c}")
open("docs/plots/ladder-robot-variants.md", "w").write(
    f"Mean ± half-range over seeds {', '.join(seeds)} (Configs/train/robot-variant.json, 500 steps each; scripts/ladder-variants.sh).\n\n" + "\n".join(md) + "\n")
open("docs/plots/ladder-robot-variants.csv", "w").write("\n".join(csv) + "\n")
print("\n".join(md))
PY
