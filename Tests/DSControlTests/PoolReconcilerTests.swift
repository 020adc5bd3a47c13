import DSBalancer
import DSHTTP1
import DSHashing
import DSSystem
import Logging
import XCTest

@testable import DSControl

/// The pool-level policies, driven with plain values and a fake clock; the assertions are on
/// what `PoolReconciler` and `AddWait` return.
final class PoolReconcilerTests: XCTestCase {
    private static let second: UInt64 = 1_000_000_000

    private static func config() -> SupervisorConfig {
        var config = SupervisorConfig()
        config.fall = 2
        config.rise = 2
        config.startTimeout = .seconds(5)
        return config
    }

    // MARK: `/add` answered only after the first heartbeat

    func testAddIsAnsweredOnlyOnceEveryNewReplicaPassedItsFirstHeartbeats() {
        let config = Self.config()
        let reconciler = Reconciler(config: config, canCreate: true)
        var now = 1_000 * Self.second
        var records = ["server-4", "server-5"].enumerated().map { index, name in
            reconciler.launched(name, number: 4 + index, address: "127.0.0.1:900\(index)", forAdd: true, now: now).0
        }
        var wait = AddWait(names: records.map(\.name), deadline: now + nanoseconds(of: config.startTimeout))
        var up: Set<String> { Set(records.filter(\.isUp).map(\.name)) }
        XCTAssertFalse(wait.cameUp(up: up), "answered before any heartbeat")

        // The first replica passes `rise` checks, the second one check short of them.
        for index in [0, 1, 0] {
            now += Self.second
            let actions = reconciler.handle(.checked(.l7OK, latency: 1_000), for: &records[index], now: now)
            XCTAssertEqual(actions.contains(.cameUp), records[index].isUp)
            XCTAssertFalse(wait.cameUp(up: up), "answered while server-5 has not come up")
        }
        XCTAssertTrue(records[0].isUp)
        XCTAssertFalse(records[1].isUp)

        now += Self.second
        let actions = reconciler.handle(.checked(.l7OK, latency: 1_000), for: &records[1], now: now)
        XCTAssertTrue(actions.contains(.cameUp))
        XCTAssertTrue(wait.cameUp(up: up), "answered once the last replica came up")
        XCTAssertFalse(wait.cameUp(up: up), "answered twice")
        XCTAssertNil(
            wait.deadlinePassed(now: wait.deadline, up: up, startTimeout: config.startTimeout), "given up after it was answered")
    }

    func testAddIsGivenUpAtItsDeadlineNamingTheLateReplicas() {
        var wait = AddWait(names: ["server-4", "server-5"], deadline: 100 * Self.second)
        XCTAssertNil(wait.deadlinePassed(now: 99 * Self.second, up: ["server-4"], startTimeout: .seconds(5)), "given up early")
        XCTAssertEqual(
            wait.deadlinePassed(now: 100 * Self.second, up: ["server-4"], startTimeout: .seconds(5)),
            "server-5 did not pass a heartbeat within 5s")
        XCTAssertFalse(wait.cameUp(up: ["server-4", "server-5"]), "a given-up add completed")
        XCTAssertEqual(
            AddWait.failure("server-5 did not pass a heartbeat within 5s"),
            Refusal(.internalServerError, "<Error> Could not add replicas: server-5 did not pass a heartbeat within 5s"))
    }

    func testAddIsGivenUpOnceWhenANewReplicaExits() {
        let reconciler = Reconciler(config: Self.config(), canCreate: true)
        var (record, _) = reconciler.launched("server-4", number: 4, address: "127.0.0.1:9004", forAdd: true, now: 0)
        var wait = AddWait(names: ["server-4"], deadline: 5 * Self.second)
        let actions = reconciler.handle(.exited(reason: "exit status 1", duringAdd: true), for: &record, now: Self.second)
        let reasons = actions.compactMap { if case .failAdd(let reason) = $0 { reason } else { nil } }
        XCTAssertEqual(reasons, ["replica server-4 exited during start-up (exit status 1)"])
        XCTAssertEqual(wait.fail(reasons[0]), reasons[0])
        XCTAssertNil(wait.fail("again"), "given up twice")
        XCTAssertNil(wait.deadlinePassed(now: 6 * Self.second, up: [], startTimeout: .seconds(5)))
    }

