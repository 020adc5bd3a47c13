import DSBalancer
import DSReactor

/// The supervisor's record of one replica. Control loop only.
final class Replica {
    var backend: Backend
    var health: HealthMachine
    /// Listed by `/rep` and part of the snapshot (false while an `/add` waits for it).
    var inPool: Bool
    var probe: HeartbeatProbe?
    var nextCheck: TimerID?
    var lastLatency: UInt64 = 0
    var checks = 0
    /// Successful restarts.
    var restarts = 0
    /// Restarts in a row that did not bring it back.
    var failedRestarts = 0
    var backoff: Duration = .zero
    /// A restarted instance is waiting to pass its checks.
    var restarting = false
    /// Started in place of a failed replica (`--on-failure replace`): that replica's name, until
    /// this one first comes up.
    var replacing: String?
    /// Started in place of a failed replica: like a restarted one, it is flapping when it fails
    /// again soon after it came up.
    var isReplacement = false
    /// A restart is scheduled (backoff) or in progress.
    var repairPending: TimerID?
    var startDeadline: TimerID?
    var upSince: UInt64?
    var removed = false
    /// Out of rotation for failed requests (passive health), not for failed heartbeats.
    var passiveDown = false
    /// Its failed-request total (`ProxyMetrics.Replica.failures`) as sampled over the last
    /// `failWindow`, oldest first.
    var failureSamples: [(at: UInt64, total: Int)] = []

    init(backend: Backend, health: HealthMachine, inPool: Bool) {
        self.backend = backend
        self.health = health
        self.inPool = inPool
    }

    var spec: ReplicaSpec { ReplicaSpec(name: backend.name, number: backend.number) }
    var isUp: Bool { health.status == .up }
}
