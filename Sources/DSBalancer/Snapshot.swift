import DSHashing

/// A replica as the data plane sees it: a stable name, its number, where to reach it.
public struct Backend: Sendable, Hashable {
    public let name: String
    public let number: Int
    public let host: String
    public let port: UInt16

    /// `host:port` (`[host]:port` for IPv6), built once: the upstream pool keys its idle
    /// connections by it on every request.
    public let address: String

    public init(name: String, number: Int, host: String, port: UInt16) {
        self.name = name
        self.number = number
        self.host = host
        self.port = port
        address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// An immutable view of the pool: members sorted by name, the hash table built over them, and
/// each member's health (DESIGN.md §3). Built by the supervisor, read by every worker without a
/// lock; the old one is freed when the last worker drops its reference.
public final class Snapshot: Sendable {
    public let generation: UInt64
    /// Sorted by name; index i here is index i in `table.members`.
    public let backends: [Backend]
    public let healthy: [Bool]
    public let table: any ConsistentHash
    public let algorithm: HashAlgorithm

    public init(generation: UInt64, backends: [Backend], healthy: [String: Bool] = [:], algorithm: HashAlgorithm) {
        let sorted = backends.sorted { $0.name < $1.name }
        self.generation = generation
        self.backends = sorted
        self.healthy = sorted.map { healthy[$0.name] ?? true }
        self.algorithm = algorithm
        self.table = algorithm.build(sorted.map { HashMember(name: $0.name, number: $0.number) })
        precondition(table.members.map(\.name) == sorted.map(\.name), "hash table must keep members sorted by name")
    }

    public static func empty(algorithm: HashAlgorithm) -> Snapshot {
        Snapshot(generation: 0, backends: [], algorithm: algorithm)
    }

    public var isEmpty: Bool { backends.isEmpty }

    /// Any thread. The first healthy candidate for the key's bytes, or nil when none is up.
    public func select(keyBytes: UnsafeRawBufferPointer) -> Backend? {
        select(hashedKey: table.key(keyBytes))
    }

    public func select(hashedKey: UInt64) -> Backend? {
        select(hashedKey: hashedKey, excluding: [])
    }

    /// The first healthy candidate whose name is not in `excluded` (failover after a replica
    /// refused the connection): the next distinct replica in the table's order for this key.
    public func select(hashedKey: UInt64, excluding excluded: [String]) -> Backend? {
        var chosen: Int?
        table.forEachCandidate(hashedKey) { index in
            if healthy[index] && (excluded.isEmpty || !excluded.contains(backends[index].name)) {
                chosen = index
                return false
            }
            return true
        }
        return chosen.map { backends[$0] }
    }
}
