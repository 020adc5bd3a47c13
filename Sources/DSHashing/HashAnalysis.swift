/// Offline measurement of a hash algorithm: balance, churn, lookup cost and build cost, on
/// `server-1 … server-N` and K pseudo-random keys from a seed. It is what `ds-lb ring` prints and
/// what bench/RESULTS.md records, kept here so both use one method.
///
/// Method
/// - Keys: K decimal strings of SplitMix64(seed) outputs (≤ 20 bytes each), packed in one buffer.
/// - Balance: each key's owner after `key(_:)` + `lookup`; every member's count over its
///   expected count K · w / W (w its weight, W the sum; K / N with equal weights): the maximum of
///   these ratios (max/avg) and their standard deviation (the coefficient of variation of the
///   shares). With K = 10⁶ even a perfect algorithm shows sampling noise (≈ 1.024 max/avg at
///   N = 100). With weights, every member's share against its weight's share.
/// - Churn: the fraction of keys whose owner *name* differs after removing R members (chosen by
///   the seed), adding A members (`server-N+1 …`, weight 1) or changing one member's weight; the
///   ideal is the share that has to move (R/N, A/(N+A), or how much the member's weight share
///   changed). Collateral: keys that moved although neither their old nor their new owner was
///   removed, added or reweighted (0 for an algorithm with minimal churn).
///   The report gives the sampling spread of the smallest share (`samplingSigma`): at
///   10⁶ keys a share of 1/450 (weight 1 among weights averaging 4.5 at N = 100) varies by
///   ±2.1 % from sampling alone.
/// - Lookup: key hashing plus `lookup`, through `HashTable` as the proxy calls it, timed in
///   batches of 1000 keys; the median batch divided by 1000.
/// - Build: median wall time of repeated builds (at least 3, up to ~0.5 s of building), fresh:
///   every member placed. Rebuild (rendezvous, with a change): the same for the changed table
///   derived from the first, as the control plane builds it when a replica comes, goes or is
///   reweighted.
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
        /// The changed table built from the first one (`HashTable.init(previous:)`), median ms;
        /// nil without a change or for an algorithm that always builds afresh.
        package var rebuildMs: Double? = nil
        /// nil unless there was a change: moved keys between members the change did not touch.
        package var collateralFraction: Double? = nil
        /// Per member, only for a weighted run (`weights` given).
        package var replicas: [Share]? = nil

        /// One member's measured share against its weight's share.
        package struct Share: Sendable, Equatable {
            package var name: String
            package var weight: Int
            package var share: Double
            package var expectedShare: Double

            /// share / expected − 1; 0 for a weight-0 member that took nothing, +∞ if it took keys.
            package var deviation: Double {
                expectedShare > 0 ? share / expectedShare - 1 : (share > 0 ? .infinity : 0)
            }
        }

        /// The largest |share / weight's share − 1| over the members (nil unless weighted).
        package var maxShareDeviation: Double? {
            replicas?.map { abs($0.deviation) }.max()
        }

        /// What key sampling alone spreads the smallest non-zero weight's share by (one standard
        /// deviation, relative: √((1 − p) / (K·p)) for share p and K keys), nil unless weighted.
        /// A perfect algorithm's worst share deviation is a few times this, so it tells an
        /// algorithm's own error from the noise of too few keys.
        package var samplingSigma: Double? {
            guard let p = replicas?.map(\.expectedShare).filter({ $0 > 0 }).min() else { return nil }
            return HashAnalysis.squareRoot((1 - p) / (Double(keys) * p))
        }

        /// The specified JSON keys, in a stable order, numbers in plain decimal.
        package var json: String {
            func num(_ x: Double?) -> String { x.map { "\($0)" } ?? "null" }
            return "{\"algorithm\":\"\(algorithm)\",\"servers\":\(servers),\"keys\":\(keys),"
                + "\"max_over_avg\":\(num(maxOverAvg)),\"stddev_share\":\(num(stddevShare)),"
                + "\"moved_fraction\":\(num(movedFraction)),\"ideal_moved_fraction\":\(num(idealMovedFraction)),"
                + "\"lookup_ns\":\(num(lookupNs)),\"build_ms\":\(num(buildMs))"
                + (rebuildMs.map { ",\"rebuild_ms\":\($0)" } ?? "")
                + (collateralFraction.map { ",\"collateral_fraction\":\($0)" } ?? "")
                + (maxShareDeviation.map { ",\"max_share_deviation\":\(num($0))" } ?? "")
                + (samplingSigma.map { ",\"sampling_sigma\":\(num($0))" } ?? "")
                + (replicas.map { list in
                    ",\"replicas\":["
                        + list.map {
                            "{\"name\":\"\($0.name)\",\"weight\":\($0.weight),\"share\":\($0.share),"
                                + "\"expected_share\":\($0.expectedShare)}"
                        }.joined(separator: ",") + "]"
                } ?? "") + "}"
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
            if let collateral = collateralFraction {
                lines.append("collateral    \(fixed(collateral * 100, 3)) % of keys moved between replicas the change left alone")
            }
            if let replicas, let worst = maxShareDeviation {
                lines.append("weighted      every share within \(fixed(worst * 100, 2)) % of its weight's share")
                if let sigma = samplingSigma {
                    lines.append("sampling      ±\(fixed(sigma * 100, 2)) % (1σ) on the smallest share from the keys alone")
                }
                for r in replicas {
                    let deviation =
                        r.deviation.isFinite ? (r.deviation >= 0 ? "+" : "") + fixed(r.deviation * 100, 2) + " %" : "takes keys"
                    lines.append(
                        "  \(r.name)  weight \(r.weight)  share \(fixed(r.share * 100, 3)) %  weight's share \(fixed(r.expectedShare * 100, 3)) %  \(deviation)"
                    )
                }
            }
            lines.append("lookup        \(fixed(lookupNs, 1)) ns median, including key hashing")
            lines.append("build         \(fixed(buildMs, 3)) ms median, fresh (every member placed)")
            if let rebuildMs {
                lines.append("rebuild       \(fixed(rebuildMs, 3)) ms median, the changed table derived from the first")
            }
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
        ///
        /// Without index arithmetic or bounds checks per key: `lookupNanoseconds` times this loop,
        /// and the proxy hands the table a key it already has as a buffer. Safe: `range` is
        /// checked once, and `ends` ascends from a first key's end above 0 (a key is a number's
        /// decimal digits) to `bytes.count`, so every key lies inside `bytes`.
        @inlinable
        package func forEach(_ range: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) -> Void) {
            let range = range ?? 0..<ends.count
            precondition(range.lowerBound >= 0 && range.upperBound <= ends.count, "key range out of bounds")
            guard !range.isEmpty else { return }
            bytes.withUnsafeBytes { raw in
                ends.withUnsafeBufferPointer { ends in
                    let base = raw.baseAddress.unsafelyUnwrapped
                    var start = range.lowerBound == 0 ? 0 : ends[range.lowerBound &- 1]
                    for i in range {
                        let end = ends[i]
                        body(UnsafeRawBufferPointer(start: base + start, count: end &- start))
                        start = end
                    }
                }
            }
        }
    }

    package static func members(_ n: Int, from first: Int = 1) -> [HashMember] {
        (first..<(first + n)).map { HashMember(name: "server-\($0)", number: $0) }
    }

    /// The membership change whose churn `run` measures.
    package enum Change: Sendable, Equatable {
        /// R members chosen by the seed leave.
        case remove(Int)
        /// A members `server-N+1 …` of weight 1 join.
        case add(Int)
        /// The member at this index (`server-index+1`) gets this weight.
        case reweight(Int, weight: Int)
    }

    /// Runs the whole analysis. `remove` and `add` are mutually exclusive (remove wins).
    package static func run(
        algorithm: HashAlgorithm, servers n: Int, keys count: Int,
        remove: Int = 0, add: Int = 0, seed: UInt64 = 1
    ) -> Report {
        let change: Change? = remove > 0 ? .remove(remove) : add > 0 ? .add(add) : nil
        return run(algorithm: algorithm, servers: n, keys: count, weights: nil, change: change, seed: seed)
    }

    /// Runs the whole analysis on `server-1 … server-N` with `weights` (one per server, 0 ... 256,
    /// at least one above 0; nil: all 1, and no per-member shares in the report).
    package static func run(
        algorithm: HashAlgorithm, servers n: Int, keys count: Int, weights: [Int]?,
        change: Change?, seed: UInt64 = 1
    ) -> Report {
        precondition(n > 0 && count > 0, "need servers and keys")
        precondition(weights == nil || weights!.count == n, "one weight per server")
        var members = members(n)
        if let weights {
            for i in 0..<n { members[i].weight = weights[i] }
        }
        precondition(members.contains { $0.weight > 0 }, "need a member of weight > 0")
        let keys = KeySet(count: count, seed: seed)
        let table = HashTable(algorithm, members: members)
        let sorted = table.existential.members

        // Balance: counts per member against its weight's share.
        var owners = [Int32](repeating: 0, count: count)
        var perMember = [Int](repeating: 0, count: n)
        var i = 0
        keys.forEach { bytes in
            let owner = table.lookup(table.key(bytes))!
            owners[i] = Int32(owner)
            perMember[owner] += 1
            i += 1
        }
        let weightOf = sorted.map { weight(of: $0, algorithm) }
        let totalWeight = Double(weightOf.reduce(0, +))
        var ratios: [Double] = []
        var shares: [Report.Share] = []
        for (index, member) in sorted.enumerated() {
            let expected = Double(weightOf[index]) / totalWeight
            let share = Double(perMember[index]) / Double(count)
            shares.append(Report.Share(name: member.name, weight: weightOf[index], share: share, expectedShare: expected))
            if expected > 0 { ratios.append(share / expected) }
        }
        let maxOverAvg = ratios.max()!
        var sumSquares = 0.0
        for r in ratios { sumSquares += (r - 1) * (r - 1) }
        let stddevShare = squareRoot(sumSquares / Double(ratios.count))

        // Churn, compared by member name.
        var moved: Double?
        var ideal: Double?
        var collateral: Double?
        var rebuild: Double?
        if let change {
            var changed = members
            // Names whose keys may move: the removed, added or reweighted members.
            var touched: Set<String> = []
            switch change {
            case .remove(let r):
                precondition(r > 0 && r < n, "cannot remove every server")
                var rng = SplitMix64(seed: seed ^ 0x5EED)
                changed = members.shuffled(using: &rng)
                let gone = changed.suffix(r)
                changed.removeLast(r)
                touched = Set(gone.map(\.name))
                ideal = gone.reduce(0.0) { $0 + Double(weight(of: $1, algorithm)) } / totalWeight
            case .add(let a):
                precondition(a > 0, "add at least one server")
                let added = HashAnalysis.members(a, from: n + 1)
                changed = members + added
                touched = Set(added.map(\.name))
                ideal = Double(a) / (totalWeight + Double(a))
            case .reweight(let index, let w):
                precondition(index >= 0 && index < n, "reweight an existing server")
                let before = Double(weight(of: members[index], algorithm)) / totalWeight
                changed[index].weight = w
                let newTotal = changed.reduce(0.0) { $0 + Double(weight(of: $1, algorithm)) }
                precondition(newTotal > 0, "need a member of weight > 0")
                let after = Double(weight(of: changed[index], algorithm)) / newTotal
                touched = [members[index].name]
                ideal = abs(after - before)
            }
            let other = HashTable(algorithm, members: changed, previous: table)
            if algorithm == .rendezvous {
                rebuild = buildMilliseconds {
                    blackHole(HashTable(algorithm, members: changed, previous: table).existential.members.count)
                }
            }
            let otherMembers = other.existential.members
            var movedCount = 0
            var collateralCount = 0
            i = 0
            keys.forEach { bytes in
                // nil: only members of weight 0 are left (a removal can do that); every key moves.
                let after = other.lookup(other.key(bytes)).map { otherMembers[$0].name } ?? ""
                let before = sorted[Int(owners[i])].name
                if after != before {
                    movedCount += 1
                    if !touched.contains(after) && !touched.contains(before) { collateralCount += 1 }
                }
                i += 1
            }
            moved = Double(movedCount) / Double(count)
            collateral = Double(collateralCount) / Double(count)
        }

        return Report(
            algorithm: algorithm.rawValue, servers: n, keys: count,
            maxOverAvg: maxOverAvg, stddevShare: stddevShare,
            movedFraction: moved, idealMovedFraction: ideal,
            lookupNs: lookupNanoseconds(table, keys), buildMs: buildMilliseconds(algorithm, members),
            rebuildMs: rebuild, collateralFraction: collateral, replicas: weights == nil ? nil : shares)
    }

    /// A bad `ds-lb ring` weight option, as one line naming the bad value.
    package struct OptionError: Error, Equatable {
        package var message: String
    }

    /// `--weights`: comma-separated integers 0 ... `HashMember.maxWeight`.
    package static func parseWeights(_ text: String) throws(OptionError) -> [Int] {
        var weights: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            weights.append(try parseWeight(part, option: "--weights"))
        }
        return weights
    }

    /// `--reweight server-i=W` → (i − 1, W), i in 1 ... `servers`.
    package static func parseReweight(_ text: String, servers: Int) throws(OptionError) -> (index: Int, weight: Int) {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].hasPrefix("server-"), let i = Int(parts[0].dropFirst("server-".count)),
            (1...max(1, servers)).contains(i)
        else {
            throw OptionError(message: "--reweight: '\(text)' is not server-i=W with i in 1...\(servers)")
        }
        return (i - 1, try parseWeight(parts[1], option: "--reweight"))
    }

    static func parseWeight(_ text: Substring, option: String) throws(OptionError) -> Int {
        guard let w = Int(text), (0...HashMember.maxWeight).contains(w) else {
            throw OptionError(message: "\(option): weight '\(text)' is not an integer 0...\(HashMember.maxWeight)")
        }
        return w
    }

    /// The weight a table gives `member` (the assignment preset ignores weights).
    static func weight(of member: HashMember, _ algorithm: HashAlgorithm) -> Int {
        algorithm == .assignment ? 1 : HashMember.clampedWeight(member.weight, max: HashMember.maxWeight)
    }

    /// Median per-key time of `key(_:)` + `lookup` over batches of 1000 keys.
    package static func lookupNanoseconds(_ table: HashTable, _ keys: KeySet) -> Double {
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
        buildMilliseconds { blackHole(algorithm.build(members).members.count) }
    }

    /// Median wall time of `build` (at least 3 runs, up to ~0.5 s of them).
    static func buildMilliseconds(_ build: () -> Void) -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        var spent = 0.0
        while samples.count < 3 || (spent < 500 && samples.count < 25) {
            let start = clock.now
            build()
            let ms = nanoseconds(clock.now - start) / 1e6
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
