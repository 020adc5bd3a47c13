import XCTest

@testable import DSHashing

final class RingTests: XCTestCase {
    func testAlgorithmName() {
        XCTAssertEqual(Ring.algorithmName, "ring")
    }

    func testEmptyMembershipReturnsNil() {
        let ring = Ring(members: [])
        XCTAssertNil(ring.lookup(42))
        XCTAssertEqual(candidates(ring, 42), [])
    }

    func testSingleMemberGetsEverything() {
        let ring = Ring(members: [HashMember(name: "only", number: 1)])
        for k in randomKeys(1000, seed: 3) {
            XCTAssertEqual(ring.lookup(k), 0)
            XCTAssertEqual(candidates(ring, k), [0])
        }
    }

    func testPointCountFollowsWeight() {
        let ring = Ring(
            members: [
                HashMember(name: "a", number: 1, weight: 3),
                HashMember(name: "b", number: 2, weight: 0),
            ],
            pointsPerWeight: 10)
        XCTAssertEqual(ring.points.count, 30) // weight 0 owns no point
        XCTAssertEqual(ring.owners.filter { $0 == 0 }.count, 30)
        XCTAssertTrue(zip(ring.points, ring.points.dropFirst()).allSatisfy { $0 <= $1 })
    }

    func testOrderIndependence() {
        let members = servers(25)
        var rng = SplitMix64(seed: 11)
        let a = Ring(members: members)
        let b = Ring(members: members.shuffled(using: &rng))
        XCTAssertEqual(a.members, b.members)
        let keys = randomKeys(10_000, seed: 12)
        XCTAssertEqual(keys.map { a.lookup($0) }, keys.map { b.lookup($0) })
    }

    /// The ring's defining property: removing a member moves exactly its keys, nothing else;
    /// adding it back restores every key.
    func testRemovalMovesOnlyTheRemovedMembersKeys() {
        let all = servers(20)
        let full = Ring(members: all, pointsPerWeight: 160)
        let keys = randomKeys(20_000, seed: 5)
        let before = ownerNames(full, keys)
        let removed = "server-7"
        let smaller = Ring(members: all.filter { $0.name != removed }, pointsPerWeight: 160)
        let after = ownerNames(smaller, keys)
        var moved = 0
        for (b, a) in zip(before, after) where b != a {
            XCTAssertEqual(b, removed, "a key moved off a member that stayed")
            moved += 1
        }
        XCTAssertEqual(moved, before.filter { $0 == removed }.count)
        XCTAssertGreaterThan(moved, 0)
        // Walk order: the first candidate that is not the removed member is where its keys go.
        let removedIndex = full.members.firstIndex { $0.name == removed }!
        for (i, k) in keys.enumerated() where before[i] == removed {
            let next = candidates(full, k).first { $0 != removedIndex }!
            XCTAssertEqual(full.members[next].name, after[i])
        }
    }

    func testBalanceAtDefaultPoints() {
        // V = 1000 → relative stddev ≈ 3 %; with 200k keys at N = 10 the sampling noise is ≈ 0.7 %.
        let ring = Ring(members: servers(10))
        let ratio = maxOverAvg(counts(ring, randomKeys(200_000, seed: 21)))
        XCTAssertLessThan(ratio, 1.08)
        XCTAssertGreaterThan(ratio, 1.0)
    }

    func testCandidatesAreDistinctAndCoverAll() {
        let ring = Ring(members: servers(40), pointsPerWeight: 50)
        for k in randomKeys(300, seed: 8) {
            let c = candidates(ring, k)
            XCTAssertEqual(c.count, 40)
            XCTAssertEqual(Set(c).count, 40)
            XCTAssertEqual(c.first, ring.lookup(k))
        }
        // More than 64 members exercises multi-word seen sets.
        let big = Ring(members: servers(130), pointsPerWeight: 20)
        let c = candidates(big, 12345)
        XCTAssertEqual(Set(c).count, 130)
    }

    func testCandidatesStopWhenAsked() {
        let ring = Ring(members: servers(10))
        var seen = 0
        ring.forEachCandidate(99) { _ in
            seen += 1; return seen < 3
        }
        XCTAssertEqual(seen, 3)
    }

    func testKeyHashesBytes() {
        let ring = Ring(members: servers(3))
        XCTAssertEqual(ring.key("abc"), 0x44BC_2CF5_AD77_0999)
    }

    /// Golden vectors: fixed keys → fixed member names. Generated once and frozen: a change here
    /// means every deployed ring would route differently.
    func testGoldenVectors() {
        let ring = Ring(members: servers(5))
        let got = ["1", "42", "user-7", "session-abcdef", "100000", "x"].map { ring.members[ring.lookup(ring.key($0))!].name }
        XCTAssertEqual(got, goldenRing)
        // And the point identity itself: point i of a member is XXH64(name, seed: i).
        let small = Ring(members: [HashMember(name: "server-1", number: 1)], pointsPerWeight: 3)
        XCTAssertEqual(Set(small.points), Set((0..<3).map { XXH64.hash("server-1", seed: UInt64($0)) }))
    }
}

private let goldenRing = ["server-4", "server-1", "server-2", "server-3", "server-1", "server-5"]
