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
/// - Lookup: one record read (the cell's candidate list, with the block fallback precomputed into
///   it) and ≈ N/16 score evaluations of one multiply each.
/// - Build: N·M/g placements (0.4 M hashes at N = 100, ≈ 3 ms), one group at a time.
///
/// Large N. The cost grows with N: at N = 1000 a lookup scores ≈ 62 candidates from 8 MB of lists
/// (≈ 200 ns on the bench machine, against the issue's ×2 bound of 100 ns) and a build makes 4 M
/// placements (≈ 13 ms against 10 ms; hashing the placements is about half of it). Other
/// parameters would meet those bounds at N = 1000 (M = 2¹⁷, g = 2⁷: ≈ 80 ns, ≈ 5 ms, table-only
/// max/avg 1.045) but not the N = 100 balance target (the same table: 1.056), and M and g are part
/// of the routing contract: choosing them by N would re-place every member whenever a membership
/// change crossed a threshold, moving nearly every key at exactly that step, the opposite of
/// minimal disruption. So they stay fixed at what N = 3…100 needs; Maglev stays the O(1) choice
/// for very large pools that can accept its churn.
///
/// The seeds, M, g, the cell choice and the score function are part of the routing contract: changing
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
    /// Two representations of the same per-cell candidate lists (virtual-member indexes,
    /// ascending), chosen by size; neither is part of the routing contract.
    ///
    /// Narrow (at most 255 virtual members, N ≤ 100 in the range): cell c's record is
    /// `records8[c·stride ..< (c+1)·stride]`, the candidate count then the indexes as bytes. The
    /// stride is the smallest power of two that holds all but ≤ 1/256 of the cells (16 bytes at
    /// N = 100), so a lookup reads one cache line; a fuller cell has the count `overflowMark` and
    /// its list in `overflowEntries`.
    ///
    /// Wide (more virtual members): cell c's list is `entries16[starts[c] ..< starts[c + 1]]`.
    /// A fixed stride would have to hold the longest lists (≈ 84 entries at N = 1000 for a mean of
    /// 62.5): 16 MB of mostly padding instead of 8 MB, which cost a cache miss per lookup and
    /// page faults at build time.
    @usableFromInline let records8: [UInt8]
    @usableFromInline let stride: Int
    /// Overflowing cells, ascending, and where their lists start in `overflowEntries` (one more
    /// start than cells, so list i is overflowStarts[i] ..< overflowStarts[i + 1]). Narrow only.
    @usableFromInline let overflowCells: [Int32]
    @usableFromInline let overflowStarts: [Int32]
    @usableFromInline let overflowEntries: [UInt16]
    /// Wide only (empty when narrow).
    @usableFromInline let starts: [UInt32]
    @usableFromInline let entries16: [UInt16]

    /// Virtual-member count up to which the narrow (byte) records are used; 255 is their
    /// overflow mark.
    public static let narrowLimit = 255

    public init(members: [HashMember]) {
        self.init(members: members, cellCount: RendezvousTable.defaultCellCount)
    }

    /// `cellCount` must be a positive multiple of the group size 2^groupShift.
    public init(members: [HashMember], cellCount: Int, groupShift: Int = RendezvousTable.defaultGroupShift) {
        precondition(groupShift >= 0 && groupShift < 16, "groupShift out of range")
        precondition(cellCount > 0 && cellCount % (1 << groupShift) == 0,
                     "cellCount must be a positive multiple of the group size")
        precondition(cellCount <= Int(Int32.max), "cellCount out of range")
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

        let lists = RendezvousTable.candidateLists(seeds: seeds, cellCount: cellCount, groupShift: groupShift)
        guard owners.count <= RendezvousTable.narrowLimit else {
            starts = lists.starts
            entries16 = lists.entries
            records8 = []
            stride = 0
            overflowCells = []
            overflowStarts = []
            overflowEntries = []
            return
        }
        starts = []
        entries16 = []

        // Histogram of list lengths → the stride.
        var histogram = [Int](repeating: 0, count: owners.count + 1)
        for c in 0..<cellCount { histogram[lists.count(c)] += 1 }
        var stride = 8
        while true {
            var over = 0
            for k in histogram.indices where k >= stride { over += histogram[k] }
            if over <= cellCount / 256 || stride > owners.count { break }
            stride <<= 1
        }
        self.stride = stride
        var overflowCells: [Int32] = [], overflowStarts: [Int32] = [], overflowEntries: [UInt16] = []
        var records = [UInt8](repeating: 0, count: cellCount * stride)
        records.withUnsafeMutableBufferPointer { out in
            lists.entries.withUnsafeBufferPointer { entries in
                for c in 0..<cellCount {
                    let first = Int(lists.starts[c]), end = Int(lists.starts[c + 1])
                    // A list of 255 (possible with a 256-byte stride) would read as the mark.
                    if end - first >= stride || end - first >= Int(RendezvousTable.overflowMark) {
                        out[c * stride] = RendezvousTable.overflowMark
                        overflowCells.append(Int32(c))
                        overflowStarts.append(Int32(overflowEntries.count))
                        overflowEntries.append(contentsOf: entries[first..<end])
                        continue
                    }
                    out[c * stride] = UInt8(end - first)
                    for (j, v) in entries[first..<end].enumerated() { out[c * stride + 1 + j] = UInt8(v) }
                }
            }
        }
        overflowStarts.append(Int32(overflowEntries.count))
        self.records8 = records
        self.overflowCells = overflowCells
        self.overflowStarts = overflowStarts
        self.overflowEntries = overflowEntries
    }

    /// A narrow record's count meaning "the list is in `overflowEntries`".
    @inlinable static var overflowMark: UInt8 { .max }

    static let seedBase: UInt64 = 0x7265_6E64_657A_766F // "rendezvo"

    /// Per-cell candidate lists over virtual members (build time): cell c's list, ascending, is
    /// `entries[starts[c] ..< starts[c + 1]]`.
    struct CandidateLists {
        var starts: [UInt32]
        var entries: [UInt16]

        func count(_ c: Int) -> Int { Int(starts[c + 1] &- starts[c]) }
    }

    /// Occupancy (each virtual member in one cell per group), then for every cell the members of
    /// the smallest aligned block around it (1, 2, 4, … cells) that is not empty, which is what a
    /// lookup must choose from. Precomputing the fallback keeps the request path to one list.
    ///
    /// One group at a time: every virtual member's cell in the group, a stable counting sort by
    /// cell (so each cell's list comes out ascending), then the lists in cell order. O(V) per
    /// group, O(V·M/g) in all, with a working set of one group.
    static func candidateLists(seeds: [UInt64], cellCount: Int, groupShift: Int) -> CandidateLists {
        let virtualCount = seeds.count / 2
        var starts = [UInt32](repeating: 0, count: cellCount + 1)
        guard virtualCount > 0 else { return CandidateLists(starts: starts, entries: []) }
        let groupSize = 1 << groupShift
        let groups = cellCount >> groupShift
        // Every virtual member appears once per group, plus the copies fallback lists make.
        var entries: [UInt16] = []
        entries.reserveCapacity(virtualCount * groups + cellCount)
        var cellOf = [Int](repeating: 0, count: virtualCount)
        var byCell = [UInt16](repeating: 0, count: virtualCount)
        // cellEnd[k]: after the scatter, the end of cell k's members in `byCell` (begin(k) is
        // cellEnd[k - 1], or 0).
        var cellEnd = [Int](repeating: 0, count: groupSize + 1)
        // One group's lists, appended to `entries` at once: at most V entries per cell.
        var scratch = [UInt16](repeating: 0, count: groupSize * virtualCount)
        seeds.withUnsafeBufferPointer { seeds in
        cellOf.withUnsafeMutableBufferPointer { cellOf in
        byCell.withUnsafeMutableBufferPointer { byCell in
        cellEnd.withUnsafeMutableBufferPointer { cellEnd in
        scratch.withUnsafeMutableBufferPointer { scratch in
        starts.withUnsafeMutableBufferPointer { starts in
            for group in 0..<groups {
                // Counting sort of the members by their cell in this group (stable: each cell's
                // members stay ascending).
                for k in 0...groupSize { cellEnd[k] = 0 }
                // Two loops: the hashing has no memory dependences, so it pipelines; the
                // histogram's read-modify-writes of 16 counters would stall it.
                for v in 0..<virtualCount {
                    cellOf[v] = cellInGroup(seeds[2 &* v], group, groupShift)
                }
                for v in 0..<virtualCount { cellEnd[cellOf[v] &+ 1] &+= 1 }
                for k in 0..<groupSize { cellEnd[k &+ 1] &+= cellEnd[k] }
                for v in 0..<virtualCount {
                    let c = cellOf[v]
                    byCell[cellEnd[c]] = UInt16(truncatingIfNeeded: v)
                    cellEnd[c] &+= 1
                }
                func begin(_ k: Int) -> Int { k == 0 ? 0 : cellEnd[k &- 1] }

                let base = entries.count
                var w = 0
                for k in 0..<groupSize {
                    starts[(group << groupShift) | k] = UInt32(truncatingIfNeeded: base &+ w)
                    if cellEnd[k] > begin(k) {
                        for j in begin(k)..<cellEnd[k] {
                            scratch[w] = byCell[j]
                            w &+= 1
                        }
                        continue
                    }
                    // Empty: widen to the aligned block of 2, 4, … cells; the whole group holds
                    // every member, so this ends. The block's members are its cells' lists side
                    // by side in `byCell`, each ascending: copy, then insertion-sort (short
                    // lists; empty cells are common only when V is small).
                    var span = 2
                    while true {
                        let first = k & ~(span &- 1)
                        let from = begin(first), to = cellEnd[first &+ span &- 1]
                        if to > from {
                            let start = w
                            for j in from..<to {
                                let x = byCell[j]
                                var i = w
                                while i > start && scratch[i &- 1] > x {
                                    scratch[i] = scratch[i &- 1]
                                    i &-= 1
                                }
                                scratch[i] = x
                                w &+= 1
                            }
                            break
                        }
                        span <<= 1
                    }
                }
                entries.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<w]))
            }
            starts[cellCount] = UInt32(truncatingIfNeeded: entries.count)
        }
        }
        }
        }
        }
        }
        precondition(entries.count <= Int(UInt32.max), "candidate lists too large")
        return CandidateLists(starts: starts, entries: entries)
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
        let v: Int = seeds.withUnsafeBufferPointer { seeds in
            if entries16.isEmpty {
                return records8.withUnsafeBufferPointer { records in
                    let base = c &* stride
                    let count = records[base]
                    if count == RendezvousTable.overflowMark { return overflowChoice(key, c, seeds) }
                    return RendezvousTable.choose(key, records, base &+ 1, Int(count), seeds)
                }
            }
            return starts.withUnsafeBufferPointer { starts in
                entries16.withUnsafeBufferPointer { entries in
                    let first = Int(starts[c])
                    return RendezvousTable.choose(key, entries, first, Int(starts[c &+ 1]) &- first, seeds)
                }
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
