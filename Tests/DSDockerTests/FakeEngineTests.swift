import DSDockerTestSupport
import DSSystem
import Foundation
import XCTest

@testable import DSDocker

#if canImport(Glibc)
import Glibc
#endif

/// The client on the wire, against fake engines: negotiation, framing, errors, timeouts,
/// concurrency, and both API shapes (1.41 and ≥ 1.44) for the calls the driver makes.
final class FakeEngineTests: XCTestCase {
    /// An engine that speaks API 1.41 and answers every versioned call with `reply`, and a client
    /// connected to it; the engine stops at the test's end.
    private func connected(_ reply: @escaping @Sendable (FakeEngine.Request) -> String) throws -> (FakeEngine, DockerClient) {
        let engine = try FakeEngine { request in
            request.line.hasPrefix("GET /version ") ? FakeEngine.json("200 OK", #"{"ApiVersion":"1.41"}"#) : reply(request)
        }
        addTeardownBlock { engine.stop() }
        return (engine, try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline))
    }

    func testNegotiatesWithGetVersionAndPrefixesEveryCall() throws {
        let engine = try FakeEngine { request in
            if request.line.hasPrefix("GET /version ") {
                return FakeEngine.json("200 OK", #"{"Version":"20.10.24","ApiVersion":"1.41","MinAPIVersion":"1.12"}"#)
            }
            // The list comes back chunked, as engines do for streamed JSON.
            let body = #"[{"Id":"abc","Names":["/server-1"],"State":"running","Status":"Up","Labels":{"ds-lb.managed":"true"}}]"#
            let half = body.utf8.count / 2
            return FakeEngine.chunked("200 OK", [String(body.prefix(half)), String(body.dropFirst(half))])
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
        XCTAssertEqual(client.apiVersion, "1.41")
        XCTAssertEqual(client.engineVersion, "20.10.24")
        let list = try client.listContainers(labels: ["ds-lb.pool=p"])
        XCTAssertEqual(list.map(\.name), ["server-1"])
        XCTAssertEqual(engine.requestLines.first, "GET /version HTTP/1.1")
        XCTAssertEqual(
            engine.requestLines.last,
            "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22ds-lb.pool%3Dp%22%5D%7D HTTP/1.1")
    }

    func testANewEngineIsSpokenToInOurNewestVersionAndNeverBelowItsMinimum() throws {
        let engine = try FakeEngine { _ in
            FakeEngine.json("200 OK", #"{"Version":"29.0.0","ApiVersion":"1.52","MinAPIVersion":"1.44"}"#)
        }
        defer { engine.stop() }
        XCTAssertEqual(
            try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline).apiVersion,
            DockerClient.newestKnown.description)
    }

    func testEngineErrorsCarryTheEnginesMessage() throws {
        let (engine, client) = try connected { _ in
            FakeEngine.json(
                "409 Conflict",
                #"{"message":"Conflict. The container name \"/server-9\" is already in use by container \"123\"."}"#)
        }
        XCTAssertThrowsError(try client.wait { client.createContainer(name: "server-9", config: ["Image": "x"], completion: $0) })
        { error in
            XCTAssertEqual(
                error as? DockerError,
                .engine(
                    status: 409, message: "Conflict. The container name \"/server-9\" is already in use by container \"123\"."))
        }
        XCTAssertEqual(engine.requestLines.last, "POST /v1.41/containers/create?name=server-9 HTTP/1.1")
        XCTAssertEqual(engine.requests.last?.json?["Image"] as? String, "x")
    }

    /// A chunked answer whose framing the data plane would refuse fails the call, naming it.
    func testMalformedChunkedFramingFailsTheCall() throws {
        let (_, client) = try connected { _ in
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\n[]\r\n0\r\n\r\n"
        }
        XCTAssertThrowsError(try client.listContainers()) { error in
            guard case .protocolError(let reason) = error as? DockerError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("GET /v1.41/containers/json: malformed chunked body from the engine: "), reason)
        }
    }

    func testASilentEngineTimesOut() throws {
        // Silent until the client gave up, however late its timer fires on a loaded machine.
        let gate = DispatchSemaphore(value: 0)
        let engine = try FakeEngine { _ in
            _ = gate.wait(timeout: .now() + 60)
            return ""
        }
        defer {
            gate.signal()
            engine.stop()
        }
        XCTAssertThrowsError(try DockerClient.connect(socketPath: engine.path, timeout: .milliseconds(300))) { error in
            guard case DockerError.timedOut = error else { return XCTFail("\(error)") }
        }
    }

    func testASlowAnswerTimesOutAndABodyCutShortIsAnError() throws {
        let gate = DispatchSemaphore(value: 0)
        defer { gate.signal() }
        let (_, client) = try connected { request in
            if request.path == "/containers/slow/json" {
                _ = gate.wait(timeout: .now() + 60)
            }
            return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Id\":"
        }
        XCTAssertThrowsError(try client.wait { client.inspectContainer("slow", timeout: .milliseconds(300), completion: $0) }) {
            error in
            guard case DockerError.timedOut(let text) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(text, "GET /v1.41/containers/slow/json: no answer within 0.3s")
        }
        XCTAssertThrowsError(try client.wait { client.inspectContainer("cut", completion: $0) }) { error in
            guard case DockerError.protocolError(let text) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("cut short"), text)
        }
    }

    /// Calls run concurrently on the client's loop: the engine answers none of three calls until
    /// all three are open at once, which a client doing one call at a time never achieves.
    func testCallsRunConcurrently() throws {
        let open = Locked(0)
        let (_, client) = try connected { request in
            open.withLock { $0 += 1 }
            for _ in 0..<3000 where open.withLock({ $0 }) < 3 { Thread.sleep(forTimeInterval: 0.01) }
            return open.withLock({ $0 }) >= 3
                ? "HTTP/1.1 204 No Content\r\n\r\n" : FakeEngine.json("500 Internal Server Error", #"{"message":"alone"}"#)
        }
        let results = Locked<[Result<Void, DockerError>]>([])
        let done = expectation(description: "three answers")
        done.expectedFulfillmentCount = 3
        for id in ["a", "b", "c"] {
            client.startContainer(id, timeout: FakeEngine.answerDeadline) { result in
                results.withLock { $0.append(result) }
                done.fulfill()
            }
        }
        wait(for: [done], timeout: 60)
        XCTAssertEqual(results.withLock { $0.filter { if case .success = $0 { return true } else { return false } }.count }, 3)
    }

    /// The engine counts the grace in whole seconds: a fraction is rounded up, never cut short.
    func testStopAsksForTheGraceInWholeSecondsRoundedUp() throws {
        let (engine, client) = try connected { _ in
            "HTTP/1.1 204 No Content\r\n\r\n"
        }
        try client.wait { client.stopContainer("a", grace: .milliseconds(1500), completion: $0) }
        XCTAssertEqual(engine.requestLines.last, "POST /v1.41/containers/a/stop?t=2 HTTP/1.1")
        try client.wait { client.stopContainer("b", grace: .seconds(5), completion: $0) }
        XCTAssertEqual(engine.requestLines.last, "POST /v1.41/containers/b/stop?t=5 HTTP/1.1")
    }

    func testAfterRunsTheTaskOnceItsDelayHasPassed() throws {
        let engine = try FakeEngine { _ in FakeEngine.json("200 OK", #"{"ApiVersion":"1.41"}"#) }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
        let start = monotonicNanoseconds()
        let ranAt = Locked<UInt64?>(nil)
        let ran = expectation(description: "the delayed task ran")
        client.after(.milliseconds(200)) {
            ranAt.withLock { $0 = monotonicNanoseconds() }
            ran.fulfill()
        }
        wait(for: [ran], timeout: 10)
        XCTAssertGreaterThanOrEqual((ranAt.withLock { $0 } ?? 0) &- start, 200_000_000, "ran before its delay")
    }

    func testMissingSocketIsUnreachableAtOnce() {
        XCTAssertThrowsError(
            try DockerClient.connect(socketPath: "/nonexistent/docker.sock", timeout: .seconds(30), connectTimeout: .seconds(30))
        ) { error in
            guard case DockerError.unreachable(let text) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(text.contains("No such file or directory"), text)
        }
    }

    // MARK: API shapes

    /// On a user-defined network the same create body is accepted by a 1.41 engine (one endpoint,
    /// the NetworkMode one) and a current one, and the address comes from
    /// `NetworkSettings.Networks[NAME]` in both inspect shapes (1.41 still has an empty top-level
    /// `IPAddress`; current engines have none).
    func testAUserNetworkReplicaIsCreatedAndFoundInBothAPIShapes() throws {
        for shape in [VersionedEngine.Shape.v1_41, .current] {
            let engine = try VersionedEngine(shape: shape)
            defer { engine.stop() }
            let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
            XCTAssertEqual(client.apiVersion, shape == .v1_41 ? "1.41" : "1.47")
            let body = ReplicaContainer.createBody(image: "ds-server:latest", pool: "p", number: 2, port: 0, network: "appnet")
            let id = try client.wait { client.createContainer(name: "server-2", config: body, completion: $0) }
            let sent = try XCTUnwrap(engine.engine.requests.last?.json)
            XCTAssertEqual((sent["HostConfig"] as? [String: Any])?["NetworkMode"] as? String, "appnet")
            XCTAssertEqual(
                ((sent["NetworkingConfig"] as? [String: Any])?["EndpointsConfig"] as? [String: Any])?.keys.sorted(), ["appnet"])
            XCTAssertNil(sent["MacAddress"], "container-wide MacAddress is deprecated from 1.44")
            XCTAssertEqual(sent["Cmd"] as? [String], ["--id", "2", "--host", "0.0.0.0", "--port", "5000"])
            // Before it runs it has no address there.
            let before = try client.wait { client.inspectContainer(id, completion: $0) }
            XCTAssertNil(ReplicaContainer.host(onNetwork: "appnet", addresses: before.networks))
            try client.wait { client.startContainer(id, completion: $0) }
            let details = try client.wait { client.inspectContainer(id, completion: $0) }
            XCTAssertEqual(details.networkMode, "appnet")
            XCTAssertEqual(ReplicaContainer.host(onNetwork: "appnet", addresses: details.networks), "172.20.0.10")
            // Not on another network, and the list shows the same address (adoption reads it).
            XCTAssertNil(ReplicaContainer.host(onNetwork: "other", addresses: details.networks))
            let listed = try client.listContainers()
            XCTAssertEqual(listed.first?.networks["appnet"], "172.20.0.10")
        }
    }

    func testAHostNetworkReplicaHasItsOwnPortOnLoopbackInBothAPIShapes() throws {
        for shape in [VersionedEngine.Shape.v1_41, .current] {
            let engine = try VersionedEngine(shape: shape)
            defer { engine.stop() }
            let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
            let body = ReplicaContainer.createBody(image: "ds-server:latest", pool: "p", number: 1, port: 41234, network: "host")
            let id = try client.wait { client.createContainer(name: "server-1", config: body, completion: $0) }
            let sent = try XCTUnwrap(engine.engine.requests.last?.json)
            XCTAssertNil(sent["NetworkingConfig"])
            XCTAssertEqual(sent["Env"] as? [String], ["SERVER_ID=1", "PORT=41234"])
            XCTAssertEqual((sent["Labels"] as? [String: String])?["ds-lb.port"], "41234")
            try client.wait { client.startContainer(id, completion: $0) }
            let details = try client.wait { client.inspectContainer(id, completion: $0) }
            XCTAssertEqual(ReplicaContainer.host(onNetwork: "host", addresses: details.networks), "127.0.0.1")
        }
    }

    func testTheOldShapeRefusesTwoEndpointsAndTheNewOneAnOldVersionWithTheirOwnMessages() throws {
        let old = try VersionedEngine(shape: .v1_41)
        defer { old.stop() }
        let client = try DockerClient.connect(socketPath: old.path, timeout: FakeEngine.answerDeadline)
        var body = ReplicaContainer.createBody(image: "i", pool: "p", number: 1, port: 0, network: "a")
        body["NetworkingConfig"] = ["EndpointsConfig": ["a": [String: Any](), "b": [String: Any]()]]
        XCTAssertThrowsError(try client.wait { client.createContainer(name: "x", config: body, completion: $0) }) { error in
            XCTAssertEqual(
                error as? DockerError, .engine(status: 400, message: "Container cannot be connected to network endpoints: a, b"))
        }
        let current = try VersionedEngine(shape: .current)
        defer { current.stop() }
        let raw = try DockerClient.connect(socketPath: current.path, timeout: FakeEngine.answerDeadline)
        let refused = try raw.wait {
            raw.exchange("GET", "/v1.41/containers/json", body: nil, timeout: FakeEngine.answerDeadline, completion: $0)
        }
        XCTAssertEqual(refused.status, 400)
        XCTAssertTrue(refused.engineMessage.contains("Minimum supported API version is 1.44"), refused.engineMessage)
    }
}
