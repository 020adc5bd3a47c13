// The data plane's HTTP behaviour end to end: what reaches the replica (hop-by-hop fields
// removed, X-Forwarded-* added), large bodies both ways, and the client deadlines.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ProxyDataPlaneTests: IntegrationTestCase {
    func testForwardedHeadDropsHopByHopFieldsAndAddsForwardedFor() throws {
        let lb = try startLoadBalancer()
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        let response = try connection.request(
            "GET", "/debug/head?id=7",
            headers: [
                ("Connection", "X-Secret"), ("X-Secret", "s"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
                ("Proxy-Connection", "keep-alive"), ("X-Kept", "yes"),
            ])
        XCTAssertEqual(response.status, 200, "\(response)")
        let received = response.bodyString.lowercased()
        for gone in ["x-secret", "keep-alive", "\r\nte:", "proxy-connection", "\r\nconnection:"] {
            XCTAssertFalse(received.contains(gone), "'\(gone)' reached the replica:\n\(response.bodyString)")
        }
        XCTAssertTrue(received.contains("x-kept: yes"), response.bodyString)
        XCTAssertTrue(received.contains("x-forwarded-for: 127.0.0.1\r\n"), response.bodyString)
        XCTAssertTrue(received.contains("x-forwarded-proto: http\r\n"), response.bodyString)
        XCTAssertTrue(received.hasPrefix("get /debug/head?id=7 http/1.1\r\n"), "the request line goes as it came")
    }

    func testLargeBodyMakesTheRoundTripByteIdentical() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 64)
        let size = 64 * 1024 * 1024
        var body = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            var word = rng.next()
            withUnsafeBytes(of: &word) { raw in for k in 0..<8 { body[i + k] = raw[k] } }
        }
        let connection = try HTTPConnection(port: lb.port, timeout: 60)
        defer { connection.close() }
        // The replica echoes while the body still arrives: send from another thread and read
        // here, as any real client does (one that only reads after sending would deadlock).
        try connection.send("POST /echo?id=3 HTTP/1.1\r\nHost: lb\r\nContent-Length: \(size)\r\n\r\n")
        let sender = Unchecked(connection)
        let sent = DispatchSemaphore(value: 0)
        let payload = body
        Thread {
            try? sender.value.send(payload); sent.signal()
        }.start()
        let response = try connection.readResponse(method: "POST")
        XCTAssertEqual(sent.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, size)
        XCTAssertTrue(response.body == body, "64 MiB echoed through ds-lb must come back byte-identical")
        // The same connection keeps working afterwards.
        XCTAssertEqual(try connection.request("GET", "/home?id=3").status, 200)
    }

    func testSlowHeadGets408AndIsClosed() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--head-timeout", "2s"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        try connection.send("GET /home?id=1 HTTP/1.1\r\nHost: x\r\n")
        // Trickle a byte every 50 ms until the answer comes: the deadline counts from the first
        // byte, so it comes although the head keeps growing; a deadline counted from the last
        // byte would never pass, and the trickle would run out first. Nothing is sent once the
        // answer is there (a byte after ds-lb's close would reset the connection).
        let trickleEnds = Date().addingTimeInterval(30)
        var answered = false
        while !answered && Date() < trickleEnds {
            var pfd = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
            answered = poll(&pfd, 1, 50) > 0
            if !answered { try? connection.send("X") }
        }
        XCTAssertTrue(answered, "no answer while the head kept trickling in: the head deadline restarts with every byte")
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 408, "\(response)")
        XCTAssertEqual(response.jsonStatus, "failure")
        XCTAssertTrue(connection.isClosedByPeer(within: 10))
    }

    func testIdleKeepAliveConnectionIsClosed() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--idle-timeout", "300ms"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        XCTAssertEqual(try connection.request("GET", "/home?id=1").status, 200)
        XCTAssertTrue(connection.isClosedByPeer(within: 10), "an idle keep-alive connection must be closed after --idle-timeout")
    }

    /// A connection that never sends a byte is held for --head-timeout, not --idle-timeout
    /// (silent connections are the cheapest slowloris), and closed without an answer.
    func testSilentNewConnectionIsClosedAfterTheHeadTimeout() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "1",
            "--head-timeout", "500ms", "--idle-timeout", "60s",
        ])
        let silent = try HTTPConnection(port: lb.port)
        defer { silent.close() }
        XCTAssertTrue(silent.isClosedByPeer(within: 20), "a silent connection must be closed after --head-timeout")
        // After its first request a connection is an idle keep-alive one: --idle-timeout applies.
        let kept = try HTTPConnection(port: lb.port)
        defer { kept.close() }
        XCTAssertEqual(try kept.request("GET", "/home?id=1").status, 200)
        XCTAssertFalse(kept.isClosedByPeer(within: 1.5), "an idle keep-alive connection is closed by --idle-timeout only")
        XCTAssertEqual(try kept.request("GET", "/home?id=1").status, 200)
    }

    func testStalledBodyGets408() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--body-timeout", "400ms"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        // /slow answers only after 5 s, so the stall is noticed before any response byte.
        try connection.send("POST /slow?ms=5000&id=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 408, "\(response)")
        XCTAssertTrue(connection.isClosedByPeer(within: 10))
        // Counted like the head timeout's 408 (counted before the answer is queued).
        XCTAssertEqual(try lb.metricSeries()["dslb_errors_total{kind=\"bad_request\"}"], 1)
    }

    func testBadDurationIsAOneLineErrorNamingTheFlag() throws {
        let process = try launch("ds-lb", ["--listen", "127.0.0.1:0", "--head-timeout", "10"])
        let ended = process.waitForExit(timeout: 10)
        XCTAssertNotNil(ended)
        var output = process.stderr.allLines.joined(separator: "\n")
        for _ in 0..<100 where !output.contains("--head-timeout") {
            usleep(10_000)
            output = process.stderr.allLines.joined(separator: "\n")
        }
        XCTAssertTrue(output.contains("--head-timeout") && output.contains("'10'"), output)
    }
}

/// Hands a connection to the sender thread; the test thread only reads from it meanwhile, and a
/// socket may be written and read from two threads at once.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
