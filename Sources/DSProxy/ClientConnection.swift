import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import DSTLS

#if canImport(Glibc)
import Glibc
#endif

/// One client connection on one worker: reads request heads, answers admin requests through the
/// supervisor, and proxies everything else to the replica the snapshot picks. Loop thread only.
///
/// Requests on a connection are handled one at a time; pipelined requests wait in `input` and
/// are answered in order once the current exchange ends.
final class ClientConnection: EventHandler, TimerTarget, PipelinedConnection, ExchangeOwner {
    /// The connection's number for system calls; the descriptor is the loop's (registered by
    /// the worker), closed by `close()`.
    let fd: Int32
    let peer: SocketAddress?
    /// Strong: a `let` of the connection's own, which every use borrows without a reference
    /// count (`unowned(unsafe)` needed a retain and a release around each use that spans a call,
    /// a checked `unowned` an atomic pair per use). The cycle with the worker's table of
    /// connections ends where every connection ends, in `close` (`worker.forget`); the worker
    /// closes all of them in `shutdown`.
    private let worker: Worker
    /// Request bytes as they arrived; lent to the exchange (and the tunnel) for each step
    /// (`ClientLease`), which read the request's head and body from here.
    let input: ByteBuffer
    /// Our own bytes for the client (error answers, admin answers, and, queued by the exchange
    /// through the lease, a proxied response's head as rewritten and 100 Continue); they go out
    /// before any body byte relayed after them.
    let output: ByteBuffer
    /// The connection's lifecycle: state, client deadline, pipeline slot, drain (`ClientMachine`).
    /// Every change of it goes through `handle(_:)` below.
    private var machine = ClientMachine()
    private var parseFrom = 0
    /// The client's socket may have bytes: cleared by a read that would block (or came up
    /// short), set by the next readable edge. Only this object reads the socket.
    private(set) var mayRead = true
    /// The client's socket takes bytes: cleared by a write that would block, set by the next
    /// writable edge. Only this object writes it (`writeToClient`).
    private(set) var mayWrite = true
    private var readEOF = false
    /// The client's FIN has been reported (EPOLLRDHUP).
    private var peerHalfClosed = false
    private(set) var closed = false
    /// The TLS stream over `fd` when the client came through the TLS listener: every read and
    /// write to the client goes through it.
    let tls: ClientTLS?

    /// Whether body bytes may be spliced to and from the client's socket (not through TLS
    /// unless the kernel does the records).
    var canSplice: Bool { tls?.canSplice ?? true }

    /// The fields a proxy adds to every request it forwards, and the end of the head, as the
    /// last request needed them (`ForwardedFieldForm`); built at the first request.
    private var forwardedForm = ForwardedFieldForm()

    func forwardedFields(upgrading: Bool, http10: Bool, proto: Bool) -> [UInt8] {
        let kind = ForwardedFieldForm.Kind(upgrading: upgrading, http10: http10, proto: proto)
        if forwardedForm.kind != kind { forwardedForm.build(kind, peer: peer, https: tls != nil) }
        return forwardedForm.bytes
    }

    /// The client address for the `client-ip` key source, kept in the forwarded fields' form
    /// (built for a plain request if no request built it yet).
    private var clientKey: ArraySlice<UInt8> {
        if !forwardedForm.isBuilt {
            forwardedForm.build(
                ForwardedFieldForm.Kind(upgrading: false, http10: false, proto: true), peer: peer, https: tls != nil)
        }
        return forwardedForm.clientKey
    }

    /// Whether the client's X-Forwarded-For and X-Forwarded-Proto go on (its address appended):
    /// only from a proxy in `--trusted-proxies`. Anyone else could put any address first in
    /// the list a replica reads.
    func trustsForwardedFields(of head: RequestHeadInfo) -> Bool {
        guard head.forwarded.any, let peer else { return false }
        return worker.config.trustedProxies.contains { $0.contains(peer) }
    }

