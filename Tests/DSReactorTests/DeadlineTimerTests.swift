import DSSystem
import Dispatch
import Glibc
import XCTest

@testable import DSReactor

/// DeadlineTimer: a deadline that is set and cleared per request, with at most one loop timer
/// behind it that is moved lazily. Lower time bounds are exact (never early); upper ones generous.
final class DeadlineTimerTests: XCTestCase {
    /// An owner as the proxy's exchange is one: it acts only when `fired` says the deadline passed.
    final class Owner: TimerTarget {
        let loop: EventLoop
        var deadline = DeadlineTimer()
        /// Calls of `timerFired` (loop timers that went off) and times the deadline was reported passed.
        let firings = Locked<Int>(0)
        let expiries = Locked<[UInt64]>([])

        init(loop: EventLoop) { self.loop = loop }

        func timerFired(_ tag: Int) {
            firings.withLock { $0 += 1 }
            if deadline.fired(on: loop, target: self) {
                let now = monotonicNanos()
                expiries.withLock { $0.append(now) }
            }
        }
    }

    private static let ms: UInt64 = 1_000_000

    func testDeadlineIsReportedOnceAndNotEarly() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let owner = Owner(loop: h.loop)
        let start = try h.sync { () -> UInt64 in
            let start = monotonicNanos()
            owner.deadline.set(within: 20 * Self.ms, on: h.loop, target: owner)
            return start
        }
        XCTAssertTrue(waitUntil { owner.expiries.get.count == 1 })
        usleep(30_000)
        XCTAssertEqual(owner.expiries.get.count, 1)
        XCTAssertGreaterThanOrEqual(owner.expiries.get[0], start + 20 * Self.ms, "deadline reported early")
        try h.sync {
            XCTAssertEqual(owner.deadline.deadline, 0)
            XCTAssertFalse(owner.deadline.isArmed)
        }
    }

    /// A deadline set later while the timer is armed schedules nothing: the armed timer fires
    /// at the old time, finds the deadline ahead and re-arms for it.
    func testDeadlineMovedLaterReArmsInsteadOfFiring() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let owner = Owner(loop: h.loop)
        // Both in one loop task, so the first timer is surely still armed when the deadline
        // moves (a test thread paused between two tasks could let it go off first). The later
        // deadline is far enough ahead that even a loop thread starved for most of a second
        // runs the early firing before it.
        let (heapAfterFirst, moved, heapAfterMove) = try h.sync { () -> (Int, UInt64, Int) in
            owner.deadline.set(within: 20 * Self.ms, on: h.loop, target: owner)
            let heapAfterFirst = h.loop.timerHeapCount
            let before = monotonicNanos()
            owner.deadline.set(within: 1_000 * Self.ms, on: h.loop, target: owner)
            return (heapAfterFirst, before, h.loop.timerHeapCount)
        }
        XCTAssertEqual(heapAfterMove, heapAfterFirst, "moving a deadline later must not schedule a timer")
        XCTAssertTrue(waitUntil { owner.expiries.get.count == 1 })
        XCTAssertGreaterThanOrEqual(owner.expiries.get[0], moved + 1_000 * Self.ms, "reported at the old deadline")
        XCTAssertEqual(owner.firings.get, 2, "one early firing that re-armed, one at the deadline")
    }

    func testClearedDeadlineIsNotReported() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let owner = Owner(loop: h.loop)
        try h.sync {
            owner.deadline.set(within: 10 * Self.ms, on: h.loop, target: owner)
            owner.deadline.clear()
        }
        XCTAssertTrue(waitUntil { owner.firings.get == 1 }, "the armed timer still goes off")
        usleep(30_000)
        XCTAssertEqual(owner.expiries.get, [])
        XCTAssertEqual(owner.firings.get, 1, "and is not armed again for a cleared deadline")
        try h.sync { XCTAssertFalse(owner.deadline.isArmed) }
    }

    /// An earlier deadline than the armed timer's moves the timer (a connect deadline after a
    /// response deadline, say).
    func testEarlierDeadlineMovesTheTimer() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let owner = Owner(loop: h.loop)
        let start = try h.sync { () -> UInt64 in
            owner.deadline.set(within: 60_000 * Self.ms, on: h.loop, target: owner)
            let start = monotonicNanos()
            owner.deadline.set(within: 10 * Self.ms, on: h.loop, target: owner)
            return start
        }
        XCTAssertTrue(waitUntil { owner.expiries.get.count == 1 })
        XCTAssertGreaterThanOrEqual(owner.expiries.get[0], start + 10 * Self.ms)
        XCTAssertEqual(owner.firings.get, 1, "the far timer was cancelled, not left to fire")
    }

    func testCancelLetsTheLoopReleaseTheOwner() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        weak var weakOwner: Owner?
        try h.sync {
            let owner = Owner(loop: h.loop)
            weakOwner = owner
            owner.deadline.set(within: 60_000 * Self.ms, on: h.loop, target: owner)
            owner.deadline.cancel(on: h.loop)
            XCTAssertFalse(owner.deadline.isArmed)
        }
        try h.sync { XCTAssertNil(weakOwner, "a cancelled timer must not keep its target alive") }
    }

    /// Per request a deadline is set and cleared: with many owners and many requests each, the
    /// loop's heap holds about one timer per owner, not one per request.
    func testManyRequestsKeepTheHeapBounded() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let owners = (0..<50).map { _ in Owner(loop: h.loop) }
        let (before, after) = try h.sync { () -> (Int, Int) in
            let before = h.loop.timerHeapCount
            for _ in 0..<2_000 {
                for owner in owners {
                    owner.deadline.set(within: 2_000 * Self.ms, on: h.loop, target: owner) // connect
                    owner.deadline.set(within: 30_000 * Self.ms, on: h.loop, target: owner) // response
                    owner.deadline.clear() // head arrived
                }
            }
            return (before, h.loop.timerHeapCount)
        }
        XCTAssertLessThanOrEqual(after - before, 2 * owners.count, "heap grew with requests: \(before) → \(after)")
        try h.sync { for owner in owners { owner.deadline.cancel(on: h.loop) } }
        XCTAssertEqual(owners.map { $0.firings.get }.reduce(0, +), 0)
    }
}
