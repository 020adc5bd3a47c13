// The base of the end-to-end tests: starts ds-server and ds-lb as child processes, waits for
// them to be ready, and stops every process it started (and every replica it saw ds-lb
// spawn) by PID in teardown, also when the test failed. Should the test process itself die
// (SIGKILL, crash), its children die with it: ChildProcess forks them with PR_SET_PDEATHSIG
// (SpawnThread), and ds-lb does the same for its replicas.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A running ds-server started by a test.
struct ServerUnderTest {
    let process: ChildProcess
    let port: UInt16
}

/// A running ds-lb started by a test.
struct LoadBalancerUnderTest {
    let process: ChildProcess
    let port: UInt16

    /// A new keep-alive client, optionally bound to a source address (e.g. 127.0.0.3).
    func client(source: String? = nil) -> KeepAliveClient {
        KeepAliveClient(port: port, sourceAddress: source)
    }

    /// One request on a fresh connection.
    func request(
        _ method: String, _ target: String, body: [UInt8]? = nil,
        source: String? = nil
    ) throws -> HTTPResponse {
        let connection = try HTTPConnection(port: port, sourceAddress: source)
        defer { connection.close() }
        return try connection.request(method, target, body: body)
    }

    /// An admin command with a JSON body built from `json` (nil = no body).
    func admin(
        _ method: String, _ target: String, json: Any? = nil,
        source: String? = nil
    ) throws -> HTTPResponse {
        try request(method, target, body: json.map(JSON.bytes), source: source)
    }

    /// An admin command with a raw body (for invalid JSON).
    func admin(
        _ method: String, _ target: String, rawBody: String,
        source: String? = nil
    ) throws -> HTTPResponse {
        try request(method, target, body: Array(rawBody.utf8), source: source)
    }

    /// `GET /rep`, decoded; throws when it is not a 200 in the /rep format.
    func replicaState(source: String? = nil) throws -> (n: Int, replicas: [String]) {
        let response = try request("GET", "/rep", source: source)
        guard response.status == 200, response.jsonStatus == "successful",
            let state = response.replicaState
        else {
            throw ChildProcess.LaunchError(description: "GET /rep did not answer 200 in the /rep format: \(response)")
        }
        return state
    }

    /// `GET /metrics` as series → value (`dslb_replica_up{replica="server-1"}` → 1); throws
    /// when it is not a 200.
    func metricSeries() throws -> [String: Double] {
        let response = try request("GET", "/metrics")
        guard response.status == 200 else {
            throw ChildProcess.LaunchError(description: "GET /metrics did not answer 200: \(response)")
        }
        var series: [String: Double] = [:]
        for line in response.bodyString.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            series[String(line[..<space])] = value
        }
        return series
    }

    /// The series of `/metrics` labelled `replica="<name>"`.
    func metricSeries(ofReplica name: String) throws -> [String: Double] {
        try metricSeries().filter { $0.key.contains("replica=\"\(name)\"") }
    }

    /// Waits until ds-lb has sent at least `count` requests to replicas (to `replica` alone,
    /// if named) that are not answered yet, as GET /status's `in_flight` says. A test that
    /// acts on a request "in flight" (a drain, a removal) waits for this, not for a sleep:
    /// on a loaded machine a request sent 300 ms ago may not have reached the replica.
    func waitForInFlight(atLeast count: Int = 1, replica: String? = nil, timeout: TimeInterval = 15) -> Bool {
        waitForInFlight(replica: replica, timeout: timeout) { $0 >= count }
    }

    /// Waits until no request is in flight. A request whose response the client has already
    /// read still counts until its worker has finished with the replica's side, so a test that
    /// made requests waits for this before sending the one whose arrival it then waits for.
    func waitForNoneInFlight(timeout: TimeInterval = 15) -> Bool {
        waitForInFlight(timeout: timeout) { $0 == 0 }
    }

    private func waitForInFlight(replica: String? = nil, timeout: TimeInterval, until condition: (Int) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let status = try? request("GET", "/status"), status.status == 200,
                condition(status.inFlight(replica: replica))
            {
                return true
            }
            usleep(10_000)
        } while Date() < deadline
        return false
    }

    /// ds-lb's child processes that run ds-server, by the N of their `--id N`.
    func replicaPIDsByID() -> [Int: pid_t] {
        var result: [Int: pid_t] = [:]
        for child in ProcFS.children(of: process.pid) {
            guard let id = ProcFS.argument(after: "--id", of: child).flatMap({ Int($0) }) else { continue }
            result[id] = child
        }
        return result
    }
}

