/// The algorithms `--hash` can select, by the name users type.
///
/// This file is the one place an algorithm is tied to its name (the raw value, which `--hash`,
/// the config file's `hash` key, `/rep`'s `algorithm` and the tables' `algorithmName` all use)
/// and to its table (`HashTable.init`, the only switch over the algorithms); everything else
/// asks here.
///
/// Thread safety: a plain value; `build` returns an immutable table usable from any thread.
package enum HashAlgorithm: String, CaseIterable, Sendable {
    case rendezvous
    case ring
    case maglev
    case assignment

    /// What ds-lb uses without `--hash`: the one that meets the hashing targets for N = 3…100
    /// (balance ≤ 1.05, churn ≤ 1.15 × ideal, lookup ≤ 50 ns, build ≤ 5 ms); see RendezvousTable.
    package static let `default`: HashAlgorithm = .rendezvous

    /// Every name `--hash` accepts, in declaration order, for help texts and error messages.
    package static let names = allCases.map(\.rawValue).joined(separator: ", ")

    /// Builds this algorithm's table over `members` (order does not matter). Supervisor thread:
    /// it allocates and may take milliseconds for large memberships.
    package func build(_ members: [HashMember]) -> any ConsistentHash {
        HashTable(self, members: members).existential
    }

    /// The concrete type, e.g. to read `algorithmName`. An empty table allocates next to nothing.
    package var type: any ConsistentHash.Type {
        Swift.type(of: build([]))
    }
}

/// A table as its concrete type, opened once when it is built.
///
/// Why not `any ConsistentHash` for the data plane: calling a method on an existential stored in
/// a class copies the existential first (the table's value-witness copy, then its destroy), once
/// per request. A switch over the concrete types borrows the stored payload in place, and the
/// algorithms' `@inlinable` lookups inline into the caller's (the lookups here are `@inlinable`
/// too, and the enum and the tables usable from inline, so that holds across modules). No case
/// may hold an existential: that makes the whole enum address-only, and the switch then copies it
/// (value witness) as the existential does. A new `HashAlgorithm` case fails to compile in `init`.
///
/// Thread safety: immutable; every method is any-thread.
@usableFromInline package enum HashTable: Sendable {
    case rendezvous(RendezvousTable)
    case ring(Ring)
    case maglev(Maglev)
    case assignment(Assignment)

    /// Builds `algorithm`'s table over `members` (order does not matter). Supervisor thread.
    ///
    /// `previous`: the table this one replaces, if any. A rendezvous table is then derived from
    /// it when only a member or a weight changed (the same table, built in a fraction of the time:
    /// see `RendezvousTable.init(members:previous:)`); the other algorithms build afresh.
    package init(_ algorithm: HashAlgorithm, members: [HashMember], previous: HashTable? = nil) {
        switch algorithm {
        case .rendezvous:
            if case .rendezvous(let old) = previous {
                self = .rendezvous(RendezvousTable(members: members, previous: old))
            } else {
                self = .rendezvous(RendezvousTable(members: members))
            }
        case .ring: self = .ring(Ring(members: members))
        case .maglev: self = .maglev(Maglev(members: members))
        case .assignment: self = .assignment(Assignment(members: members))
        }
    }

    /// The same table behind the protocol (it shares the storage: nothing is copied).
    package var existential: any ConsistentHash {
        switch self {
        case .rendezvous(let t): return t
        case .ring(let t): return t
        case .maglev(let t): return t
        case .assignment(let t): return t
        }
    }

    /// The three tables without a key of their own use `ConsistentHash`'s default, XXH64 of the
    /// bytes, called here directly: a protocol extension's method cannot be inlined across
    /// modules while the protocol is package access.
    @inlinable @inline(__always)
    package func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        switch self {
        case .rendezvous, .ring, .maglev: return XXH64.hash(bytes)
        case .assignment(let t): return t.key(bytes)
        }
    }

    /// The preferred member (the first `forEachCandidate` yields: the protocol's contract).
    @inlinable @inline(__always)
    package func lookup(_ key: UInt64) -> Int? {
        switch self {
        case .rendezvous(let t): return t.lookup(key)
        case .ring(let t): return t.lookup(key)
        case .maglev(let t): return t.lookup(key)
        case .assignment(let t): return t.lookup(key)
        }
    }

    @inlinable
    package func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        switch self {
        case .rendezvous(let t): t.forEachCandidate(key, body)
        case .ring(let t): t.forEachCandidate(key, body)
        case .maglev(let t): t.forEachCandidate(key, body)
        case .assignment(let t): t.forEachCandidate(key, body)
        }
    }
}
