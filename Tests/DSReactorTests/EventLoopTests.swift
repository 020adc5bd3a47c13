import DSSystem
import DSTestSupport
import Dispatch
import Glibc
import Synchronization
import XCTest

@testable import DSReactor

/// Records every event a registered descriptor gets and drains it (registrations are
/// edge-triggered, so a handler must read until EAGAIN).
final class RecordingHandler: EventHandler, @unchecked Sendable {
    let fd: Int32
    let events = Locked<[IOEvents]>([])
    let received = Locked<[UInt8]>([])
    let sawEOF = Locked(false)

    init(fd: Int32) { self.fd = fd }

    func handle(_ ev: IOEvents) {
        events.withLock { $0.append(ev) }
        guard ev.contains(.readable) || ev.contains(.readHangup) else { return }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                received.withLock { $0 += chunk[0..<n] }
            } else {
                if n == 0 { sawEOF.withLock { $0 = true } }
                return
            }
        }
    }

    var eventCount: Int { events.withLock { $0.count } }
}

final class EventLoopTests: XCTestCase {
    // MARK: thread confinement

    /// `isInLoop` (what `assertInLoop` checks) holds on the thread inside `run` and on no other
    /// while the loop runs; with no thread inside `run` (set-up, tear-down) any thread may.
    func testIsInLoopHoldsOnlyOnTheRunningLoopsThread() throws {
        let h = try LoopHarness()
        let other = try LoopHarness(name: "other-loop")
        defer {
            XCTAssertTrue(h.stop())
            XCTAssertTrue(other.stop())
        }
        let loop = h.loop
        // Once a task has run there, `run` has begun on the harness's thread.
        XCTAssertTrue(
            try h.sync {
                loop.assertInLoop()
                assert(loop.isInLoop)
                return loop.isInLoop
            })
        XCTAssertFalse(loop.isInLoop, "the test thread while the loop runs")
        XCTAssertFalse(try other.sync { loop.isInLoop }, "another loop's thread")
        XCTAssertTrue(try other.sync { other.loop.isInLoop })
        XCTAssertTrue(h.stop())
        XCTAssertTrue(loop.isInLoop, "after run returned")

        let idle = try EventLoop()
        XCTAssertTrue(idle.isInLoop, "before run: the thread setting the loop up")
        XCTAssertTrue(try other.sync { idle.isInLoop })
    }

    // MARK: cross-thread

