import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The real-time path: everything here copies through caller-owned buffers and performs no Swift
// heap allocation, so the daemon's tick can call it (STYLE.md §5). Only the error paths allocate
// (building a `ZMQError`), and they end the tick anyway.
//
// libzmq semantics relied on (zmq_send(3), zmq_recv(3), zmq_poll(3)):
// - zmq_send copies the buffer into a zmq_msg_t (inline up to 33 bytes, malloc inside libzmq above);
// - zmq_recv copies at most `len` bytes and returns the part's real size, so size > len = truncated;
// - multipart messages are delivered atomically: after part 0 has arrived the rest are there too.

extension ZMQSocket {
    /// Sends one part; false on EAGAIN (only possible with ZMQ_DONTWAIT). Retries on EINTR.
    @inline(__always)
    func sendPart(_ h: UnsafeMutableRawPointer, _ bytes: UnsafeRawBufferPointer, flags: Int32) throws -> Bool {
        while zmq_send(h, bytes.baseAddress, bytes.count, flags) < 0 {
            let e = zmq_errno()
            if e == EINTR { continue }
            if e == EAGAIN { return false }
            throw ZMQError(errno: e, operation: "zmq_send", endpoint: endpoint)
        }
        return true
    }

    /// Sends the two-part envelope `[topic, payload]` without allocating. Returns false when
    /// `dontWait` is set and libzmq would block (nothing is sent then). A PUB socket never blocks.
    @discardableResult
    public func send(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, dontWait: Bool) throws -> Bool {
        let h = try open("zmq_send")
        let wait: Int32 = dontWait ? ZMQ_DONTWAIT : 0
        guard try sendPart(h, topic, flags: wait | ZMQ_SNDMORE) else { return false }
        // The first part was accepted, so the second cannot meet EAGAIN (atomic multipart).
        guard try sendPart(h, payload, flags: wait) else {
            throw ZMQError(errno: EAGAIN, operation: "zmq_send (payload after topic)", endpoint: endpoint)
        }
        return true
    }

    /// Receives one `[topic, payload]` envelope into the caller's buffers without allocating.
    ///
    /// Returns nil when `dontWait` is set and no message is waiting (otherwise it blocks; call
    /// `poll(timeoutMs:)` first for a bounded wait). The lengths are the parts' *real* sizes as
    /// libzmq reports them, which may exceed the buffers: then `truncated` is true and each buffer
    /// holds only its first `min(length, buffer.count)` bytes. `truncated` is also true when the
    /// message had more than two parts (the extra parts are received and discarded), so the
    /// caller can drop and count every frame that does not fit the envelope. A one-part message
    /// reports `payloadLength == 0`.
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer,
        topicBuffer: UnsafeMutableRawBufferPointer,
        dontWait: Bool
    ) throws -> (topicLength: Int, payloadLength: Int, truncated: Bool)? {
        let h = try open("zmq_recv")
        guard let topicLength = try receivePart(h, topicBuffer, flags: dontWait ? ZMQ_DONTWAIT : 0) else {
            return nil
        }
        var truncated = topicLength > topicBuffer.count
        var payloadLength = 0
        if try hasMore(h) {
            payloadLength = try receivePart(h, buffer, flags: 0) ?? 0
            truncated = truncated || payloadLength > buffer.count
            // Anything beyond [topic, payload] does not fit the envelope: drain and discard it.
            while try hasMore(h) {
                truncated = true
                var msg = zmq_msg_t()
                zmq_msg_init(&msg)
                while zmq_msg_recv(&msg, h, 0) < 0 {
                    let e = zmq_errno()
                    if e == EINTR { continue }
                    zmq_msg_close(&msg)
                    throw ZMQError(errno: e, operation: "zmq_msg_recv (discarding extra part)", endpoint: endpoint)
                }
                zmq_msg_close(&msg)
            }
        }
        return (topicLength, payloadLength, truncated)
    }

    /// Waits up to `timeoutMs` (-1 = forever, 0 = just check) until a message can be received.
    /// A signal (EINTR) resumes the wait for the time that is left. No allocation.
    public func poll(timeoutMs: Int32) throws -> Bool {
        let h = try open("zmq_poll")
        var item = zmq_pollitem_t(socket: h, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let deadline = timeoutMs > 0 ? monotonicMs() + Int64(timeoutMs) : 0
        var remaining = Int(timeoutMs)
        while true {
            let rc = zmq_poll(&item, 1, remaining)
            if rc >= 0 { return rc > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0 }
            let e = zmq_errno()
            guard e == EINTR else { throw ZMQError(errno: e, operation: "zmq_poll", endpoint: endpoint) }
            if timeoutMs > 0 { remaining = Int(max(0, deadline - monotonicMs())) }
        }
    }

    /// The file descriptor libzmq signals when this socket's state may have changed (`ZMQ_FD`):
    /// wait for it to become readable with poll(2)/ppoll(2), then ask `hasInput`. It is not the
    /// data connection and is edge-like: always check `hasInput` before waiting on it, since a
    /// message may already be queued without the descriptor being readable (zmq_getsockopt(3)).
    public var fileDescriptor: Int32 {
        get throws {
            let h = try open("zmq_getsockopt(ZMQ_FD)")
            var fd: Int32 = -1
            var size = MemoryLayout<Int32>.size
            guard zmq_getsockopt(h, ZMQ_FD, &fd, &size) == 0 else {
                throw ZMQError(operation: "zmq_getsockopt(ZMQ_FD)", endpoint: endpoint)
            }
            return fd
        }
    }

    /// True when a message can be received now (`ZMQ_EVENTS` has `ZMQ_POLLIN`). Reading
    /// `ZMQ_EVENTS` also processes libzmq's pending commands, which re-arms `fileDescriptor`.
    /// No allocation.
    public var hasInput: Bool {
        get throws {
            let h = try open("zmq_getsockopt(ZMQ_EVENTS)")
            var events: Int32 = 0
            var size = MemoryLayout<Int32>.size
            while zmq_getsockopt(h, ZMQ_EVENTS, &events, &size) != 0 {
                let e = zmq_errno()
                if e == EINTR { continue }
                throw ZMQError(errno: e, operation: "zmq_getsockopt(ZMQ_EVENTS)", endpoint: endpoint)
            }
            return events & ZMQ_POLLIN != 0
        }
    }

    /// Receives one part with zmq_recv; returns its real size, or nil on EAGAIN.
    @inline(__always)
    func receivePart(_ h: UnsafeMutableRawPointer, _ into: UnsafeMutableRawBufferPointer, flags: Int32) throws -> Int? {
        while true {
            let n = zmq_recv(h, into.baseAddress, into.count, flags)
            if n >= 0 { return Int(n) }
            let e = zmq_errno()
            if e == EINTR { continue }
            if e == EAGAIN { return nil }
            throw ZMQError(errno: e, operation: "zmq_recv", endpoint: endpoint)
        }
    }

    /// Whether the part just received has more parts after it (ZMQ_RCVMORE).
    @inline(__always)
    func hasMore(_ h: UnsafeMutableRawPointer) throws -> Bool {
        var more: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(h, ZMQ_RCVMORE, &more, &size) == 0 else {
            throw ZMQError(operation: "zmq_getsockopt(ZMQ_RCVMORE)", endpoint: endpoint)
        }
        return more != 0
    }
}

/// Milliseconds on the monotonic clock (for EINTR-resumed waits).
@inline(__always)
func monotonicMs() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