    init(fd: Int32, peer: SocketAddress?, worker: Worker, tls: TLSSession? = nil) {
        assert(worker.loop.isInLoop)
        self.fd = fd
        self.peer = peer
        self.worker = worker
        self.tls = tls.map(ClientTLS.init)
        // Storage from the worker's pool, given back whenever the connection waits with nothing
        // buffered: an idle keep-alive connection holds no buffer.
        input = ByteBuffer(pool: worker.bufferPool)
        output = ByteBuffer(pool: worker.bufferPool)
    }

    // MARK: events

    func handle(_ events: IOEvents) {
        if events.contains(.error) || events.contains(.hangup) {
            close()
            return
        }
        if events.contains(.readable) || events.contains(.readHangup) { mayRead = true }
        if events.contains(.readHangup) { peerHalfClosed = true }
        if events.contains(.writable) { mayWrite = true }
        tls?.wake(events, mayRead: &mayRead, mayWrite: &mayWrite)
        drive()
    }

    /// The exchange with the replica in progress (state == .proxying).
    private(set) var exchange: UpstreamExchange?
    /// The last exchange object, kept for the next request once it has ended, until the
    /// connection waits with nothing buffered in a crowd (`Worker.crowded`) or closes: then it
    /// goes to the worker's shelf.
    private var spareExchange: UpstreamExchange?
    /// The connection after an upgrade (state == .tunneling).
    private var tunnel: Tunnel?
    /// The streamed admin answer being written (state == .streaming).
    var sink: StreamSink?

    /// Makes all the progress possible now, then returns to wait for the next event.
    func drive() {
        var progressed = true
        while progressed && !closed {
            let before = machine.transitions
            switch machine.state {
            case .readingHead: progressed = stepReadHead()
            case .readingAdminBody(let length): progressed = stepAdminBody(length)
            case .awaitingAdmin: progressed = flushOutput() && false
            case .proxying: progressed = stepExchange()
            case .tunneling: progressed = stepTunnel()
            case .streaming: progressed = stepStream()
            case .closing:
                if flushOutput() { close() }
                progressed = false
            case .closed:
                progressed = false
            }
            if machine.transitions != before { progressed = true }
        }
        if machine.holdsSlot && !mayWrite { perform(machine.handle(.writeBlocked)) }
    }

    /// Feeds `event` to the machine and performs what it asks for.
    @inline(__always)
    private func handle(_ event: ClientMachine.Event) {
        perform(machine.handle(event))
    }

    /// The I/O side of the machine's actions. (Closing, refusing and flushing are done by the
    /// callers that know what to write first.)
    @inline(__always)
    private func perform(_ actions: ClientMachine.Actions) {
        if actions.flags.isEmpty && actions.arm == nil && actions.refuse == nil { return }
        if actions.contains(.releaseSlot) { worker.pipeline.slotReleased() }
        if actions.contains(.queueForTurn) { worker.pipeline.hold(self) }
        if actions.contains(.releaseInput) {
            // Waiting for a request with nothing buffered: an idle connection holds no buffer,
            // and in a crowd no exchange.
            input.releaseStorageIfEmpty()
            if worker.crowded { shelveSpareExchange() }
        }
        if actions.contains(.clearInput) { input.clear() }
        if let wait = actions.arm { armClientDeadline(for: wait) }
    }

    // MARK: reading requests

    enum ReadOutcome { case data, wouldBlock, eof }

    func readClient() -> ReadOutcome {
        let outcome: ReadOutcome
        let drained: Bool
        if let tls {
            outcome = readFromClient { try tls.read(into: input) }
            drained = outcome == .data && tls.drainedSocket
        } else {
            outcome = readFromClient { try input.read(from: fd) }
            drained = outcome == .data && input.lastReadWasShort
        }
        // A short read emptied the socket: the next bytes come with a new edge, so skip the read
        // that would only return EAGAIN. Not
        // after RDHUP: the end of the stream raises no further edge, so read on until it shows.
        if drained, !peerHalfClosed { mayRead = false }
        return outcome
    }

    /// Like `readClient`, but moves the bytes into `pipe` (a body being spliced) instead of `input`.
    func spliceIn(to pipe: SplicePipe, limit: Int) -> ReadOutcome {
        readFromClient { try pipe.fill(from: fd, limit: limit) }
    }

