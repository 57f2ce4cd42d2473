import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context: the I/O thread(s) every socket of a process shares.
///
/// A context is thread-safe (libzmq guarantees it), hence `Sendable`. Sockets keep their context
/// alive, so `deinit` (which calls `zmq_ctx_term`) runs only after the last socket has closed;
/// sockets default to LINGER 0, so termination never waits on a peer that went away.
public final class ZMQContext: @unchecked Sendable {
    /// The `void *` returned by `zmq_ctx_new`.
    let handle: UnsafeMutableRawPointer

    /// Creates a context with libzmq's defaults (one I/O thread).
    public init() throws {
        guard let h = zmq_ctx_new() else { throw ZMQError(operation: "zmq_ctx_new") }
        handle = h
    }

    deinit {
        // zmq_ctx_term may be interrupted by a signal (EINTR); it must be called again then.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Runs libzmq's I/O thread(s) under SCHED_FIFO at `priority` (`ZMQ_THREAD_SCHED_POLICY`,
    /// `ZMQ_THREAD_PRIORITY`): every message to and from a real-time loop passes through them.
    /// Takes effect only before the first socket is created (libzmq starts its threads then); a
    /// refusal by the OS is silent in libzmq (the threads keep the default scheduler).
    public func setIOThreadRealtime(priority: Int32) throws {
        guard zmq_ctx_set(handle, ZMQ_THREAD_SCHED_POLICY, Int32(SCHED_FIFO)) == 0,
              zmq_ctx_set(handle, ZMQ_THREAD_PRIORITY, priority) == 0 else {
            throw ZMQError(operation: "zmq_ctx_set(ZMQ_THREAD_SCHED_POLICY SCHED_FIFO, ZMQ_THREAD_PRIORITY \(priority))")
        }
    }

    /// libzmq's version as (major, minor, patch), e.g. (4, 3, 5).
    public static var version: (major: Int32, minor: Int32, patch: Int32) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (major, minor, patch)
    }
}
