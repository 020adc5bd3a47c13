/// How a `RendezvousTable` is read: a key's cell, its candidates' scores and the preference
/// order for failover. See RendezvousTable.swift for the layout these functions read.
extension RendezvousTable {
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

    /// The key's cell, ⌊key·M/2⁶⁴⌋ (Lemire's fast range reduction; for M a power of two, the
    /// key's top log₂ M bits).
    @inlinable @inline(__always)
    func cell(_ key: UInt64) -> Int {
        if cellShift != 0 { return Int(truncatingIfNeeded: key &>> UInt64(truncatingIfNeeded: cellShift)) }
        return Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(cellCount)).high)
    }

    @inlinable @inline(__always)
    package func lookup(_ key: UInt64) -> Int? {
        let c = cell(key)
        if lineShift >= 0 {
            // A table with lines has members (see `lineShift`), and `chooseLine` returns one.
            let v = lineLookup(key, c)
            if v >= 0 { return owners.withUnsafeBufferPointer { Int($0[v]) } }
        }
        guard !owners.isEmpty else { return nil }
        let entry = starts[c]
        let start = Int(entry)
        let v: Int = seeds.withUnsafeBufferPointer { seeds in
            if entry & RendezvousTable.inlineFlag != 0 { return RendezvousTable.chooseInline(key, entry, seeds) }
            return lists.withUnsafeBufferPointer { lists in
                let (first, end) = RendezvousTable.bounds(lists, start)
                if owners.count <= RendezvousTable.narrowLimit {
                    return RendezvousTable.choose(key, lists, first, end, seeds, gapCoded: false)
                }
                return RendezvousTable.choose(key, lists, first, end, seeds, gapCoded: true)
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

    /// The highest-scoring candidate of the non-empty list `lists[first ..< end]`; ties keep the
    /// lower index (the earlier member in canonical order). `gapCoded` says how the bytes name
    /// candidates (see `lists`): false, each byte is an index; true, each byte is a gap, 0 a skip.
    /// Callers pass a literal, so the inlined copy keeps only its own decoding.
    ///
    /// Branch-free after the first candidate: a skip byte gets score 0, which cannot beat the
    /// first candidate's. Its index is still a member's (skips only precede a candidate), so the
    /// seed loads are safe.
    @inlinable @inline(__always)
    static func choose(
        _ key: UInt64, _ lists: UnsafeBufferPointer<UInt8>, _ first: Int, _ end: Int,
        _ seeds: UnsafeBufferPointer<UInt64>, gapCoded: Bool
    ) -> Int {
        var i = first
        var v = -1
        if gapCoded {
            while lists[i] == 0 {
                v &+= 255
                i &+= 1
            }
            v &+= Int(lists[i])
        } else {
            v = Int(lists[i])
        }
        i &+= 1
        var best = v
        var bestScore = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
        while i < end {
            let byte = Int(lists[i])
            let skip = gapCoded && byte == 0
            if gapCoded { v &+= skip ? 255 : byte } else { v = byte }
            let raw = score(key, seeds[2 &* v], seeds[2 &* v &+ 1])
            let s = skip ? 0 : raw
            let better = s > bestScore
            bestScore = better ? s : bestScore
            best = better ? v : best
            i &+= 1
        }
        return best
    }

    /// The virtual member cell `c` chooses from its line, or −1 when the line holds no lists (see
    /// `lines`; only with `lineShift` ≥ 0).
    ///
    /// Safe: a table has lines only with more than `narrowLimit` virtual members, so `lines`,
    /// `firstSeeds` and `secondSeeds` are non-empty; the line and its header bytes lie inside
    /// `lines` (`lineOffset` and the size the build gives it), and so does the list they name.
    @inlinable @inline(__always)
    func lineLookup(_ key: UInt64, _ c: Int) -> Int {
        lines.withUnsafeBufferPointer { lines in
            firstSeeds.withUnsafeBufferPointer { a in
                secondSeeds.withUnsafeBufferPointer { b in
                    let line = lines.baseAddress.unsafelyUnwrapped + (lineOffset &+ (c &>> lineShift) &<< 6)
                    let at = c & ((1 &<< lineShift) &- 1)
                    let first = Int(line[at])
                    if first == 0 { return -1 }
                    return RendezvousTable.chooseLine(
                        key, line + first, Int(line[at &+ 1]) &- first, a.baseAddress.unsafelyUnwrapped,
                        b.baseAddress.unsafelyUnwrapped)
                }
            }
        }
    }

    /// The highest-scoring candidate of the non-empty gap-coded list of `count` bytes at `list`
    /// (see `lists`); ties keep the lower index. The same choice as `choose(…, gapCoded: true)`,
    /// in fewer instructions per candidate, which is what a lookup at N = 1000 spends most of its
    /// time on: skip bytes (rare: a gap over 255) are taken by a branch that is predictably not
    /// taken, not by a select in every step, and the seeds come from `firstSeeds` and
    /// `secondSeeds`.
    ///
    /// The loop counts bytes from 0 rather than walking a pointer to the list's end: the list's
    /// place comes from the line, the one cache miss, and a pointer started there puts a chain
    /// of one add per byte between the miss and the loop's exit, which no predictor gets right
    /// for lists of varying length. A count from 0 is ready before the line comes, so the exit
    /// resolves with the line's header bytes.
    ///
    /// Safe: every skip byte precedes a candidate's byte in the list, and the indexes decoded are
    /// virtual members', below the count of `a` and `b`.
    @inlinable @inline(__always)
    static func chooseLine(
        _ key: UInt64, _ list: UnsafePointer<UInt8>, _ count: Int, _ a: UnsafePointer<UInt64>,
        _ b: UnsafePointer<UInt64>
    ) -> Int {
        var p = list
        var v = -1
        nextCandidate(&p, &v)
        var best = v
        var bestScore = score(key, a[v], b[v])
        let n = count &- (p - list)
        var k = 0
        while k < n {
            let gap = Int(p[k])
            k &+= 1
            if gap == 0 {
                v &+= 255
                continue
            }
            v &+= gap
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
