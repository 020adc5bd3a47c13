import XCTest

@testable import DSHashing

final class RendezvousTableTests: XCTestCase {
    func testAlgorithmNameAndDefault() {
        XCTAssertEqual(RendezvousTable.algorithmName, "rendezvous")
        XCTAssertEqual(HashAlgorithm.default, .rendezvous)
        XCTAssertTrue(HashAlgorithm.default.build(servers(3)) is RendezvousTable)
    }

    func testEmptyMembershipReturnsNil() {
        let t = RendezvousTable(members: [])
        XCTAssertNil(t.lookup(7))
        XCTAssertEqual(candidates(t, 7), [])
    }

    func testSingleMemberGetsEverything() {
        let t = RendezvousTable(members: [HashMember(name: "solo", number: 1)])
        for k in randomKeys(2000, seed: 1) {
            XCTAssertEqual(t.lookup(k), 0)
            XCTAssertEqual(candidates(t, k), [0])
        }
    }

    func testOrderIndependence() {
        let members = servers(40)
        var rng = SplitMix64(seed: 17)
        let a = RendezvousTable(members: members)
        let b = RendezvousTable(members: members.shuffled(using: &rng))
        XCTAssertEqual(a.members, b.members)
        let keys = randomKeys(10_000, seed: 18)
        XCTAssertEqual(keys.map { a.lookup($0) }, keys.map { b.lookup($0) })
    }

    /// Minimal disruption, both ways: removing a member moves exactly its keys; adding one moves
    /// keys only onto the new member.
    func testRemovalAndAdditionMoveOnlyTheChangedMembersKeys() {
        let keys = randomKeys(30_000, seed: 23)
        for n in [3, 12, 70] {
            let all = servers(n)
            let full = RendezvousTable(members: all)
            let before = ownerNames(full, keys)
            let removed = "server-\(n / 2 + 1)"
            let after = ownerNames(RendezvousTable(members: all.filter { $0.name != removed }), keys)
            var moved = 0
            for (b, a) in zip(before, after) where b != a {
                XCTAssertEqual(b, removed, "n = \(n): a key left a member that stayed")
                moved += 1
            }
            XCTAssertEqual(moved, before.filter { $0 == removed }.count)
            XCTAssertGreaterThan(moved, 0)

            let added = ownerNames(RendezvousTable(members: all + servers(1, from: n + 1)), keys)
            var gained = 0
            for (b, a) in zip(before, added) where b != a {
                XCTAssertEqual(a, "server-\(n + 1)", "n = \(n): a key moved between old members")
                gained += 1
            }
            // The newcomer takes about 1/(n+1) of the keys.
            let share = Double(gained) / Double(keys.count)
            XCTAssertEqual(share, 1.0 / Double(n + 1), accuracy: 0.25 / Double(n + 1))
        }
    }

    /// Balance at a fixed seed. 400k keys at N = 10 leave ≈ 0.5 % sampling noise, so the bound
    /// mostly checks the table (≈ 1 % deviation by design).
    func testBalance() {
        let t = RendezvousTable(members: servers(10))
        let ratio = maxOverAvg(counts(t, randomKeys(400_000, seed: 29)))
        XCTAssertLessThan(ratio, 1.04)
    }

    func testWeightsScaleTheShare() {
        let t = RendezvousTable(members: [
            HashMember(name: "big", number: 1, weight: 3),
            HashMember(name: "a", number: 2),
            HashMember(name: "b", number: 3),
        ])
        let c = counts(t, randomKeys(100_000, seed: 31))
        let big = c[t.members.firstIndex { $0.name == "big" }!]
        XCTAssertEqual(Double(big) / 100_000, 0.6, accuracy: 0.02)
    }

