#if canImport(Glibc)
import Glibc
#endif

/// A reusable iovec array for `writev`, owned by a worker and filled anew for each write, so
/// gathering a head's pieces allocates nothing per request. Loop thread only.
///
/// Safety: `entries` is allocated here with `capacity` slots and grows only here; entries point
/// into buffers the caller keeps alive and unmodified until its write returns (they are filled
/// and used within one call, never kept).
///
/// Usable from inline with an inlinable `removeAll()`: the proxy resets it for every head it
/// writes, from another module, where a call would cost more than the two stores.
@usableFromInline package final class IOVecBuffer {
    private var entries: UnsafeMutablePointer<iovec>
    private var capacity: Int
    @usableFromInline package internal(set) var count = 0
    /// Bytes covered by the entries.
    @usableFromInline package internal(set) var totalLength = 0

    package init(capacity: Int = 128) {
        self.capacity = max(capacity, 4)
        entries = UnsafeMutablePointer<iovec>.allocate(capacity: self.capacity)
    }

    deinit { entries.deallocate() }

    @inlinable package func removeAll() {
        count = 0
        totalLength = 0
    }

    package func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if count == capacity {
            let grown = UnsafeMutablePointer<iovec>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: entries, count: count)
            entries.deallocate()
            entries = grown
            capacity *= 2
        }
        (entries + count).initialize(to: iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: bytes.count))
        count += 1
        totalLength += bytes.count
    }

    /// The entries, valid until the next `append` or `removeAll`.
    package var buffer: UnsafeMutableBufferPointer<iovec> { UnsafeMutableBufferPointer(start: entries, count: count) }

    /// Calls `body` with what is left of the entries after the first `skip` bytes (what a short
    /// `writev` did not take), piece by piece.
    package func forEachRemaining(after skip: Int, _ body: (UnsafeRawBufferPointer) -> Void) {
        var skip = skip
        for i in 0..<count {
            let entry = entries[i]
            if skip >= entry.iov_len { skip -= entry.iov_len; continue }
            body(UnsafeRawBufferPointer(start: entry.iov_base! + skip, count: entry.iov_len - skip))
            skip = 0
        }
    }
}
