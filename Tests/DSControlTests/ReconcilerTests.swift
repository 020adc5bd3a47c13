import DSSystem
import Logging
import XCTest

@testable import DSControl

/// Every state of `ReplicaLifecycle` and every transition between them, driven by events at
/// times of a fake clock; the assertions are on the returned actions.
final class ReconcilerTests: XCTestCase {
    private let refused = CheckResult.l4Connection("Connection refused")
    private static let second: UInt64 = 1_000_000_000

    /// A fake clock and the actions taken so far, for one replica.
    private struct Harness {
        var reconciler: Reconciler
        var record: ReplicaRecord
        var now: UInt64 = 1_000 * ReconcilerTests.second
        var taken: [ReconcilerAction] = []

        init(config: SupervisorConfig = ReconcilerTests.config(), canCreate: Bool = true, forAdd: Bool = false) {
            reconciler = Reconciler(config: config, canCreate: canCreate)
            let made =
                canCreate
                ? reconciler.launched("server-2", number: 2, address: "127.0.0.1:9002", forAdd: forAdd, now: now)
                : reconciler.adopted("server-2", number: 2, address: "127.0.0.1:9002", now: now)
            record = made.0
            taken = made.1
        }

        @discardableResult
        mutating func send(_ event: ReconcilerEvent) -> [ReconcilerAction] {
            let actions = reconciler.handle(event, for: &record, now: now)
            taken += actions
            return actions
        }

        mutating func advance(_ duration: Duration) { now += nanoseconds(of: duration) }

        /// `times` heartbeats with `result`, one `interval` apart.
        @discardableResult
        mutating func check(_ result: CheckResult, times: Int = 1) -> [ReconcilerAction] {
            var actions: [ReconcilerAction] = []
            for _ in 0..<times { actions += send(.checked(result, latency: 1_000)) }
            return actions
        }

        var life: ReplicaLifecycle { record.life }

        /// From a fresh launch to UP.
        mutating func bringUp() {
            check(.l7OK)
            precondition(record.isUp)
        }

        /// From UP to failed and awaiting its repair (fall failed heartbeats).
        @discardableResult
        mutating func fail() -> [ReconcilerAction] { check(.l4Connection("Connection refused"), times: reconciler.config.fall) }

        /// Waits out the repair that is scheduled and relaunches.
        @discardableResult
        mutating func repair() -> [ReconcilerAction] {
            guard case .awaitingRepair(let at) = life else { preconditionFailure("no repair scheduled: \(life)") }
            if at > now { now = at }
            var actions = send(.repairDue(at: at))
            if actions.contains(.restart) { actions += send(.relaunched) }
            return actions
        }
    }

    private static func config(onFailure: SupervisorConfig.OnFailure = .restart, maxRestarts: Int = 3) -> SupervisorConfig {
        var config = SupervisorConfig()
        config.fall = 2
        config.rise = 1
        config.onFailure = onFailure
        config.maxRestarts = maxRestarts
        return config
    }

    private func logs(_ actions: [ReconcilerAction]) -> [String] {
        actions.compactMap { if case .log(_, let line, _) = $0 { line } else { nil } }
    }

    private func events(_ actions: [ReconcilerAction]) -> [String] {
        actions.compactMap { if case .log(_, _, let event?) = $0 { event } else { nil } }
    }

    private func at(_ h: Harness, _ duration: Duration) -> UInt64 { h.now + nanoseconds(of: duration) }

    // MARK: starting

    func testAnInitialReplicaIsCheckedAtOnceWithAStartDeadline() {
        let h = Harness()
        let deadline = at(h, .seconds(10))
        XCTAssertEqual(h.life, .starting(deadline: deadline))
        XCTAssertEqual(h.record.health.status, .starting)
        XCTAssertEqual(h.taken, [.scheduleCheck(at: h.now), .startDeadline(at: deadline)])
    }

    func testAnAddedReplicaHasNoDeadlineOfItsOwn() {
        let h = Harness(forAdd: true)
        XCTAssertEqual(h.life, .starting(deadline: nil))
        XCTAssertEqual(h.taken, [.scheduleCheck(at: at(h, .milliseconds(100)))])
    }

