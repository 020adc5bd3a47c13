import XCTest

@testable import DSProxy

/// `Expect: 100-continue` without a socket: ds-lb's own 100 Continue (sent once, only when the
/// body is wanted from an HTTP/1.1 client) and what happens to the replica's interim responses.
final class ContinueExpectationTests: XCTestCase {
    func testOur100ContinueGoesOnceWhenTheHeadIsSentAndTheBodyIsWanted() {
        var expectation = ContinueExpectation()
        XCTAssertTrue(expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: true))
        XCTAssertTrue(expectation.sent)
        // The head sent again (failover to the next replica): the client already has its 100.
        XCTAssertFalse(expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: true))
    }

    func testNo100ContinueWithoutTheExpectationABodyOrForHTTP10() {
        var expectation = ContinueExpectation()
        XCTAssertFalse(expectation.headSent(expectsContinue: false, clientHTTP11: true, bodyPending: true))
        XCTAssertFalse(expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: false))
        XCTAssertFalse(expectation.headSent(expectsContinue: true, clientHTTP11: false, bodyPending: true))
        XCTAssertFalse(expectation.sent)
    }

    func testTheReplicasOwn100IsDroppedOnceOursWent() {
        var expectation = ContinueExpectation()
        XCTAssertTrue(expectation.relaysInterim(status: 100, clientHTTP11: true), "ours did not go: the replica's does")
        _ = expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: true)
        XCTAssertFalse(expectation.relaysInterim(status: 100, clientHTTP11: true))
        XCTAssertTrue(expectation.relaysInterim(status: 103, clientHTTP11: true), "other interim responses go on")
    }

    func testNoInterimResponseGoesToAnHTTP10Client() {
        let expectation = ContinueExpectation()
        XCTAssertFalse(expectation.relaysInterim(status: 100, clientHTTP11: false))
        XCTAssertFalse(expectation.relaysInterim(status: 103, clientHTTP11: false))
    }

    func testANewRequestStartsWithoutOur100() {
        var expectation = ContinueExpectation()
        _ = expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: true)
        expectation.reset()
        XCTAssertFalse(expectation.sent)
        XCTAssertTrue(expectation.headSent(expectsContinue: true, clientHTTP11: true, bodyPending: true))
    }
}
