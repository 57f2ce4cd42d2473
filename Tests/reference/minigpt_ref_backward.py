#!/usr/bin/env python3
"""Independent numpy reference of the MiniGPT training step (forward, hand-written backward, AdamW).

Written from the model's math (Llama-style pre-norm decoder, tied embeddings, fused QKV, HF
rotate_half RoPE, causal GQA attention, SwiGLU, cross-entropy with label smoothing), not from the
Swift code: attention is done with whole masked (T, T) matrices per head, GQA by repeating kv heads.
numpy only.

Modes:
  grad  --model DIR --batch FILE.json --out FILE.safetensors   (float64)
        DIR holds config.json + model.safetensors; the batch JSON is
        {"ids": [[...]], "targets": [[...]], "smoothing": eps}  (target -1 = ignored)
        Writes the gradient of the mean loss for every checkpoint tensor (F32, checkpoint names)
        and the loss in the metadata key "loss".
  bench [--batch 16] [--seq 128] [--steps 3] [--config config.json]   (float32; default model shape)
        Times forward + backward + AdamW and prints one JSON line {"tokens_per_s": ...}.
"""
import argparse
import json
import struct
import sys
import time

import numpy as np


# ---------------------------------------------------------------------------- safetensors I/O

def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name}: expected F32, found {info['dtype']}"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(blob[base + b:base + e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    chunks, at = [], 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [at, at + len(data)]}
        chunks.append(data)
        at += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


# ---------------------------------------------------------------------------- the model

class Config:
    def __init__(self, d):
        self.V = d["vocab_size"]
        self.C = d["hidden_size"]
        self.L = d["num_hidden_layers"]
        self.NH = d["num_attention_heads"]
        self.KVH = d.get("num_key_value_heads", self.NH)
        self.F = d["intermediate_size"]
        self.theta = d.get("rope_theta", 10000.0)
        self.eps = d.get("rms_norm_eps", 1e-5)
        self.hd = self.C // self.NH


def names(L):
    per = ["input_layernorm", "self_attn.qkv_proj", "self_attn.o_proj", "post_attention_layernorm",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
    out = ["model.embed_tokens.weight", "model.norm.weight"]
    for i in range(L):
        out += [f"model.layers.{i}.{p}.weight" for p in per]
    return out


def rope_tables(T, hd, theta, dtype):
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)           # (hd/2)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]           # (T, hd/2)
    cos = np.concatenate([np.cos(ang), np.cos(ang)], axis=1).astype(dtype)  # (T, hd)
    sin = np.concatenate([np.sin(ang), np.sin(ang)], axis=1).astype(dtype)
    return cos, sin


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rotate_half_T(g):
    # Transpose of rotate_half: rotate_half(x) = R x with R = [[0, -I], [I, 0]], so Rᵀ g = [g2, -g1].
    h = g.shape[-1] // 2
    return np.concatenate([g[..., h:], -g[..., :h]], axis=-1)


def rmsnorm_fwd(x, w, eps):
    r = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x * r * w, r


def rmsnorm_bwd(dy, x, w, r):
    C = x.shape[-1]
    dw = (dy * x * r).reshape(-1, C).sum(0)
    g = dy * w
    dx = g * r - x * (r ** 3) * (g * x).sum(-1, keepdims=True) / C
    return dx, dw


