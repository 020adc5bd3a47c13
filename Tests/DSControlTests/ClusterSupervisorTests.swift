import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem
import Foundation
import Logging
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// The supervisor in cluster mode, two nodes on one control loop over an in-memory cluster
/// (`FakeCluster`: a pool with compare-and-swap writes, node registrations, reports and views
/// pushed to every node, as etcd and `EtcdClusterMembership` provide them). Replicas are a
/// heartbeat responder, so they come up; the drivers record what each node starts and stops.
final class ClusterSupervisorTests: XCTestCase {
    /// etcd as the nodes see it. Loop thread only.
    final class FakeCluster: @unchecked Sendable {
        let loop: EventLoop
        var pool: StoredPool?
        var revision: Int64 = 1
        var nodes: [String: ClusterNodeRecord] = [:]
        var reports: [String: ReplicaReport] = [:]
        var memberships: [FakeMembership] = []
        var lostRaces = 0
        /// Every read and write fails with this (etcd down before the membership noticed).
        var failure: PoolStoreError?
        private var broadcasting = false

        init(loop: EventLoop) { self.loop = loop }

        var view: ClusterView { ClusterView(pool: pool, nodes: nodes, reports: reports, revision: revision) }

        /// Something changed: every live node gets the new view at the end of this turn.
        func changed() {
            revision += 1
            guard !broadcasting else { return }
            broadcasting = true
            loop.schedule(after: .zero) { [self] in
                broadcasting = false
                for membership in memberships where membership.alive && nodes[membership.nodeName] != nil {
                    membership.deliver(.changed(view))
                }
            }
        }

        /// A node's lease ended: its registration and reports go.
        func expire(_ node: String) {
            nodes[node] = nil
            reports = reports.filter { $0.value.node != node }
            changed()
        }
    }

    final class FakeMembership: ClusterMembership {
        let nodeName: String
        let advertiseAddress = "127.0.0.1"
        private(set) var view = ClusterView()
        var storeUp = true
        /// False once the node "died": it hears nothing more.
        var alive = true
        private let cluster: FakeCluster
        private var handler: ((ClusterMembershipEvent) -> Void)?

        init(_ name: String, cluster: FakeCluster) {
            nodeName = name
            self.cluster = cluster
            cluster.memberships.append(self)
        }

        func start(_ handler: @escaping (ClusterMembershipEvent) -> Void) {
            self.handler = handler
            register()
        }

        func register() {
            cluster.nodes[nodeName] = ClusterNodeRecord(name: nodeName, address: advertiseAddress, lease: 1)
            cluster.changed()
        }

        func report(_ replicas: [ReplicaReport]) {
            guard alive, cluster.nodes[nodeName] != nil else { return }
            cluster.reports = cluster.reports.filter { $0.value.node != nodeName }
            for report in replicas { cluster.reports[report.name] = report }
            cluster.changed()
        }

        func leave(done: @escaping () -> Void) {
            cluster.expire(nodeName)
            done()
        }

        func deliver(_ event: ClusterMembershipEvent) {
            if case .changed(let view) = event { self.view = view }
            handler?(event)
        }
    }

    /// The pool in `FakeCluster`: reads and compare-and-swap writes answered a little later,
    /// in random order, as a remote store answers.
    final class FakeStore: PoolStore {
        let location = "the fake cluster"
        private let cluster: FakeCluster

        init(_ cluster: FakeCluster) { self.cluster = cluster }

        func load() throws(PoolStoreError) -> StoredPool { cluster.pool ?? StoredPool(replicas: [], revision: 0) }

        func read(completion: @escaping (Result<StoredPool, PoolStoreError>) -> Void) {
            cluster.loop.schedule(after: .microseconds(Int.random(in: 0...3000))) { [cluster] in
                if let failure = cluster.failure { return completion(.failure(failure)) }
                completion(.success(cluster.pool ?? StoredPool(replicas: [], revision: 0)))
            }
        }

        func write(_ replicas: [Backend], ifRevision: UInt64, completion: @escaping (Result<UInt64, PoolStoreError>) -> Void) {
            cluster.loop.schedule(after: .microseconds(Int.random(in: 0...3000))) { [cluster] in
                let current = cluster.pool?.revision ?? 0
                guard current == ifRevision else {
                    cluster.lostRaces += 1
                    return completion(.failure(.conflict(expected: ifRevision, current: current)))
                }
                cluster.changed()
                cluster.pool = StoredPool(replicas: replicas, revision: UInt64(cluster.revision))
                completion(.success(UInt64(cluster.revision)))
            }
        }

        func watch(_ handler: @escaping (PoolStoreEvent) -> Void) {}
    }

