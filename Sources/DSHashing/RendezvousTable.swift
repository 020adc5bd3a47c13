/// Rendezvous hashing over a table of small candidate sets ("rendezvous"): HRW (Thaler &
/// Ravishankar, "Using name-based mappings to increase hit rates", 1998) restricted, per key, to
/// the few members that share the key's table cell, so a lookup scores ≈ N/16 members, not N.
///
/// Construction
/// - Every member has HRW seeds derived from its name (one pair per unit of weight: a member of
///   weight w acts as w "virtual members").
/// - The key space is cut into M cells (2¹⁶ by default), grouped into runs of g = 16 consecutive
///   cells. In every group each virtual member occupies exactly one cell, chosen by a hash of its
///   seed and the group number (stratified sampling: exactly M/g cells per member, where an
///   independent coin per cell would add binomial noise to the share).
/// - A key goes to its cell ⌊key·M/2⁶⁴⌋ and takes the highest-scoring virtual member in the
///   smallest aligned block around the cell (1, 2, 4, 8 or 16 cells) that holds anyone; the
///   16-cell block is the whole group, which holds every member, so a lookup always succeeds.
///
/// Why this is the default (issue 4 targets, measured with `HashAnalysis`, i.e. `ds-lb ring`):
/// - Churn is minimal, as for plain HRW and the ring: where a member sits depends only on its own
///   name, so removing x changes the choice only for keys that chose x, and adding y moves only
///   keys that y now wins. No collateral moves (Maglev moves ≈ 1.6× the ideal at N = 100).
/// - Balance: per-key HRW inside a cell splits the cell evenly; what varies is how crowded each
///   member's cells are. Stratification keeps that to ≈ 1 % of the share for N ≤ 100 at
///   M = 2¹⁶ (max/avg ≤ 1.035 over N = 3…100 with 10⁶ keys, sampling noise included). A ring
///   needs ≈ 10⁴ points per member for the same (σ ≈ 1/√V). M = 2¹⁵ is ≈ 5 ns faster per
///   lookup but reached 1.046 at N = 70, too close to the 1.05 target.
/// - Lookup: one fixed-size record read (the cell's candidate list, with the block fallback
///   precomputed into it) and ≈ N/16 score evaluations of one multiply each.
/// - Build: N·M/g hashes, O(N·M/16) — about 0.2 M operations at N = 100.
/// The cost grows with N (≈ 60 candidates per lookup at N = 1000); Maglev stays the O(1) choice
/// for very large pools that can accept its churn.
///
/// The seeds, the cell choice and the score function are part of the routing contract: changing
/// any of them reroutes keys (golden vectors in RendezvousTableTests guard this). The record
/// layout is not: it is only a representation of the candidate sets.
///
/// Thread safety: immutable after `init`; every method is any-thread.
public struct RendezvousTable: ConsistentHash {
    public static let algorithmName = "rendezvous"

    public static let defaultCellCount = 1 << 16
    /// log₂ of the cells per group; each virtual member occupies one cell per group.
    public static let defaultGroupShift = 4
    public static let maxWeight = 256
    /// Virtual members are indexed by UInt16 in the records (and UInt16.max marks overflow).
    public static let maxVirtualMembers = 65535

    public let members: [HashMember]
    public let cellCount: Int
    public let groupShift: Int

    /// Per virtual member v: its HRW seeds at 2v and 2v + 1 (one cache line for both).
    @usableFromInline let seeds: [UInt64]
    /// Per virtual member: the index into `members` it belongs to.
    @usableFromInline let owners: [UInt32]
    /// Cell c's record: entries c·stride ..< (c+1)·stride; the first is the candidate count, then
    /// the candidates' virtual-member indexes, ascending. One of the two arrays is used: bytes when
    /// there are at most 255 virtual members, else UInt16. The stride is the smallest power of two
    /// that holds all but ≤ 1/256 of the cells (16 bytes at N = 100); a fuller cell has the count
    /// `overflowMark` and its list in `overflowEntries`.
    @usableFromInline let records8: [UInt8]
    @usableFromInline let records16: [UInt16]
    @usableFromInline let stride: Int
    /// Overflowing cells, ascending, and where their lists start in `overflowEntries` (one more
    /// start than cells, so list i is overflowStarts[i] ..< overflowStarts[i + 1]).
    @usableFromInline let overflowCells: [Int32]
    @usableFromInline let overflowStarts: [Int32]
    @usableFromInline let overflowEntries: [UInt16]

