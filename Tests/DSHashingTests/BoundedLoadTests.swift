import XCTest

@testable import DSHashing

final class BoundedLoadTests: XCTestCase {
    func testCapacityFormula() {
        let b = BoundedLoad(RendezvousTable(members: servers(4)), balanceFactor: 1.25)
        XCTAssertEqual(b.capacity(of: 0, totalInFlight: 0), 1) // ⌈1.25 · 1 / 4⌉
        XCTAssertEqual(b.capacity(of: 0, totalInFlight: 99), 32) // ⌈1.25 · 100 / 4⌉ = ⌈31.25⌉
        XCTAssertEqual(b.capacity(of: 0, totalInFlight: 15), 5) // ⌈1.25 · 16 / 4⌉ = 5 exactly
        XCTAssertEqual(b.capacity(of: 3, totalInFlight: 1 << 40), Int((1.25 * Double((1 << 40) + 1) / 4).rounded(.up)))
        let weighted = BoundedLoad(
            Ring(
                members: [
                    HashMember(name: "a", number: 1, weight: 3),
                    HashMember(name: "b", number: 2, weight: 1),
                ], pointsPerWeight: 10),
            balanceFactor: 1.0)
        XCTAssertEqual(weighted.capacity(of: 0, totalInFlight: 7), 6) // 8 · 3/4
        XCTAssertEqual(weighted.capacity(of: 1, totalInFlight: 7), 2) // 8 · 1/4
    }

    /// With no load, bounded loads is the plain table, for every algorithm.
    func testIdleIsThePlainTable() {
        for algorithm in HashAlgorithm.allCases {
            let table = algorithm.build(servers(7))
            let b = BoundedLoad(table, balanceFactor: 1.25)
            for k in randomKeys(300, seed: 3) {
                XCTAssertEqual(b.choose(k, totalInFlight: 0) { _ in 0 }, BoundedLoad.Choice(index: table.lookup(k)!, rank: 0))
            }
        }
    }

    /// One hot key, requests that never finish: every member stays under ⌈c·(T+1)/N⌉ at every
    /// step, and the overflow walks the table's candidate order.
    func testHotKeyIsCapped() {
        for algorithm in HashAlgorithm.allCases where algorithm != .assignment {
            let table = algorithm.build(servers(10))
            let b = BoundedLoad(table, balanceFactor: 1.25)
            var loads = [Int](repeating: 0, count: 10)
            let hot: UInt64 = 0xDEAD_BEEF
            let order = candidates(table, hot)
            var total = 0
            for _ in 0..<1000 {
                let choice = loads.withUnsafeBufferPointer { b.choose(hot, inFlight: $0, totalInFlight: total)! }
                XCTAssertLessThan(loads[choice.index], b.capacity(of: choice.index, totalInFlight: total))
                XCTAssertEqual(order[choice.rank], choice.index)
                loads[choice.index] += 1
                total += 1
            }
            XCTAssertLessThanOrEqual(loads.max()!, 125, "\(algorithm)") // ⌈1.25 · 1000 / 10⌉
            XCTAssertEqual(loads[order[0]], 125, "\(algorithm): the first choice fills up to its cap")
        }
    }

    /// Spread keys with c = 1.25: nearly everyone gets their first choice and the max stays bounded.
    func testUniformKeysRarelyMove() {
        let table = RendezvousTable(members: servers(10))
        let b = BoundedLoad(table, balanceFactor: 1.25)
        var loads = [Int](repeating: 0, count: 10)
        var moved = 0
        for (total, k) in randomKeys(20_000, seed: 8).enumerated() {
            let c = b.choose(k, totalInFlight: total) { loads[$0] }!
            if c.rank > 0 { moved += 1 }
            loads[c.index] += 1
        }
        XCTAssertLessThanOrEqual(loads.max()!, 2500) // ⌈1.25 · 20000 / 10⌉
        XCTAssertLessThan(Double(moved) / 20_000, 0.02)
    }

    func testExcludedMembersAreSkipped() {
        let table = Maglev(members: servers(5))
        let b = BoundedLoad(table, balanceFactor: 1.5)
        for k in randomKeys(200, seed: 12) {
            let first = table.lookup(k)!
            let c = b.choose(k, totalInFlight: 0) { $0 == first ? Int.max : 0 }!
            XCTAssertNotEqual(c.index, first)
            XCTAssertEqual(c.rank, 1)
            XCTAssertEqual(c.index, candidates(table, k)[1])
        }
        XCTAssertNil(b.lookup(1, totalInFlight: 0) { _ in Int.max })
        XCTAssertNil(BoundedLoad(Ring(members: []), balanceFactor: 1.25).lookup(1, totalInFlight: 0) { _ in 0 })
    }

    /// Stale counters can put everyone at their cap: the least-loaded candidate still answers.
    func testAllFullFallsBackToLeastLoaded() {
        let table = Ring(members: servers(3), pointsPerWeight: 50)
        let b = BoundedLoad(table, balanceFactor: 1.0)
        let loads = [9, 4, 7]
        XCTAssertEqual(b.lookup(77, totalInFlight: 0) { loads[$0] }, 1)
    }
}
