import DSBalancer
import DSHashing
import XCTest

/// Replica choice beyond the plain lookup: bounded loads over a snapshot (down replicas left
/// out) and the `random` key source's request ids.
final class SelectionTests: XCTestCase {
    private let keys: [UInt64] = (0..<64).map { $0 &* 0x9E37_79B9_7F4A_7C15 }

    /// The table's order of candidates for `key` (the order bounded loads walk).
    private func order(_ snapshot: Snapshot, _ key: UInt64) -> [Int] {
        var out: [Int] = []
        snapshot.table.forEachCandidate(key) {
            out.append($0); return true
        }
        return out
    }

    func testUnloadedPoolGetsEachKeysFirstChoice() {
        for algorithm in HashAlgorithm.allCases {
            let snapshot = Snapshot(generation: 1, backends: (1...4).map { backend($0) }, algorithm: algorithm)
            let selection = BoundedSelection(snapshot, balanceFactor: 1.25)
            for key in keys {
                let choice = selection.choose(key, totalInFlight: 0) { _ in 0 }
                XCTAssertEqual(choice?.index, snapshot.candidate(hashedKey: key), "\(algorithm)")
                XCTAssertEqual(choice?.rank, 0, "\(algorithm)")
            }
        }
    }

    /// A first choice at its cap sends the key on to its second choice, every time the same one.
    func testOverloadedFirstChoiceSpillsToTheNextCandidate() {
        for algorithm in HashAlgorithm.allCases {
            let snapshot = Snapshot(generation: 1, backends: (1...3).map { backend($0) }, algorithm: algorithm)
            let selection = BoundedSelection(snapshot, balanceFactor: 1.25)
            for key in keys {
                let candidates = order(snapshot, key)
                // Cap ⌈1.25 × (10 + 1) / 3⌉ = 5: the first choice's 10 is over it.
                let choice = selection.choose(key, totalInFlight: 10) { $0 == candidates[0] ? 10 : 0 }
                XCTAssertEqual(choice?.index, candidates[1], "\(algorithm)")
                XCTAssertEqual(choice?.rank, 1, "\(algorithm)")
            }
        }
    }

    /// Caps follow weights: with 8 in flight on weights 1/3 (c = 1.25), the weight-1 replica's
    /// cap is ⌈1.25 × 9 / 4⌉ = 3 and the weight-3 one's ⌈1.25 × 9 × 3 / 4⌉ = 9.
    func testCapsAreProportionalToWeight() {
        let light = Backend(name: "a", number: 1, host: "127.0.0.1", port: 20001, weight: 1)
        let heavy = Backend(name: "b", number: 2, host: "127.0.0.1", port: 20002, weight: 3)
        for algorithm in HashAlgorithm.allCases where algorithm != .assignment {
            let snapshot = Snapshot(generation: 1, backends: [light, heavy], algorithm: algorithm)
            let selection = BoundedSelection(snapshot, balanceFactor: 1.25)
            for key in keys {
                let first = order(snapshot, key)[0]
                // 3 on the light one is at its cap; 5 on the heavy one is under its 9.
                let choice = selection.choose(key, totalInFlight: 8) { $0 == 0 ? 3 : 5 }
                XCTAssertEqual(choice?.index, 1, "\(algorithm), first choice \(first)")
            }
        }
    }

    /// A down replica takes nothing however idle it is; nothing up, no choice.
    func testDownReplicasAreLeftOut() {
        for algorithm in HashAlgorithm.allCases {
            let all = (1...3).map { backend($0) }
            for down in all {
                let snapshot = Snapshot(generation: 2, backends: all, healthy: [down.name: false], algorithm: algorithm)
                let selection = BoundedSelection(snapshot, balanceFactor: 1.25)
                let downIndex = snapshot.backends.firstIndex(of: down)!
                for key in keys where order(snapshot, key)[0] == downIndex {
                    let choice = selection.choose(key, totalInFlight: 0) { _ in 0 }
                    XCTAssertEqual(choice?.index, order(snapshot, key)[1], "\(algorithm)")
                    XCTAssertEqual(choice?.rank, 1, "\(algorithm)")
                }
            }
            let down = Dictionary(uniqueKeysWithValues: all.map { ($0.name, false) })
            let none = Snapshot(generation: 3, backends: all, healthy: down, algorithm: algorithm)
            XCTAssertNil(BoundedSelection(none, balanceFactor: 1.25).choose(keys[0], totalInFlight: 0) { _ in 0 })
        }
    }

    /// When every healthy replica is at its cap (counts from other workers can run ahead of the
    /// total), the least loaded healthy one takes the request.
    func testAllAtCapFallsBackToTheLeastLoadedHealthyReplica() {
        let all = (1...3).map { backend($0) }
        let snapshot = Snapshot(generation: 1, backends: all, healthy: ["server-2": false], algorithm: .rendezvous)
        let load = [7, 1, 4] // server-2, down, is the least loaded of all
        let selection = BoundedSelection(snapshot, balanceFactor: 1.25)
        for key in keys {
            let choice = selection.choose(key, totalInFlight: 0) { load[$0] }
            XCTAssertEqual(choice?.index, 2)
            XCTAssertEqual(choice?.rank, order(snapshot, key).firstIndex(of: 2))
        }
    }

    /// Every id of 100000...999999 is reachable and none outside: the digits are spread evenly.
    func testRandomIDsCoverTheSixDigitRange() {
        var random = RandomRequestIDs(seed: 1)
        var firstDigits = [Int](repeating: 0, count: 10)
        var lastDigits = [Int](repeating: 0, count: 10)
        let draws = 90_000
        for _ in 0..<draws {
            let packed = random.next()
            let text = withUnsafeBytes(of: packed.littleEndian) { String(decoding: $0[0..<6], as: UTF8.self) }
            guard let id = Int(text), (100_000...999_999).contains(id) else { return XCTFail("bad id '\(text)'") }
            XCTAssertEqual(packed >> 48, 0, "bytes beyond the sixth must be zero")
            firstDigits[id / 100_000] += 1
            lastDigits[id % 10] += 1
        }
        XCTAssertEqual(firstDigits[0], 0)
        // 10,000 expected per first digit 1-9, 9,000 per last digit; ±5 % is over 5 sigma.
        for digit in 1...9 { XCTAssertEqual(Double(firstDigits[digit]), 10_000, accuracy: 500, "first digit \(digit)") }
        for digit in 0...9 { XCTAssertEqual(Double(lastDigits[digit]), 9_000, accuracy: 450, "last digit \(digit)") }
    }
}
