import DSReactor
import DSSystem

/// The byte flow of a tunnel as a plain value: which move comes next, from what each side's
/// buffer holds and what its socket last reported, and when the tunnel is done. No system
/// call, no clock, no allocation, so the flow is unit-tested without sockets (`TunnelFlowTests`).
///
/// Backpressure: each direction reads only when its buffer is empty, so a side that does not
/// read holds at most one read's worth of the other side's bytes (and then the other side's
/// socket buffers fill, and TCP slows it down). A side that ends (its FIN, or a failed read)
/// ends the tunnel once what it sent before has gone on.
struct TunnelFlow {
    /// What the shell sees before each move.
    struct Sides: Equatable {
        /// Client bytes read and not yet written to the replica.
        var clientBuffered = false
        /// Bytes of ours for the client (the relayed 101 head) not yet written: they go before
        /// any byte of the replica's.
        var ownQueued = false
        /// Replica bytes read and not yet written to the client.
        var replicaBuffered = false
        /// The last read (or readiness edge) says the socket may have bytes.
        var clientReadable = true
        var replicaReadable = true
        /// The last write (or readiness edge) says the socket takes bytes.
        var clientWritable = true
        var replicaWritable = true
    }

    enum Move: Equatable {
        case writeToReplica
        case readClient
        /// Write our own bytes (the 101 head) to the client.
        case flushOwn
        case writeToClient
        case readReplica
        /// Nothing can move until an event comes.
        case wait
        /// A side ended and what it sent before has gone on: the tunnel is done.
        case close
    }

    private(set) var clientEnded = false
    private(set) var replicaEnded = false

    init() {}

    /// The next move: client → replica first, then replica → client, each only as far as its
    /// sockets allow.
    func next(_ sides: Sides) -> Move {
        if sides.clientBuffered {
            if sides.replicaWritable { return .writeToReplica }
        } else if !clientEnded && sides.clientReadable {
            return .readClient
        }
        if sides.ownQueued {
            if sides.clientWritable { return .flushOwn }
        } else if sides.replicaBuffered {
            if sides.clientWritable { return .writeToClient }
        } else if !replicaEnded && sides.replicaReadable {
            return .readReplica
        }
        if clientEnded && !sides.clientBuffered { return .close }
        if replicaEnded && !sides.replicaBuffered && !sides.ownQueued { return .close }
        return .wait
    }

    /// The client's stream ended (its FIN was read).
    mutating func clientEOF() { clientEnded = true }

    /// The replica's stream ended (its FIN was read, or a read failed).
    mutating func replicaEOF() { replicaEnded = true }
}

/// What one `Tunnel.step` did and needs from its client connection.
struct TunnelStep: Equatable {
    /// Bytes moved: step again.
    var progressed = false
    /// The flow wants client bytes: the connection reads its socket into its input (and reports
    /// its end with `Tunnel.clientEnded`).
    var wantsClientBytes = false
    /// The tunnel is done (or its replica side failed): the connection closes.
    var close = false
}

/// A client connection after its replica answered 101 Switching Protocols (a WebSocket, say):
/// bytes go both ways unchanged until either side closes (`TunnelFlow` decides each move; this
/// object does the replica's I/O and writes to the client through the connection's lease).
/// Loop thread only.
///
/// A tunnel in which no byte moves either way for `--idle-timeout` is closed (as nginx does
/// with its read timeout): WebSocket peers that want to stay idle longer send pings.
final class Tunnel {
    /// The timer tag of the idle deadline, for the owner's `timerFired`.
    static let timerTag = 2

    private unowned let owner: TimerTarget
    private unowned let loop: EventLoop
    private let upstream: UpstreamConnection
    private let idleTimeout: UInt64
    private var flow = TunnelFlow()
    private var ended = false
    private var lastActivity = monotonicNanoseconds()
    private var timer: TimerID?

    /// `owner` (the client connection, which also gets `upstream`'s events) is the idle timer's
    /// target: it asks `idleTimerFired` and closes when the tunnel has been idle too long.
    init(owner: TimerTarget, upstream: UpstreamConnection, loop: EventLoop, idleTimeoutNanoseconds: UInt64) {
        assert(loop.isInLoop)
        self.owner = owner
        self.upstream = upstream
        self.loop = loop
        self.idleTimeout = idleTimeoutNanoseconds
        timer = loop.schedule(afterNanoseconds: idleTimeoutNanoseconds, target: owner, tag: Self.timerTag)
    }

    /// The idle timer fired. True when the tunnel has been idle for the whole timeout (the
    /// connection closes); otherwise the timer is re-armed for the rest (one timer, re-armed
    /// lazily: activity only moves `lastActivity`).
    func idleTimerFired() -> Bool {
        timer = nil
        guard !ended else { return false }
        let idle = monotonicNanoseconds() - lastActivity
        if idle >= idleTimeout { return true }
        timer = loop.schedule(afterNanoseconds: idleTimeout - idle, target: owner, tag: Self.timerTag)
        return false
    }

    /// The client's stream ended (the connection's read returned its end).
    func clientEnded() { flow.clientEOF() }

    /// Moves what can move now, both ways, with the client's buffers and writes lent.
    func step(_ client: ClientLease) -> TunnelStep {
        var result = TunnelStep()
        guard !ended else { return result }
        // The replica's end may have been read before the tunnel began.
        if upstream.peerClosed { flow.replicaEOF() }
        var sides = TunnelFlow.Sides()
        sides.clientReadable = client.mayRead
        sides.replicaReadable = true
        while !client.closed && !upstream.closed {
            sides.clientBuffered = !client.input.isEmpty
            sides.ownQueued = !client.output.isEmpty
            sides.replicaBuffered = !upstream.input.isEmpty
            sides.clientWritable = client.mayWrite
            sides.replicaWritable = upstream.mayWrite
            sides.replicaReadable = sides.replicaReadable && upstream.mayRead
            switch flow.next(sides) {
            case .readClient:
                // The connection reads after the step; the other direction goes on meanwhile.
                result.wantsClientBytes = true
                sides.clientReadable = false
            case .writeToReplica:
                do {
                    switch try Socket.write(upstream.fd, client.input.readable) {
                    case .wouldBlock:
                        upstream.mayWrite = false
                    case .done(let n):
                        client.input.consume(n)
                        result.progressed = true
                    }
                } catch {
                    result.close = true
                    return result
                }
            case .flushOwn:
                // False: blocked (the connection's `mayWrite` is clear now) or failed (closed).
                if client.flushOutput() { result.progressed = true }
            case .writeToClient:
                switch client.writeBytesToClient(upstream.input.readable) {
                case .wrote(let n):
                    upstream.input.consume(n)
                    result.progressed = true
                case .blocked: break
                case .failed: return result
                }
            case .readReplica:
                do {
                    switch try upstream.read() {
                    case .wouldBlock: sides.replicaReadable = false
                    case .done(0): flow.replicaEOF()
                    case .done: result.progressed = true
                    }
                } catch {
                    flow.replicaEOF()
                }
            case .wait:
                if result.progressed { lastActivity = monotonicNanoseconds() }
                return result
            case .close:
                result.close = true
                return result
            }
        }
        return result
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