    func testAnAddedReplicaCountsAsUpOnlyAfterItsFirstPassingHeartbeat() {
        var h = Harness(forAdd: true)
        XCTAssertFalse(h.check(refused, times: 2).contains(.cameUp), "the /add is not answered yet")
        XCTAssertEqual(h.life, .starting(deadline: nil))
        let up = h.check(.l7OK)
        XCTAssertEqual(up.filter { $0 == .cameUp || $0 == .publish }, [.publish, .cameUp])
        XCTAssertEqual(h.life, .up(since: h.now))
    }

    func testAStartingReplicaFailingChecksIsRecheckedQuietly() {
        var h = Harness()
        let actions = h.check(refused, times: 3)
        XCTAssertEqual(h.life, .starting(deadline: at(h, .seconds(10))))
        XCTAssertEqual(actions, Array(repeating: .scheduleCheck(at: at(h, .milliseconds(100))), count: 3))
        XCTAssertEqual(h.record.checks, 3)
    }

    func testStartingToUpPublishesWithoutALogLine() {
        var h = Harness()
        h.advance(.milliseconds(300))
        let actions = h.check(.l7OK)
        XCTAssertEqual(h.life, .up(since: h.now))
        XCTAssertEqual(actions, [.cancelStartDeadline, .cancelRepair, .publish, .cameUp, .scheduleCheck(at: at(h, .seconds(5)))])
    }

    func testStartingPastItsDeadlineIsAFailedRestart() {
        var h = Harness()
        guard case .starting(let deadline?) = h.life else { return XCTFail("\(h.life)") }
        h.check(refused)
        XCTAssertEqual(h.send(.startDeadlinePassed(at: deadline - 1)), [], "a stale deadline does nothing")
        h.now = deadline
        let actions = h.send(.startDeadlinePassed(at: deadline))
        XCTAssertEqual(
            logs(actions),
            [
                "[!] Failed to restart server 2: no successful heartbeat within 10s (last: L4CON (Connection refused))",
                "[i] Server 2: next restart in 1s",
            ])
        XCTAssertEqual(h.life, .awaitingRepair(at: at(h, .seconds(1))))
        XCTAssertEqual(h.record.failedRestarts, 1)
        XCTAssertEqual(h.record.health.status, .down)
        XCTAssertTrue(actions.contains(.scheduleRepair(at: at(h, .seconds(1)))))
    }

    func testAStartingReplicaThatExitsIsAFailedRestart() {
        var h = Harness()
        let actions = h.send(.exited(reason: "exit status 3", duringAdd: false))
        XCTAssertEqual(
            logs(actions),
            [
                "[!] Server 2 (server-2) exited: exit status 3",
                "[!] Failed to restart server 2: exited during start-up (exit status 3)",
                "[i] Server 2: next restart in 1s",
            ])
        XCTAssertEqual(h.life, .awaitingRepair(at: at(h, .seconds(1))))
    }

    func testAnAddedReplicaThatExitsFailsItsAdd() {
        var h = Harness(forAdd: true)
        let actions = h.send(.exited(reason: "exit status 3", duringAdd: true))
        XCTAssertEqual(actions.last, .failAdd(reason: "replica server-2 exited during start-up (exit status 3)"))
        XCTAssertEqual(h.life, .starting(deadline: nil), "the add retires it")
        XCTAssertEqual(h.send(.retired), [.cancelCheck, .cancelRepair, .cancelStartDeadline])
        XCTAssertEqual(h.life, .gone)
    }

    // MARK: up → failed → restarting → up

    func testAMissedHeartbeatIsLoggedAndConfirmedQuickly() {
        var h = Harness()
        h.bringUp()
        let actions = h.check(.l7Timeout)
        XCTAssertEqual(logs(actions), ["[!] Server 2 heartbeat failed: L7TOUT (no response in time) (1/2)"])
        XCTAssertEqual(events(actions), ["heartbeat_missed"])
        XCTAssertEqual(actions.last, .scheduleCheck(at: at(h, .milliseconds(500))))
        guard case .up = h.life else { return XCTFail("\(h.life)") }
    }

