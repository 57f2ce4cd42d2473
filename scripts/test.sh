#!/usr/bin/env bash
# The test command of the README: installs what is missing, checks the release build is
# warning-free, then runs every test (swift test: Swift Testing + the Python cross-checks it spawns).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== swift build -c release (must be warning-free)"
log=$(mktemp)
swift build -c release 2>&1 | tee "$log" | grep -E "warning:|error:" || true
if grep -q "error:" "$log"; then echo "release build failed"; exit 1; fi
if grep -v "^warning: prohibited flag" "$log" | grep -q "warning:"; then echo "release build has warnings"; exit 1; fi
# Optimised-build property the debug test bundle cannot check: the daemon's tick allocates nothing
# of its own and stays in budget (generous here: CI machines are shared). Exits 3 when broken.
if [ -f Models/robot/model.safetensors ]; then
  echo "== mgpt bench loop (release): allocation-free tick path"
  .build/release/mgpt bench loop --config Configs/robot.json --ticks 2000 --budget-us 20000
fi
# The seed's quality regression gate: the shipped models' held-out log-prob, perplexity and intent
# match against Benchmarks/quality-baseline.json (exits 1 on a regression).
echo "== quality gate (release): shipped models vs Benchmarks/quality-baseline.json"
MINIGPT_BIN=$(swift build -c release --show-bin-path) scripts/quality-gate.sh
# The meta-controller's safety property, in closed loop with the shipped model and robot.json:
# hazard episodes (a scanner / odometry failure or a perception stall that begins as the robot
# nears an obstacle) must make the ungated model collide and the gated one collide ≤ 1/5 as often.
echo "== safety gate (release): hazard collisions with the gate on vs off"
safety=$(.build/release/mgpt eval controller --episodes 5 --fault-episodes 0 --hazard-episodes 60 --seed 5 | tail -1)
python3 - "$safety" <<'PY'
import sys
kv = dict(p.split("=", 1) for p in sys.argv[1].split())
on, off = int(kv["hazard_collisions_on"]), int(kv["hazard_collisions_off"])
ok = off > 0 and 5 * on <= off
print(f"safety_gate={'passed' if ok else 'failed'} hazard_collisions_on={on} hazard_collisions_off={off} "
      f"hazard_unsafe_on={kv['hazard_unsafe_on']} hazard_unsafe_off={kv['hazard_unsafe_off']}")
sys.exit(0 if ok else 1)
PY
# The C kernels on arm64 (NEON, sdot) under qemu-user, and every x86 path this CPU has, against
# the portable sums (installs gcc-aarch64-linux-gnu and qemu-user when missing).
echo "== C kernels: x86 paths + arm64 under qemu"
scripts/test-arm-kernels.sh
echo "== swift test"
swift test "$@"
