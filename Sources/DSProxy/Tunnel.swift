import DSReactor
import DSSystem

/// A client connection after its replica answered 101 Switching Protocols (a WebSocket, say):
/// bytes go both ways unchanged until either side closes. Loop thread only.
///
/// Backpressure: each direction reads only when its buffer is empty, so a side that does not
/// read holds at most one read's worth of the other side's bytes (and then the other side's
/// socket buffers fill, and TCP slows it down).
///
/// A tunnel in which no byte moves either way for `--idle-timeout` is closed (as nginx does
/// with its read timeout): WebSocket peers that want to stay idle longer send pings.
final class Tunnel: UpstreamOwner {
    private unowned let client: ClientConnection
    private unowned let loop: EventLoop
    private let upstream: UpstreamConnection
    private let idleTimeout: UInt64
    private var clientEOF = false
    private var ended = false
    private var lastActivity = monotonicNanoseconds()
    private var timer: TimerID?

    init(client: ClientConnection, upstream: UpstreamConnection, loop: EventLoop, idleTimeoutNanoseconds: UInt64) {
        assert(loop.isInLoop)
        self.client = client
        self.upstream = upstream
        self.loop = loop
        self.idleTimeout = idleTimeoutNanoseconds
        armIdleTimer(after: idleTimeoutNanoseconds)
    }

    /// One timer, re-armed lazily: activity only moves `lastActivity`.
    private func armIdleTimer(after nanoseconds: UInt64) {
        timer = loop.schedule(afterNanoseconds: nanoseconds) { [weak self] in
            guard let self, !self.ended else { return }
            self.timer = nil
            let idle = monotonicNanoseconds() - self.lastActivity
            if idle >= self.idleTimeout {
                self.client.close()
            } else {
                self.armIdleTimer(after: self.idleTimeout - idle)
            }
        }
    }

    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) {
        guard !ended else { return }
        client.drive()
    }

    /// Moves what can move now, both ways. Returns whether bytes moved.
    func step() -> Bool {
        guard !ended, !client.closed else { return false }
        var progressed = false
        if clientToReplica() { progressed = true }
        if !ended && !client.closed && replicaToClient() { progressed = true }
        if progressed { lastActivity = monotonicNanoseconds() }
        // Either side closed, and what it sent before has gone on: the tunnel is done.
        if !ended && !client.closed && client.input.isEmpty && clientEOF {
            client.close()
            return false
        }
        if !ended && !client.closed && upstream.peerClosed && upstream.input.isEmpty && client.output.isEmpty {
            client.close()
            return false
        }
        return progressed
    }

    private func clientToReplica() -> Bool {
        let input = client.input
        var progressed = false
        while !ended && !upstream.closed {
            if !input.isEmpty {
                guard upstream.mayWrite else { return progressed }
                do {
                    switch try Socket.write(upstream.fd, input.readable) {
                    case .wouldBlock:
                        upstream.mayWrite = false
                        return progressed
                    case .done(let n):
                        input.consume(n)
                        progressed = true
                    }
                } catch {
                    client.close()
                    return false
                }
                continue
            }
            guard !clientEOF else { return progressed }
            switch client.readClient() {
            case .data: progressed = true
            case .wouldBlock: return progressed
            case .eof: clientEOF = true; return true
            }
        }
        return progressed
    }

    private func replicaToClient() -> Bool {
        var progressed = false
        while !ended && !client.closed {
            // The 101 head (and anything else of ours) goes first.
            if !client.output.isEmpty {
                guard client.flushOutput() else { return progressed }
                progressed = true
            }
            if !upstream.input.isEmpty {
                switch client.writeBytesToClient(upstream.input.readable) {
                case .wrote(let n):
                    upstream.input.consume(n)
                    progressed = true
                case .blocked: return progressed
                case .failed: return false
                }
                continue
            }
            guard !upstream.peerClosed, upstream.mayRead else { return progressed }
            do {
                switch try upstream.read() {
                case .wouldBlock:
                    return progressed
                case .done(0):
                    return true
                case .done:
                    progressed = true
                }
            } catch {
                return true
            }
        }
        return progressed
    }

    /// Closes the replica side (the client is closing).
    func abandon() {
        assert(loop.isInLoop)
        guard !ended else { return }
        ended = true
        if let timer { loop.cancel(timer) }
        upstream.close()
    }
}
