import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem

/// An `/add` waiting for its new replicas to pass their first heartbeats. Control loop only.
final class PendingAdd {
    let replicas: [Replica]
    private let done: (AdminAnswer) -> Void
    var deadline: TimerID?
    private var finished = false

    init(replicas: [Replica], done: @escaping (AdminAnswer) -> Void) {
        self.replicas = replicas
        self.done = done
    }

    func replicaCameUp(_ replica: Replica, supervisor: Supervisor) {
        guard !finished, replicas.allSatisfy(\.isUp) else { return }
        finished = true
        supervisor.completeAdd(self, done: done)
    }

    func fail(_ reason: String, supervisor: Supervisor) {
        guard !finished else { return }
        finished = true
        supervisor.abortAdd(self, reason: reason)
        done(.failure(.internalServerError, "<Error> Could not add replicas: \(reason)"))
    }
}

extension Supervisor {
    /// `POST /add`: validates everything, launches the replicas, and answers once all of them
    /// pass their first heartbeats and are published — or stops them all and changes nothing.
    func add(_ command: ScaleCommand, done: @escaping (AdminAnswer) -> Void) {
        let hostnames = command.hostnames ?? []
        let n = command.n ?? max(hostnames.count, 1)
        guard n > 0 else { return done(.failure(.badRequest, "<Error> 'n' must be a positive integer, got \(n)")) }
        guard n <= 1000 else { return done(.failure(.badRequest, "<Error> 'n' is too large: at most 1000 replicas per command")) }
        guard hostnames.count <= n else {
            return done(.failure(.badRequest, "<Error> Length of hostname list is more than newly added instances"))
        }
        switch ReplicaName.check(hostnames, existing: members.map(\.backend.name)) {
        case .invalid(let index)?:
            return done(.failure(.badRequest, "<Error> Invalid hostname '\(hostnames[index])': \(ReplicaName.Problem.rule)"))
        case .repeated(let index, let first)?:
            let also = hostnames[first] == hostnames[index] ? "" : " (as '\(hostnames[first])': names are case-insensitive)"
            return done(.failure(.badRequest, "<Error> Hostname '\(hostnames[index])' is given more than once\(also)"))
        case .taken(let index, let existing)?:
            let also = existing == hostnames[index] ? "" : " as '\(existing)' (names are case-insensitive)"
            return done(.failure(.conflict, "<Error> Hostname '\(hostnames[index])' is already in the pool\(also)"))
        case nil: break
        }
        guard driver.canCreate else {
            return done(.failure(.notImplemented, "<Error> The \(driver.name) driver cannot start replicas"))
        }
        // Names and numbers are chosen before anything starts, so the command is all or nothing.
        var taken = members.map(\.backend)
        var specs: [ReplicaSpec] = []
        for name in hostnames {
            let spec = ReplicaSpec(name: name, number: Self.numberFor(name: name, taken: taken))
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        while specs.count < n {
            let spec = nextGeneratedSpec(taken: taken)
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        var launched: [Replica] = []
        var firstActions: [[ReconcilerAction]] = []
        let now = monotonicNanoseconds()
        for spec in specs {
            do {
                let backend = try driver.launch(spec, previous: nil)
                let (record, actions) = reconciler.launched(
                    backend.name, number: backend.number, address: backend.address, forAdd: true, now: now)
                launched.append(Replica(backend: backend, record: record, inPool: false))
                firstActions.append(actions)
            } catch {
                launched.forEach { driver.kill($0.backend) }
                logger.error("[!] Failed to add \(specs.map(\.name).joined(separator: ", ")): \(error)")
                let status = (error as? DriverError)?.isNameConflict == true ? HTTPStatus.conflict : .internalServerError
                return done(.failure(status, "<Error> Could not start replica \(spec.name): \(error)"))
            }
        }
        let pending = PendingAdd(replicas: launched, done: done)
        pendingAdd = pending
        pending.deadline = loop.schedule(after: config.startTimeout) { [unowned self, weak pending] in
            guard let pending else { return }
            let late = pending.replicas.filter { !$0.isUp }.map(\.backend.name)
            pending.fail(
                "\(late.joined(separator: ", ")) did not pass a heartbeat within \(DurationText.format(self.config.startTimeout))",
                supervisor: self)
        }
        for (replica, actions) in zip(launched, firstActions) { perform(actions, for: replica, now: now) }
    }

    /// Saves the pool with the new replicas, then publishes it; when it cannot be saved, the
    /// new replicas stop and the pool stays as it was (a change a restart would undo is not made).
    func completeAdd(_ pending: PendingAdd, done: @escaping (AdminAnswer) -> Void) {
        if let deadline = pending.deadline { loop.cancel(deadline); pending.deadline = nil }
        let change = "add \(pending.replicas.map(\.backend.name).joined(separator: ", "))"
        let grown = { [unowned self] in members.filter(\.inPool).map(\.backend) + pending.replicas.map(\.backend) }
        saveOrRefuse(grown, change: change) {
            [unowned self] refusal in
            if let refusal {
                abortAdd(pending, reason: "the pool could not be saved")
                return done(refusal)
            }
            done(commitAdd(pending))
        }
    }

    private func commitAdd(_ pending: PendingAdd) -> AdminAnswer {
        pendingAdd = nil
        for replica in pending.replicas {
            replica.inPool = true
            members.append(replica)
        }
        publish()
        for replica in pending.replicas {
            logger.info(
                "[+] Server \(replica.backend.number) added: \(replica.backend.name) at \(replica.backend.address)",
                metadata: event("added", replica.backend))
        }
        return .pool(poolNames())
    }

    func abortAdd(_ pending: PendingAdd, reason: String) {
        if let deadline = pending.deadline { loop.cancel(deadline) }
        pendingAdd = nil
        for replica in pending.replicas { retire(replica, graceful: false) }
        logger.error("[!] Failed to add \(pending.replicas.map(\.backend.name).joined(separator: ", ")): \(reason)")
    }

    /// `DELETE /rm`: takes the replicas out of the snapshot at once and stops them once every
    /// worker runs a snapshot without them.
    func remove(number: Int, done: @escaping (AdminAnswer) -> Void) {
        guard let replica = members.first(where: { $0.backend.number == number }) else {
            return done(.failure(.notFound, "<Error> No replica with id \(number) in the pool"))
        }
        remove(names: [replica.backend.name], done: done)
    }

    func remove(_ command: ScaleCommand, done: @escaping (AdminAnswer) -> Void) {
        var names = command.hostnames ?? []
        let n = command.n ?? max(names.count, 1)
        guard n > 0 else { return done(.failure(.badRequest, "<Error> 'n' must be a positive integer, got \(n)")) }
        guard names.count <= n else {
            return done(.failure(.badRequest, "<Error> Length of hostname list is more than removable instances"))
        }
        guard n <= members.count else {
            return done(.failure(.badRequest, "<Error> Cannot remove \(n) replicas: the pool has \(members.count)"))
        }
        // Names match members case-insensitively; from here on they are the members' own.
        var seen = Set<String>()
        for (index, name) in names.enumerated() {
            guard seen.insert(ReplicaName.key(name)).inserted else {
                return done(.failure(.badRequest, "<Error> Hostname '\(name)' is given more than once"))
            }
            guard let member = members.first(where: { ReplicaName.same($0.backend.name, name) }) else {
                return done(.failure(.notFound, "<Error> Hostname '\(name)' is not in the pool"))
            }
            names[index] = member.backend.name
        }
        var others = members.filter { !seen.contains(ReplicaName.key($0.backend.name)) }.map(\.backend.name)
        others.shuffle()
        names += others.prefix(n - names.count)
        remove(names: names, done: done)
    }

    private func remove(names chosen: [String], done: @escaping (AdminAnswer) -> Void) {
        let removed = members.filter { chosen.contains($0.backend.name) }
        // Saved first: if the smaller pool cannot be saved, nothing is stopped or unpublished.
        let shrunk = { [unowned self] in members.filter { $0.inPool && !chosen.contains($0.backend.name) }.map(\.backend) }
        saveOrRefuse(shrunk, change: "remove \(removed.map(\.backend.name).joined(separator: ", "))") { [unowned self] refusal in
            if let refusal { return done(refusal) }
            done(commitRemove(removed))
        }
    }

    /// Takes `removed` out of the pool once their removal is saved.
    private func commitRemove(_ removed: [Replica]) -> AdminAnswer {
        for replica in removed { replica.inPool = false }
        let target = publish()
        for replica in removed {
            logger.info(
                "[-] Server \(replica.backend.number) removed: \(replica.backend.name)",
                metadata: event("removed", replica.backend))
        }
        // The names are free at once (a re-add may reuse them); these instances stop later.
        let stoppers = removed.map { driver.retire($0.backend) }
        stopWhenUnused(removed, stoppers: stoppers, generation: target, deadline: monotonicNanoseconds() + 2_000_000_000)
        members.removeAll { member in removed.contains { $0 === member } }
        return .pool(poolNames())
    }

    /// Stops removed replicas once every worker runs a snapshot without them (docs/ARCHITECTURE.md §4), so
    /// no new request reaches a replica that is going away.
    private func stopWhenUnused(_ removed: [Replica], stoppers: [() -> Void], generation target: UInt64, deadline: UInt64) {
        for replica in removed { apply(.removed, to: replica) }
        let drainDeadline = monotonicNanoseconds() + nanoseconds(of: config.drainTimeout)
        let counters = removed.map { metrics.replica($0.backend.name) }
        // Then in-flight requests finish (or --drain-timeout passes) before the replicas stop.
        func drain() {
            if counters.allSatisfy({ $0.inFlight == 0 }) || monotonicNanoseconds() > drainDeadline {
                stoppers.forEach { $0() }
                for replica in removed { apply(.retired, to: replica) }
                return
            }
            loop.schedule(after: .milliseconds(10)) { drain() }
        }
        whenWorkersReach(target, deadline: deadline) { [unowned self] in
            forgetSeries(of: removed.map(\.backend.name))
            drain()
        }
    }
}
