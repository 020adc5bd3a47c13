import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Two ds-lb nodes (`--etcd`) on one real etcd member, all on 127.0.0.1: one pool through
/// both, the same routing through both, and a killed node's replicas re-placed on the other.
/// (The three-host tests in network namespaces are ClusterTests.)
final class ClusterModeTests: IntegrationTestCase {
    private func startNode(_ name: String, etcd: String, replicas: Int, lease: String = "2s") throws -> LoadBalancerUnderTest {
        try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--etcd", etcd, "--node-name", name, "--replicas", "\(replicas)",
            "--node-lease", lease, "--heartbeat-interval", "200ms", "--workers", "2",
        ])
    }

    /// `/status` through `lb`: each replica's (name, state, node), in pool order.
    private func replicas(_ lb: LoadBalancerUnderTest) -> [(name: String, state: String, node: String)]? {
        guard let response = try? lb.request("GET", "/status"), response.status == 200,
            let message = response.jsonObject?["message"] as? [String: Any],
            let replicas = message["replicas"] as? [[String: Any]]
        else { return nil }
        return replicas.map { ($0["name"] as? String ?? "", $0["state"] as? String ?? "", $0["node"] as? String ?? "") }
    }

    /// Polls until `condition` holds (generous deadline: a loaded machine is slow).
    private func waitUntil(
        _ what: String, seconds: TimeInterval = 30, file: StaticString = #filePath, line: UInt = #line,
        _ condition: () -> Bool
    ) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            usleep(50_000)
        }
        XCTFail("gave up waiting until \(what)", file: file, line: line)
    }

    /// `count` replicas up through `lb`, each run by the node placement gives it (no hand-off
    /// under way).
    private func allUp(_ lb: LoadBalancerUnderTest, count: Int) -> Bool {
        guard let replicas = replicas(lb), replicas.count == count, replicas.allSatisfy({ $0.state == "UP" }),
            let response = try? lb.request("GET", "/status"),
            let message = response.jsonObject?["message"] as? [String: Any],
            let nodes = (message["cluster"] as? [String: Any])?["nodes"] as? [[String: Any]]
        else { return false }
        var placedOn: [String: String] = [:]
        for node in nodes {
            for name in node["replicas"] as? [String] ?? [] { placedOn[name] = node["name"] as? String }
        }
        return replicas.allSatisfy { placedOn[$0.name] == $0.node }
    }

    func testTwoNodesShareOnePoolRouteAlikeAndTakeOverAKilledNodesReplicas() throws {
        let etcd = try startEtcdMember()
        let n1 = try startNode("n1", etcd: etcd, replicas: 3)
        let n2 = try startNode("n2", etcd: etcd, replicas: 3)
        waitUntil("both nodes see 3 replicas up") { allUp(n1, count: 3) && allUp(n2, count: 3) }

        // An /add through n1 is listed through n2, and the answer is the pool as committed.
        let added = try n1.admin("POST", "/add", json: ["n": 3])
        XCTAssertEqual(added.status, 200, added.bodyString)
        XCTAssertEqual(added.replicaState?.n, 6)
        waitUntil("n2 lists what n1 added, all up") { allUp(n2, count: 6) && allUp(n1, count: 6) }
        XCTAssertEqual(try n2.replicaState().replicas, try n1.replicaState().replicas)
        let placed = try XCTUnwrap(replicas(n1))
        XCTAssertEqual(Set(placed.map(\.node)), ["n1", "n2"], "the pool is spread over both nodes: \(placed)")

        // `/status` and `ds-lb status` show the nodes and where each replica runs.
        let cli = try launch("ds-lb", ["status", "--address", "127.0.0.1:\(n2.port)"])
        XCTAssertNotNil(cli.waitForExit(timeout: 10))
        var table = cli.stdout.allLines
        for _ in 0..<200 where !table.contains(where: { $0.hasPrefix("n2 ") }) {
            usleep(10_000)
            table = cli.stdout.allLines
        }
        XCTAssertTrue(table.contains { $0.hasPrefix("cluster node n2  etcd up") }, "\(table)")
        for node in ["n1", "n2"] {
            let mine = placed.filter { $0.node == node }.map(\.name)
            XCTAssertTrue(
                table.contains {
                    $0.hasPrefix("\(node) ") && $0.contains(" live ")
                        && $0.trimmingCharacters(in: .whitespaces).hasSuffix(mine.joined(separator: ","))
                }, "\(table)")
        }

        let metrics = try n1.metricSeries()
        XCTAssertEqual(metrics["dslb_cluster_nodes"], 2)
        XCTAssertEqual(metrics["dslb_cluster_store_up"], 1)
        XCTAssertGreaterThan(metrics["dslb_cluster_revision"] ?? 0, 1)

        // A key reaches the same replica through either node.
        let ids = Array(1...300)
        let through1 = try routeIDs(ids, through: n1).owners
        let through2 = try routeIDs(ids, through: n2).owners
        XCTAssertEqual(through1, through2)
        XCTAssertEqual(Set(through1.values).count, 6, "every replica gets keys")

        // n2 dies (its replicas with it): n1 starts them, under the same names and ids.
        let n2Replicas = Set(placed.filter { $0.node == "n2" }.map(\.name))
        XCTAssertTrue(n2.process.send(signal: SIGKILL))
        _ = n2.process.waitForExit(timeout: 10)
        waitUntil("n1 runs all 6 replicas after n2's lease expired") {
            guard let now = replicas(n1) else { return false }
            return now.count == 6 && now.allSatisfy { $0.state == "UP" && $0.node == "n1" }
        }
        XCTAssertEqual(Set(try XCTUnwrap(replicas(n1)).map(\.name)), Set(placed.map(\.name)))
        XCTAssertFalse(n2Replicas.isEmpty)
        XCTAssertEqual(try routeIDs(ids, through: n1).owners, through1, "the keys are back on their replicas (same ids)")
    }
}

