import DSHTTP1
import XCTest

/// The request-head corpus: every rule of the strict parser and of `Framing.request`, one row
/// each, with the exact outcome (the framing and smuggling corpus, docs/ARCHITECTURE.md §8).
final class RequestCorpusTests: XCTestCase {
    /// What a complete head must look like.
    struct Head {
        var method = "GET"
        var target = "/"
        var path: String? = nil // defaults to the target's part before "?"
        var id: String? = nil // queryParameter("id")
        var version: HTTPVersion = .http11
        var contentLength: UInt64? = nil
        var codings: [String] = []
        var keepAlive = true
        var expectContinue = false
        var fields: Int? = nil
    }

    enum FramingOutcome {
        case body(BodyFraming)
        case refused(Int)
    }

    enum Expected {
        case complete(Head, FramingOutcome)
        case failed(Int)
    }

    struct Case {
        let name: String
        let raw: [UInt8]
        let expected: Expected
        let line: UInt
    }

    static func ok(
        _ name: String, _ raw: String, _ head: Head = Head(), framing: FramingOutcome = .body(.none),
        line: UInt = #line
    ) -> Case {
        Case(name: name, raw: bytes(raw), expected: .complete(head, framing), line: line)
    }

    static func fail(_ name: String, _ raw: String, _ status: Int, line: UInt = #line) -> Case {
        Case(name: name, raw: bytes(raw), expected: .failed(status), line: line)
    }

    /// Today chunked requests are refused with 501; once decoding lands they frame as chunked.
    static let chunkedOutcome: FramingOutcome = Framing.acceptsChunkedRequests ? .body(.chunked) : .refused(501)

