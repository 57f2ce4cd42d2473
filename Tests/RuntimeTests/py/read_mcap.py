#!/usr/bin/env python3
"""Reads an mgptd recording with the `mcap` package and prints a JSON summary:
message counts per topic, the schema names, and whether every /intent payload is JSON with the
required keys."""
import json
import sys

try:
    from mcap.reader import make_reader
except ImportError:
    sys.exit("read_mcap.py needs the mcap package: pip install mcap")

counts, schemas, bad = {}, set(), 0
required = ["v", "seq", "intent", "confidence", "gated", "reason", "entropy", "head_disagreement"]
with open(sys.argv[1], "rb") as f:
    for schema, channel, message in make_reader(f).iter_messages():
        counts[channel.topic] = counts.get(channel.topic, 0) + 1
        if schema is not None:
            schemas.add(schema.name)
        if channel.topic == "/intent":
            payload = json.loads(message.data)
            if any(k not in payload for k in required):
                bad += 1
print(json.dumps({"counts": counts, "schemas": sorted(schemas), "bad_intents": bad}))