    func testFallFailuresScheduleARestartAtOnce() {
        var h = Harness()
        h.bringUp()
        h.advance(.seconds(60))
        let actions = h.fail()
        XCTAssertEqual(logs(actions).last, "[!] Server 2 failed heartbeat. Restarting...")
        XCTAssertEqual(events(actions).last, "heartbeat_failed")
        XCTAssertEqual(
            Array(actions.suffix(4)).filter { if case .log = $0 { false } else { true } },
            [.publish, .cancelCheck, .scheduleRepair(at: h.now)])
        XCTAssertEqual(h.life, .awaitingRepair(at: h.now))
        XCTAssertEqual(h.record.health.status, .down)
    }

    func testAProbeAnsweringWhileARepairWaitsIsIgnored() {
        var h = Harness()
        h.bringUp()
        h.fail()
        let checks = h.record.checks
        XCTAssertEqual(h.check(.l7OK), [])
        XCTAssertEqual(h.record.checks, checks)
        XCTAssertEqual(h.life, .awaitingRepair(at: h.now))
    }

    func testTheRepairRestartsAndTheRestartedReplicaComesUp() {
        var h = Harness()
        h.bringUp()
        h.fail()
        guard case .awaitingRepair(let due) = h.life else { return XCTFail("\(h.life)") }
        XCTAssertEqual(h.send(.repairDue(at: due - 1)), [], "a stale repair timer does nothing")
        XCTAssertEqual(h.send(.repairDue(at: due)), [.restart])
        let relaunched = h.send(.relaunched)
        let deadline = at(h, .seconds(10))
        XCTAssertEqual(h.life, .restarting(deadline: deadline))
        XCTAssertEqual(h.record.health.status, .starting)
        XCTAssertEqual(relaunched, [.startDeadline(at: deadline), .scheduleCheck(at: at(h, .milliseconds(100)))])
        let up = h.check(.l7OK)
        XCTAssertEqual(logs(up), ["[+] Server 2 restarted"])
        XCTAssertEqual(events(up), ["restarted"])
        XCTAssertTrue(up.contains(.countRestart))
        XCTAssertEqual(h.record.restarts, 1)
        XCTAssertEqual(h.life, .up(since: h.now))
    }

    func testARestartedReplicaThatNeverComesUpBacksOff() {
        var h = Harness()
        h.bringUp()
        h.fail()
        h.repair()
        guard case .restarting(let deadline) = h.life else { return XCTFail("\(h.life)") }
        h.now = deadline
        XCTAssertEqual(logs(h.send(.startDeadlinePassed(at: deadline))).last, "[i] Server 2: next restart in 1s")
        h.repair()
        guard case .restarting(let second) = h.life else { return XCTFail("\(h.life)") }
        h.now = second
        XCTAssertEqual(logs(h.send(.startDeadlinePassed(at: second))).last, "[i] Server 2: next restart in 2s")
        XCTAssertEqual(h.record.failedRestarts, 2)
        h.repair()
        h.check(.l7OK)
        XCTAssertEqual(h.record.failedRestarts, 0, "coming up clears the failed restarts")
    }

    func testALaunchThatFailsIsAFailedRestart() {
        var h = Harness()
        h.bringUp()
        h.fail()
        guard case .awaitingRepair(let due) = h.life else { return XCTFail("\(h.life)") }
        h.send(.repairDue(at: due))
        let actions = h.send(.relaunchFailed(reason: "port in use"))
        XCTAssertEqual(logs(actions), ["[!] Failed to restart server 2: port in use", "[i] Server 2: next restart in 1s"])
        XCTAssertEqual(events(actions), ["restart_failed"])
        XCTAssertEqual(h.life, .awaitingRepair(at: at(h, .seconds(1))))
    }

