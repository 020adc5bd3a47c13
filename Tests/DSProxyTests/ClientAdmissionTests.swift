import DSHTTP1
import XCTest

@testable import DSProxy

/// What a complete request head gets before any body byte is read, without a socket: the
/// parser's refusals and `ClientMachine.admit`'s (framing, expectation, body cap), for the
/// request shapes smuggling depends on. IntegrationTests.SmugglingCorpusTests sends the whole
/// corpus through a real ds-lb.
final class ClientAdmissionTests: XCTestCase {
    static let post = "POST /x?id=1 HTTP/1.1\r\nHost: lb\r\n"
    static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: lb\r\n\r\n"

    /// "proceed <body length>" or "<status> close|keep[ consume]", as the connection acts on it.
    func verdict(_ raw: String, maxBody: UInt64? = 1 << 20) -> String {
        let bytes = Array(raw.utf8)
        return bytes.withUnsafeBytes { buffer -> String in
            switch HeadParser().parseRequestInfo(buffer) {
            case .incomplete: return "incomplete"
            case .failed(let error): return "\(error.status.code) close" // refused by the parser
            case .complete(let head):
                switch ClientMachine.admit(head, maxBodyBytes: maxBody) {
                case .proceed(_, let length): return "proceed \(length == .max ? "chunked" : "\(length)")"
                case .refuse(let error, let close, let consume):
                    return "\(error.status.code) \(close ? "close" : "keep")\(consume ? " consume" : "")"
                }
            }
        }
    }

    func testValidRequestsProceedWithTheirBodyLength() {
        XCTAssertEqual(verdict("GET /ok?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n"), "proceed 0")
        XCTAssertEqual(verdict(Self.post + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi"), "proceed 2")
        XCTAssertEqual(verdict(Self.post + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), "proceed chunked")
    }

    func testContentLengthAndTransferEncodingTogetherAre400AndClose() {
        XCTAssertEqual(
            verdict(Self.post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + Self.smuggled), "400 close")
        XCTAssertEqual(
            verdict(Self.post + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + Self.smuggled), "400 close")
        XCTAssertEqual(verdict(Self.post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"), "400 close")
        XCTAssertEqual(verdict(Self.post + "Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n"), "400 close")
    }

    func testATransferCodingOtherThanAFinalChunkedIs400() {
        XCTAssertEqual(verdict(Self.post + "Transfer-Encoding: gzip\r\n\r\n" + Self.smuggled), "400 close")
    }

    func testConflictingContentLengthsAre400() {
        XCTAssertEqual(verdict(Self.post + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nhi"), "400 close")
        XCTAssertEqual(verdict(Self.post + "Content-Length: 2, 3\r\n\r\nhi"), "400 close")
    }

    /// RFC 9110 §10.1.1: 417 before the body; the connection goes on only if nothing was announced.
    func testAnExpectationOtherThan100ContinueIs417BeforeTheBody() {
        XCTAssertEqual(verdict(Self.post + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"), "proceed 2")
        XCTAssertEqual(verdict(Self.post + "Expect: something-else\r\nContent-Length: 2\r\n\r\nhi"), "417 close")
        XCTAssertEqual(verdict("GET /x?id=1 HTTP/1.1\r\nHost: lb\r\nExpect: foo\r\n\r\n"), "417 keep consume")
        XCTAssertEqual(
            verdict("GET /x?id=1 HTTP/1.1\r\nHost: lb\r\nExpect: foo\r\nConnection: close\r\n\r\n"), "417 close consume")
        // Two Expect fields: the last decides whether it is 100-continue, any other is refused.
        XCTAssertEqual(
            verdict(Self.post + "Expect: 100-continue\r\nExpect: foo\r\nContent-Length: 2\r\n\r\nhi"), "417 close")
        XCTAssertEqual(
            verdict(Self.post + "Expect: foo\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"), "proceed 2")
        // HTTP/1.0 has no expectations: the field is ignored.
        XCTAssertEqual(verdict("GET /x?id=1 HTTP/1.0\r\nHost: lb\r\nExpect: foo\r\n\r\n"), "proceed 0")
    }

    func testABodyOverTheCapIs413BeforeItIsRead() {
        XCTAssertEqual(verdict(Self.post + "Content-Length: 11\r\n\r\n", maxBody: 10), "413 close")
        XCTAssertEqual(verdict(Self.post + "Content-Length: 10\r\n\r\n", maxBody: 10), "proceed 10")
        // A refused expectation comes first (its body was not read either).
        XCTAssertEqual(verdict(Self.post + "Expect: x\r\nContent-Length: 11\r\n\r\n", maxBody: 10), "417 close")
        // A chunked body's size is unknown here: the cap is enforced chunk by chunk.
        XCTAssertEqual(verdict(Self.post + "Transfer-Encoding: chunked\r\n\r\n", maxBody: 10), "proceed chunked")
    }
}
