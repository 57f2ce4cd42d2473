#!/usr/bin/env bash
# Quality regression gate (the seed project's CI rule: fail if avg_logprob drops by more than 0.1
# nats or perplexity rises by more than 5 %), for the shipped models, against the committed
# baseline Benchmarks/quality-baseline.json:
#   1. a fixed held-out corpus: 100 episodes of the held-out layout families, 20 % with sensor
#      faults (mgpt-sim corpus --episodes 0 --heldout 100 --seed 1 --fault-fraction 0.2: the first
#      100 episodes of the training corpus's held-out split, never trained on);
#   2. each model scored as deployed (mgpt eval --engine: INT8 kernels, KV window) and decoded as
#      the daemon decodes (mgpt eval-intents: intent match with the expert);
#   3. fails (exit 1) when avg_logprob drops > 0.1, perplexity rises > 5 % or intent match drops
#      > 0.02 against the baseline. Runs in ~30 s; CI calls it from scripts/test.sh.
#   scripts/quality-gate.sh [--write-baseline]    (after retraining a shipped model, on purpose)
# MINIGPT_BIN=DIR uses the mgpt and mgpt-sim binaries in DIR instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
BASELINE=Benchmarks/quality-baseline.json
if [ -n "${MINIGPT_BIN:-}" ]; then BIN=$MINIGPT_BIN    # binaries built elsewhere (scripts/test.sh)
else
  swift build -c release --product mgpt >&2
  swift build -c release --product mgpt-sim >&2
  BIN=$(swift build -c release --show-bin-path)
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$BIN/mgpt-sim" corpus --episodes 0 --heldout 100 --seed 1 --fault-fraction 0.2 --out "$tmp/gate" > /dev/null
for m in Models/robot Models/robot-phase15; do
  "$BIN/mgpt" eval --model "$m" --engine --corpus "$tmp/gate.heldout.jsonl" --seq-len 128 --json > "$tmp/$(basename $m).eval.json"
  "$BIN/mgpt" eval-intents --model "$m" --corpus "$tmp/gate.heldout.jsonl" | tail -1 > "$tmp/$(basename $m).intents.txt"
done
python3 - "$tmp" "$BASELINE" "${1:-}" <<'PY'
import json, os, sys
tmp, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
now = {}
for m in ["robot", "robot-phase15"]:
    e = json.load(open(f"{tmp}/{m}.eval.json"))
    kv = dict(p.split("=", 1) for p in open(f"{tmp}/{m}.intents.txt").read().split())
    now[f"Models/{m}"] = {"avg_logprob": e["avg_logprob"], "perplexity": e["perplexity"],
                          "intent_accuracy": float(kv["intent_accuracy"]), "tokens": e["tokens"]}
if mode == "--write-baseline":
    json.dump({"about": "Held-out figures of the shipped models (scripts/quality-gate.sh --write-baseline): "
               "mgpt eval --engine --seq-len 128 and mgpt eval-intents on mgpt-sim corpus --episodes 0 "
               "--heldout 100 --seed 1 --fault-fraction 0.2.", "models": now}, open(path, "w"), indent=1)
    open(path, "a").write("\n")
    print(f"wrote {path}")
    sys.exit(0)
base = json.load(open(path))["models"]
failed = 0
for m, b in base.items():
    n = now[m]
    checks = [("avg_logprob", n["avg_logprob"] >= b["avg_logprob"] - 0.1, f'{b["avg_logprob"]:.4f} → {n["avg_logprob"]:.4f} (may drop ≤ 0.1)'),
              ("perplexity", n["perplexity"] <= b["perplexity"] * 1.05, f'{b["perplexity"]:.4f} → {n["perplexity"]:.4f} (may rise ≤ 5 %)'),
              ("intent_accuracy", n["intent_accuracy"] >= b["intent_accuracy"] - 0.02, f'{b["intent_accuracy"]:.4f} → {n["intent_accuracy"]:.4f} (may drop ≤ 0.02)')]
    for name, ok, text in checks:
        print(f"quality-gate: {m} {name} {text} {'ok' if ok else 'REGRESSION'}")
        failed += not ok
print(f"quality_gate={'passed' if failed == 0 else 'failed'} regressions={failed}")
sys.exit(1 if failed else 0)
PY