    func testAnExitWhileUpIsAFailureWithoutWaitingForFall() {
        var h = Harness()
        h.bringUp()
        h.advance(.seconds(60))
        let actions = h.send(.exited(reason: "killed by signal 9", duringAdd: false))
        XCTAssertEqual(
            logs(actions), ["[!] Server 2 (server-2) exited: killed by signal 9", "[!] Server 2 failed heartbeat. Restarting..."])
        XCTAssertEqual(actions.first { if case .log = $0 { false } else { true } }, .cancelCheck)
        XCTAssertEqual(h.record.health.last, .l4Connection("process exited: killed by signal 9"))
        XCTAssertEqual(h.life, .awaitingRepair(at: h.now))
        XCTAssertEqual(h.send(.exited(reason: "again", duringAdd: false)).count, 1, "only logged while a repair waits")
    }

    // MARK: flap damping

    func testAReplicaFailingSoonAfterItsRestartWaitsOutAGrowingBackoff() {
        var config = Self.config()
        config.backoffMax = .seconds(3)
        var h = Harness(config: config)
        h.bringUp()
        h.advance(.seconds(60))
        h.fail()
        h.repair()
        h.check(.l7OK)
        var delays: [String] = []
        for _ in 0..<4 {
            h.advance(.seconds(5))
            delays.append(logs(h.fail()).last ?? "")
            h.repair()
            h.check(.l7OK)
        }
        XCTAssertEqual(
            delays,
            [
                "[!] Server 2 failed heartbeat. Restarting... (in 1s: it failed again within 30s of its last restart)",
                "[!] Server 2 failed heartbeat. Restarting... (in 2s: it failed again within 30s of its last restart)",
                "[!] Server 2 failed heartbeat. Restarting... (in 3s: it failed again within 30s of its last restart)",
                "[!] Server 2 failed heartbeat. Restarting... (in 3s: it failed again within 30s of its last restart)",
            ])
        // Stable for longer than stableAfter: restarted at once, the backoff starts over.
        h.advance(.seconds(31))
        XCTAssertEqual(logs(h.fail()).last, "[!] Server 2 failed heartbeat. Restarting...")
        XCTAssertEqual(h.life, .awaitingRepair(at: h.now))
        XCTAssertEqual(h.record.backoff, .zero)
    }

    func testAFirstFailureSoonAfterStartIsNotFlapping() {
        var h = Harness()
        h.bringUp()
        XCTAssertEqual(logs(h.fail()).last, "[!] Server 2 failed heartbeat. Restarting...")
    }

    // MARK: --on-failure replace

    func testReplaceWithNoRestartsReplacesAtTheFirstFailure() {
        var h = Harness(config: Self.config(onFailure: .replace, maxRestarts: 0))
        h.bringUp()
        h.advance(.seconds(60))
        XCTAssertEqual(logs(h.fail()).last, "[!] Server 2 failed heartbeat. Replacing...")
        XCTAssertEqual(h.repair(), [.replace])
        let actions = h.send(.replaced(by: "server-4"))
        XCTAssertEqual(actions, [.log(.warning, "[!] Server 2 is replaced by server-4", event: "replaced"), .retire])
        XCTAssertEqual(h.life, .gone)
        XCTAssertEqual(h.check(.l7OK), [], "a replica that is gone takes no event")
        XCTAssertEqual(h.send(.exited(reason: "x", duringAdd: false)), [])
    }

    func testReplaceAfterMaxRestartsFailedRestarts() {
        var h = Harness(config: Self.config(onFailure: .replace, maxRestarts: 2))
        h.bringUp()
        h.advance(.seconds(60))
        XCTAssertEqual(logs(h.fail()).last, "[!] Server 2 failed heartbeat. Restarting...")
        h.repair()
        XCTAssertEqual(logs(h.send(.exited(reason: "exit status 1", duringAdd: false))).last, "[i] Server 2: next restart in 1s")
        h.repair()
        let second = h.send(.exited(reason: "exit status 1", duringAdd: false))
        XCTAssertEqual(second.last, .replace, "the second failed restart replaces at once")
        XCTAssertEqual(logs(h.send(.replaced(by: "server-4"))), ["[!] Server 2 failed 2 restarts: replacing it with server-4"])
    }

