#!/usr/bin/env python3
"""Self-checks of the numpy oracle (minigpt_ref.py), independent of the Swift engine.

    python3 Tests/reference/test_minigpt_ref.py      # prints one line per check, exit 0 = all pass

An oracle is only worth something if it is right on its own, so each check compares two different
computations of the same quantity:
  1. the float64 whole-sequence forward vs the float32 KV-cache decoder, step by step;
  2. causality: logits of a prefix do not change when tokens are appended;
  3. RoPE: rotation keeps norms and q·k depends only on the position difference;
  4. GQA head mapping: a KVH=1 model equals an MHA model whose K/V heads are copies of the one head;
  5. storage: fused vs unfused QKV, F16 and I8 (+ row scales) files load to the same math;
  6. a hand-written scalar loop (no numpy broadcasting) for one tiny model.
Used by the Swift test `OracleTests.referenceSelfCheck`.
"""

import json
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minigpt_ref as ref  # noqa: E402


def write_safetensors(path, tensors):
    """Minimal writer (name -> ndarray of float32 / float16 / int8), insertion order, no padding."""
    codes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int8"): "I8"}
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_model(dir_, V=37, d=16, L=2, H=4, KVH=2, F=24, tied=True, fused=True, seed=0, std=0.3,
               storage="f32", tensors_override=None):
    rng = np.random.default_rng(seed)
    hd = d // H
    config = {"vocab_size": V, "hidden_size": d, "num_hidden_layers": L, "num_attention_heads": H,
              "num_key_value_heads": KVH, "intermediate_size": F, "max_position_embeddings": 64,
              "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": tied, "fused_qkv": fused,
              "model_type": "minigpt"}
    t = {"model.embed_tokens.weight": rng.normal(0, 1.0, (V, d))}
    for i in range(L):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + 0.1 * rng.normal(size=d)
        qkv = rng.normal(0, std, ((H + 2 * KVH) * hd, d))
        if fused:
            t[p + "self_attn.qkv_proj.weight"] = qkv
        else:
            t[p + "self_attn.q_proj.weight"] = qkv[:H * hd]
            t[p + "self_attn.k_proj.weight"] = qkv[H * hd:(H + KVH) * hd]
            t[p + "self_attn.v_proj.weight"] = qkv[(H + KVH) * hd:]
        t[p + "self_attn.o_proj.weight"] = rng.normal(0, std, (d, H * hd))
        t[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.normal(size=d)
        t[p + "mlp.gate_proj.weight"] = rng.normal(0, std, (F, d))
        t[p + "mlp.up_proj.weight"] = rng.normal(0, std, (F, d))
        t[p + "mlp.down_proj.weight"] = rng.normal(0, std, (d, F))
    t["model.norm.weight"] = 1 + 0.1 * rng.normal(size=d)
    if not tied:
        t["lm_head.weight"] = rng.normal(0, std, (V, d))
    if tensors_override:
        tensors_override(t)
    out = {}
    for name, a in t.items():
        if storage == "f16":
            out[name] = a.astype(np.float16)
        elif storage == "i8" and a.ndim == 2:
            scale = np.abs(a).max(axis=1) / 127.0
            out[name] = np.clip(np.round(a / scale[:, None]), -127, 127).astype(np.int8)
            out[name + ".scale"] = scale.astype(np.float32)
        else:
            out[name] = a.astype(np.float32)
    os.makedirs(dir_, exist_ok=True)
    with open(os.path.join(dir_, "config.json"), "w") as f:
        json.dump(config, f)
    write_safetensors(os.path.join(dir_, "model.safetensors"), out)
    return out


def load(dir_):
    cfg = ref.load_config(dir_)
    return cfg, ref.load_weights(dir_, cfg)


def naive_forward(cfg, W, ids):
    """Scalar loops, written separately from ref.forward (float64)."""
    import math
    T, d, H, KVH, hd, eps = len(ids), cfg["d"], cfg["H"], cfg["KVH"], cfg["hd"], cfg["eps"]

    def matvec(w, x):
        return [sum(w[r][c] * x[c] for c in range(len(x))) for r in range(len(w))]

    def norm(x, w):
        ms = sum(v * v for v in x) / len(x)
        return [x[i] / math.sqrt(ms + eps) * w[i] for i in range(len(x))]

    def rope(vec, pos):
        out = list(vec)
        for i in range(hd // 2):
            ang = pos * cfg["theta"] ** (-2.0 * i / hd)
            a, b = vec[i], vec[i + hd // 2]
            out[i] = a * math.cos(ang) - b * math.sin(ang)
            out[i + hd // 2] = b * math.cos(ang) + a * math.sin(ang)
        return out

    xs = [list(W["embed"][t]) for t in ids]
    for lw in W["layers"]:
        wq, wk, wv = lw["wq"].tolist(), lw["wk"].tolist(), lw["wv"].tolist()
        qs, ks, vs = [], [], []
        for t in range(T):
            h = norm(xs[t], lw["attn_norm"])
            q, k, v = matvec(wq, h), matvec(wk, h), matvec(wv, h)
            qs.append([rope(q[j * hd:(j + 1) * hd], t) for j in range(H)])
            ks.append([rope(k[j * hd:(j + 1) * hd], t) for j in range(KVH)])
            vs.append([v[j * hd:(j + 1) * hd] for j in range(KVH)])
        for t in range(T):
            att = []
            for j in range(H):
                kv = j // (H // KVH)
                sc = [sum(qs[t][j][c] * ks[u][kv][c] for c in range(hd)) / math.sqrt(hd) for u in range(t + 1)]
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                att += [sum(e[u] / z * vs[u][kv][c] for u in range(t + 1)) for c in range(hd)]
            o = matvec(lw["wo"].tolist(), att)
            xs[t] = [xs[t][i] + o[i] for i in range(d)]
        for t in range(T):
            h = norm(xs[t], lw["ffn_norm"])
            g, u = matvec(lw["gate"].tolist(), h), matvec(lw["up"].tolist(), h)
            a = [g[i] / (1 + math.exp(-g[i])) * u[i] for i in range(len(g))]
            dn = matvec(lw["down"].tolist(), a)
            xs[t] = [xs[t][i] + dn[i] for i in range(d)]
    head = W["head"].tolist()
    return np.array([matvec(head, norm(x, W["norm"])) for x in xs])


def check(name, diff, tol):
    ok = diff <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max abs diff {diff:.3g} (tolerance {tol:g})")
    return ok


def main():
    ok = True
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 35, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6]
    with tempfile.TemporaryDirectory(prefix="minigpt-ref-selftest-") as tmp:
        base = os.path.join(tmp, "base")
        make_model(base)
        cfg, W = load(base)
        full = ref.forward(cfg, W, ids)
        print(f"     logits std {full.std():.2f} (random model, std 0.3 weights)")
        ok &= full.std() > 0.5

        # 1. float64 forward vs float32 KV-cache decoder
        dec = ref.Decoder(cfg, W, len(ids))
        steps = np.array([dec.step(t) for t in ids], dtype=np.float64)
        ok &= check("forward (f64) vs cached decoder (f32)", np.abs(steps - full).max(), 1e-3)

        # 1b. rewinding the cache (as bench-decode does) = a fresh prefix + the new token
        dec = ref.Decoder(cfg, W, 9)
        for t in ids[:8]:
            dec.step(t)
        dec.step(20)
        dec.pos = 8
        again = dec.step(30).astype(np.float64)
        ok &= check("cached decoder rewound one step", np.abs(again - ref.forward(cfg, W, ids[:8] + [30])[-1]).max(), 1e-3)

        # 2. causality
        ok &= check("prefix logits unchanged by later tokens", np.abs(ref.forward(cfg, W, ids[:7]) - full[:7]).max(), 1e-12)

        # 3. RoPE properties
        rng = np.random.default_rng(1)
        hd = 8
        q, k = rng.normal(size=(1, 1, hd)), rng.normal(size=(1, 1, hd))
        def rot(x, p):
            c, s = ref.rope_tables([p], hd, 10000.0)
            return ref.apply_rope(x, c, s)
        ok &= check("RoPE keeps the norm", abs(np.linalg.norm(rot(q, 17)) - np.linalg.norm(q)), 1e-12)
        dots = [float((rot(q, p + 5) * rot(k, p)).sum()) for p in (0, 3, 40)]
        ok &= check("RoPE q·k depends on the offset only", max(dots) - min(dots), 1e-12)
        # position 1, pair i=0 rotates by exactly 1 radian: (x0, x4) -> (x0 cos1 - x4 sin1, x4 cos1 + x0 sin1)
        e = np.zeros((1, 1, hd)); e[0, 0, 0] = 1.0
        r = rot(e, 1)[0, 0]
        ok &= check("RoPE pair (0, hd/2) convention", abs(r[0] - np.cos(1)) + abs(r[hd // 2] - np.sin(1)) + np.abs(np.delete(r, [0, hd // 2])).sum(), 1e-15)

        # 4. GQA head mapping: KVH=1 == MHA with the single K/V head copied to every head
        gqa = os.path.join(tmp, "gqa")
        make_model(gqa, H=4, KVH=1, seed=3)
        cfg_g, W_g = load(gqa)
        cfg_m = dict(cfg_g, KVH=4)
        W_m = {**W_g, "layers": [dict(lw, wk=np.tile(lw["wk"], (4, 1)), wv=np.tile(lw["wv"], (4, 1))) for lw in W_g["layers"]]}
        ok &= check("GQA 4/1 == MHA with copied K/V heads", np.abs(ref.forward(cfg_g, W_g, ids) - ref.forward(cfg_m, W_m, ids)).max(), 1e-10)
        # and with KVH=2, query heads 0,1 read kv head 0: copy kv head 0 -> [0,0,1,1]
        g2 = os.path.join(tmp, "gqa2")
        make_model(g2, H=4, KVH=2, seed=4)
        cfg_2, W_2 = load(g2)
        hd2 = cfg_2["hd"]
        def expand(w):
            return np.concatenate([w[0:hd2], w[0:hd2], w[hd2:2 * hd2], w[hd2:2 * hd2]])
        W_2m = {**W_2, "layers": [dict(lw, wk=expand(lw["wk"]), wv=expand(lw["wv"])) for lw in W_2["layers"]]}
        ok &= check("GQA 4/2 == MHA with K/V heads [0,0,1,1]", np.abs(ref.forward(cfg_2, W_2, ids) - ref.forward(dict(cfg_2, KVH=4), W_2m, ids)).max(), 1e-10)

        # 5. storage variants
        unf = os.path.join(tmp, "unfused")
        make_model(unf, fused=False)
        ok &= check("unfused q/k/v == fused qkv", np.abs(ref.forward(*load(unf), ids) - full).max(), 0.0)
        f16 = os.path.join(tmp, "f16")
        t16 = make_model(f16, storage="f16")
        cfg16, W16 = load(f16)
        ok &= check("F16 file loads exactly as float16 values", np.abs(W16["layers"][0]["wq"] - t16["model.layers.0.self_attn.qkv_proj.weight"][:16].astype(np.float64)).max(), 0.0)
        i8 = os.path.join(tmp, "i8")
        t8 = make_model(i8, storage="i8")
        _, W8 = load(i8)
        name = "model.layers.1.mlp.down_proj.weight"
        expect = t8[name].astype(np.float64) * t8[name + ".scale"].astype(np.float64)[:, None]
        ok &= check("I8 dequantised as int8 * scale[row]", np.abs(W8["layers"][1]["down"] - expect).max(), 0.0)
        ok &= check("I8 model close to the F32 one", np.abs(ref.forward(*load(i8), ids) - full).max() / np.abs(full).max(), 0.1)
        untied = os.path.join(tmp, "untied")
        make_model(untied, tied=False)
        cfg_u, W_u = load(untied)
        # Same seed, so everything but the head matches the tied model: the logits must differ.
        moved = np.abs(ref.forward(cfg_u, W_u, ids) - full).max()
        print(f"{'ok  ' if moved > 1e-3 else 'FAIL'} untied head is used: logits move by {moved:.3g} (need > 0.001)")
        ok &= moved > 1e-3

        # 6. scalar loops
        tiny = os.path.join(tmp, "tiny")
        make_model(tiny, V=11, d=8, L=2, H=2, KVH=1, F=12, seed=5)
        cfg_t, W_t = load(tiny)
        tids = [1, 7, 3, 3, 10, 0]
        ok &= check("vectorised forward vs scalar loops", np.abs(ref.forward(cfg_t, W_t, tids) - naive_forward(cfg_t, W_t, tids)).max(), 1e-10)

        # bad input: errors name the file
        bad = os.path.join(tmp, "bad")
        make_model(bad)
        with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
            f.truncate(100)
        try:
            load(bad)
            print("FAIL truncated file accepted")
            ok = False
        except ref.ModelError as e:
            ok &= check(f"truncated file rejected ({e})", 0 if "model.safetensors" in str(e) else 1, 0)

    print("all reference self-checks passed" if ok else "SOME REFERENCE SELF-CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