    /// One read from the client socket by `read`, and what it means for the connection: EAGAIN
    /// ends the readiness edge, 0 bytes or an error is the end of the client's stream. (The
    /// closure does not escape: nothing is allocated per read.)
    @inline(__always)
    private func readFromClient(_ read: () throws -> IOResult<Int>) -> ReadOutcome {
        guard mayRead, !readEOF else { return readEOF ? .eof : .wouldBlock }
        do {
            switch try read() {
            case .wouldBlock:
                mayRead = false
                return .wouldBlock
            case .done(0):
                readEOF = true
                return .eof
            case .done:
                return .data
            }
        } catch {
            readEOF = true
            return .eof
        }
    }

    private func stepReadHead() -> Bool {
        if !flushOutput() { return false }
        let actions = machine.handle(.headWanted(buffered: !input.isEmpty, pipelineOn: worker.pipeline.isOn))
        guard actions.contains(.readHead) else {
            perform(actions)
            return false
        }
        if !input.isEmpty {
            // Byte ranges and facts only: no String, no array (no allocation per request).
            var head = RequestHeadInfo()
            switch worker.parser.parseRequestInfo(input.readable, from: parseFrom, into: &head) {
            case .complete:
                parseFrom = 0
                begin(head)
                return true
            case .failed(let error):
                refuse(.badRequest(error), close: true)
                return true
            case .incomplete(let resume):
                parseFrom = resume
            }
        }
        switch readClient() {
        case .data: return true
        case .wouldBlock:
            // Waiting: for a new request (idle keep-alive), or for the rest of a head (HAProxy's
            // `timeout http-request`, nginx's `client_header_timeout`).
            handle(.headQuiet(buffered: !input.isEmpty))
            return false
        case .eof:
            // The client is done. A partial head left behind is dropped with the connection.
            close()
            return false
        }
    }

    // MARK: client deadlines

    /// The client deadline the machine's wait stands for. One timer serves them all and is
    /// re-armed lazily, so moving a deadline costs no timer operation.
    private var clientDeadline: UInt64 = 0
    private var clientTimer: TimerID?
    private var clientTimerAt: UInt64 = 0

    private func armClientDeadline(for wait: ClientMachine.Wait) {
        let nanoseconds: UInt64
        switch wait {
        case .none: return
        case .firstByte, .head: nanoseconds = worker.timeouts.head
        case .idle: nanoseconds = worker.timeouts.idle
        case .body: nanoseconds = worker.timeouts.body
        }
        clientDeadline = monotonicNanoseconds() + nanoseconds
        // A later deadline waits for the armed timer to fire and re-arm; an earlier one (the
        // head deadline replacing the idle one) needs the timer moved.
        if let timer = clientTimer, clientDeadline < clientTimerAt {
            worker.loop.cancel(timer)
            clientTimer = nil
        }
        if clientTimer == nil {
            clientTimerAt = clientDeadline
            clientTimer = worker.loop.schedule(afterNanoseconds: nanoseconds, target: self)
        }
    }

    /// The connection's timers (a target, not a closure: nothing allocated per re-arm; the
    /// loop holds the connection until they fire or `close` cancels them): the client deadline
    /// and the tunnel's idle one (`Tunnel.timerTag`).
    func timerFired(_ tag: Int) {
        if tag == Tunnel.timerTag {
            if tunnel?.idleTimerFired() == true { close() }
            return
        }
        clientTimerFired()
    }

    /// The exchange's deadline passed (a connect or response timeout): `outcome` is what it led to.
    func exchangeDeadlinePassed(_ outcome: ExchangeOutcome) {
        guard !closed else { return }
        act(on: outcome)
        drive()
    }

