import DSSystem
import Logging

/// Where one replica is in its life, as the supervisor sees it. Each state carries the timers
/// that belong to it (as deadlines in the control loop's monotonic nanoseconds), so a timer
/// that fires in another state is simply stale.
package enum ReplicaLifecycle: Sendable, Equatable {
    /// Launched (the initial pool, an `/add`), not yet passed `rise` checks. `deadline`: when
    /// the launch counts as failed (nil: no deadline of its own, e.g. an `/add` has one for the
    /// whole command).
    case starting(deadline: UInt64?)
    /// A restarted instance, or one started in place of a failed replica, waiting to pass its
    /// first checks before `deadline`.
    case restarting(deadline: UInt64)
    /// In rotation since `since` (a failure soon after is flapping).
    case up(since: UInt64)
    /// Out of rotation for failed requests (passive health); heartbeats go on and `rise` passing
    /// ones bring it back.
    case markedDown
    /// Failed and not repaired (a driver that creates nothing, or ds-lb is stopping): out of
    /// rotation until its heartbeats pass again.
    case down
    /// Failed; its repair (a restart, or a replacement) is due at `at` (the backoff).
    case awaitingRepair(at: UInt64)
    /// Removed from the pool: its requests in flight finish, then it stops.
    case draining
    /// Out of the supervisor's care (removed and stopped, replaced, or an `/add` given up).
    case gone

    /// Removed, replaced or given up: no check, repair or deadline applies any more.
    package var isRetired: Bool {
        switch self {
        case .draining, .gone: return true
        default: return false
        }
    }
}

/// One replica's state as the reconciler keeps it: the lifecycle, the heartbeat verdicts and
/// what its repairs have been so far (which outlive any one state).
package struct ReplicaRecord: Sendable, Equatable {
    package let name: String
    package let number: Int
    /// Where it listens (for log lines); the supervisor keeps it current.
    package var address: String
    package internal(set) var life: ReplicaLifecycle
    package internal(set) var health: HealthMachine
    package internal(set) var checks = 0
    package internal(set) var lastLatency: UInt64 = 0
    /// Successful restarts.
    package internal(set) var restarts = 0
    /// Restarts in a row that did not bring it back.
    package internal(set) var failedRestarts = 0
    package internal(set) var backoff: Duration = .zero
    /// Started in place of a failed replica: like a restarted one, it is flapping when it fails
    /// again soon after it came up.
    package internal(set) var isReplacement = false
    /// The failed replica it was started in place of, until it first comes up (restarts that
    /// fail before that keep it).
    package internal(set) var replacing: String?

    package init(name: String, number: Int, address: String, life: ReplicaLifecycle, health: HealthMachine) {
        self.name = name
        self.number = number
        self.address = address
        self.life = life
        self.health = health
    }

    package var isUp: Bool { health.status == .up }
    package var isMarkedDown: Bool { life == .markedDown }

    /// New thresholds from a reload.
    package mutating func retune(fall: Int, rise: Int) { health.retune(fall: fall, rise: rise) }
}

/// What the reconciler learned: a heartbeat, a driver report, a timer it asked for, or the
/// outcome of an action it asked the supervisor to take.
package enum ReconcilerEvent: Sendable, Equatable {
    /// A heartbeat answered (`latency` in nanoseconds).
    case checked(CheckResult, latency: UInt64)
    /// The driver saw the instance end on its own (or fail to start). `duringAdd`: it belongs
    /// to an `/add` that has not been answered yet.
    case exited(reason: String, duringAdd: Bool)
    /// The time of the `startDeadline(at:)` action came (`at` names the deadline: a stale one
    /// is ignored).
    case startDeadlinePassed(at: UInt64)
    /// The time of the `scheduleRepair(at:)` action came.
    case repairDue(at: UInt64)
    /// The `restart` action's new instance was launched.
    case relaunched
    /// The `restart` action's launch failed.
    case relaunchFailed(reason: String)
    /// The `replace` action started `successor` in this replica's place.
    case replaced(by: String)
    /// The `replace` action could not start `successor`.
    case replacementFailed(successor: String, reason: String)
    /// Passive health: `failed` requests failed within the window.
    case requestsFailed(Int)
    /// `DELETE /rm` took it out of the pool.
    case removed
    /// An `/add` that launched it was given up, or its drain ended: it is stopped.
    case retired
}

