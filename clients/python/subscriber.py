#!/usr/bin/env python3
"""Example subscriber for mgptd: prints every decision the daemon publishes.

    python3 clients/python/subscriber.py --endpoint tcp://127.0.0.1:5556 [--count N] [--seconds S]

The daemon publishes ZeroMQ multipart messages [topic, JSON payload] on topics "intent", "telemetry"
and "status" (docs/protocol.md). An RL policy would read "intent" exactly like this and act on
payload["verb"] / payload["arg"], treating payload["gated"] / payload["confidence"] as the
controller's verdict. Exit status: 0 when at least one intent arrived, 1 otherwise, 2 on a payload
that does not match the schema (docs/schemas/*.schema.json "required").
"""
import argparse
import json
import os
import signal
import sys
import time

try:
    import zmq
except ImportError:  # pragma: no cover - a clear message instead of a traceback
    sys.exit("subscriber.py needs pyzmq: pip install pyzmq")

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "docs", "schemas")


def required_keys(name):
    """The 'required' list of docs/schemas/NAME.schema.json (empty when the file is absent)."""
    path = os.path.join(SCHEMAS, f"{name}.schema.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f).get("required", [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="mgptd's io.publish_endpoint")
    ap.add_argument("--topics", default="intent,status", help="comma-separated topics to subscribe to")
    ap.add_argument("--count", type=int, default=0, help="stop after this many intents (0 = no limit)")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = no limit)")
    ap.add_argument("--json", action="store_true", help="print raw JSON lines instead of a summary")
    ap.add_argument("--quiet", action="store_true", help="print only the final counts")
    args = ap.parse_args()
    # SIGTERM and SIGINT (a background job of a script has SIGINT ignored) both end the loop with
    # the summary line, as Ctrl-C does.
    def stop(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    topics = [t for t in args.topics.split(",") if t]
    required = {t: required_keys(t) for t in topics}
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.connect(args.endpoint)
    for t in topics:
        sub.setsockopt(zmq.SUBSCRIBE, t.encode())

    counts = {t: 0 for t in topics}
    gated = 0
    start = time.monotonic()
    last_status = None
    try:
        while True:
            if args.seconds and time.monotonic() - start >= args.seconds:
                break
            if args.count and counts.get("intent", 0) >= args.count:
                break
            if not sub.poll(100):
                continue
            parts = sub.recv_multipart()
            if len(parts) != 2:
                print(f"unexpected {len(parts)}-part message", file=sys.stderr)
                continue
            topic, payload = parts[0].decode(), json.loads(parts[1])
            missing = [k for k in required.get(topic, []) if k not in payload]
            if missing:
                print(f"{topic} payload misses {missing}: {payload}", file=sys.stderr)
                return 2
            counts[topic] = counts.get(topic, 0) + 1
            if topic == "status":
                last_status = payload
            if topic == "intent" and payload["gated"]:
                gated += 1
            if args.quiet:
                continue
            if args.json:
                print(json.dumps({"topic": topic, **payload}), flush=True)
            elif topic == "intent":
                flag = f"GATED ({payload['reason']})" if payload["gated"] else "ok"
                print(f"seq={payload['seq']:6d} {payload['intent']:<16} conf={payload['confidence']:.2f} "
                      f"H={payload['entropy']:.2f} dis={payload['head_disagreement']:.2f} {flag:<24} "
                      f"obs_age={payload['obs_age_us']}us tick={payload['tick_us']}us", flush=True)
            elif topic == "status":
                print(f"status {payload['state']}: ticks={payload['ticks']} frames={payload['frames_accepted']} "
                      f"malformed={payload['frames_malformed']} overruns={payload['overruns']} "
                      f"deadline_misses={payload['deadline_misses']}", flush=True)
    except KeyboardInterrupt:
        pass
    summary = " ".join(f"{t}={n}" for t, n in counts.items())
    print(f"received {summary} gated={gated}" + (f" last_state={last_status['state']}" if last_status else ""), flush=True)
    return 0 if counts.get("intent", 0) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