class IntegrationTestCase: XCTestCase {
    /// Processes not started by us that must not survive the test (replicas of ds-lb
    /// recorded while it ran); SIGKILLed in teardown if still the same process.
    private var strays: [ProcFS.Identity] = []

    /// How long a binary may take to print its `Listening on` line.
    let startupTimeout: TimeInterval = 20

    override func setUp() {
        super.setUp()
        strays = []
        // Registered first, so it runs last (teardown blocks run in reverse order).
        addTeardownBlock { [unowned self] in
            for stray in strays { ProcFS.kill(stray) }
            let alive = ProcFS.waitUntilGone(strays, timeout: 3)
            if !alive.isEmpty {
                print("[teardown] still alive after SIGKILL: \(alive.map { ProcFS.describe($0.pid) })")
            }
        }
    }

    /// Remembers processes to kill in teardown (e.g. replicas of a ds-lb).
    func recordStrays(_ pids: [pid_t]) {
        for pid in pids {
            if let id = ProcFS.identity(pid), !strays.contains(id) { strays.append(id) }
        }
    }

    /// Starts `binary` from the binaries directory; it (and its descendants) are SIGKILLed in
    /// teardown. When the test failed, teardown prints the process's output.
    func launch(
        _ binary: String, _ arguments: [String], environment: [String: String?] = [:],
        name: String? = nil, passing descriptors: [Int32] = [],
        ownProcessGroup: Bool = false
    ) throws -> ChildProcess {
        let path = binary.hasPrefix("/") ? binary : try Binaries.path(binary)
        let process = try ChildProcess(
            name: name ?? binary, executable: path, arguments: arguments,
            environment: environment, passing: descriptors, ownProcessGroup: ownProcessGroup)
        addTeardownBlock { [unowned self] in
            if let run = testRun, run.totalFailureCount > 0 {
                print(
                    "[teardown] \(process.name) pid \(process.pid), \(process.pollTermination().map { "\($0)" } ?? "running")\n\(process.outputTail(60))"
                )
            }
            let descendants = ProcFS.descendants(of: process.pid).compactMap(ProcFS.identity)
            process.forceStop()
            for d in descendants { ProcFS.kill(d) }
            _ = ProcFS.waitUntilGone(descendants, timeout: 3)
            process.stopReaders()
        }
        return process
    }

    /// A new empty directory under $TMPDIR (or /tmp), removed in teardown.
    func temporaryDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array("\(base)/ds-lb-itest-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ChildProcess.LaunchError(description: "mkdtemp in \(base): \(String(cString: strerror(errno)))")
        }
        let path = String(cString: made)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Starts `ds-server` with `arguments` and waits for `Listening on 127.0.0.1:PORT`.
    func startServer(
        _ arguments: [String], environment: [String: String?] = [:],
        name: String = "ds-server"
    ) throws -> ServerUnderTest {
        let process = try launch("ds-server", arguments, environment: environment, name: name)
        let groups = try process.waitForStderrLine(
            matching: #"Listening on 127\.0\.0\.1:([0-9]+)"#,
            timeout: startupTimeout)
        guard let port = UInt16(groups[1]), port != 0 else {
            throw ChildProcess.LaunchError(description: "\(name) printed an invalid port: \(groups[0])")
        }
        return ServerUnderTest(process: process, port: port)
    }

    /// `ds-server --id N --host 127.0.0.1 --port 0`.
    func startServer(id: Int) throws -> ServerUnderTest {
        try startServer(["--id", "\(id)", "--host", "127.0.0.1", "--port", "0"], name: "ds-server-\(id)")
    }

