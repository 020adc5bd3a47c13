import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// One connection of an `HTTPClient`: connects (TCP or unix), sends a request, decodes its
/// response with `HTTPResponseDecoder`, and, when both sides keep it, goes back to the client as
/// idle for the next request. One exchange at a time. Nothing blocks: the loop says when the
/// socket is ready, and timers bound the connect and the exchange.
///
/// Loop thread only. The loop's registration (and a pending timer) keeps the connection alive
/// while it works; every exchange ends in `complete` or `fail` (one callback) or `cancel` (none).
final class HTTPClientConnection: EventHandler, TimerTarget {
    enum Mode {
        case whole((Result<HTTPClientResponse, HTTPClientError>) -> Void)
        case stream(
            onHead: (HTTPClientResponseHead) -> Void, onBody: ([UInt8]) -> Void, onEnd: (Result<Void, HTTPClientError>) -> Void)
    }

    private struct Exchange {
        let id: UInt64
        let method: String
        let keepAlive: Bool
        let timeout: UInt64
        let mode: Mode
    }

    private enum Phase { case fresh, connecting, busy, idle, closed }

    private enum Tag: Int {
        /// The connect timeout (or the exchange's deadline while connecting, without one).
        case connect
        /// The exchange's deadline: the whole response, or a stream's head.
        case deadline
        /// A unix socket's full backlog: try connecting again.
        case retryConnect
        /// A failure found while starting, delivered on a later turn (never from inside `send`).
        case deferredFailure
    }

    private let loop: EventLoop
    private let address: HTTPClientAddress
    private let options: HTTPClientOptions
    /// The client that pools this connection once idle; gone with it.
    weak var pool: HTTPClient?

    private var phase = Phase.fresh
    private var fd: Int32 = -1
    private var exchange: Exchange?
    private var decoder = HTTPResponseDecoder(requestMethod: "GET")
    private var body: [UInt8] = []
    private var output: [UInt8] = []
    private var written = 0
    private let input = ByteBuffer(capacity: 16 * 1024)
    private var connectTimer: TimerID?
    private var deadlineTimer: TimerID?
    private var deferredFailure: HTTPClientError?
    /// Inside `start`: a failure now (a refused connect, a peer that is gone) is delivered on a
    /// later turn, so no caller is called back from inside its own `send`.
    private var starting = false
    private var connectDeadline: UInt64 = 0

    init(loop: EventLoop, address: HTTPClientAddress, options: HTTPClientOptions) {
        self.loop = loop
        self.address = address
        self.options = options
    }

    /// Whether an idle connection can take another request (the peer has not closed it).
    var isReusable: Bool { phase == .idle && !Socket.idleConnectionIsDead(fd) }

    func start(id: UInt64, request: HTTPClientRequest, timeout: UInt64, mode: Mode) {
        assert(loop.isInLoop)
        precondition(phase == .fresh || phase == .idle, "one exchange at a time")
        exchange = Exchange(id: id, method: request.method, keepAlive: request.keepAlive, timeout: timeout, mode: mode)
        starting = true
        defer { starting = false }
        decoder = HTTPResponseDecoder(requestMethod: request.method, limits: options.limits)
        body = []
        written = 0
        do { output = try request.serialized() } catch {
            return fail(error)
        }
        if phase == .idle {
            phase = .busy
            deadlineTimer = loop.schedule(afterNanoseconds: timeout, target: self, tag: Tag.deadline.rawValue)
            return flush()
        }
        phase = .connecting
        let connectTimeout = options.connectTimeout.map { min($0.clientNanoseconds, timeout) } ?? timeout
        connectDeadline = monotonicNanoseconds() &+ connectTimeout
        connectTimer = loop.schedule(afterNanoseconds: connectTimeout, target: self, tag: Tag.connect.rawValue)
        attemptConnect()
    }

    /// Ends the exchange `id` without calling back, and closes the connection.
    func cancel(id: UInt64) {
        assert(loop.isInLoop)
        guard exchange?.id == id else { return }
        exchange = nil
        close()
    }

