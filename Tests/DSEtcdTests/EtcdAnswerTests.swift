import Foundation
import XCTest

@testable import DSEtcd

/// Answers no etcd sends, decoded as the client decodes them: each is a `malformedResponse`
/// naming the field and its value, never a trap in a caller that holds a revision as a UInt64
/// or adds one to it.
final class EtcdAnswerTests: XCTestCase {
    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    private func rangeAnswer(header: String = "\"5\"", modRevision: String) throws -> [String: Any] {
        try json(
            """
            {"header": {"revision": \(header)},
             "kvs": [{"key": "YQ==", "value": "Yg==", "create_revision": "2", "mod_revision": \(modRevision),
                      "version": "1"}], "count": "1"}
            """)
    }

    private func assertMalformed(
        _ answer: [String: Any], naming words: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try EtcdClient.rangeAnswer(answer), file: file, line: line) { error in
            guard case .malformedResponse(let text) = error as? EtcdError else {
                return XCTFail("\(error) is not a malformed answer", file: file, line: line)
            }
            for word in words { XCTAssertTrue(text.contains(word), "\(text) does not name \(word)", file: file, line: line) }
        }
    }

    func testAWellFormedRangeAnswerDecodes() throws {
        let answer = try EtcdClient.rangeAnswer(try rangeAnswer(modRevision: "\"4\""))
        XCTAssertEqual(answer.revision, 5)
        XCTAssertEqual(answer.kvs.map(\.modRevision), [4])
        XCTAssertEqual(answer.kvs.map(\.value), [Array("b".utf8)])
        // proto3's JSON leaves zeros out, and a plain JSON number is read too.
        let sparse = try EtcdClient.rangeAnswer(try json(#"{"header": {"revision": 7}, "kvs": [{"key": "YQ=="}]}"#))
        XCTAssertEqual(sparse.revision, 7)
        XCTAssertEqual(sparse.kvs.first?.modRevision, 0)
    }

    func testANegativeModRevisionIsAMalformedAnswerNamingIt() throws {
        assertMalformed(try rangeAnswer(modRevision: "\"-1\""), naming: ["mod_revision", "-1"])
    }

    func testANonNumericModRevisionIsAMalformedAnswerNamingIt() throws {
        assertMalformed(try rangeAnswer(modRevision: "\"twelve\""), naming: ["mod_revision", "twelve"])
        assertMalformed(try rangeAnswer(modRevision: "1.5"), naming: ["mod_revision", "1.5"])
    }

    func testARevisionPastInt64MaxIsAMalformedAnswerNamingIt() throws {
        assertMalformed(try rangeAnswer(modRevision: "\"9223372036854775808\""), naming: ["mod_revision", "9223372036854775808"])
        // Int64.max itself has no next revision to watch from.
        assertMalformed(try rangeAnswer(header: "\"9223372036854775807\"", modRevision: "\"4\""), naming: ["revision"])
        assertMalformed(try rangeAnswer(header: "\"-3\"", modRevision: "\"4\""), naming: ["revision", "-3"])
    }

    func testOtherCountsAreCheckedTheSameWay() throws {
        for field in ["create_revision", "version"] {
            let answer = try json(#"{"header": {"revision": "5"}, "kvs": [{"key": "YQ==", "\#(field)": "-2"}]}"#)
            assertMalformed(answer, naming: [field, "-2"])
        }
        assertMalformed(try json(#"{"header": {"revision": "5"}, "kvs": [{"key": "YQ==", "lease": "1.5"}]}"#), naming: ["lease"])
        XCTAssertThrowsError(try EtcdClient.keepAliveAnswer(try json(#"{"result": {"TTL": "ten"}}"#)))
        XCTAssertThrowsError(try EtcdClient.grantAnswer(try json(#"{"ID": "seven", "TTL": "10"}"#)))
    }

    /// A lease ID is a name, not a count: etcd 3.4 grants the ID a client asks for, negative or
    /// Int64.max too (`/v3/lease/grant {"ID": "-5"}` answers `"ID": "-5"`), and a key put under
    /// it carries it in every range answer.
    func testALeaseIDIsAnyInt64() throws {
        for id in ["-5", "9223372036854775807"] {
            let answer = try EtcdClient.rangeAnswer(
                try json(#"{"header": {"revision": "3"}, "kvs": [{"key": "YQ==", "lease": "\#(id)"}]}"#))
            XCTAssertEqual(answer.kvs.map(\.lease), [Int64(id)])
            let granted = try EtcdClient.grantAnswer(try json(#"{"ID": "\#(id)", "TTL": "60"}"#))
            XCTAssertEqual(granted.id, Int64(id))
        }
    }

    /// A TTL of 0 or less says the lease is gone (LeaseTimeToLive answers -1 for one): the
    /// membership fences on it, where a malformed answer would only be retried.
    func testAKeepAliveTTLBelowZeroSaysTheLeaseIsGone() throws {
        XCTAssertEqual(try EtcdClient.keepAliveAnswer(try json(#"{"result": {"TTL": "-1"}}"#)), -1)
        // etcd 3.4's answer for a revoked lease leaves the TTL out.
        XCTAssertEqual(try EtcdClient.keepAliveAnswer(try json(#"{"result": {"ID": "12345"}}"#)), 0)
        XCTAssertEqual(try EtcdClient.keepAliveAnswer(try json(#"{"result": {"TTL": "60"}}"#)), 60)
    }
}
