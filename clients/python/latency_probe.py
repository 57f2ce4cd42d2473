#!/usr/bin/env python3
"""End-to-end latency of mgptd: frame publish → intent receive, measured from one process.

    python3 clients/python/latency_probe.py --obs ipc:///tmp/mgpt-obs --out ipc:///tmp/mgpt-out \
        [--frames 600] [--rate 10] [--verbose US]

Acts as the sensor feeder (binds a PUB on --obs, like mgpt-sim) and as a subscriber of the daemon's
intents (connects a SUB to --out). Each frame carries a new `seq`; when an intent with
`fresh: true` and `obs_seq == seq` arrives, latency = its receive time − the frame's send time
(both CLOCK_MONOTONIC on this host). Frames are sent with a random phase against the daemon's
own tick clock. With `loop.decide_on_arrival` (the default) the daemon decides a frame as soon as
it arrives (`on_arrival: true` in the intent), so the figure is transport + decision; with it off,
it also includes the wait for the next tick (up to one period, sampled uniformly). The intent's
`obs_age_us` gives the frame-arrival → decision part alone. Frames are synthetic. Last line:
`e2e_p50_us=… e2e_p99_us=… e2e_max_us=… matched=… sent=… on_arrival=…` (on_arrival: the share of
matched intents decided on arrival).
"""
import argparse
import json
import math
import random
import sys
import time

try:
    import zmq
except ImportError:
    sys.exit("latency_probe.py needs pyzmq: pip install pyzmq")


def synthetic(seq, rng):
    return {"v": 2, "seq": seq, "t": seq * 0.1,
            "ranges": [round(0.3 + rng.random() * 4.5, 3) for _ in range(16)], "range_max": 5.0,
            "detections": [{"colour": rng.choice(["red", "blue", "green"]), "kind": "box",
                            "bearing": round(rng.uniform(-0.5, 0.5), 3), "distance": round(rng.uniform(0.5, 4), 3)}]
            if rng.random() < 0.6 else [],
            "odom": {"x": 0.0, "y": 0.0, "theta": 0.0, "v": round(rng.random() * 0.4, 3), "w": 0.0},
            "bump": False, "battery": 0.9,
            "route": {"bearing": round(rng.uniform(-1.0, 1.0), 3), "distance": round(rng.uniform(0, 4), 3)}}


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--obs", required=True, help="endpoint to bind the obs PUB on (mgptd's io.sensor_endpoint)")
    ap.add_argument("--out", required=True, help="mgptd's io.publish_endpoint")
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--rate", type=float, default=10.0, help="frames per second")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--verbose", type=float, default=0, metavar="US",
                    help="print each matched intent slower than US µs to stderr")
    args = ap.parse_args()

    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.bind(args.obs)
    sub = ctx.socket(zmq.SUB)
    sub.connect(args.out)
    sub.setsockopt(zmq.SUBSCRIBE, b"intent")
    rng = random.Random(args.seed)
    time.sleep(1.0)  # slow joiner: let mgptd's SUB connect to us and ours to it

    sent, lat, arrival = {}, [], []
    period = 1.0 / args.rate
    next_send = time.monotonic()
    seq = 0
    deadline = None
    while True:
        now = time.monotonic()
        if seq < args.frames and now >= next_send:
            payload = json.dumps(synthetic(seq, rng)).encode()
            sent[seq] = time.monotonic_ns()
            pub.send_multipart([b"obs", payload])
            seq += 1
            # Random phase: a fixed send period commensurate with the daemon's tick would lock the
            # wait-for-next-tick part of the latency to one value.
            next_send += period * rng.uniform(0.5, 1.5)
            if seq == args.frames:
                deadline = time.monotonic() + 1.0
        if deadline and time.monotonic() > deadline:
            break
        if sub.poll(1):
            topic, body = sub.recv_multipart()
            t = time.monotonic_ns()
            d = json.loads(body)
            s = d.get("obs_seq")
            if d.get("fresh") and s in sent:
                lat.append((t - sent.pop(s)) / 1000.0)
                arrival.append(bool(d.get("on_arrival")))
                if args.verbose and lat[-1] > args.verbose:
                    print(f"slow: seq {s} {lat[-1]:.0f} us on_arrival={d.get('on_arrival')} obs_age_us={d.get('obs_age_us')} tick_us={d.get('tick_us')}", file=sys.stderr)
    if not lat:
        print("no intent matched a frame: is mgptd running with io.sensor_endpoint =", args.obs, file=sys.stderr)
        return 1
    print(f"frames sent {args.frames} at {args.rate} Hz, intents matched {len(lat)}")
    print(f"e2e_p50_us={pct(lat, 0.5):.0f} e2e_p99_us={pct(lat, 0.99):.0f} e2e_max_us={max(lat):.0f} "
          f"matched={len(lat)} sent={args.frames} on_arrival={sum(arrival) / len(arrival):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