    /// Launches every replica at the heartbeat responder; records what it starts and stops.
    final class RecordingDriver: ReplicaDriver {
        let name = "process"
        let canCreate = true
        let port: UInt16
        var launched: [ReplicaSpec] = []
        var stopped: [String] = []
        var killed: [String] = []
        private var running: Set<String> = []

        init(port: UInt16) { self.port = port }

        var runs: Set<String> { running }
        func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {}
        func initialBackends() -> [Backend] { [] }
        func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
            guard running.insert(replica.name).inserted else { throw DriverError("\(replica.name) is already running") }
            launched.append(replica)
            return Backend(name: replica.name, number: replica.number, host: "127.0.0.1", port: port)
        }
        func stop(_ backend: Backend) { _ = retire(backend)() }
        func retire(_ backend: Backend) -> () -> Void {
            running.remove(backend.name)
            return { [self] in stopped.append(backend.name) }
        }
        func kill(_ backend: Backend) {
            running.remove(backend.name)
            killed.append(backend.name)
        }
        func details(of backend: Backend) -> [(String, JSONValue)] { [] }
        func stopAll() {}
    }

    struct Node {
        let supervisor: Supervisor
        let driver: RecordingDriver
        let membership: FakeMembership
    }

    private var responder: HeartbeatResponder!
    private var loop: EventLoop!
    private var cluster: FakeCluster!
    private var stopLoop: (() -> Void)?

    override func setUpWithError() throws {
        responder = try HeartbeatResponder()
        loop = try EventLoop()
    }

    override func tearDown() {
        stopLoop?()
        responder.stop()
    }

    /// Nodes `names` on one loop, bootstrapped with `--replicas replicas` each.
    /// `ready`: what each node's bootstrap calls once that node is ready.
    private func nodes(_ names: [String], replicas: Int, ready: @escaping (Node) -> Void = { _ in }) throws -> [Node] {
        cluster = FakeCluster(loop: loop)
        var config = SupervisorConfig()
        config.heartbeatInterval = .milliseconds(200)
        config.startTimeout = .seconds(20)
        let made = names.map { name in
            let driver = RecordingDriver(port: responder.port)
            let supervisor = Supervisor(
                loop: loop, driver: driver, algorithm: .rendezvous, config: config, workers: 0,
                logger: Logger(label: name) { _ in SwiftLogNoOpLogHandler() })
            return Node(supervisor: supervisor, driver: driver, membership: FakeMembership(name, cluster: cluster))
        }
        let kept = made
        stopLoop = startControlLoop(loop, keeping: made[0].supervisor)
        addTeardownBlock { withExtendedLifetime(kept) {} }
        for node in made {
            try runOnLoop(loop) { [cluster] in
                node.supervisor.joinCluster(node.membership, store: FakeStore(cluster!))
                try node.supervisor.bootstrap(replicas: replicas) { ready(node) }
            }
        }
        return made
    }

    private func onLoop<T>(_ body: @escaping () throws -> T) throws -> T { try runOnLoop(loop, body) }

    /// Polls `condition` on the loop until it holds.
    private func waitUntil(
        _ what: String, seconds: Double = 20, file: StaticString = #filePath, line: UInt = #line,
        _ condition: @escaping () -> Bool
    ) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try onLoop(condition) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("gave up waiting until \(what)", file: file, line: line)
    }

    /// Every node is in the view, runs exactly what placement gives it (no hand-off under way)
    /// and routes to the whole pool, each replica up, by the same snapshot.
    private func settled(_ nodes: [Node], count: Int) -> Bool {
        let view = cluster.view
        return allRouteTheSame(nodes, count: count) && view.nodes.count == nodes.count
            && nodes.allSatisfy { $0.driver.runs == Set(ClusterReconciler.placed(on: $0.membership.nodeName, view: view)) }
    }

    /// Every node routes to the whole pool, each replica up, by the same snapshot.
    private func allRouteTheSame(_ nodes: [Node], count: Int) -> Bool {
        let snapshots = nodes.map { $0.supervisor.publisher.latest() }
        guard let first = snapshots.first, first.backends.count == count, first.healthy.allSatisfy({ $0 }) else { return false }
        return snapshots.allSatisfy { $0.backends == first.backends && $0.healthy == first.healthy }
    }

    private func send(_ node: Node, _ method: String, _ path: String, body: String = "", query: String? = nil) -> AdminResponse? {
        let answered = expectation(description: "\(method) \(path)")
        nonisolated(unsafe) var response: AdminResponse?
        node.supervisor.admin.submit(AdminRequest(method: method, path: path, query: query, body: Array(body.utf8))) {
            response = $0
            answered.fulfill()
        }
        wait(for: [answered], timeout: 30)
        return response
    }

    // MARK: tests

    func testTwoNodesStartingTogetherSeedThePoolOnceAndEachRunsTheReplicasPlacedOnIt() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 6)
        // The first node may run the whole pool until the second registers, then hands its
        // share over: what counts is what each runs once both are in.
        try waitUntil("each node runs exactly what placement gives it, all up on both") { self.settled(nodes, count: 6) }
        try onLoop { [cluster] in
            XCTAssertEqual(cluster!.pool?.replicas.map(\.name), (1...6).map { "server-\($0)" }, "seeded once, not twice")
            XCTAssertEqual(nodes[0].driver.runs.intersection(nodes[1].driver.runs), [])
            for node in nodes {
                XCTAssertFalse(node.driver.runs.isEmpty, "\(node.membership.nodeName) runs its share")
                XCTAssertTrue(
                    node.driver.launched.allSatisfy { "server-\($0.number)" == $0.name }, "launched under the pool's ids")
            }
            XCTAssertEqual(nodes[0].supervisor.view.latest().poolNames, nodes[1].supervisor.view.latest().poolNames)
        }
    }

    /// Ready (sd_notify READY, the workers start) once the seeded pool is placed and the
    /// replicas placed here passed their first checks, not as soon as the node registered.
    func testANodeIsReadyOnceTheReplicasPlacedOnItAreUp() throws {
        let readiness = Locked<[Bool]>([])
        _ = try nodes(["n1"], replicas: 3) { node in
            let snapshot = node.supervisor.publisher.latest()
            readiness.withLock { $0.append(snapshot.backends.count == 3 && snapshot.healthy.allSatisfy { $0 }) }
        }
        try waitUntil("n1 is ready") { !readiness.withLock { $0 }.isEmpty }
        XCTAssertEqual(readiness.withLock { $0 }, [true], "ready with its 3 replicas up, once")
    }

    /// `/add` answers once its replicas are reported up (by whichever node runs them) and `/rm`
    /// once the node's view shows the removal: a `/rep` right after either answer shows it.
    func testAddAndRemoveAnswerOnceTheNodesViewShowsThem() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 1)
        try waitUntil("both nodes settled with 1 replica up") { self.settled(nodes, count: 1) }
        let added = send(nodes[0], "POST", "/add", body: #"{"n": 2}"#)
        XCTAssertEqual(added?.status, .ok)
        try onLoop { [cluster] in
            for name in ["server-2", "server-3"] {
                XCTAssertEqual(cluster!.reports[name]?.isUp, true, "\(name) is up when /add answers")
            }
            XCTAssertEqual(nodes[0].supervisor.view.latest().poolNames, ["server-1", "server-2", "server-3"])
        }
        let removed = send(nodes[1], "DELETE", "/rm", body: #"{"hostnames": ["server-2"]}"#)
        XCTAssertEqual(removed?.status, .ok)
        XCTAssertEqual(
            removed?.body, #"{"message": {"N": 2, "replicas": ["server-1", "server-3"]}, "status": "successful"}"#)
        try onLoop { XCTAssertEqual(nodes[1].supervisor.view.latest().poolNames, ["server-1", "server-3"]) }
    }

    /// Weights are not routed by in cluster mode yet: a command that sets one is refused, and
    /// changes nothing, rather than being half applied.
    /// Weights travel in the pool: a change through one node, and an `/add` with a weight
    /// through the other, reach both nodes' snapshots and `/status`, whichever node runs the
    /// replica.
    func testWeightsWrittenThroughEitherNodeReachEveryNodesSnapshot() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 2)
        try waitUntil("both nodes settled with 2 replicas up") { self.settled(nodes, count: 2) }
        // The published snapshot is read on any thread (the workers do).
        func weights(_ node: Int) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: nodes[node].supervisor.publisher.latest().backends.map { ($0.name, $0.weight) })
        }
        let changed = send(nodes[0], "PATCH", "/weight", body: #"{"hostnames": ["server-1"], "weight": 4}"#)
        XCTAssertEqual(changed?.status, .ok, "\(String(describing: changed))")
        try waitUntil("both snapshots weigh server-1 at 4") {
            (0..<2).allSatisfy { weights($0) == ["server-1": 4, "server-2": 1] }
        }
        let added = send(nodes[1], "POST", "/add", body: #"{"n": 1, "hostnames": ["big"], "weight": 3}"#)
        XCTAssertEqual(added?.status, .ok, "\(String(describing: added))")
        try waitUntil("both snapshots have big at 3") {
            (0..<2).allSatisfy { weights($0) == ["server-1": 4, "server-2": 1, "big": 3] }
        }
        for node in nodes {
            let shown = Dictionary(
                uniqueKeysWithValues: node.supervisor.view.latest().replicas.map { ($0.name, $0.weight) })
            XCTAssertEqual(shown, ["server-1": 4, "server-2": 1, "big": 3], "/status weights")
        }
        let refused = send(nodes[0], "PATCH", "/weight", body: #"{"hostnames": ["server-2"], "weight": 257}"#)
        XCTAssertEqual(refused?.status, .badRequest)
    }

    func testConcurrentAddsThroughBothNodesAllSucceedWithDistinctNamesAndIds() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 2)
        try waitUntil("both nodes settled with 2 replicas up") { self.settled(nodes, count: 2) }
        let group = DispatchGroup()
        let statuses = Locked<[HTTPStatus]>([])
        for index in 0..<10 {
            group.enter()
            nodes[index % 2].supervisor.admin.submit(AdminRequest(method: "POST", path: "/add", query: nil, body: [])) {
                response in
                statuses.withLock { $0.append(response.status) }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.withLock { $0 }, Array(repeating: .ok, count: 10))
        try onLoop { [cluster] in
            let pool = cluster!.pool?.replicas ?? []
            XCTAssertEqual(pool.count, 12)
            XCTAssertEqual(Set(pool.map(\.name)).count, 12, "names distinct")
            XCTAssertEqual(Set(pool.map(\.number)).count, 12, "ids distinct")
            XCTAssertGreaterThan(cluster!.lostRaces, 0, "the adds raced (and were retried)")
        }
        try waitUntil("both nodes settled with 12 replicas up") { self.settled(nodes, count: 12) }
        try onLoop {
            XCTAssertEqual(nodes[0].supervisor.view.latest().poolNames, nodes[1].supervisor.view.latest().poolNames)
        }
    }

    func testALostNodesReplicasStartOnTheSurvivorUnderTheirNamesAndIds() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 8)
        try waitUntil("both nodes settled with 8 replicas up") { self.settled(nodes, count: 8) }
        let lost = try onLoop { nodes[1].driver.launched }
        XCTAssertFalse(lost.isEmpty)
        try onLoop { [cluster] in
            nodes[1].membership.alive = false
            cluster!.expire("n2")
        }
        try waitUntil("n1 runs the whole pool") { nodes[0].driver.runs.count == 8 }
        try onLoop {
            for spec in lost { XCTAssertTrue(nodes[0].driver.launched.contains(spec), "\(spec) started on n1") }
        }
        try waitUntil("n1 routes to all 8 up") { self.allRouteTheSame([nodes[0]], count: 8) }
    }

    func testAFencedNodeKillsItsReplicasAtOnceAndTakesBackOnlyItsShare() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 8)
        try waitUntil("both nodes settled with 8 replicas up") { self.settled(nodes, count: 8) }
        let share = try onLoop { Set(nodes[0].driver.runs) }
        try onLoop { [cluster] in
            cluster!.expire("n1")
            nodes[0].membership.deliver(.fenced(reason: "lease not found"))
            XCTAssertEqual(Set(nodes[0].driver.killed), share, "every replica killed at once")
            XCTAssertEqual(nodes[0].driver.runs, [])
        }
        try waitUntil("n2 runs the whole pool") { nodes[1].driver.runs.count == 8 }
        let series = try onLoop { share.map { nodes[1].supervisor.metrics.replica($0) } }
        try onLoop { nodes[0].membership.register() }
        try waitUntil("n1 took its share back and n2 handed it over") {
            nodes[0].driver.runs == share && nodes[1].driver.runs.count == 8 - share.count
        }
        try waitUntil("n2 stopped what it handed back") { Set(nodes[1].driver.stopped) == share }
        // Still routed to (on n1): their /metrics series stay, their counts go on.
        XCTAssertEqual(series.filter(\.isRetired).count, 0)
        try waitUntil("both route to 8 up") { self.allRouteTheSame(nodes, count: 8) }
    }

    func testWithTheStoreDownAdminWritesAnswer503AndRoutingGoesOn() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 2)
        try waitUntil("both nodes settled with 2 replicas up") { self.settled(nodes, count: 2) }
        let before = nodes[0].supervisor.publisher.latest()
        try onLoop { nodes[0].membership.deliver(.storeDown(reason: "no etcd endpoint answers")) }
        for (method, path, body) in [("POST", "/add", ""), ("DELETE", "/rm", #"{"n": 1}"#)] {
            let response = send(nodes[0], method, path, body: body)
            XCTAssertEqual(response?.status, .serviceUnavailable)
            XCTAssertEqual(
                response?.body,
                #"{"message": "<Error> cluster store unavailable: no etcd endpoint answers", "status": "failure"}"#)
        }
        XCTAssertEqual(nodes[0].supervisor.publisher.latest().backends, before.backends, "still routing to the pool")
        XCTAssertTrue(
            AdminRouter.statusBody(nodes[0].supervisor.view.latest()).contains(#""store": "down""#), "/status says so")
        try onLoop { nodes[0].membership.deliver(.storeUp) }
        XCTAssertEqual(send(nodes[0], "POST", "/add")?.status, .ok)

        // etcd fails before the membership noticed: the same answer.
        for failure in [PoolStoreError.unreachable("etcd unreachable: no member answered"), .failed("etcdserver: no leader")] {
            try onLoop { [cluster] in cluster!.failure = failure }
            let response = send(nodes[1], "POST", "/add")
            XCTAssertEqual(response?.status, .serviceUnavailable)
            XCTAssertEqual(
                response?.body, #"{"message": "<Error> cluster store unavailable: \#(failure)", "status": "failure"}"#)
        }
    }

    /// A replica another node reports up but that refuses connections (its node died, its lease
    /// not expired yet): once a worker reports it unreachable, this node routes around it, and
    /// restarts nothing; a new report from its node ends that.
    func testARemoteReplicaThatRefusesIsRoutedAroundAndNothingIsRestarted() throws {
        let nodes = try nodes(["n1"], replicas: 0)
        let listener = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 1)
        let closed = try Socket.localAddress(listener).port
        close(listener)
        // A name placement gives to n9, which runs it (in this test, nobody does).
        let id = try XCTUnwrap((1...100).first { Placement.owner(of: "server-\($0)", among: ["n1", "n9"]) == "n9" })
        let remote = ReplicaReport(name: "server-\(id)", id: id, node: "n9", host: "127.0.0.1", port: closed, state: "up")
        try onLoop { [cluster] in
            let cluster = cluster!
            cluster.nodes["n9"] = ClusterNodeRecord(name: "n9", address: "127.0.0.1", lease: 9)
            cluster.pool = StoredPool(replicas: [remote.backend], revision: 5)
            cluster.reports[remote.name] = remote
            cluster.changed()
        }
        try waitUntil("n1 routes to n9's replica") {
            let snapshot = nodes[0].supervisor.publisher.latest()
            return snapshot.backends == [remote.backend] && snapshot.healthy == [true]
        }
        nodes[0].supervisor.reportUnreachable(remote.backend)
        try waitUntil("n1 routes around it") { nodes[0].supervisor.publisher.latest().healthy == [false] }
        try onLoop {
            XCTAssertEqual(nodes[0].driver.launched, [], "nothing started here")
            XCTAssertEqual(nodes[0].driver.killed, [])
        }
        try onLoop { [cluster] in
            var restarted = remote
            restarted.port = self.responder.port
            restarted.restarts = 1
            cluster!.reports[remote.name] = restarted
            cluster!.changed()
        }
        try waitUntil("its new report puts it back") { nodes[0].supervisor.publisher.latest().healthy == [true] }
    }

    func testARemoveThroughOneNodeStopsTheReplicaOnTheNodeThatRunsIt() throws {
        let nodes = try nodes(["n1", "n2"], replicas: 6)
        try waitUntil("both nodes settled with 6 replicas up") { self.settled(nodes, count: 6) }
        let (victim, id) = try onLoop {
            let spec = nodes[0].driver.launched.first { nodes[0].driver.runs.contains($0.name) }!
            return (spec.name, spec.number)
        }
        let response = send(nodes[1], "DELETE", "/rm", query: "id=\(id)")
        XCTAssertEqual(response?.status, .ok)
        XCTAssertFalse(response?.body.contains("\"\(victim)\"") ?? true, "the answer is the pool without it")
        try waitUntil("n1 stopped \(victim)") { nodes[0].driver.stopped.contains(victim) }
        try waitUntil("both route to the 5 left") { self.allRouteTheSame(nodes, count: 5) }
        // n2 never ran it, but routed to it: its series leave n2's /metrics too.
        try waitUntil("\(victim)'s series left n2's /metrics") {
            !nodes[1].supervisor.metrics.render().contains("replica=\"\(victim)\"")
        }
        try onLoop {
            XCTAssertEqual(nodes[0].supervisor.view.latest().poolNames, nodes[1].supervisor.view.latest().poolNames)
            XCTAssertFalse(nodes[0].supervisor.view.latest().poolNames.contains(victim))
        }
    }
}
