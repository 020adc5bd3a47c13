// Chunked bodies whose chunks are large move their data by splice(2), the
// framing around it still read and checked: large-chunk bodies round-trip byte-identical both
// ways, lying chunk sizes end exactly as in the buffered path (--splice-threshold 0), and
// --max-body-size still caps a spliced body. That the bytes were spliced is read from ds-lb's
// own counter, dslb_spliced_body_bytes_total{direction=...} on /metrics.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ProxyChunkedSpliceTests: IntegrationTestCase {
    // MARK: round trips

    /// Chunks of 1 to 8 MiB among small ones, extensions and trailers: the body reaches the
    /// replica and comes back (ds-server's /echo returns the chunks as they came, so the
    /// response carries the same large chunks) byte for byte; most of the large chunks' data
    /// went by splice in both directions, and a Content-Length body still splices too.
    func testLargeChunksRoundTripByteIdenticalAndAreSpliced() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        var rng = SeededRandom(seed: 7)
        let sizes = [0x100000, 17, 8 << 20, 3, 200_000, 70_000, (2 << 20) + 5, 1]
        let (payload, largeData) = Self.chunkedBody(sizes: sizes, trailers: 2, rng: &rng)
        let before = try splicedBytes(lb)
        let echoed = try echoChunked(payload, port: lb.port)
        XCTAssertEqual(echoed.count, payload.count)
        XCTAssertEqual(Self.checksum(echoed), Self.checksum(payload), "the chunked body came back changed")
        XCTAssertTrue(echoed == payload, "the chunked body came back changed")
        // Each large chunk may have begun in the buffer (one read's worth); the rest is spliced.
        let after = try splicedBytes(lb, atLeast: (before.request + largeData / 2, before.response + largeData / 2))
        XCTAssertGreaterThanOrEqual(after.request - before.request, largeData / 2, "request chunk data spliced")
        XCTAssertGreaterThanOrEqual(after.response - before.response, largeData / 2, "response chunk data spliced")

        // A Content-Length body above the threshold splices as before.
        let body = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let connection = try HTTPConnection(port: lb.port, timeout: 30)
        defer { connection.close() }
        let response = try sendConcurrently(
            connection, "POST /echo?id=2 HTTP/1.1\r\nHost: lb\r\nContent-Length: \(body.count)\r\n\r\n", body)
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.body == body, "the Content-Length body came back changed")
        let afterLength = try splicedBytes(lb, atLeast: (after.request + body.count / 2, after.response + body.count / 2))
        XCTAssertGreaterThanOrEqual(afterLength.request - after.request, body.count / 2)
        XCTAssertGreaterThanOrEqual(afterLength.response - after.response, body.count / 2)
    }

    /// With splicing off the same bodies go through the buffers: the counter stays at zero (so
    /// it counts splices, nothing else) and the bytes are the same.
    func testWithSplicingOffTheSameBodyGoesThroughTheBuffers() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--splice-threshold", "0"])
        var rng = SeededRandom(seed: 8)
        let (payload, _) = Self.chunkedBody(sizes: [0x100000, 5, 3 << 20], trailers: 1, rng: &rng)
        let echoed = try echoChunked(payload, port: lb.port)
        XCTAssertEqual(Self.checksum(echoed), Self.checksum(payload), "the chunked body came back changed")
        let spliced = try splicedBytes(lb)
        XCTAssertEqual(spliced.request, 0)
        XCTAssertEqual(spliced.response, 0)
    }

    // MARK: lying chunk sizes

    /// What a client or replica whose large chunk holds fewer bytes than its size line says
    /// (then EOF), or more, gets: the same with splicing (default threshold) as through the
    /// buffers (--splice-threshold 0), and what the buffered path has always done: a request
    /// with too much data is 400 and closed, one cut short is closed unanswered; a response cut
    /// short or with too much data is cut at the client and the replica connection closed.
    func testLyingChunkSizesEndAsInTheBufferedPath() throws {
        let declared = 0x100000
        var rng = SeededRandom(seed: 9)
        let data = (0..<(declared + 7)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let responseHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n"
        var outcomes: [String: [String]] = [:]
        for threshold in ["0", "64K"] {
            let replica = try FakeReplica()
            defer { replica.stop() }
            replica.setReply("short-\(threshold)", Array(responseHead.utf8) + data[0..<300_000], thenClose: true)
            replica.setReply("long-\(threshold)", Array(responseHead.utf8) + data + Array("\r\n0\r\n\r\n".utf8))
            let lb = try startLoadBalancer([
                "--listen", "127.0.0.1:0", "--driver", "static",
                "--backend", "fake=127.0.0.1:\(replica.port)", "--splice-threshold", threshold,
            ])
            let post = "POST /sink?id=1 HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n"
            var seen: [String] = []
            // A request chunk with 7 bytes more than its size.
            seen.append(try outcome(lb, request: Array(post.utf8) + data + Array("\r\n0\r\n\r\n".utf8)))
            let afterLongRequest = try splicedBytes(lb)
            // A request chunk cut short by the client's end of stream.
            seen.append(try outcome(lb, request: Array(post.utf8) + data[0..<300_000], thenShutdown: true))
            // The same two lies from the replica.
            for name in ["short", "long"] {
                seen.append(
                    try outcome(lb, request: Array("GET /reply/\(name)-\(threshold)?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n".utf8)))
                XCTAssertEqual(
                    replica.waitForClose(of: "\(name)-\(threshold)"), true,
                    "threshold \(threshold), response \(name): ds-lb must close the replica connection")
            }
            let spliced = try splicedBytes(lb)
            if threshold == "0" {
                XCTAssertEqual(spliced.request + spliced.response, 0, "nothing spliced with --splice-threshold 0")
            } else {
                // The 1 MiB chunks with a complete data part went by splice (all but what came
                // buffered with the head).
                XCTAssertGreaterThan(afterLongRequest.request, declared / 2, "the request chunk's data was spliced")
                XCTAssertGreaterThan(spliced.response, declared / 2, "the response chunk's data was spliced")
            }
            outcomes[threshold] = seen
        }
        XCTAssertEqual(outcomes["64K"], outcomes["0"], "splicing must not change how a lying chunk size ends")
        XCTAssertEqual(outcomes["0"], ["400 closed", "no answer closed", "cut closed", "cut closed"])
    }

    // MARK: body cap

    /// `--max-body-size` counts spliced chunk data like buffered: two spliced 512 KiB chunks
    /// fill a 1 MiB cap exactly, the size line of one more byte is refused with 413.
    func testMaxBodySizeCapsASplicedChunkedBody() throws {
        let replica = try FakeReplica()
        defer { replica.stop() }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "fake=127.0.0.1:\(replica.port)", "--max-body-size", "1M",
        ])
        var rng = SeededRandom(seed: 10)
        let half = (0..<0x80000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let body =
            Array("POST /sink?id=1 HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n80000\r\n".utf8) + half
            + Array("\r\n80000\r\n".utf8) + half + Array("\r\n1\r\nx\r\n0\r\n\r\n".utf8)
        let connection = try HTTPConnection(port: lb.port, timeout: 20)
        defer { connection.close() }
        let sent = sendInBackground(connection, body)
        let response = try connection.readResponse(method: "POST")
        _ = sent.wait(timeout: .now() + 20)
        assertFailure(response, 413, "a chunked body one byte over --max-body-size, its first 1 MiB spliced")
        XCTAssertTrue(connection.isClosedByPeer(within: 30), "the connection must be closed after the 413")
        let spliced = try splicedBytes(lb)
        XCTAssertGreaterThan(spliced.request, 0x80000, "the chunks within the cap went by splice")
        XCTAssertLessThanOrEqual(spliced.request, 0x100000, "no byte past the cap was spliced")
    }

    // MARK: helpers

    /// A chunked body (without the head) with chunks of `sizes` (random data, some with an
    /// extension) and `trailers` trailer fields; also the data bytes in chunks of 64 KiB or more.
    static func chunkedBody(sizes: [Int], trailers: Int, rng: inout SeededRandom) -> (body: [UInt8], largeData: Int) {
        var body: [UInt8] = []
        body.reserveCapacity(sizes.reduce(0, +) + 1024)
        var large = 0
        for (i, size) in sizes.enumerated() {
            body += Array(String(size, radix: 16, uppercase: i % 2 == 0).utf8)
            if i % 3 == 1 { body += Array(";ext=\(i)".utf8) }
            body += [13, 10]
            var word: UInt64 = 0
            for k in 0..<size {
                if k % 8 == 0 { word = rng.next() }
                body.append(UInt8(truncatingIfNeeded: word >> ((k % 8) * 8)))
            }
            body += [13, 10]
            if size >= 64 * 1024 { large += size }
        }
        body += Array("0\r\n".utf8)
        for t in 0..<trailers { body += Array("X-Trailer-\(t): \(rng.next())\r\n".utf8) }
        body += [13, 10]
        return (body, large)
    }

    /// FNV-1a 64 of `bytes`, to name a mismatch briefly.
    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        return hash
    }

    /// POSTs `body` chunked to /echo and returns the response's body bytes as they came (the
    /// chunk framing included), after checking the head says chunked.
    private func echoChunked(_ body: [UInt8], port: UInt16) throws -> [UInt8] {
        let connection = try HTTPConnection(port: port, timeout: 30)
        defer { connection.close() }
        try connection.send("POST /echo?id=5 HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n")
        let sent = sendInBackground(connection, body)
        var head: [UInt8] = []
        while !(head.count >= 4 && Array(head.suffix(4)) == [13, 10, 13, 10]) { head += try connection.readBytes(count: 1) }
        let headText = String(decoding: head, as: UTF8.self).lowercased()
        XCTAssertTrue(headText.hasPrefix("http/1.1 200") && headText.contains("transfer-encoding: chunked"), headText)
        let echoed = try connection.readBytes(count: body.count)
        XCTAssertEqual(sent.wait(timeout: .now() + 30), .success)
        // The connection carries the next request: the body's end was found exactly.
        XCTAssertEqual(try connection.request("GET", "/home?id=5").status, 200)
        return echoed
    }

    /// Sends `head` then `body` (from another thread: the replica answers while it arrives)
    /// and reads the response.
    private func sendConcurrently(_ connection: HTTPConnection, _ head: String, _ body: [UInt8]) throws -> HTTPResponse {
        try connection.send(head)
        let sent = sendInBackground(connection, body)
        let response = try connection.readResponse(method: "POST")
        XCTAssertEqual(sent.wait(timeout: .now() + 30), .success)
        return response
    }

    /// Sends `bytes` from another thread (ds-lb and the replica answer while a large body still
    /// arrives; a client that only reads after sending could deadlock), then shuts the sending
    /// side down if asked; the semaphore is signalled when done.
    private func sendInBackground(_ connection: HTTPConnection, _ bytes: [UInt8], thenShutdown: Bool = false) -> DispatchSemaphore
    {
        let sender = Unchecked(connection)
        let sent = DispatchSemaphore(value: 0)
        Thread {
            try? sender.value.send(bytes)
            if thenShutdown { shutdown(sender.value.fd, Int32(SHUT_WR)) }
            sent.signal()
        }.start()
        return sent
    }

    /// How one request ends for the client: "STATUS closed|open", "cut closed" (a response
    /// began and was cut), "no answer closed".
    private func outcome(_ lb: LoadBalancerUnderTest, request: [UInt8], thenShutdown: Bool = false) throws -> String {
        let connection = try HTTPConnection(port: lb.port, timeout: 10)
        defer { connection.close() }
        let sent = sendInBackground(connection, request, thenShutdown: thenShutdown)
        defer { _ = sent.wait(timeout: .now() + 10) }
        let answer: String
        do {
            let response = try connection.readResponse()
            answer = "\(response.status)"
        } catch let error as HTTPClientError {
            if case .closedByPeer(let what) = error.kind, what.hasPrefix("before") {
                answer = "no answer"
            } else {
                answer = "cut"
            }
        }
        return answer + (connection.isClosedByPeer(within: 30) ? " closed" : " open")
    }

    /// ds-lb's spliced-byte counters; with `atLeast`, polled (up to 15 s, for a loaded machine)
    /// until both reach it, since a worker counts a splice just after the bytes left.
    private func splicedBytes(
        _ lb: LoadBalancerUnderTest, atLeast: (request: Int, response: Int)? = nil
    ) throws
        -> (request: Int, response: Int)
    {
        let deadline = Date().addingTimeInterval(15)
        while true {
            let metrics = try lb.request("GET", "/metrics").bodyString
            var counts = (request: 0, response: 0)
            for line in metrics.split(separator: "\n") where line.hasPrefix("dslb_spliced_body_bytes_total{") {
                let value = Int(Double(line.split(separator: " ").last ?? "") ?? -1)
                if line.contains("direction=\"request\"") { counts.request = value }
                if line.contains("direction=\"response\"") { counts.response = value }
            }
            guard let atLeast, counts.request < atLeast.request || counts.response < atLeast.response,
                Date() < deadline
            else { return counts }
            usleep(20_000)
        }
    }
}