    func testAddNamesAreChosenBeforeAnythingStartsOrTheCommandIsRefused() {
        let members = [DSBalancerBackend.make("server-1", 1), DSBalancerBackend.make("server-2", 2)]
        func plan(_ command: ScaleCommand, canCreate: Bool = true) -> Result<[ReplicaSpec], Refusal> {
            PoolReconciler.planAdd(command, members: members, canCreate: canCreate, driverName: "static")
        }
        XCTAssertEqual(
            try plan(ScaleCommand(n: 3, hostnames: ["server-7", "web"])).get(),
            [
                ReplicaSpec(name: "server-7", number: 7), ReplicaSpec(name: "web", number: 3),
                ReplicaSpec(name: "server-4", number: 4),
            ])
        XCTAssertEqual(plan(ScaleCommand(n: 0)), .failure(Refusal(.badRequest, "<Error> 'n' must be a positive integer, got 0")))
        XCTAssertEqual(
            plan(ScaleCommand(hostnames: ["Server-2"])),
            .failure(
                Refusal(
                    .conflict, "<Error> Hostname 'Server-2' is already in the pool as 'server-2' (names are case-insensitive)")))
        XCTAssertEqual(
            plan(ScaleCommand(n: 1), canCreate: false),
            .failure(Refusal(.notImplemented, "<Error> The static driver cannot start replicas")))
    }

    // MARK: a driver error

    func testADriverErrorDuringAnAddAnswers409ForSomeoneElsesNameElse500() {
        let specs = [ReplicaSpec(name: "server-4", number: 4), ReplicaSpec(name: "web", number: 5)]
        let conflict = PoolReconciler.addLaunchFailed(
            specs[1], of: specs, error: DriverError("container web belongs to another pool", isNameConflict: true))
        XCTAssertEqual(conflict.log, "[!] Failed to add server-4, web: container web belongs to another pool")
        XCTAssertEqual(
            conflict.refusal, Refusal(.conflict, "<Error> Could not start replica web: container web belongs to another pool"))
        let failed = PoolReconciler.addLaunchFailed(specs[0], of: specs, error: DriverError("no such image"))
        XCTAssertEqual(failed.refusal, Refusal(.internalServerError, "<Error> Could not start replica server-4: no such image"))
    }

    // MARK: `/rm` drain

    func testRemoveChoosesTheNamedMembersThenOthersOrIsRefused() {
        let members = ["server-1", "server-2", "web"]
        let reversed: ([String]) -> [String] = { $0.reversed() }
        XCTAssertEqual(
            try PoolReconciler.planRemove(ScaleCommand(n: 2, hostnames: ["WEB"]), members: members, shuffle: reversed).get(),
            ["web", "server-2"])
        XCTAssertEqual(
            PoolReconciler.planRemove(ScaleCommand(n: 4), members: members),
            .failure(Refusal(.badRequest, "<Error> Cannot remove 4 replicas: the pool has 3")))
        XCTAssertEqual(
            PoolReconciler.planRemove(ScaleCommand(hostnames: ["db"]), members: members),
            .failure(Refusal(.notFound, "<Error> Hostname 'db' is not in the pool")))
        XCTAssertEqual(
            PoolReconciler.planRemove(ScaleCommand(n: 2, hostnames: ["web", "Web"]), members: members),
            .failure(Refusal(.badRequest, "<Error> Hostname 'Web' is given more than once")))
        XCTAssertEqual(
            PoolReconciler.planRemove(number: 2, members: [DSBalancerBackend.make("server-2", 2)]), .success(["server-2"]))
        XCTAssertEqual(
            PoolReconciler.planRemove(number: 9, members: []),
            .failure(Refusal(.notFound, "<Error> No replica with id 9 in the pool")))
    }

    func testARemovedReplicaDrainsUntilItsRequestsFinishOrTheDeadline() {
        let reconciler = Reconciler(config: Self.config(), canCreate: true)
        var (record, _) = reconciler.launched("server-2", number: 2, address: "127.0.0.1:9002", forAdd: false, now: 0)
        _ = reconciler.handle(.removed, for: &record, now: Self.second)
        XCTAssertEqual(record.life, .draining)
        let deadline = 10 * Self.second
        XCTAssertFalse(
            PoolReconciler.drainOver(inFlight: [0, 1], now: 2 * Self.second, deadline: deadline),
            "stopped with a request in flight")
        XCTAssertTrue(PoolReconciler.drainOver(inFlight: [0, 0], now: 2 * Self.second, deadline: deadline))
        XCTAssertTrue(
            PoolReconciler.drainOver(inFlight: [3], now: deadline + 1, deadline: deadline), "waited past --drain-timeout")
        _ = reconciler.handle(.retired, for: &record, now: 3 * Self.second)
        XCTAssertEqual(record.life, .gone)
    }

    // MARK: adoption after a restart of ds-lb

    func testBootstrapRestoresTheSavedPoolAfterTheAdoptedReplicas() {
        let adopted = [DSBalancerBackend.make("server-1", 1)]
        let saved = [DSBalancerBackend.make("server-3", 3), DSBalancerBackend.make("web", 4)]
        XCTAssertEqual(
            PoolReconciler.bootstrap(
                adopted: adopted, stored: StoredPool(replicas: saved, revision: 7), canCreate: true, replicas: 5),
            [.adopt(adopted[0]), .restore(saved[0]), .restore(saved[1])])
    }

