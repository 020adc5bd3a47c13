import DSReactor
import DSSystem

/// Passive health (HAProxy's `observe layer7` + `error-limit`, nginx's `max_fails` /
/// `fail_timeout`): a replica that passes its heartbeats but fails the requests themselves
/// (invalid responses, refused or dropped connections, timeouts) leaves the rotation after
/// `maxFails` of them within `failWindow`, and comes back when `rise` heartbeats pass.
///
/// The workers only add to each replica's failure total (an atomic, nothing else on their
/// path); the supervisor samples the totals ten times per window and compares each with the
/// oldest sample still inside the window. A replica is so taken out at most a tenth of a
/// window after its `maxFails`-th failure.
extension Supervisor {
    func schedulePassiveHealth() {
        let period = max(config.failWindow / 10, .milliseconds(1))
        loop.schedule(after: period) { [unowned self] in
            self.samplePassiveHealth()
            self.schedulePassiveHealth()
        }
    }

    func samplePassiveHealth() {
        assert(loop.isInLoop)
        // A stopping ds-lb expects its replicas to fail; it repairs nothing and marks nothing.
        guard !stopping else { return }
        let now = monotonicNanoseconds()
        let window = nanoseconds(of: config.failWindow)
        for replica in members where replica.inPool && !replica.removed {
            let total = metrics.replica(replica.backend.name).failures
            guard config.maxFails > 0, replica.isUp else {
                // Failures seen while it was out (requests routed just before) do not count
                // once it is back.
                replica.failureSamples = [(now, total)]
                continue
            }
            // (A replica sampled for the first time counts from here: it has just joined.)
            replica.failureSamples.removeAll { now - $0.at > window }
            let failed = total - (replica.failureSamples.first?.total ?? total)
            replica.failureSamples.append((now, total))
            if failed >= config.maxFails {
                markDownPassively(replica, failed: failed)
            }
        }
    }

    /// The window starts again from now (a replica back in rotation).
    func restartFailureWindow(_ replica: Replica) {
        assert(loop.isInLoop)
        replica.failureSamples = [(monotonicNanoseconds(), metrics.replica(replica.backend.name).failures)]
    }

    /// Its heartbeats go on at the regular interval (not at once: a replica that answers them
    /// would be back before the failures were over), and the first `rise` passing ones put it
    /// back.
    private func markDownPassively(_ replica: Replica, failed: Int) {
        apply(.requestsFailed(failed), to: replica)
    }
}
