import DSHTTP1
import XCTest

@testable import DSProxy

/// The upstream exchange's phases and its two deadlines, without a socket: every transition of
/// `ExchangeMachine.State` and what a deadline that passes means in each phase.
final class ExchangeMachineTests: XCTestCase {
    func testANewConnectionRunsTheConnectDeadlineThenTheResponseDeadline() {
        var machine = ExchangeMachine()
        XCTAssertEqual(machine.handle(.begin), .clearDeadline)
        XCTAssertEqual(machine.state, .idle)
        XCTAssertEqual(machine.handle(.attached(connected: false)), .arm(.connect))
        XCTAssertEqual(machine.state, .connecting)
        XCTAssertTrue(machine.headPending)
        XCTAssertEqual(machine.handle(.connected), .arm(.response), "connected: the response deadline replaces the connect one")
        XCTAssertEqual(machine.state, .sending)
        XCTAssertEqual(machine.handle(.headSent), .none)
        XCTAssertEqual(machine.state, .awaitingResponse)
        XCTAssertFalse(machine.headPending)
        XCTAssertFalse(machine.responding)
    }

    func testAPooledConnectionStartsWithTheResponseDeadline() {
        var machine = ExchangeMachine()
        _ = machine.handle(.begin)
        XCTAssertEqual(machine.handle(.attached(connected: true)), .arm(.response))
        XCTAssertEqual(machine.state, .sending)
        XCTAssertEqual(machine.handle(.connected), .none, "a connection already up reports no connect")
        XCTAssertEqual(machine.state, .sending)
    }

    func testTheConnectDeadlineFailsTheAttemptAtConnect() {
        var machine = ExchangeMachine()
        _ = machine.handle(.begin)
        _ = machine.handle(.attached(connected: false))
        XCTAssertEqual(machine.handle(.deadlineExpired), .connectTimedOut)
    }

    func testTheResponseDeadlineFailsTheAttemptUntilTheResponseHead() {
        var machine = ExchangeMachine()
        _ = machine.handle(.attached(connected: true))
        XCTAssertEqual(machine.handle(.deadlineExpired), .responseTimedOut, "connected, head not yet sent")
        _ = machine.handle(.headSent)
        XCTAssertEqual(machine.handle(.deadlineExpired), .responseTimedOut, "head sent, no response head")
    }

    func testTheResponseHeadClearsTheDeadlineAndCarriesItsFraming() {
        var machine = ExchangeMachine()
        _ = machine.handle(.attached(connected: true))
        _ = machine.handle(.headSent)
        XCTAssertEqual(machine.handle(.responseHead(framing: .contentLength(10), keepsConnection: true)), .clearDeadline)
        XCTAssertEqual(machine.state, .streaming(framing: .contentLength(10), remaining: 10, keepsConnection: true))
        XCTAssertTrue(machine.responding)
        XCTAssertEqual(machine.framing, .contentLength(10))
        XCTAssertTrue(machine.replicaKeepsConnection)
        machine.responseBodyMoved(4)
        XCTAssertEqual(machine.responseRemaining, 6)
        machine.responseBodyMoved(6)
        XCTAssertEqual(machine.responseRemaining, 0)
        XCTAssertEqual(machine.handle(.deadlineExpired), .none, "a streaming response has no deadline of the exchange's")

        var chunked = ExchangeMachine()
        _ = chunked.handle(.attached(connected: true))
        _ = chunked.handle(.responseHead(framing: .chunked, keepsConnection: false))
        XCTAssertEqual(chunked.framing, .chunked)
        XCTAssertEqual(chunked.responseRemaining, 0)
        XCTAssertFalse(chunked.replicaKeepsConnection)
    }

    func testARetryOrAFailoverAttachesAgainFromAnyPhaseBeforeTheResponse() {
        var machine = ExchangeMachine()
        _ = machine.handle(.attached(connected: true))
        _ = machine.handle(.headSent)
        // The connection dropped before the response: the same request on a new connection.
        XCTAssertEqual(machine.handle(.attached(connected: false)), .arm(.connect))
        XCTAssertEqual(machine.state, .connecting)
        XCTAssertTrue(machine.headPending, "the head goes out again on the new connection")
    }

    func testEndingClearsTheDeadlineAndNothingIsDueAfterIt() {
        for prefix: [ExchangeMachine.Event] in [
            [], [.attached(connected: false)], [.attached(connected: true)], [.attached(connected: true), .headSent],
            [.attached(connected: true), .headSent, .responseHead(framing: .none, keepsConnection: true)],
        ] {
            var machine = ExchangeMachine()
            _ = machine.handle(.begin)
            for event in prefix { _ = machine.handle(event) }
            XCTAssertEqual(machine.handle(.end), .clearDeadline)
            XCTAssertTrue(machine.hasEnded)
            XCTAssertEqual(machine.handle(.deadlineExpired), .none)
            XCTAssertEqual(machine.handle(.connected), .none)
            XCTAssertEqual(machine.handle(.headSent), .none)
            XCTAssertTrue(machine.hasEnded)
        }
    }

    func testANewRequestOnTheReusedObjectStartsFromIdle() {
        var machine = ExchangeMachine()
        _ = machine.handle(.attached(connected: true))
        _ = machine.handle(.responseHead(framing: .contentLength(3), keepsConnection: true))
        _ = machine.handle(.end)
        XCTAssertEqual(machine.handle(.begin), .clearDeadline)
        XCTAssertEqual(machine.state, .idle)
        XCTAssertFalse(machine.hasEnded)
        XCTAssertEqual(machine.framing, .none)
        XCTAssertEqual(machine.handle(.deadlineExpired), .none, "no deadline before an attempt")
    }
}