    /// forEachCandidate: distinct, covers everyone, starts with `lookup`, and the second candidate
    /// is exactly where the key goes once the first member is removed.
    func testCandidateOrderMatchesSuccessiveRemovals() {
        let all = servers(20)
        let full = RendezvousTable(members: all)
        let keys = randomKeys(400, seed: 37)
        var withoutFirst: [String: RendezvousTable] = [:] // one rebuild per removed member
        for k in keys {
            let c = candidates(full, k)
            XCTAssertEqual(c.count, 20)
            XCTAssertEqual(Set(c).count, 20)
            XCTAssertEqual(c.first, full.lookup(k))
            let removed = full.members[c[0]].name
            let without = withoutFirst[removed] ?? RendezvousTable(members: all.filter { $0.name != removed })
            withoutFirst[removed] = without
            XCTAssertEqual(without.members[without.lookup(k)!].name, full.members[c[1]].name)
        }
    }

    /// `lookup` (plain byte lists up to `narrowLimit` virtual members, gap-coded beyond) agrees with the
    /// reference order computed from first principles by forEachCandidate, for the default
    /// contract's shape and for other group and fallback sizes.
    func testLookupMatchesReference() {
        // (members, cells, groupShift, fallbackShift): N = 300 and 1000 use UInt16 lists; g = 1
        // puts everyone in every cell; fallback blocks from 2 cells, from the whole group, and
        // larger than the group (the whole group).
        let shapes = [
            (5, 1 << 10, 6, 3), (110, 1 << 12, 6, 3), (300, 1 << 10, 6, 3), (1000, 1 << 12, 6, 3),
            (255, 16, 0, 3), (40, 1 << 9, 8, 1), (40, 1 << 8, 4, 1), (3, 1 << 9, 6, 6), (7, 1 << 9, 4, 9),
        ]
        for (n, cellCount, groupShift, fallbackShift) in shapes {
            let t = RendezvousTable(
                members: servers(n), cellCount: cellCount, groupShift: groupShift,
                fallbackShift: fallbackShift)
            // Plain byte lists of 1–3 members live in `starts` itself; both kinds are looked up.
            if n <= RendezvousTable.narrowLimit {
                XCTAssertTrue(t.starts.contains { $0 & RendezvousTable.inlineFlag != 0 }, "n = \(n)")
            }
            for k in randomKeys(2000, seed: UInt64(n)) {
                var first: Int?
                t.forEachCandidate(k) {
                    first = $0; return false
                }
                XCTAssertEqual(t.lookup(k), first, "n = \(n), key \(k)")
            }
        }
    }

    /// The cell is ⌊key·M/2⁶⁴⌋ for every M: the top bits of the key when M is a power of two,
    /// the multiply otherwise (and for M = 1).
    func testCellIsTheRangeReduction() {
        let keys = randomKeys(2000, seed: 11) + [0, 1, UInt64.max, UInt64.max >> 1, 1 << 63, 0xFFFF_8000_0000_0000]
        for (cellCount, groupShift, shifts) in [
            (RendezvousTable.defaultCellCount, 6, true), (1 << 12, 6, true), (64, 6, true), (2, 0, true),
            (3 << 10, 6, false), (192, 6, false), (1, 0, false),
        ] {
            let t = RendezvousTable(members: servers(5), cellCount: cellCount, groupShift: groupShift)
            XCTAssertEqual(t.cellShift != 0, shifts, "M = \(cellCount)")
            for k in keys {
                XCTAssertEqual(t.cell(k), Int(k.multipliedFullWidth(by: UInt64(cellCount)).high), "M = \(cellCount), key \(k)")
            }
        }
    }

