import XCTest

@testable import DSHashing

final class HashAnalysisTests: XCTestCase {
    func testAlgorithmNamesMatchTypes() {
        for algorithm in HashAlgorithm.allCases {
            XCTAssertEqual(algorithm.type.algorithmName, algorithm.rawValue)
            XCTAssertEqual(type(of: algorithm.build(servers(2))).algorithmName, algorithm.rawValue)
            XCTAssertEqual(HashAlgorithm(rawValue: algorithm.rawValue), algorithm)
        }
        XCTAssertEqual(Set(HashAlgorithm.allCases.map(\.rawValue)), ["rendezvous", "ring", "maglev", "assignment"])
    }

    func testKeySetIsDeterministic() {
        let a = HashAnalysis.KeySet(count: 100, seed: 9), b = HashAnalysis.KeySet(count: 100, seed: 9)
        XCTAssertEqual(a.bytes, b.bytes)
        XCTAssertEqual(a.ends, b.ends)
        var first = ""
        a.forEach(0..<1) { first = String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(
            UInt64(first),
            {
                var r = SplitMix64(seed: 9); return r.next()
            }())
    }

    /// Small run: the report's figures are the real ones (moved = the removed member's share for
    /// a minimal-disruption algorithm; ideal = R/N).
    func testRunReportsBalanceAndChurn() {
        let r = HashAnalysis.run(algorithm: .rendezvous, servers: 8, keys: 40_000, remove: 2, seed: 4)
        XCTAssertEqual(r.algorithm, "rendezvous")
        XCTAssertEqual(r.idealMovedFraction, 0.25)
        XCTAssertEqual(r.movedFraction!, 0.25, accuracy: 0.02)
        XCTAssertGreaterThanOrEqual(r.maxOverAvg, 1.0)
        XCTAssertLessThan(r.maxOverAvg, 1.1)
        XCTAssertGreaterThan(r.stddevShare, 0)
        XCTAssertGreaterThan(r.lookupNs, 0)
        XCTAssertGreaterThan(r.buildMs, 0)
        let added = HashAnalysis.run(algorithm: .ring, servers: 4, keys: 20_000, add: 1, seed: 4)
        XCTAssertEqual(added.idealMovedFraction, 0.2)
        XCTAssertTrue(added.json.hasPrefix("{\"algorithm\":\"ring\",\"servers\":4,\"keys\":20000,\"max_over_avg\":"))
        XCTAssertTrue(added.json.contains("\"ideal_moved_fraction\":0.2,"))
        let none = HashAnalysis.run(algorithm: .maglev, servers: 3, keys: 1000)
        XCTAssertNil(none.movedFraction)
        XCTAssertTrue(none.json.contains("\"moved_fraction\":null"))
    }

    /// Several members at once, both ways (what `ds-lb ring --remove R` / `--add A` ask for).
    func testRunRemovesAndAddsSeveral() {
        let removed = HashAnalysis.run(algorithm: .ring, servers: 10, keys: 50_000, remove: 3, seed: 5)
        XCTAssertEqual(removed.idealMovedFraction, 0.3)
        XCTAssertEqual(removed.movedFraction!, 0.3, accuracy: 0.05)
        let added = HashAnalysis.run(algorithm: .rendezvous, servers: 9, keys: 50_000, add: 3, seed: 5)
        XCTAssertEqual(added.idealMovedFraction, 0.25)
        XCTAssertEqual(added.movedFraction!, 0.25, accuracy: 0.02)
    }

    func testTextReport() {
        let r = HashAnalysis.Report(
            algorithm: "ring", servers: 10, keys: 1000, maxOverAvg: 1.23456,
            stddevShare: 0.0712, movedFraction: 0.1234, idealMovedFraction: 0.1,
            lookupNs: 41.25, buildMs: 2.5)
        XCTAssertEqual(
            r.text.split(separator: "\n").map(String.init),
            [
                "algorithm     ring",
                "servers       10",
                "keys          1000",
                "balance       max/avg 1.2346, stddev of share 7.12 % of the mean",
                "moved         12.340 % of keys (ideal 10.000 %, 1.234 × ideal)",
                "lookup        41.3 ns median, including key hashing",
                "build         2.500 ms median",
            ])
        var none = r
        none.movedFraction = nil
        none.idealMovedFraction = nil
        XCTAssertFalse(none.text.contains("moved"))
        XCTAssertTrue(none.json.contains("\"moved_fraction\":null,\"ideal_moved_fraction\":null"))
    }

    func testFixed() {
        XCTAssertEqual(HashAnalysis.fixed(1.23456, 3), "1.235")
        XCTAssertEqual(HashAnalysis.fixed(12, 2), "12.00")
        XCTAssertEqual(HashAnalysis.fixed(0.04, 2), "0.04")
        XCTAssertEqual(HashAnalysis.fixed(2.4, 0), "2")
        XCTAssertEqual(HashAnalysis.fixed(-1.25, 1), "-1.3")
        XCTAssertEqual(HashAnalysis.fixed(-0.001, 1), "0.0")
        XCTAssertEqual(HashAnalysis.fixed(Double.infinity, 2), "inf")
    }
}
