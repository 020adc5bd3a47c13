import XCTest

@testable import DSProxy

/// What a failed attempt at a replica leads to, without a socket: the replica closing a pooled
/// connection, failover to the next replica (idempotent or not, within `--retries`), and the
/// cases where only our own error answer is left.
final class ReplicaAttemptsTests: XCTestCase {
    func attempts(failovers: Int) -> ReplicaAttempts {
        var attempts = ReplicaAttempts()
        attempts.begin(failovers: failovers)
        return attempts
    }

    func testAPooledConnectionTheReplicaClosedIsRetriedOnceOnAFreshOne() {
        var attempts = attempts(failovers: 0)
        XCTAssertTrue(attempts.mayUsePooled)
        XCTAssertEqual(attempts.failed(reused: true, resendable: true, retryAllowed: false), .againOnFreshConnection)
        XCTAssertFalse(attempts.mayUsePooled, "the fresh try does not take another pooled connection")
        // The fresh connection fails too: the replica's failure now, with no failover left.
        XCTAssertEqual(attempts.failed(reused: true, resendable: true, retryAllowed: true), .fail)
    }

    func testAPooledConnectionFoundDeadBeforeSendingIsNotTakenAgain() {
        var attempts = attempts(failovers: 1)
        attempts.pooledConnectionDead()
        XCTAssertFalse(attempts.mayUsePooled)
        // A failure of the fresh connection goes to the next replica, not to a third connection.
        XCTAssertEqual(attempts.failed(reused: true, resendable: true, retryAllowed: true), .nextReplica)
    }

    func testAFailedIdempotentRequestGoesToTheNextReplicaWithinTheBudget() {
        var attempts = attempts(failovers: 2)
        XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: true), .nextReplica)
        attempts.failedOver()
        XCTAssertEqual(attempts.failoversLeft, 1)
        XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: true), .nextReplica)
        attempts.failedOver()
        XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: true), .fail, "budget spent")
    }

    func testANonIdempotentRequestThatMayHaveReachedTheReplicaIsNotSentAgain() {
        var attempts = attempts(failovers: 2)
        // `retryAllowed` is the error's verdict for the method (a POST after a lost connection).
        XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: false), .fail)
    }

    func testARequestWhoseBodyOrResponseHasStartedIsNeverRetried() {
        var attempts = attempts(failovers: 2)
        XCTAssertEqual(attempts.failed(reused: true, resendable: false, retryAllowed: true), .fail)
        XCTAssertTrue(attempts.mayUsePooled)
    }

    func testTheNextReplicaMayUseItsPooledConnectionsAgain() {
        var attempts = attempts(failovers: 1)
        _ = attempts.failed(reused: true, resendable: true, retryAllowed: true)
        XCTAssertFalse(attempts.mayUsePooled)
        attempts.failedOver()
        XCTAssertTrue(attempts.mayUsePooled)
        // And a new request starts with a fresh budget.
        attempts.begin(failovers: 3)
        XCTAssertEqual(attempts.failoversLeft, 3)
    }

    func testARefusedConnectionDoesNotSpendTheBudgetButNoBudgetMeansNoFailover() {
        var attempts = attempts(failovers: 1)
        for _ in 0..<5 {
            XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: true), .nextReplica)
            attempts.failedOver(refused: true)
        }
        XCTAssertEqual(attempts.failoversLeft, 1, "refusals are free")
        attempts.failedOver()
        XCTAssertEqual(attempts.failed(reused: false, resendable: true, retryAllowed: true), .fail)
        var none = self.attempts(failovers: 0)
        XCTAssertEqual(none.failed(reused: false, resendable: true, retryAllowed: true), .fail, "--retries 0: no walk")
    }
}
