import DSHTTP1

/// The lifecycle of one upstream exchange (one proxied request at a replica) as a plain value:
/// which phase it is in, which of its two deadlines runs, and what a deadline that passes
/// means. `UpstreamExchange` is its I/O shell: it connects, writes, reads, arms the deadline
/// timer and reports what happened as events. The machine makes no system call, reads no clock
/// and allocates nothing, so every transition and timeout is unit-tested without a socket.
///
/// The request side (head, then body) and the response side overlap: a replica may answer
/// before the body is all sent. The phases follow the response side, which is what the
/// deadlines are about; the body's own progress is `UpstreamExchange.bodyRemaining`.
struct ExchangeMachine {
    enum State: Equatable {
        /// No request: the object waits for its connection's next one.
        case idle
        /// A new connection to the replica is being opened: the connect deadline runs.
        case connecting
        /// Connected (or a pooled connection): the head has not gone out yet. The response
        /// deadline runs from here.
        case sending
        /// The head went out (its body may still be going): the response head is awaited.
        case awaitingResponse
        /// The response head was relayed; its body goes to the client as `framing` says,
        /// `remaining` counting a Content-Length body down. No deadline of the exchange's own:
        /// a client that stops reading is the client connection's concern.
        case streaming(framing: BodyFraming, remaining: UInt64, keepsConnection: Bool)
        /// Answered, failed, abandoned, or handed to a tunnel: the object may be reused.
        case ended
    }

    enum Event {
        /// A new request on the (reused) exchange object.
        case begin
        /// A connection to a replica was got for an attempt: a pooled or already connected one
        /// (`connected`), or one still connecting. A retry or a failover attaches again.
        case attached(connected: Bool)
        /// The connection being opened is up.
        case connected
        /// The head has been written (or what the socket did not take is queued before anything else).
        case headSent
        /// A valid final response head: the response streams from now on.
        case responseHead(framing: BodyFraming, keepsConnection: Bool)
        /// The deadline of the current phase passed.
        case deadlineExpired
        /// The exchange is over (any way it ends).
        case end
    }

    /// The two deadlines; the shell turns them into times (the machine has no clock).
    enum Deadline: Equatable {
        case connect
        case response
    }

    enum Action: Equatable {
        case none
        /// (Re)arm the exchange's deadline, counted from now.
        case arm(Deadline)
        /// No deadline runs any more.
        case clearDeadline
        /// The replica did not accept the connection in time: the attempt failed (failover may
        /// follow, and the replica is reported unreachable).
        case connectTimedOut
        /// The replica gave no response head in time: the attempt failed.
        case responseTimedOut
    }

    private(set) var state = State.idle

    init() {}

    @inline(__always)
    mutating func handle(_ event: Event) -> Action {
        switch event {
        case .begin:
            state = .idle
            return .clearDeadline

        case .attached(let connected):
            if connected {
                state = .sending
                return .arm(.response)
            }
            state = .connecting
            return .arm(.connect)

        case .connected:
            guard case .connecting = state else { return .none }
            state = .sending
            return .arm(.response)

        case .headSent:
            guard case .sending = state else { return .none }
            state = .awaitingResponse
            return .none

        case .responseHead(let framing, let keepsConnection):
            let remaining: UInt64
            if case .contentLength(let length) = framing { remaining = length } else { remaining = 0 }
            state = .streaming(framing: framing, remaining: remaining, keepsConnection: keepsConnection)
            return .clearDeadline

        case .deadlineExpired:
            switch state {
            case .connecting: return .connectTimedOut
            case .sending, .awaitingResponse: return .responseTimedOut
            case .idle, .streaming, .ended: return .none
            }

        case .end:
            state = .ended
            return .clearDeadline
        }
    }

    var hasEnded: Bool {
        if case .ended = state { return true }
        return false
    }

    /// The head still has to go out on the attached connection.
    var headPending: Bool {
        switch state {
        case .connecting, .sending: return true
        default: return false
        }
    }

    /// A final response head was relayed.
    var responding: Bool {
        if case .streaming = state { return true }
        return false
    }

    /// The response's framing (`.none` before its head).
    var framing: BodyFraming {
        if case .streaming(let framing, _, _) = state { return framing }
        return .none
    }

    var replicaKeepsConnection: Bool {
        if case .streaming(_, _, let keeps) = state { return keeps }
        return false
    }

    /// What is left of a Content-Length response body.
    var responseRemaining: UInt64 {
        if case .streaming(_, let remaining, _) = state { return remaining }
        return 0
    }

    /// `n` bytes of a Content-Length response body were classified (or spliced) for the client.
    @inline(__always)
    mutating func responseBodyMoved(_ n: UInt64) {
        guard case .streaming(let framing, let remaining, let keeps) = state else { return }
        state = .streaming(framing: framing, remaining: remaining - n, keepsConnection: keeps)
    }
}
