import DSHashing

/// The assignment's circle with pluggable slot functions, for A-4: M slots, K virtual servers
/// per replica placed at Φ(i, j) with linear probing (replicas in ascending number, then j), and
/// a request at H(id) served by the first virtual server clockwise. With the assignment's own H
/// and Φ (M = 512, K = 9) it routes exactly as DSHashing's `Assignment` (checked in A-4).
struct SlotRing {
    struct Functions {
        let name: String
        let slots: Int
        let virtualServers: Int
        /// H(id) before `mod slots`.
        let request: @Sendable (UInt64) -> UInt64
        /// Φ(i, j) before `mod slots`.
        let virtualServer: @Sendable (UInt64, UInt64) -> UInt64
    }

    let functions: Functions
    /// `successor[s]`: the replica number owning the first occupied slot ≥ s (wrapping), or -1.
    private let successor: [Int]

    init(_ functions: Functions, replicas numbers: [Int]) {
        self.functions = functions
        let m = functions.slots
        var owner = [Int](repeating: -1, count: m)
        var free = m
        place: for i in numbers.sorted() {
            for j in 0..<UInt64(functions.virtualServers) {
                guard free > 0 else { break place }
                var s = Int(functions.virtualServer(UInt64(i), j) % UInt64(m))
                while owner[s] >= 0 { s = (s + 1) % m }
                owner[s] = i
                free -= 1
            }
        }
        var successor = [Int](repeating: -1, count: m)
        var next = -1
        for pass in 0..<2 {
            for s in stride(from: m - 1, through: 0, by: -1) {
                if owner[s] >= 0 { next = owner[s] }
                if pass == 1 { successor[s] = next }
            }
        }
        self.successor = successor
    }

    /// The replica number serving `id`.
    func owner(_ id: UInt64) -> Int {
        successor[Int(functions.request(id) % UInt64(functions.slots))]
    }

    // MARK: the functions A-4 compares

    /// The assignment: H(i) = i² + 2i + 17, Φ(i, j) = i² + j² + 2j + 25, M = 512, K = 9.
    static let assignment = Functions(
        name: "assignment H, Φ", slots: 512, virtualServers: 9,
        request: { i in i &* i &+ 2 &* i &+ 17 },
        virtualServer: { i, j in i &* i &+ j &* j &+ 2 &* j &+ 25 })

    /// The assignment's H, with Φ spacing a replica's K virtual servers ⌊M/K⌋ apart instead of
    /// bunching them after i²: isolates how much of the imbalance is Φ's and how much H's.
    static let spacedPhi = Functions(
        name: "H, spaced Φ", slots: 512, virtualServers: 9,
        request: { i in i &* i &+ 2 &* i &+ 17 },
        virtualServer: { i, j in i &* i &+ 25 &+ j &* (512 / 9) })

    /// Same circle, both functions replaced by Fibonacci (multiplicative) hashing: the top bits
    /// of i·2⁶⁴/φ (Knuth 6.4), well spread for consecutive integers.
    static let fibonacci = Functions(
        name: "Fibonacci H, Φ", slots: 512, virtualServers: 9,
        request: { i in (i &* 0x9E37_79B9_7F4A_7C15) >> 55 },
        virtualServer: { i, j in ((i &* 64 &+ j) &* 0x9E37_79B9_7F4A_7C15) >> 55 })

    /// xxHash64 for both, on a bigger circle with more virtual servers (ketama-like).
    static let xxhashLarge = Functions(
        name: "xxHash64, M 65536, K 100", slots: 65536, virtualServers: 100,
        request: { i in XXH64.hash(i) },
        virtualServer: { i, j in XXH64.hash(i << 32 | j, seed: 1) })
}
