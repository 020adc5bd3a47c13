import DSHTTP1
import XCTest

@testable import DSProxy

/// How an exchange ends, without a socket: the upgrade to a tunnel, and what the client and the
/// replica connection do after a response.
final class ExchangeEndingTests: XCTestCase {
    func testA101IsAcceptedOnlyForARequestedUpgradeWithNoBodyLeft() {
        XCTAssertTrue(ExchangeEnding.acceptsUpgrade(requested: true, requestBodyLeft: false))
        XCTAssertFalse(ExchangeEnding.acceptsUpgrade(requested: false, requestBodyLeft: false), "unrequested: 502")
        XCTAssertFalse(ExchangeEnding.acceptsUpgrade(requested: true, requestBodyLeft: true))
    }

    func testTheClientConnectionEndsWhenAskedWhenTheResponseRunsToCloseOrWhenDraining() {
        XCTAssertFalse(ExchangeEnding.closesClient(clientAsked: false, framing: .contentLength(2), draining: false))
        XCTAssertTrue(ExchangeEnding.closesClient(clientAsked: true, framing: .contentLength(2), draining: false))
        XCTAssertTrue(ExchangeEnding.closesClient(clientAsked: false, framing: .untilClose, draining: false))
        XCTAssertTrue(ExchangeEnding.closesClient(clientAsked: false, framing: .chunked, draining: true))
    }

    func testABodyTheReplicaDidNotReadEndsTheClientConnection() {
        XCTAssertFalse(ExchangeEnding.closesClientAtEnd(decided: false, requestBodyLeft: false))
        XCTAssertTrue(ExchangeEnding.closesClientAtEnd(decided: false, requestBodyLeft: true))
        XCTAssertTrue(ExchangeEnding.closesClientAtEnd(decided: true, requestBodyLeft: false))
    }

    func testTheReplicaConnectionIsPooledOnlyWhenNothingIsLeftOnIt() {
        func reusable(
            kept: Bool = true, framing: BodyFraming = .contentLength(2), bodyLeft: Bool = false, bytesAfter: Bool = false,
            draining: Bool = false
        ) -> Bool {
            ExchangeEnding.replicaReusable(
                keptByReplica: kept, framing: framing, requestBodyLeft: bodyLeft, bytesAfterResponse: bytesAfter,
                draining: draining)
        }
        XCTAssertTrue(reusable())
        XCTAssertTrue(reusable(framing: .none))
        XCTAssertFalse(reusable(kept: false), "the replica said Connection: close")
        XCTAssertFalse(reusable(framing: .untilClose))
        XCTAssertFalse(reusable(bodyLeft: true), "the replica answered before reading the whole body")
        XCTAssertFalse(reusable(bytesAfter: true), "bytes after the response: a second response glued on")
        XCTAssertFalse(reusable(draining: true))
    }
}
