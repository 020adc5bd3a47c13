import XCTest

@testable import DSHTTP1

/// `HopByHop.keptResponseRanges`: what of a replica's response head reaches the client.
final class ResponseHopByHopTests: XCTestCase {
    private func relayed(_ text: String, upgrading: Bool = false) throws -> String {
        let raw = Array(text.utf8)
        return try raw.withUnsafeBytes { bytes -> String in
            guard case .complete(let head) = HeadParser().parseResponse(bytes) else { throw XCTSkip("unparsable test head") }
            return HopByHop.keptResponseRanges(fields: head.fields, length: head.length, in: bytes, upgrading: upgrading)
                .map { String(decoding: bytes[$0], as: UTF8.self) }.joined()
        }
    }

    func testOrdinaryResponseIsOneRangeWithoutTheFinalEmptyLine() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\n"
        Array(text.utf8).withUnsafeBytes { bytes in
            guard case .complete(let head) = HeadParser().parseResponse(bytes) else { return XCTFail() }
            XCTAssertEqual(
                HopByHop.keptResponseRanges(fields: head.fields, length: head.length, in: bytes, upgrading: false),
                [0..<(text.utf8.count - 2)])
        }
    }

    func testHopByHopFieldsAndTheFieldsConnectionNamesAreRemoved() throws {
        let out = try relayed(
            "HTTP/1.1 200 OK\r\nconnection: X-Private , KEEP-ALIVE\r\nx-private: s\r\nContent-Length: 2\r\n"
                + "Keep-Alive: timeout=5\r\nProxy-Connection: close\r\nTe: trailers\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n")
        XCTAssertEqual(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: yes\r\n")
    }

    func testUpgradeIsKeptOnlyWhenSwitchingProtocols() throws {
        let text =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: k\r\n\r\n"
        XCTAssertEqual(
            try relayed(text, upgrading: true),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\n")
        XCTAssertEqual(try relayed(text), "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: k\r\n")
    }

    func testFirstAndLastFieldsCanBeRemoved() throws {
        XCTAssertEqual(
            try relayed("HTTP/1.1 204 No Content\r\nConnection: close\r\nDate: d\r\nKeep-Alive: 1\r\n\r\n"),
            "HTTP/1.1 204 No Content\r\nDate: d\r\n")
        XCTAssertEqual(try relayed("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"), "HTTP/1.1 204 No Content\r\n")
    }

    func testANameThatOnlyStartsLikeAListedOneIsKept() throws {
        XCTAssertEqual(
            try relayed("HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-AB: 1\r\nX-A: 2\r\nContent-Length: 0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nX-AB: 1\r\nContent-Length: 0\r\n")
    }
}
