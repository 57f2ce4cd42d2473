#!/usr/bin/env python3
"""Independent numpy reference ("oracle") of the MiniGPT forward pass.

Written from the math, not from the Swift code, so the two can check each other.
Needs only numpy. Reads a model folder: config.json + model.safetensors (parsed by hand below).

    python3 Tests/reference/minigpt_ref.py logits --model DIR --ids 1,2,3 [--all]
        prints the final-position logits as a JSON array (with --all: one array per position).
        The math runs in float64. `--ids` may be repeated: then the output is a JSON array with one
        such result per prompt (one process for many prompts: the tests use this).

    python3 Tests/reference/minigpt_ref.py bench-decode --model DIR --positions 256 --tokens 64
        the "numpy baseline" for `mgpt bench decode`: a vectorised float32 decode step with a
        preallocated KV cache. Fills the cache with `positions` tokens (one step each, untimed), then
        times `tokens` single-token steps, each at exactly `positions` cached positions (the cache
        is rewound after every step, as the Swift bench does), after `--warmup` untimed ones.
        Last line: `median_us=… p99_us=… tokens=…` (parsed by the Swift bench).

Shape legend: T tokens, V vocabulary, d hidden size, H query heads, KVH key/value heads,
hd = d/H head width, F FFN width, L layers.

The model (Llama family, pre-norm):
    x = E[ids]                                                     (T, d)
    per layer:
        h = rmsnorm(x, attn_norm)
        q, k, v = h @ Wqᵀ, h @ Wkᵀ, h @ Wvᵀ                        (T, H·hd), (T, KVH·hd) ×2
        RoPE on q and k (HF rotate_half: pairs (i, i + hd/2), inv_freq_i = theta^(-2i/hd))
        causal softmax(q kᵀ / sqrt(hd)) v, query head h reads kv head h // (H/KVH)
        x += concat(heads) @ Woᵀ
        h = rmsnorm(x, ffn_norm)
        x += (silu(h @ Wgateᵀ) * (h @ Wupᵀ)) @ Wdownᵀ
    logits = rmsnorm(x, final_norm) @ Eᵀ  (E = lm_head when untied)  (T, V)
    rmsnorm(x, w) = x / sqrt(mean(x²) + eps) * w
"""

import argparse
import json
import os
import struct
import sys

# One BLAS thread unless the caller says otherwise (must happen before numpy is imported): the
# numpy baseline is timed on one core like the Swift engine, and the oracle's matrices are so small
# that BLAS threads only spin, which on a busy machine made one call 4x slower (measured).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


class ModelError(Exception):
    """A problem with the model folder; the message names the file and what is wrong."""


# ----------------------------------------------------------------------------------------------
# safetensors, by hand (format: huggingface/safetensors README, "Format"):
#   [u64 little-endian N] [N bytes UTF-8 JSON header] [byte buffer]
#   header: name -> {"dtype", "shape", "data_offsets": [begin, end]} relative to the buffer start.

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I8": np.dtype("i1"), "I32": np.dtype("<i4")}


