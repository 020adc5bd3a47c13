// How bytes flow through ds-lb over time: Expect: 100-continue, an upgraded (WebSocket-style)
// connection tunnelled both ways, a client that never reads its responses, and the graceful
// drain on SIGTERM. The replica is ds-server (its /echo, /slow, /bytes and /ws-echo test
// endpoints).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ProxyFlowTests: IntegrationTestCase {
    // MARK: Expect: 100-continue

    func testExpectContinueGets100ThenTheFinalResponse() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        for round in 0..<2 {
            // The client sends only the head and waits, as curl does.
            try connection.send("POST /echo?id=4 HTTP/1.1\r\nHost: lb\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
            let interim = try connection.readResponse()
            XCTAssertEqual(interim.status, 100, "round \(round): \(interim)")
            try connection.send("hello world")
            let final = try connection.readResponse(method: "POST")
            XCTAssertEqual(final.status, 200, "round \(round): \(final)")
            XCTAssertEqual(final.bodyString, "hello world")
        }
        // Without a body there is nothing to continue: no 100, just the answer.
        try connection.send("GET /echo?id=4 HTTP/1.1\r\nHost: lb\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().status, 200)
    }

    func testRefusedExpectationsAreAnsweredWithoutReadingTheBody() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--max-body-size", "1K"])
        // Too large for --max-body-size: 413 at once, no 100, and the connection ends (the body
        // that may still come cannot be told from a next request).
        let large = try HTTPConnection(port: lb.port)
        defer { large.close() }
        try large.send("POST /echo?id=4 HTTP/1.1\r\nHost: lb\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        let tooLarge = try large.readResponse()
        XCTAssertEqual(tooLarge.status, 413, "\(tooLarge)")
        XCTAssertEqual(tooLarge.jsonStatus, "failure")
        XCTAssertTrue(large.isClosedByPeer(within: 30))

        // An expectation ds-lb cannot meet: 417 (RFC 9110 §10.1.1).
        let unknown = try HTTPConnection(port: lb.port)
        defer { unknown.close() }
        try unknown.send("POST /echo?id=4 HTTP/1.1\r\nHost: lb\r\nExpect: 200-ok\r\nContent-Length: 10\r\n\r\n")
        let failed = try unknown.readResponse()
        XCTAssertEqual(failed.status, 417, "\(failed)")
        XCTAssertTrue(unknown.isClosedByPeer(within: 30))

        // Within the limit it goes through; a body over the limit without Expect is refused too.
        let fine = try HTTPConnection(port: lb.port)
        defer { fine.close() }
        XCTAssertEqual(try fine.request("POST", "/echo?id=4", body: Array(repeating: 65, count: 1024)).status, 200)
        let refused = try fine.request("POST", "/echo?id=4", body: Array(repeating: 65, count: 1025))
        XCTAssertEqual(refused.status, 413)
        XCTAssertTrue(fine.isClosedByPeer(within: 30))
    }

    func testBadMaxBodySizeIsAOneLineErrorNamingTheFlag() throws {
        let process = try launch("ds-lb", ["--listen", "127.0.0.1:0", "--max-body-size", "12Q"])
        XCTAssertNotNil(process.waitForExit(timeout: 10))
        var output = process.stderr.allLines.joined(separator: "\n")
        for _ in 0..<100 where !output.contains("--max-body-size") {
            usleep(10_000)
            output = process.stderr.allLines.joined(separator: "\n")
        }
        XCTAssertTrue(output.contains("--max-body-size") && output.contains("'12Q'"), output)
    }

    // MARK: workers

    func testConnectionsOpenedOneAtATimeSpreadOverTheWorkers() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "2"])
        // Connections opened in turn on an idle ds-lb: with EPOLLEXCLUSIVE alone, the first
        // worker would accept every one of them.
        let connections = try (0..<40).map { _ in try HTTPConnection(port: lb.port) }
        defer { connections.forEach { $0.close() } }
        let before = Self.workerCPUTicks(lb.process.pid)
        for round in 0..<200 {
            for connection in connections {
                try connection.send("GET /home?id=\(round) HTTP/1.1\r\nHost: lb\r\n\r\n")
            }
            for connection in connections {
                XCTAssertEqual(try connection.readResponse().status, 200)
            }
        }
        let after = Self.workerCPUTicks(lb.process.pid)
        let used = after.mapValues { $0 }.merging(before.mapValues { -$0 }, uniquingKeysWith: +)
        let total = used.values.reduce(0, +)
        XCTAssertEqual(Set(used.keys), ["ds-lb-w0", "ds-lb-w1"])
        for (worker, ticks) in used {
            XCTAssertGreaterThanOrEqual(ticks * 5, total, "\(worker) did \(ticks) of \(total) CPU ticks of the work: \(used)")
        }
    }

    /// CPU time (user + system, in clock ticks) of each worker thread of `pid`, by thread name.
    static func workerCPUTicks(_ pid: pid_t) -> [String: Int] {
        var ticks: [String: Int] = [:]
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
            guard
                let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines), name.hasPrefix("ds-lb-w"),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the name: state is field 0, utime 11, stime 12 (proc(5)).
            if fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) { ticks[name] = user + system }
        }
        return ticks
    }

    // MARK: replica deadlines

    func testSlowReplicaGets504AndTheConnectionStaysUsable() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--response-timeout", "300ms"])
        let connection = try HTTPConnection(port: lb.port, timeout: 10)
        defer { connection.close() }
        let response = try connection.request("GET", "/slow?ms=5000&id=1")
        XCTAssertEqual(response.status, 504, "\(response)")
        XCTAssertEqual(response.jsonStatus, "failure")
        // A bodiless request timed out cleanly: the client connection carries the next one.
        XCTAssertEqual(try connection.request("GET", "/slow?ms=10&id=1").status, 200)
    }

    /// The response deadline is only stored per request; the timer armed for an earlier request
    /// on the same client connection goes off during a later one and must re-arm for that
    /// request's deadline, not answer 504 (and a 504 never comes before the deadline).
    func testEarlierRequestsTimerDoesNotCutTheNextResponseShort() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--response-timeout", "4s"])
        let connection = try HTTPConnection(port: lb.port, timeout: 30)
        defer { connection.close() }
        XCTAssertEqual(try connection.request("GET", "/slow?ms=1&id=1").status, 200)
        usleep(2_200_000)
        // Armed for the first request, the timer goes off during this one: 2.2 s (at least) plus
        // 2 s (at least) is past its 4 s. This one's own deadline leaves it 2 s to spare.
        XCTAssertEqual(try connection.request("GET", "/slow?ms=2000&id=1").status, 200)
        let start = Date()
        let response = try connection.request("GET", "/slow?ms=8000&id=1")
        XCTAssertEqual(response.status, 504, "\(response)")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 4.0, "504 before the response deadline")
    }

    // MARK: chunked round trips

    /// Property: for random chunk sizes, chunk extensions and trailers, a chunked request body
    /// reaches the replica as it was sent and the replica's chunked answer (ds-server's /echo
    /// sends the chunks back as they came) reaches the client byte for byte, trailers included;
    /// the connection then carries the next request.
    func testChunkedBodiesWithTrailersRoundTripByteIdentical() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        let connection = try HTTPConnection(port: lb.port, timeout: 10)
        defer { connection.close() }
        for seed in 1...25 {
            var rng = SeededRandom(seed: UInt64(seed))
            var payload: [UInt8] = []
            for _ in 0..<(1 + Int(rng.next() % 12)) {
                let size = Int(rng.next() % (seed % 5 == 0 ? 70_000 : 300)) + 1
                payload += Array(String(size, radix: 16, uppercase: rng.next() % 2 == 0).utf8)
                if rng.next() % 4 == 0 { payload += Array(";ext=\(rng.next() % 100)".utf8) }
                payload += [13, 10]
                payload += (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                payload += [13, 10]
            }
            payload += Array("0\r\n".utf8)
            for t in 0..<Int(rng.next() % 3) { payload += Array("X-Trailer-\(t): \(rng.next())\r\n".utf8) }
            payload += [13, 10]
            try connection.send("POST /echo?id=6 HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n")
            let sender = Unchecked(connection)
            let body = payload
            let sent = DispatchSemaphore(value: 0)
            Thread {
                try? sender.value.send(body); sent.signal()
            }.start()
            // The response head, then exactly the bytes sent.
            var head: [UInt8] = []
            while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]) { head += try connection.readBytes(count: 1) }
            let headText = String(decoding: head, as: UTF8.self).lowercased()
            XCTAssertTrue(headText.hasPrefix("http/1.1 200"), "seed \(seed): \(headText)")
            XCTAssertTrue(headText.contains("transfer-encoding: chunked"), "seed \(seed): \(headText)")
            let echoed = try connection.readBytes(count: payload.count)
            XCTAssertEqual(sent.wait(timeout: .now() + 10), .success)
            XCTAssertTrue(echoed == payload, "seed \(seed): the chunked body (\(payload.count) bytes) came back changed")
        }
        XCTAssertEqual(try connection.request("GET", "/home?id=6").status, 200, "the connection carries the next request")
        XCTAssertTrue(connection.unconsumedBytes.isEmpty)
    }

    // MARK: upgrade

    func testUpgradedConnectionTunnelsBytesBothWays() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        try connection.send(
            "GET /ws-echo?id=2 HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let switched = try connection.readResponse()
        XCTAssertEqual(switched.status, 101, "\(switched)")
        XCTAssertEqual(switched.header("Upgrade")?.lowercased(), "websocket", "\(switched)")
        XCTAssertEqual(switched.header("Connection")?.lowercased(), "upgrade", "\(switched)")
        // Bytes that are not HTTP at all now go through unchanged, both ways, many times, and
        // more than any one buffer holds.
        var rng = SeededRandom(seed: 101)
        for size in [1, 5, 4096, 300_000] {
            var message = [UInt8](repeating: 0, count: size)
            for i in 0..<size { message[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let sender = Unchecked(connection)
            let payload = message
            let sent = DispatchSemaphore(value: 0)
            Thread {
                try? sender.value.send(payload); sent.signal()
            }.start()
            let echoed = try connection.readBytes(count: size)
            XCTAssertEqual(sent.wait(timeout: .now() + 10), .success)
            XCTAssertTrue(echoed == message, "\(size) bytes through the tunnel came back changed")
        }
        // The client closes its side: ds-lb closes the tunnel (and the replica's end of it).
        shutdown(connection.fd, Int32(SHUT_WR))
        XCTAssertTrue(connection.isClosedByPeer(within: 30))
    }

    func testTunnelIsClosedAfterIdleTimeoutOnlyWhenNothingMoves() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--idle-timeout", "3s"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        try connection.send("GET /ws-echo?id=2 HTTP/1.1\r\nHost: lb\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        XCTAssertEqual(try connection.readResponse().status, 101)
        // A byte there and back every 50 ms until one and a half idle timeouts have passed since
        // the 101: a tunnel whose idle clock ignored the traffic would close within the loop,
        // and a gap between bytes would have to stretch 60 times to reach the timeout.
        let busyUntil = Date().addingTimeInterval(4.5)
        var i = 0
        while Date() < busyUntil {
            try connection.send([UInt8(truncatingIfNeeded: i)])
            XCTAssertEqual(try connection.readBytes(count: 1), [UInt8(truncatingIfNeeded: i)], "byte \(i) through the tunnel")
            i += 1
            usleep(50_000)
        }
        // Then silence: closed after the idle timeout.
        XCTAssertTrue(connection.isClosedByPeer(within: 30), "an idle tunnel must be closed after --idle-timeout")
    }

    // MARK: a client that never reads

    func testClientThatNeverReadsDoesNotGrowMemory() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "1"])
        let baseline = try XCTUnwrap(Self.residentBytes(lb.process.pid))
        let connection = try HTTPConnection(port: lb.port, timeout: 30)
        defer { connection.close() }
        // 64 pipelined requests for 2 MiB each (128 MiB of responses), and nothing read.
        let response = 2 << 20
        let request = Array("GET /bytes?n=\(response)&id=9 HTTP/1.1\r\nHost: lb\r\n\r\n".utf8)
        let count = 64
        let sender = Unchecked(connection)
        let sent = DispatchSemaphore(value: 0)
        Thread {
            try? sender.value.send(Array([[UInt8]](repeating: request, count: count).joined()))
            sent.signal()
        }.start()
        // Let the pipes fill up, then watch ds-lb's memory while nobody reads.
        usleep(1_500_000)
        var peak = 0
        for _ in 0..<10 {
            peak = max(peak, Self.residentBytes(lb.process.pid) ?? 0)
            usleep(100_000)
        }
        XCTAssertLessThan(
            peak - baseline, 32 << 20,
            "ds-lb grew by \((peak - baseline) >> 20) MiB for a client that reads nothing (baseline \(baseline >> 20) MiB)")
        // Reading resumes: every response arrives whole, in order.
        for i in 0..<count {
            let answer = try connection.readResponse()
            XCTAssertEqual(answer.status, 200, "response \(i)")
            XCTAssertEqual(answer.body.count, response, "response \(i)")
        }
        XCTAssertEqual(sent.wait(timeout: .now() + 10), .success)
    }

    /// VmRSS of `pid` in bytes.
    static func residentBytes(_ pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kib = line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first.flatMap { Int($0) }
            return kib.map { $0 * 1024 }
        }
        return nil
    }

    // MARK: drain

    func testSIGTERMDrainsIdleAndInFlightConnectionsThenExits() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--drain-timeout", "60s"])
        let idle = try HTTPConnection(port: lb.port)
        defer { idle.close() }
        XCTAssertEqual(try idle.request("GET", "/home?id=1").status, 200)
        let busy = try HTTPConnection(port: lb.port, timeout: 10)
        defer { busy.close() }
        XCTAssertEqual(try busy.request("GET", "/home?id=1").status, 200)
        XCTAssertTrue(lb.waitForNoneInFlight(), "the requests before still count as in flight")
        try busy.send("GET /slow?ms=1500&id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertTrue(lb.waitForInFlight(), "the slow request never reached the replica")
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        // The idle keep-alive connection is closed at once (its idle timeout is 60 s).
        XCTAssertTrue(idle.isClosedByPeer(within: 10), "an idle connection must be closed when the drain starts")
        // The request in flight finishes, told that the connection ends with it.
        let response = try busy.readResponse()
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertTrue(response.connectionClose, "the last response of a draining connection says Connection: close: \(response)")
        XCTAssertTrue(busy.isClosedByPeer(within: 10))
        // Within half the drain deadline: ds-lb exits once drained, not at the deadline.
        XCTAssertEqual(lb.process.waitForExit(timeout: 30), .exited(0), "ds-lb must exit once drained")
        // Logged just before the exit; the pipe reader may not have read it yet.
        XCTAssertNoThrow(try lb.process.waitForStderrLine(matching: "Drained", timeout: 10))
    }

    func testSIGTERMUnderSocketActivationLeavesTheListeningSocketToTheNextInstance() throws {
        // The test plays systemd: it owns the listening socket and passes it as fd 3.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { Glibc.close(listener) }
        var addr = try SocketAddress.ipv4("127.0.0.1", port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(Glibc.listen(listener, 64), 0)
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        let port = UInt16(bigEndian: local.sin_port)
        // LISTEN_PID must be ds-lb's own pid: a shell sets it to its pid and execs ds-lb.
        let dslb = try Binaries.path("ds-lb")
        let process = try launch(
            "/bin/sh",
            [
                "-c", "export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$0\" \"$@\"", dslb,
                "--listen", "127.0.0.1:1", "--replicas", "1",
            ],
            environment: ["STATE_DIRECTORY": try temporaryDirectory()], name: "ds-lb", passing: [listener])
        _ = try process.waitForStderrLine(matching: "Listening on 127\\.0\\.0\\.1:\(port)", timeout: startupTimeout) { _ in true }
        let busy = try HTTPConnection(port: port, timeout: 10)
        defer { busy.close() }
        XCTAssertEqual(try busy.request("GET", "/home?id=1").status, 200)
        let lb = LoadBalancerUnderTest(process: process, port: port)
        XCTAssertTrue(lb.waitForNoneInFlight(), "the request before still counts as in flight")
        try busy.send("GET /slow?ms=1000&id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertTrue(lb.waitForInFlight(), "the slow request never reached the replica")
        XCTAssertTrue(process.send(signal: SIGTERM))
        // ds-lb stops accepting by putting a placeholder over its copy of the socket: once it
        // no longer holds the port, a new connection can only wait in the backlog.
        let deadline = Date().addingTimeInterval(10)
        while ProcFS.listeningPorts(of: process.pid).contains(port) && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(ProcFS.listeningPorts(of: process.pid).contains(port), "ds-lb kept accepting after SIGTERM")
        // Draining: a new connection waits in the backlog (for the next ds-lb), it is not refused.
        let waiting = try HTTPConnection(port: port)
        defer { waiting.close() }
        try waiting.send("GET /home?id=5 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertEqual(try busy.readResponse().status, 200, "the request in flight finishes")
        XCTAssertEqual(process.waitForExit(timeout: 10), .exited(0))
        // The next instance (here: the test) accepts it, request bytes and all.
        let accepted = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(accepted, 0, "the waiting connection must still be in the socket's backlog")
        defer { Glibc.close(accepted) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(accepted, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { recv(accepted, $0.baseAddress, $0.count, 0) }
        XCTAssertGreaterThan(n, 0)
        XCTAssertTrue(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self).hasPrefix("GET /home?id=5 "))
    }

    func testDrainTimeoutCutsARequestThatTakesTooLong() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--drain-timeout", "500ms"])
        let busy = try HTTPConnection(port: lb.port, timeout: 10)
        defer { busy.close() }
        try busy.send("GET /slow?ms=20000&id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertTrue(lb.waitForInFlight(), "the slow request never reached the replica")
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), .exited(0))
        XCTAssertTrue(busy.isClosedByPeer(within: 30))
        // Logged just before the exit; the pipe reader may not have read it yet.
        XCTAssertNoThrow(try lb.process.waitForStderrLine(matching: "still open after", timeout: 10))
    }
}
