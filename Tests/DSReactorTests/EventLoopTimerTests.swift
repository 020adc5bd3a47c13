import DSSystem
import DSTestSupport
import Dispatch
import Glibc
import XCTest

@testable import DSReactor

/// Timers: deadline order, never early, cancel. Lower bounds are exact (a timer must not fire
/// before its delay); upper bounds are generous (the machine may be loaded).
final class EventLoopTimerTests: XCTestCase {
    struct Firing {
        let label: Int
        let delay: UInt64
        let before: UInt64 // monotonic time just before schedule()
        let after: UInt64 // just after: the real deadline is in [before, after] + delay
        let fired: UInt64
    }

    /// Schedules `delays` (nanoseconds) in one loop task and waits for all of them.
    private func fire(_ delays: [UInt64], on h: LoopHarness) throws -> [Firing] {
        let firings = Locked<[Firing]>([])
        let done = DispatchSemaphore(value: 0)
        try h.sync {
            for (label, delay) in delays.enumerated() {
                let before = monotonicNanos()
                let slot = Locked<(UInt64, UInt64)>((before, 0))
                h.loop.schedule(afterNanoseconds: delay) {
                    let now = monotonicNanos()
                    let (b, a) = slot.get
                    firings.withLock { $0.append(Firing(label: label, delay: delay, before: b, after: a, fired: now)) }
                    done.signal()
                }
                let after = monotonicNanos()
                slot.withLock { $0.1 = after }
            }
        }
        for _ in delays {
            guard done.wait(timeout: .now() + 10) == .success else { throw TimedOut(what: "timers") }
        }
        return firings.get
    }

    private func checkOrderAndBounds(_ firings: [Firing], file: StaticString = #filePath, line: UInt = #line) {
        for f in firings {
            XCTAssertGreaterThanOrEqual(f.fired, f.before + f.delay, "timer \(f.label) fired early", file: file, line: line)
            XCTAssertLessThan(f.fired, f.after + f.delay + 3_000_000_000, "timer \(f.label) very late", file: file, line: line)
        }
        // Deadline order: if i fired before j, i's earliest possible deadline is not after j's latest.
        for (i, a) in firings.enumerated() {
            for b in firings[(i + 1)...] {
                XCTAssertLessThanOrEqual(
                    a.before + a.delay, b.after + b.delay,
                    "timer \(a.label) (\(a.delay) ns) fired before \(b.label) (\(b.delay) ns)",
                    file: file, line: line)
            }
        }
    }