/// What the supervisor is to do. Times are the control loop's monotonic nanoseconds.
package enum ReconcilerAction: Sendable, Equatable {
    /// Check its heartbeat at `at` (replacing any check already scheduled).
    case scheduleCheck(at: UInt64)
    case cancelCheck
    /// Report `startDeadlinePassed` at `at`.
    case startDeadline(at: UInt64)
    case cancelStartDeadline
    /// Report `repairDue` at `at` (replacing any repair already scheduled).
    case scheduleRepair(at: UInt64)
    case cancelRepair
    /// Kill the failed instance and launch it again (same name), then report `relaunched` or
    /// `relaunchFailed`.
    case restart
    /// Launch a new replica under a new name in its place, then report `replaced` or
    /// `replacementFailed`.
    case replace
    /// Kill it and forget it (it was replaced).
    case retire
    /// Publish the pool with its current health (a no-op when nothing changed).
    case publish
    /// It passed its checks: restart its passive-health window, tell a waiting `/add` and the
    /// initial-pool wait.
    case cameUp
    /// Count a successful restart in `/metrics`.
    case countRestart
    /// Give up the `/add` it belongs to.
    case failAdd(reason: String)
    /// A log line; `event` is its journald `EVENT=` field.
    case log(Logger.Level, String, event: String?)
}

