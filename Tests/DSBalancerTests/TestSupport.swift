import DSSystem
import DSBalancer
import DSHashing

/// A seeded PRNG (SplitMix64) private to these tests, so they replay exactly.
struct SeededRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// `server-N` on 127.0.0.1:(9000 + N).
func backend(_ number: Int, name: String? = nil) -> Backend {
    Backend(name: name ?? "server-\(number)", number: number, host: "127.0.0.1", port: UInt16(9000 + number))
}

func select(_ snapshot: Snapshot, _ key: String) -> Backend? {
    var k = key
    return k.withUTF8 { snapshot.select(keyBytes: UnsafeRawBufferPointer($0)) }
}

/// Shared mutable test state behind DSSystem's pthread-based lock (visible to the thread
/// sanitizer, unlike the standard library's futex `Mutex`).
final class Shared<Value: Sendable>: Sendable {
    private let locked: Locked<Value>
    init(_ value: Value) { locked = Locked(value) }
    func withLock<R: Sendable>(_ body: @Sendable (inout Value) -> R) -> R { locked.withLock { body(&$0) } }
    var value: Value { withLock { $0 } }
}
