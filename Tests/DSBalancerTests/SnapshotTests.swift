import DSBalancer
import DSHashing
import XCTest

final class SnapshotTests: XCTestCase {
    let keys = (0..<400).map { "key-\($0 * 7919)" } + (0..<200).map { String(100_000 + $0 * 37) }

    func testBackendAddress() {
        XCTAssertEqual(Backend(name: "a", number: 1, host: "10.0.0.1", port: 80).address, "10.0.0.1:80")
        XCTAssertEqual(Backend(name: "b", number: 2, host: "::1", port: 8080).address, "[::1]:8080")
    }

    /// The snapshot's table takes the backends' weights: a weight-0 replica gets no key, a
    /// weight-4 one about 4/7 of them beside three at 1 (the assignment preset ignores weights).
    /// Equality leaves weights out: it names the instance.
    func testTheTableHonoursWeights() {
        let weights = [1, 0, 4, 1, 1]
        let input = weights.enumerated().map { i, w in
            Backend(name: "server-\(i + 1)", number: i + 1, host: "127.0.0.1", port: UInt16(20001 + i), weight: w)
        }
        XCTAssertEqual(input[0], Backend(name: "server-1", number: 1, host: "127.0.0.1", port: 20001, weight: 9))
        let ids = (0..<20_000).map { String(100_000 + $0 * 37) }
        for algorithm in HashAlgorithm.allCases {
            let s = Snapshot(generation: 1, backends: input, algorithm: algorithm)
            XCTAssertEqual(s.table.members.map(\.weight), algorithm == .assignment ? [1, 1, 1, 1, 1] : weights, "\(algorithm)")
            var counts = [Int](repeating: 0, count: input.count)
            for id in ids {
                let index = Array(id.utf8).withUnsafeBytes { s.select(keyBytes: $0) }.flatMap { b in s.backends.firstIndex(of: b)
                }
                counts[index!] += 1
            }
            if algorithm == .assignment { continue }
            XCTAssertEqual(counts[1], 0, "\(algorithm): weight 0 takes no key; \(counts)")
            XCTAssertEqual(Double(counts[2]) / Double(ids.count), 4.0 / 7.0, accuracy: 0.03, "\(algorithm): \(counts)")
        }
    }

    /// A health change keeps the table (built once per membership), and routes as a fresh build
    /// would; a change of members, of a weight or of the algorithm builds a new one.
    func testAHealthChangeReusesThePreviousTable() {
        let pool = (1...5).map { backend($0) }
        for algorithm in HashAlgorithm.allCases {
            let first = Snapshot(generation: 1, backends: pool, algorithm: algorithm)
            XCTAssertEqual(first.tableGeneration, 1)
            let down = ["server-2": false]
            let second = Snapshot(generation: 2, backends: pool.reversed(), healthy: down, algorithm: algorithm, previous: first)
            XCTAssertEqual(second.tableGeneration, 1, "\(algorithm): same members, same table")
            let fresh = Snapshot(generation: 2, backends: pool, healthy: down, algorithm: algorithm)
            for key in keys {
                let bytes = Array(key.utf8)
                XCTAssertEqual(
                    bytes.withUnsafeBytes { second.select(keyBytes: $0) }, bytes.withUnsafeBytes { fresh.select(keyBytes: $0) },
                    "\(algorithm) \(key)")
            }
            var reweighted = pool
            reweighted[0].weight = 3
            XCTAssertEqual(
                Snapshot(generation: 3, backends: reweighted, algorithm: algorithm, previous: second).tableGeneration, 3)
            XCTAssertEqual(
                Snapshot(generation: 3, backends: Array(pool.dropLast()), algorithm: algorithm, previous: second).tableGeneration,
                3)
            let other = HashAlgorithm.allCases.first { $0 != algorithm }!
            XCTAssertEqual(Snapshot(generation: 3, backends: pool, algorithm: other, previous: second).tableGeneration, 3)
        }
    }

    func testMembersAreSortedByName() {
        for algorithm in HashAlgorithm.allCases {
            let input = [backend(3), backend(1, name: "zeta"), backend(10), backend(2), backend(7, name: "alpha")]
            let s = Snapshot(generation: 4, backends: input, algorithm: algorithm)
            XCTAssertEqual(s.backends.map(\.name), ["alpha", "server-10", "server-2", "server-3", "zeta"], "\(algorithm)")
            XCTAssertEqual(s.table.members.map(\.name), s.backends.map(\.name), "\(algorithm)")
            XCTAssertEqual(s.healthy, [true, true, true, true, true])
            XCTAssertEqual(s.generation, 4)
            XCTAssertEqual(s.algorithm, algorithm)
            XCTAssertFalse(s.isEmpty)
        }
    }

    /// The same membership in any order gives the same choice for every key (the same table on
    /// every ds-lb instance: docs/ARCHITECTURE.md §4).
    func testSelectionIndependentOfInputOrder() {
        var rng = SeededRNG(seed: 17)
        let members = (1...7).map { backend($0) }
        for algorithm in HashAlgorithm.allCases {
            let reference = Snapshot(generation: 1, backends: members, algorithm: algorithm)
            let expected = keys.map { select(reference, $0) }
            XCTAssertTrue(expected.allSatisfy { $0 != nil }, "\(algorithm)")
            XCTAssertGreaterThan(Set(expected.compactMap { $0?.name }).count, 1, "\(algorithm) sends every key to one member")
            for _ in 0..<4 {
                let shuffled = Snapshot(generation: 2, backends: members.shuffled(using: &rng), algorithm: algorithm)
                XCTAssertEqual(keys.map { select(shuffled, $0) }, expected, "\(algorithm)")
            }
        }
    }

