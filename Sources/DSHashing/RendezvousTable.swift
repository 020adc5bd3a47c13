/// Rendezvous hashing over a table of small candidate sets ("rendezvous"): HRW (Thaler &
/// Ravishankar, "Using name-based mappings to increase hit rates", 1998) restricted, per key, to
/// the few members that share the key's table cell, so a lookup scores ≈ N/64 members, not N.
///
/// Construction
/// - Every member has HRW seeds derived from its name (one pair per unit of weight: a member of
///   weight w acts as w "virtual members"; weight 0 has none, so it takes no keys and is never a
///   candidate).
/// - The key space is cut into M = 2¹⁷ cells, grouped into C = 2048 runs of g = 64 consecutive
///   cells. In every group each virtual member occupies exactly one cell (stratified sampling:
///   exactly C cells per member, where an independent coin per cell would add binomial noise to
///   the share). The cell is a 6-bit field of a SplitMix64 output of the member's seed; one
///   output serves 10 consecutive groups.
/// - A key goes to its cell ⌊key·M/2⁶⁴⌋ and takes the highest-scoring virtual member there; if
///   the cell is empty, in the smallest aligned block of 8, 16, 32 or 64 cells around it that
///   holds anyone. The 64-cell block is the whole group, which holds every member, so a lookup
///   always succeeds.
///
/// Why this is the default (the hashing targets, measured with `HashAnalysis`, i.e. `ds-lb ring`;
/// figures in bench/RESULTS.md):
/// - Churn is minimal, as for plain HRW and the ring: where a member sits depends only on its own
///   name, and a key's candidates are the members of the smallest non-empty block of a fixed
///   nested family (its cell, then 8, 16, 32, 64 cells), so removing x changes the choice only
///   for keys that chose x, and adding y moves only keys that y now wins. No collateral moves.
/// - Balance: per-key HRW inside a cell splits the cell evenly; what varies is how crowded each
///   member's cells are, roughly 1/√(C·min(λ, ~3)) of the share with λ = V/g members per cell.
///   With few members per group most cells are empty, and a fallback block of at least 8 cells
///   (rather than 2) spreads an empty stretch over several members instead of one neighbour:
///   with C = 2048 that is what keeps every N = 3…100 within the balance target.
/// - Lookup: one 4-byte read of `starts` (which holds lists of 1–3 members itself while there
///   are at most 254 virtual members), else, up to 2,600 virtual members, one 64-byte line of
///   `lines` holding the cell's byte-coded list (≈ 16 bytes for ≈ 16 candidates at N = 1000,
///   two cells to a line; past 2,600, `starts` then the list in `lists`), and that many score
///   evaluations of one multiply each. At N = 1000 the time goes to the key's
///   hash, the one cache miss on the line, and the scores (the 128-bit multiply alone takes
///   two cycles per candidate, and the running maximum with its index a few more).
/// - Build: N·C placements (2 M at N = 1000), one hash per member per 10 groups. A fresh table
///   with gap-coded lists appends each member's gap byte to its cell's slot as the members come
///   in index order, so the lists come out sorted and encoded without a sort, the 10 groups of
///   one hash in one pass, then packs each group's slots into its lists and lines; narrow
///   tables counting-sort one group at a time. When one member comes, goes or changes weight,
///   `init(members:previous:)` places only that member and reads everyone else's cells back
///   from the previous table; the copy into `lists` and `lines`, a pass over every list either
///   way, is the same, so it saves the placement but not the writing of the table.
///
/// Large N, and why these parameters. M, g, the fallback sizes and the placement are part of the
/// routing contract: choosing them by N would re-place every member whenever a membership change
/// crossed a threshold, moving nearly every key at exactly that step. So they are fixed, and
/// chosen to meet the N = 3…100 targets and the N = 1000 bounds at once. A lookup's cost at
/// large N is set by the table size V·C (the random access to it, mostly a cache miss once the
/// table outgrows the few MB of last-level cache a shared machine leaves us) and λ = V/g (the
/// scores); balance at small N needs C·min(λ, ~3) large. Hence g = 64, which keeps λ small; the
/// wider fallback blocks, which keep small-N balance with only 2048 groups and so keep the
/// placements per build down; one placement hash per member per 10 groups rather than per
/// placement; and gap-coded byte lists, which make the table 2.7 MB at N = 1000 (`starts`
/// included), plus the same lists again in 4 MB of cache-line-aligned `lines`, which the
/// lookup reads instead (one cache miss where `starts` then `lists` were two dependent ones).
///
/// Weights: virtual members rather than one weighted score per member (HRW's −w / ln h). In this
/// table a member's share is set by how many cells it occupies, not by the scores: most cells at
/// small N hold one member, which takes the cell whatever its score, and an empty stretch falls
/// back to whoever sits in its block. A weighted score would split only the shared cells by
/// weight. Occupancy in proportion to weight is what virtual members give, and with the same
/// guarantees: raising a weight adds virtual members (they take keys only for their member),
/// lowering it removes some (only their keys move), so a weight change moves keys only to or
/// from that member. The unweighted lookup is untouched (weight 1 is one virtual member), and a
/// lookup stays a scan of one cell's short list without a logarithm or a division.
///
/// The virtual members are bounded by `maxVirtualMembers` (memory and build time grow with
/// them: about 2 KB of lists and 2,048 placements each). A membership whose weights add up to
/// more has every non-zero weight scaled down to ⌊w · maxVirtualMembers / W⌋ (at least 1), which
/// keeps the shares but not the minimal churn of a weight change in that range (e.g. 1,000
/// replicas averaging a weight above 65).
///
/// The seeds, M, g, the fallback block sizes, the placement hash and the score function are
/// part of the routing contract: changing any of them reroutes keys (golden vectors in
/// RendezvousTableTests guard this). The list layout (`starts`, `lists`, `lines`) is not.
///
/// Thread safety: immutable after `init`; every method is any-thread.
///
/// Usable from inline, like the other tables: `HashTable`'s inlinable lookup reaches into it from
/// the proxy's module, and a package type's inlinable members are emitted into other modules only
/// when the type itself is usable from inline.
@usableFromInline package struct RendezvousTable: ConsistentHash {
    package static let algorithm = HashAlgorithm.rendezvous

    package static let defaultCellCount = 1 << 17
    /// log₂ of the cells per group; each virtual member occupies one cell per group.
    package static let defaultGroupShift = 6
    /// log₂ of the smallest fallback block for a key whose own cell is empty.
    package static let defaultFallbackShift = 3
    /// Cell numbers within a group are bytes at build time.
    package static let maxGroupShift = 8
    package static let maxWeight = HashMember.maxWeight
    /// Bounds the table: about a byte per virtual member per group (134 MB of lists here).
    package static let maxVirtualMembers = 65535
    /// Virtual-member count up to which the lists hold the indexes themselves (bytes), not gaps.
    /// It is 254 so that an own list (at most V members) always has a one-byte length.
    @usableFromInline package static let narrowLimit = 254

    package let members: [HashMember]
    @usableFromInline package let cellCount: Int
    /// 64 − log₂ `cellCount` when that is a power of two above 1, else 0: a key's cell is then its
    /// top bits, one shift where the range reduction takes a multiply (the same cell either way).
    @usableFromInline let cellShift: Int
    package let groupShift: Int
    package let fallbackShift: Int

    /// Per virtual member v: its HRW seeds at 2v and 2v + 1 (one cache line for both).
    @usableFromInline let seeds: [UInt64]
    /// Per virtual member: the index into `members` it belongs to.
    @usableFromInline let owners: [UInt32]
    /// `seeds` split in two, per virtual member v its first and second seed (empty without
    /// `lines`): the lookup over `lines` then addresses a seed as base + 8v, which x86 does in
    /// the load itself, where 16v took an extra instruction per candidate.
    @usableFromInline let firstSeeds: [UInt64]
    @usableFromInline let secondSeeds: [UInt64]

    /// Per cell c: where its candidate list starts in `lists`. Not part of the routing contract:
    /// only a representation of the candidate sets, chosen to be small. `starts` and `lists` are
    /// what a table is derived from (`Incremental`), and what a lookup reads where `lines` has
    /// no copy of the list.
    ///
    /// A list is a length byte L (L < 255: the list has L bytes; 255: a 4-byte little-endian
    /// length follows), then the virtual-member indexes in ascending order: the indexes
    /// themselves up to `narrowLimit` virtual members, else gaps: each byte b adds b to the index
    /// (from −1) and names a candidate, except b = 0, which adds 255 and names none. The gaps
    /// average 2^groupShift (64) at large N, so a list is about one byte per candidate (≈ 18
    /// bytes at N = 1000, 2.2 MB of lists in all: half of what UInt16 indexes take, and at large
    /// N the table is larger than the cache a shared machine leaves it). The block fallback is
    /// precomputed into the lists: empty cells that fall back to the same block share one list,
    /// so a lookup reads `starts` (512 KB) and one short run, or, for a wide table, the
    /// list's copy in `lines`.
    @usableFromInline let starts: [UInt32]
    @usableFromInline let lists: [UInt8]
    /// The wide lists again, laid out for the lookup (empty when the table has none, see
    /// `lineShift`): cell c's list sits in 64-byte line c >> lineShift, with the lists of the
    /// other cells of that line, so a lookup reads one cache line where `starts` and `lists` take
    /// two dependent reads. A line holds 2^lineShift lists: header bytes h₀ … h_P (P =
    /// 2^lineShift), list k at bytes h_k ..< h_{k+1} of the line; h₀ = 0 marks a line whose lists
    /// did not fit, which the lookup reads from `starts` and `lists`. The list bytes are those of
    /// `lists` (gaps, 0 a skip).
    @usableFromInline let lines: [UInt8]
    /// log₂ of the cells per line, or −1: no lines (narrow tables, and lists too long to share a
    /// line).
    @usableFromInline let lineShift: Int
    /// Where line 0 starts in `lines`: the first index whose address is a multiple of 64, so that
    /// every line is one cache line (an array's elements start 32 bytes into a 16-byte-aligned
    /// allocation; unaligned, most lines would span two, and the list after the header byte
    /// would often be a second, dependent miss). The array is never mutated after the build, so
    /// its storage, and the alignment, stay put; were it moved, lookups would only be slower.
    @usableFromInline let lineOffset: Int
    /// Bit c set: cell c has members of its own (its list is not a fallback block's). Lets a
    /// table be derived from this one without placing every member again (`Incremental`).
    let occupied: [UInt64]

    package init(members: [HashMember]) {
        self.init(members: members, cellCount: RendezvousTable.defaultCellCount)
    }

    /// The same table as `init(members:)`, derived from `previous` when that is cheaper: when the
    /// member sets differ in one contiguous run of the canonical order (one member added, removed
    /// or reweighted, or a few next to each other) and both have more than `narrowLimit` virtual
    /// members, only the changed members are placed and every other member's cells are read
    /// back from `previous`'s lists. The result is the table a fresh build gives, byte for byte
    /// (RendezvousTableTests compare them); anything else is a fresh build.
    package init(members: [HashMember], previous: RendezvousTable?) {
        guard let previous, let plan = Incremental(previous: previous, members: members) else {
            self.init(members: members)
            return
        }
        self.init(
            sorted: plan.sorted, cellCount: previous.cellCount, groupShift: previous.groupShift,
            fallbackShift: previous.fallbackShift, seeds: plan.seeds, owners: plan.owners, incremental: plan)
    }

    /// `cellCount` must be a positive multiple of the group size 2^groupShift.
    package init(
        members: [HashMember], cellCount: Int, groupShift: Int = RendezvousTable.defaultGroupShift,
        fallbackShift: Int = RendezvousTable.defaultFallbackShift
    ) {
        self.init(
            members: members, cellCount: cellCount, groupShift: groupShift, fallbackShift: fallbackShift,
            slotShift: nil)
    }

    /// `slotShift` (≥ 5) replaces `slotShift(virtualCount:groupShift:)` for a wide table's fresh
    /// build: tests give it slots small enough to overflow, which must give the same table.
    init(members: [HashMember], cellCount: Int, groupShift: Int, fallbackShift: Int, slotShift: Int?) {
        precondition(groupShift >= 0 && groupShift <= RendezvousTable.maxGroupShift, "groupShift out of range")
        precondition(fallbackShift >= 1, "fallbackShift out of range")
        precondition(
            cellCount > 0 && cellCount % (1 << groupShift) == 0,
            "cellCount must be a positive multiple of the group size")
        precondition(cellCount <= Int(Int32.max), "cellCount out of range")
        let sorted = HashMember.canonicalOrder(members)
        var seeds: [UInt64] = []
        var owners: [UInt32] = []
        let weights = RendezvousTable.virtualCounts(sorted.map(\.weight))
        for (index, member) in sorted.enumerated() {
            RendezvousTable.appendSeeds(of: member, count: weights[index], to: &seeds)
            for _ in 0..<weights[index] { owners.append(UInt32(index)) }
        }
        precondition(owners.count <= RendezvousTable.maxVirtualMembers, "more members of weight > 0 than maxVirtualMembers")
        self.init(
            sorted: sorted, cellCount: cellCount, groupShift: groupShift, fallbackShift: fallbackShift,
            seeds: seeds, owners: owners, incremental: nil, slotShift: slotShift)
    }

    private init(
        sorted: [HashMember], cellCount: Int, groupShift: Int, fallbackShift: Int, seeds: [UInt64],
        owners: [UInt32], incremental: Incremental?, slotShift: Int? = nil
    ) {
        self.members = sorted
        self.cellCount = cellCount
        cellShift = cellCount > 1 && cellCount & (cellCount &- 1) == 0 ? cellCount.leadingZeroBitCount &+ 1 : 0
        self.groupShift = groupShift
        self.fallbackShift = fallbackShift
        self.seeds = seeds
        self.owners = owners
        let lineShift = RendezvousTable.lineShift(virtualCount: owners.count, groupShift: groupShift)
        self.lineShift = lineShift ?? -1
        let split = lineShift == nil ? 0 : owners.count
        firstSeeds = (0..<split).map { seeds[2 &* $0] }
        secondSeeds = (0..<split).map { seeds[2 &* $0 &+ 1] }
        (starts, lists, occupied, lines, lineOffset) = RendezvousTable.candidateLists(
            seeds: seeds, cellCount: cellCount, groupShift: groupShift,
            fallbackShift: fallbackShift, lineShift: lineShift, incremental: incremental, slotShift: slotShift)
    }

    /// The HRW seed pairs of `member`'s first `count` virtual members (they depend on its name
    /// alone, so raising a weight keeps the existing ones).
    static func appendSeeds(of member: HashMember, count: Int, to seeds: inout [UInt64]) {
        for t in 0..<UInt64(count) {
            seeds.append(XXH64.hash(member.name, seed: RendezvousTable.seedBase &+ 2 &* t))
            // Odd, so the multiply in `score` is a bijection of its other operand.
            seeds.append(XXH64.hash(member.name, seed: RendezvousTable.seedBase &+ 2 &* t &+ 1) | 1)
        }
    }

    /// How a table is derived from the previous one: the virtual members `previous` had at
    /// `at ..< at + removed` are replaced by `inserted` new ones at `at ..< at + inserted`; the
    /// others keep their seeds and cells, and their indexes shift by `inserted − removed` past
    /// the run.
    struct Incremental {
        let sorted: [HashMember]
        let seeds: [UInt64]
        let owners: [UInt32]
        let at: Int
        let removed: Int
        let inserted: Int
        let oldStarts: [UInt32]
        let oldLists: [UInt8]
        let oldOccupied: [UInt64]

        /// nil when a fresh build is needed or cheaper: other parameters, a narrow table on either
        /// side (its lists hold indexes, not gaps, and it builds in a few milliseconds anyway),
        /// scaled weights (every member's virtual count may change), or more than a quarter of
        /// the virtual members changing.
        init?(previous: RendezvousTable, members: [HashMember]) {
            guard previous.cellCount == RendezvousTable.defaultCellCount,
                previous.groupShift == RendezvousTable.defaultGroupShift,
                previous.fallbackShift == RendezvousTable.defaultFallbackShift
            else { return nil }
            let sorted = HashMember.canonicalOrder(members)
            let old = previous.members
            func count(_ m: HashMember) -> Int { HashMember.clampedWeight(m.weight, max: RendezvousTable.maxWeight) }
            let oldTotal = old.reduce(0) { $0 + count($1) }
            let newTotal = sorted.reduce(0) { $0 + count($1) }
            guard oldTotal == previous.owners.count, oldTotal <= RendezvousTable.maxVirtualMembers,
                newTotal <= RendezvousTable.maxVirtualMembers,
                oldTotal > RendezvousTable.narrowLimit, newTotal > RendezvousTable.narrowLimit
            else { return nil }
            var prefix = 0
            while prefix < old.count && prefix < sorted.count && old[prefix] == sorted[prefix] { prefix += 1 }
            var suffix = 0
            while suffix < old.count - prefix && suffix < sorted.count - prefix
                && old[old.count - 1 - suffix] == sorted[sorted.count - 1 - suffix]
            {
                suffix += 1
            }
            let at = old[..<prefix].reduce(0) { $0 + count($1) }
            let removed = old[prefix..<(old.count - suffix)].reduce(0) { $0 + count($1) }
            let middle = sorted[prefix..<(sorted.count - suffix)]
            let inserted = middle.reduce(0) { $0 + count($1) }
            guard (removed + inserted) * 4 <= newTotal else { return nil }
            var seeds = Array(previous.seeds[..<(2 * at)])
            seeds.reserveCapacity(2 * newTotal)
            for member in middle { RendezvousTable.appendSeeds(of: member, count: count(member), to: &seeds) }
            seeds.append(contentsOf: previous.seeds[(2 * (at + removed))...])
            var owners: [UInt32] = []
            owners.reserveCapacity(newTotal)
            for (index, member) in sorted.enumerated() {
                for _ in 0..<count(member) { owners.append(UInt32(index)) }
            }
            self.sorted = sorted
            self.seeds = seeds
            self.owners = owners
            self.at = at
            self.removed = removed
            self.inserted = inserted
            self.oldStarts = previous.starts
            self.oldLists = previous.lists
            self.oldOccupied = previous.occupied
        }
    }

    /// Virtual members per member: the clamped weights, scaled down when they add up to more
    /// than `maxVirtualMembers` (see the type's comment).
    static func virtualCounts(_ weights: [Int]) -> [Int] {
        let clamped = weights.map { HashMember.clampedWeight($0, max: RendezvousTable.maxWeight) }
        let total = clamped.reduce(0, +)
        guard total > maxVirtualMembers else { return clamped }
        return clamped.map { $0 == 0 ? 0 : max(1, $0 * maxVirtualMembers / total) }
    }

    static let seedBase: UInt64 = 0x7265_6E64_657A_766F // "rendezvo"
    @usableFromInline static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Groups whose cells one placement hash decides: ⌊64 / groupShift⌋ bit fields of one output.
    @inlinable
    static func groupsPerHash(_ groupShift: Int) -> Int { groupShift == 0 ? 1 : 64 / groupShift }

    /// The cell (0 ..< 2^groupShift) a virtual member with first seed `seed` occupies in `group`:
    /// bit field group mod p (from the top) of the SplitMix64 output at a counter derived from the
    /// seed and ⌊group / p⌋, p = ⌊64 / groupShift⌋. One hash places a member in p groups.
    @inlinable
    static func cellInGroup(_ seed: UInt64, _ group: Int, _ groupShift: Int) -> Int {
        if groupShift == 0 { return 0 }
        let p = groupsPerHash(groupShift)
        return field(placementHash(seed, group / p), group % p, groupShift)
    }

    @inlinable @inline(__always)
    static func placementHash(_ seed: UInt64, _ round: Int) -> UInt64 {
        mix(seed &+ (UInt64(truncatingIfNeeded: round) &+ 1) &* golden)
    }

    /// Bit field `j` (from the top) of a placement hash: a cell within the group.
    @inlinable @inline(__always)
    static func field(_ x: UInt64, _ j: Int, _ groupShift: Int) -> Int {
        let shift = UInt64(truncatingIfNeeded: 64 &- groupShift &* (j &+ 1))
        return Int(truncatingIfNeeded: (x &>> shift) & ((1 &<< UInt64(truncatingIfNeeded: groupShift)) &- 1))
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
}
