/// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
/// a deterministic 64-bit generator for reproducible analyses (`ds-lb ring --seed`) and tests.
/// Not for anything that needs unpredictability.
///
/// Thread safety: a value; each thread uses its own copy.
///
/// Usable from inline so that its inlinable `next()` inlines where other modules draw many numbers
/// in a loop (analyses, tests).
@usableFromInline package struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline package var state: UInt64

    package init(seed: UInt64) {
        state = seed
    }

    @inlinable
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }
}
