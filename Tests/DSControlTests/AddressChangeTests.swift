import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import DSTestSupport
import Foundation
import Logging
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// A replica whose address a driver learns only after `launch` (a container on a user-defined
/// network): the supervisor heartbeats the address the driver reports later, brings the replica
/// up there, and publishes that address in the snapshot the workers route by.
final class AddressChangeTests: XCTestCase {
    /// Launches at a placeholder that refuses (port 0) and reports `real` a little later.
    private final class LateAddressDriver: NothingToStopDriver {
        let name = "late"
        let canCreate = true
        let real: UInt16
        private var loop: EventLoop?
        private var report: (DriverEvent) -> Void = { _ in }
        init(real: UInt16) { self.real = real }
        func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {
            self.loop = loop
            self.report = report
        }
        func initialBackends() -> [Backend] { [] }
        func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
            let backend = Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: 0)
            let real = Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: self.real)
            loop?.schedule(after: .milliseconds(100)) { [self] in report(.addressChanged(from: backend, to: real)) }
            return backend
        }
    }

    func testTheReplicaIsCheckedAndPublishedAtTheAddressTheDriverReportsLater() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let loop = try EventLoop()
        let driver = LateAddressDriver(real: responder.port)
        var config = SupervisorConfig()
        config.heartbeatInterval = .milliseconds(200)
        config.startTimeout = .seconds(5) // past it `ready` fires anyway: the assertions tell
        let supervisor = Supervisor(
            loop: loop, driver: driver, algorithm: .ring, config: config, workers: 1,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let ready = expectation(description: "the initial pool is up")
        try supervisor.bootstrap(replicas: 1) { ready.fulfill() }
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }
        wait(for: [ready], timeout: 10)
        let snapshot = supervisor.publisher.latest()
        XCTAssertEqual(snapshot.backends, [Backend(name: "server-1", number: 1, host: "127.0.0.1", port: responder.port)])
        XCTAssertEqual(snapshot.healthy, [true])
    }

    /// Runs a supervisor with one replica whose address comes late, saving to the store `store`
    /// makes (after the initial pool was saved nowhere); returns what stops it.
    private func runLateReplica(at port: UInt16, log: CapturedLog, store: (EventLoop) throws -> PoolStore) throws -> () -> Void {
        let loop = try EventLoop()
        let supervisor = Supervisor(
            loop: loop, driver: LateAddressDriver(real: port), algorithm: .ring,
            config: SupervisorConfig(), workers: 1, logger: log.logger)
        try supervisor.bootstrap(replicas: 1) {}
        supervisor.poolStore = try store(loop)
        return startControlLoop(loop, keeping: supervisor)
    }

    /// The supervisor saves a new address by itself; when that fails it cannot refuse anything,
    /// so the log says what was not saved and what a restart would do.
    func testAnAddressThatCannotBeSavedIsLoggedAsSuch() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let log = CapturedLog()
        let stopLoop = try runLateReplica(at: responder.port, log: log) { _ in try unwritablePoolStore() }
        defer { stopLoop() }
        let expected =
            "[!] Could not save the pool after server-1 moved to 127.0.0.1:\(responder.port): cannot create state directory"
        XCTAssertTrue(log.waitFor(expected), "wanted '\(expected)'; the log: \(log.messages)")
        XCTAssertTrue(log.waitFor("a restart would bring back the last one saved"), "\(log.messages)")
    }

    /// A change the supervisor saves by itself that loses its race is saved again over the
    /// store's new revision: the running pool is the one to keep.
    func testAnAddressSavedAfterALostRaceIsSavedAgainOverTheOtherWriter() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let log = CapturedLog()
        var racing: RacingPoolStore?
        let stopLoop = try runLateReplica(at: responder.port, log: log) { loop in
            racing = RacingPoolStore(loop: loop, revision: 7)
            return racing!
        }
        defer { stopLoop() }
        let store = try XCTUnwrap(racing)
        let expected =
            "[!] Saving the pool after server-1 moved to 127.0.0.1:\(responder.port): the pool was changed by another writer (now at revision 7, this ds-lb had revision 0); saving the running pool over it"
        XCTAssertTrue(log.waitFor(expected), "wanted '\(expected)'; the log: \(log.messages)")
        let deadline = Date().addingTimeInterval(10)
        while store.saved.revision < 8 && Date() < deadline { usleep(5_000) }
        XCTAssertEqual(
            store.saved,
            StoredPool(replicas: [Backend(name: "server-1", number: 1, host: "127.0.0.1", port: responder.port)], revision: 8))
        XCTAssertEqual(store.writes, 2)
        XCTAssertFalse(log.messages.contains { $0.contains("Could not save") }, "\(log.messages)")
    }
}
