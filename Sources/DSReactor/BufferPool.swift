/// A loop's free list of equal-sized buffer storage, shared by its connections: a connection
/// holds storage only while it has bytes to keep (a request in progress, a partial head), and
/// gives it back when it goes idle, so 10,000 idle keep-alive clients hold no buffers at all
/// while busy ones still allocate nothing per request (the storage is recycled). Loop thread only.
///
/// Safety: every pointer in `free` was allocated here with `bufferSize` bytes and is owned by
/// the pool alone until `take` hands it to exactly one `ByteBuffer`, which gives it back (or
/// frees it) and never touches it again.
public final class BufferPool {
    public let bufferSize: Int
    private let maxFree: Int
    private var free: [UnsafeMutableRawPointer] = []

    /// Keeps at most `maxFree` unused buffers; beyond that, returned storage is freed. The
    /// default (4 MiB of 16 KiB buffers per loop) covers the swings of a few hundred busy
    /// connections without allocating; a burst of thousands (slowloris cut by the head timeout)
    /// gives its storage back instead of keeping 16 MiB per loop cached for ever.
    public init(bufferSize: Int = 16 * 1024, maxFree: Int = 256) {
        self.bufferSize = bufferSize
        self.maxFree = maxFree
        free.reserveCapacity(maxFree)
    }

    deinit {
        for storage in free { storage.deallocate() }
    }

    /// Unused buffers held now (for tests and metrics).
    public var freeCount: Int { free.count }

    func take() -> UnsafeMutableRawPointer {
        free.popLast() ?? UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
    }

    func give(_ storage: UnsafeMutableRawPointer) {
        if free.count < maxFree {
            free.append(storage)
        } else {
            storage.deallocate()
        }
    }
}
