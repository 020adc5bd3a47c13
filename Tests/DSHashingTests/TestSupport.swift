import DSHashing

// SplitMix64 comes from DSHashing (deterministic).

/// `server-1 ... server-n`, the names the supervisor gives replicas.
func servers(_ n: Int, from first: Int = 1) -> [HashMember] {
    (first..<(first + n)).map { HashMember(name: "server-\($0)", number: $0) }
}

/// Deterministic pseudo-random 64-bit keys (already in key space: uniform, as `key(_:)` yields).
func randomKeys(_ count: Int, seed: UInt64) -> [UInt64] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.next() }
}

/// Per-member key counts for `keys`.
func counts(_ table: some ConsistentHash, _ keys: [UInt64]) -> [Int] {
    var c = [Int](repeating: 0, count: table.members.count)
    for k in keys { c[table.lookup(k)!] += 1 }
    return c
}

/// max/avg of per-member key counts.
func maxOverAvg(_ c: [Int]) -> Double {
    let total = c.reduce(0, +)
    return Double(c.max() ?? 0) / (Double(total) / Double(c.count))
}

/// Owner names of `keys` in `table`, for comparing tables with different member lists.
func ownerNames(_ table: some ConsistentHash, _ keys: [UInt64]) -> [String] {
    keys.map { table.members[table.lookup($0)!].name }
}

/// All candidates for `key`, in order.
func candidates(_ table: some ConsistentHash, _ key: UInt64) -> [Int] {
    var out: [Int] = []
    table.forEachCandidate(key) {
        out.append($0); return true
    }
    return out
}

/// Fraction of `keys` whose owner differs between two tables.
func movedFraction(_ a: some ConsistentHash, _ b: some ConsistentHash, _ keys: [UInt64]) -> Double {
    var moved = 0
    for k in keys where a.members[a.lookup(k)!].name != b.members[b.lookup(k)!].name { moved += 1 }
    return Double(moved) / Double(keys.count)
}
