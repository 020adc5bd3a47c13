#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A Docker Engine API client over the engine's unix socket (HTTP/1.1, one connection per call,
/// `Connection: close`). Calls BLOCK for up to their timeout: call them from a thread of your own,
/// never from a loop thread (the Docker driver runs them on its own serial queue, DESIGN.md §2).
/// Any thread; the client holds no mutable state.
public final class DockerClient: Sendable {
    public let socketPath: String
    /// The negotiated API version, e.g. "1.41"; every call is sent as `/v<version>/...`.
    public let apiVersion: String
    /// The engine's own version string (for logs).
    public let engineVersion: String

    /// The newest API version whose behaviour for the calls we make we have read; a newer engine
    /// is spoken to in this version as long as it still accepts it (anchors.md §5.1).
    public static let newestKnown = APIVersion(1, 47)

    /// `DOCKER_HOST=unix:///path` when set, else /var/run/docker.sock.
    public static func defaultSocketPath() -> String {
        if let value = getenv("DOCKER_HOST") {
            let host = String(cString: value)
            if host.hasPrefix("unix://") { return String(host.dropFirst(7)) }
        }
        return "/var/run/docker.sock"
    }

    /// Connects and negotiates the version with an unversioned `GET /version`. Blocks.
    public static func connect(socketPath: String = defaultSocketPath(), timeout: Double = 5) throws -> DockerClient {
        let response = try roundTrip(socketPath: socketPath, method: "GET", target: "/version", body: nil, timeout: timeout)
        guard response.status == 200, let object = response.json as? [String: Any] else {
            throw DockerError.engine(status: response.status, message: response.engineMessage)
        }
        guard let serverText = object["ApiVersion"] as? String, let server = APIVersion(serverText) else {
            throw DockerError.protocolError("GET /version has no ApiVersion")
        }
        let minimum = (object["MinAPIVersion"] as? String).flatMap(APIVersion.init)
        let chosen = APIVersion.negotiate(ours: newestKnown, server: server, serverMinimum: minimum)
        return DockerClient(socketPath: socketPath, apiVersion: chosen.description,
                            engineVersion: object["Version"] as? String ?? "unknown")
    }

    init(socketPath: String, apiVersion: String, engineVersion: String) {
        self.socketPath = socketPath
        self.apiVersion = apiVersion
        self.engineVersion = engineVersion
    }

    /// One call: `path` without the version prefix, `body` a JSON-serialisable value. Blocks.
    public func request(_ method: String, _ path: String, query: [(String, String)] = [], body: Any? = nil,
                        timeout: Double = 10) throws -> DockerResponse {
        var target = "/v\(apiVersion)\(path)"
        if !query.isEmpty {
            target += "?" + query.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        }
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }.map { [UInt8]($0) }
        return try Self.roundTrip(socketPath: socketPath, method: method, target: target, body: data, timeout: timeout)
    }

    /// Like `request`, but any status outside `accept` is thrown with the engine's message.
    public func call(_ method: String, _ path: String, query: [(String, String)] = [], body: Any? = nil,
                     timeout: Double = 10, accept: Set<Int>) throws -> DockerResponse {
        let response = try request(method, path, query: query, body: body, timeout: timeout)
        guard accept.contains(response.status) else {
            throw DockerError.engine(status: response.status, message: response.engineMessage)
        }
        return response
    }

    // MARK: transport

    static func roundTrip(socketPath: String, method: String, target: String, body: [UInt8]?,
                          timeout: Double) throws -> DockerResponse {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try openConnection(socketPath: socketPath, timeout: timeout)
        defer { Glibc.close(fd) }

        var head = "\(method) \(target) HTTP/1.1\r\nHost: docker\r\nUser-Agent: ds-lb\r\nConnection: close\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method == "POST" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        try writeAll(fd, Array(head.utf8) + (body ?? []), socketPath: socketPath)

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                received.append(contentsOf: buffer[0..<n])
                guard received.count < 64 * 1024 * 1024 else { throw DockerError.protocolError("response larger than 64 MiB") }
                if Date() > deadline { throw DockerError.unreachable("\(method) \(target): no complete answer within \(timeout)s") }
                continue
            }
            if n == 0 { break }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw DockerError.unreachable("\(method) \(target): no answer within \(timeout)s")
            }
            throw DockerError.unreachable("read from \(socketPath): \(String(cString: strerror(errno)))")
        }
        return try DockerResponse.parse(received)
    }

    /// A connected unix socket; `timeout` > 0 bounds each read and write (0: no bound).
    static func openConnection(socketPath: String, timeout: Double) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DockerError.unreachable("socket(): \(String(cString: strerror(errno)))") }
        if timeout > 0 {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            Glibc.close(fd)
            throw DockerError.unreachable("socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw DockerError.unreachable("cannot connect to \(socketPath): \(reason)")
        }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], socketPath: String) throws {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: an engine that closed early is an error here, not a SIGPIPE for the process.
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw DockerError.unreachable("write to \(socketPath): \(String(cString: strerror(errno)))")
        }
    }

    /// RFC 3986 §2.3: everything but unreserved characters is percent-encoded.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// An Engine API version, `major.minor`, ordered numerically (1.9 < 1.41).
public struct APIVersion: Comparable, Sendable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.init(major, minor)
    }

    public var description: String { "\(major).\(minor)" }

    public static func < (a: APIVersion, b: APIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// min(ours, the server's), but never below the server's minimum (anchors.md §5.1).
    public static func negotiate(ours: APIVersion, server: APIVersion, serverMinimum: APIVersion?) -> APIVersion {
        let chosen = Swift.min(ours, server)
        if let serverMinimum, chosen < serverMinimum { return serverMinimum }
        return chosen
    }
}