    // One case per entry, name first, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    static let corpus: [Case] = [
        // MARK: valid requests
        ok("simple GET with id", "GET /home?id=12 HTTP/1.1\r\nHost: lb\r\n\r\n",
           Head(target: "/home?id=12", path: "/home", id: "12", fields: 1)),
        ok("id among other parameters", "GET /a/b?x=1&id=abc&id=2&y HTTP/1.1\r\nHost: lb\r\n\r\n",
           Head(target: "/a/b?x=1&id=abc&id=2&y", path: "/a/b", id: "abc")),
        ok("id without value", "GET /q?id HTTP/1.1\r\nHost: lb\r\n\r\n", Head(target: "/q?id", path: "/q", id: "")),
        ok("parameter that only starts with id", "GET /q?idx=1 HTTP/1.1\r\nHost: lb\r\n\r\n",
           Head(target: "/q?idx=1", path: "/q", id: nil)),
        ok("no query", "GET /heartbeat HTTP/1.1\r\nHost: lb\r\n\r\n", Head(target: "/heartbeat")),
        ok("absolute-form target", "GET http://lb:5000/home?id=7 HTTP/1.1\r\nHost: lb:5000\r\n\r\n",
           Head(target: "http://lb:5000/home?id=7", path: "/home", id: "7")),
        ok("absolute-form target, https, no path", "GET HTTPS://lb?id=8 HTTP/1.1\r\nHost: lb\r\n\r\n",
           Head(target: "HTTPS://lb?id=8", path: "", id: "8")),
        ok("authority-form CONNECT", "CONNECT lb:443 HTTP/1.1\r\nHost: lb:443\r\n\r\n",
           Head(method: "CONNECT", target: "lb:443")),
        ok("Host with port", "GET / HTTP/1.1\r\nHost: lb.example:8080\r\n\r\n", Head()),
        ok("Host IPv6 literal with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Head()),
        ok("Host IPv4 with empty port", "GET / HTTP/1.1\r\nHost: 127.0.0.1:\r\n\r\n", Head()),
        ok("asterisk-form OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: lb\r\n\r\n", Head(method: "OPTIONS", target: "*")),
        ok("POST with Content-Length", "POST /add HTTP/1.1\r\nHost: lb\r\nContent-Length: 27\r\n\r\n",
           Head(method: "POST", target: "/add", contentLength: 27), framing: .body(.contentLength(27))),
        ok("POST with Content-Length 0", "POST /add HTTP/1.1\r\nHost: lb\r\nContent-Length: 0\r\n\r\n",
           Head(method: "POST", target: "/add", contentLength: 0), framing: .body(.none)),
        ok("DELETE with body", "DELETE /rm HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n",
           Head(method: "DELETE", target: "/rm", contentLength: 30, fields: 3), framing: .body(.contentLength(30))),
        ok("lowercase field names", "PUT /x HTTP/1.1\r\nhost: lb\r\ncontent-length: 3\r\n\r\n",
           Head(method: "PUT", target: "/x", contentLength: 3), framing: .body(.contentLength(3))),
        ok("uppercase field names", "PUT /x HTTP/1.1\r\nHOST: lb\r\nCONTENT-LENGTH: 3\r\n\r\n",
           Head(method: "PUT", target: "/x", contentLength: 3), framing: .body(.contentLength(3))),
        ok("Content-Length with OWS", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: \t 5 \t\r\n\r\n",
           Head(method: "POST", contentLength: 5), framing: .body(.contentLength(5))),
        ok("Content-Length leading zeros", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 007\r\n\r\n",
           Head(method: "POST", contentLength: 7), framing: .body(.contentLength(7))),
        ok("Content-Length at 18 digits", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 999999999999999999\r\n\r\n",
           Head(method: "POST", contentLength: 999_999_999_999_999_999),
           framing: .body(.contentLength(999_999_999_999_999_999))),
        ok("identical duplicate Content-Length", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
           Head(method: "POST", contentLength: 5, fields: 3), framing: .body(.contentLength(5))),
        ok("HTTP/1.0 without Host", "GET /home?id=3 HTTP/1.0\r\n\r\n",
           Head(target: "/home?id=3", path: "/home", id: "3", version: .http10, keepAlive: false, fields: 0)),
        ok("HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: lb\r\n\r\n", Head(version: .http10, keepAlive: false)),
        ok("HTTP/1.0 keep-alive asked", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
           Head(version: .http10, keepAlive: true)),
        ok("HTTP/1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
           Head(version: .http10, keepAlive: false)),
        ok("HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n",
           Head(keepAlive: false)),
        ok("HTTP/1.1 Connection token list", "GET / HTTP/1.1\r\nHost: lb\r\nConnection: Upgrade ,  CLOSE\r\nUpgrade: websocket\r\n\r\n",
           Head(keepAlive: false)),
        ok("HTTP/1.1 Connection: keep-alive", "GET / HTTP/1.1\r\nHost: lb\r\nConnection: keep-alive\r\n\r\n", Head()),
        ok("one leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: lb\r\n\r\n", Head()),
        ok("several leading CRLFs", "\r\n\r\n\r\nGET /x?id=9 HTTP/1.1\r\nHost: lb\r\n\r\n",
           Head(target: "/x?id=9", path: "/x", id: "9")),
        ok("Expect: 100-continue", "POST /echo HTTP/1.1\r\nHost: lb\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n",
           Head(method: "POST", target: "/echo", contentLength: 10, expectContinue: true), framing: .body(.contentLength(10))),
        ok("value with tab, obs-text and trailing OWS", "GET / HTTP/1.1\r\nHost: lb\r\nX-Note: a\tb \u{e9}  \t\r\n\r\n",
           Head(fields: 2)),
        ok("empty field value", "GET / HTTP/1.1\r\nHost: lb\r\nX-Empty:\r\n\r\n", Head(fields: 2)),
        ok("token characters in name", "GET / HTTP/1.1\r\nHost: lb\r\nX-!#$%&'*+.^_`|~09az: 1\r\n\r\n", Head(fields: 2)),

        // MARK: request line
        fail("HTTP/2.0", "GET / HTTP/2.0\r\nHost: lb\r\n\r\n", 505),
        fail("HTTP/0.9 version string", "GET / HTTP/0.9\r\nHost: lb\r\n\r\n", 505),
        fail("HTTP/1.2", "GET / HTTP/1.2\r\nHost: lb\r\n\r\n", 505),
        fail("lowercase version", "GET / http/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("version with trailing space", "GET / HTTP/1.1 \r\nHost: lb\r\n\r\n", 400),
        fail("two-digit major", "GET / HTTP/11.1\r\nHost: lb\r\n\r\n", 400),
        fail("missing version", "GET /\r\nHost: lb\r\n\r\n", 400),
        fail("HTTP/0.9 request", "GET /x\r\n", 400),
        fail("missing target", "GET  HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("space inside target", "GET /a b HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("non-token method", "G(T / HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("leading space before method", " GET / HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("NUL in target", "GET /a\u{0}b HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("bare LF ends request line", "GET / HTTP/1.1\nHost: lb\r\n\r\n", 400),

        // MARK: Host
        fail("missing Host on HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
        fail("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        fail("duplicate identical Host", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
        fail("duplicate Host on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        fail("empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
        fail("empty Host with spaces", "GET / HTTP/1.1\r\nHost:   \r\n\r\n", 400),
        fail("Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
        fail("Host list without space", "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400),
        fail("Host with userinfo and path", "GET / HTTP/1.1\r\nHost: a@b/c\r\n\r\n", 400),
        fail("Host with path", "GET / HTTP/1.1\r\nHost: a/c\r\n\r\n", 400),
        fail("Host with inner space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        fail("Host port not a number", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400),
        fail("Host port too long", "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400),
        fail("Host only a port", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
        fail("Host IP literal unclosed", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
        fail("empty Host on HTTP/1.0", "GET / HTTP/1.0\r\nHost:\r\n\r\n", 400),
        fail("absolute-form with userinfo", "GET http://u:p@lb/ HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("absolute-form without host", "GET http:///x HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        fail("absolute-form with another scheme", "GET ftp://lb/x HTTP/1.1\r\nHost: lb\r\n\r\n", 400),

        // MARK: field syntax
        fail("space before colon", "GET / HTTP/1.1\r\nHost : lb\r\n\r\n", 400),
        fail("tab before colon", "GET / HTTP/1.1\r\nHost: lb\r\nContent-Length\t: 5\r\n\r\n", 400),
        fail("obs-fold with space", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: b\r\n c\r\n\r\n", 400),
        fail("obs-fold with tab", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: b\r\n\tc\r\n\r\n", 400),
        fail("first field line folded", "GET / HTTP/1.1\r\n Host: lb\r\n\r\n", 400),
        fail("bare LF between fields", "GET / HTTP/1.1\r\nHost: lb\nX-A: b\r\n\r\n", 400),
        fail("bare LF terminator", "GET / HTTP/1.1\r\nHost: lb\n\n", 400),
        fail("bare CR in value", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: b\rc\r\n\r\n", 400),
        fail("NUL in value", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: b\u{0}c\r\n\r\n", 400),
        fail("NUL in name", "GET / HTTP/1.1\r\nHost: lb\r\nX\u{0}A: b\r\n\r\n", 400),
        fail("DEL in value", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: b\u{7f}\r\n\r\n", 400),
        fail("control character in value", "GET / HTTP/1.1\r\nHost: lb\r\nX-A: \u{1b}[0m\r\n\r\n", 400),
        fail("empty field name", "GET / HTTP/1.1\r\nHost: lb\r\n: b\r\n\r\n", 400),
        fail("non-token field name", "GET / HTTP/1.1\r\nHost: lb\r\nX(A): b\r\n\r\n", 400),
        fail("non-ASCII field name", "GET / HTTP/1.1\r\nHost: lb\r\nX-\u{e9}: b\r\n\r\n", 400),
        fail("field line without colon", "GET / HTTP/1.1\r\nHost: lb\r\nNoColon\r\n\r\n", 400),

        // MARK: Content-Length
        fail("Content-Length not a number", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: abc\r\n\r\n", 400),
        fail("Content-Length with plus", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: +5\r\n\r\n", 400),
        fail("Content-Length negative", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: -1\r\n\r\n", 400),
        fail("Content-Length empty", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: \r\n\r\n", 400),
        fail("Content-Length hex", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 0x10\r\n\r\n", 400),
        fail("Content-Length with inner space", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 1 0\r\n\r\n", 400),
        fail("Content-Length list", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5, 5\r\n\r\n", 400),
        fail("Content-Length 2^64", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 18446744073709551616\r\n\r\n", 400),
        fail("Content-Length far past 2^64", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 400),
        fail("differing Content-Length", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        fail("differing Content-Length, second invalid", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nContent-Length: 5a\r\n\r\n", 400),

        // MARK: Transfer-Encoding (Framing.request)
        ok("Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           Head(method: "POST", contentLength: 5, codings: ["chunked"]), framing: .refused(400)),
        ok("Transfer-Encoding then Content-Length", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
           Head(method: "POST", contentLength: 0, codings: ["chunked"]), framing: .refused(400)),
        ok("chunked alone", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n",
           Head(method: "POST", codings: ["chunked"]), framing: chunkedOutcome),
        ok("Chunked in mixed case", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: ChUnKeD\r\n\r\n",
           Head(method: "POST", codings: ["chunked"]), framing: chunkedOutcome),
        ok("gzip, chunked", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           Head(method: "POST", codings: ["gzip", "chunked"]), framing: chunkedOutcome),
        ok("gzip and chunked in two fields", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
           Head(method: "POST", codings: ["gzip", "chunked"]), framing: chunkedOutcome),
        ok("unknown coding before chunked", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
           Head(method: "POST", codings: ["foo", "chunked"]), framing: .refused(501)),
        ok("TE not ending in chunked", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: gzip\r\n\r\n",
           Head(method: "POST", codings: ["gzip"]), framing: .refused(400)),
        ok("chunked, gzip", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
           Head(method: "POST", codings: ["chunked", "gzip"]), framing: .refused(400)),
        ok("unknown coding alone", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: identity\r\n\r\n",
           Head(method: "POST", codings: ["identity"]), framing: .refused(400)),
        ok("chunked twice", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
           Head(method: "POST", codings: ["chunked", "chunked"]), framing: .refused(400)),
        ok("TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
           Head(method: "POST", version: .http10, codings: ["chunked"], keepAlive: false), framing: .refused(400)),
        fail("empty transfer coding", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked,\r\n\r\n", 400),
        fail("empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding:\r\n\r\n", 400),
    ]

    func testCorpusIsLargeEnough() {
        XCTAssertGreaterThanOrEqual(Self.corpus.count, 40)
        XCTAssertEqual(Set(Self.corpus.map(\.name)).count, Self.corpus.count, "case names must be unique")
    }

    /// An HTTP/0.9 request (`GET /x` and CRLF, no head after it) or any request line that
    /// cannot start a head is refused as soon as its line is complete, not after the head
    /// deadline: the parser does not ask for more bytes.
    func testInvalidRequestLineFailsBeforeTheHeadIsComplete() {
        for raw in ["GET /x\r\n", "GET /x\r\nHost: lb\r\n", "GET / HTTP/9.9\r\n", "G(T / HTTP/1.1\r\n"] {
            let result = bytes(raw).withUnsafeBytes { HeadParser().parseRequestInfo($0) }
            guard case .failed(let error) = result else { XCTFail("\(raw.debugDescription): \(result)"); continue }
            XCTAssertGreaterThanOrEqual(error.status.code, 400, raw.debugDescription)
        }
        // The request line is judged first however the head arrives: whole, with a bare LF or
        // too many bytes after the line, the refusal is the line's, as when it came alone.
        for raw in ["GET / HTTP/2.0\r\nX-A: b\nc\r\n\r\n", "GET / HTTP/2.0\r\nX-A: " + String(repeating: "b", count: 70_000)] {
            let result = bytes(raw).withUnsafeBytes { HeadParser().parseRequestInfo($0) }
            guard case .failed(let error) = result else { XCTFail("\(result)"); continue }
            XCTAssertEqual(error.status.code, 505, error.message)
        }
        // A valid request line still waits for the rest of its head.
        let valid = bytes("GET /x HTTP/1.1\r\nHost: lb\r\n").withUnsafeBytes { HeadParser().parseRequestInfo($0) }
        guard case .incomplete = valid else { return XCTFail("\(valid)") }
    }

    func testCorpusWholeBuffer() {
        for c in Self.corpus {
            check(c, parseRequest(c.raw))
        }
    }

    /// The same corpus fed one byte at a time, resuming at `resumeAt`: the same outcome, and a
    /// complete head only once its last byte has arrived.
    func testCorpusByteByByte() {
        for c in Self.corpus {
            let whole = Summary(parseRequest(c.raw))
            let (result, offered) = parseIncrementally(c.raw)
            XCTAssertEqual(Summary(result), whole, "\(c.name)", line: c.line)
            if case .complete = result {
                XCTAssertEqual(offered, c.raw.count, "\(c.name): complete before the head's last byte", line: c.line)
            }
        }
    }

    /// A body or the next request after the head never changes the head's outcome, and `length`
    /// points exactly at the first byte after the head.
    func testCorpusWithTrailingBytes() {
        let tail = bytes("GET /next HTTP/1.1\r\nHost: lb\r\n\r\n")
        for c in Self.corpus {
            let whole = Summary(parseRequest(c.raw))
            let result = parseRequest(c.raw + tail)
            XCTAssertEqual(Summary(result), whole, "\(c.name)", line: c.line)
            if case .complete(let head) = result {
                XCTAssertEqual(head.length, c.raw.count, "\(c.name)", line: c.line)
            }
        }
    }

    private func check(_ c: Case, _ result: HeadParseResult<RequestHead>) {
        switch (c.expected, result) {
        case (.failed(let status), .failed(let error)):
            XCTAssertEqual(error.status.code, status, "\(c.name): \(error.message)", line: c.line)
            XCTAssertFalse(error.message.isEmpty, "\(c.name)", line: c.line)
        case (.complete(let want, let framing), .complete(let head)):
            XCTAssertEqual(head.method, want.method, "\(c.name)", line: c.line)
            XCTAssertEqual(head.target, want.target, "\(c.name)", line: c.line)
            let path = want.path ?? String(want.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
            XCTAssertEqual(String(head.path), path, "\(c.name)", line: c.line)
            XCTAssertEqual(head.queryParameter("id").map(String.init), want.id, "\(c.name)", line: c.line)
            XCTAssertEqual(head.version, want.version, "\(c.name)", line: c.line)
            XCTAssertEqual(head.contentLength, want.contentLength, "\(c.name)", line: c.line)
            XCTAssertEqual(head.transferCodings, want.codings, "\(c.name)", line: c.line)
            XCTAssertEqual(head.wantsKeepAlive, want.keepAlive, "\(c.name)", line: c.line)
            XCTAssertEqual(head.expectContinue, want.expectContinue, "\(c.name)", line: c.line)
            XCTAssertEqual(head.length, c.raw.count, "\(c.name): length must cover the whole head", line: c.line)
            XCTAssertEqual(head.isHead, head.method == "HEAD", "\(c.name)", line: c.line)
            if let fields = want.fields { XCTAssertEqual(head.fields.count, fields, "\(c.name)", line: c.line) }
            switch (framing, Framing.request(head)) {
            case (.body(let expected), .success(let actual)):
                XCTAssertEqual(actual, expected, "\(c.name)", line: c.line)
            case (.refused(let status), .failure(let error)):
                XCTAssertEqual(error.status.code, status, "\(c.name): \(error.message)", line: c.line)
            case (let expected, let actual):
                XCTFail("\(c.name): framing expected \(expected), got \(actual)", line: c.line)
            }
        case (let expected, let actual):
            XCTFail("\(c.name): expected \(expected), got \(Summary(actual))", line: c.line)
        }
    }
}
