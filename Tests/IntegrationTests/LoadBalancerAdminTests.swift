// ds-lb's admin API (/rep, /add, /rm): the state it reports, how commands change the pool
// and the routing, every error answer, and that a failed command changes nothing.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerAdminTests: IntegrationTestCase {
    let initial = ["server-1", "server-2", "server-3"]

    func testRepListsTheInitialReplicas() throws {
        let lb = try startLoadBalancer()
        let response = try lb.request("GET", "/rep")
        assertReplicaState(response, initial, "GET /rep")
        XCTAssertEqual(response.header("Content-Type")?.lowercased().hasPrefix("application/json"), true, "\(response)")
        // Loopback is allowed by default (127.0.0.0/8), not only 127.0.0.1.
        assertReplicaState(try lb.request("GET", "/rep", source: "127.0.0.3"), initial, "GET /rep from 127.0.0.3")
        // Keep-alive on the admin path too.
        let client = lb.client()
        for _ in 0..<3 { assertReplicaState(try client.get("/rep"), initial, "GET /rep (keep-alive)") }
        XCTAssertEqual(client.reconnects, 0, "admin answers keep the connection alive")
    }

    /// POST /add without a body adds `server-4`; some ids move to it and only to it.
    func testAddWithoutBodyAddsAGeneratedReplicaThatTakesOverSomeIDs() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 4)
        let ids = rng.sixDigitIDs(900)
        let (before, _) = try routeIDs(ids, through: lb, connections: 2)

        assertReplicaState(try lb.admin("POST", "/add"), initial + ["server-4"], "POST /add (no body)")
        assertReplicaState(try lb.request("GET", "/rep"), initial + ["server-4"], "GET /rep after POST /add")

        let (after, _) = try routeIDs(ids, through: lb, connections: 2)
        let toNew = ids.filter { after[$0] == 4 }
        XCTAssertFalse(
            toNew.isEmpty,
            "after adding server-4 some ids must move to it (Hello from Server: 4); distribution \(distribution(after))")
        // Consistent hashing: ids that did not move to the new replica stay where they were.
        // A ring moves none; allow a little for table-based algorithms (Maglev).
        let shuffled = ids.filter { after[$0] != 4 && after[$0] != before[$0] }
        XCTAssertLessThanOrEqual(
            shuffled.count, ids.count / 20,
            "\(shuffled.count) of \(ids.count) ids moved between the old replicas: \(shuffled.prefix(10).map { "\($0): \(before[$0] ?? -1) → \(after[$0] ?? -1)" })"
        )
    }

    /// Given hostnames are used first, then generated names; a 63-character name is valid.
    func testAddWithHostnamesUsesTheGivenNamesFirst() throws {
        let lb = try startLoadBalancer()
        let added = try lb.admin("POST", "/add", json: ["n": 3, "hostnames": ["S5", "S4"]])
        XCTAssertEqual(added.status, 200, "POST /add {n: 3, hostnames: [S5, S4]}: \(added)")
        let state = try XCTUnwrap(added.replicaState, "POST /add answer not in the /rep format: \(added)")
        XCTAssertEqual(state.n, 6, "\(added)")
        XCTAssertEqual(Array(state.replicas.prefix(5)), initial + ["S5", "S4"], "given names first, in order: \(added)")
        // The generated name is server-K with K the smallest unused number. Two readings of
        // "unused" are accepted: not the number of any server-K name (K = 4), or not the
        // number (SERVER_ID, `--id`) of any member, as S5 and S4 hold numbers too.
        let generated = state.replicas.count == 6 ? state.replicas[5] : "(none)"
        let k = generated.hasPrefix("server-") ? Int(generated.dropFirst("server-".count)) : nil
        let ids = lb.replicaPIDsByID()
        let otherIDs = Set(ids.keys).subtracting(k.map { [$0] } ?? [])
        let smallestFreeID = (1...).first { !otherIDs.contains($0) }!
        XCTAssertTrue(
            k == 4 || k == smallestFreeID,
            "generated name \(generated): expected server-4 or server-\(smallestFreeID) (members' --id: \(ids.keys.sorted()))")
        XCTAssertEqual(ids.count, 6, "six ds-server children with distinct --id: \(ids.keys.sorted())")
        let current = state.replicas

        let longName = "a" + String(repeating: "b_.-9", count: 12) + "z" // 62 chars
        let name63 = longName + "Q"
        XCTAssertEqual(name63.count, 63)
        assertReplicaState(
            try lb.admin("POST", "/add", json: ["n": 1, "hostnames": [name63]]),
            current + [name63], "POST /add with a 63-character name")

        // The classic form with n == count of hostnames.
        assertReplicaState(
            try lb.admin("POST", "/add", json: ["n": 2, "hostnames": ["S7", "S6"]]),
            current + [name63, "S7", "S6"], "POST /add {n: 2, hostnames: [S7, S6]}")

        // Every replica, whatever its name, answers routed requests.
        var rng = SeededRandom(seed: 8)
        let client = lb.client()
        for id in rng.sixDigitIDs(300) {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "GET /home?id=\(id): \(response)")
            XCTAssertTrue(response.messageString?.hasPrefix("Hello from Server: ") == true, "GET /home?id=\(id): \(response)")
            if response.status != 200 { break }
        }
    }

    /// DELETE /rm?id=2 removes server-2: /rep shows it, no id reaches it any more, the ids of
    /// the others stay put, and its process is stopped.
    func testRemoveByIDTakesTheReplicaOutOfRouting() throws {
        let lb = try startLoadBalancer()
        let pids = lb.replicaPIDsByID()
        XCTAssertEqual(Set(pids.keys), [1, 2, 3], "ds-lb's ds-server children by --id: \(pids)")
        var rng = SeededRandom(seed: 2)
        let ids = rng.sixDigitIDs(900)
        let (before, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertTrue(before.values.contains(2), "some ids reach server 2 before the removal")

        assertReplicaState(try lb.admin("DELETE", "/rm?id=2"), ["server-1", "server-3"], "DELETE /rm?id=2")
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-3"], "GET /rep after DELETE /rm?id=2")

        let (after, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(after).keys), [1, 3], "after removing server-2: distribution \(distribution(after))")
        let moved = ids.filter { before[$0] != 2 && after[$0] != before[$0] }
        XCTAssertLessThanOrEqual(
            moved.count, ids.count / 20,
            "\(moved.count) ids of server-1/server-3 moved: \(moved.prefix(10).map { "\($0): \(before[$0] ?? -1) → \(after[$0] ?? -1)" })"
        )

        if let pid2 = pids[2], let identity = ProcFS.identity(pid2) {
            XCTAssertEqual(
                ProcFS.waitUntilGone([identity], timeout: 15), [],
                "the removed replica's process must stop: \(ProcFS.describe(pid2))")
        }
    }

    /// The answer to /rm comes once every worker routes without the removed replica: a request
    /// sent right after it, on any worker, never reaches the replica (which still runs while
    /// its requests in flight drain, so a stale route would be answered by it). Likewise a
    /// request right after /add reaches the added replica. Many workers on few cores make a
    /// worker that has not yet switched likely when the answer does not wait for them.
    func testRequestRightAfterRemoveNeverReachesTheRemovedReplica() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3", "--workers", "16", "--heartbeat-interval", "200ms",
        ])
        try assertRequestsRightAfterRemoveAvoidServer2(lb, rounds: 40) { round in
            assertReplicaState(try lb.admin("DELETE", "/rm?id=2"), ["server-1", "server-3"], "round \(round): DELETE /rm?id=2")
        } add: { round in
            assertReplicaState(
                try lb.admin("POST", "/add"), ["server-1", "server-3", "server-2"], "round \(round): POST /add")
        }
    }

    /// Named replicas go first, then random others up to n.
    func testRemoveNamedReplicasThenRandomOnes() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(
            try lb.admin("POST", "/add", json: ["n": 1, "hostnames": ["S5"]]),
            initial + ["S5"], "POST /add {n: 1, hostnames: [S5]}")
        let response = try lb.admin("DELETE", "/rm", json: ["n": 2, "hostnames": ["S5"]])
        XCTAssertEqual(response.status, 200, "DELETE /rm {n: 2, hostnames: [S5]}: \(response)")
        let state = try XCTUnwrap(response.replicaState, "DELETE /rm answer not in the /rep format: \(response)")
        XCTAssertEqual(state.n, 2, "\(response)")
        XCTAssertEqual(state.replicas.count, 2, "\(response)")
        XCTAssertFalse(state.replicas.contains("S5"), "S5 was named, so it must be removed: \(response)")
        XCTAssertTrue(Set(state.replicas).isSubset(of: Set(initial)), "\(response)")
        XCTAssertEqual(state.replicas, initial.filter(state.replicas.contains), "order of addition kept: \(response)")
        assertReplicaState(try lb.request("GET", "/rep"), state.replicas, "GET /rep after the removal")

        // The classic single-name form.
        let remaining = state.replicas
        assertReplicaState(
            try lb.admin("DELETE", "/rm", json: ["n": 1, "hostnames": [remaining[0]]]),
            [remaining[1]], "DELETE /rm {n: 1, hostnames: [\(remaining[0])]}")
    }

    /// Generated names take the smallest unused number: after removing server-2, /add makes
    /// a new server-2 (SERVER_ID 2) at the end of the list.
    func testGeneratedNameReusesTheSmallestFreeNumber() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(try lb.admin("DELETE", "/rm?id=2"), ["server-1", "server-3"], "DELETE /rm?id=2")
        assertReplicaState(
            try lb.admin("POST", "/add"), ["server-1", "server-3", "server-2"], "POST /add after removing server-2")
        var rng = SeededRandom(seed: 22)
        let (owners, _) = try routeIDs(rng.sixDigitIDs(600), through: lb, connections: 2)
        XCTAssertEqual(
            Set(distribution(owners).keys), [1, 2, 3],
            "the new server-2 answers as Server 2; distribution \(distribution(owners))")
    }

    /// Removing replicas and at once adding ones that get the same names: the removed
    /// processes stop, the new ones keep running and answer their ids (stopping the old
    /// `server-1` must not hit the new `server-1`). Repeated, as the window is timing-bound.
    func testReaddingRemovedNamesStopsOnlyTheOldProcesses() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 11)
        let ids = rng.sixDigitIDs(300)
        for round in 1...6 {
            let old = ProcFS.children(of: lb.process.pid).compactMap(ProcFS.identity)
            XCTAssertEqual(old.count, 3, "round \(round): ds-lb's children: \(old.map { ProcFS.describe($0.pid) })")
            let expected: [String]
            if round == 1 {
                assertReplicaState(try lb.admin("DELETE", "/rm?id=1"), ["server-2", "server-3"], "round 1: DELETE /rm?id=1")
                expected = ["server-2", "server-3", "server-1"]
                assertReplicaState(try lb.admin("POST", "/add"), expected, "round 1: POST /add")
            } else {
                assertReplicaState(try lb.admin("DELETE", "/rm", json: ["n": 3]), [], "round \(round): DELETE /rm {n: 3}")
                expected = ["server-1", "server-2", "server-3"]
                assertReplicaState(try lb.admin("POST", "/add", json: ["n": 3]), expected, "round \(round): POST /add {n: 3}")
            }
            let removed = round == 1 ? old.filter { ProcFS.argument(after: "--id", of: $0.pid) == "1" } : old
            let alive = ProcFS.waitUntilGone(removed, timeout: 15)
            XCTAssertEqual(alive, [], "round \(round): removed replicas still running: \(alive.map { ProcFS.describe($0.pid) })")
            let byID = lb.replicaPIDsByID()
            XCTAssertEqual(
                Set(byID.keys), [1, 2, 3],
                "round \(round): children after the re-add: \(ProcFS.children(of: lb.process.pid).map(ProcFS.describe))")
            let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
            XCTAssertEqual(Set(distribution(owners).keys), [1, 2, 3], "round \(round): distribution \(distribution(owners))")
            if !alive.isEmpty || Set(owners.values) != [1, 2, 3] { break }
        }
    }

    /// A replica that leaves the pool takes its `/metrics` series with it; one added again under
    /// the same name starts new series that count its requests; a restarted one keeps its own.
    func testRemovedReplicaTakesItsMetricsSeriesWithIt() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(try lb.admin("POST", "/add", json: ["hostnames": ["S5"]]), initial + ["S5"], "POST /add S5")
        var rng = SeededRandom(seed: 45)
        let ids = rng.sixDigitIDs(400)
        // S5 is number 4: it answers as Server 4.
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        let servedByS5 = ids.filter { owners[$0] == 4 }
        XCTAssertFalse(servedByS5.isEmpty, "S5 must get some ids; distribution \(distribution(owners))")
        let series = try lb.metricSeries(ofReplica: "S5")
        for name in ["dslb_replica_in_flight_requests", "dslb_replica_requests_total", "dslb_replica_up"] {
            XCTAssertNotNil(series["\(name){replica=\"S5\"}"], "\(name) of S5 before /rm: \(series)")
        }

        assertReplicaState(try lb.admin("DELETE", "/rm", json: ["hostnames": ["S5"]]), initial, "DELETE /rm S5")
        var left = try lb.metricSeries(ofReplica: "S5")
        for _ in 0..<500 where !left.isEmpty {
            usleep(20_000)
            left = try lb.metricSeries(ofReplica: "S5")
        }
        XCTAssertEqual(left, [:], "S5 left the pool: its series must leave /metrics")
        XCTAssertEqual(try lb.metricSeries()["dslb_replica_up{replica=\"server-1\"}"], 1, "the others keep theirs")

        // Back under the same name: new series, counting from zero what this S5 answers.
        assertReplicaState(try lb.admin("POST", "/add", json: ["hostnames": ["S5"]]), initial + ["S5"], "POST /add S5 again")
        let client = lb.client()
        for id in servedByS5 { XCTAssertEqual(try client.get("/home?id=\(id)").helloServerID, 4, "id \(id) goes back to S5") }
        client.close()
        // A worker counts a request once it has written the response's last bytes, so the last
        // answer can reach this client just before its count is made: wait for it.
        let expected = Double(servedByS5.count)
        var again = try lb.metricSeries(ofReplica: "S5")
        for _ in 0..<250 where again["dslb_replica_requests_total{replica=\"S5\"}"] != expected {
            usleep(20_000)
            again = try lb.metricSeries(ofReplica: "S5")
        }
        XCTAssertEqual(
            again["dslb_replica_requests_total{replica=\"S5\"}"], Double(servedByS5.count), "the re-added S5's requests: \(again)"
        )
        XCTAssertEqual(again["dslb_replica_up{replica=\"S5\"}"], 1)

        // A restart is no departure: server-1 keeps its series and its count.
        let servedBy1 = try XCTUnwrap(try lb.metricSeries()["dslb_replica_requests_total{replica=\"server-1\"}"])
        XCTAssertEqual(Glibc.kill(try XCTUnwrap(lb.replicaPIDsByID()[1]), SIGKILL), 0)
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 1 restarted"#, timeout: 20)
        let restarted = try lb.metricSeries(ofReplica: "server-1")
        XCTAssertEqual(restarted["dslb_replica_requests_total{replica=\"server-1\"}"], servedBy1, "\(restarted)")
        XCTAssertEqual(restarted["dslb_replica_restarts_total{replica=\"server-1\"}"], 1, "\(restarted)")
    }

    /// With every replica removed a routed request gets 503; adding one brings routing back.
    func testNoReplicaAnswers503UntilOneIsAdded() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(try lb.admin("DELETE", "/rm", json: ["n": 3]), [], "DELETE /rm {n: 3}")
        let client = lb.client()
        // /rm answers once every worker routes by the empty pool.
        for id in [1, 123456, 999999] {
            assertFailure(try client.get("/home?id=\(id)"), 503, "GET /home?id=\(id) with no replica")
        }
        assertReplicaState(try lb.admin("POST", "/add"), ["server-1"], "POST /add into an empty pool")
        let response = try lb.request("GET", "/home?id=123456")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(response.helloServerID, 1, "\(response)")
    }

    /// Every bad command gets its status and a JSON failure body, and changes nothing.
    func testBadCommandsAreRejectedAndChangeNothing() throws {
        let lb = try startLoadBalancer()
        let pidsBefore = lb.replicaPIDsByID()
        let name64 = String(repeating: "x", count: 64)
        struct Case {
            let method: String
            let target: String
            let body: String?
            let status: Int
            var message: String? = nil
        }
        func json(_ value: Any) -> String { String(decoding: JSON.bytes(value), as: UTF8.self) }
        let cases: [Case] = [
            Case(
                method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["A", "B"]]), status: 400,
                message: "<Error> Length of hostname list is more than newly added instances"),
            Case(
                method: "DELETE", target: "/rm", body: json(["n": 1, "hostnames": ["server-1", "server-2"]]), status: 400,
                message: "<Error> Length of hostname list is more than removable instances"),
            // Invalid JSON.
            Case(method: "POST", target: "/add", body: #"{"n": "#, status: 400),
            Case(method: "DELETE", target: "/rm", body: "not json", status: 400),
            Case(method: "POST", target: "/add", body: "[1, 2]", status: 400),
            Case(method: "POST", target: "/add", body: #"{"n": 1, "hostnames": "S5"}"#, status: 400),
            // n <= 0 or not an integer.
            Case(method: "POST", target: "/add", body: #"{"n": 0}"#, status: 400),
            Case(method: "POST", target: "/add", body: #"{"n": -2}"#, status: 400),
            Case(method: "POST", target: "/add", body: #"{"n": "two"}"#, status: 400),
            Case(method: "POST", target: "/add", body: #"{"n": 1.5}"#, status: 400),
            Case(method: "DELETE", target: "/rm", body: #"{"n": 0}"#, status: 400),
            Case(method: "DELETE", target: "/rm", body: #"{"n": -1}"#, status: 400),
            // More than the pool holds.
            Case(method: "DELETE", target: "/rm", body: #"{"n": 4}"#, status: 400),
            // Unknown names.
            Case(method: "DELETE", target: "/rm", body: json(["n": 1, "hostnames": ["nope"]]), status: 404),
            Case(method: "DELETE", target: "/rm", body: json(["n": 2, "hostnames": ["server-1", "nope"]]), status: 404),
            Case(method: "DELETE", target: "/rm?id=9", body: nil, status: 404),
            // Names already in the pool; the valid name before it must not be added either.
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["server-2"]]), status: 409),
            Case(method: "POST", target: "/add", body: json(["n": 2, "hostnames": ["fresh-1", "server-3"]]), status: 409),
            // Names are case-insensitive (they become container and host names).
            Case(
                method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["SERVER-2"]]), status: 409,
                message: "<Error> Hostname 'SERVER-2' is already in the pool as 'server-2' (names are case-insensitive)"),
            Case(method: "POST", target: "/add", body: json(["n": 2, "hostnames": ["X", "x"]]), status: 400),
            Case(method: "DELETE", target: "/rm", body: json(["n": 2, "hostnames": ["server-1", "SERVER-1"]]), status: 400),
            // A key twice, an unknown key, null: each would mean something else to another parser.
            Case(
                method: "POST", target: "/add", body: #"{"n": 1, "n": 2}"#, status: 400,
                message: "<Error> Key 'n' is given more than once"),
            Case(
                method: "DELETE", target: "/rm", body: #"{"hostnames": ["server-1"], "hostnames": ["server-2"]}"#, status: 400,
                message: "<Error> Key 'hostnames' is given more than once"),
            Case(
                method: "POST", target: "/add", body: #"{"n": 1, "replicas": 5}"#, status: 400,
                message: "<Error> Unknown key 'replicas': the body takes only 'n', 'hostnames' and 'weight'"),
            Case(method: "DELETE", target: "/rm", body: #"{"N": 1}"#, status: 400),
            Case(
                method: "POST", target: "/add", body: #"{"n": null}"#, status: 400,
                message: "<Error> 'n' must be a positive integer"),
            // The same name twice.
            Case(method: "POST", target: "/add", body: json(["n": 2, "hostnames": ["X", "X"]]), status: 400),
            Case(method: "DELETE", target: "/rm", body: json(["n": 2, "hostnames": ["server-1", "server-1"]]), status: 400),
            // Names that could not be container names.
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["bad name"]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["-dash-first"]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": [".dot-first"]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": ["slash/name"]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": [""]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 1, "hostnames": [name64]]), status: 400),
            Case(method: "POST", target: "/add", body: json(["n": 2, "hostnames": ["ok-name", "bad name"]]), status: 400),
            // Wrong method on an admin path.
            Case(method: "GET", target: "/add", body: nil, status: 405),
            Case(method: "GET", target: "/rm", body: nil, status: 405),
            Case(method: "POST", target: "/rep", body: nil, status: 405),
            Case(method: "DELETE", target: "/add", body: nil, status: 405),
            Case(method: "PUT", target: "/rm", body: json(["n": 1]), status: 405),
        ]
        for c in cases {
            let what = "\(c.method) \(c.target) \(c.body ?? "(no body)")"
            let response = try lb.admin(c.method, c.target, rawBody: c.body ?? "")
            assertFailure(response, c.status, what, message: c.message)
            let state = try lb.replicaState()
            XCTAssertEqual(state.replicas, initial, "\(what) must change nothing; /rep now \(state)")
            XCTAssertEqual(state.n, initial.count, "\(what) must change nothing; /rep now \(state)")
        }
        // And the pool still routes to all three.
        var rng = SeededRandom(seed: 405)
        let (owners, _) = try routeIDs(rng.sixDigitIDs(300), through: lb, connections: 1)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2, 3], "distribution \(distribution(owners))")
        XCTAssertEqual(lb.replicaPIDsByID(), pidsBefore, "no replica process started or stopped by a failed command")
    }

    /// /rm finds a replica whatever the case of the name it is given.
    func testRemoveMatchesNamesCaseInsensitively() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(
            try lb.admin("DELETE", "/rm", json: ["n": 1, "hostnames": ["SERVER-2"]]),
            ["server-1", "server-3"], "DELETE /rm {hostnames: [SERVER-2]}")
    }

    // MARK: a change that cannot be saved is not made

    /// Starts ds-lb with its state on a small tmpfs; returns it and the replica processes.
    private func startOnTmpfs() throws -> (lb: LoadBalancerUnderTest, stateDir: String, pids: [Int: pid_t]) {
        let stateDir = try smallTmpfs()
        let lb = try startLoadBalancer(environment: ["STATE_DIRECTORY": stateDir])
        assertReplicaState(try lb.request("GET", "/rep"), initial, "GET /rep at start")
        return (lb, stateDir, lb.replicaPIDsByID())
    }

    /// The refused command left the pool, its processes and the state file as they were.
    private func assertNothingChanged(
        _ lb: LoadBalancerUnderTest, stateDir: String, pids: [Int: pid_t], _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        assertReplicaState(try lb.request("GET", "/rep"), initial, "GET /rep after \(what)", file: file, line: line)
        // A replica an /add started is stopped once its save failed; wait for that.
        let deadline = Date().addingTimeInterval(10)
        while lb.replicaPIDsByID() != pids && Date() < deadline { usleep(50_000) }
        XCTAssertEqual(lb.replicaPIDsByID(), pids, "\(what): no replica started or stopped", file: file, line: line)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: stateDir + "/state.json.tmp"),
            "\(what): the temporary file must be removed", file: file, line: line)
        let saved =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: stateDir + "/state.json")))
            as? [String: Any]
        let names = (saved?["replicas"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        XCTAssertEqual(names, initial, "\(what): state.json still holds the old pool", file: file, line: line)
    }

    /// Restarts ds-lb on the same state directory: the pool is the one saved.
    private func assertRestartBringsBackTheInitialPool(_ lb: LoadBalancerUnderTest, stateDir: String) throws {
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), .exited(0))
        let again = try startLoadBalancer(environment: ["STATE_DIRECTORY": stateDir])
        assertReplicaState(try again.request("GET", "/rep"), initial, "GET /rep after a restart of ds-lb")
    }

    func testFullStateDiskRefusesAddAndRemoveWith507() throws {
        let (lb, stateDir, pids) = try startOnTmpfs()
        let filler = try fill(stateDir)

        let added = try lb.admin("POST", "/add", json: ["hostnames": ["S9"]])
        let message = assertFailure(added, 507, "POST /add with the state disk full") ?? ""
        XCTAssertTrue(
            message.hasPrefix("<Error> Could not save the pool, nothing changed: ")
                && message.contains("No space left on device"), message)
        try assertNothingChanged(lb, stateDir: stateDir, pids: pids, "POST /add")

        let removed = try lb.admin("DELETE", "/rm", json: ["hostnames": ["server-1"]])
        assertFailure(removed, 507, "DELETE /rm with the state disk full")
        try assertNothingChanged(lb, stateDir: stateDir, pids: pids, "DELETE /rm")
        let routed = try routeIDs(Array(1...300), through: lb, connections: 1).owners
        XCTAssertEqual(Set(routed.values), [1, 2, 3], "server-1 still serves: \(distribution(routed))")

        // With room again, a change is made and saved.
        try FileManager.default.removeItem(atPath: filler)
        assertReplicaState(
            try lb.admin("DELETE", "/rm", json: ["hostnames": ["server-3"]]), ["server-1", "server-2"], "DELETE /rm")
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), .exited(0))
        let again = try startLoadBalancer(environment: ["STATE_DIRECTORY": stateDir])
        assertReplicaState(try again.request("GET", "/rep"), ["server-1", "server-2"], "GET /rep after a restart of ds-lb")
    }

    func testReadOnlyStateDirectoryRefusesAddAndRemoveWith500() throws {
        let (lb, stateDir, pids) = try startOnTmpfs()
        remount(stateDir, readOnly: true)

        let removed = try lb.admin("DELETE", "/rm?id=1")
        let message = assertFailure(removed, 500, "DELETE /rm?id=1 with the state directory read-only") ?? ""
        XCTAssertTrue(message.contains("Read-only file system"), message)
        try assertNothingChanged(lb, stateDir: stateDir, pids: pids, "DELETE /rm?id=1")

        assertFailure(try lb.admin("POST", "/add", json: ["n": 2]), 500, "POST /add with the state directory read-only")
        try assertNothingChanged(lb, stateDir: stateDir, pids: pids, "POST /add")
        try lb.process.waitForStderrLine(
            matching: #"\[!\] Could not save the pool, so did not add server-4, server-5: .*Read-only file system"#, timeout: 5)

        remount(stateDir, readOnly: false)
        try assertRestartBringsBackTheInitialPool(lb, stateDir: stateDir)
    }
}
