import DSHTTP1
import XCTest

final class ResponseWriterTests: XCTestCase {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testExactBytes() {
        XCTAssertEqual(text(ResponseWriter.response(status: 200, body: "{\"a\": 1}", close: false)),
                       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
        XCTAssertEqual(text(ResponseWriter.response(status: 200, contentType: nil, body: "", close: false)),
                       "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(text(ResponseWriter.response(status: 404, contentType: "text/plain", body: "no", close: true)),
                       "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
        XCTAssertEqual(text(ResponseWriter.response(status: 201, body: "x", close: false, extraHeaders: "X-A: 1\r\nX-B: 2\r\n")),
                       "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 1\r\nX-A: 1\r\nX-B: 2\r\n\r\nx")
    }

    func testContentLengthCountsUTF8Bytes() {
        let body = "caf\u{e9} \u{1F600}"
        let out = ResponseWriter.response(status: 200, body: body, close: false)
        guard case .complete(let head) = parseResponse(out) else { return XCTFail() }
        XCTAssertEqual(head.contentLength, UInt64(body.utf8.count))
        XCTAssertEqual(body.utf8.count, 10)
        XCTAssertEqual(Array(out[head.length...]), Array(body.utf8))
    }

    func testHeadOnlyOmitsBodyButKeepsLength() {
        let full = ResponseWriter.response(status: 200, body: "hello", close: false)
        let head = ResponseWriter.response(status: 200, body: "hello", close: false, headOnly: true)
        XCTAssertEqual(text(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n")
        XCTAssertEqual(Array(full.prefix(head.count)), head)
        XCTAssertEqual(full.count, head.count + 5)
    }

    func testFailureBody() {
        let out = ResponseWriter.failure(status: 503, message: "No \"replica\" available", close: true)
        guard case .complete(let head) = parseResponse(out) else { return XCTFail() }
        XCTAssertEqual(head.status, 503)
        XCTAssertFalse(head.keepsConnection)
        let body = Array(out[head.length...])
        XCTAssertEqual(text(body), "{\"message\": \"No \\\"replica\\\" available\", \"status\": \"failure\"}")
        XCTAssertEqual(head.contentLength, UInt64(body.count))
        XCTAssertTrue(text(out).hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }

    /// Every status the writer produces parses back with the strict parser, with the framing the
    /// body needs, and `Connection: close` exactly when asked.
    func testEveryStatusRoundTrips() {
        let statuses = [100, 200, 201, 204, 400, 403, 404, 405, 408, 409, 413, 431, 500, 501, 502, 503, 504, 505, 299, 599]
        for status in statuses {
            for close in [false, true] {
                let body = status == 204 || status == 100 ? "" : "{\"status\": \(status)}"
                let out = ResponseWriter.response(status: status, body: body, close: close)
                guard case .complete(let head) = parseResponse(out) else {
                    XCTFail("\(status) does not parse back")
                    continue
                }
                XCTAssertEqual(head.status, status)
                XCTAssertEqual(head.version, .http11)
                XCTAssertEqual(head.keepsConnection, !close, "\(status) close=\(close)")
                XCTAssertEqual(head.contentLength, UInt64(body.utf8.count))
                XCTAssertEqual(out.count, head.length + body.utf8.count)
                let line = text(Array(out.prefix(while: { $0 != 13 })))
                XCTAssertEqual(line, "HTTP/1.1 \(status) \(ResponseWriter.reason(status))")
            }
        }
    }

    func testReasons() {
        XCTAssertEqual(ResponseWriter.reason(200), "OK")
        XCTAssertEqual(ResponseWriter.reason(431), "Request Header Fields Too Large")
        XCTAssertEqual(ResponseWriter.reason(505), "HTTP Version Not Supported")
        XCTAssertEqual(ResponseWriter.reason(299), "Status 299")
    }
}