    func testBootstrapWithNothingSavedLaunchesNewReplicasBesideTheAdoptedOnes() {
        let adopted = [DSBalancerBackend.make("server-2", 2)]
        XCTAssertEqual(
            PoolReconciler.bootstrap(
                adopted: adopted, stored: StoredPool(replicas: [], revision: 0), canCreate: true, replicas: 2),
            [
                .adopt(adopted[0]), .launch(ReplicaSpec(name: "server-1", number: 1)),
                .launch(ReplicaSpec(name: "server-3", number: 3)),
            ])
        XCTAssertEqual(
            PoolReconciler.bootstrap(adopted: adopted, stored: nil, canCreate: false, replicas: 2), [.adopt(adopted[0])],
            "a driver that creates nothing only adopts")
    }

    // MARK: a store write that lost its race

    func testACommandWhoseWriteLostItsRaceIsRefusedWith409AndTheNextWriteUsesTheNewRevision() {
        var pool = PoolReconciler()
        pool.loaded(StoredPool(replicas: [], revision: 3))
        let actions = pool.written(.failure(.conflict(expected: 3, current: 5)), for: .command(change: "add server-4"))
        let error = PoolStoreError.conflict(expected: 3, current: 5)
        XCTAssertEqual(
            actions,
            [
                .log(.error, "[!] Could not save the pool, so did not add server-4: \(error)"),
                .refuse(
                    Refusal(
                        .conflict,
                        "<Error> Could not save the pool, nothing changed: \(error); send the command again to apply it to the pool as it is now"
                    )),
            ])
        XCTAssertEqual(pool.revision, 5, "the resent command is based on the store's revision")
        XCTAssertEqual(pool.written(.success(6), for: .command(change: "add server-4")), [.proceed])
        XCTAssertEqual(pool.revision, 6)
    }

    func testACommandWhoseWriteFailedIsRefusedWith507WhenFullElse500() {
        var pool = PoolReconciler()
        let full = pool.written(.failure(.outOfSpace("No space left on device")), for: .command(change: "remove web"))
        XCTAssertEqual(
            full.last,
            .refuse(Refusal(.insufficientStorage, "<Error> Could not save the pool, nothing changed: No space left on device")))
        let down = pool.written(.failure(.unreachable("etcd timed out")), for: .command(change: "remove web"))
        XCTAssertEqual(
            down.last, .refuse(Refusal(.internalServerError, "<Error> Could not save the pool, nothing changed: etcd timed out")))
        XCTAssertEqual(pool.revision, 0, "a failed write changes no revision")
    }

    func testAnOwnChangeThatLostItsRaceIsRetriedOnceThenLogged() {
        var pool = PoolReconciler()
        let change = "replacing server-2 with server-4"
        let error = PoolStoreError.conflict(expected: 0, current: 2)
        XCTAssertEqual(
            pool.written(.failure(error), for: .ownChange(change: change, retried: false)),
            [.log(.warning, "[!] Saving the pool after \(change): \(error); saving the running pool over it"), .retry])
        let again = PoolStoreError.conflict(expected: 2, current: 3)
        XCTAssertEqual(
            pool.written(.failure(again), for: .ownChange(change: change, retried: true)),
            [
                .log(
                    .error,
                    "[!] Could not save the pool after \(change): \(again). ds-lb runs the new pool, but a restart would bring back the last one saved"
                )
            ], "retried more than once")
        XCTAssertEqual(pool.revision, 3)
    }

    func testTheInitialPoolNotSavedFailsTheStart() {
        var pool = PoolReconciler()
        let actions = pool.written(.failure(.failed("read-only file system")), for: .initialPool)
        XCTAssertEqual(actions.first, .failStart(.failed("read-only file system")))
    }

    func testAnotherWritersChangeIsLoggedAndOwnWritesAreNot() {
        var pool = PoolReconciler()
        _ = pool.written(.success(4), for: .command(change: "add web"))
        let own = PoolStoreEvent.changed(StoredPool(replicas: [DSBalancerBackend.make("web", 1)], revision: 4))
        XCTAssertEqual(pool.storeChanged(own, location: "state.json"), [])
        let other = PoolStoreEvent.changed(StoredPool(replicas: [], revision: 5))
        XCTAssertEqual(
            pool.storeChanged(other, location: "state.json"),
            [
                .log(
                    .warning,
                    "[!] The pool was changed in state.json by another writer (revision 5, 0 replicas); ds-lb keeps running its pool"
                )
            ])
    }

    // MARK: weights

    private static let weighted = [
        Backend(name: "big", number: 1, host: "127.0.0.1", port: 20001, weight: 4),
        Backend(name: "server-2", number: 2, host: "127.0.0.1", port: 20002),
    ]

