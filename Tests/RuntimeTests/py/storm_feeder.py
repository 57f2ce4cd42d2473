#!/usr/bin/env python3
"""A frame storm for mgptd: binds a PUB at OBS and, for SECONDS, publishes at RATE (10x the daemon's
loop rate in DaemonFaultTests) a seeded mix of valid frames, fuzzed bytes, oversized frames, NaN /
Infinity literals, wrong versions and broken envelopes. Watches the daemon's telemetry on OUT and
prints one JSON object: what was sent, by kind and by the counter it must land in, and the daemon's
counters just before and just after the storm.

    storm_feeder.py OBS OUT --rate 1000 --seconds 3 --max-bytes 4096 [--seed 1]

Counting (ZeroMQ PUB/SUB drops silently in two places, so both are closed off):
- slow joiner: until the daemon's subscription reaches this PUB, frames are dropped unseen. So the
  storm starts only after the daemon has *reported* an accepted marker frame on telemetry, then a
  quiet spell drains every marker; the "before" counters are read after it. Everything the storm
  sends afterwards reaches a subscription that provably exists.
- high-water marks: a PUB drops when its pipe to a subscriber is full. SNDHWM 0 (no limit) here
  means the pipe only grows, so nothing is dropped on this side; the daemon's RCVHWM pushes back
  into the socket buffers instead of dropping (a SUB never drops on receive, it stops reading).
So after - before must equal exactly what was sent, per counter.
"""
import argparse
import json
import random
import sys
import time

import zmq

COUNTERS = ["frames_accepted", "frames_malformed", "frames_oversized", "overruns", "deadline_misses"]


def valid_frame(rng, seq):
    """A v2 frame (docs/sim.md "Observation frame"), varied by the seeded RNG."""
    return {"v": 2, "seq": seq, "t": seq * 0.001, "ranges": [round(rng.uniform(0.2, 5.0), 3) for _ in range(16)],
            "range_max": 5.0,
            "detections": [{"colour": rng.choice(["red", "blue", "green"]), "kind": rng.choice(["box", "ball", "door"]),
                            "bearing": round(rng.uniform(-1, 1), 3), "distance": round(rng.uniform(0.3, 4), 3)}
                           for _ in range(rng.randrange(3))],
            "odom": {"x": round(rng.uniform(-3, 3), 3), "y": round(rng.uniform(-3, 3), 3), "theta": 0.1, "v": 0.2, "w": 0.0},
            "bump": False, "battery": 0.9, "route": {"bearing": round(rng.uniform(-3, 3), 3), "distance": 2.5}}


def enc(obj):
    return json.dumps(obj, separators=(",", ":")).encode()  # allow_nan=True: writes NaN / Infinity literals


def nested(depth):
    return "[" * depth + "]" * depth


def make(kind, rng, seq, max_bytes):
    """(message parts, the counter it must land in). Categories: accepted / malformed / oversized,
    'either' (a random byte flip may keep a frame valid), 'filtered' (never reaches the daemon)."""
    f = valid_frame(rng, seq)
    if kind == "valid":
        return [b"obs", enc(f)], "accepted"
    if kind == "padded_to_max":  # exactly io.max_message_bytes: the largest frame that fits
        b = enc(f)
        return [b"obs", b + b" " * (max_bytes - len(b))], "accepted"
    if kind == "unknown_key_nested_20":  # unknown keys are skipped, up to 32 levels deep
        b = enc(f)
        return [b"obs", b[:-1] + b',"extra":' + nested(20).encode() + b"}"], "accepted"
    if kind == "unknown_key_nested_40":
        b = enc(f)
        return [b"obs", b[:-1] + b',"extra":' + nested(40).encode() + b"}"], "malformed"
    if kind == "nan":
        f["ranges"][rng.randrange(16)] = float("nan")
        return [b"obs", enc(f)], "malformed"
    if kind == "infinity":
        f["odom"][rng.choice(["x", "v", "w"])] = rng.choice([float("inf"), float("-inf")])
        return [b"obs", enc(f)], "malformed"
    if kind == "huge_number":  # finite syntax, infinite value
        return [b"obs", enc(f).replace(b'"battery":0.9', b'"battery":1e999')], "malformed"
    if kind == "wrong_version":
        f["v"] = rng.choice([1, 3, 0, -2, 2.5, "2", None])
        return [b"obs", enc(f)], "malformed"
    if kind == "missing_route":
        del f["route"]
        return [b"obs", enc(f)], "malformed"
    if kind == "random_bytes":
        return [b"obs", bytes(rng.randrange(256) for _ in range(rng.randrange(513)))], "malformed"
    if kind == "truncated":
        b = enc(f)
        return [b"obs", b[:rng.randrange(len(b) - 1)]], "malformed"
    if kind == "trailing_garbage":
        return [b"obs", enc(f) + b"x"], "malformed"
    if kind == "one_part":
        return [b"obs"], "malformed"
    if kind == "bit_flip":
        b = bytearray(enc(f))
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return [b"obs", bytes(b)], "either"
    if kind == "oversized_by_one":
        b = enc(f)
        return [b"obs", b + b" " * (max_bytes + 1 - len(b))], "oversized"
    if kind == "oversized_64k":
        return [b"obs", b"{" + b" " * 65534 + b"}"], "oversized"
    if kind == "oversized_1m":
        return [b"obs", b"[" * (1 << 20)], "oversized"
    if kind == "three_part":
        return [b"obs", enc(f), b"extra"], "oversized"
    if kind == "long_topic":  # longer than the daemon's 64-byte topic buffer, still matches "obs"
        return [b"obs" + b"x" * 100, enc(f)], "oversized"
    if kind == "other_topic":  # not subscribed: the PUB filters it out, the daemon never sees it
        return [b"telemetry", enc(f)], "filtered"
    raise ValueError(kind)


