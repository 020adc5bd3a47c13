/// Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam, "Consistent Hashing
/// with Bounded Loads", SODA 2018) as a decorator over any `ConsistentHash`: a member may take a
/// new request only while its in-flight count is below ⌈c · average⌉, with
/// average = (total in-flight + 1) / N; otherwise the request walks on to the table's next
/// candidate. HAProxy's `hash-balance-factor` and Envoy's `hash_balance_factor` do the same
/// (HAProxy's doc/configuration.txt); c = 1.25 is HAProxy's lower "reasonable" bound.
///
/// - Weighted members get a weighted share of the cap: ⌈c · (total + 1) · w / W⌉, W the sum of
///   weights (as HAProxy's `chash_server_is_eligible` shares slots by weight). With equal weights
///   this is exactly ⌈c · (total + 1) / N⌉.
/// - Because c ≥ 1 and the caps add up to more than the total, some member is always under its
///   cap (pigeonhole), so a walk over all candidates always finds one — unless the caller
///   excludes members by reporting `Int.max` as their load (a down replica). Then the least-loaded
///   remaining candidate is used, and nil comes back only when every member is excluded.
/// - The walk follows the table's own `forEachCandidate` order, so a key that overflows its
///   first choice always spills to the same second choice (cache affinity is kept as far as the
///   load allows). The paper bounds the extra moves this causes by a function of c.
///
/// The caller owns the counters: the proxy increments a member's in-flight count when it sends a
/// request and decrements it when the response ends. Counts may be slightly stale (per-worker
/// counters); the bound then holds per worker.
///
/// Thread safety: immutable; every method is any-thread. The `load` closure is called on the
/// calling thread only, during the call.
///
/// Usable from inline so that its inlinable `capacity(of:totalInFlight:)` inlines into the
/// balancer's per-request choice in another module.
@usableFromInline package struct BoundedLoad: Sendable {
    package let table: any ConsistentHash
    /// c ≥ 1.
    package let balanceFactor: Double

    /// c in millionths, so caps are computed in integers (no floating-point rounding on the
    /// request path, no libm).
    @usableFromInline let factorMicros: Int
    @usableFromInline let weights: [Int]
    @usableFromInline let totalWeight: Int

    package static let maxWeight = HashMember.maxWeight

    package init(_ table: any ConsistentHash, balanceFactor: Double) {
        precondition(balanceFactor >= 1 && balanceFactor <= 1000, "balance factor must be in 1 ... 1000")
        self.table = table
        self.balanceFactor = balanceFactor
        self.factorMicros = Int(balanceFactor * 1_000_000)
        self.weights = table.members.map { HashMember.clampedWeight($0.weight, max: BoundedLoad.maxWeight) }
        self.totalWeight = weights.reduce(0, +)
    }

    /// The members, as in `table`.
    package var members: [HashMember] { table.members }

    /// Any thread. ⌈c · (totalInFlight + 1) · w / W⌉ for the member at `index`.
    @inlinable
    package func capacity(of index: Int, totalInFlight: Int) -> Int {
        // Every member at weight 0: none takes keys (the tables yield none either).
        guard totalWeight > 0 else { return 0 }
        // 128-bit product so no realistic count can overflow: c·10⁶·w ≤ 2.6·10¹¹.
        let scaled = UInt64(factorMicros * weights[index])
        let product = scaled.multipliedFullWidth(by: UInt64(max(0, totalInFlight)) + 1)
        let denominator = UInt64(1_000_000 * totalWeight)
        let (low, carry) = product.low.addingReportingOverflow(denominator - 1)
        let high = product.high + (carry ? 1 : 0)
        guard high < denominator else { return Int.max } // quotient beyond 64 bits
        let (quotient, _) = denominator.dividingFullWidth((high: high, low: low))
        return quotient > UInt64(Int.max) ? Int.max : Int(quotient)
    }

    /// What `choose` picked: the member index and its rank in the table's preference order
    /// (0 = the unbounded choice). A rank > 0 is the "moved off its first choice" metric.
    package struct Choice: Sendable, Equatable {
        package var index: Int
        package var rank: Int
    }

    /// Any thread. The first candidate for `key` whose load is under its cap. `load(i)` is member
    /// i's in-flight count (`Int.max` excludes it); `totalInFlight` is the sum over all members.
    package func choose(_ key: UInt64, totalInFlight: Int, load: (Int) -> Int) -> Choice? {
        var chosen: Choice?
        var fallback: Choice?
        var fallbackLoad = Int.max
        var rank = 0
        table.forEachCandidate(key) { index in
            defer { rank += 1 }
            let l = load(index)
            if l == Int.max { return true }
            if l < capacity(of: index, totalInFlight: totalInFlight) {
                chosen = Choice(index: index, rank: rank)
                return false
            }
            if l < fallbackLoad {
                fallbackLoad = l
                fallback = Choice(index: index, rank: rank)
            }
            return true
        }
        return chosen ?? fallback
    }

    /// Any thread. `choose` with the counts in a buffer indexed like `members`.
    package func choose(_ key: UInt64, inFlight: UnsafeBufferPointer<Int>, totalInFlight: Int) -> Choice? {
        precondition(inFlight.count == table.members.count, "one count per member")
        return choose(key, totalInFlight: totalInFlight) { inFlight[$0] }
    }

    /// Any thread. The chosen member's index only.
    package func lookup(_ key: UInt64, totalInFlight: Int, load: (Int) -> Int) -> Int? {
        choose(key, totalInFlight: totalInFlight, load: load)?.index
    }

    /// Any thread. The chosen member's index only, counts in a buffer.
    package func lookup(_ key: UInt64, inFlight: UnsafeBufferPointer<Int>, totalInFlight: Int) -> Int? {
        choose(key, inFlight: inFlight, totalInFlight: totalInFlight)?.index
    }
}