    func timerFired(_ tag: Int) {
        switch Tag(rawValue: tag) {
        case .connect:
            connectTimer = nil
            fail(.connectTimedOut)
        case .deadline:
            deadlineTimer = nil
            fail(.timedOut(headReceived: decoder.head != nil))
        case .retryConnect:
            attemptConnect()
        case .deferredFailure:
            if let error = deferredFailure {
                deferredFailure = nil
                fail(error)
            }
        case nil:
            break
        }
    }

    // MARK: connecting

    private func attemptConnect() {
        guard phase == .connecting, exchange != nil else { return }
        do {
            switch address {
            case .tcp(let socketAddress):
                let (fd, connected) = try Socket.connect(to: socketAddress)
                try adopt(fd)
                if connected { becameConnected() }
            case .unix(let path):
                switch try UnixSocket.connect(path: path) {
                case .connected(let fd):
                    try adopt(fd)
                    becameConnected()
                case .inProgress(let fd):
                    try adopt(fd)
                case .busy:
                    // The backlog is full (unix sockets refuse rather than queue): retry until the connect timer fires.
                    if monotonicNanoseconds() < connectDeadline {
                        loop.schedule(afterNanoseconds: 10_000_000, target: self, tag: Tag.retryConnect.rawValue)
                    }
                }
            }
        } catch {
            fail(.connectFailed(Self.syscallError(error, "connect(\(address))")))
        }
    }

    private func adopt(_ fd: Int32) throws {
        // The loop owns the socket from here: `close` unregisters and closes it in one step, and a
        // failed registration has already closed it.
        do { self.fd = try loop.register(FileDescriptor(adopting: fd), handler: self) } catch {
            self.fd = -1
            throw error
        }
    }

    private func becameConnected() {
        phase = .busy
        if let connectTimer {
            loop.cancel(connectTimer)
            self.connectTimer = nil
        }
        if let exchange {
            deadlineTimer = loop.schedule(afterNanoseconds: remainingTimeout(exchange), target: self, tag: Tag.deadline.rawValue)
        }
        flush()
    }

    /// With a connect timeout of its own, the exchange's timeout starts once connected; without,
    /// one deadline covers both, and what connecting took is spent.
    private func remainingTimeout(_ exchange: Exchange) -> UInt64 {
        if options.connectTimeout != nil { return exchange.timeout }
        let start = connectDeadline &- exchange.timeout
        let elapsed = monotonicNanoseconds() &- start
        return elapsed >= exchange.timeout ? 0 : exchange.timeout - elapsed
    }

    // MARK: I/O

    func handle(_ events: IOEvents) {
        switch phase {
        case .connecting:
            // SO_ERROR reads 0 while the connect is still pending: only these say it ended.
            guard events.contains(.writable) || events.contains(.error) || events.contains(.hangup) else { return }
            let err = Socket.connectResult(fd)
            guard err == 0 else { return fail(.connectFailed(SyscallError(errno: err, function: "connect(\(address))"))) }
            becameConnected()
            guard phase == .busy else { return }
            readAvailable(events)
        case .busy:
            if written < output.count { flush() }
            guard phase == .busy else { return }
            readAvailable(events)
        case .idle:
            // An idle connection hears only of its end (the server timed it out) or of bytes
            // nobody asked for: either way it can carry no further request.
            if Socket.idleConnectionIsDead(fd) { close() }
        case .fresh, .closed:
            break
        }
    }

    private func flush() {
        while phase == .busy && written < output.count {
            let result: IOResult<Int>
            do {
                result = try output.withUnsafeBytes { raw in
                    try Socket.write(fd, UnsafeRawBufferPointer(rebasing: raw[written...]))
                }
            } catch {
                return fail(.sendFailed(Self.syscallError(error, "send")))
            }
            switch result {
            case .done(let n): written += n
            case .wouldBlock: return
            }
        }
        if written == output.count { output = []; written = 0 }
    }

