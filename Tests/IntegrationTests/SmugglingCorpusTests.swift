// The framing and smuggling corpus end to end: raw bytes to a real ds-lb, one
// row per rule of "Smuggling defences" and "Limits", in both directions. Each row asserts the
// exact status ds-lb answers with and that the client connection is closed afterwards; a
// response row also asserts that ds-lb closed its connection to the replica. The replica is a
// `FakeReplica` that answers with canned bytes, so invalid responses can be sent at all.
// DSHTTP1Tests holds the parser's own corpus; this one proves the proxy acts on it.
// Bare LF: refused with 400 everywhere (DSHTTP1 HeadParser, "Line endings").

import Foundation
import SmugglingCorpus
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SmugglingCorpusTests: IntegrationTestCase {
    enum Expect: CustomStringConvertible {
        /// ds-lb answers with this status, then closes.
        case status(Int)
        /// The response head was already relayed when the body turned out to be broken: the
        /// client gets no complete response and the connection is cut.
        case cut

        var description: String {
            switch self {
            case .status(let s): return "\(s)"
            case .cut: return "cut"
            }
        }
    }

    struct Case {
        let name: String
        /// What the client sends.
        let request: [UInt8]
        /// The replica's canned answer (response rows), under `/reply/<slug>`.
        let reply: [UInt8]?
        /// The replica closes its side after the reply.
        var replyThenClose = false
        let slug: String
        let expect: Expect
        let line: UInt
    }

    /// A response row: the replica answers `raw` to a well-formed request that asks to close.
    static func rs(_ name: String, _ raw: String, _ expect: Expect = .status(502), line: UInt = #line) -> Case {
        rs(name, bytes: Array(raw.utf8), expect, line: line)
    }

    static func rs(_ name: String, bytes: [UInt8], _ expect: Expect = .status(502), line: UInt = #line) -> Case {
        let slug = String(name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : "-" })
        let request = "GET /reply/\(slug)?id=1 HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n"
        return Case(name: name, request: Array(request.utf8), reply: bytes, slug: slug, expect: expect, line: line)
    }

    // One case per entry, name first, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    static let corpus: [Case] =
        RequestCorpus.rows.map {
            Case(name: $0.name, request: $0.request, reply: nil, slug: "", expect: .status($0.status), line: $0.line)
        } + responses

    /// The response rows (`ResponseCorpus`), each under its own `/reply/<slug>` of the fake replica.
    static let responses: [Case] = ResponseCorpus.rows.map { row in
        var c = rs(row.name, bytes: row.response, .status(row.status), line: row.line)
        c.replyThenClose = row.thenClose
        return c
    }

    /// The request side of `namedFraming`, against a real replica (ds-server, which frames bodies
    /// as it should): the body reaches it as the body, and no request hidden in it is answered,
    /// to this client or to the next one on the same pooled replica connection (one worker, one
    /// replica).
    func testFramingNamedInConnectionIsKeptOnTheRequestSide() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "1"])
        let hidden = "GET /debug/head?smuggled=1 HTTP/1.1\r\nHost: lb\r\n\r\n"
        for framing in ResponseCorpus.namedFraming {
            let attacker = try HTTPConnection(port: lb.port)
            defer { attacker.close() }
            try attacker.send(framing.message(startLine: "POST /echo?id=1 HTTP/1.1", body: hidden))
            let echoed = try attacker.readResponse(method: "POST")
            XCTAssertEqual(echoed.status, 200, "\(framing.name): \(echoed)")
            XCTAssertEqual(echoed.bodyString, hidden, "\(framing.name): the replica must get the body as the body")
            let victim = try HTTPConnection(port: lb.port)
            defer { victim.close() }
            let response = try victim.request("GET", "/home?id=1")
            XCTAssertEqual(response.status, 200, "\(framing.name): \(response)")
            XCTAssertFalse(
                response.bodyString.contains("smuggled"),
                "\(framing.name): another client got the answer to the hidden request: \(response.bodyString)")
        }
        // `Connection: host` cannot take the Host field away either.
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        let seen = try connection.request(
            "GET", "/debug/head?id=1", headers: [("Connection", "host, cookie"), ("Cookie", "a=1")])
        XCTAssertEqual(seen.status, 200, "\(seen)")
        XCTAssertTrue(seen.bodyString.lowercased().contains("\r\nhost: "), seen.bodyString)
        XCTAssertTrue(seen.bodyString.contains("\r\nCookie: a=1\r\n"), seen.bodyString)
    }

    /// One ds-lb in front of one fake replica for the whole table: every row runs on its own
    /// client connection, and each row's outcome is independent of the others'. The response
    /// rows are failures of that one replica, which passive health would take out of rotation
    /// (503 for the rows after) as soon as the supervisor sampled them: `--max-fails 0`.
    func testCorpusEndToEnd() throws {
        XCTAssertGreaterThanOrEqual(Self.corpus.count, 60)
        XCTAssertEqual(Set(Self.corpus.map(\.name)).count, Self.corpus.count, "case names must be unique")
        let replica = try FakeReplica()
        defer { replica.stop() }
        for c in Self.corpus {
            if let reply = c.reply { replica.setReply(c.slug, reply, thenClose: c.replyThenClose) }
        }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "fake=127.0.0.1:\(replica.port)", "--workers", "2",
            "--max-body-size", "1M", "--max-fails", "0",
        ])
        for c in Self.corpus {
            check(c, lb: lb, replica: replica)
        }
        XCTAssertFalse(
            replica.paths.contains { $0.hasPrefix("/smuggled") },
            "a request hidden in a refused body reached the replica: \(replica.paths)")
    }

    /// A keep-alive client whose request got a 502 for the replica's invalid framing: ds-lb
    /// closes the replica connection, and the client connection is either closed, as the 502
    /// says, or stays in step (the next request on it is answered by the replica).
    func testKeepAliveClientAfterAnInvalidResponseStaysInStep() throws {
        let replica = try FakeReplica()
        defer { replica.stop() }
        var replies = [("ka", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!")]
        for (i, framing) in ResponseCorpus.namedFraming.enumerated() {
            replies.append(
                (
                    "named\(i)",
                    framing.message(startLine: "HTTP/1.1 200 OK", body: "ok")
                        + "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
                ))
        }
        for (slug, reply) in replies { replica.setReply(slug, Array(reply.utf8)) }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
            "--backend", "fake=127.0.0.1:\(replica.port)",
        ])
        for (slug, _) in replies {
            let connection = try HTTPConnection(port: lb.port)
            defer { connection.close() }
            try connection.send("GET /reply/\(slug)?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
            let response = try connection.readResponse()
            assertFailure(response, 502, "invalid framing from the replica (\(slug))")
            XCTAssertEqual(replica.waitForClose(of: slug), true, "\(slug): the replica connection must be closed")
            if response.connectionClose {
                XCTAssertTrue(connection.isClosedByPeer(within: 30), "\(slug): the 502 said close; the connection stayed open")
            } else {
                let next = try connection.request("GET", "/ok?id=1")
                XCTAssertEqual(next.status, 200, "\(slug): the next request on the kept connection: \(next)")
                XCTAssertEqual(next.bodyString, "ok", slug)
                XCTAssertTrue(connection.unconsumedBytes.isEmpty, "\(slug): bytes glued after the answer")
            }
            // Another client never gets what the replica glued after its invalid response.
            let other = try HTTPConnection(port: lb.port)
            defer { other.close() }
            let answer = try other.request("GET", "/ok?id=1")
            XCTAssertEqual(answer.bodyString, "ok", "\(slug): \(answer)")
        }
    }

    private func check(_ c: Case, lb: LoadBalancerUnderTest, replica: FakeReplica) {
        let connection: HTTPConnection
        do {
            connection = try HTTPConnection(port: lb.port)
        } catch {
            return XCTFail("\(c.name): connect: \(error)", line: c.line)
        }
        defer { connection.close() }
        // Sent from another thread: ds-lb may answer (and close) before a big request is all
        // in, and a client that only reads after sending would then never see the answer.
        let sender = Unchecked(connection)
        let sent = DispatchSemaphore(value: 0)
        let request = c.request
        Thread {
            _ = try? sender.value.send(request); sent.signal()
        }.start()
        defer { _ = sent.wait(timeout: .now() + 10) }
        switch c.expect {
        case .status(let status):
            do {
                let response = try connection.readResponse()
                XCTAssertEqual(response.status, status, "\(c.name): \(response)", line: c.line)
                if status >= 400 {
                    XCTAssertEqual(response.jsonStatus, "failure", "\(c.name): JSON body \(response)", line: c.line)
                }
            } catch {
                return XCTFail("\(c.name): expected \(status), got \(error)", line: c.line)
            }
        case .cut:
            XCTAssertThrowsError(try connection.readResponse(), "\(c.name): a complete response came", line: c.line)
        }
        XCTAssertTrue(connection.isClosedByPeer(within: 30), "\(c.name): the client connection stayed open", line: c.line)
        XCTAssertTrue(
            connection.unconsumedBytes.isEmpty,
            "\(c.name): bytes after the answer: \(String(decoding: connection.unconsumedBytes, as: UTF8.self).debugDescription)",
            line: c.line)
        var replyIsInvalid = true
        if case .status(200) = c.expect { replyIsInvalid = false }
        if c.reply != nil && replyIsInvalid {
            XCTAssertEqual(
                replica.waitForClose(of: c.slug), true,
                "\(c.name): ds-lb must close its connection to a replica that sent invalid framing", line: c.line)
        }
    }
}