    private func clientTimerFired() {
        clientTimer = nil
        guard !closed, machine.wait != .none else { return }
        let now = monotonicNanoseconds()
        if now < clientDeadline {
            clientTimerAt = clientDeadline
            clientTimer = worker.loop.schedule(afterNanoseconds: clientDeadline - now, target: self)
            return
        }
        let answerable = exchange.map { !$0.responseStarted && $0.readyForClient == 0 } ?? false
        let actions = machine.handle(.deadlineExpired(exchangeAnswerable: answerable))
        if actions.contains(.close) {
            close()
            return
        }
        if actions.contains(.abandonExchange) {
            exchange?.abandon()
            exchange = nil
        }
        switch actions.refuse {
        case .headTimeout?:
            answer(.headTimeout(seconds: worker.timeouts.head / 1_000_000_000), actions)
        case .bodyStalled?:
            answer(.bodyStalled(seconds: worker.timeouts.body / 1_000_000_000), actions)
        case nil:
            return
        }
        drive()
    }

    /// Routes a complete head: admin endpoint, or proxied to a replica.
    private func begin(_ head: RequestHeadInfo) {
        handle(.headParsed)
        let framing: BodyFraming
        let bodyLength: UInt64
        switch ClientMachine.admit(head, maxBodyBytes: worker.config.maxBodyBytes) {
        case .proceed(let decided, let length):
            framing = decided
            bodyLength = length
        case .refuse(let error, let close, let consumeHead):
            if consumeHead { input.consume(head.length) }
            refuse(error, close: close)
            return
        }

        // Only a request for an admin path is parsed again, into the full form, in a call of its
        // own: that form's several hundred bytes stay out of this frame for every other request.
        if let admin = worker.admin, isAdminRequest(admin, head),
            beginAdmin(admin, framing: framing, bodyLength: bodyLength)
        {
            return
        }
        if worker.config.redirectHTTP && tls == nil {
            redirectToHTTPS(head, bodyLength: bodyLength, port: worker.config.httpsPort)
            return
        }
        proxy(head, bodyLength: bodyLength)
    }

    /// Answers or starts reading the admin request at the front of `input` (`isAdminRequest`
    /// said it is one). False when its head does not parse into the full form after all: it is
    /// then proxied like any other.
    @inline(never)
    private func beginAdmin(_ admin: AdminHandler, framing: BodyFraming, bodyLength: UInt64) -> Bool {
        guard case .complete(let head) = worker.parser.parseRequest(input.readable) else { return false }
        let client = peer?.host ?? "unknown"
        guard let peer, worker.config.adminAllow.contains(where: { $0.contains(peer) }) else {
            let message = "Admin endpoint \(head.path) is not allowed from \(peer?.host ?? "this client")"
            admin.refused(method: head.method, path: String(head.path), client: client, status: .forbidden, reason: message)
            respond(status: .forbidden, message: message, close: true)
            return true
        }
        if let token = worker.config.adminToken, admin.needsToken(head.path),
            !token.authorizes(head: UnsafeRawBufferPointer(rebasing: input.readable[0..<head.length]))
        {
            let message = "Admin endpoint \(head.path) needs Authorization: Bearer <admin token>"
            admin.refused(
                method: head.method, path: String(head.path), client: client, status: .unauthorized,
                reason: "missing or wrong token")
            output.append(
                ResponseWriter.failure(
                    status: .unauthorized, message: message, close: true,
                    extraHeaders: "WWW-Authenticate: Bearer realm=\"ds-lb admin\"\r\n"))
            handle(.answered(close: true))
            return true
        }
        if let refusal = ClientMachine.admitAdmin(
            framing: framing, bodyLength: bodyLength, maxBody: worker.config.maxAdminBody)
        {
            respond(status: refusal.status, message: refusal.message, close: true)
            return true
        }
        adminRequest = AdminRequestHead(head)
        handle(.adminRequest(length: Int(bodyLength)))
        return true
    }

    /// The head of the admin request whose body is being read (`.readingAdminBody`), boxed: a
    /// `RequestHead` is several hundred bytes (its inline field list), which every connection
    /// would carry while idle for the rare one that reads an admin body.
    private var adminRequest: AdminRequestHead?