    public init(members: [HashMember]) {
        self.init(members: members, cellCount: RendezvousTable.defaultCellCount)
    }

    /// `cellCount` must be a positive multiple of the group size 2^groupShift.
    public init(members: [HashMember], cellCount: Int, groupShift: Int = RendezvousTable.defaultGroupShift) {
        precondition(groupShift >= 0 && groupShift < 16, "groupShift out of range")
        precondition(cellCount > 0 && cellCount % (1 << groupShift) == 0,
                     "cellCount must be a positive multiple of the group size")
        let sorted = HashMember.canonicalOrder(members)
        self.members = sorted
        self.cellCount = cellCount
        self.groupShift = groupShift

        var seeds: [UInt64] = []
        var owners: [UInt32] = []
        for (index, member) in sorted.enumerated() {
            let w = HashMember.clampedWeight(member.weight, max: RendezvousTable.maxWeight)
            for t in 0..<UInt64(w) {
                seeds.append(XXH64.hash(member.name, seed: RendezvousTable.seedBase &+ 2 &* t))
                // Odd, so the multiply in `score` is a bijection of its other operand.
                seeds.append(XXH64.hash(member.name, seed: RendezvousTable.seedBase &+ 2 &* t &+ 1) | 1)
                owners.append(UInt32(index))
            }
        }
        precondition(owners.count <= RendezvousTable.maxVirtualMembers, "too many members × weight")
        self.seeds = seeds
        self.owners = owners

        let sets = RendezvousTable.candidateSets(seeds: seeds, cellCount: cellCount, groupShift: groupShift)
        let small = owners.count <= 255
        // Histogram of list lengths → the stride.
        var histogram = [Int](repeating: 0, count: owners.count + 1)
        for c in 0..<cellCount { histogram[sets.count(c)] += 1 }
        var stride = 8
        while true {
            var over = 0
            for k in histogram.indices where k >= stride { over += histogram[k] }
            if over <= cellCount / 256 || stride > owners.count { break }
            stride <<= 1
        }
        self.stride = stride
        var overflowCells: [Int32] = [], overflowStarts: [Int32] = [], overflowEntries: [UInt16] = []
        func build<I: FixedWidthInteger>(_: I.Type) -> [I] {
            var out = [I](repeating: 0, count: cellCount * stride)
            out.withUnsafeMutableBufferPointer { out in
                sets.words.withUnsafeBufferPointer { words in
                    let wordsPerCell = sets.wordsPerCell
                    for c in 0..<cellCount {
                        let count = sets.count(c)
                        if count >= stride {
                            out[c * stride] = RendezvousTable.overflowMark(I.self)
                            overflowCells.append(Int32(c))
                            overflowStarts.append(Int32(overflowEntries.count))
                            overflowEntries.append(contentsOf: sets.list(c).map { UInt16($0) })
                            continue
                        }
                        out[c * stride] = I(count)
                        var j = c * stride + 1
                        for w in 0..<wordsPerCell {
                            var word = words[c * wordsPerCell + w]
                            while word != 0 {
                                out[j] = I(truncatingIfNeeded: w &* 64 &+ word.trailingZeroBitCount)
                                word &= word &- 1
                                j += 1
                            }
                        }
                    }
                }
            }
            overflowStarts.append(Int32(overflowEntries.count))
            return out
        }
        if small {
            records8 = build(UInt8.self)
            records16 = []
        } else {
            records8 = []
            records16 = build(UInt16.self)
        }
        self.overflowCells = overflowCells
        self.overflowStarts = overflowStarts
        self.overflowEntries = overflowEntries
    }

