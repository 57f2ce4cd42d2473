#!/usr/bin/env python3
"""Binds a PUB at ENDPOINT and sends frames a daemon must drop and count, never die on:
malformed JSON, a wrong version, a one-part message, and an oversized frame. Then one valid frame."""
import json
import sys
import time

import zmq

endpoint = sys.argv[1]
oversize = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
ctx = zmq.Context.instance()
pub = ctx.socket(zmq.PUB)
pub.setsockopt(zmq.LINGER, 1000)
pub.bind(endpoint)
time.sleep(0.6)  # let the daemon's SUB reconnect (PUB/SUB slow joiner)
valid = {"v": 2, "seq": 999, "t": 1.0, "ranges": [5.0] * 16, "range_max": 6.0, "detections": [],
         "odom": {"x": 0, "y": 0, "theta": 0, "v": 0, "w": 0}, "bump": False, "battery": 0.9,
         "route": {"bearing": 0.1, "distance": 2.5}}
pub.send_multipart([b"obs", b"{this is not json"])
pub.send_multipart([b"obs", json.dumps({**valid, "v": 7}).encode()])
pub.send_multipart([b"obs"])
pub.send_multipart([b"obs", b"{" + b" " * oversize + b"}"])
pub.send_multipart([b"obs", json.dumps(valid).encode()])
time.sleep(0.3)
pub.close()
print("sent 4 bad frames and 1 valid frame")