def step(P, cfg, ids, targets, smoothing, want_grads=True):
    """Mean loss and gradients (dict by checkpoint name) of one batch. ids, targets: (B, T)."""
    B, T = ids.shape
    C, NH, KVH, hd, F, V = cfg.C, cfg.NH, cfg.KVH, cfg.hd, cfg.F, cfg.V
    rep = NH // KVH
    dt = P["model.embed_tokens.weight"].dtype
    cos, sin = rope_tables(T, hd, cfg.theta, dt)
    mask = np.triu(np.ones((T, T), dtype=bool), 1)                          # True above the diagonal
    E = P["model.embed_tokens.weight"]
    x = E[ids]                                                              # (B, T, C)
    cache = []
    for i in range(cfg.L):
        pre = f"model.layers.{i}."
        x_in = x
        h, r1 = rmsnorm_fwd(x, P[pre + "input_layernorm.weight"], cfg.eps)
        qkv = h @ P[pre + "self_attn.qkv_proj.weight"].T                    # (B, T, QKV)
        q = qkv[..., :C].reshape(B, T, NH, hd).transpose(0, 2, 1, 3)        # (B, NH, T, hd)
        k = qkv[..., C:C + KVH * hd].reshape(B, T, KVH, hd).transpose(0, 2, 1, 3)
        v = qkv[..., C + KVH * hd:].reshape(B, T, KVH, hd).transpose(0, 2, 1, 3)
        qr = q * cos + rotate_half(q) * sin
        kr = k * cos + rotate_half(k) * sin
        kr_full = np.repeat(kr, rep, axis=1)                                # (B, NH, T, hd)
        v_full = np.repeat(v, rep, axis=1)
        s = qr @ kr_full.transpose(0, 1, 3, 2) / np.sqrt(hd)                # (B, NH, T, T)
        s = np.where(mask, -np.inf, s)
        s = s - s.max(-1, keepdims=True)
        p = np.exp(s)
        p = p / p.sum(-1, keepdims=True)
        y = (p @ v_full).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ P[pre + "self_attn.o_proj.weight"].T
        x_mid = x
        h2, r2 = rmsnorm_fwd(x, P[pre + "post_attention_layernorm.weight"], cfg.eps)
        g = h2 @ P[pre + "mlp.gate_proj.weight"].T
        u = h2 @ P[pre + "mlp.up_proj.weight"].T
        sg = 1.0 / (1.0 + np.exp(-g))
        a = g * sg * u
        x = x + a @ P[pre + "mlp.down_proj.weight"].T
        cache.append((x_in, h, r1, qr, kr_full, v_full, p, y, x_mid, h2, r2, g, u, sg, a))
    hf, rf = rmsnorm_fwd(x, P["model.norm.weight"], cfg.eps)
    z = hf @ E.T                                                            # (B, T, V)
    zmax = z.max(-1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(-1, keepdims=True))
    valid = targets >= 0
    n_valid = max(int(valid.sum()), 1)
    tgt = np.where(valid, targets, 0)
    q_dist = np.full(z.shape, smoothing / V, dtype=dt)
    np.put_along_axis(q_dist, tgt[..., None], (1 - smoothing) + smoothing / V, axis=-1)
    per_tok = -(q_dist * logp).sum(-1) * valid
    loss = per_tok.sum() / n_valid
    if not want_grads:
        return loss, None

    G = {n: np.zeros_like(P[n]) for n in names(cfg.L)}
    dz = (np.exp(logp) - q_dist) * valid[..., None] / n_valid
    G["model.embed_tokens.weight"] += dz.reshape(-1, V).T @ hf.reshape(-1, C)
    dhf = dz @ E
    dx, dwf = rmsnorm_bwd(dhf, x, P["model.norm.weight"], rf)
    G["model.norm.weight"] += dwf
    for i in reversed(range(cfg.L)):
        pre = f"model.layers.{i}."
        x_in, h, r1, qr, kr_full, v_full, p, y, x_mid, h2, r2, g, u, sg, a = cache[i]
        # FFN branch.
        Wd = P[pre + "mlp.down_proj.weight"]
        G[pre + "mlp.down_proj.weight"] += dx.reshape(-1, C).T @ a.reshape(-1, F)
        da = dx @ Wd
        dg = da * u * (sg + g * sg * (1 - sg))
        du = da * g * sg
        G[pre + "mlp.gate_proj.weight"] += dg.reshape(-1, F).T @ h2.reshape(-1, C)
        G[pre + "mlp.up_proj.weight"] += du.reshape(-1, F).T @ h2.reshape(-1, C)
        dh2 = dg @ P[pre + "mlp.gate_proj.weight"] + du @ P[pre + "mlp.up_proj.weight"]
        dxm, dw2 = rmsnorm_bwd(dh2, x_mid, P[pre + "post_attention_layernorm.weight"], r2)
        G[pre + "post_attention_layernorm.weight"] += dw2
        dx = dx + dxm
        # Attention branch.
        Wo = P[pre + "self_attn.o_proj.weight"]
        G[pre + "self_attn.o_proj.weight"] += dx.reshape(-1, C).T @ y.reshape(-1, C)
        dy = (dx @ Wo).reshape(B, T, NH, hd).transpose(0, 2, 1, 3)          # (B, NH, T, hd)
        dv_full = p.transpose(0, 1, 3, 2) @ dy
        dp = dy @ v_full.transpose(0, 1, 3, 2)
        ds = p * (dp - (p * dp).sum(-1, keepdims=True)) / np.sqrt(hd)
        dqr = ds @ kr_full
        dkr_full = ds.transpose(0, 1, 3, 2) @ qr
        dkr = dkr_full.reshape(B, KVH, rep, T, hd).sum(2)
        dv = dv_full.reshape(B, KVH, rep, T, hd).sum(2)
        dq = dqr * cos + rotate_half_T(dqr * sin)
        dk = dkr * cos + rotate_half_T(dkr * sin)
        dqkv = np.concatenate([dq.transpose(0, 2, 1, 3).reshape(B, T, -1),
                               dk.transpose(0, 2, 1, 3).reshape(B, T, -1),
                               dv.transpose(0, 2, 1, 3).reshape(B, T, -1)], axis=-1)
        G[pre + "self_attn.qkv_proj.weight"] += dqkv.reshape(B * T, -1).T @ h.reshape(-1, C)
        dh = dqkv @ P[pre + "self_attn.qkv_proj.weight"]
        dxi, dw1 = rmsnorm_bwd(dh, x_in, P[pre + "input_layernorm.weight"], r1)
        G[pre + "input_layernorm.weight"] += dw1
        dx = dx + dxi
    np.add.at(G["model.embed_tokens.weight"], ids.reshape(-1), dx.reshape(-1, C))
    return loss, G


