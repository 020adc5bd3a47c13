import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// The replica side of one proxied request: gets a connection (pooled or new), sends the head
/// and body, reads the response and relays it to the client, retries and fails over. Created by
/// its `ClientConnection` for its first proxied request and reused for the next ones (`start`),
/// so routing a request allocates nothing. Loop thread only.
///
/// The exchange never touches its client connection's state: the connection calls it
/// (`attach`, `step`, and the replica socket's events, which reach the connection first) and
/// acts on what each call returns (`ExchangeOutcome`, `ExchangeStep`); a deadline of the
/// exchange's own that passes is reported to it the same way (`ExchangeOwner`). For a step the
/// connection lends its buffers and socket writes (`ClientLease`); the client's socket is read
/// by the connection when the step asks for body bytes.
///
/// The client's `input` holds the request: a request without a body keeps its head at the front
/// of `input` until the response begins, so a reused connection that turns out dead can be
/// retried on a fresh one.
///
/// This file holds the state, connection handling and endings; the request side is in
/// UpstreamExchange+Request.swift, the response side in +Response.swift, and the splice(2)
/// path both body directions share in +Splice.swift. (Their members are module-internal
/// rather than private only because Swift's `private` stops at the file.)
final class UpstreamExchange: TimerTarget {
    /// The client connection the exchange works for (nil on the worker's shelf): the replica
    /// socket's events go to it, and a deadline that passed is reported to it. `unowned(unsafe)`:
    /// a connection lets go of its exchange (to the shelf, `SpareExchanges`) before it goes, so
    /// the owner is alive whenever the exchange runs, and no reference count is checked per use.
    private unowned(unsafe) var owner: ExchangeOwner?
    /// Strong: a `let` of the exchange's own, which every use borrows without a reference count
    /// (`unowned(unsafe)` needed a retain and a release around each use that spans a call). The
    /// cycles this makes end when the worker shuts down: its connections close, their exchanges
    /// go to its shelf, and the shelf lets go of them (`SpareExchanges.retireAll`).
    let worker: Worker
    private(set) var head: RequestHeadInfo
    var upstream: UpstreamConnection?
    /// Whether the head has left `input` (written upstream, with a body behind it or partly).
    var headConsumed = false
    var bodyRemaining: UInt64 = 0
    /// A chunked request body is forwarded as it came; the scanner finds where it ends, and
    /// `chunkReady` counts the bytes at the front of `input` known to belong to it.
    var requestChunks: ChunkedScanner?
    var chunkReady = 0
    /// Retries on a fresh connection and failovers so far (`ReplicaAttempts`).
    private var attempts = ReplicaAttempts()
    /// The snapshot and hashed key the replica was chosen with, for failover to the next
    /// distinct candidate (`--retries`), and the replicas tried so far.
    /// Nil between requests (`releaseSnapshot`), so an idle connection does not keep an old
    /// snapshot (and its hash table) alive.
    private var snapshot: Snapshot?
    private var hashedKey: UInt64 = 0
    /// The replica being tried: its index in `snapshot.backends` (the pool's lists and the
    /// worker's metric handles are found by it).
    private var backendIndex = 0
    private var tried: [String] = []
    /// The replica this exchange is counted against, and since when.
    var tracked: ProxyMetrics.Shard?
    var trackedSince: UInt64 = 0
    var responseStarted = false
    /// An interim (1xx) response went to the client: the response has begun there.
    var interimRelayed = false
    var chunked = ChunkedScanner()
    /// The relayed response head waits in `client.output` (after `outputBeforeHead` bytes of
    /// ours) and nothing of it has been written: a body found broken now can still be a 502.
    var headOnlyQueued = false
    var outputBeforeHead = 0
    /// Bytes at the front of `upstream.input` that belong to the response and await the client.
    var readyForClient = 0
    var responseParseFrom = 0
    var closeClientAfter = false
    /// The client connection ends after this response (decided with its head, which says so).
    var closeAfterResponse = false
    /// `Expect: 100-continue`, answered by ds-lb itself (`ContinueExpectation`).
    var expectation = ContinueExpectation()
    /// The exchange's phase (connecting, sending, awaiting the response, streaming it, ended),
    /// the response's framing and which deadline runs: `ExchangeMachine`. This object performs
    /// what it says.
    var machine = ExchangeMachine()
    /// The deadline the machine asks for (connect, then response head). Per request it is only
    /// set and cleared: the loop timer behind it is armed once per deadline period of this
    /// (reused) object and moved lazily (DeadlineTimer), so the loop's timer heap is not
    /// touched per request.
    var deadline = DeadlineTimer()
    /// Bodies of at least `config.spliceThreshold` bytes, and chunks of chunked bodies whose data
    /// is that large, move by splice through these pipes (made on first use, kept with the
    /// exchange object for the connection's next requests). See UpstreamExchange+Splice.swift.
    var requestPipe: SplicePipe?
    var responsePipe: SplicePipe?
    var splicingRequest = false
    var splicingResponse = false
    /// How the call in progress ended for the client (`fail`, `finish`, a 101, a cut), handed to
    /// the connection when the call returns (`takeOutcome`).
    var outcome = ExchangeOutcome.goingOn
    /// The request body waits for client bytes (set by a step, returned with it).
    var bodyWant: ExchangeStep.BodyWant?
    /// A connection was attached during the call: the connection steps again (a pooled or
    /// connected socket gets no new edge-triggered event to start sending on it).
    var attachedDuringCall = false

