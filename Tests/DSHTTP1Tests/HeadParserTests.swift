import DSHTTP1
import XCTest

/// Parser behaviour that is not one row of the corpus: limits, incremental input, pipelining,
/// field accessors.
final class HeadParserTests: XCTestCase {
    // MARK: limits

    private func head(fieldCount: Int) -> String {
        var text = "GET / HTTP/1.1\r\nHost: lb\r\n"
        for k in 1..<fieldCount { text += "X-Field-\(k): \(k)\r\n" }
        return text + "\r\n"
    }

    func testHeaderCountAtLimitIsAccepted() {
        let limit = HTTPLimits().maxHeaderCount
        XCTAssertEqual(limit, 100)
        guard case .complete(let h) = parseRequest(head(fieldCount: limit)) else {
            return XCTFail("\(limit) fields must be accepted")
        }
        XCTAssertEqual(h.fields.count, limit)
    }

    func testHeaderCountOverLimitIs431() {
        let limit = HTTPLimits().maxHeaderCount
        guard case .failed(let error) = parseRequest(head(fieldCount: limit + 1)) else {
            return XCTFail("\(limit + 1) fields must be refused")
        }
        XCTAssertEqual(error.status.code, 431)
    }

    /// The parser notes where the lines end while it looks for the head's end, and takes the
    /// lines from those notes: only the first 64, only when it scanned the head from its first
    /// line, and only lines before a byte it refuses. Every field reads the same around that
    /// count, whole and one byte at a time, for requests and responses.
    func testFieldsAroundTheNotedLineCountReadTheSame() {
        for fieldCount in [1, 61, 62, 63, 64, 65, 66, 100] {
            let raw = bytes(head(fieldCount: fieldCount))
            for (reading, result) in [("whole", parseRequest(raw)), ("byte by byte", parseIncrementally(raw).0)] {
                guard case .complete(let h) = result else {
                    XCTFail("\(fieldCount) fields \(reading): \(Summary(result))")
                    continue
                }
                raw.withUnsafeBytes { buffer in
                    XCTAssertEqual(h.fields.map { $0.name(in: buffer) }, ["Host"] + (1..<fieldCount).map { "X-Field-\($0)" })
                    XCTAssertEqual(h.fields.map { $0.value(in: buffer) }, ["lb"] + (1..<fieldCount).map { "\($0)" })
                }
            }
            let response = bytes(
                "HTTP/1.1 200 OK\r\n" + (0..<fieldCount).map { "X-Field-\($0): \($0)\r\n" }.joined() + "\r\n")
            guard case .complete(let r) = parseResponse(response) else { return XCTFail("response with \(fieldCount) fields") }
            response.withUnsafeBytes { buffer in
                XCTAssertEqual(r.fields.map { $0.value(in: buffer) }, (0..<fieldCount).map { "\($0)" })
            }
        }
    }

    /// A NUL or a bare CR is refused on any line, before or past the noted ones, and the first
    /// bad line decides the error, as when each line is scanned as it is parsed.
    func testRefusedByteOnAnyLineAndTheFirstBadLineDecides() {
        for line in [1, 2, 3, 62, 63, 64, 65, 80] {
            for (byte, message) in [(UInt8(0), "NUL in message head"), (13, "Bare CR in message head")] {
                var raw = bytes(head(fieldCount: 90))
                // The value of field `line` (the request line is line 0, Host line 1).
                let marker = bytes(line == 1 ? "Host: l" : "X-Field-\(line - 1): ")
                guard let at = raw.firstRange(of: marker)?.upperBound else { return XCTFail("no field \(line)") }
                raw[at] = byte
                guard case .failed(let error) = parseRequest(raw) else {
                    XCTFail("byte \(byte) on line \(line) accepted")
                    continue
                }
                XCTAssertEqual(error, HTTPParseError(.badRequest, message), "byte \(byte) on line \(line)")
            }
        }
        let badName = "Bad Name: x\r\n", bareCR = "X-CR: a\rb\r\n"
        for (lines, message) in [
            ([badName, "A: 1\r\n", bareCR], "Whitespace before colon in header name"),
            ([bareCR, "A: 1\r\n", badName], "Bare CR in message head"),
        ] {
            guard case .failed(let error) = parseRequest("GET / HTTP/1.1\r\nHost: lb\r\n" + lines.joined() + "\r\n") else {
                XCTFail("\(lines) accepted")
                continue
            }
            XCTAssertEqual(error, HTTPParseError(.badRequest, message), "\(lines)")
        }
    }

