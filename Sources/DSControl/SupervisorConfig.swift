/// How the supervisor checks and repairs replicas. Durations are nanoseconds.
package struct SupervisorConfig: Sendable {
    package enum OnFailure: String, Sendable, CaseIterable {
        /// Restart the replica under the same name, forever, with backoff.
        case restart
        /// After `maxRestarts` failed restarts, replace it by a new replica with a new name; with
        /// `maxRestarts` 0, at its first failure.
        case replace
    }

    package var heartbeatInterval: UInt64 = 5_000_000_000
    package var heartbeatTimeout: UInt64 = 2_000_000_000
    /// The quick re-check after a failure (HAProxy's `fastinter`).
    package var fastInterval: UInt64 = 500_000_000
    /// How often a replica that is starting is checked.
    package var startingInterval: UInt64 = 100_000_000
    /// How long a new or restarted replica has to pass its first `rise` checks.
    package var startTimeout: UInt64 = 10_000_000_000
    package var fall = 2
    package var rise = 1
    package var onFailure = OnFailure.restart
    package var maxRestarts = 3
    package var backoffInitial: UInt64 = 1_000_000_000
    package var backoffMax: UInt64 = 30_000_000_000
    /// A replica UP for less than this when it fails again is flapping: its restart waits out
    /// the backoff instead of happening at once.
    package var stableAfter: UInt64 = 30_000_000_000
    /// How long a removed replica may finish its in-flight requests before it is stopped.
    package var drainTimeout: UInt64 = 10_000_000_000
    /// Passive health: this many failed requests (invalid responses, refused or dropped
    /// connections, timeouts) within `failWindow` take a replica out of rotation until its
    /// heartbeats pass `rise` times (nginx's max_fails/fail_timeout, HAProxy's error-limit).
    /// 0: off.
    package var maxFails = 10
    package var failWindow: UInt64 = 10_000_000_000

    package init() {}
}
