import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem

/// An `/add` waiting for its new replicas to pass their first heartbeats (`AddWait` decides
/// when it completes or is given up). Control loop only.
final class PendingAdd {
    let replicas: [Replica]
    private let done: (AdminAnswer) -> Void
    var wait: AddWait
    var deadline: TimerID?

    init(replicas: [Replica], wait: AddWait, done: @escaping (AdminAnswer) -> Void) {
        self.replicas = replicas
        self.wait = wait
        self.done = done
    }

    private var up: Set<String> { Set(replicas.filter(\.isUp).map(\.backend.name)) }

    func replicaCameUp(_ replica: Replica, supervisor: Supervisor) {
        guard wait.cameUp(up: up) else { return }
        supervisor.completeAdd(self, done: done)
    }

    func deadlinePassed(now: UInt64, supervisor: Supervisor) {
        guard let reason = wait.deadlinePassed(now: now, up: up, startTimeout: supervisor.config.startTimeout) else { return }
        abort(reason, supervisor: supervisor)
    }

    func fail(_ reason: String, supervisor: Supervisor) {
        guard let reason = wait.fail(reason) else { return }
        abort(reason, supervisor: supervisor)
    }

    private func abort(_ reason: String, supervisor: Supervisor) {
        supervisor.abortAdd(self, reason: reason)
        done(AddWait.failure(reason).answer)
    }
}

extension Supervisor {
    /// `POST /add`: validates everything, launches the replicas, and answers once all of them
    /// pass their first heartbeats and are published — or stops them all and changes nothing.
    func add(_ command: ScaleCommand, done: @escaping (AdminAnswer) -> Void) {
        let specs: [ReplicaSpec]
        switch PoolReconciler.planAdd(
            command, members: members.map(\.backend), canCreate: driver.canCreate, driverName: driver.name)
        {
        case .success(let planned): specs = planned
        case .failure(let refusal): return done(refusal.answer)
        }
        var launched: [Replica] = []
        var firstActions: [[ReconcilerAction]] = []
        let now = monotonicNanoseconds()
        for spec in specs {
            do {
                let backend = try driver.launch(spec, previous: nil)
                let (record, actions) = reconciler.launched(
                    backend.name, number: backend.number, address: backend.address, forAdd: true, now: now)
                launched.append(Replica(backend: backend, record: record, inPool: false, weight: command.weight ?? 1))
                firstActions.append(actions)
            } catch {
                launched.forEach { driver.kill($0.backend) }
                let (line, refusal) = PoolReconciler.addLaunchFailed(spec, of: specs, error: error)
                logger.error("\(line)")
                return done(refusal.answer)
            }
        }
        let wait = AddWait(names: launched.map(\.backend.name), deadline: now + nanoseconds(of: config.startTimeout))
        let pending = PendingAdd(replicas: launched, wait: wait, done: done)
        pendingAdd = pending
        pending.deadline = loop.schedule(after: config.startTimeout) { [unowned self, weak pending] in
            // The timer fires at or after the deadline; the wait is judged at the deadline itself.
            pending?.deadlinePassed(now: max(monotonicNanoseconds(), wait.deadline), supervisor: self)
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
            logEvent(
                .info, "[+] Server \(replica.backend.number) added: \(replica.backend.name) at \(replica.backend.address)",
                "added", replica.backend)
        }
        return .pool(poolNames())
    }

    func abortAdd(_ pending: PendingAdd, reason: String) {
        if let deadline = pending.deadline { loop.cancel(deadline) }
        pendingAdd = nil
        for replica in pending.replicas { retire(replica, graceful: false) }
        logger.error("[!] Failed to add \(pending.replicas.map(\.backend.name).joined(separator: ", ")): \(reason)")
    }

    /// `PATCH /weight`: saves the pool with the named replicas at the new weight, then publishes
    /// it. Keys move only to or from those replicas (every table keeps churn minimal); at 0 a
    /// replica takes no new keys but keeps its heartbeats and finishes what is in flight.
    func reweight(_ command: ScaleCommand, done: @escaping (AdminAnswer) -> Void) {
        let names: [String]
        let weight: Int
        switch PoolReconciler.planWeight(command, members: members.filter(\.inPool).map(\.backend)) {
        case .success(let plan): (names, weight) = plan
        case .failure(let refusal): return done(refusal.answer)
        }
        let reweighted = { [unowned self] in
            members.filter(\.inPool).map { replica in
                var backend = replica.backend
                if names.contains(backend.name) { backend.weight = weight }
                return backend
            }
        }
        saveOrRefuse(reweighted, change: "set the weight of \(names.joined(separator: ", ")) to \(weight)") {
            [unowned self] refusal in
            if let refusal { return done(refusal) }
            let changed = members.filter { $0.inPool && names.contains($0.backend.name) }
            for replica in changed { replica.weight = weight }
            publish()
            for replica in changed {
                logEvent(
                    .info, "[~] Server \(replica.backend.number) (\(replica.backend.name)) now has weight \(weight)", "weight",
                    replica.backend)
            }
            done(.pool(poolNames()))
        }
    }

    /// `DELETE /rm`: takes the replicas out of the snapshot at once and stops them once every
    /// worker runs a snapshot without them.
    func remove(number: Int, done: @escaping (AdminAnswer) -> Void) {
        switch PoolReconciler.planRemove(number: number, members: members.map(\.backend)) {
        case .success(let names): remove(names: names, done: done)
        case .failure(let refusal): done(refusal.answer)
        }
    }

    func remove(_ command: ScaleCommand, done: @escaping (AdminAnswer) -> Void) {
        switch PoolReconciler.planRemove(command, members: members.map(\.backend.name)) {
        case .success(let names): remove(names: names, done: done)
        case .failure(let refusal): done(refusal.answer)
        }
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
        takeOut(removed, announce: true)
        return .pool(poolNames())
    }

    /// Takes `removed` out of the snapshot now and stops them once no worker routes to them and
    /// their requests in flight finished (a removal, or a replica handed off to another node).
    func takeOut(_ removed: [Replica], announce: Bool) {
        for replica in removed { replica.inPool = false }
        let target = publish()
        for replica in removed where announce {
            logEvent(.info, "[-] Server \(replica.backend.number) removed: \(replica.backend.name)", "removed", replica.backend)
        }
        // The names are free at once (a re-add may reuse them); these instances stop later.
        let stoppers = removed.map { driver.retire($0.backend) }
        stopWhenUnused(
            removed, stoppers: stoppers, generation: target, deadline: monotonicNanoseconds() + Self.removalSwitchTimeout)
        members.removeAll { member in removed.contains { $0 === member } }
    }

    /// Stops removed replicas once every worker runs a snapshot without them (docs/ARCHITECTURE.md §4), so
    /// no new request reaches a replica that is going away.
    private func stopWhenUnused(_ removed: [Replica], stoppers: [() -> Void], generation target: UInt64, deadline: UInt64) {
        for replica in removed { apply(.removed, to: replica) }
        let drainDeadline = monotonicNanoseconds() + nanoseconds(of: config.drainTimeout)
        let counters = removed.map { metrics.replica($0.backend.name) }
        // Then in-flight requests finish (or --drain-timeout passes) before the replicas stop.
        func drain() {
            if PoolReconciler.drainOver(inFlight: counters.map(\.inFlight), now: monotonicNanoseconds(), deadline: drainDeadline)
            {
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
