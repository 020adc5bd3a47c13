import DSHTTP1
import DSReactor
import DSSystem
import Dispatch
import XCTest

@testable import DSHTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// The shared client on the wire, against `ScriptedServer`: every framing of a body, keep-alive
/// reuse, a streamed body, and each way an exchange fails.
final class HTTPClientTests: XCTestCase {
    /// One exchange of `request` with a server running `script`; nil when no answer came at all.
    private func exchange(
        _ request: HTTPClientRequest = .get("/"), timeout: Duration = .seconds(10),
        options: HTTPClientOptions = HTTPClientOptions(),
        script: @escaping @Sendable (ScriptedServer.Peer) -> Void
    ) throws -> Result<HTTPClientResponse, HTTPClientError> {
        let server = try ScriptedServer(script: script)
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address, options: options)
        defer { harness.stop() }
        return try XCTUnwrap(harness.send(request, timeout: timeout))
    }

    func testContentLengthBodyAndTheRequestAsFramed() throws {
        let seen = Locked<(head: String, body: String)?>(nil)
        let request = HTTPClientRequest(
            method: "POST", target: "/v3/kv/put", host: "etcd:2379",
            headers: [("Content-Type", "application/json")], body: Array(#"{"key":"a"}"#.utf8), keepAlive: false)
        let response = try exchange(request) { peer in
            seen.withLock { $0 = peer.readRequest() }
            peer.write("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"a\"}\n")
        }.get()
        XCTAssertEqual(response.status, 201)
        XCTAssertEqual(response.header("content-type"), "application/json")
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "{\"id\":\"a\"}\n")
        let request0 = try XCTUnwrap(seen.withLock { $0 })
        XCTAssertEqual(
            request0.head,
            "POST /v3/kv/put HTTP/1.1\r\nHost: etcd:2379\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 11"
        )
        XCTAssertEqual(request0.body, #"{"key":"a"}"#)
    }

    func testChunkedBodyIsDecoded() throws {
        let response = try exchange { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n")
            peer.write("6\r\n world\r\n0\r\nTrailer: t\r\n\r\n")
        }.get()
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "hello world")
    }

    func testABodyWithoutFramingRunsUntilTheServerCloses() throws {
        let server = try ScriptedServer { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\n\r\nfirst ")
            peer.write("and last")
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        let response = try XCTUnwrap(harness.send(.get("/x"))).get()
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), "first and last")
        XCTAssertEqual(harness.withClient { $0.idleConnectionCount }, 0, "an until-close connection is never reused")
    }

    /// Two requests, the second sent from the first's completion: one connection serves both.
    func testAKeptAliveConnectionServesTheNextRequest() throws {
        let server = try ScriptedServer { peer in
            while let request = peer.readRequest() {
                let path = request.head.split(separator: " ")[1]
                peer.write("HTTP/1.1 200 OK\r\nContent-Length: \(path.utf8.count)\r\n\r\n\(path)")
            }
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        let bodies = Locked<[String]>([])
        let done = DispatchSemaphore(value: 0)
        harness.withClient { client in
            client.send(.get("/one"), timeout: .seconds(10)) { first in
                bodies.withLock { $0.append((try? first.get()).map { String(decoding: $0.body, as: UTF8.self) } ?? "\(first)") }
                client.send(.get("/two"), timeout: .seconds(10)) { second in
                    bodies.withLock {
                        $0.append((try? second.get()).map { String(decoding: $0.body, as: UTF8.self) } ?? "\(second)")
                    }
                    done.signal()
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(bodies.withLock { $0 }, ["/one", "/two"])
        XCTAssertEqual(server.accepted.withLock { $0 }, 1)
        XCTAssertEqual(harness.withClient { $0.idleConnectionCount }, 1)
    }

    /// `Connection: close` from the server: the next request opens a new connection.
    func testAConnectionTheServerClosesIsNotReused() throws {
        let server = try ScriptedServer { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        XCTAssertEqual(try XCTUnwrap(harness.send(.get("/a"))).get().status, 200)
        XCTAssertEqual(try XCTUnwrap(harness.send(.get("/b"))).get().status, 200)
        XCTAssertEqual(server.accepted.withLock { $0 }, 2)
    }

    /// A server that answers before it has read the request's body: the rest of the body is
    /// still to be sent, so the connection cannot carry the next request.
    func testAConnectionAnsweredBeforeItsRequestWasSentIsNotReused() throws {
        let testDone = DispatchSemaphore(value: 0)
        let connections = Locked(0)
        let server = try ScriptedServer { peer in
            let first = connections.withLock {
                $0 += 1; return $0 == 1
            }
            _ = peer.readRequest(withBody: !first)
            peer.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            // The first connection reads no more: the client's socket buffers fill up.
            if first { _ = testDone.wait(timeout: .now() + 20) } else { peer.waitForClose() }
        }
        defer { server.stop() }
        defer { testDone.signal() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        // Larger than what loopback socket buffers hold, so the body cannot all be sent.
        let large = HTTPClientRequest(
            method: "PUT", target: "/large", host: "test", body: [UInt8](repeating: 120, count: 32 << 20))
        XCTAssertEqual(try XCTUnwrap(harness.send(large)).get().status, 200)
        XCTAssertEqual(try XCTUnwrap(harness.send(.get("/next"), timeout: .seconds(5))).get().status, 200)
        XCTAssertEqual(server.accepted.withLock { $0 }, 2)
    }

    /// The server sends the second chunk only once the client has handed on the first: a client
    /// that waited for the whole body would never see either.
    func testAStreamedBodyArrivesPieceByPiece() throws {
        let firstSeen = DispatchSemaphore(value: 0)
        let server = try ScriptedServer { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nevent1\r\n")
            guard firstSeen.wait(timeout: .now() + 10) == .success else { return }
            peer.write("6\r\nevent2\r\n0\r\n\r\n")
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        let pieces = Locked<[String]>([])
        let status = Locked(0)
        let ended = DispatchSemaphore(value: 0)
        let end = Locked<Result<Void, HTTPClientError>?>(nil)
        harness.withClient { client in
            client.stream(
                .get("/watch"), timeout: .seconds(10), onHead: { head in status.withLock { $0 = head.status } },
                onBody: { bytes in
                    pieces.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
                    if pieces.withLock({ $0.count }) == 1 { firstSeen.signal() }
                },
                onEnd: { result in
                    end.withLock { $0 = result }
                    ended.signal()
                })
        }
        XCTAssertEqual(ended.wait(timeout: .now() + 15), .success)
        XCTAssertEqual(status.withLock { $0 }, 200)
        XCTAssertEqual(pieces.withLock { $0 }, ["event1", "event2"])
        XCTAssertNil(end.withLock { $0 }?.failure)
    }

    /// A stream's timeout bounds its head only; a cancelled stream calls back no more.
    func testAStreamOutlivesItsHeadTimeoutUntilCancelled() throws {
        let server = try ScriptedServer { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            peer.waitForClose(seconds: 20)
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        let headSeen = DispatchSemaphore(value: 0)
        let ends = Locked(0)
        let exchange = harness.withClient { client in
            UncheckedBox(
                client.stream(
                    .get("/watch"), timeout: .milliseconds(50), onHead: { _ in headSeen.signal() }, onBody: { _ in },
                    onEnd: { _ in ends.withLock { $0 += 1 } }))
        }
        XCTAssertEqual(headSeen.wait(timeout: .now() + 10), .success)
        // A timer past the head timeout, on the same loop: had the timeout still been armed, it would have fired first.
        let later = DispatchSemaphore(value: 0)
        harness.onLoop { harness.loop.schedule(afterNanoseconds: 300_000_000) { later.signal() } }
        XCTAssertEqual(later.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(ends.withLock { $0 }, 0)
        harness.onLoop { exchange.value.cancel() }
        XCTAssertEqual(ends.withLock { $0 }, 0)
    }

    func testASilentServerTimesOut() throws {
        let result = try exchange(timeout: .milliseconds(200)) { peer in
            _ = peer.readRequest()
            peer.waitForClose(seconds: 20)
        }
        guard case .timedOut(headReceived: false)? = result.failure else { return XCTFail("\(result)") }
    }

    func testAHeadWithoutItsBodyInTimeIsATimeoutAfterTheHead() throws {
        let result = try exchange(timeout: .milliseconds(200)) { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            peer.waitForClose(seconds: 20)
        }
        guard case .timedOut(headReceived: true)? = result.failure else { return XCTFail("\(result)") }
    }

    func testARefusedConnectionFails() throws {
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let harness = try ClientHarness(address: refusing.address)
        defer { harness.stop() }
        let result = try XCTUnwrap(harness.send(.get("/")))
        guard case .connectFailed(let cause)? = result.failure else { return XCTFail("\(result)") }
        XCTAssertEqual(cause.errno, ECONNREFUSED)
    }

    /// The connect fails inside `send`; the completion still comes on a later turn of the loop.
    func testAMissingUnixSocketFailsAfterSendReturned() throws {
        let harness = try ClientHarness(address: .unix(path: "/nonexistent/ds-lb-test.sock"))
        defer { harness.stop() }
        let result = Locked<Result<HTTPClientResponse, HTTPClientError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let calledBack = harness.withClient { client -> Bool in
            client.send(.get("/"), timeout: .seconds(5)) { outcome in
                result.withLock { $0 = outcome }
                done.signal()
            }
            return result.withLock { $0 != nil }
        }
        XCTAssertFalse(calledBack, "called back from inside send")
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        guard case .connectFailed(let cause)? = result.withLock({ $0 })?.failure else {
            return XCTFail("\(String(describing: result.withLock { $0 }))")
        }
        XCTAssertEqual(cause.errno, ENOENT)
    }

    func testAMalformedResponseHeadFails() throws {
        let result = try exchange { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")
        }
        guard case .malformedHead? = result.failure else { return XCTFail("\(result)") }
    }

    func testABodyCutShortFails() throws {
        let result = try exchange { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        }
        guard case .bodyCutShort(received: 3, expected: 10)? = result.failure else { return XCTFail("\(result)") }
    }

    func testOverAUnixSocket() throws {
        let server = try ScriptedServer(unix: true) { peer in
            while let request = peer.readRequest() {
                peer.write("HTTP/1.1 200 OK\r\nContent-Length: \(request.body.utf8.count)\r\n\r\n\(request.body)")
            }
        }
        defer { server.stop() }
        let harness = try ClientHarness(address: server.address)
        defer { harness.stop() }
        for text in ["one", "two"] {
            let request = HTTPClientRequest(method: "PUT", target: "/echo", host: "local", body: Array(text.utf8))
            XCTAssertEqual(String(decoding: try XCTUnwrap(harness.send(request)).get().body, as: UTF8.self), text)
        }
        XCTAssertEqual(server.accepted.withLock { $0 }, 1)
    }

    func testABodyOverTheLimitFails() throws {
        let result = try exchange(options: HTTPClientOptions(maxBodyBytes: 10)) { peer in
            _ = peer.readRequest()
            peer.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100))
        }
        guard case .bodyTooLarge(limit: 10)? = result.failure else { return XCTFail("\(result)") }
    }
}

/// Framing a request and decoding a response, without sockets.
final class HTTPClientFramingTests: XCTestCase {
    func testARequestWithoutABodyThatExpectsOneSaysItsLength() throws {
        let bytes = try HTTPClientRequest(
            method: "POST", target: "/start", host: "docker", headers: [("User-Agent", "ds-lb")],
            keepAlive: false
        ).serialized()
        XCTAssertEqual(
            String(decoding: bytes, as: UTF8.self),
            "POST /start HTTP/1.1\r\nHost: docker\r\nUser-Agent: ds-lb\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    }

    func testFieldsThatWouldChangeTheFramingAreRefused() {
        let cases: [HTTPClientRequest] = [
            HTTPClientRequest(method: "GET", target: "/", host: "a\r\nX-Injected: 1"),
            HTTPClientRequest(method: "GET", target: "/", host: "a", headers: [("X-A", "b\nc")]),
            HTTPClientRequest(method: "GET", target: "/", host: "a", headers: [("Content-Length", "5")]),
            HTTPClientRequest(method: "GET", target: "/ HTTP/1.1\r\n", host: "a"),
            HTTPClientRequest(method: "G T", target: "/", host: "a"),
        ]
        for request in cases {
            XCTAssertThrowsError(try request.serialized(), "\(request)") { error in
                guard case .invalidRequest = error as? HTTPClientError else { return XCTFail("\(error)") }
            }
        }
    }

    func testInterimHeadsAreSkipped() throws {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        let response = try HTTPResponseDecoder.decodeWhole(Array(raw.utf8))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, Array("ok".utf8))
    }

    func testAHeadResponseHasNoBody() throws {
        let response = try HTTPResponseDecoder.decodeWhole(
            Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".utf8), requestMethod: "HEAD")
        XCTAssertEqual(response.body, [])
    }
}