    @inlinable @inline(__always)
    static func overflowMark<I: FixedWidthInteger>(_: I.Type) -> I { I.max }

    static let seedBase: UInt64 = 0x7265_6E64_657A_766F // "rendezvo"

    /// Per-cell candidate bit sets over virtual members (build time only).
    struct CellSets {
        let wordsPerCell: Int
        var words: [UInt64]

        /// Virtual-member indexes in cell c, ascending.
        func list(_ c: Int) -> [Int] {
            var out: [Int] = []
            for w in 0..<wordsPerCell {
                var word = words[c * wordsPerCell + w]
                while word != 0 {
                    out.append(w * 64 + word.trailingZeroBitCount)
                    word &= word - 1
                }
            }
            return out
        }

        func count(_ c: Int) -> Int {
            var k = 0
            for w in 0..<wordsPerCell { k += words[c * wordsPerCell + w].nonzeroBitCount }
            return k
        }
    }

    /// Occupancy (each virtual member in one cell per group), then for every cell the union over
    /// the smallest aligned block around it (1, 2, 4, … cells) that is not empty, which is what a
    /// lookup must choose from. Precomputing the fallback keeps the request path to one record.
    static func candidateSets(seeds: [UInt64], cellCount: Int, groupShift: Int) -> CellSets {
        let virtualCount = seeds.count / 2
        let wordsPerCell = max(1, (virtualCount + 63) / 64)
        var occupied = [UInt64](repeating: 0, count: cellCount * wordsPerCell)
        let groups = cellCount >> groupShift
        occupied.withUnsafeMutableBufferPointer { out in
            for v in 0..<virtualCount {
                let word = v >> 6
                let bit = UInt64(1) << UInt64(v & 63)
                for group in 0..<groups {
                    let c = (group << groupShift) | cellInGroup(seeds[2 * v], group, groupShift)
                    out[c * wordsPerCell + word] |= bit
                }
            }
        }
        var sets = occupied
        guard virtualCount > 0 else { return CellSets(wordsPerCell: wordsPerCell, words: sets) }
        sets.withUnsafeMutableBufferPointer { out in
            occupied.withUnsafeBufferPointer { occ in
                for c in 0..<cellCount {
                    var span = 1
                    while (0..<wordsPerCell).allSatisfy({ out[c * wordsPerCell + $0] == 0 }) {
                        span <<= 1 // ends at the group, which holds every virtual member
                        let first = c & ~(span - 1)
                        for w in 0..<wordsPerCell {
                            var word: UInt64 = 0
                            for k in first..<(first + span) { word |= occ[k * wordsPerCell + w] }
                            out[c * wordsPerCell + w] = word
                        }
                    }
                }
            }
        }
        return CellSets(wordsPerCell: wordsPerCell, words: sets)
    }

