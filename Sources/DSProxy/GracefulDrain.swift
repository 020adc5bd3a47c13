import DSReactor
import DSSystem

/// Graceful stop of the workers (SIGTERM): each worker stops accepting, closes its idle client
/// connections, lets the requests in progress finish (their responses say `Connection: close`)
/// and closes those connections after them. Whoever stops ds-lb calls `begin()` and watches
/// `remaining` fall to 0 (or gives up at its deadline and stops the loops). Any thread.
package final class GracefulDrain: Sendable {
    private struct State {
        var starters: [@Sendable () -> Void] = []
        var started = false
        /// Client connections still open on workers that drain; a worker not yet told counts 1.
        var open = 0
    }
    private let state = Locked(State())

    package init() {}

    /// Any thread. Tells every worker to drain (once).
    package func begin() {
        let starters = state.withLock { state -> [@Sendable () -> Void] in
            guard !state.started else { return [] }
            state.started = true
            state.open = state.starters.count
            return state.starters
        }
        starters.forEach { $0() }
    }

    /// Any thread. Client connections still open on the draining workers (0: all done).
    package var remaining: Int { state.withLock { $0.started ? $0.open : 0 } }

    /// A worker joins; `start` hops to its loop and drains it. A worker that joins after
    /// `begin()` drains at once.
    func enroll(_ start: @escaping @Sendable () -> Void) {
        let late = state.withLock { state -> Bool in
            state.starters.append(start)
            if state.started { state.open += 1 }
            return state.started
        }
        if late { start() }
    }

    /// A draining worker reports a change in its open connections.
    func adjust(_ delta: Int) {
        state.withLock { $0.open += delta }
    }
}
