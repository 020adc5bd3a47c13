// A deterministic PRNG (SplitMix64, Steele et al., "Fast splittable pseudorandom number
// generators", 2014), so a failing run can be repeated with the same ids.

struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` distinct random 6-digit ids (100000...999999).
    mutating func sixDigitIDs(_ count: Int) -> [Int] {
        var seen = Set<Int>()
        var ids: [Int] = []
        while ids.count < count {
            let id = Int.random(in: 100_000...999_999, using: &self)
            if seen.insert(id).inserted { ids.append(id) }
        }
        return ids
    }
}