    /// Field names the parser acts on are recognized in any ASCII case, and a name one other
    /// tchar away is not (the names are compared by words with the case bit set: `^` and `~`,
    /// `_` and DEL differ by that bit too).
    func testKnownFieldNamesInAnyCaseAndNoNameOneByteAway() {
        let known: [(name: String, value: String, acted: (RequestHeadInfo) -> Bool)] = [
            ("te", "trailers", { $0.hasHopByHopField }), ("host", "lb", { $0.hostCount == 1 }),
            ("expect", "100-continue", { $0.hasExpect }), ("upgrade", "websocket", { $0.hasHopByHopField }),
            ("connection", "close", { $0.connection.close }), ("keep-alive", "timeout=5", { $0.hasHopByHopField }),
            ("proxy-connection", "x", { $0.hasHopByHopField }), ("content-length", "5", { $0.contentLength == 5 }),
            ("transfer-encoding", "chunked", { $0.transferCodings.count == 1 }),
            ("x-forwarded-for", "10.0.0.1", { $0.forwarded.hasFor }), ("x-forwarded-proto", "https", { $0.forwarded.hasProto }),
        ]
        func info(_ name: [UInt8], _ value: String) -> RequestHeadInfo? {
            let raw = bytes("GET / HTTP/1.0\r\n") + name + bytes(": \(value)\r\n\r\n")
            return raw.withUnsafeBytes { buffer in
                guard case .complete(let head) = HeadParser().parseRequestInfo(buffer) else { return nil }
                return head
            }
        }
        let tchars = Array("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        for (name, value, acted) in known {
            let lower = Array(name.utf8)
            func upper(_ c: UInt8) -> UInt8 { (97...122).contains(c) ? c - 32 : c }
            let mixed = lower.indices.map { $0 % 2 == 0 ? upper(lower[$0]) : lower[$0] }
            for spelling in [lower, lower.map(upper), mixed] {
                guard let head = info(spelling, value) else { return XCTFail("\(name) refused") }
                XCTAssertTrue(acted(head), String(decoding: spelling, as: UTF8.self))
            }
            for k in lower.indices {
                for c in tchars where c != lower[k] && c != upper(lower[k]) {
                    var near = lower
                    near[k] = c
                    guard let head = info(near, value) else { continue }
                    XCTAssertFalse(acted(head), "\(String(decoding: near, as: UTF8.self)) taken for \(name)")
                }
            }
        }
    }

    func testCustomHeaderCountLimit() {
        let limits = HTTPLimits(maxHeadBytes: 64 * 1024, maxHeaderCount: 3)
        if case .complete = parseRequest(head(fieldCount: 3), limits: limits) {} else { XCTFail("3 fields allowed") }
        guard case .failed(let error) = parseRequest(head(fieldCount: 4), limits: limits) else { return XCTFail() }
        XCTAssertEqual(error.status.code, 431)
    }

    func testHeadLargerThanMaxHeadBytesIs431() {
        let limit = HTTPLimits().maxHeadBytes
        XCTAssertEqual(limit, 64 * 1024)
        let big = "GET / HTTP/1.1\r\nHost: lb\r\nX-Big: " + String(repeating: "a", count: limit) + "\r\n\r\n"
        guard case .failed(let error) = parseRequest(big) else { return XCTFail("an oversized complete head") }
        XCTAssertEqual(error.status.code, 431)
        // Still incomplete, but already past the limit: refused without waiting for the end.
        let partial = Array(big.utf8.prefix(limit + 10))
        guard case .failed(let error2) = parseRequest(partial) else { return XCTFail("an oversized partial head") }
        XCTAssertEqual(error2.status.code, 431)
    }

