import DSBalancer
import DSHTTP1
import DSHashing
import Logging

/// An admin command refused, or given up, with the answer it gets.
struct Refusal: Error, Equatable {
    let status: HTTPStatus
    let message: String

    init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    var answer: AdminAnswer { .failure(status, message) }
}

/// What the supervisor does after a write of the pool to the store finished.
enum PoolWriteAction: Equatable {
    case log(Logger.Level, String)
    /// Write the running pool again, over the store's new revision (once).
    case retry
    /// Go on with the command (the pool is saved).
    case proceed
    /// Answer the command with this; nothing changes.
    case refuse(Refusal)
    /// The bootstrap cannot go on: the initial pool could not be saved. A store that answers
    /// after the bootstrap returned cannot fail it any more: the `log` beside this is for that.
    case failStart(PoolStoreError)
}

/// Why the pool is written, which decides what a failed write leads to.
enum PoolWritePurpose: Equatable {
    /// Before an admin command changes anything (`change`: "add server-4", for log lines).
    case command(change: String)
    /// After a change the supervisor made on its own (a replacement, a new address).
    case ownChange(change: String, retried: Bool)
    /// The initial pool at bootstrap.
    case initialPool
}

/// How the initial pool is made at bootstrap, in order.
enum BootstrapStep: Equatable {
    /// Run by someone else (a static pool, or containers found running): taken as it is.
    case adopt(Backend)
    /// Saved by an earlier run of ds-lb: launched again under its name, id and address.
    case restore(Backend)
    /// A new replica.
    case launch(ReplicaSpec)
}

/// The pool-level decisions of the control plane (docs/ARCHITECTURE.md §5), beside the
/// per-replica `Reconciler`: which names a command or a replacement gets, what an `/add` or
/// `/rm` is refused with, how the initial pool is made, when a drain is over, and what a write
/// of the desired pool that failed or lost its race leads to. Pure: no I/O and no clock of its
/// own, so each policy is unit-tested with plain values; `Supervisor` carries out the result.
struct PoolReconciler {
    /// The store's revision as this ds-lb last read or wrote it: its next write is a
    /// compare-and-swap against it.
    private(set) var revision: UInt64 = 0

    // MARK: the desired pool

    /// The pool was read (at bootstrap).
    mutating func loaded(_ pool: StoredPool?) { revision = pool?.revision ?? 0 }

    /// A write finished. A lost race leaves the store's revision as the known one, so the next
    /// write (a resent command, a retry) is based on it.
    mutating func written(_ result: Result<UInt64, PoolStoreError>, for purpose: PoolWritePurpose) -> [PoolWriteAction] {
        switch result {
        case .success(let written): revision = written
        case .failure(.conflict(_, let current)): revision = current
        case .failure: break
        }
        guard case .failure(let error) = result else { return [.proceed] }
        switch purpose {
        case .command(let change):
            return [.log(.error, "[!] Could not save the pool, so did not \(change): \(error)"), .refuse(Self.refusal(error))]
        case .ownChange(let change, let retried) where !retried && error.isConflict:
            return [.log(.warning, "[!] Saving the pool after \(change): \(error); saving the running pool over it"), .retry]
        case .ownChange(let change, _):
            // The running pool is right, but a restart of ds-lb would bring back the last saved.
            return [
                .log(
                    .error,
                    "[!] Could not save the pool after \(change): \(error). ds-lb runs the new pool, but a restart would bring back the last one saved"
                )
            ]
        case .initialPool:
            return [
                .failStart(error),
                .log(.error, "[!] Could not save the initial pool: \(error). A restart would bring back the last one saved"),
            ]
        }
    }

    /// A command whose pool could not be saved: 507 when the store is full, 409 when another
    /// writer changed the pool first, else 500.
    static func refusal(_ error: PoolStoreError) -> Refusal {
        switch error {
        case .conflict:
            Refusal(
                .conflict,
                "<Error> Could not save the pool, nothing changed: \(error); send the command again to apply it to the pool as it is now"
            )
        case .outOfSpace:
            Refusal(.insufficientStorage, "<Error> Could not save the pool, nothing changed: \(error)")
        case .failed, .unreachable:
            Refusal(.internalServerError, "<Error> Could not save the pool, nothing changed: \(error)")
        }
    }

