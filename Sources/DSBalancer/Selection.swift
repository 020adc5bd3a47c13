import DSHashing

/// Bounded loads (`--balance-factor`) over one snapshot: DSHashing's `BoundedLoad` decorator
/// over the snapshot's table, with down replicas left out. Building it computes every member's
/// weight share, so a worker builds one per snapshot and factor and asks it per request.
///
/// Thread safety: immutable; any thread. The `inFlight` closure is called on the calling thread
/// only, during the call.
package struct BoundedSelection: Sendable {
    package let snapshot: Snapshot
    package let balanceFactor: Double
    private let bounded: BoundedLoad

    /// `balanceFactor` (c) must be in 1 ... 1000, as `--balance-factor` is checked.
    package init(_ snapshot: Snapshot, balanceFactor: Double) {
        self.snapshot = snapshot
        self.balanceFactor = balanceFactor
        bounded = BoundedLoad(snapshot.table, balanceFactor: balanceFactor)
    }

    /// The replica for `hashedKey` as an index into `snapshot.backends`: the first healthy
    /// candidate in the table's order whose in-flight requests are under ⌈c × average⌉, else
    /// the least loaded healthy one; nil when none is healthy. `inFlight(i)` is replica i's
    /// count over all workers, `totalInFlight` the sum of them. `rank` is the choice's place in
    /// the table's order for the key: above 0, the load moved the request off its first choice.
    package func choose(_ hashedKey: UInt64, totalInFlight: Int, inFlight: (Int) -> Int) -> (index: Int, rank: Int)? {
        let healthy = snapshot.healthy
        guard
            let choice = bounded.choose(
                hashedKey, totalInFlight: totalInFlight,
                load: { index in
                    healthy[index] ? inFlight(index) : Int.max
                })
        else { return nil }
        return (choice.index, choice.rank)
    }
}

/// Draws the `random` key source's request ids (`KeyExtractor.Source.random`). The ids need
/// spread, not unpredictability: a seeded SplitMix64, one per worker, seeded apart so two
/// workers do not send the same id sequence.
///
/// Thread safety: a value; each thread uses its own.
package struct RandomRequestIDs: Sendable {
    @usableFromInline var generator: SplitMix64

    package init(seed: UInt64) {
        generator = SplitMix64(seed: seed)
    }

    /// A request id in 100000...999999, the range the course's clients draw theirs from, as its
    /// decimal digits packed into the low six bytes (first digit lowest): no buffer to allocate.
    @inlinable
    package mutating func next() -> UInt64 {
        // Lemire's multiply-shift: uniform enough (bias below 2⁻⁴⁴) without a division.
        var id = 100_000 + generator.next().multipliedFullWidth(by: 900_000).high
        var packed: UInt64 = 0
        for position in stride(from: 5, through: 0, by: -1) {
            packed |= (48 + id % 10) << (8 * UInt64(position))
            id /= 10
        }
        return packed
    }
}