    init(
        owner: ExchangeOwner, worker: Worker, head: RequestHeadInfo, bodyLength: UInt64,
        snapshot: Snapshot, hashedKey: UInt64
    ) {
        self.worker = worker
        self.head = head
        self.snapshot = snapshot
        start(for: owner, head: head, bodyLength: bodyLength, snapshot: snapshot, hashedKey: hashedKey)
    }

    /// Begins the exchange for a new request of `owner`'s: every piece of per-request state is
    /// set here.
    func start(
        for owner: ExchangeOwner, head: RequestHeadInfo, bodyLength: UInt64, snapshot: Snapshot, hashedKey: UInt64
    ) {
        assert(worker.loop.isInLoop)
        self.owner = owner
        self.head = head
        upstream = nil
        headConsumed = false
        bodyRemaining = bodyLength
        requestChunks = bodyLength == .max ? ChunkedScanner(maxDataBytes: worker.config.maxBodyBytes) : nil
        chunkReady = 0
        attempts.begin(failovers: worker.config.retries)
        self.snapshot = snapshot
        self.hashedKey = hashedKey
        tried.removeAll(keepingCapacity: true)
        tracked = nil
        trackedSince = 0
        responseStarted = false
        interimRelayed = false
        chunked = ChunkedScanner()
        readyForClient = 0
        headOnlyQueued = false
        responseParseFrom = 0
        closeClientAfter = !head.wantsKeepAlive
        closeAfterResponse = false
        expectation.reset()
        perform(machine.handle(.begin))
        splicingRequest = false
        splicingResponse = false
        // A pipe left holding bytes of an exchange that failed is not reused.
        if (requestPipe?.buffered ?? 0) > 0 { requestPipe = nil }
        if (responsePipe?.buffered ?? 0) > 0 { responsePipe = nil }
    }

    /// Whether the exchange has ended, so its object may be reused for the next request.
    var hasEnded: Bool { machine.hasEnded }

    /// Set once the exchange has handed the connection back to its client (finished, failed or
    /// turned into a tunnel).
    var ended: Bool { machine.hasEnded }

    /// The response's framing, from its head on (`.none` before).
    var framing: BodyFraming { machine.framing }

    /// Performs what the machine asks for after an event: the deadline, or what one that passed means.
    func perform(_ action: ExchangeMachine.Action) {
        switch action {
        case .none:
            return
        case .arm(.connect):
            // A timer target, not a closure: nothing allocated when the timer is (re-)armed.
            // Every way the exchange ends clears the deadline, so a later firing finds nothing due.
            deadline.set(within: worker.timeouts.connect, on: worker.loop, target: self)
        case .arm(.response):
            deadline.set(within: worker.timeouts.response, on: worker.loop, target: self)
        case .clearDeadline:
            deadline.clear()
        case .connectTimedOut:
            guard let upstream else { return }
            let backend = upstream.backend
            worker.reportUnreachable(backend)
            upstream.close()
            self.upstream = nil
            failOverOrFail(.connectTimeout(replica: backend.name), from: backend)
        case .responseTimedOut:
            guard let upstream else { return }
            failOverOrFail(.responseTimeout(replica: upstream.backend.name), from: upstream.backend)
        }
    }

