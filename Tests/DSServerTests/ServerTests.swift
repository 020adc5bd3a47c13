import DSBalancer
import DSControl
import DSProxy
import DSServer
import DSSystem
import DSTestSupport
import Foundation
import Logging
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A whole ds-lb in the test's own process: a `Server` with the static driver in front of a
/// replica on 127.0.0.1, started, sent a request, stopped (gracefully, or at once).
final class ServerTests: XCTestCase {
    func testAServerStartsServesAndStopsGracefullyReleasingItsPort() throws {
        let replica = try Responder(body: "replica a")
        defer { replica.close() }
        let running = try startServer(replica: replica)

        let proxied = try exchange(port: running.port, "GET /anything?id=7 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(proxied.hasPrefix("HTTP/1.1 200 "), proxied)
        XCTAssertTrue(proxied.hasSuffix("\r\n\r\nreplica a"), proxied)
        let rep = try exchange(port: running.port, "GET /rep HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        XCTAssertTrue(rep.hasSuffix(#"{"message": {"N": 1, "replicas": ["a"]}, "status": "successful"}"#), rep)

        running.server.stop(graceful: true)
        try running.waitUntilStopped()
        XCTAssertTrue(running.log.messages.contains("[i] Asked to stop: stopping"), "\(running.log.messages)")
        XCTAssertTrue(
            running.log.messages.contains("[i] Drained: every request in flight answered, every client connection closed"),
            "\(running.log.messages)")
        XCTAssertTrue(running.log.messages.contains("[i] ds-lb stopped"), "\(running.log.messages)")
        try assertFree(running.port)
    }

    /// Stopped at once (no drain), the server still closes the socket it opened.
    func testAServerStoppedAtOnceReleasesItsPort() throws {
        let replica = try Responder(body: "replica a")
        defer { replica.close() }
        let running = try startServer(replica: replica)
        running.server.stop(graceful: false)
        try running.waitUntilStopped()
        XCTAssertFalse(running.log.messages.contains { $0.hasPrefix("[i] Drained") }, "\(running.log.messages)")
        try assertFree(running.port)
    }

    /// A server on 127.0.0.1:0 in front of `replica` (static driver), its control loop running
    /// on a thread of the test, its workers accepting.
    private func startServer(replica: Responder) throws -> RunningServer {
        let stateDirectory = NSTemporaryDirectory() + "/ds-lb-server-test-\(getpid())-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: stateDirectory) }
        var configuration = ServerConfiguration(
            listen: try SocketAddress.parse("127.0.0.1:0"), workers: 2, algorithm: .ring, supervisor: SupervisorConfig(),
            proxy: ProxyConfig(adminAllow: [try CIDR(parsing: "127.0.0.0/8")]), replicas: 0, stateDirectory: stateDirectory
        ) { _ in StaticDriver(backends: [Backend(name: "a", number: 0, host: "127.0.0.1", port: replica.port)]) }
        configuration.handlesSignals = false
        let log = CapturedLog()
        let server = try Server(configuration: configuration, logger: log.logger)
        let ready = DispatchSemaphore(value: 0)
        server.onReady = { ready.signal() }
        try server.start()
        let running = RunningServer(
            server: server, port: try Socket.localAddress(XCTUnwrap(server.listeners.http)).port, log: log)
        Thread {
            do { try server.run() } catch { running.runError.withLock { $0 = error } }
            running.stopped.signal()
        }.start()
        XCTAssertEqual(ready.wait(timeout: .now() + 30), .success, "the workers never started")
        return running
    }

    private final class RunningServer: Sendable {
        let server: Server
        let port: UInt16
        let log: CapturedLog
        let stopped = DispatchSemaphore(value: 0)
        let runError = Locked<Error?>(nil)

        init(server: Server, port: UInt16, log: CapturedLog) {
            self.server = server
            self.port = port
            self.log = log
        }

        /// Waits for `run` to return, and rethrows what it threw.
        func waitUntilStopped() throws {
            XCTAssertEqual(stopped.wait(timeout: .now() + 30), .success, "the server did not stop")
            if let error = runError.withLock({ $0 }) { throw error }
        }
    }

    /// Nothing listens on 127.0.0.1:`port` any more: it can be listened on again.
    private func assertFree(_ port: UInt16) throws {
        let again = try Socket.listen(on: SocketAddress.parse("127.0.0.1:\(port)"))
        Glibc.close(again)
    }

    /// Sends `request` to 127.0.0.1:`port` and reads until the server closes the connection.
    private func exchange(port: UInt16, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { Glibc.close(fd) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SyscallError(errno: errno, function: "connect") }
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw SyscallError(errno: errno, function: "send")
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count >= 0 else { throw SyscallError(errno: errno, function: "recv") }
            if count == 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

/// A replica on 127.0.0.1: answers every request head (heartbeats included) with a 200 and
/// `body`, keep-alive, one thread per connection (blocking sockets).
private final class Responder: @unchecked Sendable {
    let port: UInt16
    private let fd: Int32

    init(body: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard bound else { throw SyscallError(errno: errno, function: "bind") }
        port = UInt16(bigEndian: address.sin_port)
        let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        let listening = fd
        Thread {
            while true {
                let client = accept(listening, nil, nil)
                guard client >= 0 else { return }
                Thread { Responder.serve(client, answer: answer) }.start()
            }
        }.start()
    }

    private static func serve(_ client: Int32, answer: [UInt8]) {
        defer { Glibc.close(client) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(client, &buffer, buffer.count, 0)
            guard count > 0 else { return }
            pending += buffer[0..<count]
            while let end = pending.firstRange(of: [13, 10, 13, 10]) {
                pending.removeSubrange(..<end.upperBound)
                guard send(client, answer, answer.count, Int32(MSG_NOSIGNAL)) == answer.count else { return }
            }
        }
    }

    /// Stops accepting (the accept thread returns).
    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}
