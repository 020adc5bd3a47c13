import DSHashing

/// A snapshot's hash table as its concrete type, opened once when the snapshot is built.
///
/// Why not `any ConsistentHash`: calling a method on an existential stored in a class copies the
/// existential first (the table's value-witness copy, then its destroy), once per request; perf
/// showed it at ≈ 0.8 % of a worker's CPU. A switch over the concrete types borrows the stored
/// payload in place, and the algorithms' `@inlinable` lookups inline into the snapshot's.
/// `other` keeps a table type added to `HashAlgorithm` without a case here working (slowly).
///
/// Thread safety: immutable; every method is any-thread.
enum HashTable: Sendable {
    case rendezvous(RendezvousTable)
    case ring(Ring)
    case maglev(Maglev)
    case assignment(Assignment)
    case other(any ConsistentHash)

    init(_ table: any ConsistentHash) {
        switch table {
        case let t as RendezvousTable: self = .rendezvous(t)
        case let t as Ring: self = .ring(t)
        case let t as Maglev: self = .maglev(t)
        case let t as Assignment: self = .assignment(t)
        default: self = .other(table)
        }
    }

    @inline(__always)
    func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        switch self {
        case .rendezvous(let t): return t.key(bytes)
        case .ring(let t): return t.key(bytes)
        case .maglev(let t): return t.key(bytes)
        case .assignment(let t): return t.key(bytes)
        case .other(let t): return t.key(bytes)
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
        case .other(let t): return t.lookup(key)
        }
    }

    func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        switch self {
        case .rendezvous(let t): t.forEachCandidate(key, body)
        case .ring(let t): t.forEachCandidate(key, body)
        case .maglev(let t): t.forEachCandidate(key, body)
        case .assignment(let t): t.forEachCandidate(key, body)
        case .other(let t): t.forEachCandidate(key, body)
        }
    }
}
