// A small blocking HTTP/1.1 client over Glibc sockets, for driving the real binaries as black
// boxes. Every socket has SO_RCVTIMEO/SO_SNDTIMEO, so no test can hang on a silent peer.
// Not thread-safe: one connection belongs to one test thread.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What went wrong talking to a server. The description says which step and what was seen.
struct HTTPClientError: Error, CustomStringConvertible {
    enum Kind: Sendable {
        case syscall(function: String, errno: Int32)
        case timeout(String)
        case closedByPeer(String)
        case malformed(String)
    }
    let kind: Kind

    var description: String {
        switch kind {
        case .syscall(let function, let err):
            return "\(function) failed: \(String(cString: strerror(err))) (errno \(err))"
        case .timeout(let what):
            return "timed out \(what)"
        case .closedByPeer(let what):
            return "connection closed by peer \(what)"
        case .malformed(let what):
            return "malformed response: \(what)"
        }
    }

    /// True when the peer closed (EOF or reset) before a response started: a keep-alive client
    /// may reconnect and retry in that case.
    var isCloseBeforeResponse: Bool {
        switch kind {
        case .closedByPeer(let what): return what.hasPrefix("before")
        case .syscall(_, let err): return err == ECONNRESET || err == EPIPE
        default: return false
        }
    }
}

/// One parsed HTTP response.
struct HTTPResponse: CustomStringConvertible {
    var status: Int
    var reason: String
    /// Header fields in arrival order, names as sent.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// First value of a header field, name compared case-insensitively.
    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    var bodyString: String { String(decoding: body, as: UTF8.self) }

    /// The body decoded as a JSON object, or nil.
    var jsonObject: [String: Any]? { JSON.object(from: body) }

    /// Whether the server announced it will close the connection after this response.
    var connectionClose: Bool {
        header("Connection")?.lowercased().split(separator: ",")
            .contains { $0.trimmingCharacters(in: .whitespaces) == "close" } ?? false
    }

    var description: String {
        let head = headers.map { "\($0.name): \($0.value)" }.joined(separator: "; ")
        let shown = body.count > 400 ? String(decoding: body.prefix(400), as: UTF8.self) + "…" : bodyString
        return "HTTP \(status) \(reason) [\(head)] body=\(shown.debugDescription)"
    }
}

/// Helpers for IPv4 socket addresses.
enum SocketAddress {
    static func ipv4(_ host: String, port: UInt16) throws -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw HTTPClientError(kind: .malformed("not an IPv4 address: \(host)"))
        }
        return addr
    }

    /// Asks the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it, close).
    /// There is a small window in which someone else may take it; good enough for tests of
    /// the `PORT` environment variable.
    static func freeLoopbackPort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
        defer { Glibc.close(fd) }
        var addr = try ipv4("127.0.0.1", port: 0)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { throw HTTPClientError(kind: .syscall(function: "bind", errno: errno)) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc2 = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc2 == 0 else { throw HTTPClientError(kind: .syscall(function: "getsockname", errno: errno)) }
        return UInt16(bigEndian: bound.sin_port)
    }
}

/// One TCP connection to an HTTP server, used for any number of requests (keep-alive).
final class HTTPConnection {
    let host: String
    let port: UInt16
    let sourceAddress: String?
    let timeout: TimeInterval
    private(set) var fd: Int32
    /// Bytes received but not yet consumed by a response.
    private var pending: [UInt8] = []
    private(set) var isClosed = false

    /// Connects to `host:port`. When `sourceAddress` is given the socket is bound to it
    /// (port 0) first, so the server sees that client address (e.g. 127.0.0.3).
    init(
        host: String = "127.0.0.1", port: UInt16, sourceAddress: String? = nil,
        timeout: TimeInterval = 5
    ) throws {
        self.host = host
        self.port = port
        self.sourceAddress = sourceAddress
        self.timeout = timeout
        // SOCK_CLOEXEC: the binaries started later must not inherit test sockets.
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
        do {
            try setTimeouts(timeout)
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if let source = sourceAddress {
                var src = try SocketAddress.ipv4(source, port: 0)
                let rc = withUnsafePointer(to: &src) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard rc == 0 else {
                    throw HTTPClientError(kind: .syscall(function: "bind(\(source))", errno: errno))
                }
            }
            var dst = try SocketAddress.ipv4(host, port: port)
            var rc: Int32
            repeat {
                rc = withUnsafePointer(to: &dst) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            } while rc != 0 && errno == EINTR
            guard rc == 0 else {
                throw HTTPClientError(kind: .syscall(function: "connect(\(host):\(port))", errno: errno))
            }
        } catch {
            Glibc.close(fd)
            isClosed = true
            throw error
        }
    }

