// ds-lb in cluster mode end to end: three hosts (network namespaces), an etcd member and a
// ds-lb node on each (NetnsCluster), replicas run by the process driver on their host's
// address. One cluster serves every test of the class; each test starts from a cluster put
// back together (every member and node running, all nodes agreeing) and leaves it so.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ClusterTests: XCTestCase {
    nonisolated(unsafe) private static var shared: Result<NetnsCluster, any Error>?

    /// The bounds the issue sets are for an unloaded machine; under a sanitizer every process
    /// runs several times slower.
    private let slack: Double = ProcessInfo.processInfo.environment["DSLB_SANITIZER"] == nil ? 1 : 4

    private var cluster: NetnsCluster!

    override func setUpWithError() throws {
        try super.setUpWithError()
        if Self.shared == nil { Self.shared = Result { try NetnsCluster(leaseSeconds: 2, replicas: 3) } }
        cluster = try Self.shared!.get()
        try cluster.restore()
    }

    override class func tearDown() {
        if case .success(let cluster) = shared { cluster.shutdown() }
        shared = nil
        super.tearDown()
    }

    // MARK: One pool, any node

    func testAddThroughOneNodeIsListedByTheOthersWithinOneSecond() throws {
        let before = try XCTUnwrap(cluster.pool(0))
        let response = try cluster.request(0, "POST", "/add")
        XCTAssertEqual(response.status, 200, "POST /add through n1: \(response)")
        let after = try XCTUnwrap(response.replicaState?.replicas, "\(response)")
        let added = Set(after).subtracting(before)
        XCTAssertEqual(added.count, 1, "POST /add through n1 added \(added)")
        let sent = Date()
        var seen: [Int: TimeInterval] = [:]
        while seen.count < 2 && Date().timeIntervalSince(sent) < 10 {
            for index in [1, 2] where seen[index] == nil {
                if let pool = cluster.pool(index), added.isSubset(of: pool) { seen[index] = Date().timeIntervalSince(sent) }
            }
            usleep(10_000)
        }
        for index in [1, 2] {
            let elapsed = try XCTUnwrap(seen[index], "n\(index + 1) never listed \(added)\n\(cluster.logs())")
            XCTAssertLessThanOrEqual(elapsed, 1 * slack, "n\(index + 1) listed \(added) after \(elapsed) s")
        }
        try cluster.waitUntilConverged(timeout: 30 * slack)
    }

    func testTwentyConcurrentAddsSpreadOverTheNodesMakeTwentyDistinctReplicas() throws {
        let before = try XCTUnwrap(cluster.pool(0))
        let statuses = Locked<[Int]>([])
        let cluster = self.cluster!
        DispatchQueue.concurrentPerform(iterations: 20) { i in
            let status = (try? cluster.request(i % 3, "POST", "/add", timeout: 30))?.status ?? -1
            statuses.update { $0.append(status) }
        }
        XCTAssertEqual(statuses.value, Array(repeating: 200, count: 20), "statuses of the 20 POST /add")
        try cluster.waitUntilConverged(timeout: 60 * slack)
        let after = try XCTUnwrap(cluster.pool(0))
        XCTAssertEqual(after.count, before.count + 20, "pool after 20 adds: \(after)")
        XCTAssertEqual(Set(after.map { $0.lowercased() }).count, after.count, "names are distinct: \(after)")
        for index in cluster.hosts.indices {
            let replicas = try XCTUnwrap(cluster.status(index)?["replicas"] as? [[String: Any]])
            let ids = replicas.compactMap { $0["id"] as? Int }
            XCTAssertEqual(ids.count, after.count, "n\(index + 1): ids in /status")
            XCTAssertEqual(Set(ids).count, ids.count, "n\(index + 1): ids are distinct: \(ids.sorted())")
            XCTAssertEqual(cluster.pool(index)?.sorted(), after.sorted(), "n\(index + 1) agrees on the pool")
        }
        let added = Array(Set(after).subtracting(before))
        let removed = try cluster.request(1, "DELETE", "/rm", json: ["n": added.count, "hostnames": added], timeout: 30)
        XCTAssertEqual(removed.status, 200, "DELETE /rm of the added replicas: \(removed)")
        try cluster.waitUntilConverged(timeout: 60 * slack)
    }

    // MARK: Routing

    func testTenThousandIDsReachTheSameReplicaThroughEveryNode() throws {
        let ids = Array(0..<10_000)
        let cluster = self.cluster!
        let maps = Locked<[Int: [Int: Int]]>([:])
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: cluster.hosts.count) { index in
            let clients = (0..<4).map { _ in cluster.client(index) }
            defer { clients.forEach { $0.close() } }
            var owners: [Int: Int] = [:]
            for id in ids {
                do {
                    let response = try clients[id % clients.count].get("/home?id=\(id)")
                    if response.status == 200, let server = response.helloServerID {
                        owners[id] = server
                    } else {
                        failures.update { if $0.count < 5 { $0.append("n\(index + 1) id \(id): \(response)") } }
                    }
                } catch {
                    failures.update { if $0.count < 5 { $0.append("n\(index + 1) id \(id): \(error)") } }
                }
            }
            maps.update { $0[index] = owners }
        }
        XCTAssertEqual(failures.value, [], "every routed GET answers 200 Hello from Server")
        let byNode = maps.value
        let first = try XCTUnwrap(byNode[0])
        XCTAssertEqual(first.count, ids.count)
        XCTAssertGreaterThan(Set(first.values).count, 1, "the ids spread over the pool")
        for index in 1..<cluster.hosts.count {
            let other = try XCTUnwrap(byNode[index])
            let differing = ids.filter { first[$0] != other[$0] }
            XCTAssertEqual(
                differing.count, 0,
                "ids routed differently by n1 and n\(index + 1), e.g. \(differing.prefix(5).map { "\($0): \(first[$0] ?? -1) vs \(other[$0] ?? -1)" })"
            )
        }
    }

    // MARK: Node failure

    func testKilledNodesReplicasServeAgainOnTheOthersWithinTheLeaseWithoutFailedRequests() throws {
        let victim = 1
        // Two or more, so some keys have both their first and their second replica on it.
        let owned = try ensureReplicas(on: victim, atLeast: 2)
        let keys = try keys(servedBy: owned)
        let load = LoadLoop(cluster: cluster, nodes: [0, 2], keys: Array(0..<500) + Array(keys.values))
        defer { load.stop() }
        try load.waitForRequests(100)

        let killed = Date()
        cluster.killNode(victim)
        // Served again: each of its keys answered by its own replica again, now on a survivor.
        var servedAgain: TimeInterval?
        var last = ""
        while Date().timeIntervalSince(killed) < 30 {
            let running = cluster.replicaProcesses()
            last = keys.compactMap { id, key -> String? in
                guard let hosts = running[id], hosts.contains(where: { $0 != victim }) else { return "\(id) not running" }
                for index in [0, 2] {
                    guard let response = try? cluster.request(index, "GET", "/home?id=\(key)", timeout: 3),
                        response.helloServerID == id
                    else { return "key \(key) of \(id) not answered by it through n\(index + 1)" }
                }
                return nil
            }.joined(separator: ", ")
            if last.isEmpty {
                servedAgain = Date().timeIntervalSince(killed)
                break
            }
            usleep(50_000)
        }
        let recovered = load.requests
        try load.waitForRequests(recovered + 100)
        load.stop()
        let elapsed = try XCTUnwrap(servedAgain, "n2's replicas \(owned) did not serve again: \(last)\n\(cluster.logs())")
        print(
            "[cluster] n2 killed: its replicas \(owned.sorted()) served again after \(elapsed) s (lease \(cluster.leaseSeconds) s)"
        )
        XCTAssertLessThanOrEqual(elapsed, (Double(cluster.leaseSeconds) + 2) * slack, "served again after lease TTL + 2 s")
        XCTAssertEqual(load.failures, [], "failed requests at n1 and n3 (\(load.tally))")
        try cluster.restore()
    }

    func testNodePausedPastTheLeaseRunsEachReplicaExactlyOnceAfterItResumes() throws {
        let paused = 2
        let owned = try ensureReplicas(on: paused)
        cluster.signalNode(paused, SIGSTOP)
        defer { cluster.signalNode(paused, SIGCONT) }
        // Its lease expires: the others start its replicas while the paused node's still run.
        let deadline = Date().addingTimeInterval(Double(cluster.leaseSeconds) * slack + 30)
        var doubled = false
        while !doubled && Date() < deadline {
            let running = cluster.replicaProcesses()
            doubled = owned.allSatisfy { running[$0]?.contains { $0 != paused } == true }
            usleep(50_000)
        }
        XCTAssertTrue(doubled, "n3's replicas \(owned) were not started elsewhere while it was paused\n\(cluster.logs())")
        cluster.signalNode(paused, SIGCONT)
        let resumed = Date()
        // Fenced, it stops them, registers again and takes back exactly its share.
        try cluster.waitUntilConverged(timeout: 30 * slack)
        print("[cluster] n3 resumed: each replica runs once again after \(Date().timeIntervalSince(resumed)) s")
        let running = cluster.replicaProcesses()
        for id in owned {
            XCTAssertEqual(running[id], [paused], "replica \(id) runs once, on n3 again")
        }
        XCTAssertTrue(running.values.allSatisfy { $0.count == 1 }, "each replica runs exactly once: \(running)")
    }

    // MARK: etcd failures

    func testKillingTheEtcdLeaderFailsNoRequestAndAddWorksAgainWithinTenSeconds() throws {
        var leader: Int?
        let found = Date().addingTimeInterval(30)
        while leader == nil && Date() < found {
            leader = cluster.etcdLeader()
            if leader == nil { usleep(100_000) }
        }
        let victim = try XCTUnwrap(leader, "no etcd leader found")
        let load = LoadLoop(cluster: cluster, nodes: Array(cluster.hosts.indices), keys: Array(0..<1000))
        defer { load.stop() }
        try load.waitForRequests(100)

        let killed = Date()
        cluster.killEtcd(victim)
        var added: TimeInterval?
        var last = ""
        while added == nil && Date().timeIntervalSince(killed) < 30 {
            do {
                let response = try cluster.request(0, "POST", "/add", timeout: 10)
                if response.status == 200 { added = Date().timeIntervalSince(killed) } else { last = "\(response)" }
            } catch {
                last = "\(error)"
            }
            if added == nil { usleep(100_000) }
        }
        try load.waitForRequests(load.requests + 100)
        load.stop()
        let elapsed = try XCTUnwrap(added, "POST /add never worked again after the leader was killed: \(last)")
        print("[cluster] etcd leader e\(victim + 1) killed: POST /add works again after \(elapsed) s")
        XCTAssertLessThanOrEqual(elapsed, 10 * slack, "POST /add works again within 10 s")
        XCTAssertEqual(load.failures, [], "failed requests (\(load.tally))")
        try cluster.restore()
    }

    func testWithEveryEtcdMemberStoppedRoutingGoesOnAndAddAnswers503ThenTheNodesConverge() throws {
        let before = try XCTUnwrap(cluster.pool(0))
        let load = LoadLoop(cluster: cluster, nodes: Array(cluster.hosts.indices), keys: Array(0..<1000))
        defer { load.stop() }
        try load.waitForRequests(100)

        for index in cluster.hosts.indices { cluster.stopEtcd(index) }
        let stopped = Date()
        for index in cluster.hosts.indices {
            var response: HTTPResponse?
            while Date().timeIntervalSince(stopped) < 30 {
                response = try? cluster.request(index, "POST", "/add", timeout: 10)
                if response?.status == 503 { break }
                usleep(100_000)
            }
            let answer = try XCTUnwrap(response, "n\(index + 1) did not answer POST /add")
            XCTAssertEqual(answer.status, 503, "n\(index + 1): POST /add with etcd down: \(answer)")
            XCTAssertEqual(answer.jsonStatus, "failure", "n\(index + 1): \(answer)")
            XCTAssertTrue(
                answer.messageString?.hasPrefix("<Error> cluster store unavailable: ") == true,
                "n\(index + 1): message of \(answer)")
        }
        // /status says so once the node's own calls to etcd (its lease's keep-alive) fail too.
        for index in cluster.hosts.indices {
            var store: [String: Any]?
            while Date().timeIntervalSince(stopped) < 30 {
                store = cluster.status(index)?["cluster"] as? [String: Any]
                if let state = store?["store"] as? String, state != "up" { break }
                usleep(100_000)
            }
            XCTAssertNotEqual(store?["store"] as? String, "up", "n\(index + 1): /status with etcd down: \(store ?? [:])")
            XCTAssertFalse((store?["store_problem"] as? String ?? "").isEmpty, "n\(index + 1): /status says why")
        }
        // Routing goes on well past the lease TTL: no node stops its replicas for want of etcd.
        let during = load.requests
        while Date().timeIntervalSince(stopped) < Double(3 * cluster.leaseSeconds) { usleep(100_000) }
        try load.waitForRequests(during + 200)
        load.stop()
        XCTAssertEqual(load.failures, [], "failed requests while etcd was down (\(load.tally))")
        for index in cluster.hosts.indices {
            XCTAssertEqual(cluster.pool(index), before, "n\(index + 1) still routes by the pool it had")
        }

        let restarted = Date()
        for index in cluster.hosts.indices { try cluster.startEtcd(index) }
        for index in cluster.hosts.indices { try cluster.waitUntilEtcdServes(index) }
        try cluster.waitUntilConverged(timeout: 30 * slack)
        print("[cluster] etcd restarted: the nodes converged after \(Date().timeIntervalSince(restarted)) s")
        XCTAssertEqual(cluster.pool(0)?.sorted(), before.sorted(), "the refused writes changed nothing")
        let response = try cluster.request(2, "POST", "/add", timeout: 10)
        XCTAssertEqual(response.status, 200, "POST /add through n3 once etcd is back: \(response)")
        let after = try XCTUnwrap(response.replicaState?.replicas)
        try cluster.waitUntilConverged(timeout: 30 * slack)
        for index in cluster.hosts.indices {
            XCTAssertEqual(cluster.pool(index)?.sorted(), after.sorted(), "n\(index + 1) lists the new replica")
        }
    }

    // MARK: Helpers

    /// The ids of the replicas node `index` runs, adding replicas through another node until
    /// placement gives it `atLeast`.
    private func ensureReplicas(on index: Int, atLeast count: Int = 1) throws -> Set<Int> {
        for _ in 0..<12 {
            let owned = Set(cluster.replicaProcesses().filter { $0.value == [index] }.keys)
            if owned.count >= count { return owned }
            let response = try cluster.request((index + 1) % cluster.hosts.count, "POST", "/add", timeout: 10)
            XCTAssertEqual(response.status, 200, "POST /add: \(response)")
            try cluster.waitUntilConverged(timeout: 30 * slack)
        }
        throw ClusterFixtureError("placement gave n\(index + 1) fewer than \(count) replicas after 12 adds")
    }

    /// For each replica id, one `?id=` key that n1 routes to it.
    private func keys(servedBy replicas: Set<Int>) throws -> [Int: Int] {
        let client = cluster.client(0)
        defer { client.close() }
        var keys: [Int: Int] = [:]
        var key = 100_000
        while keys.count < replicas.count && key < 110_000 {
            if let server = try client.get("/home?id=\(key)").helloServerID, replicas.contains(server), keys[server] == nil {
                keys[server] = key
            }
            key += 1
        }
        guard keys.count == replicas.count else {
            throw ClusterFixtureError("no key routed to some of \(replicas) among 10,000: \(keys)")
        }
        return keys
    }
}

