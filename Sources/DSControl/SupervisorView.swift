import DSHTTP1
import DSProxy
import DSSystem

/// What `/rep`, `/status` and the answers of `/add` and `/rm` show: the pool as the control
/// loop last published it. A value, so a worker answers a read from it on its own thread while
/// the control loop goes on changing its replicas (and is never made to wait for it).
package struct SupervisorView: Sendable {
    package struct ReplicaView: Sendable {
        let name: String
        let id: Int
        let address: String
        let state: String
        /// The driver's fields (`pid`, `container`, …), in the order it gives them.
        let details: [(String, JSONValue)]
        let lastCheck: String?
        let lastCheckCode: String?
        let lastCheckNanoseconds: UInt64
        let checks: Int
        let consecutiveFailures: Int
        let restarts: Int
        let failedRestarts: Int
        let markedDown: Bool
        /// Its weight in the hash table (shown by `/status`, never by `/rep`). Defaulted so a
        /// view built without weights (a pool that has none) shows 1.
        var weight: Int = 1
        /// The data plane's live counters: read when a request renders the view, so requests
        /// served since it was published count. The handle is taken on the control loop, so a
        /// read never registers the series of a replica that has left the pool again.
        let counters: ProxyMetrics.Replica
        /// The node that runs it (cluster mode).
        var node: String? = nil
    }

    /// Cluster mode: this node, the store and the live nodes.
    package struct ClusterStatus: Sendable {
        package struct Node: Sendable {
            let name: String
            let address: String
            let lease: Int64
            /// `live` (its lease holds), or, for this node only, `unregistered` (not in the view
            /// yet, or its lease was lost and it registers again).
            let state: String
            /// The pool's replicas placed on it.
            let replicas: [String]
        }

        let node: String
        let storeUp: Bool
        /// Why the store is down (nil while it answers).
        let storeProblem: String?
        let revision: Int64
        let nodes: [Node]
    }

    package let generation: UInt64
    let algorithm: String
    let driver: String
    /// `monotonicNanoseconds()` when the supervisor was made (uptime is counted at each read).
    let startedAt: UInt64
    let heartbeatInterval: Duration
    /// The replicas in the pool, in order of addition (the order `/rep` lists them in).
    let replicas: [ReplicaView]
    /// Cluster mode only.
    var cluster: ClusterStatus? = nil

    package var poolNames: [String] { replicas.map(\.name) }
}

/// The last `SupervisorView` the control loop published. Any thread reads it; only the
/// control loop replaces it.
package final class PublishedView: Sendable {
    private let current: Locked<SupervisorView>

    init(_ initial: SupervisorView) {
        current = Locked(initial)
    }

    package func latest() -> SupervisorView { current.withLock { $0 } }

    func publish(_ view: SupervisorView) { current.withLock { $0 = view } }
}
