import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The ZeroMQ socket patterns MiniGPT uses (zmq_socket(3)).
public enum ZMQSocketType: Sendable {
    /// Publisher: fans every message out to all subscribers; drops at the high-water mark.
    case pub
    /// Subscriber: receives messages whose first part starts with a subscribed prefix.
    case sub
    /// Exclusive pair between two sockets.
    case pair
    /// Pipeline sender: round-robins to pullers; blocks (or EAGAIN) at the high-water mark.
    case push
    /// Pipeline receiver.
    case pull

    /// The libzmq constant.
    var raw: Int32 {
        switch self {
        case .pub: return ZMQ_PUB
        case .sub: return ZMQ_SUB
        case .pair: return ZMQ_PAIR
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        }
    }
}

/// One libzmq socket.
///
/// Threading: libzmq sockets are not thread-safe. A socket may be created on one thread and
/// handed to another (hence `@unchecked Sendable`, so the daemon can move it onto its loop
/// thread), but it must be used by one thread at a time.
///
/// Two ways to send and receive:
/// - convenience: `send(_ parts:)` / `receive(timeoutMs:)` with `[[UInt8]]` (allocates);
/// - real time: `send(topic:payload:dontWait:)` / `receive(into:topicBuffer:dontWait:)` /
///   `poll(timeoutMs:)`, which copy through caller-owned buffers and allocate nothing in Swift
///   (libzmq itself stores messages of up to 33 bytes inline and mallocs larger ones).
///
/// Every call retries on EINTR. Failures throw `ZMQError` naming the call and the endpoint.
/// New sockets get LINGER 0 (see docs/protocol.md: shutdown must never wait on a dead peer).
public final class ZMQSocket: @unchecked Sendable {
    /// The context this socket lives in (kept alive as long as this object).
    public let context: ZMQContext
    /// The socket pattern.
    public let type: ZMQSocketType
    /// The last endpoint given to `bind` or `connect` (for error messages).
    public private(set) var endpoint: String = ""
    /// The `void *` from `zmq_socket`; nil once closed.
    var handle: UnsafeMutableRawPointer?

    /// Creates a socket of `type` in `context`, with LINGER 0.
    public init(context: ZMQContext, type: ZMQSocketType) throws {
        guard let h = zmq_socket(context.handle, type.raw) else {
            throw ZMQError(operation: "zmq_socket")
        }
        self.context = context
        self.type = type
        self.handle = h
        try setLinger(ms: 0)
    }

    deinit { close() }

    /// Closes the socket (idempotent). Pending outgoing messages are dropped after LINGER.
    public func close() {
        if let h = handle {
            zmq_close(h)
            handle = nil
        }
    }

    /// The open handle, or an `ENOTSOCK` error naming `operation` once closed.
    @inline(__always)
    func open(_ operation: StaticString) throws -> UnsafeMutableRawPointer {
        guard let h = handle else {
            throw ZMQError(errno: ENOTSOCK, operation: "\(operation) on a closed socket", endpoint: endpoint)
        }
        return h
    }

    // MARK: - Endpoints

    /// Binds to `endpoint` (`tcp://127.0.0.1:5556`, `tcp://127.0.0.1:*` for an ephemeral port,
    /// `ipc:///tmp/name`, `inproc://name`). Read the chosen address back with `lastEndpoint`.
    public func bind(_ endpoint: String) throws {
        let h = try open("zmq_bind")
        guard zmq_bind(h, endpoint) == 0 else { throw ZMQError(operation: "zmq_bind", endpoint: endpoint) }
        self.endpoint = endpoint
    }

    /// Connects to `endpoint`. libzmq connects in the background and reconnects on its own; an
    /// error here means the address itself is malformed or its transport unsupported.
    public func connect(_ endpoint: String) throws {
        let h = try open("zmq_connect")
        guard zmq_connect(h, endpoint) == 0 else { throw ZMQError(operation: "zmq_connect", endpoint: endpoint) }
        self.endpoint = endpoint
    }

    /// Drops the connection made by `connect(endpoint)` (`zmq_disconnect`); connecting again
    /// starts a fresh session (and, for a SUB, resends its subscriptions).
    public func disconnect(_ endpoint: String) throws {
        let h = try open("zmq_disconnect")
        guard zmq_disconnect(h, endpoint) == 0 else { throw ZMQError(operation: "zmq_disconnect", endpoint: endpoint) }
    }

