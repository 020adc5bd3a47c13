import DSHTTP1
import DSReactor
import DSSystem

/// One keep-alive client connection of the load generator: at most one request in flight (no
/// pipelining, like wrk), the response head parsed by DSHTTP1's strict parser and the body framed
/// by `Framing.response`. Loop thread only; the owning `LoadWorker` decides what to send.
final class LoadConnection: EventHandler {
    enum State {
        case connecting
        case idle
        case busy
        case closed
    }

    private(set) var state: State = .closed
    private var fd: Int32 = -1
    private unowned let worker: LoadWorker
    private let input = ByteBuffer(capacity: 16 * 1024)
    private let output = ByteBuffer(capacity: 1024)
    private var parseFrom = 0
    private var head: ResponseHead?
    private var framing: BodyFraming = .none
    private var bodyRemaining: UInt64 = 0
    private var chunked = ChunkedScanner()
    /// The first bytes of the body, enough to find `Hello from Server: X`.
    private var bodyStart: [UInt8] = []
    private static let bodyStartLimit = 512
    private static let readChunk = 16 * 1024
    /// When the request in flight was meant to be sent (latency starts here) and when it was.
    private(set) var intendedAt: UInt64 = 0
    private(set) var sentAt: UInt64 = 0
    private(set) var connectStartedAt: UInt64 = 0
    /// Bumped on every close: a read loop stops when the connection it was reading is gone,
    /// even if a reconnect already reused the same descriptor number.
    private var epoch = 0

    init(worker: LoadWorker) {
        self.worker = worker
        bodyStart.reserveCapacity(Self.bodyStartLimit)
    }

    // MARK: driven by the worker

    func connect() {
        assert(worker.loop.isInLoop)
        precondition(state == .closed)
        connectStartedAt = Clock.now()
        do {
            let (fd, connected) = try Socket.connect(to: worker.plan.target.address)
            // The loop owns the socket from here (and closes it if registering fails).
            self.fd = try worker.loop.register(FileDescriptor(adopting: fd), handler: self)
            state = .connecting
            if connected { becameConnected() }
        } catch {
            fd = -1
            state = .closed
            worker.connectFailed(self)
        }
    }

    /// Sends one request whose id bytes are written between the template's prefix and suffix.
    func send(prefix: [UInt8], id: UInt64?, suffix: [UInt8], intendedAt: UInt64) {
        assert(worker.loop.isInLoop)
        precondition(state == .idle)
        self.intendedAt = intendedAt
        output.append(prefix)
        if let id { Self.appendDecimal(id, to: output) }
        output.append(suffix)
        state = .busy
        sentAt = Clock.now()
        flush()
    }

    /// The request in flight took too long: it fails as `timeout` and the connection is replaced.
    func timeOut() {
        fail("timeout")
    }

    /// Abandons the connection (after a timeout, or at the end of the run).
    func close() {
        assert(worker.loop.isInLoop)
        guard state != .closed else { return }
        worker.loop.close(fd, of: self)
        fd = -1
        epoch += 1
        state = .closed
        input.clear()
        output.clear()
        head = nil
        parseFrom = 0
    }

    // MARK: events

    func handle(_ events: IOEvents) {
        if state == .connecting {
            guard events.contains(.writable) || events.contains(.error) || events.contains(.hangup) else { return }
            let result = Socket.connectResult(fd)
            if result != 0 {
                close()
                worker.connectFailed(self)
                return
            }
            becameConnected()
            return
        }
        if state == .busy && !output.isEmpty { flush() }
        if state != .closed { readAvailable() }
    }

    private func becameConnected() {
        state = .idle
        worker.connectionIdle(self)
    }

    private func flush() {
        while !output.isEmpty {
            do {
                switch try output.write(to: fd) {
                case .wouldBlock: return
                case .done: continue
                }
            } catch {
                fail("closed")
                return
            }
        }
    }

