import DSBalancer
import DSHashing
import DSSystem

/// The seeded PRNG these tests replay from: DSHashing's SplitMix64.
typealias SeededRNG = SplitMix64

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