    /// The endpoint libzmq last bound or connected (`ZMQ_LAST_ENDPOINT`), with a wildcard port
    /// resolved: `tcp://127.0.0.1:*` reads back as `tcp://127.0.0.1:41234`.
    public var lastEndpoint: String {
        get throws {
            let h = try open("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            guard zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
                throw ZMQError(operation: "zmq_getsockopt(ZMQ_LAST_ENDPOINT)", endpoint: endpoint)
            }
            return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: - Options

    /// Subscribes a SUB socket to messages whose first part starts with `topic` (`""` = all).
    public func subscribe(_ topic: String) throws {
        let h = try open("zmq_setsockopt(ZMQ_SUBSCRIBE)")
        let bytes = Array(topic.utf8)
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(h, ZMQ_SUBSCRIBE, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError(operation: "zmq_setsockopt(ZMQ_SUBSCRIBE \"\(topic)\")", endpoint: endpoint) }
    }

    /// Sets the outgoing queue limit in messages (`ZMQ_SNDHWM`; 0 = unlimited). Set before
    /// bind/connect: libzmq applies it to pipes created afterwards.
    public func setSendHWM(_ n: Int32) throws { try setInt32(ZMQ_SNDHWM, n, "ZMQ_SNDHWM") }

    /// Sets the incoming queue limit in messages (`ZMQ_RCVHWM`; 0 = unlimited). Set before
    /// bind/connect.
    public func setReceiveHWM(_ n: Int32) throws { try setInt32(ZMQ_RCVHWM, n, "ZMQ_RCVHWM") }

    /// Sets how long `close` may keep unsent messages (`ZMQ_LINGER`; -1 = forever, 0 = drop).
    public func setLinger(ms: Int32) throws { try setInt32(ZMQ_LINGER, ms, "ZMQ_LINGER") }

    /// Sets the largest inbound message a peer may send (`ZMQ_MAXMSGSIZE`, -1 = no limit).
    /// A peer that exceeds it is disconnected by libzmq (the message never surfaces); enforced on
    /// tcp:// and ipc://, not on inproc://.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        let h = try open("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        var v = bytes
        guard zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError(operation: "zmq_setsockopt(ZMQ_MAXMSGSIZE \(bytes))", endpoint: endpoint)
        }
    }

    /// Keeps only the newest message in the queue (`ZMQ_CONFLATE`). Only for single-part
    /// messages: libzmq does not support it with multipart `[topic, payload]` envelopes.
    public func setConflate(_ on: Bool) throws { try setInt32(ZMQ_CONFLATE, on ? 1 : 0, "ZMQ_CONFLATE") }

    /// `ZMQ_SNDHWM` as libzmq reports it.
    public var sendHWM: Int32 { get throws { try getInt32(ZMQ_SNDHWM, "ZMQ_SNDHWM") } }
    /// `ZMQ_RCVHWM` as libzmq reports it.
    public var receiveHWM: Int32 { get throws { try getInt32(ZMQ_RCVHWM, "ZMQ_RCVHWM") } }
    /// `ZMQ_LINGER` in milliseconds as libzmq reports it.
    public var linger: Int32 { get throws { try getInt32(ZMQ_LINGER, "ZMQ_LINGER") } }
    /// `ZMQ_MAXMSGSIZE` in bytes as libzmq reports it (-1 = no limit).
    public var maxMessageSize: Int64 {
        get throws {
            let h = try open("zmq_getsockopt(ZMQ_MAXMSGSIZE)")
            var v: Int64 = 0
            var size = MemoryLayout<Int64>.size
            guard zmq_getsockopt(h, ZMQ_MAXMSGSIZE, &v, &size) == 0 else {
                throw ZMQError(operation: "zmq_getsockopt(ZMQ_MAXMSGSIZE)", endpoint: endpoint)
            }
            return v
        }
    }

    func setInt32(_ option: Int32, _ value: Int32, _ name: String) throws {
        let h = try open("zmq_setsockopt")
        var v = value
        guard zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError(operation: "zmq_setsockopt(\(name) \(value))", endpoint: endpoint)
        }
    }

    func getInt32(_ option: Int32, _ name: String) throws -> Int32 {
        let h = try open("zmq_getsockopt")
        var v: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(h, option, &v, &size) == 0 else {
            throw ZMQError(operation: "zmq_getsockopt(\(name))", endpoint: endpoint)
        }
        return v
    }

    // MARK: - Convenience send / receive (allocating)

    /// Sends `parts` as one multipart message. Returns false when `dontWait` is set and libzmq
    /// would block (EAGAIN: no peer or the queue is at its high-water mark); nothing is sent then.
    /// A PUB socket never blocks: at the high-water mark it drops silently.
    @discardableResult
    public func send(_ parts: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        let h = try open("zmq_send")
        guard !parts.isEmpty else {
            throw ZMQError(errno: EINVAL, operation: "zmq_send (a message needs at least one part, got none)", endpoint: endpoint)
        }
        for (i, part) in parts.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i < parts.count - 1 { flags |= ZMQ_SNDMORE }
            let sent = try part.withUnsafeBytes { try sendPart(h, $0, flags: flags) }
            if !sent {
                // libzmq queues multipart messages atomically: once the first part is accepted
                // the rest never see EAGAIN, so a refusal can only happen at part 0.
                guard i == 0 else {
                    throw ZMQError(errno: EAGAIN, operation: "zmq_send (part \(i) of \(parts.count))", endpoint: endpoint)
                }
                return false
            }
        }
        return true
    }

    /// Waits up to `timeoutMs` (-1 = forever, 0 = just check) for a message and returns all its
    /// parts, or nil on timeout.
    public func receive(timeoutMs: Int32) throws -> [[UInt8]]? {
        let h = try open("zmq_msg_recv")
        guard try poll(timeoutMs: timeoutMs) else { return nil }
        var parts: [[UInt8]] = []
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        repeat {
            let flags: Int32 = parts.isEmpty ? ZMQ_DONTWAIT : 0
            while zmq_msg_recv(&msg, h, flags) < 0 {
                let e = zmq_errno()
                if e == EINTR { continue }
                if e == EAGAIN && parts.isEmpty { return nil }  // another reader raced us
                throw ZMQError(errno: e, operation: "zmq_msg_recv", endpoint: endpoint)
            }
            let n = zmq_msg_size(&msg)
            if n == 0 {
                parts.append([])
            } else {
                let base = zmq_msg_data(&msg)!
                parts.append(Array(UnsafeRawBufferPointer(start: base, count: n)))
            }
        } while zmq_msg_more(&msg) != 0
        return parts
    }
}
