// Descriptor exhaustion: ds-lb run under `ulimit -n 64` and driven to its descriptor limit
// keeps serving an established keep-alive connection, does not spin on EMFILE (CPU time over
// one second stays low), and once connections close it accepts the ones that waited in the
// backlog (the listener's retry timer, not a new connection's edge) and new ones.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class DescriptorExhaustionTests: IntegrationTestCase {
    /// utime + stime of `pid` in clock ticks (/proc/PID/stat fields 14 and 15).
    private func cpuTicks(_ pid: pid_t) -> UInt64? {
        guard let bytes = ProcFS.read("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    private func openDescriptors(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// ds-lb with one worker in front of replica `a` (`server`), its descriptor limit lowered
    /// to `limit` by a shell that then execs it (so the pid is the one we watch).
    private func startLimitedLoadBalancer(limit: Int, server: ServerUnderTest, extra: [String]) throws -> (ChildProcess, UInt16) {
        let lbPath = try Binaries.path("ds-lb")
        let arguments =
            [
                "--listen", "127.0.0.1:0", "--driver", "static", "--backend", "a=127.0.0.1:\(server.port)",
                "--workers", "1",
            ] + extra
        let process = try ChildProcess(
            name: "ds-lb", executable: "/bin/sh",
            arguments: ["-c", "ulimit -n \(limit) && exec \"$0\" \"$@\"", lbPath] + arguments,
            environment: ["STATE_DIRECTORY": try temporaryDirectory()])
        addTeardownBlock {
            if let run = self.testRun, run.totalFailureCount > 0 { print("[teardown] ds-lb\n\(process.outputTail(40))") }
            process.forceStop()
            process.stopReaders()
        }
        let groups = try process.waitForStderrLine(matching: #"Listening on 127\.0\.0\.1:([0-9]+)"#, timeout: startupTimeout)
        return (process, try XCTUnwrap(UInt16(groups[1])))
    }

    func testAtTheDescriptorLimitServesEstablishedConnectionsWithoutSpinningAndRecovers() throws {
        let server = try startServer(id: 1)
        let limit = 64
        // Heartbeats are off (1h) so that only the data plane is watched here; the test below
        // covers heartbeats at the limit.
        let (process, port) = try startLimitedLoadBalancer(limit: limit, server: server, extra: ["--heartbeat-interval", "1h"])
        let pid = process.pid

        // An established keep-alive connection (and with it a pooled connection to the replica).
        let kept = try HTTPConnection(port: port)
        defer { kept.close() }
        XCTAssertEqual(try kept.request("GET", "/home?id=1").status, 200)

        // Flood: more connections than ds-lb has descriptors for. They all connect (the kernel
        // completes the handshake into the backlog); ds-lb accepts until EMFILE.
        var extra: [HTTPConnection] = []
        defer { extra.forEach { $0.close() } }
        for _ in 0..<(limit + 16) { extra.append(try HTTPConnection(port: port)) }
        // The last one surely waits in the backlog: its request must be answered after recovery.
        let waiting = extra.removeLast()
        defer { waiting.close() }
        try waiting.send("GET /home?id=2 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertTrue(
            waitUntil(timeout: 5) { self.openDescriptors(pid) >= limit - 1 },
            "ds-lb never reached its descriptor limit: \(openDescriptors(pid)) open")

        // At the limit: the established connection is still served...
        for i in 0..<5 {
            let response = try kept.request("GET", "/home?id=\(i)")
            XCTAssertEqual(response.status, 200, "established connection at the descriptor limit: \(response)")
        }
        // ...and ds-lb does not spin on accept: under 0.3 s of CPU in a second (a spin is ~1 s).
        let before = try XCTUnwrap(cpuTicks(pid))
        usleep(1_000_000)
        let used = try XCTUnwrap(cpuTicks(pid)) - before
        let ticksPerSecond = UInt64(sysconf(Int32(_SC_CLK_TCK)))
        XCTAssertLessThan(used, ticksPerSecond * 3 / 10, "ds-lb used \(used) ticks of CPU in 1 s at its descriptor limit")
        XCTAssertFalse(waiting.isClosedByPeer(within: 0.2), "the waiting connection must not be answered yet")

        // Descriptors free up: the connection that waited in the backlog is accepted and served
        // without any new connection arriving, then new connections are served again.
        extra.forEach { $0.close() }
        extra.removeAll()
        let response = try waiting.readResponse()
        XCTAssertEqual(response.status, 200, "the connection that waited in the backlog: \(response)")
        let fresh = try HTTPConnection(port: port)
        defer { fresh.close() }
        XCTAssertEqual(try fresh.request("GET", "/home?id=3").status, 200)
        XCTAssertEqual(try kept.request("GET", "/home?id=4").status, 200)
    }

    /// Opens connections to ds-lb (`port`, process `pid`) until it holds its whole descriptor
    /// `limit` and more wait in its backlog; returns them for the caller to close.
    private func fillDescriptors(of pid: pid_t, port: UInt16, limit: Int) throws -> [HTTPConnection] {
        var extra: [HTTPConnection] = []
        for _ in 0..<(limit + 16) { extra.append(try HTTPConnection(port: port)) }
        XCTAssertTrue(
            waitUntil(timeout: 5) { self.openDescriptors(pid) >= limit - 1 },
            "ds-lb never reached its descriptor limit: \(openDescriptors(pid)) open")
        return extra
    }

    /// At the limit a request that needs a new replica connection gets 503 (ds-lb's own
    /// shortage, not the replica's fault: no 502, no failover). Heartbeats are rare here: each
    /// one opens and closes a socket, and the descriptor it gives back for a moment could let
    /// the request open its replica connection after all.
    func testOwnDescriptorShortageIsA503() throws {
        let server = try startServer(id: 1)
        let limit = 64
        let (process, port) = try startLimitedLoadBalancer(limit: limit, server: server, extra: ["--heartbeat-interval", "1h"])
        // Two keep-alive clients sharing the worker's one pooled replica connection.
        let slow = try HTTPConnection(port: port, timeout: 10)
        defer { slow.close() }
        let other = try HTTPConnection(port: port, timeout: 10)
        defer { other.close() }
        XCTAssertEqual(try slow.request("GET", "/home?id=1").status, 200)
        XCTAssertEqual(try other.request("GET", "/home?id=1").status, 200)

        var extra = try fillDescriptors(of: process.pid, port: port, limit: limit)
        defer { extra.forEach { $0.close() } }

        // `slow` holds the pooled connection; `other` needs a new one, which ds-lb cannot open.
        // The requests before may still count as in flight for a moment: first wait for 0.
        XCTAssertTrue(
            waitUntil(timeout: 15) { (try? other.request("GET", "/status"))?.inFlight() == 0 },
            "the requests before still count as in flight")
        // So slow that it is still running whenever the machine gets to the next request: were
        // it answered first, the pooled connection would be free for `other` again.
        try slow.send("GET /slow?ms=60000&id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        // Asked on `other` (no new connection can be accepted here); /status needs no replica.
        XCTAssertTrue(
            waitUntil(timeout: 15) { (try? other.request("GET", "/status"))?.inFlight() ?? 0 >= 1 },
            "the slow request never reached the replica")
        // A descriptor ds-lb gives back for a moment (on a loaded machine the moments are longer)
        // lets the request open its replica connection after all, and then 200 is the right
        // answer. So: top the queue up, ask again, and expect a 503 within a few tries; any
        // answer but 200 and 503 is wrong.
        var refused = try other.request("GET", "/home?id=2")
        for _ in 0..<20 where refused.status == 200 {
            for _ in 0..<4 { extra.append(try HTTPConnection(port: port)) }
            _ = waitUntil(timeout: 5) { self.openDescriptors(process.pid) >= limit - 1 }
            refused = try other.request("GET", "/home?id=2")
        }
        assertFailure(refused, 503, "a request needing a new replica connection at the descriptor limit")
        XCTAssertEqual(try other.request("GET", "/status").inFlight(), 1, "the slow request holds the pooled connection")
        slow.close()

        extra.forEach { $0.close() }
        extra.removeAll()
        XCTAssertTrue(
            waitUntil(timeout: 5) { (try? other.request("GET", "/home?id=2").status) == 200 },
            "requests needing a new replica connection are served again once descriptors free up")
    }

    /// Heartbeats that cannot get a descriptor say nothing about the replica: with `--fall 1`
    /// and several heartbeats at ds-lb's own limit, the replica stays UP and no failure is
    /// logged.
    func testHeartbeatsAtTheDescriptorLimitDoNotTakeTheReplicaDown() throws {
        let server = try startServer(id: 1)
        let limit = 64
        let (process, port) = try startLimitedLoadBalancer(
            limit: limit, server: server,
            extra: ["--heartbeat-interval", "200ms", "--fall", "1"])
        let other = try HTTPConnection(port: port, timeout: 10)
        defer { other.close() }
        func replica() throws -> [String: Any] {
            let status = try other.request("GET", "/status")
            XCTAssertEqual(status.status, 200, "\(status)")
            let message = try XCTUnwrap(status.jsonObject?["message"] as? [String: Any], "\(status)")
            let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]], "\(status)")
            return try XCTUnwrap(replicas.first, "\(status)")
        }
        XCTAssertEqual(try replica()["state"] as? String, "UP")

        let extra = try fillDescriptors(of: process.pid, port: port, limit: limit)
        defer { extra.forEach { $0.close() } }
        // Wait for three heartbeats made at the limit (asked on `other`: no new connection can
        // be accepted now), not for a time that a slow machine might not fill with heartbeats.
        let before = try XCTUnwrap(try replica()["checks"] as? Int)
        XCTAssertTrue(
            waitUntil(timeout: 30) { ((try? replica()["checks"] as? Int) ?? 0) >= before + 3 },
            "no heartbeats at the limit")
        XCTAssertEqual(try replica()["state"] as? String, "UP", "heartbeats at ds-lb's own descriptor limit")
        XCTAssertFalse(
            process.stderr.allLines.contains { $0.contains("failed heartbeat") },
            "a heartbeat that could not open a socket was blamed on the replica")
    }
}

private func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
