import Foundation
import CMiniGPTKernels

// KV cache precision and the sliding window with attention sinks (phase 15).
//
// Precision. FP32 (default), FP16 (IEEE binary16, round to nearest even: relative error ≤ 2⁻¹¹) or
// INT8: symmetric with one FP32 scale per (layer, kv-head, position), separately for the key and
// the value of that position,
//
//   s = max_i |x_i| / 127 over the hd values,   q_i = round(x_i / s) ∈ [−127, 127],   |x_i − q_i·s| ≤ s/2.
//
// Why per token per head: a position is written once, when its token is processed, so its scale is
// known then and never has to change when later tokens arrive (a per-channel scale over positions
// would need re-quantizing the past, or a calibration pass). The scale costs 4 bytes per hd bytes
// (hd = 32: 12.5 % on top of INT8), still 3.6× smaller than FP32, and it tracks outlier tokens
// (attention sinks have large keys) without crushing every other position's resolution.
// Kernels dequantize inside the score and weighted-sum loops (CMiniGPTKernels/kv.c): nothing is
// expanded into a scratch FP32 copy.
//
// Window. With `window` W and `sinks` S, the cache holds W positions; when a step or prefill finds
// it full, the oldest non-sink positions are evicted StreamingLLM-style (Xiao et al. 2023) —
// `evictChunk` = W/4 at once (at least 1, at most W − S), so the memmove of the kept tail and the
// re-rotation of its keys happen once per W/4 tokens instead of every token. Attention therefore
// spans between W − W/4 and W positions. Each kept key is re-rotated at most ⌈(W − S)/chunk⌉ times
// in its life; in FP16/INT8 each re-rotation rounds once more (see `KVCache.evict`).

/// Storage type of the KV cache.
public enum KVCacheDType: String, Codable, Sendable, CaseIterable {
    /// IEEE single precision (4 bytes per element; the default).
    case float32
    /// IEEE half precision (2 bytes per element).
    case float16
    /// Symmetric INT8 (1 byte per element) with an FP32 scale per (layer, kv-head, position).
    case int8

    /// Bytes per cached element (not counting INT8 scales).
    public var elementBytes: Int {
        switch self {
        case .float32: return 4
        case .float16: return 2
        case .int8: return 1
        }
    }
}

/// How a `Session` stores its KV cache: precision, and an optional sliding window with attention
/// sinks. The `kv_cache` key of `config.json`: `{"dtype": "int8", "window": 64, "sinks": 4}`.
public struct KVCacheOptions: Codable, Sendable, Equatable {
    /// Element type of keys and values.
    public var dtype: KVCacheDType
    /// Positions the cache holds when rolling; nil = no window (a full cache is a precondition failure).
    public var window: Int?
    /// Leading positions a rolling window never evicts (the task instruction, the attention sinks).
    public var sinks: Int

    /// FP32, no window: the engine's behaviour before phase 15.
    public init(dtype: KVCacheDType = .float32, window: Int? = nil, sinks: Int = 0) {
        self.dtype = dtype
        self.window = window
        self.sinks = sinks
    }

    /// Positions evicted at once when a rolling window is full: a quarter of the window, clamped to
    /// 1...(window − sinks). 0 without a window.
    public var evictChunk: Int {
        guard let w = window else { return 0 }
        return max(1, min(w / 4, w - sinks))
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case dtype, window, sinks }

    /// Decodes `{"dtype": …, "window": …, "sinks": …}`; unknown keys and bad values are errors
    /// naming the key path (`kv_cache.window`).
    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        for key in any.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
            throw ModelConfigError.unknownKey("kv_cache.\(key.stringValue)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dtype = .float32
        if let s = try? c.decodeIfPresent(String.self, forKey: .dtype) {
            guard let v = KVCacheDType(rawValue: s) else {
                throw ModelConfigError.invalid(key: "kv_cache.dtype", expected: "\"float32\", \"float16\" or \"int8\"", found: "\"\(s)\"")
            }
            dtype = v
        } else if c.contains(.dtype) {
            throw ModelConfigError.invalid(key: "kv_cache.dtype", expected: "\"float32\", \"float16\" or \"int8\"", found: "a non-string value")
        }
        func integer(_ key: CodingKeys) throws -> Int? {
            guard c.contains(key), !(try c.decodeNil(forKey: key)) else { return nil }
            guard let v = try? c.decode(Double.self, forKey: key), v == v.rounded(), abs(v) < 1e9 else {
                throw ModelConfigError.invalid(key: "kv_cache.\(key.rawValue)", expected: "an integer", found: "a non-integer value")
            }
            return Int(v)
        }
        window = try integer(.window)
        sinks = try integer(.sinks) ?? 0
        try validate()
    }

