import DSReactor

/// The client side of a streamed admin answer (`ResponseStream`): the head is queued, the
/// producer's bytes follow as it sends them, and the connection closes when either side ends.
extension ClientConnection {
    /// Holds the connection for the sink's wake-ups without keeping it alive: a sink the producer
    /// still lists after the client left must not hold the connection's buffers.
    private final class WeakConnection: @unchecked Sendable {
        // Touched only on the connection's loop (the wake-up runs there).
        weak var value: ClientConnection?
        init(_ value: ClientConnection) { self.value = value }
    }

    /// Bytes a subscriber may leave unread before it is dropped: far more than a second of
    /// events, far less than a crowd of stalled clients could make a problem of.
    static let streamLimit = 256 * 1024

    /// Loop thread. Gives `stream` its sink; the state is already `.streaming`.
    func attachStream(_ stream: any ResponseStream, loop: EventLoop, draining: Bool) {
        let me = WeakConnection(self)
        let sink = StreamSink(limit: Self.streamLimit) {
            loop.execute { me.value?.drive() }
        }
        self.sink = sink
        stream.attach(sink)
        if draining { sink.close() }
    }

    /// Loop thread. Writes what the producer sent; ends the connection when the stream ends or
    /// the client goes. Request bytes the client sends meanwhile are read and dropped (an SSE
    /// client sends none): reading is how its end is seen.
    func stepStream() -> Bool {
        guard let sink else {
            close()
            return false
        }
        guard flushOutput() else { return false }
        let (bytes, ended) = sink.take()
        if !bytes.isEmpty {
            output.append(bytes)
            return true
        }
        if ended {
            close()
            return false
        }
        switch readClient() {
        case .data:
            input.clear()
            return true
        case .wouldBlock:
            return false
        case .eof:
            close()
            return false
        }
    }
}