    func testSelectKeyBytesMatchesHashedKey() {
        for algorithm in HashAlgorithm.allCases {
            let s = Snapshot(generation: 1, backends: (1...4).map { backend($0) }, algorithm: algorithm)
            for key in keys.prefix(100) {
                XCTAssertEqual(select(s, key), s.select(hashedKey: s.table.key(key)), "\(algorithm) \(key)")
            }
        }
    }

    /// A down member is skipped: select returns the first healthy candidate in the table's
    /// preference order; keys of healthy members do not move.
    func testUnhealthyMembersAreSkipped() {
        let members = (1...5).map { backend($0) }
        for algorithm in HashAlgorithm.allCases {
            let all = Snapshot(generation: 1, backends: members, algorithm: algorithm)
            let down: Set<String> = ["server-2", "server-4"]
            let degraded = Snapshot(
                generation: 2, backends: members,
                healthy: Dictionary(uniqueKeysWithValues: down.map { ($0, false) }), algorithm: algorithm)
            XCTAssertEqual(degraded.healthy, [true, false, true, false, true])
            var moved = 0
            for key in keys {
                guard let before = select(all, key), let after = select(degraded, key) else {
                    XCTFail("\(algorithm): no backend for \(key)")
                    continue
                }
                XCTAssertFalse(down.contains(after.name), "\(algorithm): \(key) sent to down \(after.name)")
                if down.contains(before.name) {
                    moved += 1
                    var expected: Int?
                    degraded.table.forEachCandidate(degraded.table.key(key)) { index in
                        if degraded.healthy[index] { expected = index; return false }
                        return true
                    }
                    XCTAssertEqual(after, expected.map { degraded.backends[$0] }, "\(algorithm) \(key)")
                } else {
                    XCTAssertEqual(after, before, "\(algorithm): \(key) moved off a healthy member")
                }
            }
            XCTAssertGreaterThan(moved, 0, "\(algorithm): the test keys never hit a down member")
        }
    }

    /// `candidate(hashedKey:)` takes the table's `lookup` while that member is up and walks
    /// only otherwise (HashTable, opened at build time): it must agree with the plain walk over
    /// `table` (the existential) for every algorithm, list layout (N = 300 > 254 virtual members
    /// makes rendezvous gap-code its lists) and health pattern, and so must the key hash.
    func testCandidateMatchesTheWalkOverTheTable() {
        var rng = SeededRNG(seed: 23)
        for algorithm in HashAlgorithm.allCases {
            for n in [1, 5, 40, 300] {
                let members = (1...n).map { backend($0) }
                let down = Set(members.filter { _ in rng.next() % 3 == 0 }.map(\.name))
                let s = Snapshot(
                    generation: 1, backends: members,
                    healthy: Dictionary(uniqueKeysWithValues: down.map { ($0, false) }), algorithm: algorithm)
                let excluded = Array(members.prefix(2).map(\.name))
                for key in keys.prefix(150) {
                    var k = key
                    let hashed = k.withUTF8 { s.key(UnsafeRawBufferPointer($0)) }
                    XCTAssertEqual(hashed, s.table.key(key), "\(algorithm) n=\(n) \(key)")
                    var walked: Int?
                    var walkedExcluding: Int?
                    s.table.forEachCandidate(hashed) { index in
                        guard s.healthy[index] else { return true }
                        if walked == nil { walked = index }
                        if !excluded.contains(s.backends[index].name) { walkedExcluding = index; return false }
                        return true
                    }
                    XCTAssertEqual(s.candidate(hashedKey: hashed), walked, "\(algorithm) n=\(n) \(key)")
                    XCTAssertEqual(s.select(hashedKey: hashed), walked.map { s.backends[$0] }, "\(algorithm) n=\(n)")
                    XCTAssertEqual(
                        s.candidate(hashedKey: hashed, excluding: excluded), walkedExcluding,
                        "\(algorithm) n=\(n) \(key)")
                }
            }
        }
    }

    func testOnlyOneHealthyMemberTakesEverything() {
        let members = (1...4).map { backend($0) }
        for algorithm in HashAlgorithm.allCases {
            let s = Snapshot(
                generation: 1, backends: members,
                healthy: ["server-1": false, "server-2": false, "server-4": false], algorithm: algorithm)
            for key in keys.prefix(200) {
                XCTAssertEqual(select(s, key)?.name, "server-3", "\(algorithm) \(key)")
            }
        }
    }

    func testAllDownOrEmptyGivesNil() {
        for algorithm in HashAlgorithm.allCases {
            let down = Snapshot(
                generation: 1, backends: [backend(1), backend(2)],
                healthy: ["server-1": false, "server-2": false], algorithm: algorithm)
            let empty = Snapshot.empty(algorithm: algorithm)
            XCTAssertTrue(empty.isEmpty)
            XCTAssertEqual(empty.generation, 0)
            for key in keys.prefix(50) {
                XCTAssertNil(select(down, key), "\(algorithm)")
                XCTAssertNil(select(empty, key), "\(algorithm)")
            }
            XCTAssertNil(empty.select(hashedKey: 0))
            XCTAssertNil(empty.select(hashedKey: .max))
        }
    }

    /// Health of names not in the membership is ignored; names missing from the map are healthy.
    func testHealthMapDefaults() {
        let s = Snapshot(
            generation: 1, backends: [backend(2), backend(1)], healthy: ["server-9": false, "server-2": false],
            algorithm: .default)
        XCTAssertEqual(s.backends.map(\.name), ["server-1", "server-2"])
        XCTAssertEqual(s.healthy, [true, false])
    }
}
