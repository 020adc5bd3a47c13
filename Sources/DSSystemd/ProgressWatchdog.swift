import DSReactor
import DSSystem
import Logging

/// Sends `WATCHDOG=1` only while every loop makes progress: a stuck worker or a stuck
/// control loop (the supervisor's thread) must get ds-lb restarted by systemd, not kept alive by
/// a timer thread that still runs.
///
/// Each tick runs on the control loop, so a blocked control loop sends nothing. The tick also
/// posts a probe to every worker loop; the next tick pings systemd only if every worker ran its
/// probe in between. Ticks come every quarter of `WatchdogSec=` (sd_watchdog_enabled(3)
/// recommends at most half), so a loop must be stuck for at least a quarter of it to withhold
/// one ping and for the whole of it to get the process killed.
package final class ProgressWatchdog: @unchecked Sendable {
    private let control: EventLoop
    private let interval: Duration
    private let notifier: SystemdNotifier
    private let logger: Logger
    private var workers: [EventLoop] = []
    /// The last probe number each worker ran (written on the worker's thread).
    private let answered = Locked<[UInt64]>([])
    private var sent: UInt64 = 0
    private var withheld = false
    /// Pings sent so far (control thread only; for tests and the log).
    package private(set) var pings = 0

    /// `@unchecked Sendable`: everything but `answered` (a lock) is touched on `control`'s thread.
    package init(control: EventLoop, timeout: Duration, notifier: SystemdNotifier, logger: Logger) {
        self.control = control
        self.interval = max(timeout / 4, .milliseconds(1))
        self.notifier = notifier
        self.logger = logger
    }

    /// Starts ticking (the first ping goes out at once).
    package func start() {
        assert(control.isInLoop)
        tick()
    }

    /// `loop` must answer probes from the next tick on.
    package func watch(_ loop: EventLoop) {
        assert(control.isInLoop)
        workers.append(loop)
        answered.withLock { $0.append(sent) }
    }

    private func tick() {
        let stuck = answered.withLock { acks in acks.indices.filter { acks[$0] != sent } }
        if stuck.isEmpty {
            notifier.watchdog()
            pings += 1
            if withheld {
                withheld = false
                logger.info("[i] All worker loops answer again: watchdog pings resumed", metadata: ["event": "watchdog_resumed"])
            }
        } else if !withheld {
            withheld = true
            logger.error(
                "[!] Worker loop \(stuck.map(String.init).joined(separator: ", ")) made no progress for \(nanoseconds(of: interval) / 1_000_000) ms: withholding the watchdog ping",
                metadata: ["event": "watchdog_withheld"])
        }
        sent += 1
        let probe = sent
        for (index, loop) in workers.enumerated() {
            loop.execute { [answered] in answered.withLock { $0[index] = probe } }
        }
        control.schedule(after: interval) { [weak self] in self?.tick() }
    }
}
