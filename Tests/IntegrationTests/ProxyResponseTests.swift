// What ds-lb does with a replica's responses, end to end: hop-by-hop fields removed and its own
// Connection field, responses without a body (HEAD, 204, 304), close-delimited bodies, broken
// chunked bodies, and a replica that closes pooled connections. Invalid response framing (502,
// upstream connection closed) is the corpus's: ResponseCorpus, run end to end by
// SmugglingCorpusTests and without sockets by DSProxyTests.ResponseCorpusMachineTests.
// The replica is a ScriptedReplica behind `--driver static`.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ProxyResponseTests: IntegrationTestCase {
    private func startLoadBalancer(for replica: ScriptedReplica, _ extra: [String] = []) throws -> LoadBalancerUnderTest {
        try startLoadBalancer(
            [
                "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
                "--backend", "s=127.0.0.1:\(replica.port)",
            ] + extra)
    }

    func testResponseHopByHopFieldsAreRemovedAndConnectionIsOurs() throws {
        let replica = try ScriptedReplica { _ in
            .init(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Private, keep-alive\r\nX-Private: secret\r\n"
                    + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\nok"
            )
        }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica)
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        let response = try connection.request("GET", "/a?id=1")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(response.bodyString, "ok")
        XCTAssertEqual(response.header("X-Kept"), "yes", "an end-to-end field must be kept: \(response)")
        for gone in ["X-Private", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "Connection"] {
            XCTAssertNil(response.header(gone), "hop-by-hop field \(gone) reached the client: \(response)")
        }
        // The client asked to close: the response says so and the connection ends.
        let last = try connection.request("GET", "/a?id=1", headers: [("Connection", "close")])
        XCTAssertEqual(last.status, 200)
        XCTAssertTrue(last.connectionClose, "a response on a closing connection must say Connection: close: \(last)")
        XCTAssertTrue(connection.isClosedByPeer(within: 30))

        // An HTTP/1.0 client that asks for keep-alive is told it got it, and keeps it.
        let old = try HTTPConnection(port: lb.port)
        defer { old.close() }
        for _ in 0..<2 {
            try old.send("GET /a?id=1 HTTP/1.0\r\nHost: lb\r\nConnection: keep-alive\r\n\r\n")
            let response = try old.readResponse()
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.header("Connection")?.lowercased(), "keep-alive", "\(response)")
        }
    }

    func testResponsesWithoutBodyAndCloseDelimitedBodies() throws {
        let replica = try ScriptedReplica { request in
            switch request.target.prefix(while: { $0 != "?" }) {
            case "/head": return .init("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            case "/204": return .init("HTTP/1.1 204 No Content\r\n\r\n")
            case "/304": return .init("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n")
            case "/until-close":
                return .init("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the close", close: true)
            default: return .init("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
            }
        }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica)
        let connection = try HTTPConnection(port: lb.port, timeout: 30)
        defer { connection.close() }
        // None of these has a body: the next response on the connection must come out whole.
        let head = try connection.request("HEAD", "/head?id=1")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("Content-Length"), "1000", "HEAD keeps the length of the body it does not send")
        XCTAssertEqual(try connection.request("GET", "/x?id=1").bodyString, "next")
        XCTAssertEqual(try connection.request("GET", "/204?id=1").status, 204)
        XCTAssertEqual(try connection.request("GET", "/x?id=1").bodyString, "next")
        let notModified = try connection.request("GET", "/304?id=1")
        XCTAssertEqual(notModified.status, 304)
        XCTAssertEqual(notModified.header("ETag"), "\"x\"")
        XCTAssertEqual(try connection.request("GET", "/x?id=1").bodyString, "next")
        XCTAssertTrue(connection.unconsumedBytes.isEmpty, "stray bytes after bodiless responses")

        // A body delimited by the replica closing: relayed whole, then the client connection
        // ends too (its end is the only way the client can know the body ended).
        let response = try connection.request("GET", "/until-close?id=1")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.bodyString, "all of this, until the close")
        XCTAssertTrue(response.connectionClose, "\(response)")
        XCTAssertTrue(connection.isClosedByPeer(within: 30))
    }

    func testInterimResponsesReachHTTP11ClientsOnly() throws {
        let replica = try ScriptedReplica { _ in
            .init(
                "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            )
        }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica)
        let modern = try HTTPConnection(port: lb.port)
        defer { modern.close() }
        try modern.send("GET /hints?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        let hints = try modern.readResponse()
        XCTAssertEqual(hints.status, 103, "\(hints)")
        XCTAssertEqual(hints.header("Link"), "</style.css>; rel=preload")
        XCTAssertEqual(try modern.readResponse().bodyString, "ok")
        // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client; it gets the final response only.
        let old = try HTTPConnection(port: lb.port)
        defer { old.close() }
        try old.send("GET /hints?id=1 HTTP/1.0\r\nHost: lb\r\n\r\n")
        let final = try old.readResponse()
        XCTAssertEqual(final.status, 200, "\(final)")
        XCTAssertEqual(final.bodyString, "ok")
    }

    func testAClientThatDoesNotReadStopsTheRequestsBehindIt() throws {
        // Responses of 2 MiB; the client pipelines many and reads none. ds-lb must stop: beyond
        // what the kernel's socket buffers hold (the client's receive buffer, ds-lb's send and
        // receive buffers, the replica's send buffer), the requests behind are not even sent to
        // the replica until the client reads.
        let size = 2 << 20
        let body = String(repeating: "x", count: size)
        let replica = try ScriptedReplica { _ in .init("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n" + body) }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica)
        let connection = try HTTPConnection(port: lb.port, timeout: 20)
        defer { connection.close() }
        func maximum(_ path: String) -> Int {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).last.flatMap { Int($0) } ?? 0
        }
        let kernelBytes = 2 * maximum("/proc/sys/net/ipv4/tcp_rmem") + 2 * maximum("/proc/sys/net/ipv4/tcp_wmem")
        let bound = kernelBytes / size + 2
        let count = bound + 8
        try connection.send(String(repeating: "GET /big?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n", count: count))
        usleep(1_500_000)
        XCTAssertLessThanOrEqual(
            replica.requests, bound,
            "ds-lb kept forwarding requests for a client that reads nothing (socket buffers hold \(kernelBytes >> 20) MiB)")
        for i in 0..<count {
            let response = try connection.readResponse()
            XCTAssertEqual(response.body.count, size, "response \(i)")
        }
        XCTAssertEqual(replica.requests, count)
    }

    func testReplicaClosingPooledConnectionsDoesNotFailTheNextRequest() throws {
        // Every answer is keep-alive as far as HTTP says, but the replica then closes the
        // connection: at once (ds-lb may not have seen the close when the next request comes:
        // an idempotent request is then sent again on a fresh connection) or a little later
        // (the pool sees the close while the connection is idle and drops it).
        let replica = try ScriptedReplica { request in
            let later = request.target.contains("later")
            return .init("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true, closeDelay: later ? 0.05 : 0)
        }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica, ["--retries", "0"])
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        // Waits until the replica has really closed every connection it answered (its thread
        // sleeps `closeDelay` first, which a loaded machine stretches), then until ds-lb has
        // seen the FIN: it closed its end, so none of its sockets to the replica is left in
        // CLOSE_WAIT.
        func waitForTheReplicasCloses() {
            let answered = replica.accepted
            XCTAssertTrue(replica.wait(timeout: 10) { $0.closed >= answered }, "the replica did not close its connections")
            let pid = lb.process.pid, port = replica.port
            XCTAssertTrue(
                replica.wait(timeout: 10) { _ in
                    !ProcFS.tcpSockets(of: pid).contains { $0.remotePort == port && $0.state == "08" }
                }, "ds-lb did not close the connections the replica closed")
        }
        for i in 0..<10 {
            XCTAssertEqual(try connection.request("GET", "/now?id=1").status, 200, "GET \(i) after an immediate close")
            XCTAssertEqual(try connection.request("GET", "/later?id=1").status, 200, "GET \(i) after an immediate close")
            waitForTheReplicasCloses()
            // A POST cannot be sent again (RFC 9112 §9.3.1), so it must not meet a connection
            // whose close was already seen.
            let post = try connection.request("POST", "/later?id=1", body: Array("x".utf8))
            XCTAssertEqual(post.status, 200, "POST \(i) after the replica closed the pooled connection: \(post)")
            waitForTheReplicasCloses()
        }
        // Pipelined: the second GET is routed the moment the first response is complete, before
        // the loop has dispatched the replica's close of that connection.
        for i in 0..<10 {
            try connection.send("GET /now?id=1 HTTP/1.1\r\nHost: lb\r\n\r\nGET /now?id=2 HTTP/1.1\r\nHost: lb\r\n\r\n")
            XCTAssertEqual(try connection.readResponse().status, 200, "pipelined GET \(i)")
            XCTAssertEqual(try connection.readResponse().status, 200, "second pipelined GET \(i)")
        }
        XCTAssertEqual(replica.requests, 50)
    }

    /// ds-lb's `dslb_errors_total{kind="invalid_response"}`, polled (up to 3 s) until it reaches
    /// `atLeast`: a worker counts just after it answered.
    private func invalidResponseErrors(_ lb: LoadBalancerUnderTest, atLeast: Int = 0) throws -> Int {
        let deadline = Date().addingTimeInterval(3)
        while true {
            let metrics = try lb.request("GET", "/metrics").bodyString
            let line = metrics.split(separator: "\n").first {
                $0.hasPrefix("dslb_errors_total{") && $0.contains("kind=\"invalid_response\"")
            }
            let count = line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? 0
            if count >= atLeast || Date() >= deadline { return count }
            usleep(20_000)
        }
    }

    /// A chunked response whose framing breaks before any of it went to the client (a chunk size
    /// past 2^64, arriving with the head) is a 502, not an empty reply, and counted.
    func testBrokenChunkedResponseBeforeAnyByteIs502AndCounted() throws {
        let replica = try ScriptedReplica { _ in
            .init("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nok\r\n0\r\n\r\n")
        }
        defer { replica.stop() }
        let lb = try startLoadBalancer(for: replica, ["--retries", "0"])
        let before = try invalidResponseErrors(lb)
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        let closedBefore = replica.closedByPeer
        let response = try connection.request("GET", "/overflow?id=1")
        assertFailure(response, 502, "a chunk size past 2^64 from the replica")
        XCTAssertTrue(replica.wait { $0.closedByPeer > closedBefore }, "the replica connection must be closed")
        XCTAssertEqual(try invalidResponseErrors(lb, atLeast: before + 1), before + 1)
    }

    /// A replica that sends its head and a first chunk, then (once the client has them) a chunk
    /// size that overflows: the client's connection is cut, not left waiting, and it is counted.
    func testBrokenChunkedResponseAfterPartOfTheBodyCutsTheClientAndIsCounted() throws {
        let replica = try BreakAfterFirstChunkReplica()
        defer { replica.stop() }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
            "--backend", "s=127.0.0.1:\(replica.port)", "--retries", "0",
        ])
        let before = try invalidResponseErrors(lb)
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        try connection.send("GET /partial?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        var received: [UInt8] = []
        while !String(decoding: received, as: UTF8.self).hasSuffix("\r\n\r\n2\r\nok\r\n") {
            received += try connection.readBytes(count: 1)
        }
        XCTAssertTrue(String(decoding: received, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
        replica.sendTheRest.signal()
        XCTAssertTrue(connection.isClosedByPeer(within: 30), "the client must not wait for a body that cannot complete")
        XCTAssertEqual(try invalidResponseErrors(lb, atLeast: before + 1), before + 1)
    }
}

/// Answers any request with a chunked response's head and first chunk, then, once the test
/// signals `sendTheRest`, a chunk size line that overflows.
private final class BreakAfterFirstChunkReplica: RawTCPReplica, @unchecked Sendable {
    let sendTheRest = DispatchSemaphore(value: 0)

    init() throws { try super.init(receiveTimeout: 10) }

    override func serve(_ connection: Connection) {
        while let head = connection.readHead() {
            if head.hasPrefix("GET /heartbeat") {
                connection.send(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
                continue
            }
            connection.send(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n".utf8))
            _ = sendTheRest.wait(timeout: .now() + 10)
            connection.send(Array("10000000000000000\r\nok\r\n0\r\n\r\n".utf8))
            _ = connection.readUntilEOF()
            return
        }
    }
}
