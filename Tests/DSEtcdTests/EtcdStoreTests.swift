import DSBalancer
import DSControl
import DSEtcd
import DSHTTPClient
import DSSystem
import Foundation
import XCTest

final class EtcdStoreTests: EtcdLoopTestCase {
    private func replicas(_ names: String...) -> [Backend] {
        names.enumerated().map { Backend(name: $1, number: $0 + 1, host: "127.0.0.1", port: UInt16(9001 + $0)) }
    }

    /// A store on `loop`, made and loaded there (`load` blocks on a thread of its own).
    private func store(
        _ loop: TestLoop, _ cluster: EtcdCluster, pool: String = "p", timeout: Duration = .seconds(5)
    ) throws -> LoopRef<EtcdStore> {
        try loop.keep {
            try EtcdStore(loop: loop.loop, endpoints: cluster.endpoints, pool: pool, driver: "process", timeout: timeout)
        }
    }

    /// Starts a write on the loop and waits for its completion.
    private func write(
        _ loop: TestLoop, _ store: LoopRef<EtcdStore>, _ backends: [Backend], ifRevision: UInt64
    ) -> Result<UInt64, PoolStoreError> {
        let outcome = Locked<Result<UInt64, PoolStoreError>?>(nil)
        let done = expectation(description: "write completed")
        loop.sync {
            store.value.write(backends, ifRevision: ifRevision) { result in
                outcome.withLock { $0 = result }
                done.fulfill()
            }
        }
        wait(for: [done], timeout: 20)
        return outcome.withLock { $0 } ?? .failure(.failed("no completion"))
    }

    /// Starts `store`'s watch; what it reports is collected.
    private func watch(_ store: LoopRef<EtcdStore>) -> ReportedEvents {
        let reported = ReportedEvents()
        loop.sync { store.value.watch { event in reported.events.withLock { $0.append(event) } } }
        return reported
    }

    func testAWrittenPoolLoadsBackAtEtcdsRevisionInTheStateFileFormat() throws {
        let store = try store(loop, cluster)
        XCTAssertEqual(try store.value.load(), StoredPool(replicas: [], revision: 0))
        let revision = try write(loop, store, replicas("a", "b"), ifRevision: 0).get()

        let raw = try BlockingEtcdClient(endpoints: cluster.endpoints).range(Array("/ds-lb/p/pool".utf8)).kvs
        XCTAssertEqual(raw.first.map { UInt64($0.modRevision) }, revision)
        let document = try StateStore.decode(raw.first?.value ?? [], driver: "process", source: "test")
        XCTAssertEqual(document.replicas, replicas("a", "b"))

        let other = try self.store(loop, cluster)
        XCTAssertEqual(try other.value.load(), StoredPool(replicas: replicas("a", "b"), revision: revision))
        // Another pool's key is another pool.
        XCTAssertEqual(try self.store(loop, cluster, pool: "q").value.load().revision, 0)
    }

    /// Weights travel in the document (Backend's == leaves them out, so they are compared here).
    func testWeightsAreKeptInThePool() throws {
        let store = try store(loop, cluster)
        var pool = replicas("big", "b", "drained")
        pool[0].weight = 4
        pool[2].weight = 0
        _ = try write(loop, store, pool, ifRevision: 0).get()
        XCTAssertEqual(try self.store(loop, cluster).value.load().replicas.map(\.weight), [4, 1, 0])
    }

    func testOfTwoWritersRacingFromTheSameRevisionOneWinsAndTheOtherGetsAConflict() throws {
        let first = try store(loop, cluster)
        let second = try store(loop, cluster)
        let base = try write(loop, first, replicas("a"), ifRevision: 0).get()
        XCTAssertEqual(try first.value.load().revision, base)
        XCTAssertEqual(try second.value.load().revision, base)

        // Both writes are sent before either answers.
        let outcomes = Locked<[String: Result<UInt64, PoolStoreError>]>([:])
        let done = expectation(description: "both writes completed")
        done.expectedFulfillmentCount = 2
        loop.sync {
            for (name, store, pool) in [("first", first, self.replicas("a", "b")), ("second", second, self.replicas("a", "c"))] {
                store.value.write(pool, ifRevision: base) { result in
                    outcomes.withLock { $0[name] = result }
                    done.fulfill()
                }
            }
        }
        wait(for: [done], timeout: 20)
        let results = outcomes.withLock { $0 }
        let winners = results.compactMap { name, result in (try? result.get()).map { (name, $0) } }
        XCTAssertEqual(winners.count, 1, "\(results)")
        guard let (winner, revision) = winners.first, let loser = results.first(where: { $0.key != winner }) else { return }
        XCTAssertEqual(loser.value, .failure(.conflict(expected: base, current: revision)))
        let expected = winner == "first" ? replicas("a", "b") : replicas("a", "c")
        XCTAssertEqual(try first.value.load(), StoredPool(replicas: expected, revision: revision))
    }

    func testTheWatchReportsAWriteByAnotherStore() throws {
        let watcher = try store(loop, cluster)
        let writer = try store(loop, cluster)
        _ = try watcher.value.load()
        let reported = watch(watcher)
        let revision = try write(loop, writer, replicas("x"), ifRevision: 0).get()
        XCTAssertEqual(reported.waitFor(1), [.changed(StoredPool(replicas: replicas("x"), revision: revision))])
        // The watcher can write on from what it was told.
        XCTAssertNoThrow(try write(loop, watcher, replicas("x", "y"), ifRevision: revision).get())
    }