/// The replica policies of the supervisor as a plain value (docs/ARCHITECTURE.md §5): heartbeat
/// verdicts, restart with backoff, flap damping, `--on-failure replace` after
/// `--max-restarts`, passive health and removal. It performs no I/O and reads no clock: every
/// event comes with `now`, and every effect is an action the supervisor carries out, so each
/// policy is tested without a process, a socket or a timer.
package struct Reconciler: Sendable {
    package var config: SupervisorConfig
    /// Whether the driver can start replicas (else a failed one only leaves the rotation).
    package let canCreate: Bool
    /// ds-lb is stopping: replicas are expected to fail and nothing is repaired.
    package private(set) var stopping = false

    package init(config: SupervisorConfig, canCreate: Bool) {
        self.config = config
        self.canCreate = canCreate
    }

    /// A replica ds-lb launched: for the initial pool (checked at once, with a start deadline
    /// of its own) or for an `/add` (whose deadline is the command's).
    package func launched(
        _ name: String, number: Int, address: String, forAdd: Bool, now: UInt64
    ) -> (ReplicaRecord, [ReconcilerAction]) {
        let life = ReplicaLifecycle.starting(deadline: forAdd ? nil : now + nanoseconds(of: config.startTimeout))
        let record = ReplicaRecord(
            name: name, number: number, address: address, life: life, health: HealthMachine(fall: config.fall, rise: config.rise))
        var actions: [ReconcilerAction] = [.scheduleCheck(at: now + nanoseconds(of: forAdd ? config.startingInterval : .zero))]
        if case .starting(let at?) = life { actions.append(.startDeadline(at: at)) }
        return (record, actions)
    }

    /// A replica run by someone else (the static driver): presumed to serve until checks say
    /// otherwise, as HAProxy's servers are.
    package func adopted(_ name: String, number: Int, address: String, now: UInt64) -> (ReplicaRecord, [ReconcilerAction]) {
        let record = ReplicaRecord(
            name: name, number: number, address: address, life: .up(since: now),
            health: HealthMachine(fall: config.fall, rise: config.rise, status: .up))
        return (record, [.scheduleCheck(at: now)])
    }

    /// The replica started in place of `predecessor` (after its `replace` action succeeded).
    package func replacement(
        _ name: String, number: Int, address: String, of predecessor: ReplicaRecord, now: UInt64
    ) -> (ReplicaRecord, [ReconcilerAction]) {
        let deadline = now + nanoseconds(of: config.startTimeout)
        var record = ReplicaRecord(
            name: name, number: number, address: address, life: .restarting(deadline: deadline),
            health: HealthMachine(fall: config.fall, rise: config.rise))
        record.isReplacement = true
        record.replacing = predecessor.name
        // A replacement that fails soon after it came up backs off from where its predecessor was.
        record.backoff = predecessor.backoff
        return (record, [.startDeadline(at: deadline), .scheduleCheck(at: now + nanoseconds(of: config.startingInterval))])
    }

    /// Takes `event` for `record` at `now` and returns what to do, in order.
    package func handle(_ event: ReconcilerEvent, for record: inout ReplicaRecord, now: UInt64) -> [ReconcilerAction] {
        if record.life == .gone { return [] }
        var actions: [ReconcilerAction] = []
        switch event {
        case .checked(let result, let latency):
            guard !record.life.isRetired, !stopping else { return [] }
            checked(&record, result: result, latency: latency, now: now, into: &actions)
        case .exited(let reason, let duringAdd):
            exited(&record, reason: reason, duringAdd: duringAdd, now: now, into: &actions)
        case .startDeadlinePassed(let at):
            guard !stopping, !record.isUp else { return [] }
            switch record.life {
            case .starting(let deadline?) where deadline == at: break
            case .restarting(let deadline) where deadline == at: break
            default: return []
            }
            let last = record.health.last?.description ?? "none"
            restartFailed(
                &record, reason: "no successful heartbeat within \(DurationText.format(config.startTimeout)) (last: \(last))",
                now: now, into: &actions)
        case .repairDue(let at):
            guard !stopping, record.life == .awaitingRepair(at: at) else { return [] }
            actions.append(repairReplaces(record) ? .replace : .restart)
        case .relaunched:
            let deadline = now + nanoseconds(of: config.startTimeout)
            record.life = .restarting(deadline: deadline)
            record.health.restart()
            actions += [.startDeadline(at: deadline), .scheduleCheck(at: now + nanoseconds(of: config.startingInterval))]
        case .relaunchFailed(let reason):
            restartFailed(&record, reason: reason, now: now, into: &actions)
        case .replaced(let successor):
            let why = record.failedRestarts > 0 ? "failed \(record.failedRestarts) restarts: replacing it with" : "is replaced by"
            actions.append(.log(.warning, "[!] Server \(record.number) \(why) \(successor)", event: "replaced"))
            record.life = .gone
            actions.append(.retire)
        case .replacementFailed(let successor, let reason):
            let delay = nextBackoff(&record)
            actions.append(
                .log(
                    .error,
                    "[!] Failed to start \(successor) in place of server \(record.number): \(reason); next attempt in \(DurationText.format(delay))",
                    event: nil))
            scheduleRepair(&record, after: delay, now: now, into: &actions)
        case .requestsFailed(let failed):
            guard !stopping, record.health.markDownPassively() == .wentDown else { return [] }
            record.life = .markedDown
            actions.append(.publish)
            actions.append(
                .log(
                    .warning,
                    "[!] Server \(record.number) marked down: \(failed) errors in \(DurationText.format(config.failWindow)). Out of rotation until its heartbeats pass again",
                    event: "marked_down"))
        case .removed:
            guard !record.life.isRetired else { return [] }
            record.life = .draining
            actions += [.cancelCheck, .cancelRepair, .cancelStartDeadline]
        case .retired:
            record.life = .gone
            actions += [.cancelCheck, .cancelRepair, .cancelStartDeadline]
        }
        return actions
    }

    /// ds-lb begins to stop: no more heartbeats, restarts or replacements.
    package mutating func beginStopping() { stopping = true }

    // MARK: heartbeats

    private func checked(
        _ record: inout ReplicaRecord, result: CheckResult, latency: UInt64, now: UInt64, into actions: inout [ReconcilerAction]
    ) {
        // A repair is decided and its timer armed (which cancelled the next check): the answer
        // of a probe that was already on its way says nothing about the replica to come. It
        // may even come from another process that took the port of a ds-server that exited.
        if case .awaitingRepair = record.life { return }
        record.checks += 1
        record.lastLatency = latency
        let previous = record.health.status
        switch record.health.record(result) {
        case .wentUp:
            cameUp(&record, wasDown: previous == .down, now: now, into: &actions)
        case .wentDown:
            wentDown(&record, result: result, now: now, into: &actions)
        case nil:
            if record.life == .markedDown && record.health.consecutiveFailures >= config.fall {
                // Taken out for failed requests, and now its heartbeats fail too: the replica
                // itself is failing, and is repaired as any other.
                wentDown(&record, result: result, now: now, into: &actions)
            }
            if previous == .starting || record.health.status == .down { break }
            if !result.isSuccess {
                actions.append(
                    .log(
                        .warning,
                        "[!] Server \(record.number) heartbeat failed: \(result) (\(record.health.consecutiveFailures)/\(config.fall))",
                        event: "heartbeat_missed"))
            }
        }
        // One waiting out its backoff is not checked; its repair checks the new instance.
        if case .awaitingRepair = record.life { return }
        let next: Duration
        switch record.health.status {
        case .starting: next = config.startingInterval
        case .up:
            next = record.health.wantsFastCheck ? min(config.fastInterval, config.heartbeatInterval) : config.heartbeatInterval
        case .down where record.life == .markedDown && record.health.consecutiveFailures > 0:
            // Out for failed requests and now failing its heartbeats: confirm quickly, as for an
            // UP replica, so a replica that is really down is repaired without delay.
            next = min(config.fastInterval, config.heartbeatInterval)
        case .down: next = config.heartbeatInterval
        }
        actions.append(.scheduleCheck(at: now + nanoseconds(of: next)))
    }

    private func cameUp(_ record: inout ReplicaRecord, wasDown: Bool, now: UInt64, into actions: inout [ReconcilerAction]) {
        let previous = record.life
        record.life = .up(since: now)
        actions += [.cancelStartDeadline, .cancelRepair]
        switch (previous, record.replacing) {
        case (.restarting, let predecessor?):
            record.replacing = nil
            record.failedRestarts = 0
            actions.append(
                .log(
                    .info, "[+] Server \(record.number) started in place of \(predecessor): \(record.name) at \(record.address)",
                    event: "started"))
        case (.restarting, nil):
            record.restarts += 1
            record.failedRestarts = 0
            actions.append(.countRestart)
            actions.append(.log(.info, "[+] Server \(record.number) restarted", event: "restarted"))
        default:
            if wasDown { actions.append(.log(.info, "[+] Server \(record.number) is back up", event: "back_up")) }
        }
        actions += [.publish, .cameUp]
    }

    private func wentDown(_ record: inout ReplicaRecord, result: CheckResult, now: UInt64, into actions: inout [ReconcilerAction])
    {
        _ = record.health.markDown(result)
        actions.append(.publish)
        let upSince: UInt64? = if case .up(let since) = record.life { since } else { nil }
        record.life = .down
        guard !stopping else { return }
        guard canCreate else {
            actions.append(
                .log(
                    .warning, "[!] Server \(record.number) failed heartbeat: \(result). Out of rotation until it answers again",
                    event: "heartbeat_failed"))
            return
        }
        let flapping = upSince.map { now - $0 < nanoseconds(of: config.stableAfter) } ?? false
        let action = repairReplaces(record) ? "Replacing" : "Restarting"
        if flapping && (record.restarts > 0 || record.isReplacement) {
            let delay = nextBackoff(&record)
            actions.append(
                .log(
                    .warning,
                    "[!] Server \(record.number) failed heartbeat. \(action)... (in \(DurationText.format(delay)): it failed again within \(DurationText.format(config.stableAfter)) of its last restart)",
                    event: "heartbeat_failed"))
            scheduleRepair(&record, after: delay, now: now, into: &actions)
        } else {
            record.backoff = .zero
            actions.append(
                .log(.warning, "[!] Server \(record.number) failed heartbeat. \(action)...", event: "heartbeat_failed"))
            scheduleRepair(&record, after: .zero, now: now, into: &actions)
        }
    }

    // MARK: driver reports

    private func exited(
        _ record: inout ReplicaRecord, reason: String, duringAdd: Bool, now: UInt64, into actions: inout [ReconcilerAction]
    ) {
        guard !record.life.isRetired else { return }
        if stopping {
            actions.append(
                .log(.info, "[i] Server \(record.number) (\(record.name)) exited while ds-lb stops: \(reason)", event: "exited"))
            // Out of rotation for the requests still being drained.
            if record.isUp {
                _ = record.health.markDown(.l4Connection("process exited: \(reason)"))
                record.life = .down
                actions.append(.publish)
            }
            return
        }
        actions.append(.log(.warning, "[!] Server \(record.number) (\(record.name)) exited: \(reason)", event: "exited"))
        if duringAdd {
            actions.append(.failAdd(reason: "replica \(record.name) exited during start-up (\(reason))"))
            return
        }
        switch record.life {
        case .starting, .restarting:
            restartFailed(&record, reason: "exited during start-up (\(reason))", now: now, into: &actions)
        case .up, .markedDown:
            // The process is gone: no need to wait for `fall` failed heartbeats.
            actions.append(.cancelCheck)
            wentDown(&record, result: .l4Connection("process exited: \(reason)"), now: now, into: &actions)
        case .down, .awaitingRepair, .draining, .gone:
            break
        }
    }

    // MARK: repair

    private func nextBackoff(_ record: inout ReplicaRecord) -> Duration {
        record.backoff = record.backoff == .zero ? config.backoffInitial : min(config.backoffMax, record.backoff * 2)
        return record.backoff
    }

    /// Whether the next repair starts a new replica under a new name (`--on-failure replace`
    /// once `--max-restarts` restarts failed: at its first failure with 0) rather than the same
    /// replica again.
    package func repairReplaces(_ record: ReplicaRecord) -> Bool {
        config.onFailure == .replace && record.failedRestarts >= config.maxRestarts
    }

    private func scheduleRepair(
        _ record: inout ReplicaRecord, after delay: Duration, now: UInt64, into actions: inout [ReconcilerAction]
    ) {
        let at = now + nanoseconds(of: delay)
        record.life = .awaitingRepair(at: at)
        actions += [.cancelCheck, .scheduleRepair(at: at)]
    }

    private func restartFailed(_ record: inout ReplicaRecord, reason: String, now: UInt64, into actions: inout [ReconcilerAction])
    {
        actions.append(.cancelStartDeadline)
        record.failedRestarts += 1
        _ = record.health.markDown(.l4Connection("restart failed"))
        record.life = .down
        actions.append(.log(.error, "[!] Failed to restart server \(record.number): \(reason)", event: "restart_failed"))
        // Restarts already waited out their backoff; with no restarts allowed, a replacement
        // that fails to start waits before the next one, so a broken image is no launch storm.
        if repairReplaces(record) && config.maxRestarts > 0 {
            record.life = .awaitingRepair(at: now)
            actions += [.cancelCheck, .replace]
            return
        }
        let delay = nextBackoff(&record)
        actions.append(
            .log(
                .info,
                "[i] Server \(record.number): next \(repairReplaces(record) ? "replacement" : "restart") in \(DurationText.format(delay))",
                event: nil))
        scheduleRepair(&record, after: delay, now: now, into: &actions)
    }
}