    private func stepAdminBody(_ length: Int) -> Bool {
        guard let head = adminRequest?.head else {
            close()
            return false
        }
        if input.readableCount >= head.length + length {
            let body = [UInt8](UnsafeRawBufferPointer(rebasing: input.readable[head.length..<(head.length + length)]))
            input.consume(head.length + length)
            let request = AdminRequest(
                method: head.method, path: String(head.path),
                query: head.query.map(String.init), body: body, client: peer?.host ?? "unknown")
            let closeAfter = !head.wantsKeepAlive
            let headOnly = head.isHead
            adminRequest = nil
            handle(.adminSubmitted)
            let loop = worker.loop
            let me = LoopBound(self)
            worker.admin?.submit(request) { response in
                loop.execute { me.value.adminReplied(response, close: closeAfter, headOnly: headOnly) }
            }
            return false
        }
        switch readClient() {
        case .data:
            handle(.bodyBytes)
            return true
        case .wouldBlock:
            handle(.bodyQuiet)
            return false
        case .eof:
            close()
            return false
        }
    }

    private func adminReplied(_ response: AdminResponse, close closeAfter: Bool, headOnly: Bool) {
        guard !closed, case .awaitingAdmin = machine.state else { return }
        if let stream = response.stream, response.status == .ok, !headOnly {
            let actions = machine.handle(.adminAnswered(stream: true, close: closeAfter))
            perform(actions)
            output.append(StreamSink.head(contentType: response.contentType))
            attachStream(stream, loop: worker.loop, draining: actions.contains(.endStream))
            drive()
            return
        }
        let actions = machine.handle(.adminAnswered(stream: false, close: closeAfter))
        perform(actions)
        output.append(
            ResponseWriter.response(
                status: response.status, contentType: response.contentType, body: response.body,
                close: actions.contains(.closeWhenFlushed), headOnly: headOnly, extraHeaders: response.extraHeaders))
        drive()
    }

    /// Queues one of our own responses. `close` ends the connection after it is sent; a request
    /// body still unread makes that mandatory, since its bytes would be taken for the next head.
    func respond(status: HTTPStatus, message: String, close: Bool, extraHeaders: String = "") {
        let actions = machine.handle(.answered(close: close))
        perform(actions)
        output.append(
            ResponseWriter.failure(
                status: status, message: message, close: actions.contains(.closeWhenFlushed), extraHeaders: extraHeaders))
    }

    /// Queues the answer to a deadline that passed; the machine is already closing for it.
    private func answer(_ error: ProxyError, _ actions: ClientMachine.Actions) {
        worker.counters.count(error.kind)
        perform(actions)
        output.append(ResponseWriter.failure(status: error.status, message: error.message, close: true))
    }

    /// Answers the request with our own error, counted under its kind.
    func refuse(_ error: ProxyError, close: Bool) {
        worker.counters.count(error.kind)
        respond(status: error.status, message: error.message, close: close)
    }

    /// What one write to the client did.
    enum WriteOutcome {
        case wrote(Int)
        case blocked
        case failed
    }

    /// One write to the client's socket by `write`, given its descriptor, for the exchange and
    /// the tunnel relaying bytes: EAGAIN ends the writability edge, an error ends the
    /// connection. (The closure does not escape: nothing is allocated per write.)
    @inline(__always)
    func writeToClient(_ write: (Int32) throws -> IOResult<Int>) -> WriteOutcome {
        guard mayWrite else { return .blocked }
        do {
            switch try write(fd) {
            case .wouldBlock:
                mayWrite = false
                return .blocked
            case .done(let n):
                return .wrote(n)
            }
        } catch {
            close()
            return .failed
        }
    }

    /// Writes `bytes` (the front of a buffer that consumes what was written) to the client, in
    /// the clear or through TLS.
    @inline(__always)
    func writeBytesToClient(_ bytes: UnsafeRawBufferPointer) -> WriteOutcome {
        if let tls { return writeToClient { _ in try tls.write(bytes) } }
        return writeToClient { try Socket.write($0, bytes) }
    }

