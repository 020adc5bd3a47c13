/// Offline measurement of a hash algorithm: balance, churn, lookup cost and build cost, on
/// `server-1 … server-N` and K pseudo-random keys from a seed. It is what `ds-lb ring` prints and
/// what bench/RESULTS.md records, kept here so both use one method.
///
/// Method
/// - Keys: K decimal strings of SplitMix64(seed) outputs (≤ 20 bytes each), packed in one buffer.
/// - Balance: each key's owner after `key(_:)` + `lookup`; max/avg of the per-member counts and
///   the standard deviation of the shares divided by the mean share (coefficient of variation).
///   With K = 10⁶ even a perfect algorithm shows sampling noise (≈ 1.024 max/avg at N = 100).
/// - Churn: the fraction of keys whose owner *name* differs after removing R members (chosen by
///   the seed) or adding A members (`server-N+1 …`); ideal is R/N or A/(N+A).
/// - Lookup: key hashing plus `lookup`, through `any ConsistentHash` as the proxy calls it, timed
///   in batches of 1000 keys; the median batch divided by 1000.
/// - Build: median wall time of repeated builds (at least 3, up to ~0.5 s of building).
///
/// Thread safety: any thread; it allocates and takes seconds for large K. Build with -c release
/// for meaningful timings.
package enum HashAnalysis {
    package struct Report: Sendable, Equatable {
        package var algorithm: String
        package var servers: Int
        package var keys: Int
        package var maxOverAvg: Double
        /// Standard deviation of the members' shares divided by the mean share.
        package var stddevShare: Double
        /// nil when neither removal nor addition was asked for.
        package var movedFraction: Double?
        package var idealMovedFraction: Double?
        package var lookupNs: Double
        package var buildMs: Double

        /// The specified JSON keys, in a stable order, numbers in plain decimal.
        package var json: String {
            func num(_ x: Double?) -> String { x.map { "\($0)" } ?? "null" }
            return "{\"algorithm\":\"\(algorithm)\",\"servers\":\(servers),\"keys\":\(keys),"
                + "\"max_over_avg\":\(num(maxOverAvg)),\"stddev_share\":\(num(stddevShare)),"
                + "\"moved_fraction\":\(num(movedFraction)),\"ideal_moved_fraction\":\(num(idealMovedFraction)),"
                + "\"lookup_ns\":\(num(lookupNs)),\"build_ms\":\(num(buildMs))}"
        }

        /// The same figures for people, one per line (what `ds-lb ring` prints without --json).
        package var text: String {
            var lines = [
                "algorithm     \(algorithm)",
                "servers       \(servers)",
                "keys          \(keys)",
                "balance       max/avg \(fixed(maxOverAvg, 4)), stddev of share \(fixed(stddevShare * 100, 2)) % of the mean",
            ]
            if let moved = movedFraction, let ideal = idealMovedFraction {
                let ratio = ideal > 0 ? fixed(moved / ideal, 3) : "-"
                lines.append(
                    "moved         \(fixed(moved * 100, 3)) % of keys (ideal \(fixed(ideal * 100, 3)) %, \(ratio) × ideal)")
            }
            lines.append("lookup        \(fixed(lookupNs, 1)) ns median, including key hashing")
            lines.append("build         \(fixed(buildMs, 3)) ms median")
            return lines.joined(separator: "\n")
        }
    }

    /// `x` rounded to `digits` decimals, without Foundation's String(format:).
    static func fixed(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "\(x)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let negative = x < 0
        // + 0.5 and truncate: round half up without `rounded()`, which may call libm (see squareRoot).
        let scaled = abs(x) * scale + 0.5
        guard scaled < 9e18 else { return "\(x)" }
        let units = UInt64(scaled)
        let whole = units / UInt64(scale), frac = units % UInt64(scale)
        var out = (negative && units != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let f = String(frac)
            out += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return out
    }

    /// Packed key strings: bytes plus end offsets.
    package struct KeySet: Sendable {
        package let bytes: [UInt8]
        package let ends: [Int]
        package var count: Int { ends.count }

        package init(count: Int, seed: UInt64) {
            var rng = SplitMix64(seed: seed)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count * 20)
            var ends: [Int] = []
            ends.reserveCapacity(count)
            for _ in 0..<count {
                bytes.append(contentsOf: String(rng.next()).utf8)
                ends.append(bytes.count)
            }
            self.bytes = bytes
            self.ends = ends
        }

        /// Calls `body` with each key's bytes.
        @inlinable
        package func forEach(_ range: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) -> Void) {
            let range = range ?? 0..<ends.count
            bytes.withUnsafeBytes { raw in
                for i in range {
                    let start = i == 0 ? 0 : ends[i - 1]
                    body(UnsafeRawBufferPointer(rebasing: raw[start..<ends[i]]))
                }
            }
        }
    }

    package static func members(_ n: Int, from first: Int = 1) -> [HashMember] {
        (first..<(first + n)).map { HashMember(name: "server-\($0)", number: $0) }
    }

    /// Runs the whole analysis. `remove` and `add` are mutually exclusive (remove wins).
    package static func run(
        algorithm: HashAlgorithm, servers n: Int, keys count: Int,
        remove: Int = 0, add: Int = 0, seed: UInt64 = 1
    ) -> Report {
        precondition(n > 0 && count > 0, "need servers and keys")
        let members = members(n)
        let keys = KeySet(count: count, seed: seed)
        let table = algorithm.build(members)

        // Balance.
        var owners = [Int32](repeating: 0, count: count)
        var perMember = [Int](repeating: 0, count: n)
        var i = 0
        keys.forEach { bytes in
            let owner = table.lookup(table.key(bytes))!
            owners[i] = Int32(owner)
            perMember[owner] += 1
            i += 1
        }
        let mean = Double(count) / Double(n)
        let maxOverAvg = Double(perMember.max()!) / mean
        var sumSquares = 0.0
        for c in perMember { sumSquares += (Double(c) - mean) * (Double(c) - mean) }
        let stddevShare = squareRoot(sumSquares / Double(n)) / mean

        // Churn, compared by member name.
        var moved: Double?
        var ideal: Double?
        if remove > 0 || add > 0 {
            var changed: [HashMember]
            if remove > 0 {
                precondition(remove < n, "cannot remove every server")
                var rng = SplitMix64(seed: seed ^ 0x5EED)
                changed = members.shuffled(using: &rng)
                changed.removeLast(remove)
                ideal = Double(remove) / Double(n)
            } else {
                changed = members + HashAnalysis.members(add, from: n + 1)
                ideal = Double(add) / Double(n + add)
            }
            let other = algorithm.build(changed)
            var movedCount = 0
            i = 0
            keys.forEach { bytes in
                let after = other.members[other.lookup(other.key(bytes))!].name
                if after != table.members[Int(owners[i])].name { movedCount += 1 }
                i += 1
            }
            moved = Double(movedCount) / Double(count)
        }

        return Report(
            algorithm: algorithm.rawValue, servers: n, keys: count,
            maxOverAvg: maxOverAvg, stddevShare: stddevShare,
            movedFraction: moved, idealMovedFraction: ideal,
            lookupNs: lookupNanoseconds(table, keys), buildMs: buildMilliseconds(algorithm, members))
    }

    /// Median per-key time of `key(_:)` + `lookup` over batches of 1000 keys.
    package static func lookupNanoseconds(_ table: any ConsistentHash, _ keys: KeySet) -> Double {
        let batch = 1000
        let batches = max(1, keys.count / batch)
        var samples: [Double] = []
        samples.reserveCapacity(batches)
        var sink = 0
        let clock = ContinuousClock()
        for b in 0..<batches {
            let range = (b * batch)..<min(keys.count, (b + 1) * batch)
            let start = clock.now
            keys.forEach(range) { bytes in
                sink &+= table.lookup(table.key(bytes))!
            }
            samples.append(nanoseconds(clock.now - start) / Double(range.count))
        }
        blackHole(sink)
        return median(samples)
    }

    /// Median wall time of `algorithm.build(members)`.
    package static func buildMilliseconds(_ algorithm: HashAlgorithm, _ members: [HashMember]) -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        var spent = 0.0
        while samples.count < 3 || (spent < 500 && samples.count < 25) {
            let start = clock.now
            let table = algorithm.build(members)
            let ms = nanoseconds(clock.now - start) / 1e6
            blackHole(table.members.count)
            samples.append(ms)
            spent += ms
        }
        return median(samples)
    }

    static func nanoseconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) * 1e9 + Double(c.attoseconds) / 1e9
    }

    /// Newton's method; `Double.squareRoot()` may lower to libm's `sqrt`, which a
    /// standard-library-only target does not link.
    static func squareRoot(_ x: Double) -> Double {
        guard x > 0 else { return 0 }
        var r = x > 1 ? x / 2 : 1
        for _ in 0..<200 {
            let next = (r + x / r) / 2
            if next == r { break }
            r = next
        }
        return r
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    @inline(never)
    static func blackHole(_ x: Int) {
        if x == Int.min { print("") }
    }
}