    func testHeadSizeLimitBoundary() {
        let prefix = "GET / HTTP/1.1\r\nHost: lb\r\nX: "
        let suffix = "\r\n\r\n"
        let limit = 200
        let limits = HTTPLimits(maxHeadBytes: limit, maxHeaderCount: 100)
        let exact = prefix + String(repeating: "v", count: limit - prefix.utf8.count - suffix.utf8.count) + suffix
        XCTAssertEqual(exact.utf8.count, limit)
        guard case .complete(let h) = parseRequest(exact, limits: limits) else { return XCTFail("a head of exactly the limit") }
        XCTAssertEqual(h.length, limit)
        let over = prefix + String(repeating: "v", count: limit - prefix.utf8.count - suffix.utf8.count + 1) + suffix
        guard case .failed(let error) = parseRequest(over, limits: limits) else { return XCTFail("one byte over") }
        XCTAssertEqual(error.status.code, 431)
        // An incomplete head exactly at the limit waits for more.
        if case .incomplete = parseRequest(Array(over.utf8.prefix(limit)), limits: limits) {
        } else {
            XCTFail("incomplete at the limit must wait")
        }
    }

    func testOversizedHeadFedIncrementallyIs431() {
        let limits = HTTPLimits(maxHeadBytes: 100, maxHeaderCount: 100)
        let big = bytes("GET / HTTP/1.1\r\nHost: lb\r\nX: " + String(repeating: "z", count: 300) + "\r\n\r\n")
        let (result, offered) = parseIncrementally(big, limits: limits)
        guard case .failed(let error) = result else { return XCTFail("expected 431") }
        XCTAssertEqual(error.status.code, 431)
        XCTAssertEqual(offered, 101, "refused as soon as the buffer passes the limit")
    }

    // MARK: incremental input

    func testIncompleteHeads() {
        for text in [
            "", "G", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: lb\r\n",
            "GET / HTTP/1.1\r\nHost: lb\r\n\r", "\r\n", "\r\n\r\n",
        ] {
            let raw = bytes(text)
            guard case .incomplete(let resume) = parseRequest(raw) else {
                XCTFail("'\(text.debugDescription)' must be incomplete")
                continue
            }
            XCTAssertGreaterThanOrEqual(resume, 0)
            XCTAssertLessThanOrEqual(resume, raw.count)
        }
    }

    func testResumeAtGivesSameResultAsWhole() {
        let raw = bytes(
            "POST /echo?id=42 HTTP/1.1\r\nHost: lb\r\nContent-Length: 11\r\nX-Long: " + String(repeating: "q", count: 500)
                + "\r\n\r\n")
        guard case .complete(let whole) = parseRequest(raw) else { return XCTFail() }
        // Every split point, resuming from the first half's resumeAt.
        for split in 1..<raw.count {
            guard case .incomplete(let resume) = parseRequest(Array(raw[0..<split])) else {
                XCTFail("split \(split): the first part must be incomplete")
                continue
            }
            guard case .complete(let head) = parseRequest(raw, from: resume) else {
                XCTFail("split \(split): resuming at \(resume) must complete")
                continue
            }
            XCTAssertEqual(head.length, whole.length)
            XCTAssertEqual(head.target, whole.target)
            XCTAssertEqual(head.contentLength, 11)
            XCTAssertEqual(head.fields, whole.fields)
        }
    }

    func testTerminatorSplitAcrossReads() {
        let raw = bytes("GET / HTTP/1.1\r\nHost: lb\r\n\r\n")
        for tailLength in 1...4 {
            let first = Array(raw.dropLast(tailLength))
            guard case .incomplete(let resume) = parseRequest(first) else { return XCTFail() }
            guard case .complete(let head) = parseRequest(raw, from: resume) else {
                return XCTFail("terminator split with \(tailLength) bytes in the second read")
            }
            XCTAssertEqual(head.length, raw.count)
        }
    }