    func testAReplacementThatCannotStartIsTriedAgainAfterTheBackoff() {
        var h = Harness(config: Self.config(onFailure: .replace, maxRestarts: 0))
        h.bringUp()
        h.advance(.seconds(60))
        h.fail()
        h.repair()
        let actions = h.send(.replacementFailed(successor: "server-4", reason: "no such image"))
        XCTAssertEqual(logs(actions), ["[!] Failed to start server-4 in place of server 2: no such image; next attempt in 1s"])
        XCTAssertEqual(h.life, .awaitingRepair(at: at(h, .seconds(1))))
        XCTAssertEqual(h.repair(), [.replace])
    }

    func testAReplacementComesUpInPlaceOfItsPredecessorAndInheritsItsBackoff() {
        var h = Harness(config: Self.config(onFailure: .replace, maxRestarts: 0))
        h.bringUp()
        h.fail()
        h.repair()
        h.send(.replacementFailed(successor: "server-4", reason: "busy"))
        let (record, actions) = h.reconciler.replacement(
            "server-4", number: 4, address: "127.0.0.1:9004", of: h.record, now: h.now)
        let deadline = at(h, .seconds(10))
        XCTAssertEqual(record.life, .restarting(deadline: deadline))
        XCTAssertEqual(record.replacing, "server-2")
        XCTAssertEqual(record.backoff, .seconds(1))
        XCTAssertEqual(actions, [.startDeadline(at: deadline), .scheduleCheck(at: at(h, .milliseconds(100)))])
        var fresh = h
        fresh.record = record
        let up = fresh.check(.l7OK)
        XCTAssertEqual(logs(up), ["[+] Server 4 started in place of server-2: server-4 at 127.0.0.1:9004"])
        XCTAssertEqual(fresh.record.restarts, 0, "a replacement is not a restart")
        XCTAssertFalse(up.contains(.countRestart))
        // Failing soon after it came up, it is flapping and backs off from its predecessor's.
        fresh.advance(.seconds(1))
        XCTAssertEqual(
            logs(fresh.fail()).last,
            "[!] Server 4 failed heartbeat. Replacing... (in 2s: it failed again within 30s of its last restart)")
    }

    func testAReplacementWhoseFirstLaunchFailsStillComesUpInPlaceOfItsPredecessor() {
        var h = Harness(config: Self.config(onFailure: .replace, maxRestarts: 3))
        h.bringUp()
        h.record.failedRestarts = 3
        var fresh = h
        fresh.record = h.reconciler.replacement("server-4", number: 4, address: "127.0.0.1:9004", of: h.record, now: h.now).0
        XCTAssertEqual(
            logs(fresh.send(.exited(reason: "exit status 3", duringAdd: false))).last, "[i] Server 4: next restart in 1s")
        fresh.repair()
        XCTAssertEqual(logs(fresh.check(.l7OK)), ["[+] Server 4 started in place of server-2: server-4 at 127.0.0.1:9004"])
        XCTAssertNil(fresh.record.replacing)
    }

    // MARK: passive health (marked down)

    func testFailedRequestsMarkAnUpReplicaDownUntilItsChecksPass() {
        var h = Harness()
        h.bringUp()
        let actions = h.send(.requestsFailed(10))
        XCTAssertEqual(h.life, .markedDown)
        XCTAssertEqual(
            actions,
            [
                .publish,
                .log(
                    .warning, "[!] Server 2 marked down: 10 errors in 10s. Out of rotation until its heartbeats pass again",
                    event: "marked_down"),
            ])
        XCTAssertEqual(h.send(.requestsFailed(12)), [], "already out")
        XCTAssertEqual(
            h.check(.l7OK).filter { if case .log = $0 { true } else { false } },
            [.log(.info, "[+] Server 2 is back up", event: "back_up")])
        XCTAssertEqual(h.life, .up(since: h.now))
    }

