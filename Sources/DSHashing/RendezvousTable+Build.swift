/// How a `RendezvousTable` is built: the candidate lists of every cell (fresh, or derived from a
/// previous table), their encoding and their copy into cache lines. See RendezvousTable.swift for
/// the table's layout and the routing contract these functions must keep.
extension RendezvousTable {
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
    /// Returns a bit per group that a list outgrowing its slot wrote into: its own, and the next
    /// when the group's last cell ran on (those groups are counting-sorted instead).
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
                let gap = v &+ 1 &- (word & 0xFFFF)
                if gap > 255 {
                    // The slot's skip bytes are already zero: only the position moves past them.
                    // (A loop of zero stores here became a call to memset.)
                    let skips = (gap &- 1) / 255
                    let at = word &>> 16 &+ skips
                    slots[at] = UInt8(truncatingIfNeeded: gap &- 255 &* skips)
                    state[i] = (at &+ 1) &<< 16 | (v &+ 1)
                    continue
                }
                slots[word &>> 16] = UInt8(truncatingIfNeeded: gap)
                // The next position and the last member + 1 (the old one + gap) in one add.
                state[i] = word &+ gap &+ 0x10000
            }
        }
        var overflow: UInt64 = 0
        for i in 0..<n {
            state[i] &>>= 16
            // A list past its slot's end ran on into the next slots, which may be the next
            // group's: every group it reached is wrong.
            if state[i] > (i &+ 1) &<< slotShift {
                let last = min(((state[i] &- 1) &>> slotShift) &>> groupShift, count &- 1)
                for b in (i &>> groupShift)...last { overflow |= 1 &<< UInt64(truncatingIfNeeded: b) }
            }
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
        let lineBytes = (groupSize &>> lineShift) &<< 6
        let firstLine = ((group &<< groupShift) &>> lineShift) &<< 6
        if lineShift == 1 && slotShift >= 6 && firstLine &+ lineBytes &+ 3 <= lines.count,
            let source = slots.baseAddress.map(UnsafeRawPointer.init),
            let target = lines.baseAddress.map(UnsafeMutableRawPointer.init)
        {
            directLines(
                source + firstSlot, slotShift: slotShift, cells: groupSize, before: before,
                into: target + firstLine)
            return w
        }
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

    /// The lines of two cells each (`lineShift` 1) of a group whose every list is its slot's,
    /// written straight into `lines`: per line, the zeros of its second half, the header, and
    /// each list as the first 32 bytes after its slot's length byte (the list and the zeros
    /// after it), the second list over the zeros the first one's copy leaves. Seven stores a
    /// line where assembling it in `stage` and copying it out took over twenty. The second
    /// list's copy may run up to 3 bytes into the next line, which is written after this one.
    /// Safe: the slots are `appendRun`'s (2^slotShift ≥ 64 bytes, so 33 bytes from the slot's
    /// start stay in it, zero past the list), `before` holds `cells` + 1 byte counts, and `line`
    /// has room for `cells` / 2 lines and 3 bytes.
    @inline(__always)
    static func directLines(
        _ slots: UnsafeRawPointer, slotShift: Int, cells: Int, before: UnsafeMutableBufferPointer<Int>,
        into line: UnsafeMutableRawPointer
    ) {
        let zero = SIMD16<UInt8>()
        var line = line
        for k in stride(from: 0, to: cells, by: 2) {
            let a = before[k &+ 1] &- before[k], b = before[k &+ 2] &- before[k &+ 1]
            line.storeBytes(of: zero, toByteOffset: 32, as: SIMD16<UInt8>.self)
            line.storeBytes(of: zero, toByteOffset: 48, as: SIMD16<UInt8>.self)
            if a &+ b <= 61 && a <= 32 && b <= 32 {
                line.storeBytes(
                    of: UInt32(truncatingIfNeeded: 3 | (3 &+ a) &<< 8 | (3 &+ a &+ b) &<< 16), as: UInt32.self)
                let first = slots + (k &<< slotShift &+ 1), second = slots + ((k &+ 1) &<< slotShift &+ 1)
                let a0 = first.loadUnaligned(as: SIMD16<UInt8>.self)
                let a1 = first.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
                line.storeBytes(of: a0, toByteOffset: 3, as: SIMD16<UInt8>.self)
                line.storeBytes(of: a1, toByteOffset: 19, as: SIMD16<UInt8>.self)
                let b0 = second.loadUnaligned(as: SIMD16<UInt8>.self)
                let b1 = second.loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
                line.storeBytes(of: b0, toByteOffset: 3 &+ a, as: SIMD16<UInt8>.self)
                line.storeBytes(of: b1, toByteOffset: 19 &+ a, as: SIMD16<UInt8>.self)
            } else {
                line.storeBytes(of: zero, as: SIMD16<UInt8>.self)
                line.storeBytes(of: zero, toByteOffset: 16, as: SIMD16<UInt8>.self)
                if a &+ b <= 61 {
                    // A list over 32 bytes: byte by byte, within the line.
                    line.storeBytes(
                        of: UInt32(truncatingIfNeeded: 3 | (3 &+ a) &<< 8 | (3 &+ a &+ b) &<< 16), as: UInt32.self)
                    let first = slots + (k &<< slotShift &+ 1), second = slots + ((k &+ 1) &<< slotShift &+ 1)
                    for i in 0..<a {
                        line.storeBytes(of: first.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 3 &+ i, as: UInt8.self)
                    }
                    for i in 0..<b {
                        line.storeBytes(
                            of: second.load(fromByteOffset: i, as: UInt8.self), toByteOffset: 3 &+ a &+ i, as: UInt8.self)
                    }
                }
            }
            line += 64
        }
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
}
