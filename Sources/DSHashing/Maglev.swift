/// Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
/// NSDI 2016, §3.4): a lookup table of prime size M filled by letting members take turns, each
/// taking the next free slot in its own permutation of the table.
///
/// - Permutation of a member: offset = h₁(name) mod M, skip = h₂(name) mod (M − 1) + 1, entry j is
///   (offset + j·skip) mod M. M prime makes every skip a generator, so the walk visits all slots.
///   h₁, h₂ are XXH64 of the name with two fixed seeds (independent hashes, as §3.4 requires).
/// - Turns: in round r = 1, 2, … a member of weight w takes a turn when ⌊r·w / w_max⌋ grows
///   (Envoy's weighted Maglev does the same proportional schedule); equal weights give the
///   paper's plain round-robin. Members take turns in canonical (name) order.
/// - Lookup is one multiply and one load: slot = ⌊key · M / 2⁶⁴⌋ (Lemire's fast range reduction,
///   no division; it uses the key's high bits, which XXH64 mixes fully).
///
/// Trade-off: balance is near perfect (every member owns ⌊M/N⌋ or ⌈M/N⌉ slots),
/// but a membership change also moves some keys between members that stayed, the more the
/// smaller M is against N (bench/RESULTS.md has the churn per N). The paper's rule of thumb is
/// M > 100·N.
///
/// Thread safety: immutable after `init`; every method is any-thread.
///
/// Usable from inline, like the other tables: `HashTable`'s inlinable lookup reaches into it from
/// the proxy's module, and a package type's inlinable members are emitted into other modules only
/// when the type itself is usable from inline.
@usableFromInline package struct Maglev: ConsistentHash {
    package static let algorithm = HashAlgorithm.maglev

    /// Envoy's default table size, the smallest prime above 2¹⁶.
    package static let defaultTableSize = 65537
    package static let maxWeight = HashMember.maxWeight

    package let members: [HashMember]
    @usableFromInline package let tableSize: Int
    /// `table[s]` is the index into `members` owning slot s. Empty when there are no members.
    @usableFromInline let table: [UInt32]
    /// Members of weight > 0, the only ones that take turns and the only candidates.
    let reachable: Int

    package init(members: [HashMember]) {
        self.init(members: members, tableSize: Maglev.defaultTableSize)
    }

    /// `tableSize` must be a prime (so every skip walks the whole table).
    package init(members: [HashMember], tableSize: Int) {
        precondition(tableSize >= 2 && Maglev.isPrime(tableSize), "Maglev table size must be a prime")
        let sorted = HashMember.canonicalOrder(members)
        self.members = sorted
        self.tableSize = tableSize
        let n = sorted.count
        let weights = sorted.map { HashMember.clampedWeight($0.weight, max: Maglev.maxWeight) }
        reachable = weights.filter { $0 > 0 }.count
        let maxWeight = weights.max() ?? 0
        guard maxWeight > 0 else {
            table = []
            return
        }
        let m = tableSize
        var offset = [Int](repeating: 0, count: n)
        var skip = [Int](repeating: 0, count: n)
        var next = [Int](repeating: 0, count: n) // position in the member's permutation (as a slot)
        for (i, member) in sorted.enumerated() {
            offset[i] = Int(XXH64.hash(member.name, seed: Maglev.offsetSeed) % UInt64(m))
            skip[i] = Int(XXH64.hash(member.name, seed: Maglev.skipSeed) % UInt64(m - 1)) + 1
            next[i] = offset[i]
        }

        let empty = UInt32.max
        var table = [UInt32](repeating: empty, count: m)
        table.withUnsafeMutableBufferPointer { t in
            var filled = 0
            var round = 0
            while true {
                round += 1
                for i in 0..<n {
                    // Proportional schedule: weight w takes ⌊r·w/w_max⌋ − ⌊(r−1)·w/w_max⌋ turns
                    // (none for weight 0).
                    let w = weights[i]
                    if w != maxWeight && (round * w) / maxWeight == ((round - 1) * w) / maxWeight { continue }
                    var s = next[i]
                    while t[s] != empty {
                        s += skip[i]
                        if s >= m { s -= m }
                    }
                    t[s] = UInt32(i)
                    s += skip[i]
                    if s >= m { s -= m }
                    next[i] = s
                    filled += 1
                    if filled == m { return }
                }
            }
        }
        self.table = table
    }

    static let offsetSeed: UInt64 = 0x6D61_676C_6576_3031 // "maglev01"
    static let skipSeed: UInt64 = 0x6D61_676C_6576_3032 // "maglev02"

    /// Trial division; table sizes are at most a few million and this runs once per build.
    package static func isPrime(_ x: Int) -> Bool {
        if x < 2 { return false }
        if x < 4 { return true }
        if x % 2 == 0 { return false }
        var d = 3
        while d * d <= x {
            if x % d == 0 { return false }
            d += 2
        }
        return true
    }

    /// The slot a key maps to: ⌊key · M / 2⁶⁴⌋.
    @inlinable @inline(__always)
    func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(tableSize)).high)
    }

    @inlinable
    package func lookup(_ key: UInt64) -> Int? {
        table.isEmpty ? nil : Int(table[slot(key)])
    }

    /// The key's table entry first, then the owners of the following slots in order, each once.
    /// Consecutive slots belong to unrelated members (each member's slots are spread by its own
    /// skip), so a down member's keys spread over all the others. Any member left after one full
    /// pass (it owns no slot, possible only with extreme weights) comes last, in member order.
    /// Members of weight 0 are never yielded.
    @usableFromInline package func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        let n = members.count
        guard !table.isEmpty else { return }
        let start = slot(key)
        let first = Int(table[start])
        guard body(first), reachable > 1 else { return }
        SeenSet.with(capacity: n) { seen in
            seen.insert(first)
            var yielded = 1
            var s = start
            for _ in 1..<tableSize {
                s += 1
                if s == tableSize { s = 0 }
                let owner = Int(table[s])
                if seen.insert(owner) {
                    guard body(owner) else { return }
                    yielded += 1
                    if yielded == reachable { return }
                }
            }
            for index in 0..<n where members[index].weight > 0 && seen.insert(index) {
                guard body(index) else { return }
            }
        }
    }
}
