/// How the supervisor checks and repairs replicas. Durations are nanoseconds.
public struct SupervisorConfig: Sendable {
    public enum OnFailure: String, Sendable, CaseIterable {
        /// Restart the replica under the same name, forever, with backoff.
        case restart
        /// After `maxRestarts` failed restarts, replace it by a new replica with a new name; with
        /// `maxRestarts` 0, at its first failure.
        case replace
    }

    public var heartbeatInterval: UInt64 = 5_000_000_000
    public var heartbeatTimeout: UInt64 = 2_000_000_000
    /// The quick re-check after a failure (HAProxy's `fastinter`).
    public var fastInterval: UInt64 = 500_000_000
    /// How often a replica that is starting is checked.
    public var startingInterval: UInt64 = 100_000_000
    /// How long a new or restarted replica has to pass its first `rise` checks.
    public var startTimeout: UInt64 = 10_000_000_000
    public var fall = 2
    public var rise = 1
    public var onFailure = OnFailure.restart
    public var maxRestarts = 3
    public var backoffInitial: UInt64 = 1_000_000_000
    public var backoffMax: UInt64 = 30_000_000_000
    /// A replica UP for less than this when it fails again is flapping: its restart waits out
    /// the backoff instead of happening at once.
    public var stableAfter: UInt64 = 30_000_000_000
    /// How long a removed replica may finish its in-flight requests before it is stopped.
    public var drainTimeout: UInt64 = 10_000_000_000
    /// Passive health: this many failed requests (invalid responses, refused or dropped
    /// connections, timeouts) within `failWindow` take a replica out of rotation until its
    /// heartbeats pass `rise` times (nginx's max_fails/fail_timeout, HAProxy's error-limit).
    /// 0: off.
    public var maxFails = 10
    public var failWindow: UInt64 = 10_000_000_000

    public init() {}
}