    /// Starts `ds-lb` with `arguments` and waits for its own `Listening on 127.0.0.1:PORT`
    /// line (a line whose port ds-lb itself listens on, so a replica's line, should replicas
    /// share ds-lb's stderr, is not taken for it). With `ownProcessGroup`, ds-lb leads a
    /// process group of its own, as a job a shell starts in a terminal does.
    func startLoadBalancer(
        _ arguments: [String] = ["--listen", "127.0.0.1:0", "--replicas", "3"],
        environment: [String: String?] = [:],
        ownProcessGroup: Bool = false
    ) throws -> LoadBalancerUnderTest {
        // ds-lb may keep its pool across restarts in $STATE_DIRECTORY (else a system-wide
        // directory): give every ds-lb its own empty one, so no test sees another's pool.
        var environment = environment
        if environment["STATE_DIRECTORY"] == nil {
            environment["STATE_DIRECTORY"] = try temporaryDirectory()
        }
        // The default driver is auto: an engine on this machine that has ds-server:latest would
        // make the replicas containers. These tests are about process replicas (the Docker
        // driver has its own end-to-end test), so no engine answers here.
        if environment["DOCKER_HOST"] == nil {
            environment["DOCKER_HOST"] = "unix:///nonexistent/ds-lb-itest-no-docker.sock"
        }
        let process = try launch("ds-lb", arguments, environment: environment, ownProcessGroup: ownProcessGroup)
        let groups = try process.waitForStderrLine(
            matching: #"Listening on 127\.0\.0\.1:([0-9]+)"#,
            timeout: startupTimeout
        ) { groups in
            guard let port = UInt16(groups[1]), port != 0 else { return false }
            // A replica's line (replicas may share ds-lb's stderr): skip it at once.
            for child in ProcFS.descendants(of: process.pid)
            where ProcFS.listeningPorts(of: child).contains(port) {
                return false
            }
            // The line should be printed once the socket listens; allow a moment if not.
            for _ in 0..<20 {
                if ProcFS.listeningPorts(of: process.pid).contains(port) { return true }
                usleep(50_000)
            }
            return false
        }
        let port = UInt16(groups[1])!
        let lb = LoadBalancerUnderTest(process: process, port: port)
        recordStrays(ProcFS.descendants(of: process.pid))
        return lb
    }