    func testWeightChangeNamesMembersInTheirOwnSpelling() throws {
        let plan = try PoolReconciler.planWeight(ScaleCommand(hostnames: ["BIG"], weight: 0), members: Self.weighted).get()
        XCTAssertEqual(plan.names, ["big"])
        XCTAssertEqual(plan.weight, 0)
        let both = try PoolReconciler.planWeight(
            ScaleCommand(hostnames: ["server-2", "big"], weight: 256), members: Self.weighted
        ).get()
        XCTAssertEqual(both.names, ["server-2", "big"])
    }

    func testBadWeightChangesAreRefused() {
        let cases: [(ScaleCommand, HTTPStatus, String)] = [
            (ScaleCommand(hostnames: ["big"], weight: -1), .badRequest, "'weight' must be an integer from 0 to 256, got -1"),
            (ScaleCommand(hostnames: ["big"], weight: 257), .badRequest, "'weight' must be an integer from 0 to 256, got 257"),
            (ScaleCommand(hostnames: ["big"]), .badRequest, "'weight' is missing"),
            (ScaleCommand(weight: 2), .badRequest, "'hostnames' is missing or empty"),
            (ScaleCommand(hostnames: [], weight: 2), .badRequest, "'hostnames' is missing or empty"),
            (ScaleCommand(n: 1, hostnames: ["big"], weight: 2), .badRequest, "/weight takes no 'n'"),
            (ScaleCommand(hostnames: ["big", "Big"], weight: 2), .badRequest, "Hostname 'Big' is given more than once"),
            (ScaleCommand(hostnames: ["small"], weight: 2), .notFound, "Hostname 'small' is not in the pool"),
        ]
        for (command, status, fragment) in cases {
            guard case .failure(let refusal) = PoolReconciler.planWeight(command, members: Self.weighted) else {
                XCTFail("\(command) was accepted")
                continue
            }
            XCTAssertEqual(refusal.status, status, "\(command)")
            XCTAssertTrue(refusal.message.hasPrefix("<Error> ") && refusal.message.contains(fragment), refusal.message)
        }
    }

    /// The rendezvous table builds one virtual member per unit of weight: a pool beyond its
    /// limit is refused rather than silently scaled.
    func testTheWeightsOfThePoolAreBoundedByTheRendezvousTable() {
        let limit = RendezvousTable.maxVirtualMembers
        // 257 × 255 is the limit exactly.
        let many = (1...257).map { Backend(name: "s\($0)", number: $0, host: "127.0.0.1", port: UInt16(20000 + $0), weight: 255) }
        XCTAssertEqual(many.reduce(0) { $0 + $1.weight }, limit)
        XCTAssertNotNil(try? PoolReconciler.planWeight(ScaleCommand(hostnames: ["s1"], weight: 255), members: many).get())
        guard case .failure(let refusal) = PoolReconciler.planWeight(ScaleCommand(hostnames: ["s1"], weight: 256), members: many)
        else { return XCTFail("a total over \(limit) was accepted") }
        XCTAssertEqual(refusal.status, .badRequest)
        XCTAssertTrue(refusal.message.contains("more than \(limit)"), refusal.message)
        XCTAssertNotNil(
            try? PoolReconciler.planAdd(ScaleCommand(n: 1, weight: 0), members: many, canCreate: true, driverName: "process")
                .get())
        guard
            case .failure(let added) = PoolReconciler.planAdd(
                ScaleCommand(n: 1, weight: 1), members: many, canCreate: true, driverName: "process")
        else { return XCTFail("an /add over \(limit) was accepted") }
        XCTAssertTrue(added.message.contains("more than \(limit)"), added.message)
    }

    func testAddChecksItsWeightAndRemoveTakesNone() {
        for weight in [-1, 257] {
            guard
                case .failure(let refusal) = PoolReconciler.planAdd(
                    ScaleCommand(n: 1, weight: weight), members: Self.weighted, canCreate: true, driverName: "process")
            else { XCTFail("/add with weight \(weight) was accepted"); continue }
            XCTAssertEqual(refusal.status, .badRequest)
            XCTAssertEqual(refusal.message, "<Error> 'weight' must be an integer from 0 to 256, got \(weight)")
        }
        XCTAssertEqual(
            try PoolReconciler.planAdd(
                ScaleCommand(n: 1, weight: 0), members: Self.weighted, canCreate: true, driverName: "process"
            ).get().map(\.name), ["server-3"])
        guard case .failure(let refusal) = PoolReconciler.planRemove(ScaleCommand(n: 1, weight: 2), members: ["big"]) else {
            return XCTFail("/rm with a weight was accepted")
        }
        XCTAssertEqual(refusal.status, .badRequest)
    }
}
