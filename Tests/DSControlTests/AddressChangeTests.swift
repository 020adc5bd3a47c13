#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest
import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import Logging
@testable import DSControl

/// A replica whose address a driver learns only after `launch` (a container on a user-defined
/// network): the supervisor heartbeats the address the driver reports later, brings the replica
/// up there, and publishes that address in the snapshot the workers route by.
final class AddressChangeTests: XCTestCase {
    /// Launches at a placeholder that refuses (port 0) and reports `real` from its second poll on.
    private final class LateAddressDriver: ReplicaDriver {
        let name = "late"
        let canCreate = true
        let real: UInt16
        private var launched: Backend?
        private var polls = 0
        init(real: UInt16) { self.real = real }
        func initialBackends() -> [Backend] { [] }
        func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
            let backend = Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: 0)
            launched = backend
            return backend
        }
        func stop(_ backend: Backend) {}
        func retire(_ backend: Backend) -> () -> Void { {} }
        func kill(_ backend: Backend) {}
        func poll() -> [(Backend, String)] { polls += 1; return [] }
        func addressChanges() -> [(Backend, Backend)] {
            guard polls >= 1, let old = launched else { return [] }
            launched = nil
            return [(old, Backend(name: old.name, number: old.number, host: "127.0.0.1", port: real))]
        }
        func details(of backend: Backend) -> [(String, JSONValue)] { [] }
        func stopAll() {}
    }

    func testTheReplicaIsCheckedAndPublishedAtTheAddressTheDriverReportsLater() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let loop = try EventLoop()
        let driver = LateAddressDriver(real: responder.port)
        var config = SupervisorConfig()
        config.heartbeatInterval = 200_000_000
        config.startTimeout = 5_000_000_000  // past it `ready` fires anyway: the assertions tell
        let supervisor = Supervisor(loop: loop, driver: driver, algorithm: .ring, config: config, workers: 1,
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

    /// The supervisor saves a new address by itself; when that fails it cannot refuse anything,
    /// so the log says what was not saved and what a restart would do.
    func testAnAddressThatCannotBeSavedIsLoggedAsSuch() throws {
        let responder = try HeartbeatResponder()
        defer { responder.stop() }
        let loop = try EventLoop()
        let log = CapturedLog()
        let supervisor = Supervisor(loop: loop, driver: LateAddressDriver(real: responder.port), algorithm: .ring,
                                    config: SupervisorConfig(), workers: 1, logger: log.logger)
        try supervisor.bootstrap(replicas: 1) {}
        supervisor.stateStore = try unwritableStateStore()
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }
        let expected = "[!] Could not save the pool after server-1 moved to 127.0.0.1:\(responder.port): cannot create state directory"
        XCTAssertTrue(log.waitFor(expected), "wanted '\(expected)'; the log: \(log.messages)")
        XCTAssertTrue(log.waitFor("a restart would bring back the last one saved"), "\(log.messages)")
    }
}
