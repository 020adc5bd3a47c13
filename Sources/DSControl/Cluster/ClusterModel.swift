import DSBalancer
import DSHashing

/// Where a cluster keeps its state in etcd, all under `/ds-lb/<pool>/`:
///
/// - `pool`: the desired pool (`EtcdStore`'s document: names, ids, last addresses), written only
///   by transactions that compare the revision they read;
/// - `nodes/<node>`: one live ds-lb node (`ClusterNodeRecord` as JSON), under that node's lease,
///   so it vanishes when the node stops renewing;
/// - `replicas/<name>`: the running instance of one replica (`ReplicaReport` as JSON), written
///   by the node that runs it, under that node's lease.
package enum ClusterKeys {
    package static func prefix(pool: String) -> String { "/ds-lb/\(pool)/" }
    package static func pool(pool: String) -> String { EtcdStore.key(pool: pool) }
    package static func nodesPrefix(pool: String) -> String { "/ds-lb/\(pool)/nodes/" }
    package static func node(_ name: String, pool: String) -> String { nodesPrefix(pool: pool) + name }
    package static func replicasPrefix(pool: String) -> String { "/ds-lb/\(pool)/replicas/" }
    package static func replica(_ name: String, pool: String) -> String { replicasPrefix(pool: pool) + name }

    /// etcd's range end for "every key starting with `prefix`": the prefix with its last byte
    /// incremented.
    package static func rangeEnd(ofPrefix prefix: String) -> [UInt8] {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return bytes
            }
            bytes.removeLast()
        }
        return [0]
    }
}

/// One live node as it registers itself (`nodes/<name>`).
package struct ClusterNodeRecord: Sendable, Equatable, Codable {
    /// `--node-name`.
    package var name: String
    /// `--advertise-address`: where other hosts reach this node's replicas.
    package var address: String
    /// The lease the node's keys live under (hex in etcdctl's output, decimal here).
    package var lease: Int64

    package init(name: String, address: String, lease: Int64) {
        self.name = name
        self.address = address
        self.lease = lease
    }
}

/// One running replica as the node that runs it reports it (`replicas/<name>`): what every
/// node routes by, and what `/status` shows for it through any node.
package struct ReplicaReport: Sendable, Equatable, Codable {
    package var name: String
    package var id: Int
    /// The node that runs it.
    package var node: String
    /// `host:port`, reachable from the other hosts.
    package var host: String
    package var port: UInt16
    /// `up`, `starting` or `down`, as the node that runs it reports it (`Supervisor.reportedState`,
    /// not a `HealthMachine.Status` raw value): only `up` takes requests.
    package var state: String
    package var restarts: Int
    package var failedRestarts: Int
    package var checks: Int
    package var consecutiveFailures: Int
    package var lastCheck: String?
    package var lastCheckCode: String?
    package var lastCheckNanoseconds: UInt64

    package init(
        name: String, id: Int, node: String, host: String, port: UInt16, state: String, restarts: Int = 0,
        failedRestarts: Int = 0, checks: Int = 0, consecutiveFailures: Int = 0, lastCheck: String? = nil,
        lastCheckCode: String? = nil, lastCheckNanoseconds: UInt64 = 0
    ) {
        self.name = name
        self.id = id
        self.node = node
        self.host = host
        self.port = port
        self.state = state
        self.restarts = restarts
        self.failedRestarts = failedRestarts
        self.checks = checks
        self.consecutiveFailures = consecutiveFailures
        self.lastCheck = lastCheck
        self.lastCheckCode = lastCheckCode
        self.lastCheckNanoseconds = lastCheckNanoseconds
    }

    package var backend: Backend { Backend(name: name, number: id, host: host, port: port) }
    package var isUp: Bool { state == "up" }
}

/// The cluster as one node last read it from etcd, all at one etcd revision: the desired pool,
/// the live nodes and the replicas' reports. Every node derives placement and routing from
/// this alone, so two nodes with the same view make the same decisions.
package struct ClusterView: Sendable, Equatable {
    /// The desired pool, in order of addition (nil: the pool key is absent or unreadable).
    package var pool: StoredPool?
    /// Live nodes by name (their lease holds).
    package var nodes: [String: ClusterNodeRecord]
    /// Running replicas by name.
    package var reports: [String: ReplicaReport]
    /// The etcd revision this view is at.
    package var revision: Int64

    package init(
        pool: StoredPool? = nil, nodes: [String: ClusterNodeRecord] = [:], reports: [String: ReplicaReport] = [:],
        revision: Int64 = 0
    ) {
        self.pool = pool
        self.nodes = nodes
        self.reports = reports
        self.revision = revision
    }

    /// The node that is to run replica `name`: rendezvous hashing of the name over the live
    /// nodes (nil when no node is live).
    package func owner(of name: String) -> String? { Placement.owner(of: name, among: nodes.keys) }
}

/// Which node runs which replica: highest random weight (rendezvous) of (replica, node), so it
/// is a function of the two sets alone — every node computes the same answer, and a node that
/// joins or leaves moves only the replicas it wins or held.
package enum Placement {
    package static func owner(of replica: String, among nodes: some Sequence<String>) -> String? {
        var best: (node: String, score: UInt64)?
        let replicaHash = XXH64.hash(replica)
        for node in nodes {
            let score = XXH64.hash(node, seed: replicaHash)
            // Ties (practically never) go to the smaller name, so the answer never depends on order.
            if let current = best, current.score > score || (current.score == score && current.node < node) { continue }
            best = (node, score)
        }
        return best?.node
    }
}

/// What the node's membership tells the supervisor, on the control loop.
package enum ClusterMembershipEvent: Sendable, Equatable {
    /// The view changed (the pool, a node joined or left, a replica's report).
    case changed(ClusterView)
    /// This node's lease is gone (it was stopped or cut off past its TTL): other nodes may
    /// already run its replicas, so it stops every replica it runs now. The membership then
    /// registers again under a new lease and reports `changed`, from which placement gives the
    /// node back its share.
    case fenced(reason: String)
    /// etcd stopped answering (`reason`): the view is the last one read, and writes fail.
    case storeDown(reason: String)
    /// etcd answers again (a `changed` with the current view follows).
    case storeUp
    /// Another live node holds this node's name (it kept its lease past one TTL of waiting): two
    /// nodes of one name would run the same replicas, so this one never joins. The membership
    /// has stopped; the node should exit with `reason`.
    case refused(reason: String)
}

/// This node's presence in the cluster: its registration under a lease kept alive, the watch
/// of everything under `/ds-lb/<pool>/`, and the reports of the replicas it runs. The
/// supervisor owns one in cluster mode. Control thread only; events arrive on the control loop.
package protocol ClusterMembership: AnyObject {
    var nodeName: String { get }
    /// `--advertise-address` (a host, no port).
    var advertiseAddress: String { get }
    /// The last view read (empty before the first read).
    var view: ClusterView { get }
    /// Whether etcd answered the last call.
    var storeUp: Bool { get }
    /// Registers the node, then keeps its lease alive and the view current, reporting to
    /// `handler` until `leave`. Once.
    func start(_ handler: @escaping (ClusterMembershipEvent) -> Void)
    /// The replicas this node runs now, whole: new and changed reports are written under the
    /// node's lease, reports of replicas no longer listed are deleted. Coalesced: a burst of
    /// calls makes one write of the last list.
    func report(_ replicas: [ReplicaReport])
    /// At shutdown: revokes the lease, so the other nodes take over at once instead of after
    /// the TTL. `done` runs on the control loop when etcd answered or gave up.
    func leave(done: @escaping () -> Void)
}