    // MARK: pipelining

    func testPipelinedHeadsParseAfterConsuming() {
        let requests = [
            "GET /home?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: lb\r\nContent-Length: 5\r\n\r\nhello",
            "\r\nGET /home?id=3 HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n",
            "HEAD /x HTTP/1.1\r\nHost: lb\r\n\r\n",
        ]
        var buffer = bytes(requests.joined())
        var seen: [(String, String?, Bool)] = []
        while !buffer.isEmpty {
            guard case .complete(let head) = parseRequest(buffer) else { return XCTFail("pipelined head \(seen.count)") }
            guard case .success(let framing) = Framing.request(head) else { return XCTFail() }
            var bodyLength = 0
            if case .contentLength(let n) = framing { bodyLength = Int(n) }
            if bodyLength > 0 {
                XCTAssertEqual(Array(buffer[head.length..<head.length + bodyLength]), bytes("hello"))
            }
            seen.append((head.method, head.queryParameter("id").map(String.init), head.wantsKeepAlive))
            buffer.removeFirst(head.length + bodyLength)
        }
        XCTAssertEqual(seen.map(\.0), ["GET", "POST", "GET", "HEAD"])
        XCTAssertEqual(seen.map(\.1), ["1", nil, "3", nil])
        XCTAssertEqual(seen.map(\.2), [true, true, false, true])
    }

    func testPipelinedHeadLengthIsExact() {
        let first = bytes("GET /a HTTP/1.1\r\nHost: lb\r\n\r\n")
        let second = bytes("GET /b HTTP/1.1\r\nHost: lb\r\n\r\n")
        guard case .complete(let a) = parseRequest(first + second) else { return XCTFail() }
        XCTAssertEqual(a.length, first.count)
        XCTAssertEqual(a.target, "/a")
        guard case .complete(let b) = parseRequest(Array((first + second)[a.length...])) else { return XCTFail() }
        XCTAssertEqual(b.target, "/b")
        XCTAssertEqual(b.length, second.count)
    }

    // MARK: bytes the scans stop at

    /// The head is scanned several bytes at a time: a forbidden byte is refused with its own
    /// error at every offset of a long field line, and a tab, allowed, is kept at every offset.
    func testForbiddenByteIsRefusedAtEveryOffsetOfALine() {
        let name = Array("X-Long-Field-Name".utf8), value = Array("abcdefghijklmnopqrstuvwxyz0123".utf8)
        func head(_ name: [UInt8], _ value: [UInt8]) -> [UInt8] {
            bytes("GET /home?id=12345 HTTP/1.1\r\nHost: lb\r\n") + name + bytes(": ") + value + bytes("\r\nAccept: */*\r\n\r\n")
        }
        let refusals: [(byte: UInt8, message: String)] = [
            (0, "NUL in message head"), (13, "Bare CR in message head"), (10, "Bare LF in message head"),
            (1, "Control character in header value"), (31, "Control character in header value"),
            (127, "Control character in header value"),
        ]
        for (byte, message) in refusals {
            for k in value.indices {
                var bad = value
                bad[k] = byte
                guard case .failed(let error) = parseRequest(head(name, bad)) else {
                    XCTFail("byte \(byte) at value offset \(k) accepted")
                    continue
                }
                XCTAssertEqual(error, HTTPParseError(.badRequest, message), "byte \(byte) at value offset \(k)")
            }
        }
        for k in name.indices {
            var bad = name
            bad[k] = 0
            guard case .failed(let error) = parseRequest(head(bad, value)) else {
                return XCTFail("NUL at name offset \(k) accepted")
            }
            XCTAssertEqual(error, HTTPParseError(.badRequest, "NUL in message head"), "NUL at name offset \(k)")
        }
        for k in 1..<(value.count - 1) {
            var tabbed = value
            tabbed[k] = 9
            let raw = head(name, tabbed)
            guard case .complete(let parsed) = parseRequest(raw) else { return XCTFail("tab at value offset \(k) refused") }
            raw.withUnsafeBytes { buffer in
                XCTAssertEqual(parsed.fields.map { $0.value(in: buffer) }[1], String(decoding: tabbed, as: UTF8.self))
            }
        }
    }

