/// The classic course preset ("assignment"): a 512-slot circle, 9 virtual servers per
/// replica, quadratic slot functions, linear probing, nearest virtual server clockwise.
///
/// - Request slot:        H(i)    = (i² + 2i + 17) mod M, i = the integer request id.
/// - Virtual-server slot: Φ(i, j) = (i² + j² + 2j + 25) mod M, i = the replica's `number`,
///                        j = 0 … K−1.
/// - Replicas are placed in ascending `number` (ties by name) and, inside a replica, in ascending
///   j; a taken slot is resolved by linear probing (the next slot clockwise). Ascending order is
///   what makes the preset's golden vectors come out (replica 2's Φ(2, 0) = 29 collides with
///   replica 1's Φ(1, 1) and probes to 30), and it makes the table a function of the set.
/// - A request goes to the first virtual server at a slot ≥ H(i), wrapping past M − 1.
///
/// It is kept for compatibility with the course's expected outputs, not for quality: a quadratic
/// slot function clusters replicas (with 3 replicas, ids 100000…109999 split 8439 / 468 / 1093),
/// and the circle holds at most M / K ≈ 56 replicas' worth of virtual servers. Replicas whose
/// virtual servers no longer fit are still reachable as the last candidates of a failover walk.
///
/// Arithmetic: M = 512 divides 2⁶⁴, so wrapping UInt64 arithmetic followed by `mod M` is exact for
/// any id, including ids whose square overflows 64 bits.
///
/// Thread safety: immutable after `init`; every method is any-thread.
///
/// Usable from inline, like the other tables: `HashTable`'s inlinable lookup reaches into it from
/// the proxy's module, and a package type's inlinable members are emitted into other modules only
/// when the type itself is usable from inline.
@usableFromInline package struct Assignment: ConsistentHash {
    package static let algorithm = HashAlgorithm.assignment

    /// Slots on the circle.
    @usableFromInline package static let slotCount = 512
    /// Virtual servers per replica.
    package static let virtualServersPerReplica = 9

    package let members: [HashMember]

    /// `slots[s]` is the index into `members` owning slot s, or `-1` when the slot is free.
    package let slots: [Int32]
    /// `successor[s]` is the owner of the first occupied slot ≥ s (wrapping), or -1 if none:
    /// a request lookup is one array read.
    @usableFromInline let successor: [Int32]

    package init(members: [HashMember]) {
        let sorted = HashMember.canonicalOrder(members)
        self.members = sorted
        let m = Assignment.slotCount
        var slots = [Int32](repeating: -1, count: m)

        // Placement order: ascending replica number, then name (see the type comment).
        let placement = sorted.indices.sorted { a, b in
            sorted[a].number != sorted[b].number
                ? sorted[a].number < sorted[b].number
                : sorted[a].name < sorted[b].name
        }
        var free = m
        place: for index in placement {
            let i = Assignment.residue(sorted[index].number)
            for j in 0..<UInt64(Assignment.virtualServersPerReplica) {
                guard free > 0 else { break place }
                var s = Int((i &* i &+ j &* j &+ 2 &* j &+ 25) & UInt64(m - 1))
                while slots[s] >= 0 { s = (s + 1) & (m - 1) } // linear probing
                slots[s] = Int32(index)
                free -= 1
            }
        }
        self.slots = slots

        // Successor table, filled by sweeping the circle backwards twice so that wrap-around is
        // covered without a special case.
        var successor = [Int32](repeating: -1, count: m)
        var next: Int32 = -1
        for pass in 0..<2 {
            for s in stride(from: m - 1, through: 0, by: -1) {
                if slots[s] >= 0 { next = slots[s] }
                if pass == 1 { successor[s] = next }
            }
        }
        self.successor = successor
    }

    /// x mod 2⁶⁴ as an unsigned value; since M divides 2⁶⁴ this preserves x mod M, also for
    /// negative numbers (two's complement).
    @inlinable
    static func residue(_ x: Int) -> UInt64 {
        UInt64(bitPattern: Int64(x))
    }

    /// Any thread. H(i) = (i² + 2i + 17) mod M.
    @inlinable
    package static func requestSlot(_ id: UInt64) -> Int {
        Int((id &* id &+ 2 &* id &+ 17) & UInt64(slotCount - 1))
    }

    /// Any thread. Φ(i, j) = (i² + j² + 2j + 25) mod M, before probing.
    package static func virtualServerSlot(replica i: Int, j: Int) -> Int {
        let i = residue(i), j = residue(j)
        return Int((i &* i &+ j &* j &+ 2 &* j &+ 25) & UInt64(slotCount - 1))
    }

    /// Slots held by the member at `index`, ascending.
    package func slots(of index: Int) -> [Int] {
        slots.indices.filter { slots[$0] == Int32(index) }
    }

    /// Any thread. A decimal request id (`"12345"`, optionally with a leading `+`) is used as is;
    /// anything else (letters, a sign, too many digits for 64 bits, empty) is hashed to an
    /// integer with XXH64 first, as the preset specifies for non-integer keys.
    @usableFromInline package func key(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        Assignment.decimalValue(bytes) ?? XXH64.hash(bytes)
    }

    /// The value of `bytes` if they are an unsigned decimal integer that fits in 64 bits.
    package static func decimalValue(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var start = 0
        if bytes.count > 1 && bytes[0] == UInt8(ascii: "+") { start = 1 }
        guard bytes.count > start else { return nil }
        var value: UInt64 = 0
        for k in start..<bytes.count {
            let d = bytes[k] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(d))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    @inlinable
    package func lookup(_ key: UInt64) -> Int? {
        let owner = successor[Assignment.requestSlot(key)]
        return owner < 0 ? nil : Int(owner)
    }

    /// The owners of the virtual servers clockwise from H(i), each once; then any replica that got
    /// no slot (the circle was full), in member order, so a walk always covers everyone.
    @usableFromInline package func forEachCandidate(_ key: UInt64, _ body: (Int) -> Bool) {
        let n = members.count
        guard n > 0 else { return }
        SeenSet.with(capacity: n) { seen in
            var yielded = 0
            let m = Assignment.slotCount
            let start = Assignment.requestSlot(key)
            for step in 0..<m {
                let owner = slots[(start + step) & (m - 1)]
                if owner >= 0 && seen.insert(Int(owner)) {
                    guard body(Int(owner)) else { return }
                    yielded += 1
                    if yielded == n { return }
                }
            }
            for index in 0..<n where seen.insert(index) {
                guard body(index) else { return }
            }
        }
    }
}
