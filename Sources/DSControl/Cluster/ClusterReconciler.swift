import DSBalancer

/// What one node does with the replicas it runs for one cluster view.
struct PlacementPlan: Equatable {
    /// Pool replicas placed here that do not run here yet (name, id and last known address):
    /// started under that name and id, so they get their keys back.
    var launch: [Backend] = []
    /// Local replicas no longer in the pool: drained and stopped, as `/rm` does.
    var remove: [String] = []
    /// Local replicas placed on another node now, with that node: stopped once it reports
    /// them up (or after the start timeout), so their keys are never left without a server.
    var handOff: [String: String] = [:]
    /// Local replicas being handed off that are placed here again: kept.
    var takeBack: [String] = []
}

/// A pool write an admin command makes in cluster mode: the whole pool to write (compared with
/// the revision it was planned from) and the replicas it adds or removes.
struct ClusterWritePlan: Equatable {
    var pool: [Backend]
    var added: [String] = []
    var removed: [String] = []
}

/// The decisions of cluster mode (docs/ARCHITECTURE.md §5), beside `PoolReconciler` and the
/// per-replica `Reconciler`: which replicas this node runs for a view, what it routes by, how an
/// admin command becomes a pool write, and how a write that lost its race is retried. Pure:
/// every node that has the same view decides the same; `Supervisor` carries the result out.
enum ClusterReconciler {
    /// The local replicas to start, stop and hand off for `view`. `running`: the replicas this
    /// node runs; `handingOff`: those of them already being handed off. A view without this
    /// node (its registration is not in it yet, or its lease is gone) or without a readable
    /// pool changes nothing: acting on it would stop replicas that are still this node's.
    static func place(view: ClusterView, node: String, running: Set<String>, handingOff: Set<String>) -> PlacementPlan {
        var plan = PlacementPlan()
        guard view.nodes[node] != nil, let pool = view.pool else { return plan }
        let inPool = Set(pool.replicas.map(\.name))
        for replica in pool.replicas where view.owner(of: replica.name) == node {
            if !running.contains(replica.name) {
                plan.launch.append(replica)
            } else if handingOff.contains(replica.name) {
                plan.takeBack.append(replica.name)
            }
        }
        for name in running.sorted() {
            if !inPool.contains(name) {
                plan.remove.append(name)
            } else if !handingOff.contains(name), let owner = view.owner(of: name), owner != node {
                plan.handOff[name] = owner
            }
        }
        return plan
    }

    /// Suspects whose report is still the one they were found unreachable under (a new report:
    /// restarted, moved, or gone with its node's lease, says more than the old suspicion).
    static func stillSuspect(_ suspects: [String: ReplicaReport], view: ClusterView) -> [String: ReplicaReport] {
        suspects.filter { view.reports[$0.key] == $0.value }
    }

    /// A replica handed off may stop once its new owner reports it up, or once it left the pool.
    static func handOffDone(_ name: String, view: ClusterView, node: String) -> Bool {
        guard let pool = view.pool, pool.replicas.contains(where: { $0.name == name }) else { return true }
        guard let report = view.reports[name] else { return false }
        return report.node != node && report.isUp
    }

    /// A replica as this node routes to it.
    struct Local: Equatable {
        var backend: Backend
        var up: Bool
    }

    /// What every node routes by: each replica of the pool, at the address its report gives,
    /// healthy when its report says up. A replica this node runs is taken as it runs here (its
    /// report is this node's own, or not written yet). One with no report (its node died, it
    /// has not started yet) stays in, unhealthy, at its last known address: its keys then go to
    /// the next replica in each key's order without reshuffling the others'. `suspects`: remote
    /// replicas this node found unreachable although reported up (their node died and its lease
    /// has not expired yet): routed around here until their report changes.
    static func routing(
        view: ClusterView, node: String, local: [String: Local], suspects: Set<String> = []
    ) -> (backends: [Backend], healthy: [String: Bool]) {
        var backends: [Backend] = []
        var healthy: [String: Bool] = [:]
        for replica in view.pool?.replicas ?? [] {
            let report = view.reports[replica.name]
            // The pool's id and weight win: a report (or a local instance) from before a re-add or
            // a weight change must not change the key order.
            if let mine = local[replica.name], shownAsLocal(report, node: node) {
                var backend = mine.backend
                backend.weight = replica.weight
                backends.append(backend)
                healthy[replica.name] = mine.up
            } else if let report {
                backends.append(
                    Backend(
                        name: replica.name, number: replica.number, host: report.host, port: report.port, weight: replica.weight))
                healthy[replica.name] = report.isUp && !suspects.contains(replica.name)
            } else {
                backends.append(replica)
                healthy[replica.name] = false
            }
        }
        return (backends.sorted { $0.name < $1.name }, healthy)
    }

