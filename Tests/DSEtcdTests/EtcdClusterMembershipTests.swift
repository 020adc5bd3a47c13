import DSBalancer
import DSControl
import DSEtcd
import DSSystem
import DSTestSupport
import Foundation
import XCTest

final class EtcdClusterMembershipTests: EtcdLoopTestCase {
    /// One node's membership, what it reported and what it logged.
    private struct Node {
        let membership: LoopRef<EtcdClusterMembership>
        let events: MembershipEvents
        let log: CapturedLog
    }

    private func node(
        _ name: String, ttl: Duration = .seconds(30), timeout: Duration = .seconds(1), start: Bool = true
    ) throws -> Node {
        let log = CapturedLog()
        let endpoints = cluster.endpoints
        let loop: TestLoop = self.loop
        let membership = try loop.keep {
            try EtcdClusterMembership(
                loop: loop.loop, endpoints: endpoints, pool: "p", driver: "process", nodeName: name,
                advertiseAddress: "10.0.0.\(name.dropFirst())", leaseTTL: ttl, timeout: timeout, logger: log.logger)
        }
        let events = MembershipEvents()
        if start { loop.sync { membership.value.start { event in events.list.withLock { $0.append(event) } } } }
        return Node(membership: membership, events: events, log: log)
    }

    private func report(_ name: String, on node: String, state: String = "up", checks: Int = 0) -> ReplicaReport {
        ReplicaReport(name: name, id: 1, node: node, host: "10.0.0.\(node.dropFirst())", port: 9001, state: state, checks: checks)
    }

    private func lease(_ node: Node) -> Int64 { loop.sync { node.membership.value.lease } }

    private func report(_ node: Node, _ reports: [ReplicaReport]) {
        loop.sync { node.membership.value.report(reports) }
    }

    private func raw() throws -> BlockingEtcdClient { try BlockingEtcdClient(endpoints: cluster.endpoints) }

