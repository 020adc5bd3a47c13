import DSBalancer
import DSDocker
import DSDockerTestSupport
import Foundation
import Logging
import XCTest

@testable import DSControl

/// The Docker driver against a fake engine in both API shapes (1.41 and current): where each
/// replica is reached. No real network: the rules forbid traffic to a Docker bridge, so the
/// addresses here are the fake engine's and nothing connects to them.
final class DockerDriverTests: XCTestCase {
    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    /// No test here is about the engine being slow.
    private static let engineTimeout = FakeEngine.answerDeadline

    func testOnAUserNetworkAReplicaIsReachedAtItsAddressFromInspect() throws {
        for shape in [VersionedEngine.Shape.v1_41, .current] {
            let engine = try VersionedEngine(shape: shape)
            defer { engine.stop() }
            let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
            let driver = try DockerDriver(client: client, image: "ds-server:latest", pool: "p", network: "appnet", logger: logger)
            let control = try DriverEventLoop(driver)
            defer { control.stop() }
            let launched = try control.sync { try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil) }
            // Not known yet: a placeholder that refuses at once, never a guess.
            XCTAssertEqual(launched.port, 0)
            var found: Backend?
            control.waitFor { events in
                found =
                    events.lazy.compactMap { event -> Backend? in
                        guard case .addressChanged(launched, let new) = event else { return nil }
                        return new
                    }.first
                return found != nil
            }
            XCTAssertEqual(found, Backend(name: "server-1", number: 1, host: "172.20.0.10", port: 5000), "\(shape)")
            let container = try XCTUnwrap(engine.all.first)
            XCTAssertEqual(container.name, "server-1")
            XCTAssertTrue(container.running)
            XCTAssertEqual(container.network, "appnet")
            XCTAssertEqual(container.labels["ds-lb.pool"], "p")
            XCTAssertEqual(container.labels["ds-lb.id"], "1")
            // The updated backend is the driver's: killing it by that identity removes the container.
            let current = try XCTUnwrap(found)
            try control.sync { driver.kill(current) }
            XCTAssertTrue(driver.waitForEngine())
            XCTAssertTrue(engine.all.isEmpty)
        }
    }

    /// A fresh engine and a driver on the host network attached to a control loop of its own,
    /// with server-1 and server-2 launched; the loop and the engine stop at the test's end.
    private func twoOnTheHostNetwork(
        _ shape: VersionedEngine.Shape
    ) throws
        -> (VersionedEngine, DockerDriver, DriverEventLoop, Backend, Backend)
    {
        let engine = try VersionedEngine(shape: shape)
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        let driver = try DockerDriver(client: client, image: "ds-server:latest", pool: "p", logger: logger)
        let control = try DriverEventLoop(driver)
        addTeardownBlock {
            control.stop()
            engine.stop()
        }
        let one = try control.sync { try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil) }
        let two = try control.sync { try driver.launch(ReplicaSpec(name: "server-2", number: 2), previous: nil) }
        return (engine, driver, control, one, two)
    }

    func testOnTheHostNetworkEachReplicaHasItsOwnPortOnLoopbackAtOnce() throws {
        for shape in [VersionedEngine.Shape.v1_41, .current] {
            let (engine, driver, control, one, two) = try twoOnTheHostNetwork(shape)
            XCTAssertEqual(one.host, "127.0.0.1")
            XCTAssertEqual(two.host, "127.0.0.1")
            XCTAssertNotEqual(one.port, 0)
            XCTAssertNotEqual(one.port, two.port)
            XCTAssertTrue(driver.waitForEngine())
            XCTAssertEqual(Set(engine.all.filter(\.running).map(\.name)), ["server-1", "server-2"])
            XCTAssertEqual(engine.all.first { $0.name == "server-1" }?.labels["ds-lb.port"], String(one.port))
            // Both started where `launch` said, and no address changed: the worker posted its news
            // before the engine went idle, and `sync` runs after what was posted before it.
            try control.sync {}
            control.waitFor { $0.count >= 2 }
            XCTAssertEqual(Set(control.events), [.started(one), .started(two)], "\(shape)")
        }
    }

    /// A container that stops without ds-lb asking is reported as exited, with the engine's
    /// words; one ds-lb stopped itself is not.
    func testAContainerStoppedBehindTheDriversBackIsReportedAsExited() throws {
        let (engine, driver, control, one, two) = try twoOnTheHostNetwork(.current)
        control.waitFor { Set($0) == [.started(one), .started(two)] }
        try control.sync { driver.stop(two) }
        engine.stopBehindTheDriver("server-1")
        control.waitFor { $0.count == 3 }
        XCTAssertEqual(control.events.last, .exited(one, reason: "container exited: Exited (0) 1 second ago"))
        XCTAssertTrue(driver.waitForEngine())
        XCTAssertEqual(
            engine.all.map(\.name), ["server-1"], "the stopped one is removed; the exited one is left to the supervisor")
    }

    func testARunningContainerOfThePoolOnTheNetworkIsAdoptedAtItsAddress() throws {
        for shape in [VersionedEngine.Shape.v1_41, .current] {
            let engine = try VersionedEngine(shape: shape)
            defer { engine.stop() }
            engine.add(
                .init(
                    id: String(repeating: "ab", count: 32), name: "server-3", network: "appnet", ip: "172.20.0.77",
                    labels: ["ds-lb.managed": "true", "ds-lb.pool": "p", "ds-lb.id": "3", "ds-lb.port": "5000"], running: true))
            let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
            let driver = try DockerDriver(client: client, image: "ds-server:latest", pool: "p", network: "appnet", logger: logger)
            let adopted = try driver.launch(ReplicaSpec(name: "server-3", number: 3), previous: nil)
            XCTAssertEqual(adopted, Backend(name: "server-3", number: 3, host: "172.20.0.77", port: 5000))
            XCTAssertEqual(engine.all.count, 1, "adopted, not created")
        }
    }

    /// The control thread never waits on the engine: launch returns while the engine still
    /// holds the create (a driver that waited would never get to open the gate).
    func testLaunchDoesNotWaitForTheEngine() throws {
        let gate = DispatchSemaphore(value: 0)
        let engine = try FakeEngine { request in
            switch (request.method, request.path) {
            case ("GET", "/version"): return FakeEngine.json("200 OK", #"{"Version":"20.10.24","ApiVersion":"1.41"}"#)
            case ("GET", "/containers/json"): return FakeEngine.json("200 OK", "[]")
            case ("POST", "/containers/create"):
                _ = gate.wait(timeout: .now() + 20)
                return FakeEngine.json("201 Created", #"{"Id":"0123456789abcdef"}"#)
            case ("POST", _): return "HTTP/1.1 204 No Content\r\n\r\n"
            default: return FakeEngine.json("404 Not Found", #"{"message":"page not found"}"#)
            }
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        let driver = try DockerDriver(client: client, image: "ds-server:latest", pool: "p", logger: logger)
        let backend = try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil)
        XCTAssertFalse(engine.requestLines.contains { $0.contains("/start") }, "the create is still held")
        gate.signal()
        XCTAssertTrue(driver.waitForEngine())
        XCTAssertTrue(engine.requestLines.contains("POST /v1.41/containers/0123456789abcdef/start HTTP/1.1"))
        XCTAssertEqual(driver.details(of: backend).first?.1, .string("0123456789ab"))
    }

    func testAMissingNetworkIsRefusedAtStartInTheEnginesWords() throws {
        let engine = try VersionedEngine(shape: .current)
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        XCTAssertThrowsError(
            try DockerDriver(client: client, image: "ds-server:latest", pool: "p", network: "nope", logger: logger)
        ) { error in
            XCTAssertEqual(error as? DockerError, .engine(status: 404, message: "network nope not found"))
        }
    }

    func testAForeignContainerIsAClearConflictAndLeftAlone() throws {
        let engine = try VersionedEngine(shape: .current)
        defer { engine.stop() }
        engine.add(
            .init(id: String(repeating: "cd", count: 32), name: "server-9", network: "host", ip: "", labels: [:], running: true))
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        let driver = try DockerDriver(client: client, image: "ds-server:latest", pool: "p", logger: logger)
        XCTAssertThrowsError(try driver.launch(ReplicaSpec(name: "server-9", number: 9), previous: nil)) { error in
            let conflict = error as? DriverError
            XCTAssertEqual(conflict?.isNameConflict, true)
            XCTAssertTrue(conflict?.description.contains("not managed by ds-lb") == true, "\(error)")
        }
        XCTAssertEqual(engine.all.map(\.name), ["server-9"])
    }

    // MARK: cluster mode (two nodes on one engine, as on one test machine)

    /// Replica `server-<id>`'s container as `node` (nil: a one-machine ds-lb) leaves it.
    private func container(id: Int, node: String?, byte: String) -> VersionedEngine.Container {
        var labels = ["ds-lb.managed": "true", "ds-lb.pool": "p", "ds-lb.id": String(id), "ds-lb.port": "4100\(id)"]
        labels["ds-lb.node"] = node
        let name = ReplicaContainer.containerName("server-\(id)", node: node)
        return .init(id: String(repeating: byte, count: 32), name: name, network: "host", ip: "", labels: labels, running: true)
    }

    /// A node adopts its own running container and, once its pool is launched, removes only its
    /// own unclaimed ones: the other node's (and a one-machine ds-lb's) are left alone.
    func testANodeAdoptsAndCleansUpOnlyItsOwnContainers() throws {
        let engine = try VersionedEngine(shape: .current)
        defer { engine.stop() }
        engine.add(container(id: 1, node: "n1", byte: "a1"))
        engine.add(container(id: 2, node: "n2", byte: "a2"))
        engine.add(container(id: 3, node: "n2", byte: "a3"))
        engine.add(container(id: 4, node: nil, byte: "a4"))
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        let driver = try DockerDriver(
            client: client, image: "ds-server:latest", pool: "p", host: "127.0.0.1", node: "n2", logger: logger)
        let control = try DriverEventLoop(driver)
        defer { control.stop() }
        let adopted = try control.sync { try driver.launch(ReplicaSpec(name: "server-2", number: 2), previous: nil) }
        XCTAssertEqual(adopted, Backend(name: "server-2", number: 2, host: "127.0.0.1", port: 41002))
        try control.sync { driver.initialPoolLaunched() }
        XCTAssertTrue(driver.waitForEngine())
        XCTAssertEqual(
            engine.all.map(\.name).sorted(), ["server-1.n1", "server-2.n2", "server-4"], "only n2's unclaimed server-3 is removed"
        )
    }

    /// A replica that moves to n2 while n1's copy still runs on the same engine: n2 starts its own
    /// container beside it, labelled n2 and, on the host network, listening on n2's advertise
    /// address; n1's is left to n1.
    func testAReplicaTakenOverFromAnotherNodeOnTheSameEngineGetsItsOwnContainer() throws {
        let engine = try VersionedEngine(shape: .current)
        defer { engine.stop() }
        engine.add(container(id: 1, node: "n1", byte: "b1"))
        let client = try DockerClient.connect(socketPath: engine.path, timeout: Self.engineTimeout)
        let driver = try DockerDriver(
            client: client, image: "ds-server:latest", pool: "p", host: "127.0.0.2", node: "n2", logger: logger)
        let control = try DriverEventLoop(driver)
        defer { control.stop() }
        try control.sync { driver.initialPoolLaunched() }
        let launched = try control.sync { try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil) }
        XCTAssertEqual(launched.host, "127.0.0.2")
        control.waitFor { $0.contains(.started(launched)) }
        XCTAssertTrue(driver.waitForEngine())
        XCTAssertEqual(launched.name, "server-1")
        let now = try XCTUnwrap(engine.all.first { $0.name == "server-1.n2" })
        XCTAssertEqual(now.labels["ds-lb.node"], "n2")
        XCTAssertEqual(now.labels["ds-lb.host"], "127.0.0.2")
        XCTAssertTrue(now.running)
        XCTAssertEqual(engine.all.filter(\.running).map(\.name).sorted(), ["server-1.n1", "server-1.n2"])
    }
}
