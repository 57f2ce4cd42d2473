import CZeroMQ

/// A failed libzmq call: which call, on which endpoint, and libzmq's own text for `errno`
/// (`zmq_strerror`, which also knows the ZeroMQ-specific codes such as `ETERM` and `EFSM`).
public struct ZMQError: Error, CustomStringConvertible, Equatable {
    /// The error code libzmq reported (`zmq_errno()` right after the failing call).
    public let errno: Int32
    /// The C call that failed, e.g. `zmq_bind`.
    public let operation: String
    /// The endpoint the socket was bound or connected to, or the one being bound/connected
    /// (empty when the socket has none yet).
    public let endpoint: String

    /// Creates an error value; `errno` defaults to libzmq's current error code.
    public init(errno: Int32 = zmq_errno(), operation: String, endpoint: String = "") {
        self.errno = errno
        self.operation = operation
        self.endpoint = endpoint
    }

    /// `zmq_bind(tcp://127.0.0.1:99999): Invalid argument (errno 22)`.
    public var description: String {
        let text = String(cString: zmq_strerror(errno))
        let target = endpoint.isEmpty ? "" : "(\(endpoint))"
        return "\(operation)\(target): \(text) (errno \(errno))"
    }
}