    /// The lookup through lines at the default contract's shape (2¹⁷ cells, whose keys' cells
    /// are their top bits) and with a cell count that is no power of two (the multiply), at
    /// N = 1000, where lists hold skip bytes: the reference's choice for every key.
    func testLineLookupAtDefaultShapeMatchesReference() {
        for cellCount in [RendezvousTable.defaultCellCount, 3 << 10] {
            let t = RendezvousTable(members: servers(1000), cellCount: cellCount)
            XCTAssertEqual(t.lineShift, 1)
            var skips = 0
            for k in randomKeys(3000, seed: UInt64(cellCount)) {
                var first: Int?
                t.forEachCandidate(k) {
                    first = $0; return false
                }
                XCTAssertEqual(t.lookup(k), first, "M = \(cellCount), key \(k)")
                let start = Int(t.starts[t.cell(k)])
                if t.lists[(start + 1)..<(start + 1 + Int(t.lists[start]))].contains(0) { skips += 1 }
            }
            XCTAssertGreaterThan(skips, 100, "lists with a skip byte are looked up")
        }
    }

    /// The stored candidate lists against a direct reading of the definition: each member's cell
    /// per group; for an empty cell the smallest non-empty aligned block of at least
    /// 2^fallbackShift cells (at most the group).
    func testCandidateListsFollowTheDefinition() {
        // N = 254 and 255: the last plain and the first gap-coded lists; N = 1500 has gaps past 255.
        let shapes = [
            (3, 1 << 8, 6, 3), (40, 1 << 8, 6, 3), (100, 1 << 9, 6, 3), (300, 1 << 7, 3, 1), (7, 64, 6, 2),
            (20, 1 << 9, 8, 3), (254, 1 << 7, 6, 3), (255, 1 << 7, 6, 3), (1500, 1 << 7, 6, 3),
        ]
        for (n, cellCount, groupShift, fallbackShift) in shapes {
            let t = RendezvousTable(
                members: servers(n), cellCount: cellCount, groupShift: groupShift,
                fallbackShift: fallbackShift)
            let groupSize = 1 << groupShift
            for c in 0..<cellCount {
                let group = c >> groupShift, offset = c & (groupSize - 1)
                func members(_ first: Int, _ span: Int) -> [Int] {
                    (0..<n).filter { v in
                        let cell = RendezvousTable.cellInGroup(t.seeds[2 * v], group, groupShift)
                        return cell >= first && cell < first + span
                    }
                }
                var expected = members(offset, 1)
                var span = min(groupSize, 1 << fallbackShift)
                while expected.isEmpty {
                    expected = members(offset & ~(span - 1), span)
                    span <<= 1
                }
                XCTAssertEqual(t.storedList(c), expected, "n = \(n), cell \(c)")
            }
        }
    }

    /// Gap coding at its edges: with 50,000 virtual members in one 256-cell group, lists hold
    /// ≈ 195 members with gaps around 256, so they need skip bytes, and some lists of fewer than
    /// 255 members take 255 bytes or more (the 4-byte length); fallback-free one-cell groups give
    /// lists of every member (long from the start).
    func testGapCodedListsWithSkipsAndLongLengths() {
        for (n, cellCount, groupShift) in [(50_000, 256, 8), (600, 4, 0)] {
            let t = RendezvousTable(members: servers(n), cellCount: cellCount, groupShift: groupShift)
            var byCell = [[Int]](repeating: [], count: 1 << groupShift)
            for v in 0..<n { byCell[RendezvousTable.cellInGroup(t.seeds[2 * v], 0, groupShift)].append(v) }
            var skips = 0, longShort = 0
            t.lists.withUnsafeBufferPointer { lists in
                for c in 0..<(1 << groupShift) where !byCell[c].isEmpty {
                    let (first, end) = RendezvousTable.bounds(lists, Int(t.starts[c]))
                    skips += lists[first..<end].filter { $0 == 0 }.count
                    if lists[Int(t.starts[c])] == 255 && byCell[c].count < 255 { longShort += 1 }
                }
            }
            for c in 0..<(1 << groupShift) where !byCell[c].isEmpty {
                XCTAssertEqual(t.storedList(c), byCell[c], "n = \(n), cell \(c)")
            }
            if n == 50_000 {
                XCTAssertGreaterThan(skips, 0)
                XCTAssertGreaterThan(longShort, 0)
            }
            for k in randomKeys(20, seed: UInt64(n)) {
                var first: Int?
                t.forEachCandidate(k) {
                    first = $0; return false
                }
                XCTAssertEqual(t.lookup(k), first, "n = \(n), key \(k)")
            }
        }
    }

