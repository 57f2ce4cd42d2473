"""Subscribe to the simulator's `obs` topic and summarise what arrived (used by FeedTests).

usage: sub_obs.py ENDPOINT SECONDS SCHEMA
Validates every frame against the JSON Schema file SCHEMA (docs/schemas/obs.schema.json) and
prints one line: received=N first_seq=A last_seq=B monotonic=1 v=1 beams=16 invalid=0 ...
Exits 3 with a message when pyzmq or jsonschema is missing.
"""
import json
import sys
import time

try:
    import zmq
except ImportError:
    print("pyzmq is not importable: pip install pyzmq", file=sys.stderr)
    sys.exit(3)
try:
    import jsonschema
except ImportError:
    print("jsonschema is not importable: pip install jsonschema", file=sys.stderr)
    sys.exit(3)

endpoint, seconds = sys.argv[1], float(sys.argv[2])
with open(sys.argv[3]) as fh:
    validator = jsonschema.Draft202012Validator(json.load(fh))
invalid = 0
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.connect(endpoint)
s.subscribe(b"obs")
print("ready", flush=True)
frames = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    if s.poll(100):
        parts = s.recv_multipart()
        assert len(parts) == 2, f"expected 2 frames, got {len(parts)}"
        assert parts[0] == b"obs", parts[0]
        frame = json.loads(parts[1])
        errors = list(validator.iter_errors(frame))
        if errors:
            invalid += 1
            if invalid == 1:
                print("invalid frame:", errors[0].message, file=sys.stderr)
        frames.append(frame)
if not frames:
    print("received=0")
    sys.exit(0)
seqs = [f["seq"] for f in frames]
keys = sorted(frames[0].keys())
print(
    f"received={len(frames)} first_seq={seqs[0]} last_seq={seqs[-1]}"
    f" monotonic={int(all(b > a for a, b in zip(seqs, seqs[1:])))}"
    f" seq_step={min((b - a for a, b in zip(seqs, seqs[1:])), default=0)}"
    f" v={frames[0]['v']} beams={len(frames[0]['ranges'])} invalid={invalid} keys={','.join(keys)}",
    flush=True,
)