    func testAPoolDeletedByHandIsReportedEmptyAndWrittenAgainFromTheDeleteRevision() throws {
        let store = try store(loop, cluster)
        _ = try store.value.load()
        let written = try write(loop, store, replicas("a"), ifRevision: 0).get()
        let reported = watch(store)
        // As `etcdctl del /ds-lb/p/pool` would.
        let removed = try BlockingEtcdClient(endpoints: cluster.endpoints).txn(
            compare: [], success: [.delete(key: Array(EtcdStore.key(pool: "p").utf8))])
        XCTAssertEqual(reported.waitFor(2).last, .changed(StoredPool(replicas: [], revision: UInt64(removed.revision))))
        XCTAssertGreaterThan(UInt64(removed.revision), written)
        let again = try write(loop, store, replicas("b"), ifRevision: UInt64(removed.revision)).get()
        XCTAssertEqual(try store.value.load(), StoredPool(replicas: replicas("b"), revision: again))
    }

    func testAWatchFromACompactedRevisionReadsThePoolAgainAndWatchesOn() throws {
        let watcher = try store(loop, cluster)
        let writer = try store(loop, cluster)
        _ = try watcher.value.load()
        let first = try write(loop, writer, replicas("a"), ifRevision: 0).get()
        let second = try write(loop, writer, replicas("a", "b"), ifRevision: first).get()
        // etcd forgets the history before `second`: the watcher's next revision is gone.
        let http = try BlockingHTTPClient(address: .tcp(cluster.members[0].endpoint.address), threadName: "etcd-compact")
        let compacted = try http.send(
            HTTPClientRequest(
                method: "POST", target: "/v3/kv/compaction", host: cluster.members[0].endpoint.host,
                body: Array("{\"revision\": \"\(second)\"}".utf8)),
            timeout: .seconds(10))
        XCTAssertEqual(compacted.status, 200)

        let reported = watch(watcher)
        XCTAssertEqual(reported.waitFor(1), [.changed(StoredPool(replicas: replicas("a", "b"), revision: second))])
        let third = try write(loop, writer, replicas("a", "b", "c"), ifRevision: second).get()
        XCTAssertEqual(reported.waitFor(2).last, .changed(StoredPool(replicas: replicas("a", "b", "c"), revision: third)))
    }

    func testAClusterThatIsDownIsUnreachableForLoadAndWrite() throws {
        let store = try store(loop, cluster, timeout: .seconds(1))
        cluster.stopAll()
        XCTAssertThrowsError(try store.value.load()) { error in
            guard case .unreachable = error as? PoolStoreError else { return XCTFail("not unreachable: \(error)") }
        }
        guard case .failure(.unreachable) = write(loop, store, replicas("a"), ifRevision: 0) else {
            return XCTFail("a write to a stopped cluster is not unreachable")
        }
    }

    func testABadPoolNameIsRefused() throws {
        let endpoint = try EtcdEndpoint("http://127.0.0.1:2379")
        let loop: TestLoop = self.loop
        for name in ["", "a/b", "..", "ä"] {
            XCTAssertThrowsError(
                try loop.keep { try EtcdStore(loop: loop.loop, endpoints: [endpoint], pool: name, driver: "process") }
            ) {
                guard case .failed(let text) = $0 as? PoolStoreError else { return XCTFail("pool '\(name)': \($0)") }
                XCTAssertTrue(text.contains("invalid pool name '\(name)'"), text)
            }
        }
    }
}

/// The events a store's watch reported (on the loop), read by the test.
final class ReportedEvents: Sendable {
    let events = Locked<[PoolStoreEvent]>([])

    /// Polls until `count` events came, or 20 s passed: all that came.
    func waitFor(_ count: Int) -> [PoolStoreEvent] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let seen = events.withLock { $0 }
            if seen.count >= count { return seen }
            usleep(10_000)
        }
        return events.withLock { $0 }
    }
}

extension EtcdStoreTests {
    /// `read` (on the loop, what a cluster's admin write plans against) gets the pool another
    /// writer committed, at its revision, and a write against that revision wins.
    func testReadGetsThePoolAsEtcdHoldsItNowAndAWriteAgainstItsRevisionWins() throws {
        let mine = try store(loop, cluster)
        let other = try store(loop, cluster)
        let read = { (store: LoopRef<EtcdStore>) -> Result<StoredPool, PoolStoreError>? in
            let outcome = Locked<Result<StoredPool, PoolStoreError>?>(nil)
            let done = self.expectation(description: "read completed")
            self.loop.sync {
                store.value.read { result in
                    outcome.withLock { $0 = result }
                    done.fulfill()
                }
            }
            self.wait(for: [done], timeout: 20)
            return outcome.withLock { $0 }
        }
        XCTAssertEqual(try read(mine)?.get(), StoredPool(replicas: [], revision: 0))
        let revision = try write(loop, other, replicas("a", "b"), ifRevision: 0).get()
        let current = try XCTUnwrap(read(mine)).get()
        XCTAssertEqual(current, StoredPool(replicas: replicas("a", "b"), revision: revision))
        XCTAssertNoThrow(try write(loop, mine, replicas("a", "b", "c"), ifRevision: current.revision).get())
    }
}
