import Foundation
import XCTest

@testable import DSHashing

/// Determinism, for every algorithm: a table is a function of the member *set* only.
/// Two processes cannot be compared inside one XCTest process, so the tests rebuild the set from
/// scratch in other orders (freshly constructed strings and arrays each time, nothing shared
/// with the first build) and require byte-identical routing; the tables contain nothing
/// per-process (no `Hasher`, no addresses), so equal routing here is equal routing across
/// processes. The golden vectors in each algorithm's tests pin the routing itself.
final class DeterminismTests: XCTestCase {
    /// 100 000 keys through `key(_:)` + `lookup`, as the proxy routes them: decimal ids
    /// (HashAnalysis.KeySet, which the assignment preset parses as integers) and a few
    /// non-decimal strings. 10 000 under a sanitizer (`tests/sanitize.sh`), which makes these
    /// lookups some twenty times slower: the same comparisons, on a tenth of the keys.
    static let keys = HashAnalysis.KeySet(
        count: ProcessInfo.processInfo.environment["DSLB_SANITIZER"] == nil ? 100_000 : 10_000, seed: 2024)
    static let textKeys = ["", "x", "user-7", "session-abcdef", "/home?id=12", "ünïcødé", "+", "-3"]

    /// A membership with custom names and mixed weights (assignment ignores weights; every other
    /// algorithm gives weight w its w-fold share), built anew on every call: the names are
    /// assembled from bytes so no string storage is shared between builds.
    static func freshMembers(_ n: Int) -> [HashMember] {
        (1...n).map { i in
            let prefix = i % 5 == 0 ? "api-" : "server-"
            let name = String(decoding: Array((prefix + String(i)).utf8), as: UTF8.self)
            return HashMember(name: name, number: i, weight: 1 + i % 3)
        }
    }

    /// The routing of `table` as bytes: each key's owner name, NUL-terminated, in key order.
    static func routingBytes(_ table: any ConsistentHash) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(keys.count * 12)
        keys.forEach { bytes in
            out.append(contentsOf: table.members[table.lookup(table.key(bytes))!].name.utf8)
            out.append(0)
        }
        for text in textKeys {
            out.append(contentsOf: table.members[table.lookup(table.key(text))!].name.utf8)
            out.append(0)
        }
        return out
    }

    /// Full candidate orders (by name) for a few keys: failover must be deterministic too.
    static func candidateNames(_ table: any ConsistentHash, count: Int = 50) -> [[String]] {
        var rng = SplitMix64(seed: 77)
        return (0..<count).map { _ in
            var names: [String] = []
            table.forEachCandidate(rng.next()) {
                names.append(table.members[$0].name); return true
            }
            return names
        }
    }

    func testSameSetInAnyOrderRoutesIdentically() {
        // 37 members: the narrow rendezvous records; 300 members × weights 1…3 (≈ 600 virtual
        // members): its wide lists, and a full assignment circle.
        for n in [37, 300] {
            for algorithm in HashAlgorithm.allCases {
                let ascending = algorithm.build(Self.freshMembers(n))
                let reference = Self.routingBytes(ascending)
                let descending = algorithm.build(Self.freshMembers(n).reversed())
                var rng = SplitMix64(seed: UInt64(n))
                let shuffled = algorithm.build(Self.freshMembers(n).shuffled(using: &rng))
                for (label, other) in [("reversed", descending), ("shuffled", shuffled)] {
                    XCTAssertEqual(other.members, ascending.members, "\(algorithm) n=\(n) \(label)")
                    // One assertion on the whole byte string; a mismatch names the algorithm.
                    XCTAssertTrue(Self.routingBytes(other) == reference, "\(algorithm) n=\(n) \(label): routing differs")
                }
                if n == 37 {
                    XCTAssertEqual(Self.candidateNames(shuffled), Self.candidateNames(ascending), "\(algorithm) candidates")
                }
                // Sanity: the routing is not degenerate (everyone who fits gets keys).
                XCTAssertGreaterThan(
                    Set(reference.split(separator: 0)).count, algorithm == .assignment ? 2 : n / 2,
                    "\(algorithm) n=\(n)")
            }
        }
    }

    /// A replica removed and added back under the same name (a restart, or /rm then /add) gets
    /// exactly its old keys back, and nobody else's routing is left changed.
    func testRemovedAndReAddedMemberGetsExactlyItsKeysBack() {
        let n = 24
        for algorithm in HashAlgorithm.allCases {
            let all = Self.freshMembers(n)
            let original = algorithm.build(all)
            let before = Self.routingBytes(original)
            for victim in ["server-7", "api-20", "server-1"] {
                let without = all.filter { $0.name != victim }
                let removed = algorithm.build(without)
                // The removal did something: the victim's keys went elsewhere.
                let owners = Self.routingBytes(removed).split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                XCTAssertFalse(owners.contains(victim), "\(algorithm): \(victim) still routed to")
                // Re-added as a new value (same name, number, weight), at the end of the list.
                let old = all.first { $0.name == victim }!
                let back = HashMember(
                    name: String(decoding: Array(victim.utf8), as: UTF8.self),
                    number: old.number, weight: old.weight)
                let readded = algorithm.build(without + [back])
                XCTAssertTrue(Self.routingBytes(readded) == before, "\(algorithm): \(victim) did not get exactly its keys back")
                XCTAssertEqual(
                    Self.candidateNames(readded, count: 20), Self.candidateNames(original, count: 20),
                    "\(algorithm): candidate order after re-adding \(victim)")
            }
        }
    }
}
