import DSBalancer
import DSReactor
import DSSystem
import Foundation
import XCTest

@testable import DSControl

/// The heartbeat timers and probes, on a real control loop against replicas where nothing
/// listens (each check reports a refused connection).
final class HeartbeatSchedulerTests: XCTestCase {
    /// A control loop on its own thread with a scheduler whose reports are kept by name.
    private final class Harness: @unchecked Sendable {
        let loop: EventLoop
        private let exited = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var reported: [String] = []
        nonisolated(unsafe) var scheduler: HeartbeatScheduler!
        nonisolated(unsafe) var skipped: Set<String> = []

        init() throws {
            loop = try EventLoop()
            let loop = self.loop
            LoopThread.start(name: "test-heartbeats") { [exited] in
                loop.run(); exited.signal()
            }
            try sync {
                self.scheduler = HeartbeatScheduler(
                    loop: loop, timeout: { .seconds(5) }, shouldCheck: { !self.skipped.contains($0.backend.name) },
                    report: { replica, _, _ in self.lock.withLock { self.reported.append(replica.backend.name) } })
            }
        }

        var reports: [String] { lock.withLock { reported } }

        func sync<T>(_ body: @escaping () throws -> T) throws -> T { try runOnLoop(loop, body) }

        /// Waits (up to 20 s) until `name` was reported.
        func waitForReport(of name: String, file: StaticString = #filePath, line: UInt = #line) {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if reports.contains(name) { return }
                Thread.sleep(forTimeInterval: 0.01)
            }
            XCTFail("\(name) was never reported: \(reports)", file: file, line: line)
        }

        func stop() {
            loop.stop()
            XCTAssertEqual(exited.wait(timeout: .now() + 10), .success, "the control loop did not stop")
        }
    }

    private func replica(_ name: String, _ number: Int) -> Replica {
        let reconciler = Reconciler(config: SupervisorConfig(), canCreate: true)
        let backend = DSBalancerBackend.port0(name, number)
        let record = reconciler.launched(name, number: number, address: backend.address, forAdd: false, now: 0).0
        return Replica(backend: backend, record: record, inPool: true)
    }

    func testACheckScheduledAgainReplacesTheEarlierOneAndReportsOnce() throws {
        let harness = try Harness()
        defer { harness.stop() }
        let a = replica("server-1", 1)
        try harness.sync {
            harness.scheduler.schedule(a, after: .seconds(3600))
            XCTAssertTrue(harness.scheduler.hasScheduledCheck(a))
            harness.scheduler.schedule(a, after: .zero)
        }
        harness.waitForReport(of: "server-1")
        // A later check of another replica reports after any leftover of the first one.
        let b = replica("server-2", 2)
        try harness.sync { harness.scheduler.schedule(b, after: .milliseconds(20)) }
        harness.waitForReport(of: "server-2")
        XCTAssertEqual(harness.reports.filter { $0 == "server-1" }.count, 1, "reported \(harness.reports)")
        try harness.sync {
            XCTAssertFalse(harness.scheduler.hasScheduledCheck(a), "the hour-long check was not replaced")
            XCTAssertFalse(harness.scheduler.isChecking(a), "the probe outlived its result")
        }
    }

    func testAStoppedOrSkippedReplicaIsNotChecked() throws {
        let harness = try Harness()
        defer { harness.stop() }
        let stopped = replica("server-1", 1)
        let skipped = replica("server-2", 2)
        let witness = replica("server-3", 3)
        try harness.sync {
            harness.skipped = ["server-2"]
            harness.scheduler.schedule(stopped, after: .zero)
            harness.scheduler.stop(stopped)
            XCTAssertFalse(harness.scheduler.hasScheduledCheck(stopped))
            harness.scheduler.schedule(skipped, after: .zero)
            harness.scheduler.schedule(witness, after: .milliseconds(200))
        }
        harness.waitForReport(of: "server-3")
        XCTAssertEqual(harness.reports, ["server-3"])
    }
}
