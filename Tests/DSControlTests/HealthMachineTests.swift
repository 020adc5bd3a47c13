import XCTest

@testable import DSControl

final class HealthMachineTests: XCTestCase {
    private let refused = CheckResult.l4Connection("Connection refused")

    func testStartingReplicaNeedsRiseSuccesses() {
        var machine = HealthMachine(fall: 2, rise: 2)
        XCTAssertEqual(machine.status, .starting)
        XCTAssertTrue(machine.wantsFastCheck)
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertEqual(machine.status, .starting)
        XCTAssertEqual(machine.record(.l7OK), .wentUp)
        XCTAssertEqual(machine.status, .up)
        XCTAssertFalse(machine.wantsFastCheck)
    }

    func testFailuresWhileStartingNeverReportWentDown() {
        var machine = HealthMachine(fall: 1, rise: 1)
        for _ in 0..<5 { XCTAssertNil(machine.record(refused)) }
        XCTAssertEqual(machine.status, .starting)
        XCTAssertEqual(machine.consecutiveFailures, 5)
    }

    func testFallConsecutiveFailuresTakeItDown() {
        var machine = HealthMachine(fall: 2, rise: 1, status: .up)
        XCTAssertNil(machine.record(.l7Timeout))
        XCTAssertEqual(machine.status, .up)
        XCTAssertTrue(machine.wantsFastCheck, "a failure asks for the quick re-check")
        XCTAssertEqual(machine.record(.l4Timeout), .wentDown)
        XCTAssertEqual(machine.status, .down)
        XCTAssertEqual(machine.last, .l4Timeout)
    }

    func testASuccessInBetweenResetsTheFailureCount() {
        var machine = HealthMachine(fall: 3, rise: 1, status: .up)
        XCTAssertNil(machine.record(refused))
        XCTAssertNil(machine.record(refused))
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertEqual(machine.consecutiveFailures, 0)
        XCTAssertNil(machine.record(refused))
        XCTAssertNil(machine.record(refused))
        XCTAssertEqual(machine.status, .up)
        XCTAssertEqual(machine.record(.l7Status(500)), .wentDown)
    }

    func testDownComesBackAfterRise() {
        var machine = HealthMachine(fall: 1, rise: 3, status: .up)
        XCTAssertEqual(machine.record(refused), .wentDown)
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertEqual(machine.record(.l7OK), .wentUp)
    }

    func testMarkDownSkipsFall() {
        var machine = HealthMachine(fall: 5, rise: 1, status: .up)
        XCTAssertEqual(machine.markDown(.l4Connection("process exited")), .wentDown)
        XCTAssertEqual(machine.status, .down)
        XCTAssertNil(machine.markDown(refused), "already down: no second transition")
        var starting = HealthMachine(fall: 5, rise: 1)
        XCTAssertNil(starting.markDown(refused), "a replica that never came up did not go down")
        XCTAssertEqual(starting.status, .down)
    }

    /// Taken out for failed requests: only an UP replica goes down, its last check result stays,
    /// and heartbeats count from zero, `rise` passing ones bringing it back.
    func testMarkDownPassivelyCountsHeartbeatsFromZero() {
        var machine = HealthMachine(fall: 2, rise: 2, status: .up)
        XCTAssertNil(machine.record(refused))
        XCTAssertEqual(machine.markDownPassively(), .wentDown)
        XCTAssertEqual(machine.status, .down)
        XCTAssertEqual(machine.consecutiveFailures, 0)
        XCTAssertEqual(machine.last, refused)
        XCTAssertNil(machine.markDownPassively(), "already down: no second transition")
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertEqual(machine.record(.l7OK), .wentUp)
        var starting = HealthMachine(fall: 2, rise: 1)
        XCTAssertNil(starting.markDownPassively(), "not in rotation yet: nothing to take out")
        XCTAssertEqual(starting.status, .starting)
    }

    func testRestartClearsCounters() {
        var machine = HealthMachine(fall: 1, rise: 2, status: .up)
        _ = machine.record(refused)
        machine.restart()
        XCTAssertEqual(machine.status, .starting)
        XCTAssertEqual(machine.consecutiveFailures, 0)
        XCTAssertNil(machine.record(.l7OK))
        XCTAssertEqual(machine.record(.l7OK), .wentUp)
    }

    func testRetuneKeepsTheCountsAndJudgesTheNextResultByTheNewThresholds() {
        let refused = CheckResult.l4Connection("refused")
        var machine = HealthMachine(fall: 2, rise: 1, status: .up)
        XCTAssertNil(machine.record(refused))
        machine.retune(fall: 3, rise: 2)
        XCTAssertEqual(machine.status, .up)
        XCTAssertEqual(machine.consecutiveFailures, 1, "a reload keeps the count so far")
        XCTAssertNil(machine.record(refused), "2 failures: under the new fall of 3")
        XCTAssertEqual(machine.record(refused), .wentDown)
        XCTAssertNil(machine.record(.l7OK), "1 success: under the new rise of 2")
        XCTAssertEqual(machine.record(.l7OK), .wentUp)
        machine.retune(fall: 1, rise: 1)
        XCTAssertEqual(machine.record(refused), .wentDown, "fall 1: the first failure")
    }

    func testCheckCodesReadLikeHAProxy() {
        XCTAssertEqual(CheckResult.l4Connection("x").code, "L4CON")
        XCTAssertEqual(CheckResult.l4Timeout.code, "L4TOUT")
        XCTAssertEqual(CheckResult.l7Timeout.code, "L7TOUT")
        XCTAssertEqual(CheckResult.l7Response("x").code, "L7RSP")
        XCTAssertEqual(CheckResult.l7Status(503).code, "L7STS")
        XCTAssertEqual(CheckResult.l7Status(503).description, "L7STS (status 503)")
        XCTAssertEqual(CheckResult.l7OK.code, "L7OK")
        XCTAssertTrue(CheckResult.l7OK.isSuccess)
        XCTAssertFalse(CheckResult.l7Status(204).isSuccess, "the probe maps 2xx to L7OK; a raw status is a failure")
    }

    /// A check that could not be made (ds-lb out of descriptors) moves no counter either way.
    func testSkippedCheckMovesNothing() {
        var machine = HealthMachine(fall: 2, rise: 2, status: .up)
        XCTAssertNil(machine.record(.l4Timeout))
        for _ in 0..<5 { XCTAssertNil(machine.record(.skipped("Too many open files"))) }
        XCTAssertEqual(machine.status, .up)
        XCTAssertEqual(machine.consecutiveFailures, 1)
        XCTAssertEqual(machine.record(.l4Timeout), .wentDown)
        XCTAssertEqual(CheckResult.skipped("x").code, "SKIPPED")
    }
}
