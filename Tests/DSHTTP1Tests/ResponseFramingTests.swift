import DSHTTP1
import XCTest

/// Response heads and `Framing.response` (RFC 9112 §6.3): which responses have no body, which
/// are length- or chunk-delimited, which run until close, and which are refused (502).
final class ResponseFramingTests: XCTestCase {
    enum Want {
        case body(BodyFraming)
        case refused(Int)
    }

    struct Case {
        let name: String
        let raw: String
        let method: String
        let status: Int
        let version: HTTPVersion
        let keeps: Bool
        let want: Want
        let line: UInt
    }

    static func c(
        _ name: String, _ raw: String, method: String = "GET", status: Int, version: HTTPVersion = .http11,
        keeps: Bool = true, _ want: Want, line: UInt = #line
    ) -> Case {
        Case(name: name, raw: raw, method: method, status: status, version: version, keeps: keeps, want: want, line: line)
    }

    // One case per entry, name first, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    static let cases: [Case] = [
        c("Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, .body(.contentLength(5))),
        c("Content-Length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, .body(.none)),
        c("identical duplicate Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 9\r\n\r\n",
          status: 200, .body(.contentLength(9))),
        c("chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, .body(.chunked)),
        // A hop-by-hop list naming the framing field: obeyed, it would leave the body unframed.
        c("Connection names Content-Length", "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\n",
          status: 200, .refused(502)),
        c("Connection names Content-Length in a list", "HTTP/1.1 200 OK\r\nConnection: keep-alive, CONTENT-LENGTH\r\nContent-Length: 2\r\n\r\n",
          status: 200, .refused(502)),
        c("second Connection names Transfer-Encoding", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n",
          status: 200, .refused(502)),
        c("Connection names Content-Length on a 204", "HTTP/1.1 204 No Content\r\nConnection: content-length\r\nContent-Length: 0\r\n\r\n",
          status: 204, .body(.none)),
        c("gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 200, .body(.chunked)),
        c("TE not ending in chunked runs until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
          status: 200, .body(.untilClose)),
        c("no length: until close", "HTTP/1.1 200 OK\r\n\r\n", status: 200, .body(.untilClose)),
        c("HTTP/1.0 until close", "HTTP/1.0 200 OK\r\nServer: old\r\n\r\n", status: 200, version: .http10, keeps: false,
          .body(.untilClose)),
        c("HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
          status: 200, version: .http10, keeps: true, .body(.contentLength(2))),
        c("Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n", status: 200,
          keeps: false, .body(.contentLength(2))),
        c("HEAD with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", method: "HEAD", status: 200,
          .body(.none)),
        c("HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method: "HEAD", status: 200,
          .body(.none)),
        c("204", "HTTP/1.1 204 No Content\r\n\r\n", status: 204, .body(.none)),
        c("204 with Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", status: 204, .body(.none)),
        c("304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304, .body(.none)),
        c("100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", status: 100, .body(.none)),
        c("101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
          status: 101, .body(.none)),
        c("103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", status: 103, .body(.none)),
        c("no reason phrase", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n", status: 200, .body(.contentLength(1))),
        c("empty reason phrase", "HTTP/1.1 404 \r\nContent-Length: 1\r\n\r\n", status: 404, .body(.contentLength(1))),
        c("error status with JSON", "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n",
          status: 503, .body(.contentLength(40))),
        c("CL + TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, .refused(502)),
        c("TE + CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", status: 200, .refused(502)),
        c("chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 200, .refused(502)),
    ]

    func testResponseTable() {
        for k in Self.cases {
            guard case .complete(let head) = parseResponse(k.raw) else {
                XCTFail("\(k.name): expected a complete head, got \(parseResponse(k.raw))", line: k.line)
                continue
            }
            XCTAssertEqual(head.status, k.status, k.name, line: k.line)
            XCTAssertEqual(head.version, k.version, k.name, line: k.line)
            XCTAssertEqual(head.keepsConnection, k.keeps, k.name, line: k.line)
            XCTAssertEqual(head.length, k.raw.utf8.count, k.name, line: k.line)
            switch (k.want, Framing.response(head, requestMethod: k.method)) {
            case (.body(let want), .success(let got)):
                XCTAssertEqual(got, want, k.name, line: k.line)
            case (.refused(let status), .failure(let error)):
                XCTAssertEqual(error.status.code, status, "\(k.name): \(error.message)", line: k.line)
            case (let want, let got):
                XCTFail("\(k.name): expected \(want), got \(got)", line: k.line)
            }
        }
    }

    /// Heads a proxy must not accept from a replica. The proxy answers any parse failure with 502,
    /// so only the failure itself is asserted here.
    func testMalformedResponsesFail() {
        let bad = [
            "HTTP/1.1 20 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 099 Low\r\n\r\n",
            "HTTP/1.1 abc OK\r\n\r\n",
            "HTTP/1.1 200OK\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/2.0 200 OK\r\n\r\n",
            "http/1.1 200 OK\r\n\r\n",
            "ICY 200 OK\r\n\r\n",
            "HTTP/1.1 200 O\u{1}K\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\n\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: b\u{0}\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
        ]
        for raw in bad {
            guard case .failed(let error) = parseResponse(raw) else {
                XCTFail("\(raw.debugDescription) must be refused, got \(parseResponse(raw))")
                continue
            }
            XCTAssertGreaterThanOrEqual(error.status.code, 400, raw.debugDescription)
        }
    }

    func testIncompleteResponseResumes() {
        let raw = bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        var resume = 0
        for n in 1..<(raw.count - 2) {
            guard case .incomplete(let r) = parseResponse(Array(raw[0..<n]), from: resume) else {
                return XCTFail("prefix of \(n) bytes must be incomplete")
            }
            resume = r
        }
        guard case .complete(let head) = parseResponse(raw, from: resume) else { return XCTFail() }
        XCTAssertEqual(head.length, raw.count - 2)
        XCTAssertEqual(head.contentLength, 2)
    }

    func testOversizedResponseHeadFails() {
        let raw = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "b", count: 70 * 1024) + "\r\n\r\n"
        guard case .failed = parseResponse(raw) else { return XCTFail("a 70 KiB response head must be refused") }
    }

    func testInterimThenFinalResponse() {
        let interim = bytes("HTTP/1.1 100 Continue\r\n\r\n")
        let final = bytes("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
        let buffer = interim + final
        guard case .complete(let first) = parseResponse(buffer) else { return XCTFail() }
        XCTAssertEqual(first.status, 100)
        XCTAssertEqual(first.length, interim.count)
        guard case .complete(let second) = parseResponse(Array(buffer[first.length...])) else { return XCTFail() }
        XCTAssertEqual(second.status, 200)
        XCTAssertEqual(Framing.response(second, requestMethod: "POST"), .success(.contentLength(3)))
    }
}