extension ClusterModeTests {
    /// A node stopped with SIGTERM leaves the cluster (its lease revoked) before its replicas
    /// stop: the other node takes them over at once, long before the lease would expire.
    func testANodeThatStopsHandsItsReplicasOverWithoutWaitingForItsLease() throws {
        let etcd = try startEtcdMember()
        let n1 = try startNode("n1", etcd: etcd, replicas: 6, lease: "60s")
        let n2 = try startNode("n2", etcd: etcd, replicas: 6, lease: "60s")
        waitUntil("both nodes see 6 replicas up on both nodes") {
            guard let now = replicas(n1), allUp(n2, count: 6) else { return false }
            return now.count == 6 && now.allSatisfy { $0.state == "UP" } && Set(now.map(\.node)) == ["n1", "n2"]
        }
        let stoppedAt = Date()
        XCTAssertTrue(n2.process.send(signal: SIGTERM))
        XCTAssertEqual(n2.process.waitForExit(timeout: 30), .exited(0))
        waitUntil("n1 runs all 6 replicas", seconds: 30) {
            guard let now = replicas(n1) else { return false }
            return now.count == 6 && now.allSatisfy { $0.state == "UP" && $0.node == "n1" }
        }
        XCTAssertLessThan(Date().timeIntervalSince(stoppedAt), 30, "taken over before the 60 s lease could expire")
    }
}

extension ServeConfigFileTests {
    /// The cluster options' errors: one line naming the option and the value, before anything
    /// starts (no etcd is needed to refuse them).
    func testClusterOptionErrorsNameTheBadValue() throws {
        let directory = try temporaryDirectory()
        let etcd = ["--etcd", "http://127.0.0.1:1"]
        let cases: [(arguments: [String], error: String)] = [
            (
                etcd + ["--node-name", "n/1"],
                "Error: --node-name: 'n/1' is not a valid name (1 to 64 letters, digits, '.', '_' or '-')"
            ),
            (etcd + ["--node-name", "n1", "--node-lease", "1s"], "Error: --node-lease: '1s' must be whole seconds, at least 2s"),
            (
                etcd + ["--node-name", "n1", "--node-lease", "2500ms"],
                "Error: --node-lease: '2500ms' must be whole seconds, at least 2s"
            ),
            (
                etcd + ["--node-name", "n1", "--pool", ".."],
                "Error: --pool: '..' is not a valid name with --etcd (1 to 64 letters, digits, '.', '_' or '-')"
            ),
            (
                etcd + ["--node-name", "n1", "--advertise-address", "0.0.0.0"],
                "Error: --advertise-address: '0.0.0.0' is not an IP address other hosts can reach"
            ),
            (
                etcd + ["--node-name", "n1", "--driver", "static", "--backend", "a=127.0.0.1:9"],
                "Error: --etcd: the static driver's --backend replicas cannot be placed over nodes (use --driver process or docker)"
            ),
            (
                etcd + ["--node-name", "n1", "--on-failure", "replace"],
                "Error: --on-failure replace is not supported with --etcd (a cluster restarts failed replicas under their name)"
            ),
            (["--node-name", "n1"], "Error: --node-name is only used with --etcd"),
        ]
        for item in cases {
            let run = try runToExit(
                "ds-lb", ["serve", "--listen", "127.0.0.1:0", "--replicas", "0"] + item.arguments,
                environment: ["STATE_DIRECTORY": directory])
            XCTAssertNotNil(run.termination, "\(item.arguments): ds-lb still runs")
            XCTAssertNotEqual(run.termination, .exited(0), "\(item.arguments): ds-lb started")
            XCTAssertEqual(run.stderr.first, item.error, "\(item.arguments)")
        }
    }
}

extension ClusterModeTests {
    /// In cluster mode too, /rm answers once every worker of the node routes without the removed
    /// replica, and /add once they route to the added one (many workers on few cores make a
    /// worker that has not yet switched likely when the answer does not wait for them).
    func testARequestRightAfterRemoveThroughANodeNeverReachesTheRemovedReplica() throws {
        let etcd = try startEtcdMember()
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--etcd", etcd, "--node-name", "n1", "--replicas", "3",
            "--heartbeat-interval", "200ms", "--workers", "16",
        ])
        waitUntil("3 replicas up") { allUp(lb, count: 3) }
        try assertRequestsRightAfterRemoveAvoidServer2(lb, rounds: 20) { round in
            let removed = try lb.admin("DELETE", "/rm", json: ["hostnames": ["server-2"]])
            XCTAssertEqual(removed.status, 200, "round \(round): \(removed)")
        } add: { round in
            let added = try lb.admin("POST", "/add", json: ["hostnames": ["server-2"]])
            XCTAssertEqual(added.status, 200, "round \(round): \(added)")
        }
    }
}
