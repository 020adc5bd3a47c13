import XCTest

@testable import DSHashing

final class AssignmentTests: XCTestCase {
    private let three = [
        HashMember(name: "server-1", number: 1),
        HashMember(name: "server-2", number: 2),
        HashMember(name: "server-3", number: 3),
    ]

    func testAlgorithmName() {
        XCTAssertEqual(Assignment.algorithmName, "assignment")
    }

    /// The preset's golden vectors: virtual-server slots with replicas 1, 2, 3.
    func testGoldenVirtualServerSlots() {
        let a = Assignment(members: three)
        XCTAssertEqual(a.slots(of: 0), [26, 29, 34, 41, 50, 61, 74, 89, 106])
        XCTAssertEqual(a.slots(of: 1), [30, 32, 37, 44, 53, 64, 77, 92, 109])
        XCTAssertEqual(a.slots(of: 2), [35, 38, 42, 49, 58, 69, 82, 97, 114])
        XCTAssertEqual(a.slots.filter { $0 >= 0 }.count, 27)
    }

    /// The preset's golden vectors: ids 100000…109999 split 8439 / 468 / 1093.
    func testGoldenRequestSplit() {
        var rng = SplitMix64(seed: 99)
        let a = Assignment(members: three.shuffled(using: &rng))
        var c = [0, 0, 0]
        for id in 100_000...109_999 {
            let key = a.key(String(id))
            XCTAssertEqual(key, UInt64(id))
            c[a.lookup(key)!] += 1
        }
        XCTAssertEqual(c, [8439, 468, 1093])
    }

    func testSlotFunctions() {
        XCTAssertEqual(Assignment.requestSlot(0), 17)
        XCTAssertEqual(Assignment.requestSlot(100_000), Int((100_000 * 100_000 + 200_000 + 17) % 512))
        XCTAssertEqual(Assignment.virtualServerSlot(replica: 2, j: 0), 29)
        // Wrap-around: a request slot past the last virtual server goes to the first one.
        let a = Assignment(members: three)
        let id = (0..<10_000).first { Assignment.requestSlot(UInt64($0)) > 114 }!
        XCTAssertEqual(a.lookup(UInt64(id)), 0) // slot 26 (server-1) is the first clockwise
    }

    /// Large ids: i² overflows 64 bits, the mod-512 result must still be exact.
    func testLargeIdsUseExactModularArithmetic() {
        for id: UInt64 in [UInt64.max, UInt64.max - 1, 1 << 40 + 3, 18_446_744_073_709_551_557] {
            // Reference computed on the residue, where nothing overflows.
            let r = id % 512
            XCTAssertEqual(Assignment.requestSlot(id), Int((r * r + 2 * r + 17) % 512))
        }
        XCTAssertEqual(Assignment.virtualServerSlot(replica: -1, j: 0), 26) // (1 + 25) mod 512
    }

    func testKeyParsesDecimalsAndHashesTheRest() {
        let a = Assignment(members: three)
        XCTAssertEqual(a.key("0"), 0)
        XCTAssertEqual(a.key("+17"), 17)
        XCTAssertEqual(a.key("18446744073709551615"), UInt64.max)
        XCTAssertEqual(a.key("18446744073709551616"), XXH64.hash("18446744073709551616"))
        XCTAssertEqual(a.key("abc"), XXH64.hash("abc"))
        XCTAssertEqual(a.key("12a"), XXH64.hash("12a"))
        XCTAssertEqual(a.key("-5"), XXH64.hash("-5"))
        XCTAssertEqual(a.key(""), XXH64.hash(""))
        XCTAssertEqual(a.key("+"), XXH64.hash("+"))
    }

    func testEmptyAndSingle() {
        let empty = Assignment(members: [])
        XCTAssertNil(empty.lookup(5))
        XCTAssertEqual(candidates(empty, 5), [])
        let one = Assignment(members: [HashMember(name: "x", number: 7)])
        for k in randomKeys(500, seed: 2) {
            XCTAssertEqual(one.lookup(k), 0)
            XCTAssertEqual(candidates(one, k), [0])
        }
    }

    func testOrderIndependence() {
        let members = servers(20)
        var rng = SplitMix64(seed: 4)
        let a = Assignment(members: members), b = Assignment(members: members.shuffled(using: &rng))
        XCTAssertEqual(a.slots, b.slots)
        let keys = randomKeys(10_000, seed: 5)
        XCTAssertEqual(keys.map { a.lookup($0) }, keys.map { b.lookup($0) })
    }

    /// Candidates follow the circle: the first is `lookup`, all are distinct, all are covered,
    /// including replicas that no longer fit on a full circle (60 × 9 > 512).
    func testCandidatesDistinctAndCoverAll() {
        for n in [3, 60] {
            let a = Assignment(members: servers(n))
            XCTAssertEqual(a.slots.filter { $0 >= 0 }.count, min(512, 9 * n))
            for k in randomKeys(200, seed: UInt64(n)) {
                let c = candidates(a, k)
                XCTAssertEqual(c.first, a.lookup(k))
                XCTAssertEqual(c.count, n)
                XCTAssertEqual(Set(c).count, n)
            }
        }
        // Golden walk: id 3 → H = 9 + 6 + 17 = 32, server-2's slot; clockwise then come 34
        // (server-1) and 35 (server-3).
        let a = Assignment(members: three)
        XCTAssertEqual(Assignment.requestSlot(3), 32)
        XCTAssertEqual(candidates(a, 3), [1, 0, 2])
    }

    func testAlgorithmEnumBuildsIt() {
        let t = HashAlgorithm(rawValue: "assignment")!.build(three)
        XCTAssertEqual(type(of: t).algorithmName, "assignment")
        XCTAssertEqual(t.lookup(100_000), Assignment(members: three).lookup(100_000))
    }
}