    /// Writes queued own responses. True when nothing is left to write.
    func flushOutput() -> Bool {
        while !output.isEmpty {
            guard mayWrite else { return false }
            do {
                if case .wouldBlock = try (tls.map { try $0.write(from: output) } ?? output.write(to: fd)) {
                    mayWrite = false
                    return false
                }
            } catch {
                close()
                return false
            }
        }
        // Nothing left to write: the storage goes back to the pool until the next answer.
        output.releaseStorageIfEmpty()
        return true
    }

    // MARK: proxying

    /// Whether the request is for an admin endpoint: its path's bytes compared in place (no
    /// string made of them), and only when it is short enough to be one.
    private func isAdminRequest(_ admin: AdminHandler, _ head: RequestHeadInfo) -> Bool {
        let path = head.pathRange
        return path.count <= admin.longestAdminPath
            && admin.isAdminPath(bytes: UnsafeRawBufferPointer(rebasing: input.readable[path]))
    }

    private func proxy(_ head: RequestHeadInfo, bodyLength: UInt64) {
        let snapshot = worker.reader.snapshot
        let hashedKey = worker.config.keyExtractor.hashedKey(
            for: head, headBytes: input.readable, clientKey: clientKey,
            random: &worker.keyRandom, snapshot: snapshot)
        // The replica as its index in `snapshot.backends`: the pool and the metric handles are
        // arrays indexed like it (no name or address hashed per request).
        let chosen =
            worker.config.balanceFactor.map { worker.boundedSelect(snapshot, hashedKey: hashedKey, factor: $0) }
            ?? snapshot.candidate(hashedKey: hashedKey)
        guard let chosen else {
            input.consume(head.length)
            refuse(.noReplica(poolEmpty: snapshot.isEmpty), close: bodyLength > 0 || !head.wantsKeepAlive)
            return
        }
        // The exchange object of the previous request is reused once it has ended.
        let exchange: UpstreamExchange
        if let spare = spareExchange.take() ?? worker.spareExchanges.take(), spare.hasEnded {
            spare.start(for: self, head: head, bodyLength: bodyLength, snapshot: snapshot, hashedKey: hashedKey)
            exchange = spare
        } else {
            exchange = UpstreamExchange(
                owner: self, worker: worker, head: head, bodyLength: bodyLength,
                snapshot: snapshot, hashedKey: hashedKey)
        }
        spareExchange = exchange
        self.exchange = exchange
        handle(.proxyStarted)
        act(on: exchange.attach(chosen))
    }

    /// One step of the exchange with the buffers and socket writes lent, then what it asks
    /// for: the body's deadline events, the client bytes its request body waits for, and how
    /// it ended if it did.
    private func stepExchange() -> Bool {
        guard let exchange else { return false }
        let bodyWasPending = exchange.bodyPending
        let step = exchange.step(ClientLease(self))
        if closed { return false }
        // The request body has all gone to the replica: no body deadline any more.
        if bodyWasPending && !exchange.bodyPending { handle(.bodyComplete) }
        guard case .goingOn = step.outcome else {
            act(on: step.outcome)
            return true
        }
        guard let want = step.wants else { return step.progressed }
        let read: ReadOutcome
        switch want {
        case .read:
            read = readClient()
        case .splice(let pipe, let limit):
            read = spliceIn(to: pipe, limit: limit)
            if read == .data { exchange.requestBodySpliced(pipe.buffered) }
        }
        switch read {
        case .data:
            // The body deadline moves on.
            handle(.bodyBytes)
            return true
        case .wouldBlock:
            // The body deadline runs (it is not moved).
            handle(.bodyQuiet)
            return step.progressed
        case .eof:
            // The client vanished mid-body: the request cannot complete.
            close()
            return false
        }
    }

    /// One step of the tunnel with the buffers and socket writes lent, then the read it asks for.
    private func stepTunnel() -> Bool {
        guard let tunnel else { return false }
        let step = tunnel.step(ClientLease(self))
        if closed { return false }
        if step.close {
            close()
            return false
        }
        guard step.wantsClientBytes else { return step.progressed }
        switch readClient() {
        case .data:
            return true
        case .wouldBlock:
            return step.progressed
        case .eof:
            tunnel.clientEnded()
            return true
        }
    }

