import DSHTTP1
import Foundation
import XCTest

final class ResponseWriterTests: XCTestCase {
    private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testExactBytes() {
        XCTAssertEqual(
            text(ResponseWriter.response(status: .ok, body: "{\"a\": 1}", close: false)),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
        XCTAssertEqual(
            text(ResponseWriter.response(status: .ok, contentType: nil, body: "", close: false)),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(
            text(ResponseWriter.response(status: .notFound, contentType: "text/plain", body: "no", close: true)),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
        XCTAssertEqual(
            text(ResponseWriter.response(status: .created, body: "x", close: false, extraHeaders: "X-A: 1\r\nX-B: 2\r\n")),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 1\r\nX-A: 1\r\nX-B: 2\r\n\r\nx")
    }

    func testContentLengthCountsUTF8Bytes() {
        let body = "caf\u{e9} \u{1F600}"
        let out = ResponseWriter.response(status: .ok, body: body, close: false)
        guard case .complete(let head) = parseResponse(out) else { return XCTFail() }
        XCTAssertEqual(head.contentLength, UInt64(body.utf8.count))
        XCTAssertEqual(body.utf8.count, 10)
        XCTAssertEqual(Array(out[head.length...]), Array(body.utf8))
    }

    func testHeadOnlyOmitsBodyButKeepsLength() {
        let full = ResponseWriter.response(status: .ok, body: "hello", close: false)
        let head = ResponseWriter.response(status: .ok, body: "hello", close: false, headOnly: true)
        XCTAssertEqual(text(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n")
        XCTAssertEqual(Array(full.prefix(head.count)), head)
        XCTAssertEqual(full.count, head.count + 5)
    }

    func testFailureBody() {
        let out = ResponseWriter.failure(status: .serviceUnavailable, message: "No \"replica\" available", close: true)
        guard case .complete(let head) = parseResponse(out) else { return XCTFail() }
        XCTAssertEqual(head.status, 503)
        XCTAssertFalse(head.keepsConnection)
        let body = Array(out[head.length...])
        XCTAssertEqual(text(body), "{\"message\": \"No \\\"replica\\\" available\", \"status\": \"failure\"}")
        XCTAssertEqual(head.contentLength, UInt64(body.count))
        XCTAssertTrue(text(out).hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }

    /// Every status the writer can be given parses back with the strict parser, with the framing
    /// the body needs, and `Connection: close` exactly when asked.
    func testEveryStatusRoundTrips() {
        for status in HTTPStatus.allCases {
            for close in [false, true] {
                let bodyless = status.code < 200 || status == .noContent || status == .notModified
                let body = bodyless ? "" : "{\"status\": \(status.code)}"
                let out = ResponseWriter.response(status: status, body: body, close: close)
                guard case .complete(let head) = parseResponse(out) else {
                    XCTFail("\(status) does not parse back")
                    continue
                }
                XCTAssertEqual(head.status, status.code)
                XCTAssertEqual(head.version, .http11)
                XCTAssertEqual(head.keepsConnection, !close, "\(status) close=\(close)")
                XCTAssertEqual(head.contentLength, UInt64(body.utf8.count))
                XCTAssertEqual(out.count, head.length + body.utf8.count)
            }
        }
    }

    /// The reason phrases of RFC 9110 §15 and RFC 6585, typed in from the RFCs rather than taken
    /// from the type under test.
    static let rfcPhrases: [Int: String] = [
        100: "Continue", 101: "Switching Protocols",
        200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
        205: "Reset Content", 206: "Partial Content",
        300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
        305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
        400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
        408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed",
        413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
        417: "Expectation Failed", 421: "Misdirected Request", 422: "Unprocessable Content", 426: "Upgrade Required",
        428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout", 505: "HTTP Version Not Supported", 507: "Insufficient Storage",
        511: "Network Authentication Required",
    ]

    /// The type covers exactly the RFCs' statuses, and every one is written with its phrase.
    func testEveryStatusLineCarriesTheRFCReasonPhrase() {
        XCTAssertEqual(Set(HTTPStatus.allCases.map(\.code)), Set(Self.rfcPhrases.keys))
        for status in HTTPStatus.allCases {
            let phrase = Self.rfcPhrases[status.code] ?? "?"
            let expected = "HTTP/1.1 \(status.code) \(phrase)"
            XCTAssertEqual(status.statusLine, expected)
            for out in [
                ResponseWriter.response(status: status, body: "", close: false),
                ResponseWriter.failure(status: status, message: "m", close: true),
                ResponseWriter.head(status: status, contentType: "text/plain", contentLength: 0, close: false),
            ] {
                XCTAssertEqual(text(Array(out.prefix(while: { $0 != 13 }))), expected)
            }
        }
    }

    /// Walks Sources/ for every status ds-lb and ds-server can write (each is named through
    /// `HTTPStatus`), checks the walk found the ones the proxy and admin API answer with, and that
    /// no status line is typed by hand where the type cannot check it.
    func testEveryStatusTheCodeEmitsHasItsPhrase() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let sources = root.appendingPathComponent("Sources")
        // The case names, from the declaration (a case prints as its code).
        let declaration = try String(contentsOf: sources.appendingPathComponent("DSHTTP1/HTTPStatus.swift"), encoding: .utf8)
        let caseLine = try NSRegularExpression(pattern: #"case `?([a-zA-Z]+)`? = ([0-9]+)"#)
        var byName: [String: HTTPStatus] = [:]
        for match in caseLine.matches(in: declaration, range: NSRange(declaration.startIndex..., in: declaration)) {
            let name = String(declaration[Range(match.range(at: 1), in: declaration)!])
            byName[name] = HTTPStatus(rawValue: Int(declaration[Range(match.range(at: 2), in: declaration)!])!)
        }
        XCTAssertEqual(Set(byName.values.map(\.code)), Set(HTTPStatus.allCases.map(\.code)))
        // Status positions: a writer's `status:` argument, an HTTPParseError, an admin `.failure`
        // or the pool reconciler's `Refusal`, the type named outright, or a `return` of a
        // derived status, alone or first in a tuple (`ProxyError.status`, `ClientMachine`'s
        // verdicts); swift-format may break the line before the case.
        let use = try NSRegularExpression(
            pattern: #"(?:status:|HTTPParseError\(|\.failure\(|Refusal\(|HTTPStatus|return\s*\(?)\s*\.`?([a-zA-Z]+)`?"#)
        let handWritten = try NSRegularExpression(pattern: #""HTTP/1\.[01] [0-9]"#)
        var emitted: Set<Int> = []
        var files = 0
        let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let url = walker?.nextObject() as? URL {
            guard url.pathExtension == "swift" else { continue }
            let relative = String(url.path.dropFirst(sources.path.count + 1))
            // ds-bench sends requests; ds-alloc-count's fake replica is a measuring tool, not
            // something ds-lb or ds-server writes.
            if relative.hasPrefix("ds-bench/") || relative.hasPrefix("ds-alloc-count/") || relative.hasPrefix("DSDocker/") {
                continue
            }
            files += 1
            let source = try String(contentsOf: url, encoding: .utf8)
            let range = NSRange(source.startIndex..., in: source)
            for match in use.matches(in: source, range: range) {
                let name = String(source[Range(match.range(at: 1), in: source)!])
                // Members of HTTPStatus that are not cases (`HTTPStatus.allCases` and the like).
                if ["allCases", "init"].contains(name) { continue }
                // `status: .up` and friends: other types' members in a status position.
                guard let status = byName[name] else { continue }
                emitted.insert(status.code)
            }
            XCTAssertEqual(
                handWritten.numberOfMatches(in: source, range: range), 0,
                "\(relative) writes a status line by hand; use HTTPStatus")
        }
        XCTAssertGreaterThan(files, 50, "the walk did not find Sources/ at \(sources.path)")
        // The statuses ds-lb and ds-server answer with: the walk must find each of them.
        for code in [100, 101, 200, 400, 401, 403, 404, 405, 408, 409, 411, 413, 417, 431, 500, 501, 502, 503, 504, 505, 507] {
            XCTAssertTrue(emitted.contains(code), "no source writes \(code) any more: update this list")
        }
        for code in emitted.sorted() {
            let status = try XCTUnwrap(HTTPStatus(rawValue: code))
            XCTAssertEqual(
                text(Array(ResponseWriter.failure(status: status, message: "m", close: true).prefix(while: { $0 != 13 }))),
                "HTTP/1.1 \(code) \(Self.rfcPhrases[code] ?? "?")")
        }
    }
}
