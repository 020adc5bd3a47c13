import XCTest

@testable import DSHashing

/// Weights in every algorithm but the assignment preset: shares in proportion to weight, weight 0
/// takes nothing, and a weight change moves keys only to or from the reweighted member. The
/// figures are golden (fixed seeds, so they cannot flake); the bounds beside them say what they
/// mean. 100,000 keys keep the tests fast in debug builds: the sampling noise alone is ≈ 1.6 %
/// (one standard deviation) of a weight-2 share here, which is why the share bounds are wider
/// than `ds-lb ring`'s ±2 % target at 10⁷ keys.
final class WeightTests: XCTestCase {
    static let weightedAlgorithms: [HashAlgorithm] = [.rendezvous, .ring, .maglev]

    /// N = 12, weights drawn from 1–8 (seed 7).
    static let members: [HashMember] = {
        var rng = SplitMix64(seed: 7)
        return (1...12).map { HashMember(name: "server-\($0)", number: $0, weight: Int(rng.next() % 8) + 1) }
    }()

    static let keys = randomKeys(100_000, seed: 3)

    /// Per member (in the table's order): its key count over its weight's share of the keys, − 1.
    func deviations(_ table: any ConsistentHash, _ keys: [UInt64]) -> [Double] {
        var c = [Int](repeating: 0, count: table.members.count)
        for k in keys { c[table.lookup(k)!] += 1 }
        let total = Double(table.members.reduce(0) { $0 + $1.weight })
        return table.members.indices.map { i in
            Double(c[i]) / (Double(keys.count) * Double(table.members[i].weight) / total) - 1
        }
    }

    func testMembersHaveMixedWeights() {
        XCTAssertEqual(Self.members.map(\.weight), [8, 5, 3, 4, 3, 2, 7, 7, 2, 2, 4, 5])
    }

    func testSharesFollowWeights() {
        // Largest |share / weight's share − 1| over the 12 members.
        let golden: [HashAlgorithm: Double] = [.rendezvous: 0.0170, .ring: 0.0492, .maglev: 0.0234]
        for algorithm in Self.weightedAlgorithms {
            let worst = deviations(algorithm.build(Self.members), Self.keys).map(abs).max()!
            XCTAssertEqual(worst, golden[algorithm]!, accuracy: 0.00005, "\(algorithm)")
            // Ignoring the weights would give the weight-2 members +117 % (1/12 of the keys for 2/52).
            XCTAssertLessThan(worst, 0.06, "\(algorithm)")
        }
    }

    /// Maglev's slots are exactly proportional: no sampling noise in the table itself.
    func testMaglevSlotsFollowWeights() {
        let table = Maglev(members: Self.members)
        var slots = [Int](repeating: 0, count: Self.members.count)
        for owner in table.table { slots[Int(owner)] += 1 }
        let total = Self.members.reduce(0) { $0 + $1.weight }
        for (i, m) in table.members.enumerated() {
            let expected = Double(Maglev.defaultTableSize) * Double(m.weight) / Double(total)
            XCTAssertEqual(Double(slots[i]), expected, accuracy: 1 + Double(m.weight), m.name)
        }
    }

    func testWeightZeroTakesNoKeys() {
        let members = [
            HashMember(name: "a", number: 1, weight: 1),
            HashMember(name: "b", number: 2, weight: 0),
            HashMember(name: "c", number: 3, weight: 2),
        ]
        let keys = Array(Self.keys.prefix(20_000))
        for algorithm in Self.weightedAlgorithms {
            let table = algorithm.build(members)
            XCTAssertEqual(table.members[1].name, "b")
            var c = [0, 0, 0]
            for k in keys { c[table.lookup(k)!] += 1 }
            XCTAssertEqual(c[1], 0, "\(algorithm)")
            XCTAssertEqual(Double(c[2]) / Double(c[0]), 2, accuracy: 0.1, "\(algorithm)")
            for k in keys.prefix(200) {
                XCTAssertEqual(candidates(table, k).sorted(), [0, 2], "\(algorithm) candidates")
            }
            let drained = algorithm.build(members.map { HashMember(name: $0.name, number: $0.number, weight: 0) })
            XCTAssertNil(drained.lookup(keys[0]), "\(algorithm)")
            XCTAssertEqual(candidates(drained, keys[0]), [], "\(algorithm)")
        }
        let bounded = BoundedLoad(Ring(members: members), balanceFactor: 1.25)
        XCTAssertEqual(bounded.capacity(of: 1, totalInFlight: 10), 0)
        XCTAssertEqual(bounded.capacity(of: 2, totalInFlight: 10), 10) // ⌈1.25 · 11 · 2/3⌉
        let none = BoundedLoad(Ring(members: [HashMember(name: "a", number: 1, weight: 0)]), balanceFactor: 1.25)
        XCTAssertEqual(none.capacity(of: 0, totalInFlight: 3), 0)
        XCTAssertNil(none.lookup(1, totalInFlight: 0) { _ in 0 })
    }

