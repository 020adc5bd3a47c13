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

    func testHeadWithoutHopByHopFieldsIsOneRange() throws {
        let text = "GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
        let bytes = Array(text.utf8)
        try bytes.withUnsafeBytes { raw in
            guard case .complete(let head) = HeadParser().parseRequest(raw) else { return XCTFail() }
            XCTAssertEqual(HopByHop.keptRanges(of: head, in: raw), [0..<(bytes.count - 2)], "forwarded as it came")
        }
    }

    func testConnectionAndTheFieldsItNamesAreRemoved() throws {
        let out = try forwarded("GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nAccept: a\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\r\n")
        XCTAssertEqual(out, "GET / HTTP/1.1\r\nHost: x\r\nAccept: a\r\n")
    }

    func testUpgradeIsKeptOnlyWhenUpgrading() throws {
        let head = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        XCTAssertEqual(try forwarded(head), "GET /ws HTTP/1.1\r\nHost: x\r\n")
        XCTAssertEqual(try forwarded(head, upgrading: true), "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    }

    func testFirstAndLastFieldsCanBeRemoved() throws {
        XCTAssertEqual(try forwarded("GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: x\r\nTE: gzip\r\n\r\n"),
                       "GET / HTTP/1.1\r\nHost: x\r\n")
    }

    func testNamesMatchCaseInsensitively() throws {
        XCTAssertEqual(try forwarded("GET / HTTP/1.1\r\nHOST: x\r\nCONNECTION: X-Foo\r\nx-foo: 1\r\n\r\n"),
                       "GET / HTTP/1.1\r\nHOST: x\r\n")
    }
}
