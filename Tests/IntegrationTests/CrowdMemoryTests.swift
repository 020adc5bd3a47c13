// A crowd of slow clients (slowloris) cut by the head timeout must not leave ds-lb's memory
// behind once it is gone: each held a read buffer while it trickled, and glibc keeps freed pages
// in its arenas unless they are handed back, which the worker does once a crowd has gone.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class CrowdMemoryTests: IntegrationTestCase {
    func testACrowdCutByTheHeadTimeoutLeavesNoMemoryBehind() throws {
        let crowd = 3000
        // The crowd needs descriptors here and in ds-lb (which inherits this limit).
        try withOpenFileLimit(atLeast: 2 * crowd + 500) { try crowdLeavesNoMemory(crowd) }
    }

    private func crowdLeavesNoMemory(_ crowd: Int) throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "1",
            "--head-timeout", "1s",
        ])
        XCTAssertEqual(try lb.request("GET", "/home?id=1").status, 200)
        usleep(300_000)
        let before = try XCTUnwrap(ProxyFlowTests.residentBytes(lb.process.pid))

        // Every connection sends the start of a head (so ds-lb holds a buffer for it) and stops.
        var clients: [HTTPConnection] = []
        for _ in 0..<crowd {
            let client = try HTTPConnection(port: lb.port, timeout: 5)
            try client.send("GET /home?id=1 HTTP/1.1\r\nHost: crowd\r\nX-Slow: ")
            clients.append(client)
        }
        // All are cut with 408 by the head timeout.
        let cut = clients.filter { $0.isClosedByPeer(within: 30) }.count
        XCTAssertEqual(cut, crowd, "connections cut by the head timeout")
        clients.forEach { $0.close() }
        clients.removeAll()

        // Under a sanitizer (tests/sanitize.sh) the allocator is the sanitizer's: it keeps freed
        // memory (quarantine, its own arenas) and malloc_trim does not reach it, so RSS says
        // nothing about ds-lb here. The crowd was still cut; the RSS is checked in the plain run.
        if let sanitizer = ProcessInfo.processInfo.environment["DSLB_SANITIZER"] {
            XCTAssertEqual(try lb.request("GET", "/home?id=2").status, 200)
            throw XCTSkip(
                "RSS after the crowd not checked: the \(sanitizer) sanitizer's allocator does not give pages back (the 408 cuts and the answer after them were checked)"
            )
        }
        // The worker gives the crowd's pages back a second after its last close (at most ten
        // seconds after the first): wait for that, with room for a loaded machine.
        var after = Int.max
        for _ in 0..<100 {
            usleep(200_000)
            after = ProxyFlowTests.residentBytes(lb.process.pid) ?? .max
            if after - before < 8 << 20 { break }
        }
        XCTAssertLessThan(
            after - before, 8 << 20,
            "RSS \(before >> 10) KiB before the crowd, \(after >> 10) KiB after it was gone")
        XCTAssertEqual(try lb.request("GET", "/home?id=2").status, 200)
    }
}

/// Idle keep-alive client connections hold no buffer and no exchange object: each gives its read
/// buffer and its output buffer back to the worker's pool, and its ended exchange to the
/// worker's shelf (`SpareExchanges`), when it waits for its next request with nothing buffered.
/// The bound is 1 KiB: a connection keeping its two 16 KiB buffers, even with one page of each
/// touched, is over 9, one keeping its exchange object is over 1.7, and one keeping the six forms
/// of its forwarded fields and an admin request's head inline is over 1.1 (this debug build).
final class IdleMemoryTests: IntegrationTestCase {
    func testIdleKeepAliveConnectionsCostAtMostOneKiBEach() throws {
        let idle = 2000
        try withOpenFileLimit(atLeast: 2 * idle + 500) { try idleConnectionsCostLittle(idle) }
    }

    private func idleConnectionsCostLittle(_ idle: Int) throws {
        if let sanitizer = ProcessInfo.processInfo.environment["DSLB_SANITIZER"] {
            throw XCTSkip("RSS not checked under the \(sanitizer) sanitizer: its allocator's memory says nothing about ds-lb's")
        }

        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "1"])
        XCTAssertEqual(try lb.request("GET", "/home?id=1").status, 200)
        usleep(300_000)
        let before = try XCTUnwrap(ProxyFlowTests.residentBytes(lb.process.pid))

        // Every connection has been through a whole proxied request (so its buffers were used)
        // and now waits in keep-alive.
        var clients: [HTTPConnection] = []
        for index in 0..<idle {
            let client = try HTTPConnection(port: lb.port, timeout: 5)
            XCTAssertEqual(try client.get("/home?id=\(index)").status, 200)
            clients.append(client)
        }
        defer { clients.forEach { $0.close() } }
        usleep(500_000)
        let after = try XCTUnwrap(ProxyFlowTests.residentBytes(lb.process.pid))
        let perConnection = max(after - before, 0) / idle
        XCTAssertLessThanOrEqual(
            perConnection, 1024,
            "RSS grew by \((after - before) >> 10) KiB for \(idle) idle connections (\(perConnection) bytes each)")
        // They are still open and served.
        XCTAssertEqual(try clients[0].get("/home?id=0").status, 200)
        XCTAssertEqual(try clients[idle - 1].get("/home?id=1").status, 200)
    }
}

/// Runs `body` with this process's open-file limit (which ds-lb inherits) raised to at least
/// `needed`, then puts it back; fails the test when the hard limit does not allow it.
private func withOpenFileLimit(atLeast needed: Int, _ body: () throws -> Void) throws {
    var limit = rlimit()
    XCTAssertEqual(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
    guard limit.rlim_max >= rlim_t(needed) else {
        XCTFail("RLIMIT_NOFILE hard limit \(limit.rlim_max) is below the \(needed) this test needs")
        return
    }
    let saved = limit
    if limit.rlim_cur < rlim_t(needed) {
        limit.rlim_cur = rlim_t(needed)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
    }
    defer { var restore = saved; _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &restore) }
    try body()
}