    /// Whether a replica this node runs is routed to and shown as it runs here: unless another
    /// node reports it up (it was handed over, and that node's instance now serves its keys).
    static func shownAsLocal(_ report: ReplicaReport?, node: String) -> Bool {
        report == nil || report?.node == node || report?.isUp == false
    }

    /// `POST /add` against the pool as read: the pool with the new replicas appended. New ones
    /// carry their owner's address (port 0: not started yet) as their last known address.
    static func planAdd(
        _ command: ScaleCommand, pool: [Backend], view: ClusterView, fallbackHost: String, canCreate: Bool,
        driverName: String
    ) -> Result<ClusterWritePlan, Refusal> {
        PoolReconciler.planAdd(command, members: pool, canCreate: canCreate, driverName: driverName).map { specs in
            let added = specs.map { spec in
                let host = view.owner(of: spec.name).flatMap { view.nodes[$0]?.address } ?? fallbackHost
                return Backend(name: spec.name, number: spec.number, host: host, port: 0, weight: command.weight ?? 1)
            }
            return ClusterWritePlan(pool: pool + added, added: added.map(\.name))
        }
    }

    /// `PATCH /weight` against the pool as read: the same pool with the named replicas' weight
    /// changed (every node's next snapshot moves keys only to or from them).
    static func planWeight(_ command: ScaleCommand, pool: [Backend]) -> Result<ClusterWritePlan, Refusal> {
        PoolReconciler.planWeight(command, members: pool).map { change in
            let named = Set(change.names)
            return ClusterWritePlan(
                pool: pool.map { entry in
                    var entry = entry
                    if named.contains(entry.name) { entry.weight = change.weight }
                    return entry
                })
        }
    }

    /// `DELETE /rm` (by names or n) against the pool as read.
    static func planRemove(
        _ command: ScaleCommand, pool: [Backend], shuffle: ([String]) -> [String] = { $0.shuffled() }
    ) -> Result<ClusterWritePlan, Refusal> {
        PoolReconciler.planRemove(command, members: pool.map(\.name), shuffle: shuffle).map { removing(Set($0), from: pool) }
    }

    /// `DELETE /rm/<id>` against the pool as read.
    static func planRemove(number: Int, pool: [Backend]) -> Result<ClusterWritePlan, Refusal> {
        PoolReconciler.planRemove(number: number, members: pool).map { removing(Set($0), from: pool) }
    }

    private static func removing(_ names: Set<String>, from pool: [Backend]) -> ClusterWritePlan {
        ClusterWritePlan(
            pool: pool.filter { !names.contains($0.name) }, removed: pool.map(\.name).filter(names.contains))
    }

    /// Most attempts of one admin write that keeps losing its race to other nodes' writes.
    static let maxWriteAttempts = 30

    /// After attempt `attempt` (1-based) lost its race: how long to wait before reading the
    /// pool again (nil: give up). Random (`unit` in 0..<1) so that nodes that lost together do
    /// not collide again, and growing, so a burst of writers spreads out.
    static func retryDelay(afterAttempt attempt: Int, unit: Double) -> Duration? {
        guard attempt < maxWriteAttempts else { return nil }
        let ceiling = min(5 * attempt, 50)
        return .milliseconds(1 + Int(unit * Double(ceiling)))
    }

    /// The reports to give the membership, by name: each of `reports`, except that one whose
    /// only change since it was `sent` is its check count and latency stays as sent. Every
    /// heartbeat changes those two; written each time, they would make one etcd write per
    /// replica per heartbeat and wake every node's watch. They go out with the changes that
    /// matter (state, restarts, the check's verdict, the address).
    static func quieted(_ reports: [ReplicaReport], sent: [String: ReplicaReport]) -> [String: ReplicaReport] {
        var kept: [String: ReplicaReport] = [:]
        for report in reports {
            if let previous = sent[report.name] {
                var current = report
                current.checks = previous.checks
                current.lastCheckNanoseconds = previous.lastCheckNanoseconds
                kept[report.name] = current == previous ? previous : report
            } else {
                kept[report.name] = report
            }
        }
        return kept
    }

    /// The pool's replicas placed on `node` in `view`, in pool order.
    static func placed(on node: String, view: ClusterView) -> [String] {
        (view.pool?.replicas ?? []).map(\.name).filter { view.owner(of: $0) == node }
    }
}
