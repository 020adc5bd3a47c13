import DSHTTP1
import DSReactor
import DSSystem

/// A response body without an end (server-sent events): the admin handler answers with one in
/// `AdminResponse.stream`; the worker writes the head, then hands the stream a `StreamSink` that
/// the producer writes to from any thread for as long as the client stays. The body ends when the
/// connection closes (`Connection: close` framing), so there is no chunk encoding to keep.
package protocol ResponseStream: Sendable {
    /// Called once, on the worker's loop, after the response head is queued.
    func attach(_ sink: StreamSink)
}

/// The producer's end of one streamed response. Any thread writes to it; the worker that owns
/// the connection takes the bytes on its loop. Nothing here keeps a thread: a write that finds
/// the loop not yet told schedules one wake-up, and the loop drains everything written since.
///
/// Bounded: bytes the client has not taken accumulate up to `limit`; a client that falls further
/// behind is dropped (the sink closes and the worker closes its connection), never buffered
/// without end.
package final class StreamSink: Sendable {
    private struct State {
        var pending: [UInt8] = []
        /// A wake-up is on its way to the loop: further writes only add bytes.
        var woken = false
        var closed = false
    }

    private let state = Locked(State())
    private let limit: Int
    private let wake: @Sendable () -> Void

    /// `wake` asks the owning loop to take the pending bytes (`take`).
    package init(limit: Int, wake: @escaping @Sendable () -> Void) {
        self.limit = limit
        self.wake = wake
    }

    /// Any thread. Queues `bytes` for the client. False once the sink is closed (the client left,
    /// fell behind, or ds-lb stops): the producer forgets the sink then.
    @discardableResult
    package func send(_ bytes: [UInt8]) -> Bool {
        let (open, mustWake) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            if state.pending.count + bytes.count > limit {
                state.closed = true
                state.pending = []
            } else {
                state.pending += bytes
            }
            let mustWake = !state.woken
            state.woken = true
            return (!state.closed, mustWake)
        }
        if mustWake { wake() }
        return open
    }

    /// Any thread. Whether the stream has ended (the producer stops writing to it).
    package var isClosed: Bool { state.withLock { $0.closed } }

    /// Owning loop. The bytes written since the last call, and whether the stream is over (the
    /// connection closes after writing them; an overflowed stream gives no bytes).
    func take() -> (bytes: [UInt8], ended: Bool) {
        state.withLock { state in
            state.woken = false
            let bytes = state.pending
            state.pending = []
            return (bytes, state.closed)
        }
    }

    /// Any thread. Ends the stream: the worker closes the connection once what is pending is
    /// written (called by the worker itself when the client leaves).
    package func close() {
        let mustWake = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.closed = true
            let mustWake = !state.woken
            state.woken = true
            return mustWake
        }
        if mustWake { wake() }
    }

    /// The response head of a streamed answer: no length, the body ends with the connection.
    package static func head(contentType: String) -> [UInt8] {
        Array(
            ("\(HTTPStatus.ok.statusLine)\r\nContent-Type: \(contentType)\r\nCache-Control: no-store\r\n"
                + "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n").utf8)
    }
}
