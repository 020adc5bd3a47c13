import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer with read and write indexes, owned by one connection and reused for
/// every request on it, so steady-state traffic allocates nothing.
///
/// With a `BufferPool`, storage is taken from the pool at the first write and can be given back
/// with `releaseStorageIfEmpty()` (an idle connection then holds no buffer).
///
/// Safety: `storage` is allocated and freed (or taken from and given back to `pool`) only here;
/// every pointer handed out covers `[readerIndex, writerIndex)` or `[writerIndex, capacity)`, and
/// callers use it only until their next mutating call (the loop thread owns the buffer, so
/// nothing else mutates it). `poolRef` is used without a retain: it is the object `pool` holds
/// strongly for the buffer's whole life, including its deinit.
///
/// Usable from inline, with inlinable index accessors and `consume`: the proxy calls them several
/// times per request from another module, and a package class's inlinable members reach other
/// modules only when the class itself is usable from inline. `read` and `write` are usable from
/// inline so that callers inline their default arguments instead of calling for them.
@usableFromInline package final class ByteBuffer {
    /// Usable from inline for `readable` only; set only by this file.
    @usableFromInline var storage: UnsafeMutableRawPointer?
    package private(set) var capacity: Int
    @usableFromInline package internal(set) var readerIndex = 0
    @usableFromInline package internal(set) var writerIndex = 0
    /// Keeps the pool alive as long as this buffer.
    private let pool: BufferPool?
    /// The same pool, used for taking and giving: uncounted, because `pool` keeps it alive (a
    /// counted reference cost a retain and a release on every take and give, per request).
    private let poolRef: Unmanaged<BufferPool>?

    package init(capacity: Int = 16 * 1024) {
        self.capacity = max(capacity, 64)
        pool = nil
        poolRef = nil
        storage = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    /// A buffer whose storage comes from `pool` when first needed.
    package init(pool: BufferPool) {
        self.pool = pool
        poolRef = Unmanaged.passUnretained(pool)
        capacity = 0
    }

    deinit { releaseStorage() }

    /// Whether the buffer holds storage now (false for a pooled buffer that was released).
    package var hasStorage: Bool { storage != nil }

    /// Gives pooled storage back to the pool if no unread byte is left (a buffer without a pool
    /// keeps its storage: freeing it would only mean allocating it again for the next request).
    package func releaseStorageIfEmpty() {
        guard storage != nil, poolRef != nil, isEmpty else { return }
        readerIndex = 0
        writerIndex = 0
        releaseStorage()
    }

    private func releaseStorage() {
        guard let storage else { return }
        giveBack(storage)
        self.storage = nil
        capacity = 0
    }

    /// Pooled-size storage goes back to the pool, anything else (grown, or no pool) is freed.
    @inline(__always)
    private func giveBack(_ storage: UnsafeMutableRawPointer) {
        if let poolRef, poolRef._withUnsafeGuaranteedRef({ $0.give(storage, capacity: capacity) }) { return }
        storage.deallocate()
    }

    // Never written nor freed: only ever the base of zero-length views.
    nonisolated(unsafe) private static let emptyByte = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16)

    /// The base of the storage, or of a never-written dummy when there is none (so an empty
    /// buffer still hands out a valid, zero-length pointer).
    @inline(__always)
    private var base: UnsafeMutableRawPointer { storage ?? Self.emptyByte }

    @inlinable package var readableCount: Int { writerIndex - readerIndex }
    @inlinable package var isEmpty: Bool { readerIndex == writerIndex }

    /// The unread bytes. Valid until the next mutation. Inlinable: the proxy asks for them
    /// several times per request from another module.
    @inlinable package var readable: UnsafeRawBufferPointer {
        guard let storage else { return readableWithoutStorage }
        return UnsafeRawBufferPointer(start: storage + readerIndex, count: writerIndex - readerIndex)
    }

    /// `readable` of a buffer that holds no storage: zero bytes at the never-written dummy.
    @usableFromInline var readableWithoutStorage: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + readerIndex, count: writerIndex - readerIndex)
    }

    /// Marks `count` bytes as read; an emptied buffer rewinds so the next read starts at 0.
    @inlinable package func consume(_ count: Int) {
        precondition(count <= readableCount)
        readerIndex += count
        if readerIndex == writerIndex { readerIndex = 0; writerIndex = 0 }
    }

    package func clear() { readerIndex = 0; writerIndex = 0 }

    /// Free space after the data, growing (or compacting) so at least `minimum` bytes fit.
    package func reserve(_ minimum: Int) -> UnsafeMutableRawBufferPointer {
        if storage == nil {
            if let poolRef, let taken = poolRef._withUnsafeGuaranteedRef({ $0.take(minimum) }) {
                storage = taken.storage
                capacity = taken.capacity
            } else {
                capacity = max(minimum, 64)
                storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            }
        }
        let storage = storage!
        if capacity - writerIndex < minimum {
            if readerIndex > 0 {
                let live = readableCount
                memmove(storage, storage + readerIndex, live)
                readerIndex = 0
                writerIndex = live
            }
            if capacity - writerIndex < minimum {
                var newCapacity = capacity
                while newCapacity - writerIndex < minimum { newCapacity *= 2 }
                let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
                newStorage.copyMemory(from: storage, byteCount: writerIndex)
                giveBack(storage)
                self.storage = newStorage
                capacity = newCapacity
            }
        }
        return UnsafeMutableRawBufferPointer(start: self.storage! + writerIndex, count: capacity - writerIndex)
    }

    package func commit(_ count: Int) {
        precondition(writerIndex + count <= capacity)
        writerIndex += count
    }

    package func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let space = reserve(bytes.count)
        space.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        commit(bytes.count)
    }

    /// Drops bytes from the end so that `count` readable bytes remain (bytes appended and not
    /// yet written out, taken back).
    package func truncate(toReadable count: Int) {
        precondition(count >= 0 && count <= readableCount)
        writerIndex = readerIndex + count
    }

    package func append(_ string: String) {
        var s = string
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    package func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Whether the last `read(from:)` returned fewer bytes than it had room for. On a stream
    /// socket that means the receive queue was emptied: with edge-triggered epoll the next byte
    /// raises a new event, so the caller can wait for it instead of paying a read that would
    /// only say EAGAIN (HAProxy's "cannot receive more" after a short read does the same).
    package private(set) var lastReadWasShort = false

    /// Reads from `fd` into free space (at least `chunk` bytes of it). `.done(0)` is EOF.
    @usableFromInline package func read(from fd: Int32, chunk: Int = 16 * 1024) throws -> IOResult<Int> {
        let space = reserve(chunk)
        let result = try Socket.read(fd, into: space)
        if case .done(let n) = result {
            writerIndex += n
            lastReadWasShort = n < space.count
        }
        return result
    }

    /// Writes unread bytes to `fd`, consuming what was sent.
    @usableFromInline package func write(to fd: Int32, limit: Int = .max) throws -> IOResult<Int> {
        let bytes = UnsafeRawBufferPointer(start: base + readerIndex, count: min(readableCount, limit))
        let result = try Socket.write(fd, bytes)
        if case .done(let n) = result { consume(n) }
        return result
    }
}
