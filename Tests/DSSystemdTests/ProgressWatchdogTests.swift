import DSReactor
import DSSystem
import Dispatch
import Logging
import Testing

@testable import DSSystemd

#if canImport(Glibc)
import Glibc
#endif

extension SystemdTests {
    /// The watchdog with real loops on real threads: it pings while they run and stops pinging
    /// while one worker loop is blocked, then resumes.
    @Suite struct ProgressWatchdogTests {
        @Test func pingsOnlyWhileEveryLoopMakesProgress() throws {
            let sink = NotifySink()
            let control = try EventLoop()
            let worker = try EventLoop()
            LoopThread.start(name: "test-control") { control.run() }
            LoopThread.start(name: "test-worker") { worker.run() }
            defer { control.stop(); worker.stop() }
            // WatchdogSec=400ms → a tick every 100 ms.
            let watchdog = ProgressWatchdog(
                control: control, timeout: .milliseconds(400), notifier: SystemdNotifier(),
                logger: Logger(label: "test"))
            control.execute { [watchdog] in
                watchdog.watch(worker)
                watchdog.start()
            }
            #expect(sink.wait(for: 2, of: "WATCHDOG=1") == 2, "expected a ping every 100 ms while both loops run")

            // Block the worker loop until released (waited for, not guessed). Probes posted from
            // then on go unanswered: at most the tick checking a probe posted before the block
            // still pings.
            let release = try #require(block(worker), "the worker loop never ran the blocking task")
            defer { release.signal() }
            let atBlock = try #require(onLoop(control) { watchdog.pings })
            usleep(600_000) // six ticks in which a watchdog blind to the block would ping
            let whileBlocked = try #require(onLoop(control) { watchdog.pings })
            #expect(whileBlocked - atBlock <= 1, "pinged \(whileBlocked - atBlock) times while a worker loop was blocked")

            sink.drain() // pings from before the block, still queued
            release.signal()
            #expect(sink.wait(for: 2, of: "WATCHDOG=1") == 2, "pings did not resume after the worker loop came back")
        }

        @Test func noPingWhileTheControlLoopIsBlocked() throws {
            let sink = NotifySink()
            let control = try EventLoop()
            LoopThread.start(name: "test-control") { control.run() }
            defer { control.stop() }
            let watchdog = ProgressWatchdog(
                control: control, timeout: .milliseconds(400), notifier: SystemdNotifier(),
                logger: Logger(label: "test"))
            control.execute { [watchdog] in watchdog.start() }
            #expect(sink.wait(for: 1, of: "WATCHDOG=1") == 1, "no first ping")
            let release = try #require(block(control), "the control loop never ran the blocking task")
            defer { release.signal() }
            // Pings sent before the block, still queued; from here on the control thread is ours.
            sink.drain()
            let blocked = sink.collect(forMilliseconds: 450).filter { $0 == "WATCHDOG=1" }.count
            #expect(blocked == 0, "pinged \(blocked) times while the control loop was blocked")
        }
    }
}

/// Blocks `loop` with a task that waits for the returned semaphore (30 s at most); returns once
/// the loop runs it, or nil if it did not within 10 s.
private func block(_ loop: EventLoop) -> DispatchSemaphore? {
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    loop.execute {
        entered.signal(); _ = release.wait(timeout: .now() + 30)
    }
    return entered.wait(timeout: .now() + 10) == .success ? release : nil
}

/// Runs `body` on `loop`'s thread and returns its result, or nil if the loop did not get to it
/// within 10 s.
private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) -> T? {
    let result = Locked<T?>(nil)
    let done = DispatchSemaphore(value: 0)
    loop.execute {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }
    guard done.wait(timeout: .now() + 10) == .success else { return nil }
    return result.withLock { $0 }
}
