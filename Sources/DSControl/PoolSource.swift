import DSBalancer

/// Where the pool the supervisor routes by comes from and where admin commands change it:
/// this node's own replicas and store (`LocalPool`), or the cluster's pool in etcd placed over
/// the live nodes (`ClusterMode`). The supervisor asks its source at each step instead of
/// branching on cluster mode. Control loop only.
protocol PoolSource: AnyObject {
    /// Launches or joins the initial pool (`Supervisor.bootstrap`).
    func bootstrap(_ supervisor: Supervisor, replicas: Int) throws
    /// Whether the initial pool is there, beyond this node's replicas passing their first checks.
    func initialPoolSettled(_ supervisor: Supervisor) -> Bool
    /// Runs an admin command; `reply` gets its answer once the view and the workers show it.
    func perform(_ command: AdminCommand, on supervisor: Supervisor, reply: @escaping @Sendable (AdminAnswer) -> Void)
    /// What the workers route by.
    func routing(_ supervisor: Supervisor) -> (backends: [Backend], healthy: [String: Bool])
    /// The pool's names, in order (the body of the answer to `/add` and `/rm`).
    func poolNames(_ supervisor: Supervisor) -> [String]
    /// Names routed to though no replica of this node runs them (their `/metrics` series stay).
    func namesRoutedElsewhere(_ supervisor: Supervisor) -> [String]
    /// The replicas `/rep` and `/status` show, and the cluster part of `/status`.
    func replicaViews(_ supervisor: Supervisor) -> [SupervisorView.ReplicaView]
    func clusterStatus(_ supervisor: Supervisor) -> SupervisorView.ClusterStatus?
    /// systemd's `STATUS=` line.
    func statusLine(_ supervisor: Supervisor, generation: UInt64) -> String
    /// A worker could not reach `backend`, which no replica of this node is.
    func unreachableElsewhere(_ backend: Backend, supervisor: Supervisor)
    /// Whether changes the supervisor makes on its own (a replacement, a new address) are saved.
    var savesOwnChanges: Bool { get }
}

/// One ds-lb's own pool: the replicas it runs, kept in its `poolStore`.
final class LocalPool: PoolSource {
    func bootstrap(_ supervisor: Supervisor, replicas: Int) throws { try supervisor.bootstrapLocalPool(replicas: replicas) }

    func initialPoolSettled(_ supervisor: Supervisor) -> Bool { true }

    func perform(_ command: AdminCommand, on supervisor: Supervisor, reply: @escaping @Sendable (AdminAnswer) -> Void) {
        supervisor.enqueue(command, reply: reply)
    }

    func routing(_ supervisor: Supervisor) -> (backends: [Backend], healthy: [String: Bool]) {
        let pool = supervisor.members.filter(\.inPool)
        var health: [String: Bool] = [:]
        for replica in pool { health[replica.backend.name] = replica.isUp }
        return (pool.map(\.backend), health)
    }

    func poolNames(_ supervisor: Supervisor) -> [String] { supervisor.members.filter(\.inPool).map(\.backend.name) }

    func namesRoutedElsewhere(_ supervisor: Supervisor) -> [String] { [] }

    func replicaViews(_ supervisor: Supervisor) -> [SupervisorView.ReplicaView] {
        supervisor.members.filter(\.inPool).map { supervisor.replicaView($0) }
    }

    func clusterStatus(_ supervisor: Supervisor) -> SupervisorView.ClusterStatus? { nil }

    func statusLine(_ supervisor: Supervisor, generation: UInt64) -> String {
        let pool = supervisor.members.filter(\.inPool)
        return "\(pool.filter(\.isUp).count)/\(pool.count) replicas up, ring generation \(generation)"
    }

    func unreachableElsewhere(_ backend: Backend, supervisor: Supervisor) {}

    var savesOwnChanges: Bool { true }
}

extension ClusterMode: PoolSource {
    func bootstrap(_ supervisor: Supervisor, replicas: Int) throws { try supervisor.bootstrapCluster(self, replicas: replicas) }

    func initialPoolSettled(_ supervisor: Supervisor) -> Bool { supervisor.clusterSettled(self) }

    func perform(_ command: AdminCommand, on supervisor: Supervisor, reply: @escaping @Sendable (AdminAnswer) -> Void) {
        supervisor.clusterPerform(command, cluster: self, reply: reply)
    }

    func routing(_ supervisor: Supervisor) -> (backends: [Backend], healthy: [String: Bool]) {
        supervisor.clusterRouting(self)
    }

    func poolNames(_ supervisor: Supervisor) -> [String] { view.pool?.replicas.map(\.name) ?? [] }

    /// A replica that left this node (handed off) is still routed to, elsewhere.
    func namesRoutedElsewhere(_ supervisor: Supervisor) -> [String] { view.pool?.replicas.map(\.name) ?? [] }

    func replicaViews(_ supervisor: Supervisor) -> [SupervisorView.ReplicaView] { supervisor.clusterReplicaViews(self) }

    func clusterStatus(_ supervisor: Supervisor) -> SupervisorView.ClusterStatus? { supervisor.clusterStatus(self) }

    func statusLine(_ supervisor: Supervisor, generation: UInt64) -> String {
        let healthy = supervisor.clusterRouting(self).healthy
        return
            "\(healthy.values.filter { $0 }.count)/\(healthy.count) replicas up, ring generation \(generation); \(supervisor.clusterStatusLine(self))"
    }

    func unreachableElsewhere(_ backend: Backend, supervisor: Supervisor) { supervisor.remoteUnreachable(backend, cluster: self) }

    /// A cluster's pool holds names and ids; where each replica runs is in its node's report.
    var savesOwnChanges: Bool { false }
}
