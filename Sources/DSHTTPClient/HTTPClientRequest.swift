import DSHTTP1
import DSSystem

/// Where a client connects: a TCP address, or a unix stream socket's path (the Docker engine).
package enum HTTPClientAddress: Sendable, CustomStringConvertible {
    case tcp(SocketAddress)
    case unix(path: String)

    package var description: String {
        switch self {
        case .tcp(let address): return "\(address)"
        case .unix(let path): return path
        }
    }
}

/// One request. The client frames it: the request line, `Host`, the caller's fields, then
/// `Connection: close` unless the connection is to be kept, and `Content-Length` for a body (or
/// 0 for a POST, PUT or PATCH without one: RFC 9110 §8.6 asks for it where a body is expected).
package struct HTTPClientRequest: Sendable {
    package var method: String
    /// Origin-form: "/v1.41/containers/json?all=1".
    package var target: String
    package var host: String
    /// End-to-end fields, in order. The framing and connection fields are the client's own.
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]?
    /// Keep the connection for the next request (the client's pool) when the server agrees.
    package var keepAlive: Bool

    package init(
        method: String, target: String, host: String, headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, keepAlive: Bool = true
    ) {
        self.method = method
        self.target = target
        self.host = host
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    private static let clientFields: Set<String> = ["host", "content-length", "transfer-encoding", "connection"]

    /// The bytes on the wire; refuses what would let a caller's text change the framing.
    package func serialized() throws(HTTPClientError) -> [UInt8] {
        guard !method.isEmpty, method.utf8.allSatisfy(Self.isTokenByte) else {
            throw .invalidRequest("method '\(method)' is not a token")
        }
        guard target.hasPrefix("/"), target.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .invalidRequest("target '\(target)' is not an origin-form path")
        }
        var text = "\(method) \(target) HTTP/1.1\r\n"
        try Self.appendField("Host", host, to: &text)
        for (name, value) in headers {
            guard !Self.clientFields.contains(name.lowercased()) else {
                throw .invalidRequest("field \(name) is set by the client")
            }
            try Self.appendField(name, value, to: &text)
        }
        if !keepAlive { text += "Connection: close\r\n" }
        if let body {
            text += "Content-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" || method == "PATCH" {
            text += "Content-Length: 0\r\n"
        }
        text += "\r\n"
        return Array(text.utf8) + (body ?? [])
    }

    private static func appendField(_ name: String, _ value: String, to text: inout String) throws(HTTPClientError) {
        guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
            throw .invalidRequest("field name '\(name)' is not a token")
        }
        // Field values may hold visible bytes, spaces and tabs; a CR, LF or NUL would end the field.
        guard value.utf8.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
            throw .invalidRequest("the value of \(name) holds a control character")
        }
        text += "\(name): \(value)\r\n"
    }

    /// RFC 9110 §5.6.2 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// A response head as a caller sees it: status, fields as text, and how the body is framed.
package struct HTTPClientResponseHead: Sendable {
    package let status: Int
    package let headers: [(name: String, value: String)]
    package let framing: BodyFraming

    /// The first field named `name` (case-insensitive).
    package func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// A whole response: its head and its body, de-chunked.
package struct HTTPClientResponse: Sendable {
    package let head: HTTPClientResponseHead
    package let body: [UInt8]

    package var status: Int { head.status }
    package func header(_ name: String) -> String? { head.header(name) }
}

/// Limits and timeouts shared by a client's requests.
package struct HTTPClientOptions: Sendable {
    package var limits: HTTPLimits
    /// The largest whole body accepted (a streamed body has no limit: it is handed on as it comes).
    package var maxBodyBytes: Int
    /// Bounds connecting on its own; the request's timeout then starts once connected. Nil: the
    /// request's timeout covers connecting too.
    package var connectTimeout: Duration?
    /// Kept-alive idle connections held for reuse.
    package var maxIdleConnections: Int

    package init(
        limits: HTTPLimits = HTTPLimits(), maxBodyBytes: Int = 64 * 1024 * 1024, connectTimeout: Duration? = nil,
        maxIdleConnections: Int = 4
    ) {
        self.limits = limits
        self.maxBodyBytes = maxBodyBytes
        self.connectTimeout = connectTimeout
        self.maxIdleConnections = maxIdleConnections
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for a negative duration (the loop's timers count in nanoseconds).
    package var clientNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        let total = Double(seconds) * 1e9 + Double(attoseconds) / 1e9
        if total <= 0 { return 0 }
        return total >= Double(UInt64.max) ? UInt64.max : UInt64(total)
    }
}