/// Clients sending idempotent `GET /home?id=` in a loop to some nodes, two keep-alive
/// connections per node, counting answers; any answer but 200 Hello from Server is a failure.
final class LoadLoop: @unchecked Sendable {
    private let state = Locked<(requests: Int, failed: Int, failures: [String], stop: Bool)>((0, 0, [], false))
    private let finished = DispatchGroup()

    init(cluster: NetnsCluster, nodes: [Int], keys: [Int]) {
        for index in nodes {
            for connection in 0..<2 {
                finished.enter()
                let thread = Thread { [self] in
                    defer { finished.leave() }
                    let client = cluster.client(index, timeout: 10)
                    defer { client.close() }
                    var next = connection
                    while !state.value.stop {
                        let key = keys[next % keys.count]
                        next += 7
                        var failure: String?
                        do {
                            let response = try client.get("/home?id=\(key)")
                            if response.status != 200 || response.helloServerID == nil {
                                failure = "n\(index + 1) id \(key): \(response)"
                            }
                        } catch {
                            failure = "n\(index + 1) id \(key): \(error)"
                            client.close()
                        }
                        state.update { state in
                            state.requests += 1
                            guard let failure else { return }
                            state.failed += 1
                            if state.failures.count < 10 { state.failures.append(failure) }
                        }
                    }
                }
                thread.name = "cluster-load-n\(index + 1)"
                thread.start()
            }
        }
    }

    var requests: Int { state.value.requests }
    /// The first ten failures.
    var failures: [String] { state.value.failures }
    /// "N failed of M".
    var tally: String { "\(state.value.failed) failed of \(state.value.requests)" }

    /// Waits until `count` requests were answered in all (throws after 60 s: the load is stuck).
    func waitForRequests(_ count: Int) throws {
        let deadline = Date().addingTimeInterval(60)
        while requests < count {
            guard Date() < deadline else {
                throw ClusterFixtureError("the load made \(requests) requests, not \(count), in 60 s: \(failures)")
            }
            usleep(10_000)
        }
    }

    /// Ends the clients and waits for them. Idempotent.
    func stop() {
        state.update { $0.stop = true }
        finished.wait()
    }
}
