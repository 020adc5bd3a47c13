/// Where one proxied request stands with its replicas, and what a failure leads to: the same
/// request once more on a fresh connection (a pooled one the replica had closed), the next
/// replica for its key (`--retries`), or our own error answer. A plain value: the exchange
/// reports facts (was the connection reused, is the request still at hand, does the error
/// allow another try) and performs the answer, so the rules are unit-tested without sockets.
struct ReplicaAttempts {
    enum AfterFailure: Equatable {
        /// A pooled connection failed: the same replica again, on a new connection.
        case againOnFreshConnection
        /// Another replica, if one is left for the key.
        case nextReplica
        /// Nothing else to try: the exchange answers with the error.
        case fail
    }

    /// A reused connection failed (or was found dead) and the request goes on a fresh one:
    /// the pool is not asked again for this replica.
    private(set) var onFreshConnection = false
    private(set) var failoversLeft = 0

    /// A new request, with `failovers` other replicas it may go to.
    mutating func begin(failovers: Int) {
        onFreshConnection = false
        failoversLeft = failovers
    }

    /// Whether a pooled connection may carry the request.
    var mayUsePooled: Bool { !onFreshConnection }

    /// A pooled connection was found closed before anything was sent on it.
    mutating func pooledConnectionDead() {
        onFreshConnection = true
    }

    /// A connection to the replica failed or it answered garbage. `reused`: the connection
    /// came from the pool. `resendable`: nothing of the response reached the client and the
    /// request is still at hand (no body sent). `retryAllowed`: the error's verdict for this
    /// request's method.
    mutating func failed(reused: Bool, resendable: Bool, retryAllowed: Bool) -> AfterFailure {
        guard resendable else { return .fail }
        if reused && !onFreshConnection {
            // The replica closed an idle connection whose end had not been seen yet: not the
            // replica's failure, and the request never reached it.
            onFreshConnection = true
            return .againOnFreshConnection
        }
        return retryAllowed && failoversLeft > 0 ? .nextReplica : .fail
    }

    /// The request went to the next replica (which the exchange found for the key). A
    /// connection the replica refused costs nothing of the budget (as nginx's
    /// `proxy_next_upstream error` tries every server): it failed at once and nothing was sent,
    /// and when a host dies its replicas all refuse, so a key whose next replicas were on that
    /// host would otherwise fail while others are up. The exchange never offers a replica twice,
    /// so the walk ends after every replica was tried once.
    mutating func failedOver(refused: Bool = false) {
        if !refused { failoversLeft -= 1 }
        onFreshConnection = false
    }
}
