#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
@testable import DSDocker

/// A one-thread fake engine on a unix socket: answers each connection from `reply(requestLine)`
/// and records the request lines, so the client's wire behaviour is checked without Docker.
final class FakeEngine: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var lines: [String] = []
    private let reply: @Sendable (String) -> String

    init(reply: @escaping @Sendable (String) -> String) throws {
        path = NSTemporaryDirectory() + "/ds-lb-fake-docker-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        self.reply = reply
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in Array(path.utf8).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw DockerError.unreachable("fake engine: bind/listen failed") }
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    var requestLines: [String] { lock.withLock { lines } }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                close(fd)
                return
            }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !received.containsHeadEnd {
                let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            let text = String(decoding: received, as: UTF8.self)
            let line = String(text.split(separator: "\r\n").first ?? "")
            lock.withLock { lines.append(line) }
            let answer = Array(reply(line).utf8)
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }

    /// Wakes the accept loop, which then closes the listener itself: closing it here could let
    /// a later test reuse the descriptor number under the still-running thread.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        unlink(path)
    }
}

private extension Array where Element == UInt8 {
    var containsHeadEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return true }
        return false
    }
}

final class FakeEngineTests: XCTestCase {
    static func json(_ status: String, _ body: String) -> String {
        "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    func testNegotiatesWithGetVersionAndPrefixesEveryCall() throws {
        let engine = try FakeEngine { line in
            if line.hasPrefix("GET /version ") {
                return Self.json("200 OK", #"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#)
            }
            // The list comes back chunked, as engines do for streamed JSON.
            let body = #"[{"Id":"abc","Names":["/server-1"],"State":"running","Status":"Up","Labels":{"ds-lb.managed":"true"}}]"#
            let half = body.utf8.count / 2
            let a = String(body.prefix(half)), b = String(body.dropFirst(half))
            return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(String(a.utf8.count, radix: 16))\r\n\(a)\r\n\(String(b.utf8.count, radix: 16))\r\n\(b)\r\n0\r\n\r\n"
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: 2)
        XCTAssertEqual(client.apiVersion, "1.41")
        XCTAssertEqual(client.engineVersion, "20.10.24")
        let list = try client.listContainers(labels: ["ds-lb.pool=p"])
        XCTAssertEqual(list.map(\.name), ["server-1"])
        XCTAssertEqual(engine.requestLines.first, "GET /version HTTP/1.1")
        XCTAssertEqual(engine.requestLines.last,
                       "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22ds-lb.pool%3Dp%22%5D%7D HTTP/1.1")
    }

    func testANewEngineIsSpokenToInOurNewestVersionAndNeverBelowItsMinimum() throws {
        let engine = try FakeEngine { _ in Self.json("200 OK", #"{"Version":"29.0.0","ApiVersion":"1.52","MinAPIVersion":"1.44"}"#) }
        defer { engine.stop() }
        XCTAssertEqual(try DockerClient.connect(socketPath: engine.path, timeout: 2).apiVersion, DockerClient.newestKnown.description)
    }

    func testEngineErrorsCarryTheEnginesMessage() throws {
        let engine = try FakeEngine { line in
            if line.hasPrefix("GET /version ") { return Self.json("200 OK", #"{"ApiVersion":"1.41"}"#) }
            return Self.json("409 Conflict", #"{"message":"Conflict. The container name \"/server-9\" is already in use by container \"123\"."}"#)
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: 2)
        XCTAssertThrowsError(try client.createContainer(name: "server-9", config: ["Image": "x"])) { error in
            XCTAssertEqual(error as? DockerError,
                           .engine(status: 409, message: "Conflict. The container name \"/server-9\" is already in use by container \"123\"."))
        }
        XCTAssertEqual(engine.requestLines.last, "POST /v1.41/containers/create?name=server-9 HTTP/1.1")
    }

    func testASilentEngineTimesOut() throws {
        let engine = try FakeEngine { _ in
            Thread.sleep(forTimeInterval: 1.5)
            return ""
        }
        defer { engine.stop() }
        let started = Date()
        XCTAssertThrowsError(try DockerClient.connect(socketPath: engine.path, timeout: 0.3)) { error in
            guard case DockerError.unreachable = error else { return XCTFail("\(error)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.4)
    }
}
