/// What can go wrong talking to the engine. `engine` carries the engine's own message.
package enum DockerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The socket is missing or refused, or the engine closed the connection.
    case unreachable(String)
    /// No connection, or no complete answer, within the call's timeout.
    case timedOut(String)
    /// The engine answered with an error status; `message` is its own text.
    case engine(status: Int, message: String)
    /// The bytes were not the HTTP/JSON we expect.
    case protocolError(String)

    package var description: String {
        switch self {
        case .unreachable(let reason): return "Docker engine unreachable: \(reason)"
        case .timedOut(let reason): return "Docker engine timed out: \(reason)"
        case .engine(let status, let message): return "Docker engine error \(status): \(message)"
        case .protocolError(let reason): return "Docker engine protocol error: \(reason)"
        }
    }

    package var status: Int? {
        if case .engine(let status, _) = self { return status }
        return nil
    }
}
