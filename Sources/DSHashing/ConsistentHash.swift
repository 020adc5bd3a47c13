/// One replica as the hashing layer sees it. `name` is the stable identity every table derives its
/// points from (never the list position, which shifts when another member comes or goes);
/// `number` is the replica's integer id (`server-3` → 3), which only the classic assignment
/// preset uses.
package struct HashMember: Sendable, Hashable {
    package var name: String
    package var number: Int
    package var weight: Int

    package init(name: String, number: Int, weight: Int = 1) {
        self.name = name
        self.number = number
        self.weight = weight
    }
}

/// A consistent-hash table over a fixed membership. Implementations are immutable values, so a
/// built table can be shared by every worker thread without a lock.
///
/// Contract every algorithm keeps:
/// - `members` is the input sorted by name; lookups return indexes into it. The table depends only
///   on the *set* of members, never on the order they were given in or on the process.
/// - `key(_:)` turns the request key's bytes into the integer the table is indexed by.
/// - `forEachCandidate` yields distinct member indexes in preference order (the first is what
///   `lookup` returns); callers stop it by returning false. It is how a down replica is skipped
///   and how bounded loads walks on, without rebuilding the table.
package protocol ConsistentHash: Sendable {
    /// Which `HashAlgorithm` this table implements (`HashTable.init` maps the other way).
    static var algorithm: HashAlgorithm { get }

    init(members: [HashMember])

    var members: [HashMember] { get }

    /// Any thread. Maps request-key bytes to the table's key space.
    func key(_ bytes: UnsafeRawBufferPointer) -> UInt64

    /// Any thread. The preferred member's index, or nil when there are no members.
    func lookup(_ key: UInt64) -> Int?

    /// Any thread. Distinct candidates in preference order until `body` returns false.
    func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool)
}

extension ConsistentHash {
    /// The name users give to `--hash`.
    package static var algorithmName: String { algorithm.rawValue }

    package func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH64.hash(bytes)
    }

    package func key(_ string: String) -> UInt64 {
        var s = string
        return s.withUTF8 { key(UnsafeRawBufferPointer($0)) }
    }

    package func lookup(_ key: UInt64) -> Int? {
        var chosen: Int?
        forEachCandidate(key) { index in
            chosen = index
            return false
        }
        return chosen
    }
}