    /// The cell (0 ..< 2^groupShift) a virtual member with first seed `seed` occupies in `group`:
    /// the top bits of a SplitMix64 output at a counter derived from the seed and the group.
    @inlinable
    static func cellInGroup(_ seed: UInt64, _ group: Int, _ groupShift: Int) -> Int {
        if groupShift == 0 { return 0 }
        let x = mix(seed &+ (UInt64(truncatingIfNeeded: group) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        return Int(truncatingIfNeeded: x &>> UInt64(64 - groupShift))
    }

    /// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit finalizer, used
    /// to place virtual members in cells.
    @inlinable @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }

    /// HRW score of a virtual member for a key: wyhash's "mum" mix (Wang Yi), the high and low
    /// halves of the 128-bit product (key ⊕ a)·b folded together. One multiply, and every key
    /// bit reaches the result, including the high bits that already chose the cell.
    @inlinable @inline(__always)
    static func score(_ key: UInt64, _ a: UInt64, _ b: UInt64) -> UInt64 {
        let p = (key ^ a).multipliedFullWidth(by: b)
        return p.high ^ p.low
    }

    /// The key's cell, ⌊key·M/2⁶⁴⌋ (Lemire's fast range reduction).
    @inlinable @inline(__always)
    func cell(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(cellCount)).high)
    }

    @inlinable
    public func lookup(_ key: UInt64) -> Int? {
        guard !owners.isEmpty else { return nil }
        let c = cell(key)
        let base = c &* stride
        let v: Int = seeds.withUnsafeBufferPointer { seeds in
            if records16.isEmpty {
                return records8.withUnsafeBufferPointer { records in
                    let count = records[base]
                    if count == RendezvousTable.overflowMark(UInt8.self) { return overflowChoice(key, c, seeds) }
                    return RendezvousTable.choose(key, records, base &+ 1, Int(count), seeds)
                }
            }
            return records16.withUnsafeBufferPointer { records in
                let count = records[base]
                if count == RendezvousTable.overflowMark(UInt16.self) { return overflowChoice(key, c, seeds) }
                return RendezvousTable.choose(key, records, base &+ 1, Int(count), seeds)
            }
        }
        return Int(owners[v])
    }

    /// The rare cell whose list did not fit its record (≤ 1/256 of the cells).
    @usableFromInline
    func overflowChoice(_ key: UInt64, _ c: Int, _ seeds: UnsafeBufferPointer<UInt64>) -> Int {
        var low = 0, high = overflowCells.count
        while low < high {
            let mid = (low + high) / 2
            if Int(overflowCells[mid]) < c { low = mid + 1 } else { high = mid }
        }
        let start = Int(overflowStarts[low])
        let count = Int(overflowStarts[low + 1]) - start
        return overflowEntries.withUnsafeBufferPointer {
            RendezvousTable.choose(key, $0, start, count, seeds)
        }
    }

    /// The highest-scoring of the `count` ≥ 1 candidates at `list[start...]`. One loop over the
    /// count, branch-free maximum; ties keep the lower index (the earlier member in canonical
    /// order).
    @inlinable @inline(__always)
    static func choose<I: FixedWidthInteger>(_ key: UInt64, _ list: UnsafeBufferPointer<I>, _ start: Int,
                                             _ count: Int, _ seeds: UnsafeBufferPointer<UInt64>) -> Int {
        var best = Int(list[start])
        var bestScore = score(key, seeds[2 &* best], seeds[2 &* best &+ 1])
        var j = 1
        while j < count {
            let v = Int(list[start &+ j])
            let s = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
            let better = s > bestScore
            bestScore = better ? s : bestScore
            best = better ? v : best
            j &+= 1
        }
        return best
    }

    /// Preference order = the order lookups would take as the preferred members are removed one by
    /// one: virtual members by (size of the smallest aligned block holding both the key's cell and
    /// theirs, ascending; score, descending). The group-sized block holds everyone, so the walk
    /// covers all members. Cost O(V) per yielded candidate; failover walks stop after one or two.
    public func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        let virtualCount = owners.count
        guard virtualCount > 0 else { return }
        let n = members.count
        let c = cell(key)
        let group = c >> groupShift
        let keyOffset = c & ((1 << groupShift) - 1)
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: virtualCount) { scores in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: virtualCount) { levels in
                for v in 0..<virtualCount {
                    scores[v] = RendezvousTable.score(key, seeds[2 * v], seeds[2 * v + 1])
                    let distance = UInt64(RendezvousTable.cellInGroup(seeds[2 * v], group, groupShift) ^ keyOffset)
                    levels[v] = 64 - distance.leadingZeroBitCount
                }
                SeenSet.with(capacity: virtualCount) { taken in
                    SeenSet.with(capacity: n) { yielded in
                        var remaining = n
                        while remaining > 0 {
                            var best = -1
                            for v in 0..<virtualCount where !taken.contains(v) {
                                if best < 0 || levels[v] < levels[best]
                                    || (levels[v] == levels[best] && scores[v] > scores[best]) {
                                    best = v
                                }
                            }
                            if best < 0 { return }
                            taken.insert(best)
                            let owner = Int(owners[best])
                            if yielded.insert(owner) {
                                guard body(owner) else { return }
                                remaining -= 1
                            }
                        }
                    }
                }
            }
        }
    }
}