    /// Writes `dtype`, `sinks` and (when set) `window`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dtype.rawValue, forKey: .dtype)
        try c.encodeIfPresent(window, forKey: .window)
        try c.encode(sinks, forKey: .sinks)
    }

    /// Checks the window and sinks (and, given the model's context, that the window fits the trained
    /// positions); errors name the `kv_cache.*` key.
    public func validate(maxPositions: Int? = nil) throws {
        if sinks < 0 {
            throw ModelConfigError.invalid(key: "kv_cache.sinks", expected: "an integer ≥ 0", found: "\(sinks)")
        }
        guard let w = window else {
            if sinks != 0 {
                throw ModelConfigError.invalid(key: "kv_cache.sinks", expected: "0 without a window (sinks only matter when the window rolls)", found: "\(sinks)")
            }
            return
        }
        if w < 2 {
            throw ModelConfigError.invalid(key: "kv_cache.window", expected: "an integer ≥ 2", found: "\(w)")
        }
        if sinks >= w {
            throw ModelConfigError.invalid(key: "kv_cache.sinks", expected: "fewer than the window (\(w))", found: "\(sinks)")
        }
        if let m = maxPositions, w > m {
            throw ModelConfigError.invalid(key: "kv_cache.window", expected: "≤ max_position_embeddings (\(m)), the trained positions", found: "\(w)")
        }
    }
}

/// The keys and values of every layer and KV head of one session, in FP32, FP16 or INT8, allocated
/// once. Keys are stored transposed, (layers, KVH, hd, capacity), so 16 consecutive positions' scores
/// are 16 lanes of one FMA per head dimension; values are (layers, KVH, capacity, hd), read row by
/// row in the weighted sum. INT8 adds key and value scales, (layers, KVH, capacity) each.
///
/// Not thread-safe; owned by a `Session`. Nothing here allocates after init.
public final class KVCache: @unchecked Sendable {
    /// Element type.
    public let dtype: KVCacheDType
    /// Shape: layers, KV heads per layer, head width, positions held.
    public let layers: Int, kvHeads: Int, headDim: Int, capacity: Int

    private let keys: UnsafeMutableRawPointer    // (layers, KVH, hd, capacity) elements of `dtype`
    private let values: UnsafeMutableRawPointer  // (layers, KVH, capacity, hd)
    private let keyScales: FloatBuffer           // (layers, KVH, capacity), INT8 only
    private let valueScales: FloatBuffer         // (layers, KVH, capacity), INT8 only