    private func readAvailable(_ events: IOEvents) {
        // A short read emptied the socket: the next byte, or the peer's FIN, raises a new edge,
        // so another read would only say EAGAIN. Unless the FIN is already known (then the
        // next read is the end of input, and no new edge would come for it).
        let finKnown = events.contains(.readHangup) || events.contains(.hangup) || events.contains(.error)
        while phase == .busy {
            let result: IOResult<Int>
            do { result = try input.read(from: fd, chunk: 16 * 1024) } catch {
                return fail(.receiveFailed(Self.syscallError(error, "read")))
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                do { try decoder.endOfInput() } catch { return fail(error) }
                return complete(peerClosed: true)
            case .done:
                decodeInput()
                if input.lastReadWasShort && !finKnown { return }
            }
        }
    }

    private func decodeInput() {
        guard let exchange else { return }
        let hadHead = decoder.head != nil
        let used: Int
        do { used = try decoder.decode(input.readable, body: &body) } catch { return fail(error) }
        input.consume(used)
        if !hadHead, let head = decoder.head, case .stream(let onHead, _, _) = exchange.mode {
            // A stream's deadline covers its head; the body then runs as long as the server sends it.
            if let deadlineTimer {
                loop.cancel(deadlineTimer)
                self.deadlineTimer = nil
            }
            onHead(head)
            guard self.exchange?.id == exchange.id else { return }
        }
        switch exchange.mode {
        case .stream(_, let onBody, _):
            if !body.isEmpty {
                let chunk = body
                body = []
                onBody(chunk)
                guard self.exchange?.id == exchange.id else { return }
            }
        case .whole:
            if body.count > options.maxBodyBytes { return fail(.bodyTooLarge(limit: options.maxBodyBytes)) }
        }
        if decoder.isComplete { complete(peerClosed: false) }
    }

    /// The socket calls throw `SyscallError` only; anything else is kept as text, never lost.
    private static func syscallError(_ error: any Error, _ function: String) -> SyscallError {
        error as? SyscallError ?? SyscallError(errno: EIO, function: "\(function): \(error)")
    }

    // MARK: ending

    private func complete(peerClosed: Bool) {
        guard let exchange, let head = decoder.head else { return }
        self.exchange = nil
        cancelTimers()
        // Bytes past the response were not asked for, and a request the server answered before
        // reading all of it leaves the rest unsent: either way the next message's start is in doubt.
        if exchange.keepAlive && decoder.keepsConnection && !peerClosed && input.isEmpty && output.isEmpty
            && head.framing != .untilClose,
            let pool, pool.takeBack(self)
        {
            phase = .idle
        } else {
            close()
        }
        switch exchange.mode {
        case .whole(let completion): completion(.success(HTTPClientResponse(head: head, body: body)))
        case .stream(_, _, let onEnd): onEnd(.success(()))
        }
        body = []
    }

    private func fail(_ error: HTTPClientError) {
        guard let exchange else { return }
        if starting {
            // The exchange stays until the failure is delivered (or cancelled); the socket goes now.
            close()
            deferredFailure = error
            loop.schedule(afterNanoseconds: 0, target: self, tag: Tag.deferredFailure.rawValue)
            return
        }
        self.exchange = nil
        close()
        switch exchange.mode {
        case .whole(let completion): completion(.failure(error))
        case .stream(_, _, let onEnd): onEnd(.failure(error))
        }
    }

    private func cancelTimers() {
        if let connectTimer { loop.cancel(connectTimer) }
        if let deadlineTimer { loop.cancel(deadlineTimer) }
        connectTimer = nil
        deadlineTimer = nil
    }

    /// Closes the socket; the connection is done for good.
    func close() {
        assert(loop.isInLoop)
        cancelTimers()
        phase = .closed
        if fd >= 0 {
            loop.close(fd, of: self)
            fd = -1
        }
        input.clear()
        pool?.forget(self)
    }
}
