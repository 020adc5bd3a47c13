import DSReactor
import DSSystem

/// Runs the replicas' heartbeats on the control loop: each replica has at most one check
/// scheduled (`Replica.nextCheck`; scheduling again replaces it) and at most one probe in
/// flight (`Replica.probe`), and a result is handed to `report`. When to check is the
/// reconciler's decision (`scheduleCheck`); this only keeps the timers and probes. Control
/// loop only.
final class HeartbeatScheduler {
    private let loop: EventLoop
    /// The probe's deadline, read when each check starts (a reload changes it).
    private let timeout: () -> Duration
    /// Asked when a check is due: false skips it (the replica left, or ds-lb is stopping).
    private let shouldCheck: (Replica) -> Bool
    private let report: (Replica, CheckResult, UInt64) -> Void

    init(
        loop: EventLoop, timeout: @escaping () -> Duration, shouldCheck: @escaping (Replica) -> Bool,
        report: @escaping (_ replica: Replica, _ result: CheckResult, _ latency: UInt64) -> Void
    ) {
        self.loop = loop
        self.timeout = timeout
        self.shouldCheck = shouldCheck
        self.report = report
    }

    /// Checks `replica` after `delay`, instead of any check scheduled before.
    func schedule(_ replica: Replica, after delay: Duration) {
        cancelNext(replica)
        replica.nextCheck = loop.schedule(after: delay) { [weak self, weak replica] in
            guard let self, let replica, shouldCheck(replica) else { return }
            replica.nextCheck = nil
            check(replica)
        }
    }

    /// The scheduled check is dropped (a probe in flight still reports).
    func cancelNext(_ replica: Replica) {
        if let timer = replica.nextCheck { loop.cancel(timer); replica.nextCheck = nil }
    }

    /// No more checks of `replica`: the scheduled one is dropped and a probe in flight is let
    /// go.
    func stop(_ replica: Replica) {
        cancelNext(replica)
        replica.probe = nil
    }

    /// A probe is in flight.
    func isChecking(_ replica: Replica) -> Bool { replica.probe != nil }

    /// A check is scheduled and not yet started.
    func hasScheduledCheck(_ replica: Replica) -> Bool { replica.nextCheck != nil }

    private func check(_ replica: Replica) {
        guard replica.probe == nil else { return }
        replica.probe = HeartbeatProbe(
            backend: replica.backend, loop: loop, timeoutNanoseconds: nanoseconds(of: timeout())
        ) { [weak self, weak replica] result, latency in
            guard let self, let replica else { return }
            replica.probe = nil
            report(replica, result, latency)
        }
    }
}