    func testExecuteFromAnotherThreadWakesBlockedLoop() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        usleep(100_000) // no timers, no descriptors: the loop is asleep in epoll_wait(-1)
        let ran = DispatchSemaphore(value: 0)
        h.loop.execute { ran.signal() }
        XCTAssertEqual(ran.wait(timeout: .now() + 5), .success, "execute did not wake the loop")
    }

    /// Repeated posts with random pauses: a wake-up is never lost, tasks run on the loop thread.
    func testExecuteNeverLosesAWakeUp() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let loopThread = try h.sync { pthread_self() }
        XCTAssertEqual(pthread_equal(loopThread, pthread_self()), 0)
        var rng = SeededRandom(seed: 11)
        let wrongThread = Locked(0)
        for _ in 0..<200 {
            let ran = DispatchSemaphore(value: 0)
            h.loop.execute {
                if pthread_equal(pthread_self(), loopThread) == 0 { wrongThread.withLock { $0 += 1 } }
                ran.signal()
            }
            XCTAssertEqual(ran.wait(timeout: .now() + 5), .success)
            usleep(UInt32.random(in: 0...1500, using: &rng))
        }
        XCTAssertEqual(wrongThread.get, 0)
    }

    /// Several threads post concurrently: every task runs once, each poster's tasks in order.
    func testExecuteFromManyThreadsKeepsPerThreadOrder() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let log = Locked<[(Int, Int)]>([])
        let posters = 4, perPoster = 500
        let allPosted = DispatchSemaphore(value: 0)
        for p in 0..<posters {
            let loop = h.loop
            LoopThread.start(name: "poster-\(p)") {
                for k in 0..<perPoster { loop.execute { log.withLock { $0.append((p, k)) } } }
                allPosted.signal()
            }
        }
        for _ in 0..<posters { XCTAssertEqual(allPosted.wait(timeout: .now() + 10), .success) }
        XCTAssertTrue(waitUntil(10) { log.withLock { $0.count } == posters * perPoster })
        let entries = log.get
        XCTAssertEqual(entries.count, posters * perPoster)
        for p in 0..<posters {
            XCTAssertEqual(entries.filter { $0.0 == p }.map(\.1), Array(0..<perPoster), "poster \(p)")
        }
    }

    func testStopFromAnotherThreadEndsRun() throws {
        let loop = try EventLoop()
        let exited = DispatchSemaphore(value: 0)
        LoopThread.start(name: "stop-test") {
            loop.run()
            exited.signal()
        }
        usleep(50_000)
        loop.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 5), .success, "run() did not return after stop()")
    }

    /// Tasks posted before stop() still run before run() returns; the loop can run again.
    func testStopRunsPendingTasksAndLoopRestarts() throws {
        let loop = try EventLoop()
        let ran = Locked<[Int]>([])
        let exited = DispatchSemaphore(value: 0)
        LoopThread.start(name: "restart-1") {
            loop.run(); exited.signal()
        }
        usleep(20_000)
        for k in 0..<10 { loop.execute { ran.withLock { $0.append(k) } } }
        loop.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(ran.get, Array(0..<10))

        LoopThread.start(name: "restart-2") {
            loop.run(); exited.signal()
        }
        let again = DispatchSemaphore(value: 0)
        loop.execute { again.signal() }
        XCTAssertEqual(again.wait(timeout: .now() + 5), .success, "a stopped loop must run again")
        loop.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 5), .success)
    }

    func testStopFromInsideTheLoop() throws {
        let loop = try EventLoop()
        let exited = DispatchSemaphore(value: 0)
        LoopThread.start(name: "self-stop") {
            loop.run(); exited.signal()
        }
        loop.execute { loop.stop() }
        XCTAssertEqual(exited.wait(timeout: .now() + 5), .success)
    }

    /// wakeUp() makes an idle loop run one more iteration, iteration hooks included.
    func testWakeUpRunsIterationHooks() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let iterations = Locked(0)
        try h.sync { h.loop.onEachIteration { iterations.withLock { $0 += 1 } } }
        let before = iterations.get
        usleep(50_000) // a window in which a spinning loop would iterate thousands of times
        // At most two: the hook after the task that added it (which a starved loop thread may
        // run only now), and one more if the task's wake-up landed after it ran.
        let idle = iterations.get
        XCTAssertLessThanOrEqual(idle - before, 2, "an idle loop must not spin")
        h.loop.wakeUp()
        XCTAssertTrue(waitUntil { iterations.get > idle }, "wakeUp did not run an iteration")
    }

    // MARK: descriptors

    /// What another thread stored before sending the bytes of an event is what the poll hooks
    /// hand that event's handler (the worker's snapshot refresh relies on it): a hook run after
    /// the events would still hold the value from before, as the loop was idle when it changed.
    func testPollHooksRunBeforeTheEventsOfTheSameWait() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let (mine, peer) = try socketPair()
        defer { Socket.close(mine); Socket.close(peer) }
        let published = Atomic<Int>(0)
        let seenByHandler = Locked<[Int]>([])
        final class Follower: EventHandler, @unchecked Sendable {
            let fd: Int32
            var seen = 0
            let record: (Int) -> Void
            init(fd: Int32, record: @escaping (Int) -> Void) {
                self.fd = fd
                self.record = record
            }
            func handle(_ ev: IOEvents) {
                guard ev.contains(.readable) else { return }
                var byte: UInt8 = 0
                while Glibc.read(fd, &byte, 1) == 1 { record(seen) }
            }
        }
        let follower = Follower(fd: mine) { value in seenByHandler.withLock { $0.append(value) } }
        try h.sync {
            try h.loop.register(mine, handler: follower)
            h.loop.onEachPoll { follower.seen = published.load(ordering: .acquiring) }
        }
        try h.sync {} // the registration's writable edge and its iteration are behind us
        for round in 1...20 {
            published.store(round, ordering: .releasing)
            writeAll(peer, [UInt8(round)])
            XCTAssertTrue(waitUntil { seenByHandler.get.count == round }, "round \(round): no readable event")
        }
        XCTAssertEqual(seenByHandler.get, Array(1...20), "a handler saw a value older than its event")
    }

    /// A value stored by an event's handler, which then wakes the loop as a publisher does, is
    /// seen by the iteration hooks of that same wait. The wake token already in the batch
    /// (after the handler's event) drains the handler's wake-up with it, since one read empties
    /// the eventfd: the next wait would sleep, so only a hook after the events sees the value
    /// before the next event or timer (the worker's second snapshot refresh relies on it).
    func testIterationHooksSeeWhatTheEventsOfTheSameWaitStored() throws {
        let loop = try EventLoop()
        let (mine, peer) = try socketPair()
        defer { Socket.close(mine); Socket.close(peer) }
        final class Publisher: EventHandler, @unchecked Sendable {
            let fd: Int32
            unowned let loop: EventLoop
            let published = Atomic<Int>(0)
            init(fd: Int32, loop: EventLoop) {
                self.fd = fd
                self.loop = loop
            }
            func handle(_ ev: IOEvents) {
                guard ev.contains(.readable) else { return }
                var byte: UInt8 = 0
                while Glibc.read(fd, &byte, 1) == 1 {}
                published.store(1, ordering: .releasing)
                loop.wakeUp()
            }
        }
        let publisher = Publisher(fd: mine, loop: loop)
        var iterations = 0
        var seen = 0
        var seenAtTheEndOfTheFirstWait: Int?
        // Set up on this thread before `run`, so that the first wait returns the socket's event
        // and, after it, the wake token: the socket is readable and the eventfd signalled before
        // the loop waits, in that order.
        try loop.register(mine, handler: publisher)
        writeAll(peer, [1])
        loop.wakeUp()
        loop.onEachPoll {
            iterations += 1
            seen = publisher.published.load(ordering: .acquiring)
        }
        loop.onEachIteration { [unowned loop] in
            seen = publisher.published.load(ordering: .acquiring)
            if iterations == 1 { seenAtTheEndOfTheFirstWait = seen }
            loop.stop()
        }
        // Without iteration hooks nothing would stop the loop: end it after a generous wait.
        let finished = DispatchSemaphore(value: 0)
        let watchdog = DispatchSemaphore(value: 0)
        LoopThread.start(name: "test-watchdog") {
            if finished.wait(timeout: .now() + 10) == .timedOut { loop.stop() }
            watchdog.signal()
        }
        loop.run()
        finished.signal()
        XCTAssertEqual(watchdog.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(seenAtTheEndOfTheFirstWait, 1, "the iteration hooks missed what the events stored")
    }

    func testRegisteredSocketGetsReadableEventsAndUnregisterStopsThem() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let (mine, peer) = try socketPair()
        defer { Socket.close(mine); Socket.close(peer) }
        let handler = RecordingHandler(fd: mine)
        try h.sync { try h.loop.register(mine, handler: handler) }
        // A fresh stream socket is writable: registration reports that edge.
        XCTAssertTrue(waitUntil { handler.events.withLock { $0.contains { $0.contains(.writable) } } })

        writeAll(peer, Array("ping".utf8))
        XCTAssertTrue(waitUntil { handler.received.get == Array("ping".utf8) }, "no readable event")
        XCTAssertTrue(handler.events.withLock { $0.contains { $0.contains(.readable) } })

        writeAll(peer, Array("pong".utf8))
        XCTAssertTrue(waitUntil { handler.received.get == Array("pingpong".utf8) }, "second edge missed")

        try h.sync { h.loop.unregister(mine) }
        let count = handler.eventCount
        writeAll(peer, Array("ignored".utf8))
        usleep(100_000)
        try h.sync {} // one more loop iteration after the write
        XCTAssertEqual(handler.eventCount, count, "events after unregister")
        XCTAssertEqual(handler.received.get, Array("pingpong".utf8))
        try h.sync { h.loop.unregister(mine) } // twice is harmless
    }

    func testPeerCloseReportsReadHangup() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let (mine, peer) = try socketPair()
        defer { Socket.close(mine) }
        let handler = RecordingHandler(fd: mine)
        try h.sync { try h.loop.register(mine, handler: handler) }
        writeAll(peer, Array("last words".utf8))
        Socket.close(peer)
        XCTAssertTrue(waitUntil { handler.sawEOF.get }, "EOF not seen")
        // The handler can read the 0 of EOF while draining the data edge, before epoll delivers
        // the hang-up edge the close raised: wait for that edge instead of expecting it already.
        XCTAssertTrue(
            waitUntil { handler.events.withLock { $0.contains { $0.contains(.readHangup) } } },
            "EPOLLRDHUP not reported")
        XCTAssertEqual(handler.received.get, Array("last words".utf8))
        try h.sync { h.loop.unregister(mine) }
    }

    /// Unregister then register the same fd with a new handler: only the new one hears of it.
    func testReRegistrationGoesToTheNewHandler() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let (mine, peer) = try socketPair()
        defer { Socket.close(mine); Socket.close(peer) }
        let old = RecordingHandler(fd: mine)
        let new = RecordingHandler(fd: mine)
        try h.sync { try h.loop.register(mine, handler: old) }
        XCTAssertTrue(waitUntil { old.eventCount > 0 })
        try h.sync {
            h.loop.unregister(mine)
            try h.loop.register(mine, handler: new)
        }
        let oldCount = old.eventCount
        writeAll(peer, Array("x".utf8))
        XCTAssertTrue(waitUntil { new.received.get == Array("x".utf8) })
        XCTAssertEqual(old.eventCount, oldCount)
        try h.sync { h.loop.unregister(mine) }
    }

    /// epoll refuses regular files (EPERM): register throws SyscallError and leaves no registration.
    func testRegisterFailureThrows() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let fd = try openRegularFile()
        defer { Socket.close(fd) }
        let handler = RecordingHandler(fd: fd)
        let error = try h.sync { () -> SyscallError? in
            do {
                try h.loop.register(fd, handler: handler)
                return nil
            } catch let e as SyscallError {
                return e
            }
        }
        XCTAssertEqual(error?.errno, EPERM)
        XCTAssertEqual(handler.eventCount, 0)
    }

    func testManySocketsEachGetTheirOwnEvents() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        var pairs: [(Int32, Int32, RecordingHandler)] = []
        for _ in 0..<20 {
            let (a, b) = try socketPair()
            pairs.append((a, b, RecordingHandler(fd: a)))
        }
        defer { for (a, b, _) in pairs { Socket.close(a); Socket.close(b) } }
        let snapshot = UncheckedBox(pairs)
        try h.sync { for (a, _, handler) in snapshot.value { try h.loop.register(a, handler: handler) } }
        for (k, (_, b, _)) in pairs.enumerated() { writeAll(b, Array("fd\(k)".utf8)) }
        for (k, (_, _, handler)) in pairs.enumerated() {
            XCTAssertTrue(waitUntil { handler.received.get == Array("fd\(k)".utf8) }, "pair \(k)")
        }
        try h.sync { for (a, _, _) in snapshot.value { h.loop.unregister(a) } }
    }
}