    /// Routes `GET /home?id=<id>` for every id over `connections` keep-alive connections
    /// (round robin) and returns id → server number from `Hello from Server: N`. Every
    /// response must be a 200 with that message; any other answer fails the test.
    func routeIDs(
        _ ids: [Int], through lb: LoadBalancerUnderTest, connections: Int = 4,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (owners: [Int: Int], reconnects: Int) {
        let (servers, reconnects) = try route(
            ids.map { "/home?id=\($0)" }, through: lb, connections: connections,
            file: file, line: line)
        var owners: [Int: Int] = [:]
        for (id, server) in zip(ids, servers) { owners[id] = server }
        return (owners, reconnects)
    }

    /// Sends `GET target` for every target over `connections` keep-alive connections (round
    /// robin) and returns, per target, the server number from `Hello from Server: N` (nil for
    /// any other answer, which also fails the test).
    func route(
        _ targets: [String], through lb: LoadBalancerUnderTest, connections: Int = 4,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> (servers: [Int?], reconnects: Int) {
        let clients = (0..<max(1, connections)).map { _ in lb.client() }
        defer { clients.forEach { $0.close() } }
        var servers: [Int?] = []
        servers.reserveCapacity(targets.count)
        var bad: [String] = []
        for (i, target) in targets.enumerated() {
            let response = try clients[i % clients.count].get(target)
            if response.status == 200, response.jsonStatus == "successful", let server = response.helloServerID {
                servers.append(server)
            } else {
                servers.append(nil)
                if bad.count < 5 { bad.append("\(target): \(response)") }
            }
        }
        XCTAssertTrue(
            bad.isEmpty, "routed GET did not answer 200 Hello from Server:\n\(bad.joined(separator: "\n"))",
            file: file, line: line)
        return (servers, clients.reduce(0) { $0 + $1.reconnects })
    }

    /// `rounds` times: `remove` takes server-2 out, then a request for one of its keys on each
    /// of 32 keep-alive connections (spread over the workers by the kernel's accept balance)
    /// must reach another replica; `add` brings server-2 back, and the next round's requests
    /// must reach it again. A worker still routing by the old pool after an answer fails this.
    func assertRequestsRightAfterRemoveAvoidServer2(
        _ lb: LoadBalancerUnderTest, rounds: Int, remove: (Int) throws -> Void, add: (Int) throws -> Void,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        var rng = SeededRandom(seed: 7)
        let (owners, _) = try routeIDs(rng.sixDigitIDs(300), through: lb, connections: 2, file: file, line: line)
        let id = try XCTUnwrap(
            owners.first { $0.value == 2 }?.key, "some id reaches server 2: \(distribution(owners))", file: file, line: line)
        let clients = (0..<32).map { _ in lb.client() }
        defer { clients.forEach { $0.close() } }
        for round in 1...rounds {
            for client in clients {
                XCTAssertEqual(try client.get("/home?id=\(id)").helloServerID, 2, "round \(round)", file: file, line: line)
            }
            try remove(round)
            for (index, client) in clients.enumerated() {
                let response = try client.get("/home?id=\(id)")
                XCTAssertEqual(response.status, 200, "round \(round), connection \(index): \(response)", file: file, line: line)
                XCTAssertNotEqual(
                    response.helloServerID, 2, "round \(round), connection \(index): routed to the removed server-2",
                    file: file, line: line)
            }
            try add(round)
        }
    }

    /// Counts how many ids each server got.
    func distribution(_ owners: [Int: Int]) -> [Int: Int] {
        owners.values.reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    /// Asserts the response is `status` with a JSON `{"message": <non-empty string>,
    /// "status": "failure"}` body; returns the message.
    @discardableResult
    func assertFailure(
        _ response: HTTPResponse, _ status: Int, _ what: String,
        message expected: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) -> String? {
        XCTAssertEqual(response.status, status, "\(what): status; got \(response)", file: file, line: line)
        // Every status ds-lb writes carries its RFC reason phrase, never a placeholder.
        XCTAssertFalse(
            response.reason.isEmpty || response.reason.hasPrefix("Status "),
            "\(what): reason phrase '\(response.reason)'", file: file, line: line)
        guard response.jsonObject != nil else {
            XCTFail("\(what): body is not a JSON object: \(response)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(response.jsonStatus, "failure", "\(what): JSON status; got \(response)", file: file, line: line)
        let message = response.messageString
        XCTAssertFalse(
            (message ?? "").isEmpty, "\(what): JSON message must be a non-empty string; got \(response)",
            file: file, line: line)
        if let expected {
            XCTAssertEqual(message, expected, "\(what): message", file: file, line: line)
        }
        return message
    }

    /// Asserts a 200 in the /rep format with exactly `replicas`; returns true when it matched.
    @discardableResult
    func assertReplicaState(
        _ response: HTTPResponse, _ replicas: [String], _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) -> Bool {
        XCTAssertEqual(response.status, 200, "\(what): status; got \(response)", file: file, line: line)
        XCTAssertEqual(response.jsonStatus, "successful", "\(what): JSON status; got \(response)", file: file, line: line)
        guard let state = response.replicaState else {
            XCTFail(
                "\(what): body not in the /rep format {\"message\": {\"N\": n, \"replicas\": [...]}, ...}: \(response)",
                file: file, line: line)
            return false
        }
        XCTAssertEqual(state.replicas, replicas, "\(what): replicas", file: file, line: line)
        XCTAssertEqual(state.n, replicas.count, "\(what): N", file: file, line: line)
        return state.replicas == replicas && state.n == replicas.count
    }
}
