import DSReactor
import DSSystem

/// Graceful stop of the workers (SIGTERM): each worker stops accepting, closes its idle client
/// connections, lets the requests in progress finish (their responses say `Connection: close`)
/// and closes those connections after them. Whoever stops ds-lb calls `begin()` and watches
/// `remaining` fall to 0 (or gives up at its deadline and stops the loops). Any thread.
package final class GracefulDrain: Sendable {
    private struct State {
        /// The enrolled workers' starters, by the id `enroll` gave each.
        var starters: [Int: @Sendable () -> Void] = [:]
        var nextID = 0
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
            return Array(state.starters.values)
        }
        starters.forEach { $0() }
    }

    /// Any thread. Client connections still open on the draining workers (0: all done).
    package var remaining: Int { state.withLock { $0.started ? $0.open : 0 } }

    /// A worker joins; `start` hops to its loop and drains it. A worker that joins after
    /// `begin()` drains at once. The id is the worker's to `withdraw` with.
    func enroll(_ start: @escaping @Sendable () -> Void) -> Int {
        let (id, late) = state.withLock { state -> (Int, Bool) in
            let id = state.nextID
            state.nextID += 1
            state.starters[id] = start
            if state.started { state.open += 1 }
            return (id, state.started)
        }
        if late { start() }
        return id
    }

    /// The worker enrolled as `id` has ended its loop: its `start` will never run there, so a
    /// drain must not wait for it. `counted` is what it still counts once a drain has begun:
    /// its connections still open if it drained, else the 1 `begin()` (or a late `enroll`)
    /// counts for a worker not yet told. Before `begin()` it counts nothing, and a later
    /// `begin()` no longer counts it.
    func withdraw(_ id: Int, counted: Int) {
        state.withLock { state in
            guard state.starters.removeValue(forKey: id) != nil else { return }
            if state.started { state.open -= counted }
        }
    }

    /// A draining worker reports a change in its open connections.
    func adjust(_ delta: Int) {
        state.withLock { $0.open += delta }
    }
}
