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

    /// `forEach` yields every key of the range, in order, as the seed's decimal numbers: from the
    /// start, from the middle (its first key starts at the previous key's end) and empty.
    func testKeySetForEachYieldsEachKeyOfTheRange() {
        let keys = HashAnalysis.KeySet(count: 50, seed: 3)
        var rng = SplitMix64(seed: 3)
        let expected = (0..<50).map { _ in String(rng.next()) }
        for range in [0..<50, 0..<1, 17..<31, 49..<50, 20..<20] {
            var got: [String] = []
            keys.forEach(range) { got.append(String(decoding: $0, as: UTF8.self)) }
            XCTAssertEqual(got, Array(expected[range]), "range \(range)")
        }
        var all: [String] = []
        keys.forEach { all.append(String(decoding: $0, as: UTF8.self)) }
        XCTAssertEqual(all, expected)
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
        XCTAssertGreaterThan(r.rebuildMs ?? 0, 0, "rendezvous reports the rebuild from the first table")
        let added = HashAnalysis.run(algorithm: .ring, servers: 4, keys: 20_000, add: 1, seed: 4)
        XCTAssertEqual(added.idealMovedFraction, 0.2)
        XCTAssertTrue(added.json.hasPrefix("{\"algorithm\":\"ring\",\"servers\":4,\"keys\":20000,\"max_over_avg\":"))
        XCTAssertTrue(added.json.contains("\"ideal_moved_fraction\":0.2,"))
        let none = HashAnalysis.run(algorithm: .maglev, servers: 3, keys: 1000)
        XCTAssertNil(none.movedFraction)
        XCTAssertNil(added.rebuildMs, "the ring always builds afresh")
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

    /// `ds-lb ring --weights … --reweight …`: every member's share against its weight's share,
    /// and the churn of the weight change with its collateral (none for rendezvous).
    func testWeightedRunReportsSharesAndReweightChurn() {
        let r = HashAnalysis.run(
            algorithm: .rendezvous, servers: 4, keys: 40_000, weights: [1, 1, 2, 4],
            change: .reweight(0, weight: 4), seed: 2)
        let replicas = try! XCTUnwrap(r.replicas)
        XCTAssertEqual(replicas.map(\.name), ["server-1", "server-2", "server-3", "server-4"])
        XCTAssertEqual(replicas.map(\.weight), [1, 1, 2, 4])
        XCTAssertEqual(replicas.map(\.expectedShare), [0.125, 0.125, 0.25, 0.5])
        for s in replicas { XCTAssertEqual(s.share, s.expectedShare, accuracy: s.expectedShare * 0.05, s.name) }
        XCTAssertEqual(r.maxShareDeviation!, replicas.map { abs($0.share / $0.expectedShare - 1) }.max()!)
        XCTAssertEqual(r.maxOverAvg, replicas.map { $0.share / $0.expectedShare }.max()!)
        // server-1 goes from 1/8 to 4/11 of the keys.
        XCTAssertEqual(r.idealMovedFraction!, 4.0 / 11 - 1.0 / 8, accuracy: 1e-12)
        XCTAssertEqual(r.movedFraction!, r.idealMovedFraction!, accuracy: 0.01)
        XCTAssertEqual(r.collateralFraction, 0)
        XCTAssertTrue(r.json.contains("\"collateral_fraction\":0.0,\"max_share_deviation\":"))
        XCTAssertTrue(r.json.contains("\"replicas\":[{\"name\":\"server-1\",\"weight\":1,\"share\":"))
        XCTAssertTrue(r.text.contains("collateral    0.000 % of keys moved between replicas the change left alone"))
        XCTAssertTrue(r.text.contains("  server-4  weight 4  share "))
        // Key sampling alone: the smallest share, 1/8 of 40,000 keys, varies by √(7/8 / 5000).
        XCTAssertEqual(r.samplingSigma!, (0.875 / 5000).squareRoot(), accuracy: 1e-12)
        XCTAssertTrue(r.json.contains(",\"sampling_sigma\":0.0132"))
        XCTAssertTrue(r.text.contains("sampling      ±1.32 % (1σ) on the smallest share from the keys alone"))

        // Weight 0: no keys, and its share's deviation is 0 (not counted in max/avg).
        let drained = HashAnalysis.run(algorithm: .maglev, servers: 3, keys: 9_000, weights: [0, 1, 1], change: nil)
        XCTAssertEqual(drained.replicas![0].share, 0)
        XCTAssertEqual(drained.replicas![0].deviation, 0)
        XCTAssertNil(drained.collateralFraction)
        XCTAssertLessThan(drained.maxOverAvg, 1.05)

        // Removal in a weighted run: the ideal is the removed weight's share.
        let removed = HashAnalysis.run(
            algorithm: .ring, servers: 3, keys: 9_000, weights: [2, 1, 1], change: .remove(1), seed: 3)
        XCTAssertTrue([0.25, 0.5].contains(removed.idealMovedFraction!))
        XCTAssertEqual(removed.collateralFraction, 0)
    }

    /// Bad weights are one-line errors naming the value (what `ds-lb ring` prints).
    func testWeightOptionErrors() {
        XCTAssertEqual(try HashAnalysis.parseWeights("1,2,4,0,256"), [1, 2, 4, 0, 256])
        for (text, bad) in [("1,-1", "-1"), ("257", "257"), ("1,x", "x"), ("1,,2", ""), ("1.5", "1.5")] {
            XCTAssertThrowsError(try HashAnalysis.parseWeights(text)) { error in
                XCTAssertEqual(
                    (error as? HashAnalysis.OptionError)?.message,
                    "--weights: weight '\(bad)' is not an integer 0...256")
            }
        }
        XCTAssertTrue(try HashAnalysis.parseReweight("server-3=7", servers: 4) == (2, 7))
        for text in ["server-5=1", "server-0=1", "s3=1", "server-3", "server-x=2"] {
            XCTAssertThrowsError(try HashAnalysis.parseReweight(text, servers: 4)) { error in
                XCTAssertEqual(
                    (error as? HashAnalysis.OptionError)?.message,
                    "--reweight: '\(text)' is not server-i=W with i in 1...4")
            }
        }
        XCTAssertThrowsError(try HashAnalysis.parseReweight("server-2=257", servers: 4)) { error in
            XCTAssertEqual(
                (error as? HashAnalysis.OptionError)?.message, "--reweight: weight '257' is not an integer 0...256")
        }
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
                "build         2.500 ms median, fresh (every member placed)",
            ])
        var rebuilt = r
        rebuilt.rebuildMs = 0.75
        XCTAssertEqual(
            rebuilt.text.split(separator: "\n").last,
            "rebuild       0.750 ms median, the changed table derived from the first")
        XCTAssertTrue(rebuilt.json.hasSuffix("\"build_ms\":2.5,\"rebuild_ms\":0.75}"))
        XCTAssertFalse(r.json.contains("rebuild_ms"))
        var none = r
        none.movedFraction = nil
        none.idealMovedFraction = nil
        XCTAssertFalse(none.text.contains("moved"))
        XCTAssertNil(r.samplingSigma, "unweighted runs give no per-replica shares")
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
