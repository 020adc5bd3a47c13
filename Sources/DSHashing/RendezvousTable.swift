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

    /// The candidate lists (see `starts`). One group at a time, so the working set is one group:
    /// every virtual member's cell in the group (a bit field of a hash shared by p groups), a
    /// stable counting sort by cell (each cell's members come out ascending; a fresh wide table
    /// appends to per-cell slots instead, see `appendRun`), then the lists in cell order; for an
    /// empty cell, the members of the smallest non-empty fallback block around it (contiguous in
    /// the sorted order, merged ascending through a bit set), once per block.
    /// O(V) per group, plus O(block members + V/64) per distinct fallback block.
    ///
    /// With `incremental`, a group's members by cell come from the previous table's lists of that
    /// group instead (decoded, renumbered, the changed members merged in at their cells): the same
    /// input to the same list encoding, so the same bytes.
    static func candidateLists(
        seeds: [UInt64], cellCount: Int, groupShift: Int,
        fallbackShift: Int, lineShift: Int?, incremental: Incremental?, slotShift: Int? = nil
    ) -> (starts: [UInt32], lists: [UInt8], occupied: [UInt64], lines: [UInt8], lineOffset: Int) {
        let virtualCount = seeds.count / 2
        var starts = [UInt32](repeating: 0, count: cellCount)
        var occupied = [UInt64](repeating: 0, count: (cellCount + 63) >> 6)
        guard virtualCount > 0 else { return (starts, [], occupied, [], 0) }
        // 63 bytes more, to start line 0 at a multiple of 64 (see `lineOffset`). Not zeroed
        // first: `packLines` writes every line whole, once (a zeroing pass would write the
        // 4 MB twice, and the second pass would miss the cache on every line).
        let lineCount = lineShift.map { cellCount >> $0 } ?? 0
        var lineOffset = 0
        var lines = [UInt8](unsafeUninitializedCapacity: lineCount == 0 ? 0 : lineCount << 6 + 63) { buffer, count in
            // No lines: the buffer may be the shared empty storage, whose address says nothing
            // (an offset from it would slice past the end of an empty buffer).
            guard lineCount > 0, let base = buffer.baseAddress else { return }
            lineOffset = (0 &- Int(bitPattern: base)) & 63
            UnsafeMutableBufferPointer(rebasing: buffer[..<lineOffset]).initialize(repeating: 0)
            UnsafeMutableBufferPointer(rebasing: buffer[(lineOffset + lineCount << 6)...]).initialize(repeating: 0)
            count = buffer.count
        }
        let groupSize = 1 << groupShift
        let groups = cellCount >> groupShift
        let minimumSpan = min(groupSize, 1 << min(fallbackShift, 30))
        let perHash = groupsPerHash(groupShift)
        let narrow = virtualCount <= narrowLimit
        var lists: [UInt8] = []
        // ≈ one byte per placement and a length byte per cell, plus a few fallback lists.
        lists.reserveCapacity(virtualCount * groups + cellCount + cellCount / 4)
        var hashes = [UInt64](repeating: 0, count: virtualCount)
        var cellOf = [UInt8](repeating: 0, count: virtualCount)
        var byCell = [Int](repeating: 0, count: virtualCount)
        var merged = [Int](repeating: 0, count: virtualCount)
        var counts = [Int](repeating: 0, count: groupSize)
        // before[k]: members in cells 0 ..< k of the group; after the sort, cell k's members are
        // byCell[before[k] ..< before[k + 1]], and a block's size is one subtraction.
        var before = [Int](repeating: 0, count: groupSize + 1)
        var next = [Int](repeating: 0, count: groupSize)
        // A bit per virtual member, all clear between uses (merging a fallback block's lists).
        var marks = [UInt64](repeating: 0, count: (virtualCount + 63) >> 6)
        // One group's encoded lists: every list is ≤ 5 length bytes, one byte per member and
        // ≤ V/255 + 1 skip bytes; the own lists hold V members in all, and the fallback lists of
        // one block size are disjoint (≤ V members per size); at most 2 lists per cell.
        let perList = 6 + virtualCount / 255
        // After them, one group's lines, assembled in cache before they are copied out whole, and
        // 32 bytes that `copyList` may write zeros to past the last line.
        let stageBytes = lineShift.map { (groupSize >> $0) << 6 } ?? 0
        // Then, for a wide table, a slot per cell that `appendedGroup` writes the group's lists
        // into as the members come, and after them room for the longest list to run past the
        // last slot's start, and 32 bytes that `copyList` may read past that.
        let slotShift =
            narrow ? 0 : max(5, slotShift ?? RendezvousTable.slotShift(virtualCount: virtualCount, groupShift: groupShift))
        let run = narrow ? 0 : RendezvousTable.runGroups(groupShift: groupShift, slotShift: slotShift)
        let slotBytes = narrow ? 0 : (run << groupShift) << slotShift + virtualCount + virtualCount / 255 + 40
        // appendRun's state: per slot, where its next byte goes.
        var state = [Int](repeating: 0, count: run << groupShift)
        var overflow: UInt64 = 0
        var scratch = [UInt8](
            repeating: 0,
            count: virtualCount * (groupShift + 2) + 2 * groupSize * perList + stageBytes + 32 + slotBytes)
        // The sixteen buffers open as one flat block; swift-format would indent the body sixteen levels.
        // swift-format-ignore
        seeds.withUnsafeBufferPointer { seeds in
        hashes.withUnsafeMutableBufferPointer { hashes in
        cellOf.withUnsafeMutableBufferPointer { cellOf in
        byCell.withUnsafeMutableBufferPointer { byCell in
        merged.withUnsafeMutableBufferPointer { merged in
        counts.withUnsafeMutableBufferPointer { counts in
        before.withUnsafeMutableBufferPointer { before in
        next.withUnsafeMutableBufferPointer { next in
        marks.withUnsafeMutableBufferPointer { marks in
        state.withUnsafeMutableBufferPointer { state in
        scratch.withUnsafeMutableBufferPointer { scratch in
        starts.withUnsafeMutableBufferPointer { starts in
        occupied.withUnsafeMutableBufferPointer { occupied in
        (incremental?.oldStarts ?? []).withUnsafeBufferPointer { oldStarts in
        (incremental?.oldLists ?? []).withUnsafeBufferPointer { oldLists in
        (incremental?.oldOccupied ?? []).withUnsafeBufferPointer { oldOccupied in
        lines.withUnsafeMutableBufferPointer { allLines in
            let lines = UnsafeMutableBufferPointer(rebasing: allLines[lineOffset...])
            let slots = UnsafeMutableBufferPointer(rebasing: scratch[(scratch.count - slotBytes)...])
            let stageEnd = scratch.count - slotBytes
            let stage = UnsafeMutableBufferPointer(rebasing: scratch[(stageEnd - stageBytes - 32)..<stageEnd])
            var w = 0
            func encode(_ ids: UnsafeMutableBufferPointer<Int>, _ from: Int, _ to: Int) {
                w = encodeList(ids, from, to, narrow: narrow, into: scratch, at: w)
            }
            for group in 0..<groups {
                let j = group % perHash
                if let incremental {
                    if j == 0 {
                        for i in 0..<incremental.inserted {
                            hashes[i] = placementHash(seeds[2 &* (incremental.at &+ i)], group / perHash)
                        }
                    }
                    if groupShift == 6 && oldOccupied[group] == ~0,
                        let end = copiedGroup(
                            group, j, incremental, groupShift: groupShift, base: lists.count,
                            oldStarts: oldStarts, oldLists: oldLists, hashes: hashes, cellOf: cellOf,
                            counts: counts, next: next, byCell: byCell, merged: merged, out: scratch,
                            starts: starts)
                    {
                        occupied[group] = ~0
                        if let lineShift {
                            packLines(
                                group, groupShift: groupShift, lineShift: lineShift, base: lists.count,
                                scratch: scratch, starts: starts, stage: stage, lines: lines)
                        }
                        lists.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<end]))
                        continue
                    }
                    fromPrevious(
                        group, j, incremental, groupShift: groupShift,
                        oldStarts: oldStarts, oldLists: oldLists, oldOccupied: oldOccupied,
                        hashes: hashes, cellOf: cellOf, counts: counts, next: next, before: before,
                        byCell: byCell, merged: merged)
                } else {
                    if j == 0 {
                        for v in 0..<virtualCount { hashes[v] = placementHash(seeds[2 &* v], group / perHash) }
                    }
                    if !narrow
                        && appendedGroup(
                            group, j, run: run, groups: groups, groupShift: groupShift, fallbackShift: fallbackShift,
                            slotShift: slotShift, lineShift: lineShift, overflow: &overflow, lists: &lists,
                            hashes: hashes, slots: slots, state: state, before: before, merged: merged, marks: marks,
                            scratch: scratch, starts: starts, occupied: occupied, stage: stage, lines: lines)
                    {
                        continue
                    }
                    for k in 0..<groupSize { counts[k] = 0 }
                    // Two loops: the field extraction pipelines; the counters' read-modify-writes
                    // would stall it.
                    for v in 0..<virtualCount { cellOf[v] = UInt8(truncatingIfNeeded: field(hashes[v], j, groupShift)) }
                    for v in 0..<virtualCount { counts[Int(cellOf[v])] &+= 1 }
                    var sum = 0
                    for k in 0..<groupSize {
                        before[k] = sum
                        next[k] = sum
                        sum &+= counts[k]
                    }
                    before[groupSize] = sum
                    for v in 0..<virtualCount {
                        let c = Int(cellOf[v])
                        byCell[next[c]] = v
                        next[c] &+= 1
                    }
                }
                let base = lists.count
                w = 0
                if narrow {
                    // Own lists: at N ≤ 100 most hold 1–3 members and go into `starts` itself.
                    for k in 0..<groupSize where counts[k] > 0 {
                        let n = counts[k], at = before[k]
                        if n <= 3 {
                            starts[(group << groupShift) | k] = packed(byCell, at, n)
                            continue
                        }
                        starts[(group << groupShift) | k] = UInt32(truncatingIfNeeded: base &+ w)
                        scratch[w] = UInt8(truncatingIfNeeded: n)
                        for i in 0..<n { scratch[w &+ 1 &+ i] = UInt8(truncatingIfNeeded: byCell[at &+ i]) }
                        w &+= n &+ 1
                    }
                }
                var lastFirst = -1, lastSpan = 0, lastStart: UInt32 = 0
                for k in 0..<groupSize {
                    let cell = (group << groupShift) | k
                    if counts[k] > 0 {
                        occupied[cell &>> 6] |= 1 &<< UInt64(cell & 63)
                        if narrow { continue }
                        starts[cell] = UInt32(truncatingIfNeeded: base &+ w)
                        encode(byCell, before[k], before[k &+ 1])
                        continue
                    }
                    // Empty: the smallest aligned block of minimumSpan, 2·minimumSpan, … cells that
                    // holds anyone (the whole group holds everyone, so this ends). Neighbouring
                    // empty cells usually share the block: its list is built once.
                    var span = minimumSpan, first = 0, total = 0
                    while true {
                        first = k & ~(span &- 1)
                        total = before[first &+ span] &- before[first]
                        if total > 0 { break }
                        span &<<= 1
                    }
                    if first != lastFirst || span != lastSpan {
                        lastFirst = first
                        lastSpan = span
                        lastStart = UInt32(truncatingIfNeeded: base &+ w)
                        for i in before[first]..<before[first &+ span] {
                            let v = byCell[i]
                            marks[v &>> 6] |= 1 &<< UInt64(v & 63)
                        }
                        let n = drainedMarks(marks, into: merged)
                        if narrow && n <= 3 {
                            lastStart = packed(merged, 0, n)
                        } else {
                            encode(merged, 0, n)
                        }
                    }
                    starts[cell] = lastStart
                }
                if let lineShift {
                    packLines(
                        group, groupShift: groupShift, lineShift: lineShift, base: base, scratch: scratch,
                        starts: starts, stage: stage, lines: lines)
                }
                lists.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<w]))
            }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        }
        precondition(lists.count < Int(inlineFlag), "candidate lists too large")
        return (starts, lists, occupied, lines, lineOffset)
    }

    /// log₂ of the bytes of one cell's slot in `appendedGroup`: room for the length byte, the
    /// cell's expected members plus 7 standard deviations (λ = V / 2^groupShift members a cell,
    /// binomial), and every skip byte a list can hold (at most one per 255 of index range), so a
    /// slot overflows practically never; when one does, the group takes the counting sort.
    static func slotShift(virtualCount: Int, groupShift: Int) -> Int {
        let lambda = virtualCount >> groupShift
        var root = 1
        while root * root < lambda { root += 1 }
        let bytes = 1 + lambda + 7 * root + virtualCount / 255 + 8
        var shift = 5
        while 1 << shift < bytes { shift += 1 }
        return shift
    }

    /// A group of a fresh wide table from the slots (`appendRun` at the start of each run of
    /// groups, then `packedGroup`), its lists appended to `lists`; false when the group's slots
    /// overflowed (the caller then counting-sorts it). A function rather than code in
    /// `candidateLists`' loop: there it slowed the narrow tables' counting sort down (the
    /// optimizer compiled the shared loop differently).
    @inline(never)
    static func appendedGroup(
        _ group: Int, _ j: Int, run: Int, groups: Int, groupShift: Int, fallbackShift: Int, slotShift: Int,
        lineShift: Int?, overflow: inout UInt64, lists: inout [UInt8], hashes: UnsafeMutableBufferPointer<UInt64>,
        slots: UnsafeMutableBufferPointer<UInt8>, state: UnsafeMutableBufferPointer<Int>,
        before: UnsafeMutableBufferPointer<Int>, merged: UnsafeMutableBufferPointer<Int>,
        marks: UnsafeMutableBufferPointer<UInt64>, scratch: UnsafeMutableBufferPointer<UInt8>,
        starts: UnsafeMutableBufferPointer<UInt32>, occupied: UnsafeMutableBufferPointer<UInt64>,
        stage: UnsafeMutableBufferPointer<UInt8>, lines: UnsafeMutableBufferPointer<UInt8>
    ) -> Bool {
        let b = j % run
        if b == 0 {
            overflow = appendRun(
                j, min(run, groupsPerHash(groupShift) - j, groups - group), groupShift: groupShift,
                slotShift: slotShift, hashes: hashes, slots: slots, state: state)
        }
        guard overflow & (1 &<< UInt64(b)) == 0 else { return false }
        let end = packedGroup(
            group, b, groupShift: groupShift, fallbackShift: fallbackShift, slotShift: slotShift, base: lists.count,
            slots: slots, state: state, before: before, merged: merged, marks: marks, out: scratch, starts: starts,
            occupied: occupied, lineShift: lineShift, stage: stage, lines: lines)
        lists.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[0..<end]))
        return true
    }

    /// Groups whose slots one `appendRun` fills: the slots of a run of groups stay in the first
    /// levels of cache (about 32 KB of them), at most the groups of one placement hash.
    static func runGroups(groupShift: Int, slotShift: Int) -> Int {
        max(1, min(groupsPerHash(groupShift), (48 << 10) >> (groupShift + slotShift)))
    }

    /// The own lists of groups j0 ..< j0 + count of the current placement hash (`hashes`), of a
    /// fresh wide table, gap-coded as `encodeList` writes them after the counting sort, with the
    /// sort and the encoding fused: the members come in index order, so appending each one's gap
    /// to its cell's slot leaves every list sorted and encoded. Cell k of the run's group b has
    /// slot i = b·2^groupShift + k, at slots[i << slotShift ...]: a length byte (written by
    /// `packedGroup`), then the gaps; afterwards state[i] is where its next byte would go. One
    /// pass over the members serves the whole run: one hash read per member, and a cell's next
    /// write is rarely still in flight when it is read again.
    /// Returns a bit per group whose lists outgrew a slot (that group is counting-sorted instead).
    /// Safe: `slots` holds the run's slots of 2^slotShift ≥ 32 bytes, then V + V/255 + 2 bytes for
    /// a list running on past the last slot's start (a list outgrowing its slot runs on into the
    /// next ones, which is found after the pass, so the pass tests only for skip bytes), then 32
    /// for `copyList`'s reads; `hashes` has a hash per virtual member, `state` an entry per slot.
    @inline(never)
    static func appendRun(
        _ j0: Int, _ count: Int, groupShift: Int, slotShift: Int, hashes: UnsafeMutableBufferPointer<UInt64>,
        slots: UnsafeMutableBufferPointer<UInt8>, state: UnsafeMutableBufferPointer<Int>
    ) -> UInt64 {
        if groupShift == defaultGroupShift {
            return appendRun(
                j0, count, defaultGroupShift, slotShift: slotShift, hashes: hashes, slots: slots, state: state)
        }
        return appendRun(j0, count, groupShift, slotShift: slotShift, hashes: hashes, slots: slots, state: state)
    }

    /// `appendRun`'s body, inlined twice: with the default group size a constant, the fields are
    /// constant shifts.
    @inline(__always)
    static func appendRun(
        _ j0: Int, _ count: Int, _ groupShift: Int, slotShift: Int, hashes: UnsafeMutableBufferPointer<UInt64>,
        slots: UnsafeMutableBufferPointer<UInt8>, state: UnsafeMutableBufferPointer<Int>
    ) -> UInt64 {
        let groupSize = 1 &<< groupShift
        let n = count &<< groupShift
        let cellMask = UInt64(truncatingIfNeeded: groupSize &- 1)
        let top = UInt64(truncatingIfNeeded: 64 &- groupShift), step = UInt64(truncatingIfNeeded: groupShift)
        let skip = UInt64(truncatingIfNeeded: groupShift &* j0)
        // One word per slot, one store: where its next byte goes, above 16 bits holding its last
        // member + 1 (0: none yet; V ≤ 65535).
        for i in 0..<n { state[i] = (i &<< slotShift &+ 1) &<< 16 }
        // Zero past every list, so that `packedGroup` copies a short list as 32 bytes of its slot.
        UnsafeMutableBufferPointer(rebasing: slots[..<(n &<< slotShift)]).update(repeating: 0)
        for v in 0..<hashes.count {
            // Field j0 + b of the hash is the top field after b + j0 shifts (see `field`).
            var h = hashes[v] &<< skip
            var row = 0
            for _ in 0..<count {
                let i = row | Int(truncatingIfNeeded: (h &>> top) & cellMask)
                h &<<= step
                row &+= groupSize
                let word = state[i]
                var at = word &>> 16
                var gap = v &+ 1 &- (word & 0xFFFF)
                while gap > 255 {
                    slots[at] = 0
                    at &+= 1
                    gap &-= 255
                }
                slots[at] = UInt8(truncatingIfNeeded: gap)
                state[i] = (at &+ 1) &<< 16 | (v &+ 1)
            }
        }
        var overflow: UInt64 = 0
        for i in 0..<n {
            state[i] &>>= 16
            if state[i] > (i &+ 1) &<< slotShift { overflow |= 1 &<< UInt64(truncatingIfNeeded: i &>> groupShift) }
        }
        return overflow
    }

    /// Packs the slots of group b of the run `appendRun` filled into out[0...] in cell order, as
    /// `candidateLists` writes a group's lists (length bytes, and the fallback lists of empty
    /// cells), with `starts` pointing at base + offset, and the group's lines, as `packLines`
    /// writes them (from the slots when every list is a slot's); returns the bytes written.
    /// Safe: the buffers are `appendRun`'s, `before` has 2^groupShift + 1 entries, `marks` V
    /// bits, `merged` V entries, out has room for a group's lists and 32 bytes after them, and
    /// `stage` is `packLines`'.
    @inline(never)
    static func packedGroup(
        _ group: Int, _ b: Int, groupShift: Int, fallbackShift: Int, slotShift: Int, base: Int,
        slots: UnsafeMutableBufferPointer<UInt8>, state: UnsafeMutableBufferPointer<Int>,
        before: UnsafeMutableBufferPointer<Int>, merged: UnsafeMutableBufferPointer<Int>,
        marks: UnsafeMutableBufferPointer<UInt64>, out: UnsafeMutableBufferPointer<UInt8>,
        starts: UnsafeMutableBufferPointer<UInt32>, occupied: UnsafeMutableBufferPointer<UInt64>, lineShift: Int?,
        stage: UnsafeMutableBufferPointer<UInt8>, lines: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        let groupSize = 1 &<< groupShift
        // Cell k's slot is slot b·2^groupShift + k; its next byte's index is position[k].
        let position = UnsafeMutableBufferPointer(rebasing: state[(b &<< groupShift)...])
        let firstSlot = (b &<< groupShift) &<< slotShift
        // before[k]: bytes in the slots of cells 0 ..< k, so a block is empty when its two ends
        // are equal (a non-empty list has a candidate's byte).
        // The cells with members of their own set their bits in `occupied` a word at a time: one
        // read-modify-write of the same word per cell would chain the cells' iterations.
        var sum = 0, own: UInt64 = 0
        for k in 0..<groupSize {
            before[k] = sum
            let length = position[k] &- (firstSlot | k &<< slotShift) &- 1
            sum &+= length
            let cell = (group &<< groupShift) | k
            own |= (length > 0 ? 1 : 0) &<< UInt64(cell & 63)
            if cell & 63 == 63 || k == groupSize &- 1 {
                occupied[cell &>> 6] |= own
                own = 0
            }
        }
        before[groupSize] = sum
        let minimumSpan = min(groupSize, 1 << min(fallbackShift, 30))
        var w = 0
        var lastFirst = -1, lastSpan = 0, lastStart: UInt32 = 0
        for k in 0..<groupSize {
            let cell = (group &<< groupShift) | k
            let length = before[k &+ 1] &- before[k]
            if length > 0 {
                starts[cell] = UInt32(truncatingIfNeeded: base &+ w)
                let slot = firstSlot | k &<< slotShift
                if length < 31 {
                    // The length byte goes into the first word copied (the slot's first byte is
                    // 0): stored into the slot, it would be read back at once by a wider load,
                    // which waits for the store to reach the cache.
                    copyWords(from: slots, slot, to: out, w, adding: UInt64(truncatingIfNeeded: length).littleEndian)
                    w &+= length &+ 1
                } else if length < 255 {
                    slots[slot] = UInt8(truncatingIfNeeded: length)
                    copyList(from: slots, slot, to: out, w, length &+ 1)
                    w &+= length &+ 1
                } else {
                    out[w] = 255
                    for i in 0..<4 { out[w &+ 1 &+ i] = UInt8(truncatingIfNeeded: length &>> (8 &* i)) }
                    copyBytes(from: slots, slot &+ 1, to: out, w &+ 5, length)
                    w &+= length &+ 5
                }
                continue
            }
            // Empty: the smallest aligned block of minimumSpan, 2·minimumSpan, … cells that holds
            // anyone, its members merged from the cells' slots (as `candidateLists` does).
            var span = minimumSpan, first = 0
            while true {
                first = k & ~(span &- 1)
                if before[first &+ span] != before[first] { break }
                span &<<= 1
            }
            if first != lastFirst || span != lastSpan {
                lastFirst = first
                lastSpan = span
                lastStart = UInt32(truncatingIfNeeded: base &+ w)
                for c in first..<(first &+ span) {
                    var v = -1
                    for i in ((firstSlot | c &<< slotShift) &+ 1)..<position[c] {
                        let b = Int(slots[i])
                        v &+= b == 0 ? 255 : b
                        if b != 0 { marks[v &>> 6] |= 1 &<< UInt64(v & 63) }
                    }
                }
                w = encodeList(merged, 0, drainedMarks(marks, into: merged), narrow: false, into: out, at: w)
            }
            starts[cell] = lastStart
        }
        guard let lineShift else { return w }
        if lastFirst >= 0 {
            // Fallback lists are in `out` only.
            packLines(
                group, groupShift: groupShift, lineShift: lineShift, base: base, scratch: out, starts: starts,
                stage: stage, lines: lines)
            return w
        }
        // Every list is its slot's: the lines as `packLines` writes them, from the slots.
        let perLine = 1 &<< lineShift
        stage.update(repeating: 0)
        for line in 0..<(groupSize &>> lineShift) {
            let first = line &<< lineShift
            var total = perLine &+ 1
            for k in first..<(first &+ perLine) { total &+= before[k &+ 1] &- before[k] }
            guard total <= 64 else { continue }
            let at = line &<< 6
            var x = perLine &+ 1
            for k in first..<(first &+ perLine) {
                let length = before[k &+ 1] &- before[k]
                let slot = firstSlot | k &<< slotShift
                stage[at &+ k &- first] = UInt8(truncatingIfNeeded: x)
                if length <= 32 && slotShift > 5 {
                    copyWords(from: slots, slot &+ 1, to: stage, at &+ x, adding: 0)
                } else {
                    copyList(from: slots, slot &+ 1, to: stage, at &+ x, length)
                }
                x &+= length
            }
            stage[at &+ perLine] = UInt8(truncatingIfNeeded: x)
        }
        copyBytes(from: stage, 0, to: lines, ((group &<< groupShift) &>> lineShift) &<< 6, (groupSize &>> lineShift) &<< 6)
        return w
    }

    /// out[to ..< to + 32] = bytes[from ..< from + 32], with `adding` or-ed into the first eight
    /// bytes: a short list and the zeros after it in its slot (see `appendRun`), where
    /// `copyList` masks the words. Safe: the callers read inside a slot, and write where
    /// `copyList` may.
    @inline(__always)
    static func copyWords(
        from bytes: UnsafeMutableBufferPointer<UInt8>, _ from: Int, to out: UnsafeMutableBufferPointer<UInt8>, _ to: Int,
        adding: UInt64
    ) {
        guard let source = bytes.baseAddress, let target = out.baseAddress else { return }
        let src = UnsafeRawPointer(source + from), dst = UnsafeMutableRawPointer(target + to)
        dst.storeBytes(of: src.loadUnaligned(as: UInt64.self) | adding, as: UInt64.self)
        for j in 1..<4 {
            dst.storeBytes(
                of: src.loadUnaligned(fromByteOffset: 8 &* j, as: UInt64.self), toByteOffset: 8 &* j, as: UInt64.self)
        }
    }

    /// Writes the members whose bits are set in `marks` to merged[0...] in ascending order, clears
    /// the bits, and returns how many there were (a fallback block's members, merged).
    @inline(__always)
    static func drainedMarks(
        _ marks: UnsafeMutableBufferPointer<UInt64>, into merged: UnsafeMutableBufferPointer<Int>
    ) -> Int {
        var n = 0
        for word in 0..<marks.count where marks[word] != 0 {
            var x = marks[word]
            marks[word] = 0
            while x != 0 {
                merged[n] = word &<< 6 | x.trailingZeroBitCount
                n &+= 1
                x &= x &- 1
            }
        }
        return n
    }

    /// Cells per line (log₂) for `lines`: 2 while two lists of ≈ V/64 bytes (plus skips and a
    /// header) fit a line nearly always, 1 while one does; nil past that (the lists need more
    /// than a line anyway, and a lookup is bound by its candidates) and for narrow tables (their
    /// short lists sit in `starts` itself). Not part of the routing contract.
    static func lineShift(virtualCount: Int, groupShift: Int) -> Int? {
        guard virtualCount > narrowLimit, groupShift == defaultGroupShift else { return nil }
        if virtualCount <= 1200 { return 1 }
        if virtualCount <= 2600 { return 0 }
        return nil
    }

    /// Writes the lines of `group` (see `lines`) from its lists, which are scratch[0...] with
    /// `starts` pointing at base + offset: a copy of each list's gap bytes; a line whose lists do
    /// not fit is all zero. The group's lines are contiguous: they are assembled in `stage`
    /// and copied out in one piece. Not inlined: in `candidateLists`' closures, twice, it made
    /// the optimizer leave those closures uninlined, and the whole build half as fast again.
    @inline(never)
    static func packLines(
        _ group: Int, groupShift: Int, lineShift: Int, base: Int, scratch: UnsafeMutableBufferPointer<UInt8>,
        starts: UnsafeMutableBufferPointer<UInt32>, stage: UnsafeMutableBufferPointer<UInt8>,
        lines: UnsafeMutableBufferPointer<UInt8>
    ) {
        let perLine = 1 &<< lineShift
        let firstCell = group &<< groupShift
        let lineBytes = ((1 &<< groupShift) &>> lineShift) &<< 6
        stage.update(repeating: 0)
        for line in 0..<((1 &<< groupShift) &>> lineShift) {
            let cell = firstCell &+ line &<< lineShift
            var total = perLine &+ 1
            for k in 0..<perLine {
                // A long list's length byte is 255, which alone overflows the line.
                total &+= Int(scratch[Int(starts[cell &+ k]) &- base])
            }
            guard total <= 64 else { continue }
            let out = line &<< 6
            var w = perLine &+ 1
            for k in 0..<perLine {
                let start = Int(starts[cell &+ k]) &- base
                let length = Int(scratch[start])
                stage[out &+ k] = UInt8(truncatingIfNeeded: w)
                copyList(from: scratch, start &+ 1, to: stage, out &+ w, length)
                w &+= length
            }
            stage[out &+ perLine] = UInt8(truncatingIfNeeded: w)
        }
        copyBytes(from: stage, 0, to: lines, (firstCell &>> lineShift) &<< 6, lineBytes)
    }

    /// out[to ..< to + count] = bytes[from ..< from + count] for a list of up to 62 bytes, and
    /// zeros up to out[to + 32] where the list is shorter: four masked 8-byte words whatever
    /// the length, where a loop by length took a mispredicted branch or two per list (most of
    /// the cost of `packLines`). Safe: the callers leave 32 bytes of room after both ranges
    /// (`scratch` has the stage after the lists, the stage 32 bytes after its last line), and
    /// the zeros land where `packLines` writes later or not at all.
    @inline(__always)
    static func copyList(
        from bytes: UnsafeMutableBufferPointer<UInt8>, _ from: Int, to out: UnsafeMutableBufferPointer<UInt8>,
        _ to: Int, _ count: Int
    ) {
        guard let source = bytes.baseAddress, let target = out.baseAddress else { return }
        let src = UnsafeRawPointer(source + from), dst = UnsafeMutableRawPointer(target + to)
        for j in 0..<4 {
            let left = count &- 8 &* j
            let partial = (1 &<< UInt64(truncatingIfNeeded: 8 &* (left & 7))) &- 1
            let mask: UInt64 = left >= 8 ? ~0 : left <= 0 ? 0 : partial
            let word = src.loadUnaligned(fromByteOffset: 8 &* j, as: UInt64.self)
            dst.storeBytes(of: word & mask, toByteOffset: 8 &* j, as: UInt64.self)
        }
        if count > 32 {
            copyBytes(from: bytes, from &+ 32, to: out, to &+ 32, count &- 32)
        }
    }

    /// out[to ..< to + count] = bytes[from ..< from + count], eight bytes a step: a byte at a time,
    /// the copy into `lines` took longer than the rest of a table's derivation. Safe: both
    /// ranges lie inside their buffers (the callers' bounds), and every read and write is
    /// inside them.
    @inline(__always)
    static func copyBytes(
        from bytes: UnsafeMutableBufferPointer<UInt8>, _ from: Int, to out: UnsafeMutableBufferPointer<UInt8>,
        _ to: Int, _ count: Int
    ) {
        guard count > 0, let source = bytes.baseAddress, let target = out.baseAddress else { return }
        let src = UnsafeRawPointer(source + from), dst = UnsafeMutableRawPointer(target + to)
        var i = 0
        while i &+ 8 <= count {
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i &+= 8
        }
        while i < count {
            dst.storeBytes(of: src.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self)
            i &+= 1
        }
    }

    /// Writes the list of the members ids[from ..< to] (ascending) at out[w...] and returns its
    /// end (see `lists` for the format). A function of its arguments alone: as a closure over the
    /// builder's write position, the position was reloaded and stored around every byte (a byte
    /// store may alias it).
    @inline(__always)
    static func encodeList(
        _ ids: UnsafeMutableBufferPointer<Int>, _ from: Int, _ to: Int, narrow: Bool,
        into out: UnsafeMutableBufferPointer<UInt8>, at w: Int
    ) -> Int {
        let header = w
        let long = to &- from >= 255
        var at = w &+ (long ? 5 : 1)
        let first = at
        if narrow {
            for i in from..<to {
                out[at] = UInt8(truncatingIfNeeded: ids[i])
                at &+= 1
            }
        }
        var previous = -1
        for i in from..<to where !narrow {
            var gap = ids[i] &- previous
            previous = ids[i]
            while gap > 255 {
                out[at] = 0
                at &+= 1
                gap &-= 255
            }
            out[at] = UInt8(truncatingIfNeeded: gap)
            at &+= 1
        }
        let length = at &- first
        if !long && length < 255 {
            out[header] = UInt8(truncatingIfNeeded: length)
            return at
        }
        if !long {
            // Skip bytes took a short list past 254 bytes: make room for a long length.
            for i in stride(from: at &- 1, through: first, by: -1) { out[i &+ 4] = out[i] }
            at &+= 4
        }
        out[header] = 255
        for i in 0..<4 { out[header &+ 1 &+ i] = UInt8(truncatingIfNeeded: length &>> (8 &* i)) }
        return at
    }

    /// Fills counts, before and byCell with the group's members by cell from the previous table
    /// (see `Incremental`): its own lists of the group, renumbered past the changed run, with the
    /// inserted virtual members merged in at their cells (counting-sorted into `merged`, which is
    /// free until the fallback lists). The lists are ascending and the inserted indexes fall
    /// between the kept ones, so the result is ascending too.
    ///
    /// A separate function rather than a closure in `candidateLists`: sharing that closure's
    /// captures with the fresh path made the optimizer slow one path or the other down.
    @inline(never)
    static func fromPrevious(
        _ group: Int, _ j: Int, _ plan: Incremental, groupShift: Int,
        oldStarts: UnsafeBufferPointer<UInt32>,
        oldLists: UnsafeBufferPointer<UInt8>, oldOccupied: UnsafeBufferPointer<UInt64>,
        hashes: UnsafeMutableBufferPointer<UInt64>, cellOf: UnsafeMutableBufferPointer<UInt8>,
        counts: UnsafeMutableBufferPointer<Int>, next: UnsafeMutableBufferPointer<Int>,
        before: UnsafeMutableBufferPointer<Int>, byCell: UnsafeMutableBufferPointer<Int>,
        merged: UnsafeMutableBufferPointer<Int>
    ) {
        let groupSize = 1 << groupShift
        sortInserted(
            group, j, plan, groupShift: groupShift, hashes: hashes, cellOf: cellOf, counts: counts, next: next, merged: merged)
        var n = 0
        for k in 0..<groupSize {
            before[k] = n
            let cell = (group << groupShift) | k
            let own = oldOccupied[cell &>> 6] &>> UInt64(cell & 63) & 1 != 0
            n = mergedList(
                own ? Int(oldStarts[cell]) : -1, plan, oldLists: oldLists, inserted: merged,
                next[k] &- counts[k], next[k], into: byCell, at: n)
            counts[k] = n &- before[k]
        }
        before[groupSize] = n
    }

    /// The inserted virtual members by their cell in `group`: cell k's are
    /// merged[next[k] − counts[k] ..< next[k]], ascending. `hashes` holds their placement hashes
    /// for this run of groups.
    static func sortInserted(
        _ group: Int, _ j: Int, _ plan: Incremental, groupShift: Int,
        hashes: UnsafeMutableBufferPointer<UInt64>, cellOf: UnsafeMutableBufferPointer<UInt8>,
        counts: UnsafeMutableBufferPointer<Int>, next: UnsafeMutableBufferPointer<Int>,
        merged: UnsafeMutableBufferPointer<Int>
    ) {
        let groupSize = 1 << groupShift
        for k in 0..<groupSize { counts[k] = 0 }
        for i in 0..<plan.inserted {
            cellOf[i] = UInt8(truncatingIfNeeded: field(hashes[i], j, groupShift))
            counts[Int(cellOf[i])] &+= 1
        }
        var sum = 0
        for k in 0..<groupSize {
            next[k] = sum
            sum &+= counts[k]
        }
        for i in 0..<plan.inserted {
            let c = Int(cellOf[i])
            merged[next[c]] = plan.at &+ i
            next[c] &+= 1
        }
    }

    /// Writes a cell's new members to ids[n...] and returns the new end: the previous table's own
    /// list at `start` (−1: the cell had none) renumbered past the changed run, without the
    /// removed virtual members, with inserted[from ..< to] (ascending, all within the run)
    /// merged in.
    @inline(__always)
    static func mergedList(
        _ start: Int, _ plan: Incremental, oldLists: UnsafeBufferPointer<UInt8>,
        inserted: UnsafeMutableBufferPointer<Int>, _ from: Int, _ to: Int,
        into ids: UnsafeMutableBufferPointer<Int>, at n: Int
    ) -> Int {
        let at = plan.at, removed = plan.removed
        let shift = plan.inserted &- removed
        var n = n, from = from
        if start >= 0 {
            let (first, end) = bounds(oldLists, start)
            var v = -1
            for i in first..<end {
                let b = Int(oldLists[i])
                v &+= b == 0 ? 255 : b
                if b == 0 { continue }
                if v < at {
                    ids[n] = v
                    n &+= 1
                    continue
                }
                while from < to {
                    ids[n] = inserted[from]
                    n &+= 1
                    from &+= 1
                }
                if v >= at &+ removed {
                    ids[n] = v &+ shift
                    n &+= 1
                }
            }
        }
        while from < to {
            ids[n] = inserted[from]
            n &+= 1
            from &+= 1
        }
        return n
    }

    /// A group of the derived table written directly from the previous table's bytes, when every
    /// cell of the group had members of its own (at N = 1000 all do): a cell the change does not
    /// touch keeps its list's bytes except the one gap that crosses the changed run, which grows
    /// or shrinks by the change in virtual members; any other cell is decoded, merged and
    /// encoded. The bytes are those `candidateLists` writes for the same members (no fallback
    /// lists: every cell is own), at out[0...], with `starts` pointing at base + offset. Returns
    /// the bytes written, or nil when a cell lost its last member (then the group needs
    /// fallback lists: the caller takes the general path).
    @inline(never)
    static func copiedGroup(
        _ group: Int, _ j: Int, _ plan: Incremental, groupShift: Int, base: Int,
        oldStarts: UnsafeBufferPointer<UInt32>, oldLists: UnsafeBufferPointer<UInt8>,
        hashes: UnsafeMutableBufferPointer<UInt64>, cellOf: UnsafeMutableBufferPointer<UInt8>,
        counts: UnsafeMutableBufferPointer<Int>, next: UnsafeMutableBufferPointer<Int>,
        byCell: UnsafeMutableBufferPointer<Int>, merged: UnsafeMutableBufferPointer<Int>,
        out: UnsafeMutableBufferPointer<UInt8>, starts: UnsafeMutableBufferPointer<UInt32>
    ) -> Int? {
        let groupSize = 1 << groupShift
        let at = plan.at, removed = plan.removed
        let shift = plan.inserted &- removed
        sortInserted(
            group, j, plan, groupShift: groupShift, hashes: hashes, cellOf: cellOf, counts: counts, next: next, merged: merged)
        var w = 0
        for k in 0..<groupSize {
            let cell = (group << groupShift) | k
            let start = Int(oldStarts[cell])
            let header = Int(oldLists[start])
            starts[cell] = UInt32(truncatingIfNeeded: base &+ w)
            if counts[k] == 0 && header < 255 {
                // Copy the list; patch the gap of its first index at or past the run if it stays
                // one byte.
                let end = start &+ 1 &+ header
                _ = UnsafeMutableBufferPointer(rebasing: out[w..<(w &+ 1 &+ header)]).update(
                    fromContentsOf: UnsafeBufferPointer(rebasing: oldLists[start..<end]))
                var i = start &+ 1, v = -1, copied = true
                while i < end {
                    let b = Int(oldLists[i])
                    v &+= b == 0 ? 255 : b
                    if b == 0 || v < at {
                        i &+= 1
                        continue
                    }
                    let patched = b &+ shift
                    if v < at &+ removed || patched < 1 || patched > 255 { copied = false }
                    out[w &+ (i &- start)] = UInt8(truncatingIfNeeded: patched)
                    break
                }
                if copied {
                    w &+= 1 &+ header
                    continue
                }
            }
            let n = mergedList(
                start, plan, oldLists: oldLists, inserted: merged, next[k] &- counts[k], next[k], into: byCell, at: 0)
            if n == 0 { return nil }
            w = encodeList(byCell, 0, n, narrow: false, into: out, at: w)
        }
        return w
    }

    /// The `starts` entry holding the list ids[at ..< at + n] (1 ≤ n ≤ 3, indexes < 256) itself;
    /// a slot the list does not fill repeats its first index, which ties with itself and so never
    /// wins.
    @inline(__always)
    static func packed(_ ids: UnsafeMutableBufferPointer<Int>, _ at: Int, _ n: Int) -> UInt32 {
        let a = UInt32(truncatingIfNeeded: ids[at])
        let b = n > 1 ? UInt32(truncatingIfNeeded: ids[at &+ 1]) : a
        let d = n > 2 ? UInt32(truncatingIfNeeded: ids[at &+ 2]) : a
        return inlineFlag | a | b &<< 8 | d &<< 16
    }

    /// Marks an entry of `starts` that holds its list itself (up to `narrowLimit` virtual members,
    /// lists of 1–3): the indexes in bits 0–7, 8–15 and 16–23. At N ≤ 100 most cells hold one to
    /// three members, so most lookups then read `starts` and nothing else.
    @inlinable static var inlineFlag: UInt32 { 0x8000_0000 }

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

    @inlinable @inline(__always)
    package func lookup(_ key: UInt64) -> Int? {
        guard !owners.isEmpty else { return nil }
        let c = cell(key)
        if lineShift >= 0 {
            let v = lines.withUnsafeBufferPointer { lines in
                let line = lineOffset &+ (c &>> lineShift) &<< 6
                let at = line &+ (c & ((1 &<< lineShift) &- 1))
                let first = Int(lines[at])
                if first == 0 { return -1 }
                return firstSeeds.withUnsafeBufferPointer { a in
                    secondSeeds.withUnsafeBufferPointer { b in
                        RendezvousTable.chooseLine(key, lines, line &+ first, line &+ Int(lines[at &+ 1]), a, b)
                    }
                }
            }
            if v >= 0 { return Int(owners[v]) }
        }
        let entry = starts[c]
        let start = Int(entry)
        let v: Int = seeds.withUnsafeBufferPointer { seeds in
            if entry & RendezvousTable.inlineFlag != 0 { return RendezvousTable.chooseInline(key, entry, seeds) }
            return lists.withUnsafeBufferPointer { lists in
                let (first, end) = RendezvousTable.bounds(lists, start)
                if owners.count <= RendezvousTable.narrowLimit {
                    return RendezvousTable.choose(key, lists, first, end, seeds)
                }
                return RendezvousTable.chooseGapCoded(key, lists, first, end, seeds)
            }
        }
        return Int(owners[v])
    }

    /// Where the gap bytes of the list at `start` begin and end (see `lists`).
    @inlinable @inline(__always)
    static func bounds(_ lists: UnsafeBufferPointer<UInt8>, _ start: Int) -> (Int, Int) {
        let short = Int(lists[start])
        if short < 255 { return (start &+ 1, start &+ 1 &+ short) }
        var length = 0
        for i in 0..<4 { length |= Int(lists[start &+ 1 &+ i]) &<< (8 &* i) }
        return (start &+ 5, start &+ 5 &+ length)
    }

    /// The candidate list of cell `c` as stored, decoded (tests compare it with the definition).
    func storedList(_ c: Int) -> [Int] {
        let entry = starts[c]
        if entry & RendezvousTable.inlineFlag != 0 {
            let ids = [Int(entry & 0xFF), Int(entry >> 8 & 0xFF), Int(entry >> 16 & 0xFF)]
            return ids.enumerated().filter { $0.offset == 0 || $0.element != ids[0] }.map(\.element)
        }
        return lists.withUnsafeBufferPointer { lists in
            let (first, end) = RendezvousTable.bounds(lists, Int(starts[c]))
            if owners.count <= RendezvousTable.narrowLimit { return lists[first..<end].map { Int($0) } }
            var out: [Int] = [], v = -1
            for i in first..<end {
                v += lists[i] == 0 ? 255 : Int(lists[i])
                if lists[i] != 0 { out.append(v) }
            }
            return out
        }
    }

    /// The highest-scoring of the three candidates of an inline list (see `inlineFlag`); ties keep
    /// the earlier, which is the lower index.
    @inlinable @inline(__always)
    static func chooseInline(_ key: UInt64, _ entry: UInt32, _ seeds: UnsafeBufferPointer<UInt64>) -> Int {
        let a = Int(entry & 0xFF), b = Int(entry &>> 8 & 0xFF), c = Int(entry &>> 16 & 0xFF)
        let sa = score(key, seeds[2 &* a], seeds[2 &* a &+ 1])
        let sb = score(key, seeds[2 &* b], seeds[2 &* b &+ 1])
        let sc = score(key, seeds[2 &* c], seeds[2 &* c &+ 1])
        let ab = sb > sa ? b : a, sab = sb > sa ? sb : sa
        return sc > sab ? c : ab
    }

    /// The highest-scoring of the candidates `lists[first ..< end]` (plain byte indexes, at least
    /// one). One loop, branch-free maximum; ties keep the lower index (the earlier member in
    /// canonical order).
    @inlinable @inline(__always)
    static func choose(
        _ key: UInt64, _ lists: UnsafeBufferPointer<UInt8>, _ first: Int, _ end: Int,
        _ seeds: UnsafeBufferPointer<UInt64>
    ) -> Int {
        var best = Int(lists[first])
        var bestScore = score(key, seeds[2 &* best], seeds[2 &* best &+ 1])
        var i = first &+ 1
        while i < end {
            let v = Int(lists[i])
            let s = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
            let better = s > bestScore
            bestScore = better ? s : bestScore
            best = better ? v : best
            i &+= 1
        }
        return best
    }

    /// The highest-scoring candidate of the non-empty gap-coded list `lists[first ..< end]`; ties
    /// keep the lower index (the earlier member in canonical order). Branch-free after the first
    /// candidate: a skip byte (0) gets score 0, which cannot beat the first candidate's. Its
    /// index is still a member's (skips only precede a candidate), so the seed loads are safe.
    @inlinable @inline(__always)
    static func chooseGapCoded(
        _ key: UInt64, _ lists: UnsafeBufferPointer<UInt8>, _ first: Int, _ end: Int,
        _ seeds: UnsafeBufferPointer<UInt64>
    ) -> Int {
        var i = first
        var v = -1
        while lists[i] == 0 {
            v &+= 255
            i &+= 1
        }
        v &+= Int(lists[i])
        i &+= 1
        var best = v
        var bestScore = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
        while i < end {
            let gap = Int(lists[i])
            v &+= gap == 0 ? 255 : gap
            let raw = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
            let s = gap == 0 ? 0 : raw
            let better = s > bestScore
            bestScore = better ? s : bestScore
            best = better ? v : best
            i &+= 1
        }
        return best
    }

    /// The highest-scoring candidate of the non-empty gap-coded list `lines[first ..< end]`; ties
    /// keep the lower index. The same choice as `chooseGapCoded`, in fewer instructions per
    /// candidate, which is what a lookup at N = 1000 spends most of its time on: skip bytes
    /// (rare: a gap over 255) are taken in an inner loop whose test is predictable, not by a
    /// select in every step, and the seeds come from `firstSeeds` and `secondSeeds`. Safe:
    /// `first ..< end` lies inside `lines` (the line's own header bytes say so), every skip
    /// byte precedes a candidate's byte in the list, and the indexes decoded are virtual
    /// members', below the count of `a` and `b`.
    @inlinable @inline(__always)
    static func chooseLine(
        _ key: UInt64, _ lines: UnsafeBufferPointer<UInt8>, _ first: Int, _ end: Int,
        _ a: UnsafeBufferPointer<UInt64>, _ b: UnsafeBufferPointer<UInt64>
    ) -> Int {
        guard let bytes = lines.baseAddress, let a = a.baseAddress, let b = b.baseAddress else { return -1 }
        var p = bytes + first
        let stop = bytes + end
        var v = -1
        nextCandidate(&p, &v)
        var best = v
        var bestScore = score(key, a[v], b[v])
        while p < stop {
            nextCandidate(&p, &v)
            let s = score(key, a[v], b[v])
            let better = s > bestScore
            bestScore = better ? s : bestScore
            best = better ? v : best
        }
        return best
    }

    /// Reads the skip bytes and the candidate byte at `p` (see `lists`), adding their gaps to `v`
    /// and moving `p` past them.
    @inlinable @inline(__always)
    static func nextCandidate(_ p: inout UnsafePointer<UInt8>, _ v: inout Int) {
        var gap = Int(p.pointee)
        p += 1
        while gap == 0 {
            v &+= 255
            gap = Int(p.pointee)
            p += 1
        }
        v &+= gap
    }

    /// Preference order = the order lookups would take as the preferred members are removed one by
    /// one: virtual members by (size of the smallest fallback block holding both the key's cell
    /// and theirs — the cell itself, else an aligned block of at least 2^fallbackShift cells —
    /// ascending; score, descending). The group-sized block holds everyone, so the walk
    /// covers all members. Cost O(V) per yielded candidate; failover walks stop after one or two.
    @usableFromInline package func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
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
                    // Own cell 0, else the fallback block's log₂ size (never below fallbackShift).
                    let level = 64 - distance.leadingZeroBitCount
                    levels[v] = level == 0 ? 0 : max(level, fallbackShift)
                }
                SeenSet.with(capacity: virtualCount) { taken in
                    SeenSet.with(capacity: n) { yielded in
                        var remaining = n
                        while remaining > 0 {
                            var best = -1
                            for v in 0..<virtualCount where !taken.contains(v) {
                                if best < 0 || levels[v] < levels[best]
                                    || (levels[v] == levels[best] && scores[v] > scores[best])
                                {
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
