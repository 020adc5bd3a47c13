import DSBalancer
import DSReactor

/// The supervisor's handle on one replica: its instance, pool membership and the I/O the
/// reconciler's actions run (probe, timers). Its lifecycle, health and repair history are the
/// reconciler's `record`. Control loop only.
final class Replica {
    var backend: Backend {
        didSet {
            record.address = backend.address
            // A driver hands back a new instance (a restart, a new address) at weight 1: the
            // weight belongs to the pool, not to the instance, so it stays.
            backend.weight = weight
        }
    }
    /// Its weight in the hash table (`/add`'s `weight`, `PATCH /weight`, the saved pool).
    var weight: Int {
        didSet { backend.weight = weight }
    }
    var record: ReplicaRecord
    /// Listed by `/rep` and part of the snapshot (false while an `/add` waits for it).
    var inPool: Bool
    var probe: HeartbeatProbe?
    var nextCheck: TimerID?
    var repairTimer: TimerID?
    var startTimer: TimerID?
    /// Its failed-request total (`ProxyMetrics.Replica.failures`) as sampled over the last
    /// `failWindow`, oldest first.
    var failureSamples: [(at: UInt64, total: Int)] = []

    init(backend: Backend, record: ReplicaRecord, inPool: Bool, weight: Int? = nil) {
        self.weight = weight ?? backend.weight
        var backend = backend
        backend.weight = self.weight
        self.backend = backend
        self.record = record
        self.inPool = inPool
    }

    var spec: ReplicaSpec { ReplicaSpec(name: backend.name, number: backend.number) }
    var health: HealthMachine { record.health }
    var isUp: Bool { record.isUp }
    var checks: Int { record.checks }
    var lastLatency: UInt64 { record.lastLatency }
    var restarts: Int { record.restarts }
    var failedRestarts: Int { record.failedRestarts }
    /// Out of rotation for failed requests (passive health), not for failed heartbeats.
    var passiveDown: Bool { record.isMarkedDown }
    var removed: Bool { record.life.isRetired }
}
