import DSSystem
import Dispatch
import XCTest

@testable import DSReactor

/// Pooled buffers: storage only while bytes are held, recycled between connections; timers that
/// call an object back instead of a closure; cancelled timers do not pile up in the heap.
final class BufferPoolTests: XCTestCase {
    func testPooledBufferTakesStorageOnFirstWriteAndGivesItBackWhenEmpty() {
        let pool = BufferPool(bufferSize: 256, maxFree: 4)
        let a = ByteBuffer(pool: pool)
        XCTAssertFalse(a.hasStorage, "no storage before the first byte")
        XCTAssertTrue(a.readable.isEmpty)
        a.append([1, 2, 3])
        XCTAssertTrue(a.hasStorage)
        XCTAssertEqual(a.capacity, 256)
        a.releaseStorageIfEmpty()
        XCTAssertTrue(a.hasStorage, "unread bytes keep the storage")
        XCTAssertEqual(Array(a.readable), [1, 2, 3])
        a.consume(3)
        a.releaseStorageIfEmpty()
        XCTAssertFalse(a.hasStorage)
        XCTAssertEqual(pool.freeCount, 1)
        // The next buffer reuses it.
        let b = ByteBuffer(pool: pool)
        b.append([9])
        XCTAssertEqual(pool.freeCount, 0)
        XCTAssertEqual(Array(b.readable), [9])
    }

    func testPooledBufferGrowsPastThePoolSizeAndStillWorks() {
        let pool = BufferPool(bufferSize: 64, maxFree: 4)
        let buffer = ByteBuffer(pool: pool)
        let bytes = (0..<1000).map { UInt8($0 & 0xff) }
        buffer.append(Array(bytes[0..<10]))
        XCTAssertEqual(pool.freeCount, 0)
        buffer.append(Array(bytes[10...]))
        XCTAssertEqual(Array(buffer.readable), bytes)
        XCTAssertEqual(pool.freeCount, 1, "the pooled storage went back when the buffer outgrew it")
        buffer.consume(1000)
        buffer.releaseStorageIfEmpty()
        XCTAssertEqual(pool.freeCount, 1, "grown storage is freed, not pooled")
        XCTAssertFalse(buffer.hasStorage)
    }

    func testPoolKeepsAtMostMaxFree() {
        let pool = BufferPool(bufferSize: 64, maxFree: 2)
        let buffers = (0..<5).map { _ in ByteBuffer(pool: pool) }
        for b in buffers { b.append([1]) }
        for b in buffers { b.consume(1); b.releaseStorageIfEmpty() }
        XCTAssertEqual(pool.freeCount, 2)
    }