    /// An event of the replica's socket, while an exchange or a tunnel uses it.
    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) {
        if tunnel != nil {
            drive()
            return
        }
        guard let outcome = exchange?.upstreamEvent(upstream, events) else { return }
        act(on: outcome)
        drive()
    }

    /// Performs what an exchange call ended in.
    private func act(on outcome: ExchangeOutcome) {
        switch outcome {
        case .goingOn:
            return
        case .ended(let closeClient):
            exchangeEnded(closeAfter: closeClient)
        case .failed(let error, let closeClient, let unreadHead):
            if unreadHead > 0 { input.consume(unreadHead) }
            exchangeFailed(error, close: closeClient)
        case .upgraded(let upstream):
            startTunnel(upstream)
        case .closeClient:
            close()
        }
    }

    /// The exchange delivered its response; the next request may be read (or the connection ends).
    private func exchangeEnded(closeAfter: Bool) {
        assert(worker.loop.isInLoop)
        // Moved out of the property, not copied from it and then cleared (a retain and a
        // release more), here and where an exchange ends otherwise.
        exchange.take()?.releaseSnapshot()
        handle(.exchangeEnded(close: closeAfter))
    }

    /// The exchange ends with our own error response instead of the replica's.
    /// (`fail` counted it already.)
    private func exchangeFailed(_ error: ProxyError, close: Bool) {
        assert(worker.loop.isInLoop)
        exchange.take()?.releaseSnapshot()
        respond(status: error.status, message: error.message, close: close)
    }

    /// The replica answered 101: from now on bytes go both ways unchanged. (The replica's
    /// connection is already this object's: its events come here, for the tunnel.)
    private func startTunnel(_ upstream: UpstreamConnection) {
        assert(worker.loop.isInLoop)
        exchange.take()?.releaseSnapshot()
        let tunnel = Tunnel(
            owner: self, upstream: upstream, loop: worker.loop,
            idleTimeoutNanoseconds: worker.timeouts.idle)
        self.tunnel = tunnel
        handle(.upgraded)
    }

    /// Puts the ended exchange object on the worker's shelf for any connection's next request.
    private func shelveSpareExchange() {
        guard let spare = spareExchange, exchange == nil, spare.hasEnded else { return }
        spareExchange = nil
        worker.spareExchanges.keep(spare)
    }

    // MARK: pipelined requests

    /// The worker's `PipelineQueue` gives this connection its turn (and a slot).
    func resumePipelined() {
        assert(worker.loop.isInLoop)
        handle(.pipelineTurn)
        drive()
    }

    // MARK: drain

    /// Graceful stop: an idle connection closes now; one with a request in progress finishes
    /// it, its response saying `Connection: close`, then closes.
    func drain() {
        assert(worker.loop.isInLoop)
        let actions = machine.handle(.drain(buffered: !input.isEmpty))
        perform(actions)
        if actions.contains(.endStream) { sink?.close() }
        if actions.contains(.closeWhenFlushed) && flushOutput() { close() }
    }

    // MARK: teardown

    func close() {
        assert(worker.loop.isInLoop)
        guard !closed else { return }
        closed = true
        exchange?.abandon()
        exchange?.releaseSnapshot()
        exchange = nil
        shelveSpareExchange()
        tunnel?.abandon()
        tunnel = nil
        sink?.close()
        sink = nil
        if let timer = clientTimer { worker.loop.cancel(timer) }
        handle(.closed)
        tls?.session.shutdown()
        worker.loop.close(fd, of: self)
        worker.forget(self)
    }
}

/// An admin request's head while its body is read (`ClientConnection.adminRequest`).
private final class AdminRequestHead {
    let head: RequestHead
    init(_ head: RequestHead) { self.head = head }
}

/// Carries a loop-confined object through a `@Sendable` closure that is only ever run on that
/// same loop (via `EventLoop.execute`), so the object is never touched from another thread.
struct LoopBound<T: AnyObject>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
