import DSHTTP1
import DSReactor
import DSSystem
import DSTLS

/// A worker's TLS listener: accepts, runs each handshake without blocking on the worker's loop,
/// and hands a connection whose handshake is done to a `ClientConnection`, which serves it as
/// any other (the same machine; only its reads and writes go through TLS). Loop thread only.
///
/// Connections are spread over the workers as plain ones are (`AcceptBalance`, a group of its
/// own for the TLS listener): a connection counts for its worker from the accept, handshake
/// included, until it closes.
final class TLSAcceptor {
    /// Accepting, and this worker's count in the group that shares the TLS listening socket.
    private let listener: BalancedListener
    private let handshakes: TLSHandshakes

    init(worker: Worker, fd: Int32) throws {
        // The listener's closure holds the handshakes, which exist before it, rather than this
        // acceptor, which cannot be captured before its `listener` is set.
        let handshakes = TLSHandshakes(worker: worker)
        self.handshakes = handshakes
        listener = try BalancedListener(fd: fd, loop: worker.loop, worker: worker.index) {
            [unowned handshakes] listener, client, peer in
            handshakes.start(client, peer: peer, countedIn: listener)
        }
    }

    /// Stops accepting and drops the handshakes in progress (graceful stop, shutdown).
    func stop() {
        listener.stop()
        handshakes.dropAll()
    }
}

/// A worker's TLS handshakes in progress, kept oldest first. Each must finish within
/// `--tls-handshake-timeout` of its accept; beyond `tlsMaxHandshakes` at a time, a new one
/// drops the oldest. So clients that open connections and never finish their handshake cost a
/// bounded number of descriptors and never hold up established connections, and a client that
/// does handshake gets its turn at once. Loop thread only.
final class TLSHandshakes: TimerTarget {
    private unowned let worker: Worker
    /// Handshakes in progress, oldest first (a list through the handshakes themselves).
    private var oldest: TLSHandshake?
    private var newest: TLSHandshake?
    private(set) var inProgress = 0
    private var timer: TimerID?
    private var timerAt: UInt64 = 0
    /// Where the plain HTTP sent to this port is read and dropped, one buffer for all the
    /// connections: it is only written during `discard`, on this loop, and never read.
    private var scratch = [UInt8](repeating: 0, count: 4096)

    init(worker: Worker) {
        self.worker = worker
    }

    /// Reads bytes of `fd` only to drop them (`TLSHandshake.drainPlain`).
    func discard(from fd: Int32) throws -> IOResult<Int> {
        try scratch.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
    }

    /// Drops the handshakes in progress (the listener stopped accepting).
    func dropAll() {
        while let handshake = oldest { drop(handshake) }
        if let timer { worker.loop.cancel(timer) }
        timer = nil
    }

    /// Begins the handshake of a connection accepted or handed over, counted in `listener`.
    func start(_ fd: consuming FileDescriptor, peer: SocketAddress?, countedIn listener: BalancedListener) {
        guard !worker.draining, listener.isListening, let context = worker.config.tls,
            let session = TLSSession(context: context, fd: fd.rawValue)
        else {
            fd.close()
            listener.connectionEnded()
            return
        }
        // `while`: a reload may have lowered the cap below what is in progress.
        while inProgress >= max(1, worker.config.tlsMaxHandshakes), let victim = oldest { drop(victim) }
        let deadline = monotonicNanoseconds() + nanoseconds(of: worker.config.tlsHandshakeTimeout)
        let handshake = TLSHandshake(
            fd: fd.rawValue, peer: peer, session: session, deadline: deadline, listener: listener, handshakes: self)
        do {
            // The loop owns the descriptor from here (it closes it if this fails).
            try worker.loop.register(fd, handler: handshake)
        } catch {
            listener.connectionEnded()
            return
        }
        append(handshake)
        armTimer(for: deadline)
        handshake.step()
    }

    /// The handshake is done: the connection is served from now on.
    func established(_ handshake: TLSHandshake) {
        unlink(handshake)
        let connection = ClientConnection(fd: handshake.fd, peer: handshake.peer, worker: worker, tls: handshake.session)
        // Cannot fail: a handshake steps only while it is listed (`handle` checks, `start` steps
        // it right after registering it), and the one way it gives up its registration is
        // `drop`, which unlists it first. Were it to fail, the descriptor would be another
        // handler's (or a reused number), so closing it here would be the bug; the SSL goes
        // with the last reference to the session either way.
        let moved = worker.loop.transfer(handshake.fd, from: handshake, to: connection)
        precondition(moved, "a listed TLS handshake holds its descriptor's registration")
        worker.serve(connection, countedIn: handshake.listener)
    }

    /// The handshake failed, timed out or was dropped for a newer one: the connection closes
    /// and no longer counts for this worker.
    func drop(_ handshake: TLSHandshake) {
        unlink(handshake)
        worker.loop.close(handshake.fd, of: handshake)
        handshake.listener.connectionEnded()
    }

    // MARK: deadlines

    private func armTimer(for deadline: UInt64) {
        if timer != nil && timerAt <= deadline { return }
        if let timer { worker.loop.cancel(timer) }
        timerAt = deadline
        let now = monotonicNanoseconds()
        timer = worker.loop.schedule(afterNanoseconds: deadline > now ? deadline - now : 0, target: self)
    }

