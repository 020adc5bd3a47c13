import DSBalancer
import DSHTTP1
import XCTest

@testable import DSControl

/// Cluster mode's decisions with plain views: what a node runs, what every node routes by, how
/// an admin command becomes a pool write, and how a write that lost its race is retried.
final class ClusterReconcilerTests: XCTestCase {
    private static func node(_ name: String) -> ClusterNodeRecord {
        ClusterNodeRecord(name: name, address: "10.0.0.\(name.dropFirst())", lease: 1)
    }

    private static func pool(_ count: Int, revision: UInt64 = 7) -> StoredPool {
        StoredPool(
            replicas: (1...count).map { Backend(name: "server-\($0)", number: $0, host: "10.0.0.9", port: 0) },
            revision: revision)
    }

    private static func view(nodes: [String], pool: StoredPool?, reports: [ReplicaReport] = []) -> ClusterView {
        ClusterView(
            pool: pool, nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0, node($0)) }),
            reports: Dictionary(uniqueKeysWithValues: reports.map { ($0.name, $0) }), revision: 42)
    }

    private static func report(
        _ name: String, _ id: Int, on node: String, state: String = "up", port: UInt16 = 7000
    )
        -> ReplicaReport
    {
        ReplicaReport(name: name, id: id, node: node, host: "10.0.0.\(node.dropFirst())", port: port, state: state)
    }

    // MARK: placement

    func testEachNodeLaunchesExactlyTheReplicasPlacedOnItAndTogetherTheyRunThePoolOnce() {
        let view = Self.view(nodes: ["n1", "n2", "n3"], pool: Self.pool(30))
        var launched: [String: String] = [:]
        for node in ["n1", "n2", "n3"] {
            let plan = ClusterReconciler.place(view: view, node: node, running: [], handingOff: [])
            XCTAssertEqual(plan.remove, [])
            XCTAssertEqual(plan.handOff, [:])
            for backend in plan.launch {
                XCTAssertNil(launched.updateValue(node, forKey: backend.name), "\(backend.name) launched twice")
                XCTAssertEqual(view.owner(of: backend.name), node)
                XCTAssertEqual(backend.number, Int(backend.name.dropFirst("server-".count)), "launched under its pool id")
            }
        }
        XCTAssertEqual(Set(launched.keys), Set((1...30).map { "server-\($0)" }))
        XCTAssertEqual(Set(launched.values).count, 3, "30 replicas spread over all three nodes")
    }

    func testRunningReplicasNoLongerInThePoolAreRemovedAndThosePlacedElsewhereHandedOff() {
        let view = Self.view(nodes: ["n1", "n2"], pool: Self.pool(10))
        let mine = Set((1...10).map { "server-\($0)" }.filter { view.owner(of: $0) == "n1" })
        let theirs = Set((1...10).map { "server-\($0)" }.filter { view.owner(of: $0) == "n2" })
        XCTAssertFalse(mine.isEmpty)
        XCTAssertFalse(theirs.isEmpty)
        // n1 ran the whole pool (n2 was away) and a replica removed since.
        let plan = ClusterReconciler.place(
            view: view, node: "n1", running: mine.union(theirs).union(["server-11"]), handingOff: [])
        XCTAssertEqual(plan.launch, [])
        XCTAssertEqual(plan.remove, ["server-11"])
        XCTAssertEqual(plan.handOff, Dictionary(uniqueKeysWithValues: theirs.map { ($0, "n2") }))

        // Already being handed off: not again. Placed here again: taken back.
        let taken = theirs.first!
        let again = ClusterReconciler.place(view: view, node: "n1", running: mine.union(theirs), handingOff: theirs)
        XCTAssertEqual(again.handOff, [:])
        XCTAssertEqual(again.takeBack, [])
        let alone = Self.view(nodes: ["n1"], pool: Self.pool(10))
        let back = ClusterReconciler.place(view: alone, node: "n1", running: mine.union([taken]), handingOff: [taken])
        XCTAssertEqual(back.takeBack, [taken])
        XCTAssertEqual(Set(back.launch.map(\.name)), theirs.subtracting([taken]))
    }

    func testAViewWithoutThisNodeOrWithoutAPoolChangesNothing() {
        let running: Set<String> = ["server-1", "server-2"]
        for view in [
            Self.view(nodes: ["n2"], pool: Self.pool(4)), // fenced, or not registered yet
            Self.view(nodes: ["n1", "n2"], pool: nil), // the pool key unreadable
        ] {
            XCTAssertEqual(ClusterReconciler.place(view: view, node: "n1", running: running, handingOff: []), PlacementPlan())
        }
    }

    func testAHandOffEndsOnceTheNewOwnerReportsTheReplicaUpOrItLeftThePool() {
        let pool = Self.pool(3)
        XCTAssertFalse(ClusterReconciler.handOffDone("server-1", view: Self.view(nodes: ["n1", "n2"], pool: pool), node: "n1"))
        XCTAssertFalse(
            ClusterReconciler.handOffDone(
                "server-1", view: Self.view(nodes: ["n1", "n2"], pool: pool, reports: [Self.report("server-1", 1, on: "n1")]),
                node: "n1"), "its own report is not the new owner's")
        XCTAssertFalse(
            ClusterReconciler.handOffDone(
                "server-1",
                view: Self.view(
                    nodes: ["n1", "n2"], pool: pool, reports: [Self.report("server-1", 1, on: "n2", state: "starting")]),
                node: "n1"))
        XCTAssertTrue(
            ClusterReconciler.handOffDone(
                "server-1", view: Self.view(nodes: ["n1", "n2"], pool: pool, reports: [Self.report("server-1", 1, on: "n2")]),
                node: "n1"))
        XCTAssertTrue(ClusterReconciler.handOffDone("server-9", view: Self.view(nodes: ["n1", "n2"], pool: pool), node: "n1"))
    }

    // MARK: routing

    func testEveryNodeRoutesByTheSameSnapshotFromTheSameView() {
        let pool = Self.pool(4)
        let reports = [
            Self.report("server-1", 1, on: "n1", port: 7001), Self.report("server-2", 2, on: "n2", port: 7002),
            Self.report("server-3", 3, on: "n2", state: "down", port: 7003),
        ]
        let view = Self.view(nodes: ["n1", "n2"], pool: pool, reports: reports)
        let n1 = ClusterReconciler.routing(
            view: view, node: "n1", local: ["server-1": .init(backend: reports[0].backend, up: true)])
        let n2 = ClusterReconciler.routing(
            view: view, node: "n2",
            local: [
                "server-2": .init(backend: reports[1].backend, up: true),
                "server-3": .init(backend: reports[2].backend, up: false),
            ])
        XCTAssertEqual(n1.backends, n2.backends)
        XCTAssertEqual(n1.healthy, n2.healthy)
        XCTAssertEqual(n1.backends.map(\.name), ["server-1", "server-2", "server-3", "server-4"])
        XCTAssertEqual(n1.backends.map(\.address), ["10.0.0.1:7001", "10.0.0.2:7002", "10.0.0.2:7003", "10.0.0.9:0"])
        // No report (its node died, not started yet): kept, unhealthy, at its last known address.
        XCTAssertEqual(n1.healthy, ["server-1": true, "server-2": true, "server-3": false, "server-4": false])
    }

    func testALocalReplicaIsRoutedAsItRunsHereUntilAnotherNodeReportsItUp() {
        let pool = Self.pool(1)
        let here = Backend(name: "server-1", number: 1, host: "10.0.0.1", port: 7100)
        let local: [String: ClusterReconciler.Local] = ["server-1": .init(backend: here, up: true)]
        // Not reported yet, or reported starting by the node it moves to: this node's instance serves.
        for reports in [[], [Self.report("server-1", 1, on: "n2", state: "starting")]] {
            let routing = ClusterReconciler.routing(
                view: Self.view(nodes: ["n1", "n2"], pool: pool, reports: reports), node: "n1", local: local)
            XCTAssertEqual(routing.backends, [here])
            XCTAssertEqual(routing.healthy, ["server-1": true])
        }
        let moved = ClusterReconciler.routing(
            view: Self.view(nodes: ["n1", "n2"], pool: pool, reports: [Self.report("server-1", 1, on: "n2", port: 7200)]),
            node: "n1", local: local)
        XCTAssertEqual(moved.backends.map(\.address), ["10.0.0.2:7200"])
    }

    func testARemoteReplicaFoundUnreachableIsRoutedAroundUntilItsReportChanges() {
        let up = Self.report("server-1", 1, on: "n2", port: 7001)
        let view = Self.view(nodes: ["n1", "n2"], pool: Self.pool(2), reports: [up, Self.report("server-2", 2, on: "n2")])
        let routing = ClusterReconciler.routing(view: view, node: "n1", local: [:], suspects: ["server-1"])
        XCTAssertEqual(routing.healthy, ["server-1": false, "server-2": true])
        XCTAssertEqual(routing.backends.map(\.name), ["server-1", "server-2"], "kept in, so no other key moves")

        XCTAssertEqual(ClusterReconciler.stillSuspect(["server-1": up], view: view), ["server-1": up])
        var restarted = up
        restarted.restarts = 1
        for reports in [[restarted], []] {
            let changed = Self.view(nodes: ["n1", "n2"], pool: Self.pool(2), reports: reports)
            XCTAssertEqual(ClusterReconciler.stillSuspect(["server-1": up], view: changed), [:])
        }
    }

    // MARK: admin writes

    func testAnAddIsPlannedAgainstThePoolReadAndWritesItWhole() throws {
        let view = Self.view(nodes: ["n1", "n2"], pool: nil)
        var pool = Self.pool(3).replicas
        pool.remove(at: 1) // server-2 was removed: its id is free again
        let plan = try ClusterReconciler.planAdd(
            ScaleCommand(n: 2, hostnames: ["web"]), pool: pool, view: view, fallbackHost: "10.0.0.1", canCreate: true,
            driverName: "process"
        ).get()
        XCTAssertEqual(plan.added, ["web", "server-4"])
        XCTAssertEqual(plan.pool.map(\.name), ["server-1", "server-3", "web", "server-4"])
        XCTAssertEqual(plan.pool.map(\.number), [1, 3, 2, 4])
        for backend in plan.pool.suffix(2) {
            XCTAssertEqual(backend.host, view.nodes[view.owner(of: backend.name)!]!.address, "its owner's address")
            XCTAssertEqual(backend.port, 0)
        }
        // The same refusals as on one machine.
        guard
            case .failure(let refusal) = ClusterReconciler.planAdd(
                ScaleCommand(n: 1, hostnames: ["server-1"]), pool: pool, view: view, fallbackHost: "10.0.0.1",
                canCreate: true, driverName: "process")
        else { return XCTFail("a taken name was accepted") }
        XCTAssertEqual(refusal.status, .conflict)
    }

    func testARemoveIsPlannedAgainstThePoolRead() throws {
        let pool = Self.pool(4).replicas
        let byName = try ClusterReconciler.planRemove(ScaleCommand(n: 2, hostnames: ["SERVER-3"]), pool: pool) {
            $0.reversed()
        }.get()
        XCTAssertEqual(byName.removed, ["server-3", "server-4"])
        XCTAssertEqual(byName.pool.map(\.name), ["server-1", "server-2"])
        XCTAssertEqual(try ClusterReconciler.planRemove(number: 2, pool: pool).get().removed, ["server-2"])
        guard case .failure(let refusal) = ClusterReconciler.planRemove(number: 9, pool: pool) else {
            return XCTFail("an unknown id was accepted")
        }
        XCTAssertEqual(refusal.status, .notFound)
    }

    func testALostRaceIsRetriedAfterARandomGrowingDelayAndGivenUpAtTheBound() {
        var total = Duration.zero
        for attempt in 1..<ClusterReconciler.maxWriteAttempts {
            let low = ClusterReconciler.retryDelay(afterAttempt: attempt, unit: 0)
            let high = ClusterReconciler.retryDelay(afterAttempt: attempt, unit: 0.999)
            XCTAssertNotNil(low)
            XCTAssertLessThan(low!, high!, "attempt \(attempt): the delay is random")
            XCTAssertLessThanOrEqual(high!, .milliseconds(51))
            total += high!
        }
        XCTAssertNil(ClusterReconciler.retryDelay(afterAttempt: ClusterReconciler.maxWriteAttempts, unit: 0.5))
        XCTAssertLessThan(total, .seconds(2), "a command that keeps losing is answered within seconds")
    }

    func testAReportWhoseOnlyChangeIsItsCheckCountIsNotWrittenAgain() {
        var sent = Self.report("server-1", 1, on: "n1")
        sent.checks = 3
        var next = sent
        next.checks = 4
        next.lastCheckNanoseconds = 123
        XCTAssertEqual(ClusterReconciler.quieted([next], sent: ["server-1": sent]), ["server-1": sent])
        next.state = "down"
        XCTAssertEqual(ClusterReconciler.quieted([next], sent: ["server-1": sent]), ["server-1": next])
        XCTAssertEqual(ClusterReconciler.quieted([], sent: ["server-1": sent]), [:])
    }
}
