#!/usr/bin/env bash
# The measured optimization ladder (docs/ladder.md): builds the derived model folders each phase
# needs with the existing commands, runs `mgpt bench ladder` on both manifests and draws the plots.
#
#   out/ladder/<set>/int8-attn            mgpt quantize --attention          (phase 5)
#   out/ladder/<set>/int8                 mgpt quantize --attention --ffn    (phases 6, 12–15)
#   out/ladder/<set>/lowrank32            mgpt lowrank --rank 32             (phase 7, FP32)
#   out/ladder/<set>/lowrank32-int8-attn  … then quantize --attention        (phase 7)
#   out/ladder/shakespeare/qat-int8       out/shakespeare-qat quantized, when that folder exists
#   out/ladder/shakespeare/ft-int8        out/shakespeare-ft quantized (the QAT control), when it exists
#
# Untied (phases 1–3) and early-exit rows are run-time switches of the manifest, not folders.
# Outputs: docs/plots/ladder-<set>.{md,csv} and docs/plots/ladder-<set>-*.svg. Every phase is measured in
# 3 runs (`--runs 3`): run 0 on the corpus start, runs 1 and 2 on slices whose starts RNG seeds 1 and 2
# draw, each re-timed; the tables print mean ± half-range. About 3–5 minutes on an idle 2-core machine
# (phases 1–2 recompute every prefix). Set LADDER_SCRATCH to build into another folder, LADDER_RUNS
# for another number of runs.
#   scripts/ladder.sh [shakespeare|robot ...]    (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=()
if [[ -n "${LADDER_SCRATCH:-}" ]]; then SCRATCH=(--scratch-path "$LADDER_SCRATCH"); fi
swift build -c release "${SCRATCH[@]}" --product mgpt >&2
BIN=$(swift build -c release "${SCRATCH[@]}" --show-bin-path)
RUNS=${LADDER_RUNS:-3}
SETS=("$@")
if [[ ${#SETS[@]} -eq 0 ]]; then SETS=(shakespeare robot); fi

# derive SRC DST: the variant folders of one source model.
derive() {
    local src=$1 dst=$2
    mkdir -p "$dst"
    "$BIN/mgpt" quantize --model "$src" --out "$dst/int8-attn" --attention --check-tokens 0 >&2
    "$BIN/mgpt" quantize --model "$src" --out "$dst/int8" --attention --ffn --check-tokens 0 >&2
    "$BIN/mgpt" lowrank --model "$src" --rank 32 --out "$dst/lowrank32" | tail -1 >&2
    "$BIN/mgpt" quantize --model "$dst/lowrank32" --out "$dst/lowrank32-int8-attn" --attention --check-tokens 0 >&2
}

mkdir -p docs/plots
for set in "${SETS[@]}"; do
    case "$set" in
        shakespeare)
            [[ -f out/shakespeare/config.json ]] || { echo "out/shakespeare missing: train it with mgpt train --recipe Configs/train/shakespeare.json" >&2; exit 66; }
            derive out/shakespeare out/ladder/shakespeare
            # Phase 15 QAT and its control (same 300 steps without fake-quant), when those runs exist.
            if [[ -f out/shakespeare-qat/config.json ]]; then
                "$BIN/mgpt" quantize --model out/shakespeare-qat --out out/ladder/shakespeare/qat-int8 --attention --ffn --check-tokens 0 >&2
            fi
            if [[ -f out/shakespeare-ft/config.json ]]; then
                "$BIN/mgpt" quantize --model out/shakespeare-ft --out out/ladder/shakespeare/ft-int8 --attention --ffn --check-tokens 0 >&2
            fi
            corpus=data/shakespeare/val.txt ;;
        robot)
            derive Models/robot out/ladder/robot
            corpus=data/sim.val.jsonl ;;
        *) echo "unknown ladder set '$set' (shakespeare or robot)" >&2; exit 64 ;;
    esac
    "$BIN/mgpt" bench ladder --manifest "Configs/ladder/$set.json" --corpus "$corpus" --runs "$RUNS" \
        --markdown "docs/plots/ladder-$set.md" --csv "docs/plots/ladder-$set.csv"
    python3 scripts/plot_ladder.py "docs/plots/ladder-$set.csv" --out docs/plots --prefix "ladder-$set"
done
