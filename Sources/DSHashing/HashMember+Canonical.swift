/// The canonical member order every table is built from (ConsistentHash's contract): sorted by
/// name, so the same set gives the same table whatever order `/add` calls came in, on every
/// process. Ties (two entries with one name, a caller bug) break by number and weight so the
/// result is still a function of the set alone. String `<` compares Unicode scalar values,
/// which does not depend on locale or process.
extension HashMember {
    package static func canonicalOrder(_ members: [HashMember]) -> [HashMember] {
        members.sorted { a, b in
            if a.name != b.name { return a.name < b.name }
            if a.number != b.number { return a.number < b.number }
            return a.weight < b.weight
        }
    }

    /// Weight used for building tables: 0 ... `max`. Weight 0 is a drained replica: the weighted
    /// tables give it no keys and never yield it as a candidate, so failover and bounded loads
    /// do not send it new keys either (what is in flight is the data plane's business). A
    /// negative weight (a caller bug; the admin API rejects it) counts as 0. The upper bound
    /// bounds memory and build time.
    @inlinable
    static func clampedWeight(_ weight: Int, max maximum: Int) -> Int {
        Swift.min(Swift.max(weight, 0), maximum)
    }

    /// The largest weight a replica may have (the admin API and `ds-lb ring` reject more).
    package static let maxWeight = 256
}
