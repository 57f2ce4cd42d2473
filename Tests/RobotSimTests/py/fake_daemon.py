"""A stand-in for mgptd in closed-loop tests: reads `obs`, publishes `intent`.

usage: fake_daemon.py OBS_ENDPOINT INTENT_ENDPOINT TURN_FRAMES
Answers every frame with TURN_LEFT(1.0) (payload {"v":1,"seq":<frame seq>,"intent":...}) for
TURN_FRAMES frames, then sends DONE; also sends one malformed intent first. Prints one line:
answered=N theta_moved=X (odometry heading change it saw).
"""
import json
import sys
import time

try:
    import zmq
except ImportError:
    print("pyzmq is not importable: pip install pyzmq", file=sys.stderr)
    sys.exit(3)

obs_ep, intent_ep, turn_frames = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = zmq.Context()
pub = ctx.socket(zmq.PUB)
pub.setsockopt(zmq.LINGER, 0)
pub.bind(intent_ep)
sub = ctx.socket(zmq.SUB)
sub.setsockopt(zmq.LINGER, 0)
sub.connect(obs_ep)
sub.subscribe(b"obs")
print("ready", flush=True)

answered, bad_sent = 0, False
theta0 = theta = None
unwrapped = 0.0
deadline = time.monotonic() + 20
last_frame = time.monotonic()
while time.monotonic() < deadline:
    if not sub.poll(100):
        if answered > turn_frames and time.monotonic() - last_frame > 0.5:
            break  # DONE was sent and the simulator has stopped publishing
        continue
    last_frame = time.monotonic()
    _, payload = sub.recv_multipart()
    frame = json.loads(payload)
    th = frame["odom"]["theta"]
    if theta is not None:
        d = th - theta
        while d > 3.14159265:
            d -= 6.2831853
        while d < -3.14159265:
            d += 6.2831853
        unwrapped += d
    theta = th
    if not bad_sent:
        pub.send_multipart([b"intent", b'{"v":1,"seq":0,"intent":"FLY(2)"}'])
        bad_sent = True
    text = "TURN_LEFT(1.0)" if answered < turn_frames else "DONE"
    pub.send_multipart([b"intent", json.dumps({"v": 1, "seq": frame["seq"], "intent": text}).encode()])
    answered += 1
print(f"answered={answered} theta_moved={unwrapped:.3f}", flush=True)