    /// A change committed to the store. This ds-lb's own writes are known already; another
    /// writer's is logged (applying it to the running pool is not done yet): the next write of
    /// this ds-lb then loses its race and says so.
    func storeChanged(_ event: PoolStoreEvent, location: String) -> [PoolWriteAction] {
        switch event {
        case .changed(let pool) where pool.revision > revision:
            return [
                .log(
                    .warning,
                    "[!] The pool was changed in \(location) by another writer (revision \(pool.revision), \(pool.replicas.count) replicas); ds-lb keeps running its pool"
                )
            ]
        case .changed:
            return []
        }
    }

    // MARK: bootstrap

    /// The initial pool: the replicas run by someone else, then the saved pool when one was
    /// saved, else `replicas` new ones (with a driver that can create them).
    static func bootstrap(adopted: [Backend], stored: StoredPool?, canCreate: Bool, replicas: Int) -> [BootstrapStep] {
        var steps = adopted.map(BootstrapStep.adopt)
        if let stored, stored.revision > 0, canCreate {
            steps += stored.replicas.map(BootstrapStep.restore)
        } else if canCreate {
            var taken = adopted
            for _ in 0..<replicas {
                let spec = nextGeneratedSpec(taken: taken)
                taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
                steps.append(.launch(spec))
            }
        }
        return steps
    }

    // MARK: names

