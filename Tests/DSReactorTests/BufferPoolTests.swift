import Dispatch
@testable import DSReactor
import DSSystem
import XCTest

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