    /// A fresh wide table whose cells outgrow their build slots (see
    /// `RendezvousTable.appendedGroup`) is the table built with roomy slots, byte for byte: the
    /// groups with a full slot are counting-sorted instead. At 3000 virtual members every group
    /// overflows 31-byte slots, at 1500 some do; fallback lists at 300 (empty cells). At 1200 a
    /// group's last cell runs on into the next group's first slot: both groups are sorted.
    func testOverflowingBuildSlotsGiveTheSameTable() {
        for (n, cellCount) in [(3000, 1 << 10), (1500, 1 << 12), (1200, 1 << 10), (300, 1 << 12)] {
            let roomy = RendezvousTable(members: servers(n), cellCount: cellCount)
            let small = RendezvousTable(
                members: servers(n), cellCount: cellCount, groupShift: RendezvousTable.defaultGroupShift,
                fallbackShift: RendezvousTable.defaultFallbackShift, slotShift: 5)
            XCTAssertTrue(small.starts == roomy.starts, "starts, n = \(n)")
            XCTAssertTrue(small.lists == roomy.lists, "lists, n = \(n)")
            XCTAssertTrue(small.occupied == roomy.occupied, "occupied, n = \(n)")
            XCTAssertEqual(small.lineShift, roomy.lineShift, "n = \(n)")
            if roomy.lineShift >= 0 {
                let count = (roomy.cellCount >> roomy.lineShift) << 6
                XCTAssertTrue(
                    small.lines[small.lineOffset..<(small.lineOffset + count)]
                        .elementsEqual(roomy.lines[roomy.lineOffset..<(roomy.lineOffset + count)]), "n = \(n)")
            }
        }
    }

    /// The lookup's lines (see `RendezvousTable.lines`) hold each cell's stored list, byte for
    /// byte, or are all zero (the lookup then reads `starts` and `lists`); the lookup through
    /// them, and through the fallback, is the reference's. N = 300 and 1000 share a line between
    /// two cells, 2000 and 2600 give a cell a line of its own, and at 2600 a few lists do not fit.
    func testLinesHoldTheListsAndLookUpAsTheReference() {
        var escapedAtLargest = 0
        for (n, shift) in [(300, 1), (1000, 1), (2000, 0), (2600, 0), (2601, -1), (254, -1)] {
            let t = RendezvousTable(members: servers(n), cellCount: 1 << 12)
            XCTAssertEqual(t.lineShift, shift, "n = \(n)")
            guard shift >= 0 else {
                XCTAssertTrue(t.lines.isEmpty, "n = \(n)")
                continue
            }
            XCTAssertEqual(t.lines.count, (t.cellCount >> shift) * 64 + 63, "n = \(n)")
            t.lines.withUnsafeBufferPointer { XCTAssertEqual(Int(bitPattern: $0.baseAddress! + t.lineOffset) % 64, 0) }
            var escaped = 0
            for c in 0..<t.cellCount {
                let line = t.lineOffset + (c >> shift) << 6
                let at = line + (c & ((1 << shift) - 1))
                guard t.lines[at] != 0 else {
                    XCTAssertTrue(t.lines[line..<(line + 64)].allSatisfy { $0 == 0 }, "n = \(n), cell \(c)")
                    escaped += 1
                    continue
                }
                let start = Int(t.starts[c])
                let stored = t.lists[(start + 1)..<(start + 1 + Int(t.lists[start]))]
                XCTAssertEqual(Array(t.lines[(line + Int(t.lines[at]))..<(line + Int(t.lines[at + 1]))]), Array(stored))
            }
            if n == 2600 { escapedAtLargest = escaped } else { XCTAssertEqual(escaped, 0, "n = \(n)") }
            for k in randomKeys(3000, seed: UInt64(n)) {
                var first: Int?
                t.forEachCandidate(k) {
                    first = $0; return false
                }
                XCTAssertEqual(t.lookup(k), first, "n = \(n), key \(k)")
            }
        }
        XCTAssertGreaterThan(escapedAtLargest, 0)
    }

