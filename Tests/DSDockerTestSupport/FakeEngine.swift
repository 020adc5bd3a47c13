import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A fake Docker engine on a unix socket for tests: each connection is served on a thread of
/// its own (so a test can hold several calls open at once), answered from `reply(request)`, and
/// recorded, so the client's and the driver's wire behaviour is checked without Docker.
package final class FakeEngine: @unchecked Sendable {
    package struct Request: Sendable {
        /// "GET /v1.41/containers/json?all=1 HTTP/1.1"
        package let line: String
        package let body: String

        package var method: String { String(line.split(separator: " ").first ?? "") }
        /// The target without the version prefix and the query: "/containers/json".
        package var path: String {
            var target = String(line.split(separator: " ").dropFirst().first ?? "")
            if let q = target.firstIndex(of: "?") { target = String(target[..<q]) }
            if target.hasPrefix("/v"), let slash = target.dropFirst().firstIndex(of: "/") { target = String(target[slash...]) }
            return target
        }
        /// The body as JSON, or nil.
        package var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// How long a client waits for this engine's answer in tests not about a slow engine: the
    /// engine answers from its own threads, which a loaded machine may not run for a while.
    package static let answerDeadline: Duration = .seconds(30)

    package let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var recorded: [Request] = []
    private let reply: @Sendable (Request) -> String

    package init(reply: @escaping @Sendable (Request) -> String) throws {
        path = NSTemporaryDirectory() + "/ds-lb-fake-docker-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        self.reply = reply
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in Array(path.utf8).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw FakeEngineError(description: "fake engine: bind/listen failed") }
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    package var requests: [Request] { lock.withLock { recorded } }
    package var requestLines: [String] { requests.map(\.line) }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                close(fd)
                return
            }
            Thread { [self] in serve(client) }.start()
        }
    }

    private func serve(_ client: Int32) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        func readMore() -> Bool {
            let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if n <= 0 { return false }
            received += buffer[0..<n]
            return true
        }
        while Self.headEnd(received) == nil { if !readMore() { break } }
        let end = Self.headEnd(received) ?? received.count
        let head = String(decoding: received[..<end], as: UTF8.self)
        let length =
            head.split(separator: "\r\n").compactMap { field -> Int? in
                let parts = field.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
        let bodyStart = min(received.count, end + 4)
        while received.count - bodyStart < length { if !readMore() { break } }
        let request = Request(
            line: String(head.split(separator: "\r\n").first ?? ""),
            body: String(decoding: received[bodyStart...], as: UTF8.self))
        lock.withLock { recorded.append(request) }
        let answer = Array(reply(request).utf8)
        _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(client)
    }

    /// Wakes the accept loop, which then closes the listener itself: closing it here could let
    /// a later test reuse the descriptor number under the still-running thread.
    package func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        unlink(path)
    }

    /// An answer with a JSON body and its Content-Length.
    package static func json(_ status: String, _ body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    package static func chunked(_ status: String, _ pieces: [String]) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + pieces.map { "\(String($0.utf8.count, radix: 16))\r\n\($0)\r\n" }.joined() + "0\r\n\r\n"
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for i in 0...(bytes.count - 4) where bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 {
            return i
        }
        return nil
    }
}

package struct FakeEngineError: Error, CustomStringConvertible {
    package let description: String
}