def adamw(P, G, M, Vs, t, lr, b1=0.9, b2=0.95, eps=1e-8, wd=0.1):
    for n in P:
        g = G[n]
        M[n] = b1 * M[n] + (1 - b1) * g
        Vs[n] = b2 * Vs[n] + (1 - b2) * g * g
        mh = M[n] / (1 - b1 ** t)
        vh = Vs[n] / (1 - b2 ** t)
        if P[n].ndim == 2:
            P[n] -= lr * wd * P[n]
        P[n] -= lr * mh / (np.sqrt(vh) + eps)


# ---------------------------------------------------------------------------- modes

def mode_grad(args):
    with open(f"{args.model}/config.json") as f:
        cfg = Config(json.load(f))
    P = read_safetensors(f"{args.model}/model.safetensors")
    with open(args.batch) as f:
        batch = json.load(f)
    ids = np.array(batch["ids"], dtype=np.int64)
    targets = np.array(batch["targets"], dtype=np.int64)
    loss, G = step(P, cfg, ids, targets, float(batch.get("smoothing", 0.0)))
    write_safetensors(args.out, G, {"loss": repr(float(loss))})
    print(json.dumps({"loss": float(loss)}))


def mode_bench(args):
    shape = {"vocab_size": 512, "hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 320}
    if args.config:
        with open(args.config) as f:
            shape = json.load(f)
    cfg = Config(shape)
    rng = np.random.default_rng(0)
    qkv_rows = cfg.C + 2 * cfg.KVH * cfg.hd
    P = {}
    for n in names(cfg.L):
        if "norm" in n:
            P[n] = np.ones(cfg.C, dtype=np.float32)
        elif "embed" in n:
            P[n] = (rng.standard_normal((cfg.V, cfg.C)) * 0.02).astype(np.float32)
        elif "qkv" in n:
            P[n] = (rng.standard_normal((qkv_rows, cfg.C)) * 0.02).astype(np.float32)
        elif "o_proj" in n:
            P[n] = (rng.standard_normal((cfg.C, cfg.C)) * 0.02).astype(np.float32)
        elif "down" in n:
            P[n] = (rng.standard_normal((cfg.C, cfg.F)) * 0.02).astype(np.float32)
        else:
            P[n] = (rng.standard_normal((cfg.F, cfg.C)) * 0.02).astype(np.float32)
    M = {n: np.zeros_like(p) for n, p in P.items()}
    Vs = {n: np.zeros_like(p) for n, p in P.items()}
    ids = rng.integers(0, cfg.V, size=(args.batch, args.seq))
    targets = rng.integers(0, cfg.V, size=(args.batch, args.seq))
    # One warm-up step, then timed steps.
    _, G = step(P, cfg, ids, targets, 0.1)
    adamw(P, G, M, Vs, 1, 1e-3)
    t0 = time.perf_counter()
    for s in range(args.steps):
        loss, G = step(P, cfg, ids, targets, 0.1)
        adamw(P, G, M, Vs, s + 2, 1e-3)
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens_per_s": args.batch * args.seq * args.steps / dt,
                      "seconds_per_step": dt / args.steps, "loss": float(loss)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("grad")
    g.add_argument("--model", required=True)
    g.add_argument("--batch", required=True)
    g.add_argument("--out", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--seq", type=int, default=128)
    b.add_argument("--steps", type=int, default=3)
    b.add_argument("--config", help="config.json of the model shape (default: the default shape)")
    args = ap.parse_args()
    {"grad": mode_grad, "bench": mode_bench}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
