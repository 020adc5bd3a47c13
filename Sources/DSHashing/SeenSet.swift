/// A fixed-capacity bit set over member indexes, used by `forEachCandidate` walks to yield each
/// member once. It lives in `withUnsafeTemporaryAllocation`, i.e. on the stack for any realistic
/// member count, so a failover walk allocates nothing on the request path.
///
/// Thread safety: a value confined to the closure that created it.
@usableFromInline
struct SeenSet {
    @usableFromInline let words: UnsafeMutableBufferPointer<UInt64>

    @inlinable
    init(words: UnsafeMutableBufferPointer<UInt64>) {
        self.words = words
    }

    /// Runs `body` with an empty set able to hold indexes `0 ..< capacity`.
    @inlinable
    static func with<R>(capacity: Int, _ body: (inout SeenSet) throws -> R) rethrows -> R {
        let wordCount = max(1, (capacity + 63) >> 6)
        return try withUnsafeTemporaryAllocation(of: UInt64.self, capacity: wordCount) { buffer in
            buffer.initialize(repeating: 0)
            var set = SeenSet(words: buffer)
            return try body(&set)
        }
    }

    /// Adds `index`; returns true when it was not in the set before.
    @inlinable @inline(__always) @discardableResult
    mutating func insert(_ index: Int) -> Bool {
        let word = index >> 6
        let bit = UInt64(1) << UInt64(index & 63)
        let old = words[word]
        if old & bit != 0 { return false }
        words[word] = old | bit
        return true
    }

    @inlinable @inline(__always)
    func contains(_ index: Int) -> Bool {
        words[index >> 6] & (UInt64(1) << UInt64(index & 63)) != 0
    }
}