def read_safetensors(path):
    """Returns {name: ndarray} with the stored dtypes (no dequantisation)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ModelError(f"{path}: truncated, {len(blob)} bytes (the header length alone needs 8)")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ModelError(f"{path}: header claims {n} bytes but only {len(blob) - 8} follow byte 8")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: header (bytes 8..{8 + n}) is not valid JSON: {e}")
    data = memoryview(blob)[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = _DTYPES.get(e.get("dtype"))
        if dt is None:
            raise ModelError(f"{path}: tensor {name!r}: unsupported dtype {e.get('dtype')!r}")
        shape = tuple(int(s) for s in e["shape"])
        begin, end = (int(o) for o in e["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64))
        if end - begin != count * dt.itemsize or end > len(data):
            raise ModelError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] do not fit shape "
                             f"{list(shape)} of {e['dtype']} in a buffer of {len(data)} bytes")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape)
    return out


# ----------------------------------------------------------------------------------------------
# The model folder

def load_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        c = json.load(f)
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "max_position_embeddings"):
        if key not in c:
            raise ModelError(f"{path}: missing required key {key!r}")
    cfg = {
        "V": int(c["vocab_size"]),
        "d": int(c["hidden_size"]),
        "L": int(c["num_hidden_layers"]),
        "H": int(c["num_attention_heads"]),
        "F": int(c["intermediate_size"]),
        "max_pos": int(c["max_position_embeddings"]),
        "theta": float(c.get("rope_theta", 10000.0)),
        "eps": float(c.get("rms_norm_eps", 1e-5)),
        "tied": bool(c.get("tie_word_embeddings", True)),
        "fused": bool(c.get("fused_qkv", True)),
    }
    cfg["KVH"] = int(c.get("num_key_value_heads", cfg["H"]))
    cfg["rank"] = int(c.get("ffn_rank", 0))
    if cfg["rank"] < 0 or cfg["rank"] > min(cfg["d"], cfg["F"]):
        raise ModelError(f"{path}: ffn_rank {cfg['rank']}: expected 0 (dense) or 1..{min(cfg['d'], cfg['F'])}")
    if cfg["d"] % cfg["H"] or cfg["H"] % cfg["KVH"] or (cfg["d"] // cfg["H"]) % 2:
        raise ModelError(f"{path}: impossible shape d={cfg['d']} H={cfg['H']} KVH={cfg['KVH']}")
    cfg["hd"] = cfg["d"] // cfg["H"]
    return cfg


def load_weights(model_dir, cfg, dtype=np.float64):
    """Weights as `dtype` arrays, [out, in] row-major; I8 tensors dequantised with their `.scale`."""
    path = os.path.join(model_dir, "model.safetensors")
    raw = read_safetensors(path)

    def get(name, shape):
        if name not in raw:
            raise ModelError(f"{path}: missing tensor {name!r}")
        t = raw[name]
        if tuple(t.shape) != tuple(shape):
            raise ModelError(f"{path}: tensor {name!r}: expected shape {list(shape)}, found {list(t.shape)}")
        if t.dtype == np.int8:
            sname = name + ".scale"
            if sname not in raw:
                raise ModelError(f"{path}: I8 tensor {name!r} has no F32 sibling {sname!r}")
            scale = raw[sname].astype(np.float64).reshape(-1)
            if scale.shape[0] != shape[0]:
                raise ModelError(f"{path}: {sname!r}: expected {shape[0]} row scales, found {scale.shape[0]}")
            w = t.astype(np.float64) * scale.reshape((shape[0],) + (1,) * (len(shape) - 1))
        elif t.dtype in (np.float32, np.float16):
            w = t.astype(np.float64)
        else:
            raise ModelError(f"{path}: tensor {name!r}: dtype {t.dtype} is not a weight type")
        return np.ascontiguousarray(w.astype(dtype))

    V, d, F, H, KVH, hd = cfg["V"], cfg["d"], cfg["F"], cfg["H"], cfg["KVH"], cfg["hd"]
    r = cfg.get("rank", 0)

    def ffn(name, rows, cols):
        # Dense `name`, or (ffn_rank r > 0) the product of its factors `name_a` (rows, r) · `name_b` (r, cols).
        if r == 0:
            return get(name, (rows, cols))
        a = get(name + "_a", (rows, r)).astype(np.float64)
        b = get(name + "_b", (r, cols)).astype(np.float64)
        return np.ascontiguousarray((a @ b).astype(dtype))

    W = {"embed": get("model.embed_tokens.weight", (V, d)),
         "norm": get("model.norm.weight", (d,)), "layers": []}
    W["head"] = W["embed"] if cfg["tied"] else get("lm_head.weight", (V, d))
    for i in range(cfg["L"]):
        p = f"model.layers.{i}."
        if cfg["fused"]:
            qkv = get(p + "self_attn.qkv_proj.weight", ((H + 2 * KVH) * hd, d))
            wq, wk, wv = qkv[:H * hd], qkv[H * hd:(H + KVH) * hd], qkv[(H + KVH) * hd:]
        else:
            wq = get(p + "self_attn.q_proj.weight", (H * hd, d))
            wk = get(p + "self_attn.k_proj.weight", (KVH * hd, d))
            wv = get(p + "self_attn.v_proj.weight", (KVH * hd, d))
        W["layers"].append({
            "attn_norm": get(p + "input_layernorm.weight", (d,)),
            "wq": wq, "wk": wk, "wv": wv,
            "wo": get(p + "self_attn.o_proj.weight", (d, H * hd)),
            "ffn_norm": get(p + "post_attention_layernorm.weight", (d,)),
            "gate": ffn(p + "mlp.gate_proj.weight", F, d),
            "up": ffn(p + "mlp.up_proj.weight", F, d),
            "down": ffn(p + "mlp.down_proj.weight", d, F),
        })
    return W


# ----------------------------------------------------------------------------------------------
# The oracle: the whole sequence at once, float64, no cache.

def rmsnorm(x, w, eps):
    # x (..., d), w (d)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_tables(positions, hd, theta, dtype=np.float64):
    # -> cos, sin (T, hd/2): angle[t, i] = pos_t * theta^(-2i/hd)
    inv_freq = theta ** (-np.arange(0, hd // 2, dtype=np.float64) * 2.0 / hd)
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def apply_rope(x, cos, sin):
    # x (T, heads, hd); pairs (i, i + hd/2) rotate by angle[t, i] (HF rotate_half convention).
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(cfg, W, ids):
    """ids (T) -> logits (T, V), float64."""
    T, H, KVH, hd, eps = len(ids), cfg["H"], cfg["KVH"], cfg["hd"], cfg["eps"]
    for t in ids:
        if not 0 <= t < cfg["V"]:
            raise ModelError(f"token id {t} outside the vocabulary 0..<{cfg['V']}")
    x = W["embed"][np.asarray(ids)].astype(np.float64)            # (T, d)
    cos, sin = rope_tables(np.arange(T), hd, cfg["theta"])        # (T, hd/2)
    mask = np.triu(np.ones((T, T), dtype=bool), k=1)              # True above the diagonal = future
    group = H // KVH
    for lw in W["layers"]:
        h = rmsnorm(x, lw["attn_norm"], eps)
        q = apply_rope((h @ lw["wq"].T).reshape(T, H, hd), cos, sin)      # (T, H, hd)
        k = apply_rope((h @ lw["wk"].T).reshape(T, KVH, hd), cos, sin)    # (T, KVH, hd)
        v = (h @ lw["wv"].T).reshape(T, KVH, hd)                          # (T, KVH, hd)
        heads = np.empty((T, H, hd))
        for hh in range(H):
            kv = hh // group
            s = (q[:, hh, :] @ k[:, kv, :].T) / np.sqrt(hd)               # (T, T)
            s = np.where(mask, -np.inf, s)
            s = s - s.max(axis=-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(axis=-1, keepdims=True)
            heads[:, hh, :] = p @ v[:, kv, :]
        x = x + heads.reshape(T, H * hd) @ lw["wo"].T
        h = rmsnorm(x, lw["ffn_norm"], eps)
        x = x + (silu(h @ lw["gate"].T) * (h @ lw["up"].T)) @ lw["down"].T
    return rmsnorm(x, W["norm"], eps) @ W["head"].T               # (T, V)


# ----------------------------------------------------------------------------------------------
# The numpy baseline: float32 decode with a preallocated KV cache.

class Decoder:
    """One token per `step`; K/V cache (L, KVH, capacity, hd) allocated once."""

    def __init__(self, cfg, W, capacity):
        f32 = np.float32
        self.cfg, self.capacity = cfg, capacity
        self.embed = W["embed"].astype(f32)
        self.head = W["head"].astype(f32) if not cfg["tied"] else self.embed
        self.norm = W["norm"].astype(f32)
        self.layers = []
        for lw in W["layers"]:
            self.layers.append({
                "attn_norm": lw["attn_norm"].astype(f32),
                "wqkv": np.ascontiguousarray(np.concatenate([lw["wq"], lw["wk"], lw["wv"]]).astype(f32)),
                "wo": lw["wo"].astype(f32), "ffn_norm": lw["ffn_norm"].astype(f32),
                "wgu": np.ascontiguousarray(np.concatenate([lw["gate"], lw["up"]]).astype(f32)),
                "down": lw["down"].astype(f32),
            })
        L, KVH, hd = cfg["L"], cfg["KVH"], cfg["hd"]
        self.k_cache = np.zeros((L, KVH, capacity, hd), dtype=f32)
        self.v_cache = np.zeros((L, KVH, capacity, hd), dtype=f32)
        cos, sin = rope_tables(np.arange(capacity), hd, cfg["theta"], dtype=f32)
        self.cos, self.sin = cos, sin                             # (capacity, hd/2)
        self.eps = np.float32(cfg["eps"])
        self.scale = np.float32(1.0 / np.sqrt(hd))
        self.pos = 0

    def _rope(self, x, pos):
        # x (heads, hd), rotated in place
        half = x.shape[-1] // 2
        c, s = self.cos[pos], self.sin[pos]
        a = x[:, :half].copy()
        b = x[:, half:]
        x[:, :half] = a * c - b * s
        x[:, half:] = b * c + a * s

    def step(self, token):
        """Feeds `token` at the next position; returns the logits (V) as float32."""
        cfg, pos = self.cfg, self.pos
        H, KVH, hd, F = cfg["H"], cfg["KVH"], cfg["hd"], cfg["F"]
        qd, kvd, group, eps = H * hd, KVH * hd, H // KVH, self.eps
        x = self.embed[token].copy()                              # (d)
        for li, lw in enumerate(self.layers):
            h = x / np.sqrt(np.dot(x, x) / x.shape[0] + eps) * lw["attn_norm"]
            qkv = lw["wqkv"] @ h                                  # (qd + 2·kvd)
            self._rope(qkv[:qd + kvd].reshape(H + KVH, hd), pos)     # q and k heads in one call
            q = qkv[:qd].reshape(H, hd)
            k = qkv[qd:qd + kvd].reshape(KVH, hd)
            self.k_cache[li, :, pos, :] = k
            self.v_cache[li, :, pos, :] = qkv[qd + kvd:].reshape(KVH, hd)
            K = self.k_cache[li, :, :pos + 1, :]                  # (KVH, P, hd)
            Vc = self.v_cache[li, :, :pos + 1, :]                 # (KVH, P, hd)
            s = np.matmul(q.reshape(KVH, group, hd), K.transpose(0, 2, 1)) * self.scale   # (KVH, G, P)
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            att = np.matmul(s, Vc).reshape(qd)                    # (H·hd)
            x += lw["wo"] @ att
            h = x / np.sqrt(np.dot(x, x) / x.shape[0] + eps) * lw["ffn_norm"]
            gu = lw["wgu"] @ h                                    # (2F)
            g = gu[:F]
            x += lw["down"] @ (g / (1 + np.exp(-g)) * gu[F:])
        x = x / np.sqrt(np.dot(x, x) / x.shape[0] + eps) * self.norm
        self.pos += 1
        return self.head @ x                                      # (V)


def bench_decode(model_dir, positions, tokens, warmup):
    import time
    cfg = load_config(model_dir)
    W = load_weights(model_dir, cfg)
    if positions + 1 > cfg["max_pos"]:
        print(f"note: position {positions} is past max_position_embeddings {cfg['max_pos']}; "
              f"the cost of a step is the same", file=sys.stderr)
    dec = Decoder(cfg, W, positions + 1)
    V = cfg["V"]
    for i in range(positions):
        dec.step((7 * i + 3) % V)
    times = []
    for i in range(warmup + tokens):
        token = (11 * i + 5) % V
        t0 = time.perf_counter_ns()
        dec.step(token)
        dt = time.perf_counter_ns() - t0
        dec.pos = positions                                       # rewind: every step sees `positions`
        if i >= warmup:
            times.append(dt)
    times_us = np.sort(np.asarray(times, dtype=np.float64) / 1000.0)
    median = float(np.median(times_us))
    p99 = float(np.percentile(times_us, 99, method="higher"))
    print(f"numpy {np.__version__} float32 decode, KV cache: {tokens} steps at {positions} cached "
          f"positions ({warmup} warm-up), d={cfg['d']} L={cfg['L']} H={cfg['H']} KVH={cfg['KVH']} V={cfg['V']}: "
          f"median {median:.1f} us, p99 {p99:.1f} us, min {times_us[0]:.1f} us")
    print(f"median_us={median:.3f} p99_us={p99:.3f} tokens={tokens}")


# ----------------------------------------------------------------------------------------------

def parse_ids(text):
    try:
        ids = [int(s) for s in text.split(",") if s.strip() != ""]
    except ValueError:
        raise ModelError(f"--ids: expected comma-separated integers, found {text!r}")
    if not ids:
        raise ModelError("--ids: at least one token id is needed")
    return ids


def main(argv=None):
    ap = argparse.ArgumentParser(description="Independent numpy reference of the MiniGPT forward pass.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits", help="Print logits for a prompt as JSON (float64 math).")
    lg.add_argument("--model", required=True, help="Model folder (config.json + model.safetensors).")
    lg.add_argument("--ids", required=True, action="append",
                    help="Comma-separated token ids, e.g. 1,2,3; repeat for several prompts.")
    lg.add_argument("--all", action="store_true", help="Print logits of every position, not just the last.")
    bd = sub.add_parser("bench-decode", help="Time float32 numpy decode steps with a KV cache.")
    bd.add_argument("--model", required=True, help="Model folder.")
    bd.add_argument("--positions", type=int, default=256, help="Positions cached before timing.")
    bd.add_argument("--tokens", type=int, default=64, help="Timed decode steps.")
    bd.add_argument("--warmup", type=int, default=10, help="Untimed decode steps before the timed ones.")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "logits":
            cfg = load_config(args.model)
            W = load_weights(args.model, cfg)
            outs = []
            for text in args.ids:
                logits = forward(cfg, W, parse_ids(text))
                outs.append(logits.tolist() if args.all else logits[-1].tolist())
            json.dump(outs[0] if len(outs) == 1 else outs, sys.stdout, separators=(",", ":"))
            sys.stdout.write("\n")
        else:
            if args.positions < 0 or args.tokens < 1 or args.warmup < 0:
                raise ModelError("bench-decode: --positions and --warmup must be >= 0, --tokens >= 1")
            bench_decode(args.model, args.positions, args.tokens, args.warmup)
    except (ModelError, OSError, json.JSONDecodeError) as e:
        print(f"minigpt_ref: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