    // MARK: accessors

    func testFieldOffsetsAndAccessors() {
        let raw = bytes("GET / HTTP/1.1\r\nHost:lb:5000\r\nX-Trim: \t  spaced value \t \r\nX-Empty:\r\n\r\n")
        guard case .complete(let head) = parseRequest(raw) else { return XCTFail() }
        raw.withUnsafeBytes { buffer in
            XCTAssertEqual(head.fields.map { $0.name(in: buffer) }, ["Host", "X-Trim", "X-Empty"])
            XCTAssertEqual(head.fields.map { $0.value(in: buffer) }, ["lb:5000", "spaced value", ""])
        }
        XCTAssertEqual(head.hostCount, 1)
        for field in head.fields {
            XCTAssertLessThan(field.nameStart, field.nameEnd)
            XCTAssertLessThanOrEqual(field.valueStart, field.valueEnd)
            XCTAssertLessThan(Int(field.valueEnd), head.length)
        }
    }

    func testQueryAccessors() {
        let cases: [(target: String, path: String, query: String?, id: String?)] = [
            ("/", "/", nil, nil),
            ("/home?", "/home", "", nil),
            ("/home?id=", "/home", "id=", ""),
            ("/home?id=12", "/home", "id=12", "12"),
            ("/home?&&id=5&", "/home", "&&id=5&", "5"),
            ("/home?a=1&id=x%20y", "/home", "a=1&id=x%20y", "x%20y"),
            ("/home?id=a=b", "/home", "id=a=b", "a=b"),
            ("/home?ID=1", "/home", "ID=1", nil),
            ("/p?q?id=1", "/p", "q?id=1", nil),
        ]
        for c in cases {
            guard case .complete(let head) = parseRequest("GET \(c.target) HTTP/1.1\r\nHost: lb\r\n\r\n") else {
                XCTFail(c.target)
                continue
            }
            XCTAssertEqual(String(head.path), c.path, c.target)
            XCTAssertEqual(head.query.map(String.init), c.query, c.target)
            XCTAssertEqual(head.queryParameter("id").map(String.init), c.id, c.target)
        }
    }

    // MARK: regressions

    /// A fragment in the target (`/home?id=12#frag`) is not part of the routing key.
    func testQueryDropsFragment() throws {
        guard case .complete(let head) = parseRequest("GET /home?id=12#frag HTTP/1.1\r\nHost: lb\r\n\r\n") else {
            return XCTFail("a target with a fragment is accepted today")
        }
        XCTAssertEqual(head.query.map(String.init), "id=12")
        XCTAssertEqual(head.queryParameter("id").map(String.init), "12")
    }

    /// Empty lines before the request line count toward `maxHeadBytes`, so a stream of CRLFs
    /// is refused with 431 instead of being buffered without bound.
    func testLeadingEmptyLinesCountTowardHeadLimit() throws {
        let flood: [UInt8] = (0..<128 * 1024).map { $0 % 2 == 0 ? 13 : 10 }
        guard case .failed(let error) = parseRequest(flood) else {
            return XCTFail("128 KiB of empty lines must be refused, got \(Summary(parseRequest(flood)))")
        }
        XCTAssertEqual(error.status.code, 431)
        guard case .failed(let error2) = parseRequest(flood + bytes("GET / HTTP/1.1\r\nHost: lb\r\n\r\n")) else {
            return XCTFail("a head after 128 KiB of empty lines must be refused")
        }
        XCTAssertEqual(error2.status.code, 431)
    }

    func testParseErrorDescription() {
        let error = HTTPParseError(.requestHeaderFieldsTooLarge, "Too many header fields")
        XCTAssertEqual(error.description, "431 Too many header fields")
        XCTAssertEqual(error, HTTPParseError(.requestHeaderFieldsTooLarge, "Too many header fields"))
    }
}
