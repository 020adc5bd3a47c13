import DSReactor

extension Supervisor {
    /// Settings from a reload (ds-lb's SIGHUP): every field of `SupervisorConfig` can change
    /// while replicas run. The next heartbeat of each replica uses the new interval and
    /// timeout — when the interval got shorter, a check already scheduled for later is brought
    /// forward to the new interval, so the change shows at once; fall and rise judge the next
    /// result; the failure policy and the drain timeout apply to the next failure and the next
    /// removal.
    package func reconfigure(_ new: SupervisorConfig) {
        assert(loop.isInLoop)
        let shorter = new.heartbeatInterval < config.heartbeatInterval
        config = new
        // Before the reload's log line, which a reader may follow with `/status`.
        publishView()
        for replica in members where !replica.removed {
            replica.record.retune(fall: new.fall, rise: new.rise)
            if shorter, !heartbeats.isChecking(replica), heartbeats.hasScheduledCheck(replica), replica.health.status == .up,
                !replica.health.wantsFastCheck
            {
                scheduleCheck(replica, after: new.heartbeatInterval)
            }
        }
    }

    /// Control thread only. The heartbeat interval in force (for the reload's log line).
    package var heartbeatInterval: Duration { config.heartbeatInterval }
}