    private func readAvailable() {
        let reading = epoch
        while epoch == reading && (state == .busy || state == .idle) {
            let result: IOResult<Int>
            do { result = try input.read(from: fd, chunk: Self.readChunk) } catch { fail("closed"); return }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                if state == .busy, head != nil, framing == .untilClose {
                    finish(keepAlive: false)
                } else if state == .busy {
                    fail("closed")
                } else {
                    // The server closed an idle keep-alive connection: reconnect, no request lost.
                    close()
                    worker.connectionLost(self)
                }
                return
            case .done(let n):
                if state != .busy {
                    // Bytes nobody asked for: the connection is out of step with the server.
                    fail("bad_response")
                    return
                }
                process()
                // A short read drained the socket: with edge-triggered epoll, bytes that arrive
                // later raise a new edge, so the read that would only say EAGAIN is skipped
                // (nginx's ngx_unix_recv does the same). It saves one syscall per response.
                if n < Self.readChunk { return }
            }
        }
    }

    private func process() {
        if head == nil {
            switch worker.parser.parseResponse(input.readable, from: parseFrom) {
            case .incomplete(let resume):
                parseFrom = resume
                return
            case .failed:
                fail("bad_response")
                return
            case .complete(let parsed):
                parseFrom = 0
                switch Framing.response(parsed, requestMethod: "GET") {
                case .failure: fail("bad_response"); return
                case .success(let f): framing = f
                }
                head = parsed
                input.consume(parsed.length)
                bodyStart.removeAll(keepingCapacity: true)
                switch framing {
                case .contentLength(let n): bodyRemaining = n
                case .chunked: chunked = ChunkedScanner()
                default: break
                }
            }
        }
        switch framing {
        case .none:
            finish(keepAlive: head!.keepsConnection)
        case .contentLength:
            let take = Int(min(UInt64(input.readableCount), bodyRemaining))
            keepBodyStart(take)
            input.consume(take)
            bodyRemaining -= UInt64(take)
            if bodyRemaining == 0 { finish(keepAlive: head!.keepsConnection) }
        case .chunked:
            guard !input.isEmpty else { return }
            do {
                switch try chunked.scan(input.readable) {
                case .needMore:
                    keepBodyStart(input.readableCount)
                    input.consume(input.readableCount)
                case .complete(let n):
                    keepBodyStart(n)
                    input.consume(n)
                    finish(keepAlive: head!.keepsConnection)
                }
            } catch {
                fail("bad_response")
            }
        case .untilClose:
            keepBodyStart(input.readableCount)
            input.consume(input.readableCount)
        }
    }

    private func keepBodyStart(_ count: Int) {
        let room = Self.bodyStartLimit - bodyStart.count
        guard room > 0, count > 0 else { return }
        bodyStart.append(contentsOf: UnsafeRawBufferPointer(rebasing: input.readable[0..<min(room, count)]))
    }

    private func finish(keepAlive: Bool) {
        let status = head!.status
        head = nil
        let leftover = !input.isEmpty
        bodyStart.withUnsafeBytes { body in
            worker.completed(self, status: status, replica: Self.replicaName(in: body))
        }
        if !keepAlive || leftover {
            // A response that ends the connection, or bytes past the answer we asked for.
            close()
            worker.connectionLost(self)
        } else {
            state = .idle
            worker.connectionIdle(self)
        }
    }

    private func fail(_ kind: String) {
        let wasBusy = state == .busy
        close()
        worker.failed(self, kind: kind, hadRequest: wasBusy)
    }

    // MARK: helpers
    // The two helpers below read and write raw bytes: `body` is only read within its count, and
    // `appendDecimal` writes into a 20-byte tuple (UInt64.max has 20 digits) it owns.

    private static let marker: [UInt8] = Array("Hello from Server: ".utf8)

    /// The `X` of `Hello from Server: X` (up to a quote, a space or a control byte), or nil.
    static func replicaName(in body: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let m = marker.count
        guard body.count > m else { return nil }
        var i = 0
        while i + m <= body.count {
            if body[i] == marker[0] {
                var j = 1
                while j < m && body[i + j] == marker[j] { j += 1 }
                if j == m {
                    let start = i + m
                    var end = start
                    while end < body.count && body[end] > 32 && body[end] != 34 && body[end] != 92 { end += 1 }
                    return end > start ? UnsafeRawBufferPointer(rebasing: body[start..<end]) : nil
                }
            }
            i += 1
        }
        return nil
    }

    private static func appendDecimal(_ value: UInt64, to buffer: ByteBuffer) {
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var v = value
            var i = raw.count
            repeat {
                i -= 1
                raw[i] = UInt8(truncatingIfNeeded: v % 10) + 48
                v /= 10
            } while v > 0
            buffer.append(UnsafeRawBufferPointer(rebasing: raw[i...]))
        }
    }
}