    func testTimersFireInDeadlineOrderAndNotEarly() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let ms: UInt64 = 1_000_000
        let delays: [UInt64] = [60, 10, 40, 0, 25, 80, 10, 1, 50].map { $0 * ms }
        let firings = try fire(delays, on: h)
        XCTAssertEqual(firings.count, delays.count)
        XCTAssertEqual(Set(firings.map(\.label)), Set(delays.indices))
        checkOrderAndBounds(firings)
        // With these gaps the order is by delay; equal delays keep scheduling order.
        let expected = delays.indices.sorted { (delays[$0], $0) < (delays[$1], $1) }
        XCTAssertEqual(firings.map(\.label), expected)
    }

    /// Property: many random timers, all fire, none early, in deadline order.
    func testManyRandomTimers() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        var rng = SeededRandom(seed: 2024)
        let delays = (0..<300).map { _ in UInt64.random(in: 0...40_000_000, using: &rng) }
        let firings = try fire(delays, on: h)
        XCTAssertEqual(firings.count, delays.count)
        checkOrderAndBounds(firings)
    }

    func testCancel() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let ms: UInt64 = 1_000_000
        let fired = Locked<[String]>([])
        let done = DispatchSemaphore(value: 0)
        try h.sync {
            let a = h.loop.schedule(afterNanoseconds: 30 * ms) { fired.withLock { $0.append("a") } }
            h.loop.cancel(a) // cancelled at once
            let d = h.loop.schedule(afterNanoseconds: 40 * ms) { fired.withLock { $0.append("d") } }
            h.loop.schedule(afterNanoseconds: 10 * ms) { // cancels d from inside a callback
                fired.withLock { $0.append("c") }
                h.loop.cancel(d)
            }
            h.loop.schedule(afterNanoseconds: 60 * ms) { fired.withLock { $0.append("b") } }
            h.loop.schedule(afterNanoseconds: 100 * ms) {
                fired.withLock { $0.append("e") }
                done.signal()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(fired.get, ["c", "b", "e"])
    }

    /// Cancelling the only timer leaves the wait without a timeout; a later timer still fires,
    /// and cancelling a timer that already fired is harmless.
    func testCancelOnlyTimerThenScheduleAnother() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let fired = Locked<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let first = try h.sync { h.loop.schedule(afterNanoseconds: 20_000_000) { fired.withLock { $0.append("cancelled") } } }
        try h.sync { h.loop.cancel(first) }
        usleep(50_000)
        let second = try h.sync {
            h.loop.schedule(afterNanoseconds: 5_000_000) {
                fired.withLock { $0.append("second") }
                done.signal()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        try h.sync {
            h.loop.cancel(second); h.loop.cancel(first)
        }
        XCTAssertEqual(fired.get, ["second"])
        XCTAssertNotEqual(first, second)
    }

    func testTimerScheduledFromTimerCallback() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let done = DispatchSemaphore(value: 0)
        let times = Locked<[UInt64]>([])
        try h.sync {
            times.withLock { $0.append(monotonicNanos()) }
            h.loop.schedule(afterNanoseconds: 5_000_000) {
                times.withLock { $0.append(monotonicNanos()) }
                h.loop.schedule(afterNanoseconds: 15_000_000) {
                    times.withLock { $0.append(monotonicNanos()) }
                    done.signal()
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let t = times.get
        XCTAssertEqual(t.count, 3)
        XCTAssertGreaterThanOrEqual(t[1] - t[0], 5_000_000)
        XCTAssertGreaterThanOrEqual(t[2] - t[1], 15_000_000)
    }

    /// The wait's own timeout replaces a timerfd: delays that are not whole milliseconds, which
    /// epoll_pwait2 waits for to the nanosecond, never fire early; nor with the epoll_wait
    /// fallback (kernels before 5.11), whose millisecond timeout is rounded up.
    func testSubMillisecondDelaysNeverFireEarly() throws {
        for pwait2 in [true, false] {
            EventLoop.useEpollPwait2(pwait2)
            defer { EventLoop.useEpollPwait2(true) }
            let h = try LoopHarness()
            defer { XCTAssertTrue(h.stop()) }
            let delays: [UInt64] = [300_000, 1_500_000, 50_000, 2_700_000, 999_999, 1_000_001, 4_200_000, 10_000]
            let firings = try fire(delays, on: h)
            XCTAssertEqual(firings.count, delays.count, "pwait2: \(pwait2)")
            checkOrderAndBounds(firings)
        }
    }

    /// A cancelled timer's slot is reused by the next timer; cancelling the old id again (or a
    /// fired timer's id) must not cancel the new one.
    func testStaleTimerIDDoesNotCancelTheTimerReusingItsSlot() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let fired = Locked<[String]>([])
        let done = DispatchSemaphore(value: 0)
        let early = try h.sync { h.loop.schedule(afterNanoseconds: 1_000_000) { fired.withLock { $0.append("early") } } }
        XCTAssertTrue(waitUntil { fired.get == ["early"] })
        try h.sync {
            let a = h.loop.schedule(afterNanoseconds: 5_000_000) { fired.withLock { $0.append("a") } }
            h.loop.cancel(a)
            h.loop.schedule(afterNanoseconds: 10_000_000) {
                fired.withLock { $0.append("b") }
                done.signal()
            }
            h.loop.cancel(a)
            h.loop.cancel(early)
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(fired.get, ["early", "b"])
    }

    /// A timer wakes a loop that has nothing else to do (it sleeps in the wait until the deadline).
    func testTimerWakesIdleLoop() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let done = DispatchSemaphore(value: 0)
        let start = monotonicNanos()
        try h.sync { h.loop.schedule(afterNanoseconds: 200_000_000) { done.signal() } }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertGreaterThanOrEqual(monotonicNanos() - start, 200_000_000)
    }
}

/// The timer heap on its own.
final class BinaryHeapTests: XCTestCase {
    func testEmpty() {
        var heap = BinaryHeap<Int>(areInOrder: <)
        XCTAssertNil(heap.peek)
        XCTAssertNil(heap.pop())
        XCTAssertEqual(heap.count, 0)
    }

    /// Property: against a sorted array model, with interleaved pushes and pops and duplicates.
    func testMatchesSortedModel() {
        var rng = SeededRandom(seed: 99)
        for round in 0..<50 {
            var heap = BinaryHeap<Int>(areInOrder: <)
            var model: [Int] = []
            for _ in 0..<Int.random(in: 1...400, using: &rng) {
                if model.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                    let v = Int.random(in: 0...50, using: &rng)
                    heap.push(v)
                    model.append(v)
                } else {
                    model.sort()
                    XCTAssertEqual(heap.pop(), model.removeFirst(), "round \(round)")
                }
                XCTAssertEqual(heap.count, model.count)
                XCTAssertEqual(heap.peek, model.min())
            }
            model.sort()
            var drained: [Int] = []
            while let v = heap.pop() { drained.append(v) }
            XCTAssertEqual(drained, model, "round \(round)")
        }
    }

    /// The loop's ordering: deadline, then id, so equal deadlines fire in scheduling order.
    func testTieBreakOrder() {
        struct Entry: Equatable { let deadline: UInt64; let id: UInt64 }
        var heap = BinaryHeap<Entry>(areInOrder: { $0.deadline < $1.deadline || ($0.deadline == $1.deadline && $0.id < $1.id) })
        var rng = SeededRandom(seed: 5)
        var entries: [Entry] = []
        for id in 0..<500 { entries.append(Entry(deadline: UInt64.random(in: 0...20, using: &rng), id: UInt64(id))) }
        for e in entries.shuffled(using: &rng) { heap.push(e) }
        var out: [Entry] = []
        while let e = heap.pop() { out.append(e) }
        XCTAssertEqual(out, entries.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) })
    }
}