    /// A keep-alive connection's requests, one after another: each gives its storage back when it
    /// ends and the next takes the same storage again (the warm one), so a busy worker allocates
    /// nothing per request and its pool does not drift.
    func testBackToBackRequestsReuseTheSameStorage() {
        let pool = BufferPool(bufferSize: 256, maxFree: 4)
        let input = ByteBuffer(pool: pool)
        let output = ByteBuffer(pool: pool)
        input.append(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        let first = input.readable.baseAddress
        output.append(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
        let firstOutput = output.readable.baseAddress
        XCTAssertNotEqual(first, firstOutput, "two buffers never share storage")
        for request in 0..<100 {
            input.consume(input.readableCount)
            output.consume(output.readableCount)
            output.releaseStorageIfEmpty()
            input.releaseStorageIfEmpty()
            XCTAssertFalse(input.hasStorage, "request \(request): waiting with nothing buffered holds no storage")
            XCTAssertFalse(output.hasStorage)
            XCTAssertEqual(pool.freeCount, 2)
            input.append(Array("GET /\(request) HTTP/1.1\r\n\r\n".utf8))
            XCTAssertEqual(input.readable.baseAddress, first, "request \(request): the storage the input gave back last")
            XCTAssertEqual(String(decoding: input.readable, as: UTF8.self), "GET /\(request) HTTP/1.1\r\n\r\n")
            output.append(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
            XCTAssertEqual(output.readable.baseAddress, firstOutput)
            XCTAssertEqual(pool.freeCount, 0)
        }
    }

    /// Storage given back beyond `maxFree` is freed, and taking from an empty pool allocates:
    /// the free list is a fixed array, so both ends of it are exercised.
    func testFreeListFillsToMaxFreeAndEmptiesInLastInFirstOutOrder() {
        let pool = BufferPool(bufferSize: 64, maxFree: 3)
        let buffers = (0..<5).map { _ in ByteBuffer(pool: pool) }
        for (index, buffer) in buffers.enumerated() { buffer.append([UInt8(index)]) }
        let addresses = buffers.map { $0.readable.baseAddress }
        XCTAssertEqual(Set(addresses).count, 5, "five buffers, five storages")
        for buffer in buffers { buffer.consume(1); buffer.releaseStorageIfEmpty() }
        XCTAssertEqual(pool.freeCount, 3, "the last two were freed, not kept")
        // The three kept are handed out again, the most recently given first.
        let again = (0..<4).map { _ in ByteBuffer(pool: pool) }
        for buffer in again { buffer.append([7]) }
        XCTAssertEqual(pool.freeCount, 0)
        XCTAssertEqual(Array(again[0..<3].map { $0.readable.baseAddress }), Array(addresses[0..<3].reversed()))
        XCTAssertFalse(addresses[0..<3].contains(again[3].readable.baseAddress), "the fourth was allocated")
        for buffer in again { XCTAssertEqual(Array(buffer.readable), [7]) }
    }

    func testPoolThatKeepsNothingStillServesBuffers() {
        let pool = BufferPool(bufferSize: 64, maxFree: 0)
        let buffer = ByteBuffer(pool: pool)
        for round in 0..<3 {
            buffer.append([UInt8(round), 1, 2])
            XCTAssertEqual(Array(buffer.readable), [UInt8(round), 1, 2])
            buffer.consume(3)
            buffer.releaseStorageIfEmpty()
            XCTAssertFalse(buffer.hasStorage)
            XCTAssertEqual(pool.freeCount, 0)
        }
    }

    /// A buffer that outlives its connection's last reference to the pool still gives its
    /// storage back safely (the buffer keeps the pool alive).
    func testBufferKeepsItsPoolAlive() {
        var buffer: ByteBuffer? = {
            let pool = BufferPool(bufferSize: 64, maxFree: 2)
            let buffer = ByteBuffer(pool: pool)
            buffer.append([1, 2, 3])
            return buffer
        }()
        buffer?.consume(3)
        buffer?.releaseStorageIfEmpty()
        XCTAssertEqual(buffer?.hasStorage, false)
        buffer?.append([4])
        XCTAssertEqual(buffer.map { Array($0.readable) }, [4])
        buffer = nil
    }

    final class Target: TimerTarget {
        let fired = Locked<[Int]>([])
        func timerFired(_ tag: Int) { fired.withLock { $0.append(tag) } }
    }

    func testTimerTargetIsCalledWithItsTagAndCancelledOnesAreNot() throws {
        let h = try LoopHarness()
        defer { _ = h.stop() }
        let target = Target()
        try h.sync {
            h.loop.schedule(afterNanoseconds: 1_000_000, target: target, tag: 7)
            let cancelled = h.loop.schedule(afterNanoseconds: 1_000_000, target: target, tag: 8)
            h.loop.cancel(cancelled)
            h.loop.schedule(afterNanoseconds: 2_000_000, target: target, tag: 9)
        }
        XCTAssertTrue(waitUntil { target.fired.get.count == 2 })
        usleep(20_000)
        XCTAssertEqual(target.fired.get, [7, 9])
    }

    func testCancelledTimersAreSweptFromTheHeap() throws {
        let h = try LoopHarness()
        defer { _ = h.stop() }
        let target = Target()
        let count = try h.sync { () -> Int in
            // A far deadline armed and cancelled per "request", as the proxy does.
            for _ in 0..<10_000 {
                let id = h.loop.schedule(afterNanoseconds: 60_000_000_000, target: target, tag: 0)
                h.loop.cancel(id)
            }
            return h.loop.timerHeapCount
        }
        XCTAssertLessThanOrEqual(count, 200, "cancelled entries must not accumulate until their deadline")
        // Live timers survive a sweep and still fire in order.
        try h.sync {
            h.loop.schedule(afterNanoseconds: 2_000_000, target: target, tag: 2)
            h.loop.schedule(afterNanoseconds: 1_000_000, target: target, tag: 1)
            for _ in 0..<500 { h.loop.cancel(h.loop.schedule(afterNanoseconds: 60_000_000_000, target: target, tag: 0)) }
        }
        XCTAssertTrue(waitUntil { target.fired.get.count == 2 })
        XCTAssertEqual(target.fired.get, [1, 2])
    }
}
