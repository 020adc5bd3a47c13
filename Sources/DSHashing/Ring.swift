/// Karger et al.'s consistent-hash ring with virtual nodes, as libketama and nginx's
/// `hash ... consistent` build it: every member puts
/// `weight × pointsPerWeight` points on a 64-bit circle; a key goes to the owner of the first point
/// at or after it, clockwise.
///
/// Properties:
/// - Removing a member moves exactly its own keys and nothing else (zero collateral); adding one
///   moves only the keys it takes. That holds because a point's position depends only on its own
///   member's name, never on the other members or on list order (the usual bug of hashed upstreams).
/// - Balance is the weak side: a member's share is a sum of V exponential arcs, so its relative
///   standard deviation is ≈ 1/√V. V = 1000 gives ≈ 3 %, i.e. max/avg ≈ 1.07 at N = 100.
///
/// Point identity: point `i` of a member is `XXH64(utf8(name), seed: i)` for
/// `i in 0 ..< weight × pointsPerWeight`. This is the `"\(name)#\(i)"` idea without building a
/// string per point, and raising a weight only adds points (the old ones stay).
///
/// Thread safety: immutable after `init`; every method is any-thread.
///
/// Usable from inline, like the other tables: `HashTable`'s inlinable lookup reaches into it from
/// the proxy's module, and a package type's inlinable members are emitted into other modules only
/// when the type itself is usable from inline.
@usableFromInline package struct Ring: ConsistentHash {
    package static let algorithm = HashAlgorithm.ring

    /// Points per unit of weight: at least 1000 for max/avg near 1.05 at small N
    /// (libketama and nginx use 160, HAProxy 16, which is why their balance is 1.1–1.7).
    package static let defaultPointsPerWeight = 1000

    /// Weights are clamped to 0 ... `maxWeight` so that one huge weight cannot allocate millions of
    /// points (nginx's upstream hash has no such clamp). A member of weight 0 owns no point, so
    /// neither lookups nor candidate walks ever reach it.
    package static let maxWeight = HashMember.maxWeight

    package let members: [HashMember]
    package let pointsPerWeight: Int

    /// Point positions, ascending. Kept apart from `owners` so the binary search touches only
    /// 8 bytes per probe.
    @usableFromInline let points: [UInt64]
    /// `owners[k]` is the index into `members` of the member that owns `points[k]`.
    @usableFromInline let owners: [UInt32]
    /// Members that own points (weight > 0): where a candidate walk can stop early.
    let reachable: Int

    package init(members: [HashMember]) {
        self.init(members: members, pointsPerWeight: Ring.defaultPointsPerWeight)
    }

    package init(members: [HashMember], pointsPerWeight: Int) {
        precondition(pointsPerWeight > 0, "pointsPerWeight must be positive")
        let sorted = HashMember.canonicalOrder(members)
        self.members = sorted
        self.pointsPerWeight = pointsPerWeight

        var total = 0
        var reachable = 0
        for m in sorted {
            let w = HashMember.clampedWeight(m.weight, max: Ring.maxWeight)
            total += w * pointsPerWeight
            if w > 0 { reachable += 1 }
        }
        self.reachable = reachable
        // Build (position, owner) pairs, then sort by position; ties (a 64-bit collision, ≈ never)
        // break by owner index so the result still depends only on the member set.
        var pairs: [(UInt64, UInt32)] = []
        pairs.reserveCapacity(total)
        for (index, member) in sorted.enumerated() {
            let count = HashMember.clampedWeight(member.weight, max: Ring.maxWeight) * pointsPerWeight
            var name = member.name
            name.withUTF8 { utf8 in
                let raw = UnsafeRawBufferPointer(utf8)
                for i in 0..<count {
                    pairs.append((XXH64.hash(raw, seed: UInt64(i)), UInt32(index)))
                }
            }
        }
        pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        self.points = pairs.map(\.0)
        self.owners = pairs.map(\.1)
    }

    /// Index of the first point at or after `key`, wrapping to 0 past the last point.
    @inlinable
    func successor(_ key: UInt64) -> Int {
        points.withUnsafeBufferPointer { p in
            // Lower bound by halving a length, which compiles to a branch-light loop.
            var low = 0
            var length = p.count
            while length > 0 {
                let half = length &>> 1
                if p[low &+ half] < key {
                    low = low &+ half &+ 1
                    length = length &- half &- 1
                } else {
                    length = half
                }
            }
            return low == p.count ? 0 : low
        }
    }

    @inlinable
    package func lookup(_ key: UInt64) -> Int? {
        guard !points.isEmpty else { return nil }
        return Int(owners[successor(key)])
    }

    /// Walks the circle clockwise from the key's successor, yielding each member the first time
    /// one of its points is met: the ketama/pingora `node_iter` failover order, so a down member
    /// is skipped without a rebuild and its keys spread over its ring neighbours.
    @usableFromInline package func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        let count = points.count
        guard count > 0 else { return }
        let start = successor(key)
        let first = Int(owners[start])
        guard body(first) else { return }
        let n = members.count
        if reachable == 1 { return }
        SeenSet.with(capacity: n) { seen in
            seen.insert(first)
            var remaining = reachable - 1
            var k = start
            for _ in 1..<count {
                k += 1
                if k == count { k = 0 }
                let owner = Int(owners[k])
                if seen.insert(owner) {
                    guard body(owner) else { return }
                    remaining -= 1
                    if remaining == 0 { return }
                }
            }
        }
    }
}