    deinit { close() }

    func close() {
        if !isClosed {
            Glibc.close(fd)
            isClosed = true
        }
    }

    private func setTimeouts(_ seconds: TimeInterval) throws {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        guard setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, size) == 0,
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, size) == 0
        else {
            throw HTTPClientError(kind: .syscall(function: "setsockopt(SO_RCVTIMEO/SO_SNDTIMEO)", errno: errno))
        }
    }

    // MARK: Sending

    /// Sends all bytes (MSG_NOSIGNAL: a closed peer is an error, not a SIGPIPE).
    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw HTTPClientError(kind: .timeout("sending to \(host):\(port)"))
                }
                throw HTTPClientError(kind: .syscall(function: "send", errno: errno))
            }
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Builds the bytes of one request. A `Host` header and, when there is a body,
    /// `Content-Length` are added unless given in `headers`.
    static func requestBytes(
        _ method: String, _ target: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) -> [UInt8] {
        var head = "\(method) \(target) HTTP/1.1\r\n"
        let names = Set(headers.map { $0.0.lowercased() })
        if !names.contains("host") { head += "Host: 127.0.0.1\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body, !names.contains("content-length"), !names.contains("transfer-encoding") {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    /// Sends one request and reads its response.
    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) throws -> HTTPResponse {
        try send(Self.requestBytes(method, target, headers: headers, body: body))
        return try readResponse(method: method)
    }

    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [],
        body: String
    ) throws -> HTTPResponse {
        try request(method, target, headers: headers, body: Array(body.utf8))
    }

    func get(_ target: String) throws -> HTTPResponse { try request("GET", target) }

    // MARK: Receiving

    /// One recv into `pending`. Returns the byte count; 0 means EOF.
    private func fill(_ what: @autoclosure () -> String) throws -> Int {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                pending.append(contentsOf: chunk[0..<n])
                return n
            }
            if n == 0 { return 0 }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw HTTPClientError(kind: .timeout("after \(timeout)s waiting for \(what()) from \(host):\(port)"))
            }
            throw HTTPClientError(kind: .syscall(function: "recv", errno: errno))
        }
    }

    private static let headEnd: [UInt8] = Array("\r\n\r\n".utf8)

    private func indexOf(_ needle: [UInt8], in haystack: [UInt8], from: Int = 0) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0] && Array(haystack[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Reads exactly one response: status line, headers, then a body framed by
    /// Content-Length, chunked encoding, or EOF (`Connection: close` / no length).
    /// `method` matters only for HEAD (no body).
    func readResponse(method: String = "GET") throws -> HTTPResponse {
        // Head.
        var searchFrom = 0
        var headEndIndex: Int?
        while true {
            if let i = indexOf(Self.headEnd, in: pending, from: searchFrom) { headEndIndex = i; break }
            searchFrom = max(0, pending.count - 3)
            if pending.count > 64 * 1024 {
                throw HTTPClientError(kind: .malformed("response head larger than 64 KiB"))
            }
            let wasEmpty = pending.isEmpty
            if try fill("a response head") == 0 {
                throw HTTPClientError(
                    kind: .closedByPeer(
                        wasEmpty
                            ? "before any response byte"
                            : "in the middle of a response head: \(String(decoding: pending, as: UTF8.self).debugDescription)"))
            }
        }
        let headBytes = Array(pending[0..<headEndIndex!])
        pending.removeFirst(headEndIndex! + 4)
        let headText = String(decoding: headBytes, as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw HTTPClientError(kind: .malformed("bad status line \(statusLine.debugDescription)"))
        }
        let reason = parts.count > 2 ? String(parts[2]) : ""
        var headers: [(name: String, value: String)] = []
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPClientError(kind: .malformed("bad header line \(line.debugDescription)"))
            }
            headers.append(
                (
                    String(line[..<colon]),
                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                ))
        }
        var response = HTTPResponse(status: status, reason: reason, headers: headers, body: [])

        // Body (RFC 9112 §6.3).
        if method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 {
            return response
        }
        if let te = response.header("Transfer-Encoding"), te.lowercased().contains("chunked") {
            response.body = try readChunkedBody()
            return response
        }
        if let cl = response.header("Content-Length") {
            guard let length = Int(cl), length >= 0 else {
                throw HTTPClientError(kind: .malformed("bad Content-Length \(cl.debugDescription)"))
            }
            while pending.count < length {
                if try fill("\(length) body bytes (status \(status))") == 0 {
                    throw HTTPClientError(
                        kind: .closedByPeer(
                            "after \(pending.count) of \(length) body bytes (status \(status))"))
                }
            }
            response.body = Array(pending[0..<length])
            pending.removeFirst(length)
            return response
        }
        // No length: the body runs to EOF.
        while try fill("an EOF-delimited body") > 0 {}
        response.body = pending
        pending.removeAll()
        close()
        return response
    }

    private func readLine() throws -> String {
        while true {
            if let i = indexOf(Array("\r\n".utf8), in: pending) {
                let line = String(decoding: pending[0..<i], as: UTF8.self)
                pending.removeFirst(i + 2)
                return line
            }
            if try fill("a chunk line") == 0 {
                throw HTTPClientError(kind: .closedByPeer("in a chunked body"))
            }
        }
    }

    private func readChunkedBody() throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try readLine()
            let hex = sizeLine.split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(hex.trimmingCharacters(in: .whitespaces), radix: 16) else {
                throw HTTPClientError(kind: .malformed("bad chunk size \(sizeLine.debugDescription)"))
            }
            if size == 0 {
                while try !readLine().isEmpty {} // trailers
                return body
            }
            while pending.count < size + 2 {
                if try fill("a chunk") == 0 { throw HTTPClientError(kind: .closedByPeer("in a chunk")) }
            }
            body.append(contentsOf: pending[0..<size])
            pending.removeFirst(size + 2)
        }
    }

    /// Whether the server closes this connection (EOF or ECONNRESET) within `within`
    /// seconds. Bytes that arrive meanwhile are kept in the pending buffer (a later
    /// `readResponse` may still use them); they do not count as "open".
    func isClosedByPeer(within: TimeInterval = 2) -> Bool {
        if isClosed { return true }
        let deadline = Date().addingTimeInterval(within)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let rc = poll(&pfd, 1, Int32(max(1, remaining * 1000)))
            if rc < 0 {
                if errno == EINTR { continue }
                return false
            }
            if rc == 0 { return false }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n == 0 { return true }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                return errno == ECONNRESET || errno == EPIPE
            }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    /// Bytes received but not consumed by any response (for assertions on stray data).
    var unconsumedBytes: [UInt8] { pending }

    /// Reads exactly `count` raw bytes (what follows a 101, say).
    func readBytes(count: Int) throws -> [UInt8] {
        while pending.count < count {
            if try fill("\(count) raw bytes") == 0 {
                throw HTTPClientError(kind: .closedByPeer("after \(pending.count) of \(count) raw bytes"))
            }
        }
        let bytes = Array(pending[0..<count])
        pending.removeFirst(count)
        return bytes
    }
}