    /// Moved keys whose old and new owners are both other than `name` (collateral), and all
    /// moved keys, as fractions.
    func churn(_ a: any ConsistentHash, _ b: any ConsistentHash, keeping name: String) -> (moved: Double, collateral: Double) {
        var moved = 0, collateral = 0
        let keys = Self.keys.prefix(30_000)
        for k in keys {
            let before = a.members[a.lookup(k)!].name, after = b.members[b.lookup(k)!].name
            guard before != after else { continue }
            moved += 1
            if before != name && after != name { collateral += 1 }
        }
        return (Double(moved) / Double(keys.count), Double(collateral) / Double(keys.count))
    }

    /// server-3 (weight 3) goes to 7, then to 0; server-1 (weight 8) goes to 2.
    func testWeightChangeMovesOnlyThatMembersKeys() {
        // (moved, collateral) keys of 30,000 per change, golden; ideal is how much the member's share
        // changed.
        let changes: [(index: Int, weight: Int, ideal: Double)] = [
            (2, 7, 7.0 / 56 - 3.0 / 52), (2, 0, 3.0 / 52), (0, 2, 8.0 / 52 - 2.0 / 46),
        ]
        let golden: [HashAlgorithm: [(Double, Double)]] = [
            .rendezvous: [(2038, 0), (1736, 0), (3430, 0)],
            .ring: [(1989, 0), (1752, 0), (3370, 0)],
            // Maglev shuffles ≈ 0.2 % of the keys between members whose weight stayed.
            .maglev: [(2042, 73), (1755, 71), (3319, 57)],
        ]
        for algorithm in Self.weightedAlgorithms {
            let before = algorithm.build(Self.members)
            for (c, change) in changes.enumerated() {
                var after = Self.members
                after[change.index].weight = change.weight
                let (moved, collateral) = churn(before, algorithm.build(after), keeping: after[change.index].name)
                XCTAssertEqual(moved * 30_000, golden[algorithm]![c].0, accuracy: 0.001, "\(algorithm) change \(c)")
                XCTAssertEqual(collateral * 30_000, golden[algorithm]![c].1, accuracy: 0.001, "\(algorithm) change \(c)")
                if algorithm != .maglev {
                    XCTAssertEqual(collateral, 0, "\(algorithm) change \(c)")
                    XCTAssertEqual(moved, change.ideal, accuracy: change.ideal * 0.1, "\(algorithm) change \(c)")
                }
            }
        }
    }

    /// Weights that add up to more virtual members than the table allows are scaled down, not a
    /// crash; weight 0 stays 0 and every other weight keeps at least one virtual member.
    func testRendezvousScalesDownOverBudget() {
        let counts = RendezvousTable.virtualCounts([256, 0, 1, -3, 999] + Array(repeating: 256, count: 300))
        XCTAssertLessThanOrEqual(counts.reduce(0, +), RendezvousTable.maxVirtualMembers)
        XCTAssertEqual(counts[1], 0)
        XCTAssertEqual(counts[2], 1)
        XCTAssertEqual(counts[3], 0)
        XCTAssertEqual(counts[4], counts[0]) // clamped to 256 first
        XCTAssertEqual(RendezvousTable.virtualCounts([1, 256, 0, 7]), [1, 256, 0, 7])
        let members = (1...300).map { HashMember(name: "s\($0)", number: $0, weight: 256) }
        let table = RendezvousTable(members: members, cellCount: 1 << 10)
        XCTAssertEqual(table.members.count, 300)
        XCTAssertNotNil(table.lookup(42))
    }
}
