/// A loop's free list of equal-sized buffer storage, shared by its connections: a connection
/// holds storage only while it has bytes to keep (a request in progress, a partial head), and
/// gives it back when it goes idle, so 10,000 idle keep-alive clients hold no buffers at all
/// while busy ones still allocate nothing per request (the storage is recycled). Loop thread only.
///
/// A proxied request takes and gives back three buffers (the client's request bytes, our
/// response head, the replica's response bytes), so the list is a fixed array of raw pointers
/// and a count: taking and giving are a load or a store, inlined into `ByteBuffer`. An `Array`
/// would make each a call doing a uniqueness check, plus a retain and a release of the pool.
///
/// Safety: `slots[0..<count]` are pointers allocated here with `bufferSize` bytes and owned by
/// the pool alone until `take` hands one to exactly one `ByteBuffer`, which gives it back (or
/// frees it) and never touches it again. `slots` has room for `maxFree` and `count` never
/// exceeds it.
package final class BufferPool {
    package let bufferSize: Int
    private let maxFree: Int
    private let slots: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private var count = 0

    /// Keeps at most `maxFree` unused buffers; beyond that, returned storage is freed. The
    /// default (4 MiB of 16 KiB buffers per loop) covers the swings of a few hundred busy
    /// connections without allocating; a burst of thousands (slowloris cut by the head timeout)
    /// gives its storage back instead of keeping 16 MiB per loop cached for ever.
    package init(bufferSize: Int = 16 * 1024, maxFree: Int = 256) {
        self.bufferSize = bufferSize
        self.maxFree = max(maxFree, 0)
        slots = .allocate(capacity: max(maxFree, 1))
    }

    deinit {
        for index in 0..<count { slots[index].deallocate() }
        slots.deallocate()
    }

    /// Unused buffers held now (for tests and metrics).
    package var freeCount: Int { count }

    /// Storage for a buffer that needs `minimum` bytes, or nil when that is more than the pool's size.
    @inline(__always)
    func take(_ minimum: Int) -> (storage: UnsafeMutableRawPointer, capacity: Int)? {
        guard minimum <= bufferSize else { return nil }
        guard count > 0 else { return (UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16), bufferSize) }
        count -= 1
        return (slots[count], bufferSize)
    }

    /// Takes back storage from `take` (true); storage of another size is not the pool's (false).
    @inline(__always)
    func give(_ storage: UnsafeMutableRawPointer, capacity: Int) -> Bool {
        guard capacity == bufferSize else { return false }
        if count < maxFree {
            slots[count] = storage
            count += 1
        } else {
            storage.deallocate()
        }
        return true
    }
}
