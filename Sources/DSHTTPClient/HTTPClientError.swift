import DSHTTP1
import DSSystem

/// What can go wrong in one exchange. Each case says at which step it failed, so a caller can
/// word it its own way (the Docker client's "engine" messages, the heartbeat's L4/L7 codes).
package enum HTTPClientError: Error, Sendable, CustomStringConvertible {
    /// The request could not be framed (a CR or LF in a field, a field the client frames itself).
    case invalidRequest(String)
    /// No connection: refused, no such socket, unreachable, or out of descriptors (the call and
    /// its errno say which; `SyscallError.isLocalResourceExhaustion` tells the local cases).
    case connectFailed(SyscallError)
    /// The connection was not established within the connect timeout (or the deadline, when
    /// there is no separate connect timeout).
    case connectTimedOut
    /// Connected, but the response (for a stream: its head) was not complete by the deadline.
    case timedOut(headReceived: Bool)
    /// The response head is not valid HTTP/1.1 (or exceeds the limits).
    case malformedHead(HTTPParseError)
    /// The head frames its body in a way no client can trust (`Framing.response` refused it).
    case badFraming(HTTPParseError)
    /// The chunked body broke the chunked rules (`ChunkedDecoder`).
    case malformedChunkedBody(HTTPParseError)
    /// The body exceeds `HTTPClientOptions.maxBodyBytes` (whole responses only).
    case bodyTooLarge(limit: Int)
    /// The peer closed the connection before a complete response head.
    case closedBeforeHead
    /// The peer closed the connection inside the body: `expected` is the Content-Length, nil
    /// for a chunked body.
    case bodyCutShort(received: UInt64, expected: UInt64?)
    case sendFailed(SyscallError)
    case receiveFailed(SyscallError)

    package var description: String {
        switch self {
        case .invalidRequest(let reason): return "invalid request: \(reason)"
        case .connectFailed(let error): return "cannot connect: \(error)"
        case .connectTimedOut: return "connect timed out"
        case .timedOut(let headReceived):
            return headReceived ? "timed out before the body ended" : "timed out waiting for the response"
        case .malformedHead(let error): return "malformed response head: \(error)"
        case .badFraming(let error): return "bad response framing: \(error)"
        case .malformedChunkedBody(let error): return "malformed chunked body: \(error.message)"
        case .bodyTooLarge(let limit): return "response body larger than \(limit) bytes"
        case .closedBeforeHead: return "connection closed before a complete response head"
        case .bodyCutShort(let received, let expected?): return "response body cut short: \(received) of \(expected) bytes"
        case .bodyCutShort: return "chunked body cut short"
        case .sendFailed(let error): return "sending: \(error)"
        case .receiveFailed(let error): return "receiving: \(error)"
        }
    }
}
