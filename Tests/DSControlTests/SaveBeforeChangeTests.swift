import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import Foundation
import Logging
import XCTest

@testable import DSControl

/// An admin command whose new pool cannot be saved is refused before it changes anything: a
/// change a restart of ds-lb would undo is not made.
final class SaveBeforeChangeTests: XCTestCase {
    /// Launches at port 0 (the replicas never come up; `/rm` does not need them to) and records
    /// every replica it is asked to stop.
    private final class RecordingDriver: ReplicaDriver, @unchecked Sendable {
        let name = "recording"
        let canCreate = true
        var stopped: [String] = []
        func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {}
        func initialBackends() -> [Backend] { [] }
        func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
            Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: 0)
        }
        func stop(_ backend: Backend) { stopped.append(backend.name) }
        func retire(_ backend: Backend) -> () -> Void { stopped.append(backend.name); return {} }
        func kill(_ backend: Backend) { stopped.append(backend.name) }
        func details(of backend: Backend) -> [(String, JSONValue)] { [] }
        func stopAll() {}
    }

    /// A supervisor that launched three replicas (saved nowhere), its loop not yet running.
    private func threeReplicas() throws -> (EventLoop, RecordingDriver, Supervisor) {
        let loop = try EventLoop()
        let driver = RecordingDriver()
        let supervisor = Supervisor(
            loop: loop, driver: driver, algorithm: .ring, config: SupervisorConfig(), workers: 0,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try supervisor.bootstrap(replicas: 3) {}
        return (loop, driver, supervisor)
    }

    func testRemoveThatCannotBeSavedStopsNothing() throws {
        let (loop, driver, supervisor) = try threeReplicas()
        supervisor.poolStore = try unwritablePoolStore()
        let before = supervisor.view.latest().poolNames
        let generation = supervisor.publisher.latest().generation
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }

        for (path, query, body) in [("/rm", "id=1", ""), ("/rm", nil, #"{"hostnames": ["server-2"]}"#)] {
            let answered = expectation(description: "answer")
            nonisolated(unsafe) var response: AdminResponse?
            supervisor.admin.submit(AdminRequest(method: "DELETE", path: path, query: query, body: Array(body.utf8))) {
                response = $0
                answered.fulfill()
            }
            wait(for: [answered], timeout: 10)
            XCTAssertEqual(response?.status, .internalServerError, "\(String(describing: response))")
            XCTAssertTrue(
                response?.body.contains("Could not save the pool, nothing changed: cannot create state directory") ?? false,
                "\(String(describing: response?.body))")
        }
        let checked = expectation(description: "state read on the loop")
        loop.execute {
            XCTAssertEqual(supervisor.view.latest().poolNames, before, "the pool is unchanged")
            XCTAssertEqual(supervisor.publisher.latest().generation, generation, "nothing was published")
            XCTAssertEqual(driver.stopped, [], "no replica was stopped")
            checked.fulfill()
        }
        wait(for: [checked], timeout: 10)
    }

    /// Another writer changed the pool since this ds-lb last read it: the command is refused
    /// with 409 and changes nothing; sent again, it applies over the pool as it is now.
    func testARemoveThatLostARaceIsRefusedAndAppliesWhenSentAgain() throws {
        let (loop, driver, supervisor) = try threeReplicas()
        let store = RacingPoolStore(loop: loop, revision: 4)
        supervisor.poolStore = store
        let before = supervisor.view.latest().poolNames
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }

        func remove() -> AdminResponse? {
            let answered = expectation(description: "answer")
            nonisolated(unsafe) var response: AdminResponse?
            supervisor.admin.submit(AdminRequest(method: "DELETE", path: "/rm", query: "id=1", body: [])) {
                response = $0
                answered.fulfill()
            }
            wait(for: [answered], timeout: 10)
            return response
        }
        func onLoop(_ body: @escaping @Sendable () -> Void) {
            let done = expectation(description: "on the loop")
            loop.execute {
                body()
                done.fulfill()
            }
            wait(for: [done], timeout: 10)
        }

        let refused = remove()
        XCTAssertEqual(refused?.status, .conflict, "\(String(describing: refused))")
        XCTAssertEqual(
            refused?.body.contains(
                "Could not save the pool, nothing changed: the pool was changed by another writer (now at revision 4, this ds-lb had revision 0); send the command again"
            ), true,
            "\(String(describing: refused?.body))")
        onLoop {
            XCTAssertEqual(supervisor.view.latest().poolNames, before, "the pool is unchanged")
            XCTAssertEqual(driver.stopped, [], "no replica was stopped")
        }
        XCTAssertEqual(store.saved.revision, 4)

        let applied = remove()
        XCTAssertEqual(applied?.status, .ok, "\(String(describing: applied))")
        XCTAssertEqual(
            store.saved,
            StoredPool(replicas: [DSBalancerBackend.port0("server-2", 2), DSBalancerBackend.port0("server-3", 3)], revision: 5))
        onLoop {
            XCTAssertEqual(supervisor.poolRevision, 5)
            XCTAssertEqual(driver.stopped, ["server-1"])
        }
    }
}
