// --connect-timeout: a replica whose listening socket takes no more connections (its accept
// queue is full, so the kernel drops our SYNs) is given up on after the timeout; the request
// fails over to the next replica (--retries 1) or gets a 502 (--retries 0).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ProxyConnectTimeoutTests: IntegrationTestCase {
    func testAReplicaThatNeverAcceptsIsFailedOverAfterTheConnectTimeout() throws {
        let a = try startServer(id: 1)
        let b = try startServer(id: 2)
        // Long heartbeats: the replica stays in the ring for the whole test, so only the data
        // plane's connect timeout decides.
        let common = [
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "a=127.0.0.1:\(a.port)", "--backend", "b=127.0.0.1:\(b.port)",
            "--connect-timeout", "300ms", "--heartbeat-interval", "60s", "--heartbeat-timeout", "30s",
        ]
        let failingOver = try startLoadBalancer(common + ["--retries", "1"])
        let strict = try startLoadBalancer(common + ["--retries", "0"])

        // An id that both (identically configured) ds-lb send to b.
        var rng = SeededRandom(seed: 77)
        var idForB: Int?
        for id in rng.sixDigitIDs(200) {
            if try failingOver.request("GET", "/home?id=\(id)").helloServerID == 2 { idForB = id; break }
        }
        let id = try XCTUnwrap(idForB, "no id among 200 routed to b")
        XCTAssertEqual(try strict.request("GET", "/home?id=\(id)").helloServerID, 2)

        // b dies and a socket that never accepts takes its port.
        XCTAssertTrue(b.process.send(signal: SIGKILL))
        XCTAssertNotNil(b.process.waitForExit(timeout: 5))
        let hole = try BlackHole(port: b.port)
        defer { hole.close() }

        let response = try failingOver.request("GET", "/home?id=\(id)")
        XCTAssertEqual(response.status, 200, "--retries 1: \(response)")
        XCTAssertEqual(response.helloServerID, 1, "--retries 1 fails over to a: \(response)")

        let refused = try strict.request("GET", "/home?id=\(id)")
        assertFailure(refused, 502, "--retries 0, replica never accepts")
        XCTAssertTrue(refused.messageString?.contains("did not accept the connection in time") == true, "\(refused)")
    }
}

/// A listening socket on `port` whose accept queue is full and never drained: further SYNs are
/// dropped by the kernel, so a connect to it neither succeeds nor fails until it times out.
private final class BlackHole {
    private var fds: [Int32] = []

    init(port: UInt16) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
        fds.append(listener)
        var one: Int32 = 1
        _ = setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = try SocketAddress.ipv4("127.0.0.1", port: port)
        var rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw HTTPClientError(kind: .syscall(function: "bind(\(port))", errno: errno)) }
        guard listen(listener, 0) == 0 else { throw HTTPClientError(kind: .syscall(function: "listen", errno: errno)) }
        // Fill the queue: connect until one connect stays pending.
        for _ in 0..<8 {
            let fd = socket(
                AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
            fds.append(fd)
            rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc == 0 { continue }
            guard errno == EINPROGRESS else { throw HTTPClientError(kind: .syscall(function: "connect", errno: errno)) }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&pfd, 1, 500) == 0 { return } // still pending after 0.5 s: the queue is full
        }
        throw HTTPClientError(kind: .syscall(function: "connect (the accept queue never filled)", errno: 0))
    }

    func close() {
        for fd in fds { Glibc.close(fd) }
        fds = []
    }
}
