import DSHashing

/// A replica as the data plane sees it: a stable name, its number, where to reach it, and its
/// weight in the hash table.
///
/// Equality and hashing leave `weight` out: they say "the same running instance", which the
/// supervisor and the drivers match events by, and a live weight change must not turn a
/// replica into a stranger to its driver. Code that must notice a weight change compares
/// `weight` as well (the supervisor's republish check does).
package struct Backend: Sendable, Hashable {
    package let name: String
    package let number: Int
    package let host: String
    package let port: UInt16
    /// 0 ... `HashMember.maxWeight`; 0 takes no new keys. The assignment preset ignores it.
    package var weight: Int

    /// `host:port` (`[host]:port` for IPv6), built once: the upstream pool keys its idle
    /// connections by it on every request.
    package let address: String

    package init(name: String, number: Int, host: String, port: UInt16, weight: Int = 1) {
        self.name = name
        self.number = number
        self.host = host
        self.port = port
        self.weight = weight
        address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    package static func == (a: Backend, b: Backend) -> Bool {
        a.name == b.name && a.number == b.number && a.host == b.host && a.port == b.port
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(number)
        hasher.combine(host)
        hasher.combine(port)
    }
}

/// An immutable view of the pool: members sorted by name, the hash table built over them, and
/// each member's health (docs/ARCHITECTURE.md §4). Built by the supervisor, read by every worker
/// without a lock; the old one is freed when the last worker drops its reference.
package final class Snapshot: Sendable {
    package let generation: UInt64
    /// Sorted by name; index i here is index i in `table.members`.
    package let backends: [Backend]
    package let healthy: [Bool]
    package let table: any ConsistentHash
    package let algorithm: HashAlgorithm
    /// `table` opened to its concrete type, for the per-request lookups (see HashTable).
    private let concrete: HashTable
    /// The generation of the snapshot that built `table` (older than `generation` when the table
    /// was carried over from a snapshot with the same members).
    package let tableGeneration: UInt64

    /// `previous`: the snapshot this one replaces. When its members, their weights and the
    /// algorithm are the same — a health change, the most frequent event — its table is shared
    /// rather than built again (a build at N = 1,000 costs milliseconds of the control thread;
    /// the table depends on the members alone, and health is applied at lookup time). When they
    /// differ, the new table is still derived from the old one where the algorithm can (one
    /// replica added, removed or reweighted: see `HashTable.init`).
    package init(
        generation: UInt64, backends: [Backend], healthy: [String: Bool] = [:], algorithm: HashAlgorithm,
        previous: Snapshot? = nil
    ) {
        let sorted = backends.sorted { $0.name < $1.name }
        self.generation = generation
        self.backends = sorted
        self.healthy = sorted.map { healthy[$0.name] ?? true }
        self.algorithm = algorithm
        if let previous, previous.sameTable(algorithm: algorithm, sorted: sorted) {
            concrete = previous.concrete
            tableGeneration = previous.tableGeneration
        } else {
            tableGeneration = generation
            // The assignment preset is the course's fixed formula: weights are not part of it (and
            // bounded loads over it then share caps equally too).
            let weighted = algorithm != .assignment
            concrete = HashTable(
                algorithm,
                members: sorted.map { HashMember(name: $0.name, number: $0.number, weight: weighted ? $0.weight : 1) },
                previous: previous?.concrete)
        }
        table = concrete.existential
        precondition(table.members.map(\.name) == sorted.map(\.name), "hash table must keep members sorted by name")
    }

    /// Whether a table over `sorted` with `algorithm` would be this one's: the same algorithm,
    /// the same members (Backend's == names an instance) and the same weights.
    private func sameTable(algorithm: HashAlgorithm, sorted: [Backend]) -> Bool {
        algorithm == self.algorithm && sorted == backends && sorted.map(\.weight) == backends.map(\.weight)
    }

    package static func empty(algorithm: HashAlgorithm) -> Snapshot {
        Snapshot(generation: 0, backends: [], algorithm: algorithm)
    }

    package var isEmpty: Bool { backends.isEmpty }

    /// Any thread. `table.key(bytes)`: the request key's bytes as the integer the table is
    /// indexed by, without going through the existential.
    package func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        concrete.key(bytes)
    }

    /// Any thread. The first healthy candidate for the key's bytes, or nil when none is up.
    package func select(keyBytes: UnsafeRawBufferPointer) -> Backend? {
        select(hashedKey: concrete.key(keyBytes))
    }

    package func select(hashedKey: UInt64) -> Backend? {
        candidate(hashedKey: hashedKey).map { backends[$0] }
    }

    /// The first healthy candidate whose name is not in `excluded` (failover after a replica
    /// refused the connection): the next distinct replica in the table's order for this key.
    package func select(hashedKey: UInt64, excluding excluded: [String]) -> Backend? {
        candidate(hashedKey: hashedKey, excluding: excluded).map { backends[$0] }
    }

    /// Any thread. Like `select(hashedKey:)`, as an index into `backends` (the data plane keeps
    /// per-replica state in arrays indexed like it).
    package func candidate(hashedKey: UInt64) -> Int? {
        // The table's preferred member is its first candidate (ConsistentHash's contract): while
        // it is up, which is nearly always, no walk is needed.
        if let first = concrete.lookup(hashedKey), healthy[first] { return first }
        return candidate(hashedKey: hashedKey, excluding: [])
    }

    /// Any thread. Like `select(hashedKey:excluding:)`, as an index into `backends`.
    package func candidate(hashedKey: UInt64, excluding excluded: [String]) -> Int? {
        var chosen: Int?
        concrete.forEachCandidate(hashedKey) { index in
            if healthy[index] && (excluded.isEmpty || !excluded.contains(backends[index].name)) {
                chosen = index
                return false
            }
            return true
        }
        return chosen
    }
}
