// ds-server, the replica, as a black box: its three endpoints, configuration from flags and
// environment, keep-alive, pipelining, the 400 answers that close the connection, and a
// clean exit on SIGTERM.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class DSServerTests: IntegrationTestCase {
    func testHomeAnswersGreetingAsJSON() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        let response = try connection.get("/home")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(
            response.header("Content-Type")?.lowercased().hasPrefix("application/json"), true,
            "Content-Type: \(response.header("Content-Type") ?? "missing")")
        let json = try XCTUnwrap(response.jsonObject, "body is not a JSON object: \(response)")
        XCTAssertEqual(json["message"] as? String, "Hello from Server: 7")
        XCTAssertEqual(json["status"] as? String, "successful")
        XCTAssertEqual(json.count, 2, "only message and status: \(response)")
        XCTAssertEqual(response.header("Content-Length").flatMap(Int.init), response.body.count)
    }

    func testHeartbeatAnswersEmpty200() throws {
        let server = try startServer(id: 7)
        let response = try HTTPConnection(port: server.port).get("/heartbeat")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(response.header("Content-Length"), "0", "\(response)")
        XCTAssertTrue(response.body.isEmpty, "\(response)")
    }

    func testUnknownPathAnswers400JSON() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        let response = try connection.get("/foo")
        assertFailure(
            response, 400, "GET /foo",
            message: "<Error> '/foo' endpoint does not exist in server replicas")
        // A 400 for an unknown endpoint is an ordinary answer: the connection stays usable.
        let next = try connection.get("/home")
        XCTAssertEqual(next.status, 200, "GET /home after the 400 on the same connection: \(next)")
    }

    func testIDAndPortFromEnvironment() throws {
        let port = try SocketAddress.freeLoopbackPort()
        let server = try startServer(
            ["--host", "127.0.0.1"],
            environment: ["SERVER_ID": "11", "PORT": "\(port)"], name: "ds-server-env")
        XCTAssertEqual(server.port, port, "ds-server must listen on $PORT")
        let response = try HTTPConnection(port: port).get("/home")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(response.messageString, "Hello from Server: 11", "\(response)")
    }

    func testKeepAliveServesManyRequestsOnOneConnection() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        for i in 0..<200 {
            let path = ["/home", "/heartbeat", "/foo"][i % 3]
            let response = try connection.get(path)
            switch path {
            case "/home":
                XCTAssertEqual(response.status, 200, "request \(i) \(path): \(response)")
                XCTAssertEqual(response.messageString, "Hello from Server: 7", "request \(i): \(response)")
            case "/heartbeat":
                XCTAssertEqual(response.status, 200, "request \(i) \(path): \(response)")
                XCTAssertTrue(response.body.isEmpty, "request \(i): \(response)")
            default:
                XCTAssertEqual(response.status, 400, "request \(i) \(path): \(response)")
            }
            XCTAssertFalse(response.connectionClose, "request \(i): server asked to close a keep-alive connection")
            if response.connectionClose { return }
        }
        XCTAssertFalse(connection.isClosed)
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        // Three requests in one write.
        try connection.send(
            HTTPConnection.requestBytes("GET", "/home")
                + HTTPConnection.requestBytes("GET", "/foo")
                + HTTPConnection.requestBytes("GET", "/heartbeat"))
        let first = try connection.readResponse()
        let second = try connection.readResponse()
        let third = try connection.readResponse()
        XCTAssertEqual(first.status, 200, "1st: \(first)")
        XCTAssertEqual(first.messageString, "Hello from Server: 7", "1st: \(first)")
        assertFailure(
            second, 400, "2nd (GET /foo)",
            message: "<Error> '/foo' endpoint does not exist in server replicas")
        XCTAssertEqual(third.status, 200, "3rd: \(third)")
        XCTAssertTrue(third.body.isEmpty, "3rd (GET /heartbeat): \(third)")
        XCTAssertTrue(
            connection.unconsumedBytes.isEmpty,
            "bytes after the 3rd response: \(String(decoding: connection.unconsumedBytes, as: UTF8.self).debugDescription)")
        // And the connection still works afterwards.
        XCTAssertEqual(try connection.get("/home").status, 200)
    }

    func testSIGTERMExitsZeroPromptly() throws {
        let server = try startServer(id: 7)
        // An idle keep-alive connection must not hold up the shutdown.
        let idle = try HTTPConnection(port: server.port)
        XCTAssertEqual(try idle.get("/home").status, 200)
        XCTAssertTrue(server.process.send(signal: SIGTERM))
        let termination = server.process.waitForExit(timeout: 30)
        XCTAssertEqual(
            termination, .exited(0),
            "after SIGTERM ds-server must exit with status 0 within 30 s; got \(termination.map { "\($0)" } ?? "still running")")
        XCTAssertTrue(idle.isClosedByPeer(within: 30), "the idle client connection is closed")
    }

    /// A chunked body is read to its end (trailers included), so the next request on the
    /// connection is answered; `/echo` returns the chunks as they came; bad framing is 400 + close.
    func testChunkedBodiesAreFramedAndEchoed() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        try connection.send(
            HTTPConnection.requestBytes(
                "POST", "/echo", headers: [("Transfer-Encoding", "chunked")],
                body: Array("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n".utf8)))
        let echoed = try connection.readResponse(method: "POST")
        XCTAssertEqual(echoed.status, 200)
        XCTAssertEqual(echoed.bodyString, "hello world", "\(echoed)")
        XCTAssertEqual(try connection.get("/home").helloServerID, 7, "the connection stays usable after a chunked body")

        let bad = try HTTPConnection(port: server.port)
        try bad.send(
            HTTPConnection.requestBytes(
                "POST", "/home", headers: [("Transfer-Encoding", "chunked")], body: Array("zz\r\nhello\r\n0\r\n\r\n".utf8)))
        let response = try bad.readResponse()
        XCTAssertEqual(response.status, 400, "\(response)")
        XCTAssertTrue(bad.isClosedByPeer(within: 30), "the connection must be closed after bad chunked framing")
    }

    func testMalformedRequestLineAnswers400AndCloses() throws {
        let server = try startServer(id: 7)
        let connection = try HTTPConnection(port: server.port)
        try connection.send("BROKEN\r\nHost: 127.0.0.1\r\n\r\n")
        let response = try connection.readResponse()
        assertFailure(response, 400, "malformed request line \"BROKEN\"")
        XCTAssertTrue(connection.isClosedByPeer(within: 30), "the connection must be closed after the 400")
    }

    /// `/bytes` streams its body as the socket takes it: clients that ask for 64 MiB and read
    /// nothing cost the replica a slice each, not 64 MiB each, and its heartbeat still answers.
    /// A client that reads gets every byte of the pattern, and the next answer on the same
    /// connection after it.
    func testLargeBytesResponsesStreamWithBoundedMemory() throws {
        let server = try startServer(id: 7)
        XCTAssertEqual(try HTTPConnection(port: server.port).get("/heartbeat").status, 200)
        let baseline = try XCTUnwrap(ProxyFlowTests.residentBytes(server.process.pid))
        let readers = 16
        var idle: [HTTPConnection] = []
        defer { idle.forEach { $0.close() } }
        for _ in 0..<readers {
            let connection = try HTTPConnection(port: server.port, timeout: 30)
            try connection.send("GET /bytes?n=\(64 << 20) HTTP/1.1\r\nHost: replica\r\n\r\n")
            idle.append(connection)
        }
        // Every request has been taken up once its first bytes arrive.
        let deadline = Date().addingTimeInterval(30)
        func unread(_ connection: HTTPConnection) -> Int32 {
            var count: Int32 = 0
            _ = ioctl(connection.fd, UInt(FIONREAD), &count)
            return count
        }
        while idle.contains(where: { unread($0) == 0 }) && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(idle.contains(where: { unread($0) == 0 }), "every /bytes request is being answered")
        let grown = (ProxyFlowTests.residentBytes(server.process.pid) ?? .max) - baseline
        XCTAssertLessThan(
            grown, 32 << 20,
            "ds-server grew by \(grown >> 20) MiB for \(readers) clients asking for 64 MiB each and reading nothing")
        XCTAssertEqual(try HTTPConnection(port: server.port, timeout: 10).get("/heartbeat").status, 200)

        // Not a multiple of the slice or of the pattern's 16 bytes.
        let n = (5 << 20) + 7
        let reader = try HTTPConnection(port: server.port, timeout: 30)
        let response = try reader.get("/bytes?n=\(n)")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, n)
        let pattern = Array("0123456789abcdef".utf8)
        XCTAssertNil(
            response.body.indices.first { response.body[$0] != pattern[$0 & 15] }, "the body follows the pattern throughout")
        XCTAssertEqual(try reader.get("/home").helloServerID, 7, "the connection stays usable after a streamed body")
    }
}
