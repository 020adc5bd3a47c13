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
        let t = RendezvousTable(members: [HashMember(name: "big", number: 1, weight: 3),
                                          HashMember(name: "a", number: 2),
                                          HashMember(name: "b", number: 3)])
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

    /// `lookup` (narrow records including overflowing cells; wide lists past 255 virtual members)
    /// agrees with the reference order computed from first principles by forEachCandidate.
    func testLookupMatchesReferenceIncludingOverflowCells() {
        // N = 110 with 2^12 cells: ≈ 7 candidates per cell, a 16-entry stride, and a few cells
        // (< 1/256) whose lists overflow it. N = 300 and 1000 use the wide lists. N = 255 with
        // one-cell groups puts all 255 in every list: a 256-byte stride where a count of 255
        // must not be mistaken for the overflow mark.
        for (n, cellCount, groupShift) in [(5, 1 << 10, 4), (110, 1 << 12, 4), (300, 1 << 10, 4),
                                           (1000, 1 << 12, 4), (255, 16, 0), (40, 1 << 8, 8)] {
            let t = RendezvousTable(members: servers(n), cellCount: cellCount, groupShift: groupShift)
            XCTAssertEqual(t.entries16.isEmpty, n <= RendezvousTable.narrowLimit)
            XCTAssertEqual(t.records8.isEmpty, n > RendezvousTable.narrowLimit)
            var keys = randomKeys(2000, seed: UInt64(n))
            // Keys inside every overflowing cell: the cell is the key's top log2(M) bits.
            let shift = UInt64(64 - cellCount.trailingZeroBitCount)
            for c in t.overflowCells { keys.append(UInt64(c) << shift | 12345) }
            if n == 110 || n == 255 { XCTAssertFalse(t.overflowCells.isEmpty, "n = \(n) should exercise overflow") }
            for k in keys {
                var first: Int?
                t.forEachCandidate(k) { first = $0; return false }
                XCTAssertEqual(t.lookup(k), first, "n = \(n), key \(k)")
            }
        }
    }

    /// The candidate lists the table is built from, against a direct reading of the definition
    /// (each member's cell per group; for an empty cell the smallest non-empty aligned block).
    func testCandidateListsFollowTheDefinition() {
        for (n, cellCount, groupShift) in [(3, 1 << 8, 4), (40, 1 << 8, 4), (300, 1 << 7, 3), (7, 64, 6)] {
            let t = RendezvousTable(members: servers(n), cellCount: cellCount, groupShift: groupShift)
            let lists = RendezvousTable.candidateLists(seeds: t.seeds, cellCount: cellCount, groupShift: groupShift)
            let groupSize = 1 << groupShift
            for c in 0..<cellCount {
                let group = c >> groupShift, offset = c & (groupSize - 1)
                var span = 1, expected: [UInt16] = []
                while expected.isEmpty {
                    let first = offset & ~(span - 1)
                    expected = (0..<n).filter { v in
                        let cell = RendezvousTable.cellInGroup(t.seeds[2 * v], group, groupShift)
                        return cell >= first && cell < first + span
                    }.map { UInt16($0) }
                    span <<= 1
                }
                let got = Array(lists.entries[Int(lists.starts[c])..<Int(lists.starts[c + 1])])
                XCTAssertEqual(got, expected, "n = \(n), cell \(c)")
            }
        }
    }

    /// Golden vectors: fixed keys → fixed member names. Generated once with this implementation
    /// and frozen: a change here means every deployed table would route differently.
    func testGoldenVectors() {
        let t = RendezvousTable(members: servers(5))
        let got = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { t.members[t.lookup(t.key($0))!].name }
        XCTAssertEqual(got, goldenRendezvous)
        let big = RendezvousTable(members: servers(100))
        let gotBig = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { big.members[big.lookup(big.key($0))!].name }
        XCTAssertEqual(gotBig, goldenRendezvous100)
    }
}

private let goldenRendezvous = ["server-5", "server-2", "server-1", "server-4", "server-2", "server-3"]
private let goldenRendezvous100 = ["server-60", "server-38", "server-74", "server-94", "server-71", "server-69"]