    /// `POST /add`: the replicas to launch, named and numbered before anything starts so the
    /// command is all or nothing, or why it is refused.
    static func planAdd(
        _ command: ScaleCommand, members: [Backend], canCreate: Bool, driverName: String
    ) -> Result<[ReplicaSpec], Refusal> {
        let hostnames = command.hostnames ?? []
        let n = command.n ?? max(hostnames.count, 1)
        guard n > 0 else { return .failure(Refusal(.badRequest, "<Error> 'n' must be a positive integer, got \(n)")) }
        guard n <= 1000 else {
            return .failure(Refusal(.badRequest, "<Error> 'n' is too large: at most 1000 replicas per command"))
        }
        guard hostnames.count <= n else {
            return .failure(Refusal(.badRequest, "<Error> Length of hostname list is more than newly added instances"))
        }
        if let weight = command.weight {
            if let refusal = checkWeight(weight) ?? checkTotal(members.map(\.weight) + Array(repeating: weight, count: n)) {
                return .failure(refusal)
            }
        }
        switch ReplicaName.check(hostnames, existing: members.map(\.name)) {
        case .invalid(let index)?:
            return .failure(Refusal(.badRequest, "<Error> Invalid hostname '\(hostnames[index])': \(ReplicaName.Problem.rule)"))
        case .repeated(let index, let first)?:
            let also = hostnames[first] == hostnames[index] ? "" : " (as '\(hostnames[first])': names are case-insensitive)"
            return .failure(Refusal(.badRequest, "<Error> Hostname '\(hostnames[index])' is given more than once\(also)"))
        case .taken(let index, let existing)?:
            let also = existing == hostnames[index] ? "" : " as '\(existing)' (names are case-insensitive)"
            return .failure(Refusal(.conflict, "<Error> Hostname '\(hostnames[index])' is already in the pool\(also)"))
        case nil: break
        }
        guard canCreate else {
            return .failure(Refusal(.notImplemented, "<Error> The \(driverName) driver cannot start replicas"))
        }
        var taken = members
        var specs: [ReplicaSpec] = []
        for name in hostnames {
            let spec = ReplicaSpec(name: name, number: numberFor(name: name, taken: taken))
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        while specs.count < n {
            let spec = nextGeneratedSpec(taken: taken)
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        return .success(specs)
    }

    /// The driver could not launch `spec`, one of the replicas of an `/add`: the ones launched
    /// are killed, and the command answers 409 when the name is someone else's, else 500.
    static func addLaunchFailed(_ spec: ReplicaSpec, of specs: [ReplicaSpec], error: any Error) -> (log: String, refusal: Refusal)
    {
        let status = (error as? DriverError)?.isNameConflict == true ? HTTPStatus.conflict : .internalServerError
        return (
            "[!] Failed to add \(specs.map(\.name).joined(separator: ", ")): \(error)",
            Refusal(status, "<Error> Could not start replica \(spec.name): \(error)")
        )
    }

    /// `DELETE /rm?id=<number>`: the name of the replica with that number.
    static func planRemove(number: Int, members: [Backend]) -> Result<[String], Refusal> {
        guard let member = members.first(where: { $0.number == number }) else {
            return .failure(Refusal(.notFound, "<Error> No replica with id \(number) in the pool"))
        }
        return .success([member.name])
    }

    /// `DELETE /rm`: the members' names to remove (the named ones, then others picked by
    /// `shuffle` up to `n`), or why it is refused.
    static func planRemove(
        _ command: ScaleCommand, members: [String], shuffle: ([String]) -> [String] = { $0.shuffled() }
    ) -> Result<[String], Refusal> {
        var names = command.hostnames ?? []
        let n = command.n ?? max(names.count, 1)
        guard command.weight == nil else {
            return .failure(Refusal(.badRequest, "<Error> /rm takes no 'weight'; change weights with PATCH /weight"))
        }
        guard n > 0 else { return .failure(Refusal(.badRequest, "<Error> 'n' must be a positive integer, got \(n)")) }
        guard names.count <= n else {
            return .failure(Refusal(.badRequest, "<Error> Length of hostname list is more than removable instances"))
        }
        guard n <= members.count else {
            return .failure(Refusal(.badRequest, "<Error> Cannot remove \(n) replicas: the pool has \(members.count)"))
        }
        // Names match members case-insensitively; from here on they are the members' own.
        var seen = Set<String>()
        for (index, name) in names.enumerated() {
            guard seen.insert(ReplicaName.key(name)).inserted else {
                return .failure(Refusal(.badRequest, "<Error> Hostname '\(name)' is given more than once"))
            }
            guard let member = members.first(where: { ReplicaName.same($0, name) }) else {
                return .failure(Refusal(.notFound, "<Error> Hostname '\(name)' is not in the pool"))
            }
            names[index] = member
        }
        let others = shuffle(members.filter { !seen.contains(ReplicaName.key($0)) })
        return .success(names + others.prefix(n - names.count))
    }

    // MARK: weights

    /// `PATCH /weight`: the members' names (their own spelling, in the command's order) that get
    /// `command.weight`, or why it is refused. Only the named replicas' keys move.
    static func planWeight(_ command: ScaleCommand, members: [Backend]) -> Result<(names: [String], weight: Int), Refusal> {
        let shape = "a JSON object like {\"hostnames\": [\"S1\"], \"weight\": 2}"
        guard command.n == nil else {
            return .failure(Refusal(.badRequest, "<Error> /weight takes no 'n': name the replicas in 'hostnames'"))
        }
        guard let weight = command.weight else {
            return .failure(Refusal(.badRequest, "<Error> 'weight' is missing: the body must be \(shape)"))
        }
        guard let hostnames = command.hostnames, !hostnames.isEmpty else {
            return .failure(Refusal(.badRequest, "<Error> 'hostnames' is missing or empty: the body must be \(shape)"))
        }
        if let refusal = checkWeight(weight) { return .failure(refusal) }
        var seen = Set<String>()
        var names: [String] = []
        for name in hostnames {
            guard seen.insert(ReplicaName.key(name)).inserted else {
                return .failure(Refusal(.badRequest, "<Error> Hostname '\(name)' is given more than once"))
            }
            guard let member = members.first(where: { ReplicaName.same($0.name, name) }) else {
                return .failure(Refusal(.notFound, "<Error> Hostname '\(name)' is not in the pool"))
            }
            names.append(member.name)
        }
        if let refusal = checkTotal(members.map { seen.contains(ReplicaName.key($0.name)) ? weight : $0.weight }) {
            return .failure(refusal)
        }
        return .success((names, weight))
    }

    /// A weight the admin API refuses, or nil: 0 (no new keys) ... `HashMember.maxWeight`.
    static func checkWeight(_ weight: Int) -> Refusal? {
        guard (0...HashMember.maxWeight).contains(weight) else {
            return Refusal(.badRequest, "<Error> 'weight' must be an integer from 0 to \(HashMember.maxWeight), got \(weight)")
        }
        return nil
    }

    /// The pool's weights would add up to more than the rendezvous table builds members for
    /// (beyond it the table scales every weight down, so shares would no longer be exact).
    static func checkTotal(_ weights: [Int]) -> Refusal? {
        let total = weights.reduce(0, +)
        guard total <= RendezvousTable.maxVirtualMembers else {
            return Refusal(
                .badRequest,
                "<Error> The pool's weights would add up to \(total), more than \(RendezvousTable.maxVirtualMembers); use smaller weights"
            )
        }
        return nil
    }

    /// Removed replicas stop once their requests in flight finished, or at the drain deadline.
    static func drainOver(inFlight: [Int], now: UInt64, deadline: UInt64) -> Bool {
        inFlight.allSatisfy { $0 == 0 } || now > deadline
    }

    /// `server-K` with the smallest K that is neither a member's number nor a member's name,
    /// nor one of `avoiding`.
    static func nextGeneratedSpec(taken: [Backend], avoiding: Set<String> = []) -> ReplicaSpec {
        let k = smallestFreeNumber(taken: taken, avoiding: avoiding)
        return ReplicaSpec(name: "server-\(k)", number: k)
    }

    /// `server-7` is number 7 when free; any other name gets the smallest free number.
    static func numberFor(name: String, taken: [Backend]) -> Int {
        let key = ReplicaName.key(name)
        if key.hasPrefix("server-"), let k = Int(key.dropFirst(7)), k > 0, !taken.contains(where: { $0.number == k }) { return k }
        return smallestFreeNumber(taken: taken)
    }

    private static func smallestFreeNumber(taken: [Backend], avoiding: Set<String> = []) -> Int {
        let numbers = Set(taken.map(\.number))
        let names = Set(taken.map { ReplicaName.key($0.name) }).union(avoiding.map(ReplicaName.key))
        var k = 1
        while numbers.contains(k) || names.contains("server-\(k)") { k += 1 }
        return k
    }
}

/// An `/add` waiting for its new replicas to pass their first heartbeats: it is answered once
/// all of them are up, or given up at its deadline or at the first failure — once.
struct AddWait: Equatable {
    let names: [String]
    /// When it is given up (the start timeout after the launch).
    let deadline: UInt64
    private(set) var finished = false

    init(names: [String], deadline: UInt64) {
        self.names = names
        self.deadline = deadline
    }

    /// One of its replicas came up; true when all of `up` now cover it and it is to complete.
    mutating func cameUp(up: Set<String>) -> Bool {
        guard !finished, names.allSatisfy(up.contains) else { return false }
        finished = true
        return true
    }

    /// Its deadline passed at `now` with only `up` up: the reason it is given up, if it is.
    mutating func deadlinePassed(now: UInt64, up: Set<String>, startTimeout: Duration) -> String? {
        guard now >= deadline else { return nil }
        let late = names.filter { !up.contains($0) }
        return fail("\(late.joined(separator: ", ")) did not pass a heartbeat within \(DurationText.format(startTimeout))")
    }

    /// Given up for `reason` (a replica failed): the reason, unless it finished before.
    mutating func fail(_ reason: String) -> String? {
        guard !finished else { return nil }
        finished = true
        return reason
    }

    /// The answer to an `/add` given up.
    static func failure(_ reason: String) -> Refusal {
        Refusal(.internalServerError, "<Error> Could not add replicas: \(reason)")
    }
}
