import DSHashing

/// A snapshot's hash table as its concrete type, opened once when the snapshot is built.
///
/// Why not `any ConsistentHash`: calling a method on an existential stored in a class copies the
/// existential first (the table's value-witness copy, then its destroy), once per request; perf
/// showed it at ≈ 0.8 % of a worker's CPU. A switch over the concrete types borrows the stored
/// payload in place, and the algorithms' `@inlinable` lookups inline into the snapshot's. No
/// case may hold an existential: that makes the whole enum address-only, and the switch then
/// copies it (value witness) just as before. A new `HashAlgorithm` case fails to compile here.
///
/// Thread safety: immutable; every method is any-thread.
enum HashTable: Sendable {
    case rendezvous(RendezvousTable)
    case ring(Ring)
    case maglev(Maglev)
    case assignment(Assignment)

    /// Builds `algorithm`'s table over `members`, as `HashAlgorithm.build` does.
    init(_ algorithm: HashAlgorithm, members: [HashMember]) {
        switch algorithm {
        case .rendezvous: self = .rendezvous(RendezvousTable(members: members))
        case .ring: self = .ring(Ring(members: members))
        case .maglev: self = .maglev(Maglev(members: members))
        case .assignment: self = .assignment(Assignment(members: members))
        }
    }

    /// The same table behind the protocol (it shares the storage: nothing is copied).
    var existential: any ConsistentHash {
        switch self {
        case .rendezvous(let t): return t
        case .ring(let t): return t
        case .maglev(let t): return t
        case .assignment(let t): return t
        }
    }

    @inline(__always)
    func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        switch self {
        case .rendezvous(let t): return t.key(bytes)
        case .ring(let t): return t.key(bytes)
        case .maglev(let t): return t.key(bytes)
        case .assignment(let t): return t.key(bytes)
        }
    }

    /// The preferred member (the first `forEachCandidate` yields: the protocol's contract).
    @inline(__always)
    func lookup(_ key: UInt64) -> Int? {
        switch self {
        case .rendezvous(let t): return t.lookup(key)
        case .ring(let t): return t.lookup(key)
        case .maglev(let t): return t.lookup(key)
        case .assignment(let t): return t.lookup(key)
        }
    }

    func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        switch self {
        case .rendezvous(let t): t.forEachCandidate(key, body)
        case .ring(let t): t.forEachCandidate(key, body)
        case .maglev(let t): t.forEachCandidate(key, body)
        case .assignment(let t): t.forEachCandidate(key, body)
        }
    }
}