    func testAMarkedDownReplicaFailingItsChecksIsRepairedWithoutBackoff() {
        var h = Harness()
        h.bringUp()
        h.send(.requestsFailed(10))
        XCTAssertEqual(h.check(refused), [.scheduleCheck(at: at(h, .milliseconds(500)))], "confirmed quickly")
        XCTAssertEqual(logs(h.check(refused)), ["[!] Server 2 failed heartbeat. Restarting..."])
        XCTAssertEqual(h.life, .awaitingRepair(at: h.now))
    }

    func testAMarkedDownReplicaThatExitsIsRepaired() {
        var h = Harness()
        h.bringUp()
        h.send(.requestsFailed(10))
        XCTAssertEqual(
            logs(h.send(.exited(reason: "exit status 1", duringAdd: false))).last, "[!] Server 2 failed heartbeat. Restarting...")
    }

    // MARK: a driver that creates nothing (down)

    func testAStaticReplicaGoesDownAndComesBackWithoutRepair() {
        var h = Harness(canCreate: false)
        XCTAssertEqual(h.life, .up(since: h.now))
        XCTAssertEqual(h.taken, [.scheduleCheck(at: h.now)])
        let actions = h.fail()
        XCTAssertEqual(
            logs(actions).last,
            "[!] Server 2 failed heartbeat: L4CON (Connection refused). Out of rotation until it answers again")
        XCTAssertEqual(h.life, .down)
        XCTAssertEqual(actions.last, .scheduleCheck(at: at(h, .seconds(5))))
        XCTAssertFalse(actions.contains(.restart))
        XCTAssertEqual(logs(h.check(.l7OK)), ["[+] Server 2 is back up"])
        guard case .up = h.life else { return XCTFail("\(h.life)") }
    }

    // MARK: stopping

    func testAStoppingDsLbRepairsNothing() {
        var h = Harness()
        h.bringUp()
        h.reconciler.beginStopping()
        XCTAssertEqual(h.check(refused), [])
        let actions = h.send(.exited(reason: "interrupted", duringAdd: false))
        XCTAssertEqual(
            actions, [.log(.info, "[i] Server 2 (server-2) exited while ds-lb stops: interrupted", event: "exited"), .publish])
        XCTAssertEqual(h.life, .down)
        XCTAssertEqual(h.send(.requestsFailed(10)), [])
    }

    func testAStoppingDsLbDoesNotRunARepairAlreadyScheduled() {
        var h = Harness()
        h.bringUp()
        h.fail()
        h.reconciler.beginStopping()
        guard case .awaitingRepair(let at) = h.life else { return XCTFail("\(h.life)") }
        XCTAssertEqual(h.send(.repairDue(at: at)), [])
    }

    // MARK: removal (draining → gone)

    func testARemovedReplicaDrainsThenGoes() {
        var h = Harness()
        h.bringUp()
        XCTAssertEqual(h.send(.removed), [.cancelCheck, .cancelRepair, .cancelStartDeadline])
        XCTAssertEqual(h.life, .draining)
        XCTAssertEqual(h.check(refused), [], "no checks once removed")
        XCTAssertEqual(h.send(.exited(reason: "stopped", duringAdd: false)), [])
        XCTAssertEqual(h.send(.removed), [])
        h.send(.retired)
        XCTAssertEqual(h.life, .gone)
        XCTAssertEqual(h.send(.removed), [])
    }

    func testARemovalWhileARepairWaitsCancelsIt() {
        var h = Harness()
        h.bringUp()
        h.fail()
        guard case .awaitingRepair(let at) = h.life else { return XCTFail("\(h.life)") }
        h.send(.removed)
        XCTAssertEqual(h.send(.repairDue(at: at)), [])
        XCTAssertEqual(h.send(.startDeadlinePassed(at: at)), [])
    }

    func testReconcilerTestsNeedNoClock() {
        // The reconciler never reads the clock: the same events at the same fake times give the
        // same actions, however long the test takes.
        var a = Harness(), b = Harness()
        b.now = a.now
        a.bringUp(); b.bringUp()
        XCTAssertEqual(a.fail(), b.fail())
        XCTAssertEqual(a.record, b.record)
    }
}
