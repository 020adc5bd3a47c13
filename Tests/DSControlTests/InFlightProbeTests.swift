import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import Foundation
import Logging
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// A heartbeat already on its way when the supervisor decides on a repair must not undo that
/// decision. The case that matters: a restarted ds-server exits at once (its port was taken by
/// another process in the meantime), and the probe sent to that port during start-up is
/// answered by the other process. Counting that answer would call the replica back up, cancel
/// its restart and route its keys to a stranger.
final class InFlightProbeTests: XCTestCase {
    /// Every launch reports the same address; a launch after the first "exits" as soon as the
    /// responder holds a probe sent after it, so the probe is in flight when the exit is seen.
    private final class ExitingDriver: NothingToStopDriver, @unchecked Sendable {
        let name = "exiting"
        let canCreate = true
        let port: UInt16
        let responder: HeartbeatResponder
        private let lock = NSLock()
        private var launchCount = 0
        private var exitPending: Backend?
        private var heldWhenLaunched = 0
        private var exitCount = 0
        init(port: UInt16, responder: HeartbeatResponder) { self.port = port; self.responder = responder }

        var launches: Int { lock.withLock { launchCount } }
        var exitsReported: Int { lock.withLock { exitCount } }
        /// Makes the running replica exit at the driver's next look.
        func exitNow(_ backend: Backend) { lock.withLock { exitPending = backend } }

        /// Looks every 5 ms whether the replica is to exit now and reports it then, as a real
        /// driver reports an exit it sees.
        func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {
            func look() {
                if let backend = exitDue() { report(.exited(backend, reason: "exit status 1")) }
                loop.schedule(after: .milliseconds(5)) { look() }
            }
            loop.schedule(after: .milliseconds(5)) { look() }
        }

        func initialBackends() -> [Backend] { [] }
        func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
            let backend = Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: port)
            lock.withLock {
                launchCount += 1
                if launchCount >= 2 { exitPending = backend; heldWhenLaunched = responder.held }
            }
            return backend
        }
        private func exitDue() -> Backend? {
            lock.withLock {
                guard let backend = exitPending else { return nil }
                // A restarted replica exits only once a probe sent after its launch is held.
                if launchCount >= 2 && responder.held <= heldWhenLaunched { return nil }
                exitPending = nil
                exitCount += 1
                return backend
            }
        }
    }

    func testAProbeInFlightWhenTheRestartedReplicaExitedDoesNotCancelItsNextRestart() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let driver = ExitingDriver(port: responder.port, responder: responder)
        var config = SupervisorConfig()
        config.heartbeatTimeout = .seconds(30) // the held probe must not time out first
        config.startTimeout = .seconds(30)
        config.backoffInitial = .milliseconds(200)
        let loop = try EventLoop()
        let supervisor = Supervisor(
            loop: loop, driver: driver, algorithm: .ring, config: config, workers: 1,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let ready = expectation(description: "the initial pool is up")
        try supervisor.bootstrap(replicas: 1) { ready.fulfill() }
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }
        wait(for: [ready], timeout: 10)
        XCTAssertEqual(supervisor.publisher.latest().healthy, [true])

        // The replica exits; its restart exits too, while the restart's first probe is held.
        responder.gate()
        driver.exitNow(supervisor.publisher.latest().backends[0])
        let deadline = Date().addingTimeInterval(15)
        while driver.launches < 2 || responder.held == 0 {
            XCTAssertLessThan(Date(), deadline, "the restart and its probe did not happen")
            if Date() >= deadline { return }
            usleep(5_000)
        }
        // The restart's exit is reported at the driver's first look after its probe was held; only then
        // does the stranger answer. The restart after the backoff must still come.
        while driver.exitsReported < 2 && Date() < deadline { usleep(5_000) }
        XCTAssertEqual(driver.exitsReported, 2, "the restarted replica's exit was not reported")
        responder.release()
        while driver.launches < 3 && Date() < deadline { usleep(5_000) }
        XCTAssertGreaterThanOrEqual(driver.launches, 3, "the held probe's answer cancelled the next restart")
    }
}
