/// The outcome of one heartbeat, with HAProxy's check codes (src/check.c) so operators can read
/// them the same way.
package enum CheckResult: Sendable, Equatable, CustomStringConvertible {
    /// Layer 4: the connection was refused or reset.
    case l4Connection(String)
    /// Layer 4: the connection did not complete in time.
    case l4Timeout
    /// Layer 7: connected, but no complete response in time.
    case l7Timeout
    /// Layer 7: a response that is not valid HTTP, or the connection closed before one.
    case l7Response(String)
    /// Layer 7: a valid response with a status other than 2xx.
    case l7Status(Int)
    /// Layer 7: a 2xx answer.
    case l7OK
    /// No check was made: ds-lb itself was out of descriptors or memory. Says nothing about the
    /// replica, so it moves no counter.
    case skipped(String)

    package var isSuccess: Bool { self == .l7OK }

    /// `L4CON`, `L4TOUT`, `L7TOUT`, `L7RSP`, `L7STS`, `L7OK`.
    package var code: String {
        switch self {
        case .l4Connection: return "L4CON"
        case .l4Timeout: return "L4TOUT"
        case .l7Timeout: return "L7TOUT"
        case .l7Response: return "L7RSP"
        case .l7Status: return "L7STS"
        case .l7OK: return "L7OK"
        case .skipped: return "SKIPPED"
        }
    }

    package var description: String {
        switch self {
        case .l4Connection(let reason): return "L4CON (\(reason))"
        case .l4Timeout: return "L4TOUT (connect timed out)"
        case .l7Timeout: return "L7TOUT (no response in time)"
        case .l7Response(let reason): return "L7RSP (\(reason))"
        case .l7Status(let status): return "L7STS (status \(status))"
        case .l7OK: return "L7OK"
        case .skipped(let reason): return "SKIPPED (\(reason))"
        }
    }
}

/// A replica's health as a plain value (docs/ARCHITECTURE.md §7): it takes check results and
/// says what changed; the supervisor does the I/O. `fall` consecutive failures take an UP
/// replica DOWN, `rise` consecutive successes bring a DOWN or STARTING one UP (HAProxy's
/// rise/fall).
package struct HealthMachine: Sendable, Equatable {
    package enum Status: String, Sendable {
        /// Launched, not yet passed `rise` checks: not in rotation.
        case starting = "STARTING"
        case up = "UP"
        case down = "DOWN"
    }

    package enum Transition: Sendable, Equatable {
        case wentUp
        case wentDown
    }

    package private(set) var fall: Int
    package private(set) var rise: Int
    package private(set) var status: Status
    package private(set) var consecutiveFailures = 0
    package private(set) var consecutiveSuccesses = 0
    package private(set) var last: CheckResult?

    package init(fall: Int, rise: Int, status: Status = .starting) {
        precondition(fall >= 1 && rise >= 1)
        self.fall = fall
        self.rise = rise
        self.status = status
    }

    /// Records one result and returns the status change it caused, if any.
    package mutating func record(_ result: CheckResult) -> Transition? {
        last = result
        if case .skipped = result { return nil }
        if result.isSuccess {
            consecutiveSuccesses += 1
            consecutiveFailures = 0
            if status != .up && consecutiveSuccesses >= rise {
                status = .up
                return .wentUp
            }
        } else {
            consecutiveFailures += 1
            consecutiveSuccesses = 0
            if status == .up && consecutiveFailures >= fall {
                status = .down
                return .wentDown
            }
        }
        return nil
    }

    /// Whether the next check should come sooner than the regular interval: an UP replica that
    /// just failed (confirm quickly, HAProxy's `fastinter`) or one that is not UP yet.
    package var wantsFastCheck: Bool {
        (status == .up && consecutiveFailures > 0) || status == .starting
    }

    /// New thresholds from a reload. The status and the counts so far stay; the next result is
    /// judged against the new thresholds (HAProxy applies a changed rise/fall the same way).
    package mutating func retune(fall: Int, rise: Int) {
        precondition(fall >= 1 && rise >= 1)
        self.fall = fall
        self.rise = rise
    }

    /// A fresh start after a restart: STARTING, counters cleared.
    package mutating func restart() {
        status = .starting
        consecutiveFailures = 0
        consecutiveSuccesses = 0
    }

    /// Forces DOWN on evidence from live traffic (passive health: failed requests), not from
    /// checks: the heartbeat counters start again from zero, so `rise` passing checks bring it
    /// back and `fall` failing ones say the replica itself is failing.
    package mutating func markDownPassively() -> Transition? {
        consecutiveSuccesses = 0
        consecutiveFailures = 0
        guard status == .up else { return nil }
        status = .down
        return .wentDown
    }

    /// Forces DOWN (the driver saw the replica exit: no need to wait for `fall` checks).
    package mutating func markDown(_ result: CheckResult) -> Transition? {
        last = result
        consecutiveSuccesses = 0
        consecutiveFailures = max(consecutiveFailures, fall)
        guard status != .down else { return nil }
        let wasUp = status == .up
        status = .down
        return wasUp ? .wentDown : nil
    }
}