    private func key(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testTwoNodesSeeEachOtherAndEachOthersReports() throws {
        let n1 = try node("n1")
        let n2 = try node("n2")
        for node in [n1, n2] {
            XCTAssertNotNil(node.events.wait { $0.lastView?.nodes.keys.sorted() == ["n1", "n2"] }, "\(node.events.all)")
        }
        XCTAssertEqual(
            n1.events.lastView?.nodes["n2"], ClusterNodeRecord(name: "n2", address: "10.0.0.2", lease: lease(n2)))
        XCTAssertTrue(
            n1.log.messages.contains { $0.hasPrefix("[i] Joined cluster pool p as n1 (lease ") && $0.hasSuffix("ttl 30s)") })
        XCTAssertTrue(n2.log.messages.contains { $0.contains("Joined cluster pool p as n2") })

        let first = [report("r1", on: "n1"), report("r2", on: "n1", state: "starting")]
        report(n1, first)
        XCTAssertNotNil(n2.events.wait { $0.lastView?.reports == ["r1": first[0], "r2": first[1]] }, "\(n2.events.all)")
        XCTAssertEqual(try raw().range(key("/ds-lb/p/replicas/r1")).kvs.first?.lease, lease(n1))

        // A changed report is written again, one no longer listed is deleted.
        let second = [report("r1", on: "n1", state: "down")]
        report(n1, second)
        XCTAssertNotNil(n2.events.wait { $0.lastView?.reports == ["r1": second[0]] }, "\(n2.events.all)")

        // The pool document is in the view, as the pool's store wrote it.
        let pool = [Backend(name: "r1", number: 1, host: "127.0.0.1", port: 9001)]
        let document = try StateStore.encode(pool, driver: "process", revision: 1)
        let revision = try raw().put(key("/ds-lb/p/pool"), value: Array(document))
        XCTAssertNotNil(
            n1.events.wait { $0.lastView?.pool == StoredPool(replicas: pool, revision: UInt64(revision)) }, "\(n1.events.all)")
    }

    func testABurstOfReportsIsOneWriteOfTheLastListAndAnUnchangedReportIsNotWrittenAgain() throws {
        let n1 = try node("n1")
        XCTAssertNotNil(n1.events.wait { $0.lastView?.nodes["n1"] != nil })
        loop.sync { for checks in 1...10 { n1.membership.value.report([self.report("r1", on: "n1", checks: checks)]) } }
        XCTAssertNotNil(n1.events.wait { $0.lastView?.reports["r1"]?.checks == 10 }, "\(n1.events.all)")
        XCTAssertEqual(try raw().range(key("/ds-lb/p/replicas/r1")).kvs.first?.version, 1)
        // An unchanged report is not written again with the changed ones.
        report(n1, [report("r1", on: "n1", checks: 10), report("r2", on: "n1")])
        XCTAssertNotNil(n1.events.wait { $0.lastView?.reports["r2"] != nil }, "\(n1.events.all)")
        XCTAssertEqual(try raw().range(key("/ds-lb/p/replicas/r1")).kvs.first?.version, 1)
    }

    func testAnUnreadableRecordIsSkippedWithOneWarning() throws {
        let n1 = try node("n1")
        XCTAssertNotNil(n1.events.wait { $0.lastView?.nodes["n1"] != nil })
        _ = try raw().put(key("/ds-lb/p/nodes/broken"), value: key("{not json"))
        _ = try raw().put(key("/ds-lb/p/replicas/broken"), value: key("{\"name\": 3}"))
        _ = try raw().put(key("/ds-lb/p/nodes/n9"), value: key(#"{"name":"n9","address":"10.0.0.9","lease":"0"}"#))
        let n9 = ClusterNodeRecord(name: "n9", address: "10.0.0.9", lease: 0)
        // Written as JSON wants it this time: the view takes it.
        let good = try JSONEncoder().encode(n9)
        _ = try raw().put(key("/ds-lb/p/nodes/n9"), value: Array(good))
        let view = n1.events.wait { $0.lastView?.nodes["n9"] == n9 }?.lastView
        XCTAssertEqual(view?.nodes.keys.sorted(), ["n1", "n9"])
        XCTAssertEqual(view?.reports, [:])
        // A second node reads the same records from the start: the same view, the same skip.
        let n2 = try node("n2")
        XCTAssertEqual(n2.events.wait { $0.lastView?.nodes.count == 3 }?.lastView?.nodes.keys.sorted(), ["n1", "n2", "n9"])
        for log in [n1.log, n2.log] {
            let warnings = log.messages.filter { $0.hasPrefix("[!] Skipping unreadable cluster record") }
            XCTAssertEqual(warnings.filter { $0.contains("/ds-lb/p/nodes/broken") }.count, 1, "\(warnings)")
            XCTAssertEqual(warnings.filter { $0.contains("/ds-lb/p/replicas/broken") }.count, 1, "\(warnings)")
        }
    }

    func testLeavingRemovesTheNodeAndItsReportsAtOnce() throws {
        // A TTL far beyond the wait: only the revoke can explain the keys going.
        let n1 = try node("n1", ttl: .seconds(60))
        let n2 = try node("n2", ttl: .seconds(60))
        report(n1, [report("r1", on: "n1")])
        XCTAssertNotNil(n2.events.wait { $0.lastView?.reports["r1"] != nil && $0.lastView?.nodes.count == 2 })

        let left = expectation(description: "leave is done")
        loop.sync { n1.membership.value.leave { left.fulfill() } }
        wait(for: [left], timeout: 10)
        let view = n2.events.wait(seconds: 10) { $0.lastView?.nodes["n1"] == nil }?.lastView
        XCTAssertEqual(view?.nodes.keys.sorted(), ["n2"])
        XCTAssertEqual(view?.reports, [:])
        XCTAssertTrue(n2.log.waitFor("Node n1 left cluster pool p"))
        XCTAssertEqual(n2.log.events.filter { $0 == "node_lost" }, ["node_lost"])
        XCTAssertEqual(try raw().range(key("/ds-lb/p/"), rangeEnd: ClusterKeys.rangeEnd(ofPrefix: "/ds-lb/p/")).kvs.count, 1)
    }

    func testALostLeaseFencesFirstThenRegistersAgainUnderANewLeaseAndReportsAgain() throws {
        let n1 = try node("n1", ttl: .seconds(5))
        let n2 = try node("n2", ttl: .seconds(30))
        let r1 = report("r1", on: "n1")
        report(n1, [r1])
        XCTAssertNotNil(n2.events.wait { $0.lastView?.reports["r1"] == r1 && $0.lastView?.nodes.count == 2 })
        let old = lease(n1)

        // As if n1 was frozen past its TTL: etcd ends its lease behind its back.
        try raw().revokeLease(old)
        let events = n1.events.wait { events in
            guard let fenced = events.firstIndex(where: { if case .fenced = $0 { true } else { false } }) else { return false }
            return events[fenced...].contains { $0.view?.nodes["n1"].map { $0.lease != old } ?? false }
        }
        XCTAssertNotNil(events, "\(n1.events.all)")
        let all = events ?? []
        let fenced = all.firstIndex { if case .fenced = $0 { true } else { false } } ?? 0
        // Nothing after the fence says n1 still holds the old lease: placement from such a view
        // would hand it back the replicas it just stopped.
        XCTAssertFalse(all[fenced...].contains { $0.view?.nodes["n1"]?.lease == old }, "\(all)")
        let new = lease(n1)
        XCTAssertNotEqual(new, old)
        XCTAssertNotEqual(new, 0)
        XCTAssertTrue(n1.log.waitFor("[!] Lease lost ("))
        XCTAssertEqual(n1.log.messages.filter { $0.contains("Joined cluster pool p as n1") }.count, 2)
        // The reports come back under the new lease, and the other node sees n1 again.
        XCTAssertNotNil(n2.events.wait { $0.lastView?.nodes["n1"]?.lease == new && $0.lastView?.reports["r1"] == r1 })
        XCTAssertEqual(try raw().range(key("/ds-lb/p/replicas/r1")).kvs.first?.lease, new)
    }

    func testANameAnotherLiveNodeHoldsIsRefusedAfterOneTTL() throws {
        // Long enough that only the twin's own TTL of waiting can end this test.
        let n1 = try node("n1", ttl: .seconds(30))
        XCTAssertNotNil(n1.events.wait { $0.lastView?.nodes["n1"] != nil })
        let held = lease(n1)
        let twin = try node("n1", ttl: .seconds(2))
        let refused = twin.events.wait { $0.contains { if case .refused = $0 { true } else { false } } }
        guard case .refused(let reason)? = refused?.last else { return XCTFail("not refused: \(twin.events.all)") }
        XCTAssertTrue(reason.contains("node name n1 is taken by another live node"), reason)
        XCTAssertFalse(twin.events.all.contains { if case .changed = $0 { true } else { false } })
        XCTAssertEqual(lease(twin), 0)
        // The first keeps its name and lease, untouched.
        XCTAssertEqual(lease(n1), held)
        XCTAssertFalse(n1.events.all.contains { if case .fenced = $0 { true } else { false } })
        XCTAssertEqual(try raw().range(key("/ds-lb/p/nodes/n1")).kvs.first?.lease, held)
    }

    func testANameHeldByALeaseNobodyRenewsIsTakenOnceItEnds() throws {
        // A previous run of n1, killed: its key stays until its lease ends.
        let raw = try raw()
        let stale = try raw.grantLease(ttl: 2)
        let record = try JSONEncoder().encode(ClusterNodeRecord(name: "n1", address: "10.0.0.1", lease: stale.id))
        _ = try raw.put(key("/ds-lb/p/nodes/n1"), value: Array(record), lease: stale.id)
        // Waits one of its own TTLs, twice the stale one, before giving up.
        let n1 = try node("n1", ttl: .seconds(4))
        XCTAssertTrue(n1.log.waitFor("is held by another node"))
        let view = n1.events.wait { $0.lastView?.nodes["n1"] != nil }?.lastView
        XCTAssertNotEqual(view?.nodes["n1"]?.lease, stale.id)
        XCTAssertEqual(view?.nodes["n1"]?.lease, lease(n1))
        XCTAssertFalse(n1.events.all.contains { if case .refused = $0 { true } else { false } })
    }

    func testADeleteNeverRemovesTheReportAnotherNodeWroteSince() throws {
        let n1 = try node("n1")
        let n2 = try node("n2")
        report(n1, [report("r1", on: "n1")])
        XCTAssertNotNil(n1.events.wait { $0.lastView?.reports["r1"]?.node == "n1" })
        // r1 moved to n2, which reports it before n1 stops listing it.
        report(n2, [report("r1", on: "n2")])
        XCTAssertNotNil(n1.events.wait { $0.lastView?.reports["r1"]?.node == "n2" })
        report(n1, [])
        report(n1, [report("r2", on: "n1")])
        let view = n1.events.wait { $0.lastView?.reports["r2"] != nil }?.lastView
        XCTAssertEqual(view?.reports["r1"]?.node, "n2")
        XCTAssertEqual(try raw().range(key("/ds-lb/p/replicas/r1")).kvs.first?.lease, lease(n2))
    }

    func testAStoppedStoreIsReportedDownAndOnceBackTheViewsConverge() throws {
        let n1 = try node("n1", ttl: .seconds(10))
        let n2 = try node("n2", ttl: .seconds(10))
        for node in [n1, n2] { XCTAssertNotNil(node.events.wait { $0.lastView?.nodes.count == 2 }) }

        cluster.stop(0)
        for node in [n1, n2] {
            XCTAssertNotNil(node.events.wait { $0.contains(where: \.isStoreDown) }, "\(node.events.all)")
            XCTAssertFalse(loop.sync { node.membership.value.storeUp })
            XCTAssertTrue(node.log.messages.contains { $0.hasPrefix("[!] cluster store unavailable: ") })
            // The last view stays.
            XCTAssertEqual(loop.sync { node.membership.value.view.nodes.count }, 2)
        }
        // Written while etcd is down: it goes out once etcd is back.
        let r1 = report("r1", on: "n2")
        report(n2, [r1])

        try cluster.restart(0)
        for node in [n1, n2] {
            let events = node.events.wait { events in
                guard let up = events.lastIndex(of: .storeUp) else { return false }
                return events[up...].contains { $0.view != nil }
            }
            XCTAssertNotNil(events, "\(node.events.all)")
            XCTAssertTrue(loop.sync { node.membership.value.storeUp })
        }
        XCTAssertNotNil(
            n1.events.wait { $0.lastView?.reports["r1"] == r1 && $0.lastView?.nodes.keys.sorted() == ["n1", "n2"] },
            "\(n1.events.all)")
    }

    func testBadSettingsAreRefusedWithTheValueNamed() throws {
        let endpoints = cluster.endpoints
        let loop: TestLoop = self.loop
        let cases: [(String, String, Duration, String)] = [
            ("n1", "p", .seconds(1), "invalid node lease 1s"),
            ("n1", "p", .milliseconds(2500), "invalid node lease 2.5s"),
            ("a/b", "p", .seconds(5), "invalid node name 'a/b'"),
            ("n1", "", .seconds(5), "invalid pool name ''"),
        ]
        for (name, pool, ttl, expected) in cases {
            XCTAssertThrowsError(
                try loop.keep {
                    try EtcdClusterMembership(
                        loop: loop.loop, endpoints: endpoints, pool: pool, driver: "process", nodeName: name,
                        advertiseAddress: "10.0.0.1", leaseTTL: ttl, logger: CapturedLog().logger)
                }
            ) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}

extension ClusterMembershipEvent {
    fileprivate var view: ClusterView? { if case .changed(let view) = self { view } else { nil } }
    fileprivate var isStoreDown: Bool { if case .storeDown = self { true } else { false } }
}

extension [ClusterMembershipEvent] {
    fileprivate var lastView: ClusterView? { lazy.reversed().compactMap(\.view).first }
}

/// What a membership reported (on the loop), read by the test.
private final class MembershipEvents: Sendable {
    let list = Locked<[ClusterMembershipEvent]>([])

    var all: [ClusterMembershipEvent] { list.withLock { $0 } }
    var lastView: ClusterView? { all.lastView }

    /// Polls until `condition` holds for the events so far (nil after `seconds`).
    func wait(seconds: Double = 20, _ condition: ([ClusterMembershipEvent]) -> Bool) -> [ClusterMembershipEvent]? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let seen = all
            if condition(seen) { return seen }
            usleep(10_000)
        }
        return nil
    }
}