    /// A table derived from the previous one has the fresh build's lines (they are copied from the
    /// same lists), whatever alignment each array's storage gave its first line.
    func testDerivedTableHasTheFreshLines() {
        let base = servers(300)
        var heavier = base
        heavier[7].weight = 3
        var without = base
        without.remove(at: 150)
        for (before, after) in [(base, base + servers(1, from: 301)), (base, without), (base, heavier)] {
            let previous = RendezvousTable(members: before)
            XCTAssertNotNil(RendezvousTable.Incremental(previous: previous, members: after))
            let derived = RendezvousTable(members: after, previous: previous)
            let fresh = RendezvousTable(members: after)
            XCTAssertEqual(derived.lineShift, 1)
            let count = (fresh.cellCount >> fresh.lineShift) << 6
            XCTAssertTrue(
                derived.lines[derived.lineOffset..<(derived.lineOffset + count)]
                    .elementsEqual(fresh.lines[fresh.lineOffset..<(fresh.lineOffset + count)]))
        }
    }

    /// A table derived from the previous one (one member added, removed or reweighted, as the
    /// control plane rebuilds) is the fresh build's, byte for byte, over a random sequence of
    /// changes; a weight of 0 and weights up to 8 included, and the narrow limit crossed (there
    /// a fresh build is taken). The derivation must actually run: most steps qualify.
    func testIncrementalRebuildEqualsFreshBuild() {
        var rng = SplitMix64(seed: 91)
        var members = servers(260)
        var table = RendezvousTable(members: members)
        var next = 261, derived = 0
        for step in 0..<36 {
            switch rng.next() % 3 {
            case 0:
                members.append(HashMember(name: "server-\(next)", number: next, weight: Int(rng.next() % 4)))
                next += 1
            case 1:
                members.remove(at: Int(rng.next() % UInt64(members.count)))
            default:
                members[Int(rng.next() % UInt64(members.count))].weight = Int(rng.next() % 9)
            }
            members.shuffle(using: &rng)
            if RendezvousTable.Incremental(previous: table, members: members) != nil { derived += 1 }
            table = assertDerivedEqualsFresh(members, previous: table, "step \(step)")
        }
        XCTAssertGreaterThan(derived, 24)
        // Skip bytes (gaps over 255) occur in these lists, so the derivation decodes them too.
        let skips = table.lists.filter { $0 == 0 }.count
        XCTAssertGreaterThan(skips, 0)
    }

    /// The derivation's edge cases, each against a fresh build: the change at either end of the
    /// canonical order, a duplicate name, a number change alone, weight 0 coming and going, a
    /// weight raised by many virtual members at once, and the narrow limit crossed both ways.
    func testIncrementalRebuildEdgeCasesEqualFreshBuild() {
        let base = servers(300)
        var duplicate = base
        duplicate.append(HashMember(name: "server-150", number: 999))
        var renumbered = base
        renumbered[10].number = 1000
        var zero = base
        zero[40].weight = 0
        var heavy = base
        heavy[200].weight = 40
        var drained = base
        drained.insert(HashMember(name: "server-0", number: 0, weight: 0), at: 0)
        let cases: [(String, [HashMember], [HashMember], derived: Bool)] = [
            ("first removed", base, Array(base.dropFirst()), true),
            ("last removed", base, Array(base.dropLast()), true),
            ("first added", Array(base.dropFirst()), base, true),
            ("duplicate name added", base, duplicate, true),
            ("duplicate name removed", duplicate, base, true),
            ("number changed", base, renumbered, true),
            ("weight to 0", base, zero, true),
            ("weight from 0", zero, base, true),
            ("a weight-0 member added", base, drained, true),
            ("weight 1 to 40", base, heavy, true),
            ("weight 40 to 1", heavy, base, true),
            ("down to the narrow limit", servers(255), servers(254), false),
            ("up past the narrow limit", servers(254), servers(255), false),
        ]
        for (name, before, after, derived) in cases {
            let previous = RendezvousTable(members: before)
            XCTAssertEqual(RendezvousTable.Incremental(previous: previous, members: after) != nil, derived, name)
            assertDerivedEqualsFresh(after, previous: previous, name)
        }
    }