    /// A zeroed cache of `capacity` positions for `config`'s layers and KV heads.
    public init(config c: ModelConfig, capacity: Int, dtype: KVCacheDType) {
        precondition(capacity > 0, "KV cache capacity must be > 0")
        (self.dtype, layers, kvHeads, headDim, self.capacity) = (dtype, c.numHiddenLayers, c.numKeyValueHeads, c.headDim, capacity)
        let bytes = c.numHiddenLayers * c.numKeyValueHeads * capacity * c.headDim * dtype.elementBytes
        keys = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        values = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
        keys.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1))
        values.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 1))
        let scales = dtype == .int8 ? c.numHiddenLayers * c.numKeyValueHeads * capacity : 0
        keyScales = FloatBuffer(count: scales)
        valueScales = FloatBuffer(count: scales)
    }

    /// Reads every cached key, value and scale once (`Transformer.warmCaches`). Allocation-free.
    func touch() -> UInt64 {
        let bytes = layers * kvHeads * capacity * headDim * dtype.elementBytes
        return mgk_touch(keys, bytes) &+ mgk_touch(values, bytes)
            &+ mgk_touch(keyScales.pointer, 4 * keyScales.count) &+ mgk_touch(valueScales.pointer, 4 * valueScales.count)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes one cached position occupies over all layers and KV heads (keys, values, INT8 scales).
    public var bytesPerPosition: Int {
        layers * kvHeads * (2 * headDim * dtype.elementBytes + (dtype == .int8 ? 8 : 0))
    }

    /// Bytes held by the whole cache.
    public var bytes: Int { bytesPerPosition * capacity }

    // Element offsets of one (layer, kv-head) slab; the same for keys and values.
    @inline(__always) private func slab(_ layer: Int, _ kv: Int) -> Int { (layer * kvHeads + kv) * capacity * headDim }
    @inline(__always) private func scaleBase(_ layer: Int, _ kv: Int) -> Int { (layer * kvHeads + kv) * capacity }
    @inline(__always) private func f32(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Float> { p.assumingMemoryBound(to: Float.self) }
    @inline(__always) private func f16(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt16> { p.assumingMemoryBound(to: UInt16.self) }
    @inline(__always) private func i8(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Int8> { p.assumingMemoryBound(to: Int8.self) }

    /// Writes the (already rotated) key `k (hd)` and value `v (hd)` of position `pos`.
    @inline(__always)
    public func store(layer l: Int, kvHead kv: Int, position pos: Int, key k: UnsafePointer<Float>, value v: UnsafePointer<Float>) {
        let (hd, cap) = (headDim, capacity)
        let base = slab(l, kv)
        switch dtype {
        case .float32:
            let kp = f32(keys) + base + pos
            for i in 0..<hd { kp[i * cap] = k[i] }
            (f32(values) + base + pos * hd).update(from: v, count: hd)
        case .float16:
            mgk_kv_store_f16(f16(keys) + base + pos, Int32(cap), k, Int32(hd))
            mgk_kv_store_f16(f16(values) + base + pos * hd, 1, v, Int32(hd))
        case .int8:
            let s = scaleBase(l, kv) + pos
            keyScales.pointer[s] = mgk_kv_store_i8(i8(keys) + base + pos, Int32(cap), k, Int32(hd))
            valueScales.pointer[s] = mgk_kv_store_i8(i8(values) + base + pos * hd, 1, v, Int32(hd))
        }
    }

    /// Writes the (already rotated) keys and values of `T` consecutive positions `pos..<pos+T`:
    /// key j at `k + j·ld`, value j at `v + j·ld` (rows of a batched prefill's QKV). The same
    /// stored bits as `T` calls of `store`; INT8 runs as one C call (`mgk_kv_store_block_i8`).
    @inline(__always)
    public func storeBlock(layer l: Int, kvHead kv: Int, position pos: Int, count T: Int,
                           keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, ld: Int) {
        guard dtype == .int8 else {
            for t in 0..<T { store(layer: l, kvHead: kv, position: pos + t, key: k + t * ld, value: v + t * ld) }
            return
        }
        let (hd, cap) = (headDim, capacity)
        let base = slab(l, kv), s = scaleBase(l, kv) + pos
        mgk_kv_store_block_i8(i8(keys) + base + pos, keyScales.pointer + s, i8(values) + base + pos * hd, valueScales.pointer + s,
                              Int32(cap), k, v, Int32(ld), Int32(T), Int32(hd))
    }

    /// The key and value of position `pos` as stored, dequantized to FP32: `k (hd)`, `v (hd)`.
    public func load(layer l: Int, kvHead kv: Int, position pos: Int, key k: UnsafeMutablePointer<Float>, value v: UnsafeMutablePointer<Float>) {
        let (hd, cap) = (headDim, capacity)
        let base = slab(l, kv)
        switch dtype {
        case .float32:
            for i in 0..<hd { k[i] = f32(keys)[base + i * cap + pos] }
            v.update(from: f32(values) + base + pos * hd, count: hd)
        case .float16:
            mgk_kv_load_f16(k, f16(keys) + base + pos, Int32(cap), Int32(hd))
            mgk_kv_load_f16(v, f16(values) + base + pos * hd, 1, Int32(hd))
        case .int8:
            let s = scaleBase(l, kv) + pos
            mgk_kv_load_i8(k, i8(keys) + base + pos, Int32(cap), keyScales.pointer[s], Int32(hd))
            mgk_kv_load_i8(v, i8(values) + base + pos * hd, 1, valueScales.pointer[s], Int32(hd))
        }
    }

    /// The `G` query heads `q (G, hd)` sharing KV head `kv` of layer `l` attend over its first `n`
    /// positions: `out (G, hd)`, probabilities `p (G, pstride)`.
    @inline(__always)
    public func attend(_ out: UnsafeMutablePointer<Float>, _ p: UnsafeMutablePointer<Float>, pstride: Int, _ q: UnsafePointer<Float>,
                       layer l: Int, kvHead kv: Int, groupSize G: Int, n: Int, scale: Float) {
        let base = slab(l, kv), s = scaleBase(l, kv)
        let (g, nn, hd, cap) = (Int32(G), Int32(n), Int32(headDim), Int32(capacity))
        switch dtype {
        case .float32:
            mgk_attention_group_f32(out, p, Int32(pstride), q, f32(keys) + base, f32(values) + base, g, nn, hd, cap, scale)
        case .float16:
            mgk_attention_group_f16(out, p, Int32(pstride), q, f16(keys) + base, f16(values) + base, g, nn, hd, cap, scale)
        case .int8:
            mgk_attention_group_i8(out, p, Int32(pstride), q, i8(keys) + base, keyScales.pointer + s,
                                   i8(values) + base, valueScales.pointer + s, g, nn, hd, cap, scale)
        }
    }

    /// Causal attention of `T` tokens × `G` query heads (rows of `q`, stride `ldq`) at positions
    /// `n0..<n0+T` over KV head `kv` of layer `l`: `out` rows of stride `ldo`, probabilities
    /// `p (T·G, pstride)`. As `mgk_attention_block_f32`.
    @inline(__always)
    public func attendBlock(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ p: UnsafeMutablePointer<Float>, pstride: Int,
                            _ q: UnsafePointer<Float>, ldq: Int, layer l: Int, kvHead kv: Int,
                            tokens T: Int, groupSize G: Int, start n0: Int, scale: Float) {
        let base = slab(l, kv), s = scaleBase(l, kv)
        let (t, g, n, hd, cap) = (Int32(T), Int32(G), Int32(n0), Int32(headDim), Int32(capacity))
        switch dtype {
        case .float32:
            mgk_attention_block_f32(out, Int32(ldo), p, Int32(pstride), q, Int32(ldq), f32(keys) + base, f32(values) + base,
                                    t, g, n, hd, cap, scale)
        case .float16:
            mgk_attention_block_f16(out, Int32(ldo), p, Int32(pstride), q, Int32(ldq), f16(keys) + base, f16(values) + base,
                                    t, g, n, hd, cap, scale)
        case .int8:
            mgk_attention_block_i8(out, Int32(ldo), p, Int32(pstride), q, Int32(ldq), i8(keys) + base, keyScales.pointer + s,
                                   i8(values) + base, valueScales.pointer + s, t, g, n, hd, cap, scale)
        }
    }

    /// Removes positions `start..<start+count` of the first `position` ones: later positions slide
    /// down (one memmove per key row, value slab and scale row) and their keys are re-rotated by
    /// −count positions, `cos`/`sin (hd/2)` being the RoPE table row of position `count`.
    /// FP32 rotates in place exactly as before phase 15; FP16 rotates in FP32 and rounds back once
    /// (≤ 2⁻¹¹ relative); INT8 dequantizes each moved key, rotates it in FP32 and requantizes it with
    /// a fresh scale (≤ s/2 more per element). Allocates nothing.
    public func evict(from start: Int, count: Int, position: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let (hd, cap, e) = (headDim, capacity, dtype.elementBytes)
        let half = hd / 2
        let moved = position - start - count
        guard count > 0, moved >= 0 else { return }
        for l in 0..<layers {
            for kv in 0..<kvHeads {
                let base = slab(l, kv)
                let vDst = values + (base + start * hd) * e
                memmove(vDst, vDst + count * hd * e, moved * hd * e)
                for i in 0..<hd {
                    let row = keys + (base + i * cap + start) * e
                    memmove(row, row + count * e, moved * e)
                }
                let s = scaleBase(l, kv) + start
                if dtype == .int8 {
                    memmove(keyScales.pointer + s, keyScales.pointer + s + count, moved * 4)
                    memmove(valueScales.pointer + s, valueScales.pointer + s + count, moved * 4)
                }
                switch dtype {
                case .float32:  // rotate by −count: cos(−a) = cos a, sin(−a) = −sin a
                    let k = f32(keys) + base
                    for i in 0..<half {
                        let ra = k + i * cap + start, rb = k + (i + half) * cap + start
                        let cs = cos[i], sn = sin[i]
                        for s in 0..<moved {
                            let a = ra[s], b = rb[s]
                            ra[s] = a * cs + b * sn
                            rb[s] = b * cs - a * sn
                        }
                    }
                case .float16:
                    mgk_kv_rotate_back_f16(f16(keys) + base + start, Int32(cap), Int32(moved), cos, sin, Int32(hd))
                case .int8:
                    mgk_kv_rotate_back_i8(i8(keys) + base + start, keyScales.pointer + s, Int32(cap), Int32(moved), cos, sin, Int32(hd))
                }
            }
        }
    }
}