    func timerFired(_ tag: Int) {
        timer = nil
        let now = monotonicNanoseconds()
        // Deadlines are set at the accept from one timeout, so the oldest expires first (a
        // reload that shortens the timeout only makes later ones earlier: checked below too).
        var next: UInt64 = .max
        var cursor = oldest
        while let handshake = cursor {
            cursor = handshake.newer
            if handshake.deadline <= now {
                drop(handshake)
            } else {
                next = min(next, handshake.deadline)
            }
        }
        if next != .max { armTimer(for: next) }
    }

    // MARK: the list

    private func append(_ handshake: TLSHandshake) {
        handshake.older = newest
        newest?.newer = handshake
        newest = handshake
        if oldest == nil { oldest = handshake }
        handshake.listed = true
        inProgress += 1
    }

    private func unlink(_ handshake: TLSHandshake) {
        guard handshake.listed else { return }
        handshake.listed = false
        handshake.older?.newer = handshake.newer
        handshake.newer?.older = handshake.older
        if oldest === handshake { oldest = handshake.newer }
        if newest === handshake { newest = handshake.older }
        handshake.older = nil
        handshake.newer = nil
        inProgress -= 1
    }
}

/// One TLS handshake in progress on a worker's loop. Both readiness edges are registered
/// (edge-triggered), so whichever of WANT_READ / WANT_WRITE OpenSSL reported, the event it
/// waits for runs `step` again.
final class TLSHandshake: EventHandler {
    let fd: Int32
    let peer: SocketAddress?
    let session: TLSSession
    let deadline: UInt64
    /// The listener whose balance the connection counts in.
    let listener: BalancedListener
    private unowned let handshakes: TLSHandshakes
    fileprivate weak var older: TLSHandshake?
    fileprivate var newer: TLSHandshake?
    fileprivate var listed = false

    init(
        fd: Int32, peer: SocketAddress?, session: TLSSession, deadline: UInt64, listener: BalancedListener,
        handshakes: TLSHandshakes
    ) {
        self.fd = fd
        self.peer = peer
        self.session = session
        self.deadline = deadline
        self.listener = listener
        self.handshakes = handshakes
    }

    /// What the first byte the client sent said: not seen yet, a TLS record, or plain HTTP
    /// (answered with 400, then drained until the client closes or the deadline).
    private var first = FirstByte.unseen

    private enum FirstByte { case unseen, tls, plainHTTP }

    /// The answer to plain HTTP on the TLS port, as nginx gives one: the person who typed
    /// http:// for an https port reads why, instead of a reset connection.
    static let plainHTTPAnswer = ResponseWriter.failure(
        status: .badRequest, message: "A plain HTTP request was sent to the HTTPS port: use https://", close: true)

    func handle(_ events: IOEvents) {
        guard listed else { return }
        if events.contains(.error) || events.contains(.hangup) {
            handshakes.drop(self)
            return
        }
        step()
    }

    func step() {
        if first == .unseen {
            first = classify()
            if first == .unseen { return }
        }
        if first == .plainHTTP {
            drainPlain()
            return
        }
        switch session.handshake() {
        case .done: handshakes.established(self)
        case .wantRead, .wantWrite: return
        case .closed, .failed: handshakes.drop(self)
        }
    }

    /// Looks at the first byte without taking it. A TLS 1.2/1.3 client starts with a handshake
    /// record (0x16); an old SSLv2-framed hello (high bit set) is left to OpenSSL to refuse.
    /// An uppercase letter is an HTTP method: OpenSSL would only know after five bytes, and
    /// not at all for most methods, so a plain client that sends less would wait for the
    /// handshake deadline. Anything else is not TLS: closed at once.
    private func classify() -> FirstByte {
        let peeked: IOResult<UInt8?>
        do { peeked = try Socket.peekByte(fd) } catch { peeked = .done(nil) }
        guard case .done(let first) = peeked else { return .unseen }
        switch first {
        case (0x16)?, (0x80...0xFF)?: return .tls
        case (UInt8(ascii: "A")...UInt8(ascii: "Z"))?:
            Self.plainHTTPAnswer.withUnsafeBytes { answer in
                // Small enough for an empty socket buffer; a client that fills its own
                // receive window before reading a byte only loses the explanation.
                _ = try? Socket.write(fd, answer)
            }
            Socket.shutdownWrite(fd)
            drainPlain()
            return .plainHTTP
        default:
            // Not TLS, the end of the stream, or a socket error.
            handshakes.drop(self)
            return .unseen
        }
    }

    /// Reads and discards the plain request until the client closes: closing with unread
    /// bytes would reset the connection, and the reset can destroy the answer before the
    /// client reads it. Bounded by the handshake deadline and the cap, as a handshake is.
    private func drainPlain() {
        while listed {
            do {
                switch try handshakes.discard(from: fd) {
                case .wouldBlock: return
                case .done(0): handshakes.drop(self)
                case .done: continue
                }
            } catch {
                handshakes.drop(self)
            }
        }
    }
}
