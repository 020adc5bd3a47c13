import XCTest

@testable import DSHTTP1

final class HopByHopTests: XCTestCase {
    /// The head as a proxy would forward it: the kept ranges joined.
    private func forwarded(_ text: String, upgrading: Bool = false) throws -> String {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw -> String in
            guard case .complete(let head) = HeadParser().parseRequest(raw) else {
                throw XCTSkip("unparsable test head")
            }
            let ranges = HopByHop.keptRanges(of: head, in: raw, upgrading: upgrading)
            return ranges.map { String(decoding: raw[$0], as: UTF8.self) }.joined()
        }
    }

    func testHeadWithoutHopByHopFieldsIsOneRange() {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            guard case .complete(let head) = HeadParser().parseRequest(raw) else { return XCTFail() }
            XCTAssertEqual(HopByHop.keptRanges(of: head, in: raw), [0..<(bytes.count - 2)], "forwarded as it came")
        }
    }

    func testConnectionAndTheFieldsItNamesAreRemoved() throws {
        let out = try forwarded(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nAccept: a\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n"
        )
        XCTAssertEqual(out, "GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\n")
    }

    func testUpgradeIsKeptOnlyWhenUpgrading() throws {
        let head = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        XCTAssertEqual(try forwarded(head), "GET /ws HTTP/1.1\r\nHost: x\r\n")
        XCTAssertEqual(try forwarded(head, upgrading: true), "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    }

    func testFirstAndLastFieldsCanBeRemoved() throws {
        XCTAssertEqual(
            try forwarded("GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: x\r\nTE: gzip\r\n\r\n"),
            "GET / HTTP/1.1\r\nHost: x\r\n")
    }

    func testNamesMatchCaseInsensitively() throws {
        XCTAssertEqual(
            try forwarded("GET / HTTP/1.1\r\nHOST: x\r\nCONNECTION: X-Foo\r\nx-foo: 1\r\n\r\n"),
            "GET / HTTP/1.1\r\nHOST: x\r\n")
    }

    /// `Connection` cannot remove the fields framing and routing depend on: the token is
    /// ignored, the field goes on (request smuggling otherwise: the body would be read as the
    /// next request on a pooled connection).
    func testConnectionCannotRemoveFramingHostOrCookie() throws {
        let out = try forwarded(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: CONTENT-LENGTH, close, host, Cookie, X-Secret\r\n"
                + "Content-Length: 5\r\nCookie: a=1\r\nX-Secret: s\r\n\r\n")
        XCTAssertEqual(out, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nCookie: a=1\r\n")
        let chunked = try forwarded(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n")
        XCTAssertEqual(chunked, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n")
        // A second Connection line, and the large-list path (a set of names), alike.
        let second = try forwarded(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\n")
        XCTAssertEqual(second, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n")
        let many = (0..<300).map { "X-N\($0)" }.joined(separator: ", ")
        let large = try forwarded(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: \(many), content-length\r\n"
                + (0..<60).map { "X-F\($0): v\r\n" }.joined() + "Content-Length: 1\r\nX-N1: d\r\n\r\n")
        XCTAssertTrue(large.hasSuffix("X-F59: v\r\nContent-Length: 1\r\n"), large)
    }

    /// The pieces the proxy writes for a request, joined.
    private func sent(_ text: String, replaceForwarded: Bool = true, routingFields: [String] = []) throws -> String {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { raw -> String in
            guard case .complete(let head) = HeadParser().parseRequestInfo(raw) else { throw XCTSkip("unparsable test head") }
            var out: [UInt8] = []
            HopByHop.forEachForwardedPiece(
                of: head, in: raw, upgrading: false, replaceForwarded: replaceForwarded,
                routingFields: routingFields
            ) { out.append(contentsOf: $0) }
            return String(decoding: out, as: UTF8.self)
        }
    }

    func testTheRoutingKeyFieldCannotBeRemovedByConnection() throws {
        let head = "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-User, X-Other\r\nX-User: 7\r\nX-Other: o\r\n\r\n"
        XCTAssertEqual(try sent(head, routingFields: ["x-user"]), "GET / HTTP/1.1\r\nHost: x\r\nX-User: 7\r\n")
        XCTAssertEqual(try sent(head), "GET / HTTP/1.1\r\nHost: x\r\n")
    }

    func testAbsoluteFormGoesOutInOriginFormWithItsAuthorityAsHost() throws {
        XCTAssertEqual(
            try sent("GET http://a.example:81/p?q=1 HTTP/1.1\r\nHost: other\r\nAccept: */*\r\n\r\n"),
            "GET /p?q=1 HTTP/1.1\r\nAccept: */*\r\nHost: a.example:81\r\n")
        XCTAssertEqual(try sent("GET HTTP://a?x HTTP/1.0\r\n\r\n"), "GET /?x HTTP/1.0\r\nHost: a\r\n")
        XCTAssertEqual(
            try sent("OPTIONS http://a HTTP/1.1\r\nhost: a\r\nConnection: close\r\n\r\n"),
            "OPTIONS / HTTP/1.1\r\nHost: a\r\n")
    }

    func testClientForwardedFieldsAreReplacedUnlessTrusted() throws {
        let head =
            "GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6\r\nHost: x\r\nx-forwarded-proto: https\r\nX-Forwarded-Host: h\r\n\r\n"
        XCTAssertEqual(try sent(head), "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: h\r\n")
        XCTAssertEqual(try sent(head, replaceForwarded: false), String(decoding: Array(head.utf8).dropLast(2), as: UTF8.self))
    }

    func testOrdinaryHeadIsOnePiece() throws {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        let bytes = Array(text.utf8)
        bytes.withUnsafeBytes { raw in
            guard case .complete(let head) = HeadParser().parseRequestInfo(raw) else { return XCTFail() }
            var pieces = 0
            HopByHop.forEachForwardedPiece(of: head, in: raw, upgrading: false, replaceForwarded: true) { _ in pieces += 1 }
            XCTAssertEqual(pieces, 1)
        }
    }
}
