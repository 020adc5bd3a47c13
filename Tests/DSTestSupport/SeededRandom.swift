/// The deterministic generator tests replay their random inputs from: a fixed seed gives the
/// same inputs on every run, so a failure reproduces. wyrand (Wang Yi's wyhash generator):
/// a 64-bit state and one multiply per number, with spread enough for test inputs. Here rather
/// than DSHashing's SplitMix64 so a test target need not depend on the hashing module for it.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) {
        state = seed
    }

    package mutating func next() -> UInt64 {
        state &+= 0xA076_1D64_78BD_642F
        let product = state.multipliedFullWidth(by: state ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }
}