    /// The table derived from `previous` over `members`, checked byte for byte against a fresh
    /// build.
    @discardableResult
    private func assertDerivedEqualsFresh(
        _ members: [HashMember], previous: RendezvousTable, _ context: String, line: UInt = #line
    ) -> RendezvousTable {
        let fresh = RendezvousTable(members: members)
        let derived = RendezvousTable(members: members, previous: previous)
        XCTAssertTrue(derived.members == fresh.members, "members, \(context)", line: line)
        XCTAssertTrue(derived.seeds == fresh.seeds, "seeds, \(context)", line: line)
        XCTAssertTrue(derived.owners == fresh.owners, "owners, \(context)", line: line)
        XCTAssertTrue(derived.starts == fresh.starts, "starts, \(context)", line: line)
        XCTAssertTrue(derived.lists == fresh.lists, "lists, \(context)", line: line)
        XCTAssertTrue(derived.occupied == fresh.occupied, "occupied, \(context)", line: line)
        return derived
    }

    /// One placement hash serves ⌊64 / groupShift⌋ groups, one bit field each: the fields of
    /// consecutive groups are consecutive slices of the same SplitMix64 output.
    func testPlacementFieldsComeFromOneHashPerRun() {
        let seed: UInt64 = 0x1234_5678_9ABC_DEF1
        let x = RendezvousTable.mix(seed &+ 1 &* 0x9E37_79B9_7F4A_7C15)
        XCTAssertEqual(RendezvousTable.groupsPerHash(6), 10)
        for group in 0..<10 {
            XCTAssertEqual(RendezvousTable.cellInGroup(seed, group, 6), Int((x >> UInt64(58 - 6 * group)) & 63))
        }
        let y = RendezvousTable.mix(seed &+ 2 &* 0x9E37_79B9_7F4A_7C15)
        XCTAssertEqual(RendezvousTable.cellInGroup(seed, 10, 6), Int(y >> 58))
    }

    /// Golden vectors: fixed keys → fixed member names. Generated once with this implementation
    /// and frozen: a change here means every deployed table would route differently. (Regenerated
    /// once, for the 2¹⁷-cell contract with 64-cell groups and fallback blocks from 8 cells, which
    /// replaced the 2¹⁶-cell, 16-cell-group one to meet the N = 1000 lookup and build bounds.)
    func testGoldenVectors() {
        let t = RendezvousTable(members: servers(5))
        let got = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { t.members[t.lookup(t.key($0))!].name }
        XCTAssertEqual(got, goldenRendezvous)
        let big = RendezvousTable(members: servers(100))
        let gotBig = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { big.members[big.lookup(big.key($0))!].name }
        XCTAssertEqual(gotBig, goldenRendezvous100)
        let huge = RendezvousTable(members: servers(1000))
        let gotHuge = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { huge.members[huge.lookup(huge.key($0))!].name }
        XCTAssertEqual(gotHuge, goldenRendezvous1000)
    }
}

private let goldenRendezvous = ["server-2", "server-4", "server-5", "server-4", "server-2", "server-2"]
private let goldenRendezvous100 = ["server-50", "server-39", "server-97", "server-62", "server-82", "server-18"]
private let goldenRendezvous1000 = ["server-872", "server-556", "server-715", "server-529", "server-995", "server-172"]