    /// Called by the client once the exchange has ended: lets go of the request's snapshot.
    func releaseSnapshot() {
        snapshot = nil
    }

    /// Whether the request body has been read from the client in full.
    var bodyPending: Bool { bodyRemaining > 0 }

    // MARK: events

    /// Hands the outcome of the call that is returning to the connection, and resets it.
    @inline(__always)
    private func takeOutcome() -> ExchangeOutcome {
        // The usual case without copying (and destroying) the enum's payload.
        if case .goingOn = outcome { return .goingOn }
        let taken = outcome
        outcome = .goingOn
        return taken
    }

    /// An event of the replica's socket (the connection, its owner, passes it on and steps the
    /// exchange afterwards). Nil when the event is not for the exchange in progress.
    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) -> ExchangeOutcome? {
        guard upstream === self.upstream, !ended else { return nil }
        if !upstream.connected && (events.contains(.writable) || events.contains(.error) || events.contains(.hangup)) {
            let err = Socket.connectResult(upstream.fd)
            if err != 0 {
                upstreamFailed(upstream, reason: String(cString: strerror(err)))
                attachedDuringCall = false
                return takeOutcome()
            }
            upstream.connected = true
            upstream.mayWrite = true
            // Connected: the connect deadline gives way to the response deadline.
            perform(machine.handle(.connected))
        }
        return .goingOn
    }

    /// Gets a connection to `snapshot.backends[index]` (pooled or new) for the request `start`
    /// began: its first attempt.
    func attach(_ index: Int) -> ExchangeOutcome {
        attachTo(index)
        attachedDuringCall = false
        return takeOutcome()
    }

    /// Gets a connection to `snapshot.backends[index]` (pooled or new) for this exchange.
    private func attachTo(_ index: Int) {
        // Held in locals for the whole call: each read of the properties for a call (the pool's
        // `take`, the metrics look-up) was retained and released around that call.
        let worker = self.worker
        // Set from `start` until the exchange ends: only an exchange that has ended is without.
        guard let snapshot = self.snapshot else {
            fail(.noReplica(poolEmpty: false))
            return
        }
        backendIndex = index
        let upstream: UpstreamConnection
        if attempts.mayUsePooled, let pooled = worker.pool.take(index, in: snapshot) {
            upstream = pooled
            // A request that cannot be retried (a body, or a method that is not idempotent)
            // must not go on a connection the replica already closed, whose end the loop has
            // not dispatched yet: one peek tells. (Idempotent ones are retried if it failed.)
            if (bodyRemaining > 0 || !Self.isIdempotent(head)) && Socket.idleConnectionIsDead(pooled.fd) {
                pooled.close()
                attempts.pooledConnectionDead()
                attachTo(index)
                return
            }
        } else {
            do {
                upstream = try worker.pool.connect(index, in: snapshot)
            } catch let error as SyscallError where error.isLocalResourceExhaustion {
                // ds-lb is out of descriptors or memory: no replica is to blame and none would
                // do better, so no failover and no passive failure report (503, HAProxy's too).
                fail(.localResources(reason: "\(error)"))
                return
            } catch {
                let backend = snapshot.backends[index]
                worker.reportUnreachable(backend)
                failOverOrFail(.connectFailed(replica: backend.name, reason: "\(error)"), from: backend)
                return
            }
        }
        upstream.owner = owner
        self.upstream = upstream
        if tracked == nil || tracked !== worker.metrics(index, in: snapshot) {
            tracked?.end(answered: false, nanoseconds: 0)
            tracked = worker.metrics(index, in: snapshot)
            tracked?.begin()
            trackedSince = monotonicNanoseconds()
        }
        perform(machine.handle(.attached(connected: upstream.connected)))
        // A pooled or already-connected socket gets no new edge-triggered event: the step
        // counts the attach as progress so the connection goes on to send on it now.
        attachedDuringCall = true
    }

    /// The deadline's timer (the exchange's own target, so an exchange on the shelf keeps its
    /// armed timer and moves to another connection without touching the loop's timers). A
    /// deadline that passed is reported to the owner with what it means.
    func timerFired(_ tag: Int) {
        guard deadline.fired(on: worker.loop, target: self) else { return }
        guard !ended, upstream != nil, let owner else { return }
        perform(machine.handle(.deadlineExpired))
        attachedDuringCall = false
        owner.exchangeDeadlinePassed(takeOutcome())
    }

    /// The exchange goes to the worker's shelf (ended, its snapshot already let go): it works
    /// for no connection until a connection takes it for its next request.
    func shelve() {
        assert(hasEnded)
        owner = nil
    }

    /// The exchange is dropped (the shelf is full): the loop lets go of this object now rather
    /// than when its armed timer would fire.
    func retire() {
        assert(worker.loop.isInLoop)
        deadline.cancel(on: worker.loop)
    }

    /// One round of moving bytes with the client's buffers and socket writes lent: request to
    /// the replica, response to the client.
    func step(_ client: ClientLease) -> ExchangeStep {
        let progressed = moveBytes(client) || attachedDuringCall
        attachedDuringCall = false
        guard let wants = bodyWant else { return ExchangeStep(progressed: progressed, wants: nil, outcome: takeOutcome()) }
        bodyWant = nil
        return ExchangeStep(progressed: progressed, wants: wants, outcome: takeOutcome())
    }

    private func moveBytes(_ client: ClientLease) -> Bool {
        guard !ended, let upstream, upstream.connected else { return false }
        var progressed = false
        if machine.headPending {
            guard sendHead(upstream, client) else { return false }
            progressed = true
            // Whatever refused the request before this point (417, 413, 503, 502) answered
            // without reading the body.
            if expectation.headSent(
                expectsContinue: head.expectContinue, clientHTTP11: head.version == .http11, bodyPending: bodyRemaining > 0)
            {
                client.output.append(Self.continueLine)
            }
        }
        if upstream.closed || ended { return false }
        if bodyRemaining > 0 || !upstream.output.isEmpty {
            if sendBody(upstream, client) { progressed = true }
            if client.closed || upstream.closed || ended { return false }
        }
        if forwardResponse(upstream, client) { progressed = true }
        return progressed
    }

    /// The connection spliced `n` bytes of the request body into the pipe the step asked it to
    /// (`ExchangeStep.BodyWant.splice`).
    func requestBodySpliced(_ n: Int) {
        spliced(.request, pulled: UInt64(n))
    }

    // MARK: endings

    func finish(_ upstream: UpstreamConnection, _ client: ClientLease) {
        tracked.take()?.end(answered: true, nanoseconds: monotonicNanoseconds() - trackedSince)
        releaseHeadFromInput(client)
        let reusable = ExchangeEnding.replicaReusable(
            keptByReplica: machine.replicaKeepsConnection, framing: framing, requestBodyLeft: bodyRemaining > 0,
            bytesAfterResponse: !upstream.input.isEmpty, draining: worker.draining)
        if reusable { worker.pool.give(upstream) } else { upstream.close() }
        self.upstream = nil
        let closeAfter = ExchangeEnding.closesClientAtEnd(decided: closeAfterResponse, requestBodyLeft: bodyRemaining > 0)
        perform(machine.handle(.end))
        outcome = .ended(closeClient: closeAfter)
    }

    /// The replica connection failed before the response began.
    func upstreamFailed(_ upstream: UpstreamConnection, reason: String) {
        let backend = upstream.backend
        let wasReused = upstream.reused
        let neverConnected = !upstream.connected
        upstream.close()
        self.upstream = nil
        // The request can go again only if nothing of the response arrived and its head is still
        // in `input` (no body, so nothing was consumed).
        let resendable = !responseStarted && !headConsumed
        // Another replica, if nothing was sent (connect failed) or the method is idempotent
        // (the error's retry verdict).
        let error: ProxyError =
            neverConnected
            ? .connectFailed(replica: backend.name, reason: reason)
            : .connectionLost(replica: backend.name, reason: reason)
        let next = attempts.failed(
            reused: wasReused, resendable: resendable, retryAllowed: error.retry.allows(idempotent: Self.isIdempotent(head)))
        if next == .againOnFreshConnection {
            attachTo(backendIndex)
            return
        }
        worker.reportUnreachable(backend)
        if next == .nextReplica && failOver(from: backend, refused: neverConnected) { return }
        fail(error)
    }

    /// The replica answered with something that is not a valid response. An idempotent request
    /// whose head is still at hand (no body) and of which nothing reached the client goes to the
    /// next replica (`--retries`), as after a dropped connection; otherwise 502.
    func invalidResponse(_ upstream: UpstreamConnection, _ what: ProxyError.InvalidResponse) {
        let backend = upstream.backend
        let error = ProxyError.invalidResponse(replica: backend.name, what)
        let next = attempts.failed(
            reused: false, resendable: !headConsumed && !interimRelayed,
            retryAllowed: error.retry.allows(idempotent: Self.isIdempotent(head)))
        if next == .nextReplica {
            upstream.close()
            self.upstream = nil
            responseStarted = false
            responseParseFrom = 0
            // Counted here: `fail` counts only through the connection, closed now.
            worker.countFailure(backend)
            if failOver(from: backend) { return }
        }
        fail(error)
    }

    /// Sends the request to the next replica if the error allows it (and the budget and the
    /// request do), else ends the exchange with the error.
    private func failOverOrFail(_ error: ProxyError, from backend: Backend) {
        let next = attempts.failed(
            reused: false, resendable: !headConsumed, retryAllowed: error.retry.allows(idempotent: Self.isIdempotent(head)))
        if next == .nextReplica && failOver(from: backend) { return }
        fail(error)
    }

    /// Moves the exchange to the next distinct healthy candidate for its key (`attempts` has
    /// allowed it). False when no candidate is left. `refused`: the replica refused the
    /// connection (see `ReplicaAttempts.failedOver`).
    private func failOver(from backend: Backend, refused: Bool = false) -> Bool {
        tried.append(backend.name)
        guard let next = snapshot?.candidate(hashedKey: hashedKey, excluding: tried) else { return false }
        attempts.failedOver(refused: refused)
        worker.counters.count(.retried)
        attachTo(next)
        return true
    }

    /// RFC 9110 §9.2.2: safe to send again after a connection failure.
    static func isIdempotent(_ head: RequestHeadInfo) -> Bool {
        head.methodKind.isIdempotent
    }

    /// Ends the exchange with our own error response (nothing of the replica's reached the client).
    func fail(_ error: ProxyError) {
        worker.counters.count(error.kind)
        // Passive health. (Connect failures were counted where they were reported.)
        if error.kind == .timeout || error.kind == .invalidResponse, let upstream { worker.countFailure(upstream.backend) }
        // The client drops the head still in its input before our answer.
        let unreadHead = headConsumed ? 0 : head.length
        headConsumed = true
        // A body not fully forwarded cannot be told apart from the next request: close.
        let mustClose = closeClientAfter || bodyRemaining > 0
        abandon()
        outcome = .failed(error, closeClient: mustClose, unreadHead: unreadHead)
    }

    /// The response cannot be completed: the client connection is to be cut (the replica's
    /// connection goes now).
    func cutClient() {
        abandon()
        outcome = .closeClient
    }

    /// Drops the exchange without an answer of its own: the client is closing, or answers for it.
    func abandon() {
        assert(worker.loop.isInLoop)
        perform(machine.handle(.end))
        tracked.take()?.end(answered: false, nanoseconds: 0)
        upstream?.close()
        upstream = nil
    }
}

/// Ended exchange objects waiting for a connection's next proxied request, one shelf per
/// worker. A connection that closes, or that waits for a request with nothing buffered (an
/// idle keep-alive one) while the worker has more connections than `limit`, puts its exchange
/// here, so a crowd of idle connections holds none, and takes one back for its next request:
/// routing a request still allocates nothing once the shelf holds as many exchanges as requests
/// run at once. At most `limit` are kept; beyond that they are let go.
struct SpareExchanges {
    static let limit = 256
    private var shelf: [UpstreamExchange] = []

    init() {
        // Room for the whole shelf now: putting an exchange back never grows the array.
        shelf.reserveCapacity(Self.limit)
    }

    var count: Int { shelf.count }

    /// Lets go of every exchange on the shelf (the worker is shutting down).
    mutating func retireAll() {
        for exchange in shelf { exchange.retire() }
        shelf.removeAll()
    }

    mutating func take() -> UpstreamExchange? {
        shelf.popLast()
    }

    /// Keeps `exchange` (ended) for another connection, or lets it go when the shelf is full.
    mutating func keep(_ exchange: UpstreamExchange) {
        guard shelf.count < Self.limit else {
            exchange.retire()
            return
        }
        exchange.shelve()
        shelf.append(exchange)
    }
}
