#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One container event from `GET /events`.
public struct ContainerEvent: Sendable, Equatable {
    /// die, stop, kill, oom, destroy, start, create, health_status: healthy, ...
    public let action: String
    public let id: String
    public let name: String

    public init(action: String, id: String, name: String) {
        self.action = action
        self.id = id
        self.name = name
    }

    /// Parses one line of the stream; nil for anything that is not a container event.
    public static func parse(_ line: [UInt8]) -> ContainerEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
              (object["Type"] as? String) == "container", let action = object["Action"] as? String else { return nil }
        let actor = object["Actor"] as? [String: Any]
        let attributes = actor?["Attributes"] as? [String: String] ?? [:]
        return ContainerEvent(action: action, id: actor?["ID"] as? String ?? object["id"] as? String ?? "",
                              name: attributes["name"] ?? "")
    }
}

/// Follows a chunked body (RFC 9112 §7.1) as it arrives and hands out its complete lines: the
/// engine's `/events` stream is one JSON object per line, in chunks of any size.
public struct ChunkedLineStream: Sendable {
    private var raw: [UInt8] = []
    private var decoded: [UInt8] = []
    private var remaining = 0  // data bytes left in the current chunk
    private var needCRLF = false
    public private(set) var finished = false

    public init() {}

    /// Feeds bytes (after the response head); returns the lines completed by them.
    public mutating func feed(_ bytes: [UInt8]) throws -> [[UInt8]] {
        raw += bytes
        var i = 0
        while i < raw.count && !finished {
            if remaining > 0 {
                let take = min(remaining, raw.count - i)
                decoded += raw[i..<(i + take)]
                i += take
                remaining -= take
                if remaining == 0 { needCRLF = true }
                continue
            }
            if needCRLF {
                guard raw.count - i >= 2 else { break }
                guard raw[i] == 13, raw[i + 1] == 10 else { throw DockerError.protocolError("chunk not followed by CRLF") }
                i += 2
                needCRLF = false
                continue
            }
            // chunk-size [ chunk-ext ] CRLF
            guard let lineEnd = (i..<max(i, raw.count - 1)).first(where: { raw[$0] == 13 && raw[$0 + 1] == 10 }) else {
                guard raw.count - i < 4096 else { throw DockerError.protocolError("chunk size line too long") }
                break
            }
            var size = 0
            var digits = 0
            for c in raw[i..<lineEnd] {
                guard let value = Int(String(UnicodeScalar(c)), radix: 16) else { break }
                guard size < (1 << 32) else { throw DockerError.protocolError("chunk size too large") }
                size = size * 16 + value
                digits += 1
            }
            guard digits > 0 else { throw DockerError.protocolError("malformed chunk size") }
            i = lineEnd + 2
            if size == 0 { finished = true } else { remaining = size }
        }
        raw.removeFirst(i)
        var lines: [[UInt8]] = []
        while let newline = decoded.firstIndex(of: 10) {
            lines.append(Array(decoded[..<newline]))
            decoded.removeFirst(newline + 1)
        }
        return lines
    }
}

extension DockerClient {
    /// Streams container events matching `labels` to `onEvent` until the connection ends or an
    /// error occurs (thrown). Blocks for as long as the stream lasts: run it on a thread of its own.
    public func streamContainerEvents(labels: [String], onEvent: (ContainerEvent) -> Void) throws {
        let filters = try JSONSerialization.data(withJSONObject: ["type": ["container"], "label": labels], options: .sortedKeys)
        let target = "/v\(apiVersion)/events?filters=\(Self.percentEncode(String(decoding: filters, as: UTF8.self)))"
        let fd = try Self.openConnection(socketPath: socketPath, timeout: 0)
        defer { Glibc.close(fd) }
        try Self.writeAll(fd, Array("GET \(target) HTTP/1.1\r\nHost: docker\r\nUser-Agent: ds-lb\r\n\r\n".utf8), socketPath: socketPath)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var received: [UInt8] = []
        var stream: ChunkedLineStream?
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw DockerError.unreachable("events: read: \(String(cString: strerror(errno)))") }
            if n == 0 { throw DockerError.unreachable("events: the engine closed the stream") }
            let bytes = Array(buffer[0..<n])
            if stream == nil {
                received += bytes
                guard let end = Self.headEnd(received) else {
                    guard received.count < 64 * 1024 else { throw DockerError.protocolError("events: response head too long") }
                    continue
                }
                let head = String(decoding: received[..<end], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 200") || head.hasPrefix("HTTP/1.0 200") else {
                    throw DockerError.protocolError("events: \(head.split(separator: "\r\n").first ?? "")")
                }
                guard head.lowercased().contains("transfer-encoding: chunked") else {
                    throw DockerError.protocolError("events: the stream is not chunked")
                }
                stream = ChunkedLineStream()
                for line in try stream!.feed(Array(received[(end + 4)...])) { ContainerEvent.parse(line).map(onEvent) }
                received = []
            } else {
                for line in try stream!.feed(bytes) { ContainerEvent.parse(line).map(onEvent) }
                if stream!.finished { throw DockerError.unreachable("events: the engine ended the stream") }
            }
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}