/// A keep-alive client that reuses one connection and reconnects only when the server
/// closed it (after `Connection: close`, or a close before the next response started).
/// `reconnects` counts those, so tests can assert real keep-alive.
final class KeepAliveClient {
    let host: String
    let port: UInt16
    let sourceAddress: String?
    let timeout: TimeInterval
    private var connection: HTTPConnection?
    private(set) var reconnects = 0
    private(set) var connectionsOpened = 0

    init(host: String = "127.0.0.1", port: UInt16, sourceAddress: String? = nil, timeout: TimeInterval = 5) {
        self.host = host
        self.port = port
        self.sourceAddress = sourceAddress
        self.timeout = timeout
    }

    private func connected() throws -> HTTPConnection {
        if let c = connection, !c.isClosed { return c }
        if connection != nil { reconnects += 1 }
        let c = try HTTPConnection(host: host, port: port, sourceAddress: sourceAddress, timeout: timeout)
        connectionsOpened += 1
        connection = c
        return c
    }

    func request(
        _ method: String, _ target: String, headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) throws -> HTTPResponse {
        let c = try connected()
        let response: HTTPResponse
        do {
            response = try c.request(method, target, headers: headers, body: body)
        } catch let error as HTTPClientError where error.isCloseBeforeResponse && connectionsOpened > 0 {
            // The server closed an idle keep-alive connection: one retry on a new one.
            c.close()
            response = try connected().request(method, target, headers: headers, body: body)
        }
        if response.connectionClose { connection?.close() }
        return response
    }

    func request(_ method: String, _ target: String, body: String) throws -> HTTPResponse {
        try request(method, target, body: Array(body.utf8))
    }

    func get(_ target: String) throws -> HTTPResponse { try request("GET", target) }

    func close() { connection?.close(); connection = nil }
}
