#if canImport(Glibc)
import Glibc
#endif
import DSReactor
import DSSystem
import Logging
import Testing
@testable import DSSystemd

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
            let watchdog = ProgressWatchdog(control: control, timeoutNanoseconds: 400_000_000, notifier: SystemdNotifier(),
                                            logger: Logger(label: "test"))
            control.execute { [watchdog] in
                watchdog.watch(worker)
                watchdog.start()
            }
            let running = sink.collect(forMilliseconds: 500).filter { $0 == "WATCHDOG=1" }.count
            #expect(running >= 2, "expected a ping every 100 ms while both loops run, got \(running) in 500 ms")

            // Block the worker loop for 1.5 s: after the tick already under way, no ping.
            worker.execute { usleep(1_500_000) }
            usleep(150_000)
            sink.drain() // pings sent before the block, still queued
            let blocked = sink.collect(forMilliseconds: 550).filter { $0 == "WATCHDOG=1" }.count
            #expect(blocked == 0, "pinged \(blocked) times while a worker loop was blocked")

            usleep(1_100_000)
            let resumed = sink.collect(forMilliseconds: 500).filter { $0 == "WATCHDOG=1" }.count
            #expect(resumed >= 2, "pings did not resume after the worker loop came back (\(resumed))")
        }

        @Test func noPingWhileTheControlLoopIsBlocked() throws {
            let sink = NotifySink()
            let control = try EventLoop()
            LoopThread.start(name: "test-control") { control.run() }
            defer { control.stop() }
            let watchdog = ProgressWatchdog(control: control, timeoutNanoseconds: 400_000_000, notifier: SystemdNotifier(),
                                            logger: Logger(label: "test"))
            control.execute { [watchdog] in watchdog.start() }
            #expect(sink.collect(forMilliseconds: 350).contains("WATCHDOG=1"))
            control.execute { usleep(1_500_000) }
            usleep(150_000)
            sink.drain() // pings sent before the block, still queued
            let blocked = sink.collect(forMilliseconds: 450).filter { $0 == "WATCHDOG=1" }.count
            #expect(blocked == 0, "pinged \(blocked) times while the control loop was blocked")
        }
    }
}