KINDS = {  # kind: weight (percent-ish)
    "valid": 30, "padded_to_max": 3, "unknown_key_nested_20": 2, "unknown_key_nested_40": 2, "nan": 5,
    "infinity": 5, "huge_number": 3, "wrong_version": 5, "missing_route": 3, "random_bytes": 8,
    "truncated": 5, "trailing_garbage": 2, "one_part": 2, "bit_flip": 8, "oversized_by_one": 5,
    "oversized_64k": 3, "oversized_1m": 0.5, "three_part": 2, "long_topic": 2, "other_topic": 2,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("obs")
    ap.add_argument("out")
    ap.add_argument("--rate", type=float, required=True, help="frames per second")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--max-bytes", type=int, required=True, help="the daemon's io.max_message_bytes")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)  # no limit: see the module docstring
    pub.setsockopt(zmq.LINGER, 2000)
    pub.bind(args.obs)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(args.out)
    sub.setsockopt(zmq.SUBSCRIBE, b"telemetry")

    stats = {"max_drain_us": 0, "max_tick_us": 0}

    def drain():
        """Reads every queued telemetry message; returns the newest (or None)."""
        newest = None
        while True:
            try:
                parts = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return newest
            newest = json.loads(parts[1])
            stats["max_drain_us"] = max(stats["max_drain_us"], newest["drain_us"])
            stats["max_tick_us"] = max(stats["max_tick_us"], newest["tick_us"])

    def fresh_telemetry():
        """The first telemetry published after this call: counters as of now."""
        drain()
        if not sub.poll(2000):
            sys.exit("storm_feeder: no telemetry from the daemon for 2 s")
        return json.loads(sub.recv_multipart()[1])

    # 1. Handshake: markers until the daemon reports one accepted (slow joiner is over).
    marker = enc(valid_frame(rng, 0))
    deadline = time.monotonic() + 10
    while True:
        pub.send_multipart([b"obs", marker])
        t = drain()
        if t is not None and t["frames_accepted"] >= 1:
            break
        if time.monotonic() > deadline:
            sys.exit("storm_feeder: the daemon did not report a frame within 10 s")
        time.sleep(0.02)
    # 2. Quiet spell: 30 ticks at 100 Hz drain every marker still in flight, then read the counters.
    time.sleep(0.3)
    before = fresh_telemetry()

    # 3. The storm, prepared first so the send loop is only send + sleep.
    names, weights = list(KINDS), list(KINDS.values())
    plan, by_kind = [], {}
    for i in range(int(args.rate * args.seconds)):
        kind = rng.choices(names, weights)[0]
        plan.append(make(kind, rng, i + 1, args.max_bytes))
        by_kind[kind] = by_kind.get(kind, 0) + 1
    by_category = {"accepted": 0, "malformed": 0, "oversized": 0, "either": 0, "filtered": 0}
    start = time.monotonic()
    period = 1.0 / args.rate
    for i, (parts, category) in enumerate(plan):
        lag = start + i * period - time.monotonic()
        if lag > 0:
            time.sleep(lag)
        pub.send_multipart(parts)
        by_category[category] += 1
        if i % 50 == 0:
            drain()
    elapsed = time.monotonic() - start
    # 4. Let the daemon drain, then read its counters again.
    time.sleep(0.5)
    after = fresh_telemetry()
    pub.close()
    counted = len(plan) - by_category["filtered"]
    print(json.dumps({
        "sent": len(plan), "sent_to_daemon": counted, "by_category": by_category, "by_kind": by_kind,
        "seconds": round(elapsed, 3), "achieved_rate": round(len(plan) / elapsed, 1),
        "before": {k: before[k] for k in COUNTERS + ["seq"]}, "after": {k: after[k] for k in COUNTERS + ["seq"]},
        "max_drain_us": stats["max_drain_us"], "max_tick_us": stats["max_tick_us"],
    }))


if __name__ == "__main__":
    main()
