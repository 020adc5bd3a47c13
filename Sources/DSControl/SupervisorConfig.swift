/// How the supervisor checks and repairs replicas.
package struct SupervisorConfig: Sendable {
    package enum OnFailure: String, Sendable, CaseIterable {
        /// Restart the replica under the same name, forever, with backoff.
        case restart
        /// After `maxRestarts` failed restarts, replace it by a new replica with a new name; with
        /// `maxRestarts` 0, at its first failure.
        case replace
    }

    package var heartbeatInterval: Duration = .seconds(5)
    package var heartbeatTimeout: Duration = .seconds(2)
    /// The quick re-check after a failure (HAProxy's `fastinter`).
    package var fastInterval: Duration = .milliseconds(500)
    /// How often a replica that is starting is checked.
    package var startingInterval: Duration = .milliseconds(100)
    /// How long a new or restarted replica has to pass its first `rise` checks.
    package var startTimeout: Duration = .seconds(10)
    package var fall = 2
    package var rise = 1
    package var onFailure = OnFailure.restart
    package var maxRestarts = 3
    package var backoffInitial: Duration = .seconds(1)
    package var backoffMax: Duration = .seconds(30)
    /// A replica UP for less than this when it fails again is flapping: its restart waits out
    /// the backoff instead of happening at once.
    package var stableAfter: Duration = .seconds(30)
    /// How long a removed replica may finish its in-flight requests before it is stopped.
    package var drainTimeout: Duration = .seconds(10)
    /// Passive health: this many failed requests (invalid responses, refused or dropped
    /// connections, timeouts) within `failWindow` take a replica out of rotation until its
    /// heartbeats pass `rise` times (nginx's max_fails/fail_timeout, HAProxy's error-limit).
    /// 0: off.
    package var maxFails = 10
    package var failWindow: Duration = .seconds(10)

    package init() {}
}
