#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem

/// The replica side of one proxied request: gets a connection (pooled or new), sends the head
/// and body, reads the response and relays it to the client, retries and fails over. Created by
/// its `ClientConnection` for its first proxied request and reused for the next ones (`start`),
/// so routing a request allocates nothing. Loop thread only.
///
/// The client's `input` holds the request: a request without a body keeps its head at the front
/// of `input` until the response begins, so a reused connection that turns out dead can be
/// retried on a fresh one.
final class UpstreamExchange: UpstreamOwner, TimerTarget {
    private unowned let client: ClientConnection
    private unowned let worker: Worker
    private(set) var head: RequestHeadInfo
    private(set) var upstream: UpstreamConnection?
    /// Whether the head has been written upstream, and whether it has left `input`.
    private var headSent = false
    private var headConsumed = false
    private(set) var bodyRemaining: UInt64 = 0
    /// A chunked request body is forwarded as it came; the scanner finds where it ends, and
    /// `chunkReady` counts the bytes at the front of `input` known to belong to it.
    private var requestChunks: ChunkedScanner?
    private var chunkReady = 0
    /// A reused connection failed and the request went again on a fresh one.
    private var retried = false
    /// The snapshot and hashed key the replica was chosen with, for failover to the next
    /// distinct candidate (`--retries`), and the replicas tried so far.
    private var snapshot: Snapshot
    private var hashedKey: UInt64 = 0
    private var tried: [String] = []
    private var failoversLeft = 0
    /// The replica this exchange is counted against, and since when.
    private var tracked: ProxyMetrics.Replica?
    private var trackedSince: UInt64 = 0
    private(set) var responseStarted = false
    private var responseHead: ResponseHeadInfo?
    private var framing = BodyFraming.none
    private var responseRemaining: UInt64 = 0
    private var chunked = ChunkedScanner()
    /// Bytes at the front of `upstream.input` that belong to the response and await the client.
    private(set) var readyForClient = 0
    private var responseParseFrom = 0
    private var closeClientAfter = false
    /// The client connection ends after this response (decided with its head, which says so).
    private var closeAfterResponse = false
    /// `Expect: 100-continue` was answered by ds-lb itself (see `step`).
    private var continueSent = false
    private var timer: TimerID?
    /// Set once the exchange has handed the connection back to its client (finished or failed).
    private var ended = false
    /// Counts `start`s: a timer fired for an earlier request of this reused object is ignored.
    private var generation = 0
    /// Bodies of at least `config.spliceThreshold` bytes move by splice through these pipes
    /// (made on first use, kept with the exchange object for the connection's next requests).
    private var requestPipe: SplicePipe?
    private var responsePipe: SplicePipe?
    private var splicingRequest = false
    private var splicingResponse = false

    init(client: ClientConnection, worker: Worker, head: RequestHeadInfo, bodyLength: UInt64,
         snapshot: Snapshot, hashedKey: UInt64) {
        self.client = client
        self.worker = worker
        self.head = head
        self.snapshot = snapshot
        start(head: head, bodyLength: bodyLength, snapshot: snapshot, hashedKey: hashedKey)
    }

    /// Begins the exchange for a new request: every piece of per-request state is set here.
    func start(head: RequestHeadInfo, bodyLength: UInt64, snapshot: Snapshot, hashedKey: UInt64) {
        generation &+= 1
        self.head = head
        upstream = nil
        headSent = false
        headConsumed = false
        bodyRemaining = bodyLength
        requestChunks = bodyLength == .max ? ChunkedScanner(maxDataBytes: worker.config.maxBodyBytes) : nil
        chunkReady = 0
        retried = false
        self.snapshot = snapshot
        self.hashedKey = hashedKey
        tried.removeAll(keepingCapacity: true)
        failoversLeft = worker.config.retries
        tracked = nil
        trackedSince = 0
        responseStarted = false
        responseHead = nil
        framing = .none
        responseRemaining = 0
        chunked = ChunkedScanner()
        readyForClient = 0
        responseParseFrom = 0
        closeClientAfter = !head.wantsKeepAlive
        closeAfterResponse = false
        continueSent = false
        timer = nil
        ended = false
        splicingRequest = false
        splicingResponse = false
        // A pipe left holding bytes of an exchange that failed is not reused.
        if (requestPipe?.buffered ?? 0) > 0 { requestPipe = nil }
        if (responsePipe?.buffered ?? 0) > 0 { responsePipe = nil }
    }

    /// Whether the exchange has ended, so its object may be reused for the next request.
    var hasEnded: Bool { ended }

    /// An empty snapshot to hold while the object waits for its next request, so an idle
    /// connection does not keep an old snapshot (and its hash table) alive.
    private static let noSnapshot = Snapshot.empty(algorithm: .rendezvous)

    /// Called by the client once the exchange has ended: lets go of the request's snapshot.
    func releaseSnapshot() {
        snapshot = Self.noSnapshot
    }

    /// Whether the request body has been read from the client in full.
    var bodyPending: Bool { bodyRemaining > 0 }

    // MARK: events

    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) {
        guard upstream === self.upstream, !ended else { return }
        if !upstream.connected && (events.contains(.writable) || events.contains(.error) || events.contains(.hangup)) {
            let err = Socket.connectResult(upstream.fd)
            if err != 0 {
                upstreamFailed(upstream, reason: String(cString: strerror(err)))
                client.drive()
                return
            }
            upstream.connected = true
            upstream.mayWrite = true
            // Connected: the connect deadline gives way to the response deadline.
            if let timer { worker.loop.cancel(timer) }
            timer = worker.loop.schedule(afterNanoseconds: worker.config.responseTimeoutNanoseconds, target: self, tag: generation)
        }
        client.drive()
    }

    /// Gets a connection to `backend` (pooled or new) for this exchange.
    func attach(_ backend: Backend) {
        let upstream: UpstreamConnection
        if !retried, let pooled = worker.pool.take(backend) {
            upstream = pooled
            // A request that cannot be retried (a body, or a method that is not idempotent)
            // must not go on a connection the replica already closed, whose end the loop has
            // not dispatched yet: one peek tells. (Idempotent ones are retried if it failed.)
            if (bodyRemaining > 0 || !Self.isIdempotent(head)) && Socket.idleConnectionIsDead(pooled.fd) {
                pooled.close()
                retried = true
                attach(backend)
                return
            }
        } else {
            do {
                upstream = try worker.pool.connect(backend)
            } catch let error as SyscallError where error.isLocalResourceExhaustion {
                // ds-lb is out of descriptors or memory: no replica is to blame and none would
                // do better, so no failover and no passive failure report (503, HAProxy's too).
                fail(status: 503, kind: .localResources, message: "ds-lb cannot open a connection to a replica now: \(error)")
                return
            } catch {
                worker.reportUnreachable(backend)
                if !failOver(from: backend) {
                    fail(status: 502, kind: .connect, message: "Server \(backend.name) is unreachable: \(error)")
                }
                return
            }
        }
        upstream.owner = self
        self.upstream = upstream
        if tracked == nil || tracked !== worker.metrics(for: backend) {
            tracked?.end(answered: false, nanoseconds: 0)
            tracked = worker.metrics(for: backend)
            tracked?.begin()
            trackedSince = monotonicNanoseconds()
        }
        if let timer { worker.loop.cancel(timer) }
        let timeout = upstream.connected ? worker.config.responseTimeoutNanoseconds : worker.config.connectTimeoutNanoseconds
        // A timer target, not a closure: nothing allocated per request. Every way the exchange
        // ends cancels it or sets `ended` first, so a late firing touches nothing.
        timer = worker.loop.schedule(afterNanoseconds: timeout, target: self, tag: generation)
        // A pooled or already-connected socket gets no new edge-triggered event: count the
        // attach as progress so `drive` goes on to send on it now.
        client.noteProgress()
    }

    func timerFired(_ tag: Int) {
        guard tag == generation else { return }
        timedOut()
    }

    private func timedOut() {
        guard !ended, !client.closed, let upstream else { return }
        timer = nil
        if !upstream.connected {
            let backend = upstream.backend
            worker.reportUnreachable(backend)
            upstream.close()
            self.upstream = nil
            if !failOver(from: backend) {
                fail(status: 502, kind: .connect, message: "Server \(backend.name) did not accept the connection in time")
            }
        } else if responseHead == nil {
            fail(status: 504, kind: .timeout, message: "Server \(upstream.backend.name) did not answer in time")
        } else {
            client.close()
        }
        client.drive()
    }

    /// One round of moving bytes: request to the replica, response to the client.
    func step() -> Bool {
        guard !ended, let upstream, upstream.connected else { return false }
        var progressed = false
        if !headSent {
            guard sendHead(upstream) else { return false }
            progressed = true
            // RFC 9110 §10.1.1: ds-lb answers `Expect: 100-continue` itself, once the head is on
            // its way to a replica and the body is wanted. Whatever refuses the request before
            // that point (417, 413, 503, 502) is answered without reading the body. The
            // expectation is still forwarded; a 100 from the replica is then dropped.
            if head.expectContinue && head.version == .http11 && bodyRemaining > 0 && !continueSent {
                continueSent = true
                client.output.append(Self.continueLine)
            }
        }
        if upstream.closed || ended { return false }
        if bodyRemaining > 0 || !upstream.output.isEmpty {
            if sendBody(upstream) { progressed = true }
            if client.closed || upstream.closed || ended { return false }
        }
        if forwardResponse(upstream) { progressed = true }
        return progressed
    }

    // MARK: request

    /// Writes the head as it arrived, minus hop-by-hop fields, plus X-Forwarded-For and
    /// X-Forwarded-Proto, in one writev (DESIGN.md §1): the kept bytes are never copied.
    private func sendHead(_ upstream: UpstreamConnection) -> Bool {
        guard upstream.mayWrite else { return false }
        let headBytes = client.input.readable
        // An upgrade request (Connection: upgrade) keeps its Upgrade field and says so again.
        let upgrading = head.connection.upgrade
        // An HTTP/1.0 client's request goes out asking for keep-alive: the connection to the
        // replica is ours to reuse, whatever the client does with its own.
        let added = upgrading ? client.forwardedHeaderUpgrade
            : head.version == .http10 ? client.forwardedHeaderKeepAlive : client.forwardedHeader
        let iov = worker.iovecs
        let sent: Int
        var total = 0
        do {
            sent = try added.withUnsafeBytes { extra -> Int in
                iov.removeAll()
                HopByHop.forEachKeptRange(of: head, in: headBytes, upgrading: upgrading) {
                    iov.append(UnsafeRawBufferPointer(rebasing: headBytes[$0]))
                }
                iov.append(extra)
                total = iov.totalLength
                let n: Int
                switch try Socket.writev(upstream.fd, iov.buffer) {
                case .done(let written): n = written
                case .wouldBlock: n = 0
                }
                if n < total {
                    // Keep what the socket did not take; it goes out before anything else.
                    upstream.mayWrite = false
                    iov.forEachRemaining(after: n) { upstream.output.append($0) }
                }
                return n
            }
        } catch {
            upstreamFailed(upstream, reason: "\(error)")
            return false
        }
        headSent = true
        if bodyRemaining > 0 || sent < total {
            client.input.consume(head.length)
            headConsumed = true
        }
        return true
    }

    /// Streams the request body from the client to the replica; returns whether bytes moved.
    private func sendBody(_ upstream: UpstreamConnection) -> Bool {
        let input = client.input
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            if !upstream.output.isEmpty {
                guard upstream.mayWrite else { return progressed }
                do {
                    switch try upstream.output.write(to: upstream.fd) {
                    case .wouldBlock: upstream.mayWrite = false; return progressed
                    case .done: progressed = true; continue
                    }
                } catch {
                    upstreamFailed(upstream, reason: "\(error)")
                    return false
                }
            }
            guard bodyRemaining > 0 else { return progressed }
            // A large Content-Length body: once what was buffered with the head is sent, the
            // rest goes socket → pipe → socket without being copied into `input`.
            if requestChunks == nil, input.isEmpty,
               splicingRequest || bodyRemaining >= worker.config.spliceThreshold ?? .max,
               let pipe = requestPipe ?? makePipe() {
                requestPipe = pipe
                splicingRequest = true
                return spliceRequestBody(upstream, pipe) || progressed
            }
            if input.isEmpty {
                switch client.readClient() {
                case .data:
                    client.expectClient(.body, within: worker.config.bodyTimeoutNanoseconds)
                    continue
                case .wouldBlock:
                    if client.clientWait != .body { client.expectClient(.body, within: worker.config.bodyTimeoutNanoseconds) }
                    return progressed
                case .eof:
                    // The client vanished mid-body: the request cannot complete.
                    client.close()
                    return false
                }
            }
            guard upstream.mayWrite else { return progressed }
            if requestChunks != nil && chunkReady == 0 {
                do {
                    switch try requestChunks!.scan(input.readable) {
                    case .needMore: chunkReady = input.readableCount
                    case .complete(let consumed): chunkReady = consumed
                    }
                } catch let error as HTTPParseError {
                    // Bad chunked framing: whatever reached the replica is cut off with it.
                    fail(status: error.status, kind: .badRequest, message: error.message)
                    return false
                } catch {
                    client.close()
                    return false
                }
                if chunkReady == 0 {
                    // Only the final CRLF of the trailer section was missing and has now come.
                    if requestChunks!.isDone { bodyRemaining = 0 }
                    continue
                }
            }
            let chunk = requestChunks != nil
                ? chunkReady : Int(min(UInt64(input.readableCount), bodyRemaining))
            do {
                switch try Socket.write(upstream.fd, UnsafeRawBufferPointer(rebasing: input.readable[0..<chunk])) {
                case .wouldBlock:
                    upstream.mayWrite = false
                    return progressed
                case .done(let n):
                    input.consume(n)
                    if requestChunks != nil {
                        chunkReady -= n
                        if chunkReady == 0 && requestChunks!.isDone { bodyRemaining = 0 }
                    } else {
                        bodyRemaining -= UInt64(n)
                    }
                    if bodyRemaining == 0 && client.clientWait == .body { client.clientWait = .none }
                    progressed = true
                }
            } catch {
                upstreamFailed(upstream, reason: "\(error)")
                return false
            }
        }
        return progressed
    }

    /// Moves the request body from the client socket to the replica's through `pipe`.
    private func spliceRequestBody(_ upstream: UpstreamConnection, _ pipe: SplicePipe) -> Bool {
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            if pipe.buffered > 0 {
                guard upstream.mayWrite else { return progressed }
                do {
                    switch try pipe.drain(to: upstream.fd) {
                    case .wouldBlock:
                        upstream.mayWrite = false
                        return progressed
                    case .done(let n):
                        bodyRemaining -= UInt64(n)
                        if bodyRemaining == 0 && client.clientWait == .body { client.clientWait = .none }
                        progressed = true
                    }
                } catch {
                    upstreamFailed(upstream, reason: "\(error)")
                    return false
                }
                continue
            }
            guard bodyRemaining > 0 else { return progressed }
            switch client.spliceIn(to: pipe, limit: Int(min(bodyRemaining, 1 << 20))) {
            case .data:
                client.expectClient(.body, within: worker.config.bodyTimeoutNanoseconds)
                progressed = true
            case .wouldBlock:
                if client.clientWait != .body { client.expectClient(.body, within: worker.config.bodyTimeoutNanoseconds) }
                return progressed
            case .eof:
                // The client vanished mid-body: the request cannot complete.
                client.close()
                return false
            }
        }
        return progressed
    }

    /// Moves the rest of a Content-Length response body from the replica's socket to the
    /// client's through `pipe`; `responseRemaining` counts what has not been pulled yet.
    private func spliceResponseBody(_ upstream: UpstreamConnection, _ pipe: SplicePipe) -> Bool {
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            if pipe.buffered > 0 {
                guard client.mayWrite else { return progressed }
                do {
                    switch try pipe.drain(to: client.fd) {
                    case .wouldBlock:
                        client.mayWrite = false
                        return progressed
                    case .done:
                        progressed = true
                    }
                } catch {
                    client.close()
                    return false
                }
                continue
            }
            // Empty pipe and nothing left to pull: `forwardResponse` finishes the exchange.
            guard responseRemaining > 0 else { return true }
            guard upstream.mayRead else { return progressed }
            do {
                switch try pipe.fill(from: upstream.fd, limit: Int(min(responseRemaining, 1 << 20))) {
                case .wouldBlock:
                    upstream.mayRead = false
                    return progressed
                case .done(0):
                    // The replica closed mid-body: the client cannot get a complete response.
                    upstream.peerClosed = true
                    upstream.mayRead = false
                    client.close()
                    return false
                case .done(let n):
                    responseRemaining -= UInt64(n)
                    progressed = true
                }
            } catch {
                upstream.peerClosed = true
                client.close()
                return false
            }
        }
        return progressed
    }

    /// A pipe for splicing, or nil (then the body goes through the buffers as usual).
    private func makePipe() -> SplicePipe? {
        try? SplicePipe()
    }

    // MARK: response

    /// Reads the response and passes it to the client: the head rewritten (hop-by-hop fields
    /// out, our own `Connection` in), the body bytes unchanged.
    private func forwardResponse(_ upstream: UpstreamConnection) -> Bool {
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            // 0. Our own bytes first: a 100 Continue, the response head as rewritten. Body
            // bytes already here go along in the same write when they are few (one syscall for
            // a small response, as when the head was relayed unchanged).
            if !client.output.isEmpty {
                if readyForClient > 0 && client.output.readableCount + readyForClient <= Self.coalescedWriteLimit {
                    client.output.append(UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<readyForClient]))
                    upstream.input.consume(readyForClient)
                    readyForClient = 0
                }
                guard client.flushOutput() else { return progressed }
                progressed = true
            }
            // 1. Write what is ready.
            if readyForClient > 0 {
                guard client.mayWrite else { return progressed }
                do {
                    let bytes = UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<readyForClient])
                    switch try Socket.write(client.fd, bytes) {
                    case .wouldBlock:
                        client.mayWrite = false
                        return progressed
                    case .done(let n):
                        upstream.input.consume(n)
                        readyForClient -= n
                        progressed = true
                        continue
                    }
                } catch {
                    client.close()
                    return false
                }
            }
            // 2. Finished?
            if isResponseComplete(upstream) {
                finish(upstream)
                return true
            }
            // 3. Classify bytes already buffered.
            if upstream.input.readableCount > readyForClient {
                guard classifyResponseBytes(upstream) else { return false }
                if readyForClient > 0 || !client.output.isEmpty || isResponseComplete(upstream) { continue }
            }
            // 4. Read more from the replica: the rest of a large Content-Length body by splice,
            // once everything buffered has gone to the client. Bytes still in the pipe go first
            // (even when all have been pulled from the replica: no event would come for them).
            if let pipe = responsePipe, pipe.buffered > 0 {
                return spliceResponseBody(upstream, pipe) || progressed
            }
            if case .contentLength = framing, readyForClient == 0, upstream.input.isEmpty, client.output.isEmpty,
               responseRemaining > 0, splicingResponse || responseRemaining >= worker.config.spliceThreshold ?? .max,
               let pipe = responsePipe ?? makePipe() {
                responsePipe = pipe
                splicingResponse = true
                return spliceResponseBody(upstream, pipe) || progressed
            }
            guard upstream.mayRead else { return progressed }
            do {
                switch try upstream.read() {
                case .wouldBlock:
                    upstream.mayRead = false
                    return progressed
                case .done(0):
                    upstream.peerClosed = true
                    upstream.mayRead = false
                    if responseHead == nil {
                        if upstream.input.isEmpty {
                            upstreamFailed(upstream, reason: "connection closed before a response")
                        } else {
                            fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an incomplete response head")
                        }
                        return false
                    }
                    if case .untilClose = framing { continue } // complete once flushed
                    // The replica closed mid-body: the client cannot get a complete response.
                    client.close()
                    return false
                case .done:
                    if !responseStarted {
                        responseStarted = true
                        releaseHeadFromInput()
                    }
                    progressed = true
                }
            } catch {
                upstream.peerClosed = true
                if responseHead == nil && upstream.input.isEmpty {
                    upstreamFailed(upstream, reason: "\(error)")
                } else {
                    client.close()
                }
                return false
            }
        }
        return progressed
    }

    /// Decides which newly buffered bytes belong to the response. False after an error reply.
    private func classifyResponseBytes(_ upstream: UpstreamConnection) -> Bool {
        if responseHead == nil {
            // The head is parsed from the first byte not yet classified; `responseParseFrom` is
            // relative to that point, which stays put while earlier bytes go to the client.
            let unparsed = UnsafeRawBufferPointer(rebasing: upstream.input.readable[readyForClient...])
            switch worker.parser.parseResponseInfo(unparsed, from: responseParseFrom) {
            case .incomplete(let resume):
                responseParseFrom = resume
                return true
            case .failed(let error):
                fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an invalid response: \(error.message)")
                return false
            case .complete(let responseHead):
                responseParseFrom = 0
                if responseHead.status == 101 {
                    return switchProtocols(upstream, responseHead)
                }
                if responseHead.status >= 100 && responseHead.status < 200 {
                    // Interim responses are passed on (a 100 only if ours did not go already, none
                    // to an HTTP/1.0 client: RFC 9110 §15.2); the final one follows.
                    if !(responseHead.status == 100 && continueSent) && head.version == .http11 {
                        client.output.append(UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<responseHead.length]))
                    }
                    upstream.input.consume(responseHead.length)
                    return true
                }
                switch Framing.response(responseHead, requestIsHead: head.isHead) {
                case .failure(let error):
                    fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an invalid response: \(error.message)")
                    return false
                case .success(let framing):
                    self.responseHead = responseHead
                    self.framing = framing
                    if case .contentLength(let n) = framing { responseRemaining = n }
                    if let timer { worker.loop.cancel(timer); self.timer = nil }
                    closeAfterResponse = closeClientAfter || framing == .untilClose || worker.draining
                    relayHead(responseHead, from: upstream, connection: closeAfterResponse ? Self.connectionClose
                              : head.version == .http10 ? Self.connectionKeepAlive : [])
                }
            }
        }
        let unclassified = upstream.input.readableCount - readyForClient
        guard unclassified > 0 else { return true }
        switch framing {
        case .none:
            return true
        case .contentLength:
            let take = Int(min(UInt64(unclassified), responseRemaining))
            responseRemaining -= UInt64(take)
            readyForClient += take
        case .untilClose:
            readyForClient += unclassified
        case .chunked:
            let fresh = UnsafeRawBufferPointer(rebasing: upstream.input.readable[readyForClient...])
            do {
                switch try chunked.scan(fresh) {
                case .needMore: readyForClient += unclassified
                case .complete(let consumed): readyForClient += consumed
                }
            } catch {
                // The head is already on its way to the client: all we can do is cut both ends.
                client.close()
                return false
            }
        }
        return true
    }

    /// Up to this many bytes of head and body are copied into one write (a copy is cheaper than
    /// a second syscall).
    static let coalescedWriteLimit = 16 * 1024
    static let continueLine: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    static let connectionClose: [UInt8] = Array("Connection: close\r\n".utf8)
    static let connectionKeepAlive: [UInt8] = Array("Connection: keep-alive\r\n".utf8)
    static let connectionUpgrade: [UInt8] = Array("Connection: Upgrade\r\n".utf8)

    /// Moves a response head from the replica's bytes to the client's output without its
    /// hop-by-hop fields (RFC 9110 §7.6.1), with our own `Connection` field: whether the client
    /// connection stays open is ours to say, not the replica's.
    private func relayHead(_ responseHead: ResponseHeadInfo, from upstream: UpstreamConnection, connection: [UInt8],
                           upgrading: Bool = false) {
        let bytes = upstream.input.readable
        let output = client.output
        HopByHop.forEachKeptResponseRange(of: responseHead, in: bytes, upgrading: upgrading) {
            output.append(UnsafeRawBufferPointer(rebasing: bytes[$0]))
        }
        client.output.append(connection)
        client.output.append(Self.crlf)
        upstream.input.consume(responseHead.length)
    }

    private static let crlf: [UInt8] = [13, 10]

    /// A 101: the replica switched protocols (RFC 9110 §15.2.2). Only an upgrade the client asked
    /// for is accepted; the connections then become a tunnel. False after an error reply.
    private func switchProtocols(_ upstream: UpstreamConnection, _ responseHead: ResponseHeadInfo) -> Bool {
        guard head.connection.upgrade, bodyRemaining == 0 else {
            fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) switched protocols without being asked to")
            return false
        }
        if let timer { worker.loop.cancel(timer) }
        timer = nil
        tracked?.end(answered: true, nanoseconds: monotonicNanoseconds() - trackedSince)
        tracked = nil
        releaseHeadFromInput()
        relayHead(responseHead, from: upstream, connection: Self.connectionUpgrade, upgrading: true)
        self.upstream = nil
        ended = true
        client.startTunnel(upstream)
        return false
    }

    private func isResponseComplete(_ upstream: UpstreamConnection) -> Bool {
        guard responseHead != nil, readyForClient == 0, (responsePipe?.buffered ?? 0) == 0 else { return false }
        switch framing {
        case .none: return true
        case .contentLength: return responseRemaining == 0
        case .chunked: return chunked.isDone
        case .untilClose: return upstream.peerClosed && upstream.input.isEmpty
        }
    }

    private func releaseHeadFromInput() {
        if !headConsumed {
            client.input.consume(head.length)
            headConsumed = true
        }
    }

    // MARK: endings

    private func finish(_ upstream: UpstreamConnection) {
        if let timer { worker.loop.cancel(timer) }
        timer = nil
        tracked?.end(answered: true, nanoseconds: monotonicNanoseconds() - trackedSince)
        tracked = nil
        releaseHeadFromInput()
        let reusable = responseHead?.keepsConnection == true && framing != .untilClose
            && bodyRemaining == 0 && upstream.input.isEmpty
        if reusable && !worker.draining { worker.pool.give(upstream) } else { upstream.close() }
        self.upstream = nil
        // A replica may answer before reading the whole body; the rest of it would then be taken
        // for the next request, so the connection ends here.
        let closeAfter = closeAfterResponse || bodyRemaining > 0
        ended = true
        client.exchangeEnded(closeAfter: closeAfter)
    }

    /// The replica connection failed before the response began.
    private func upstreamFailed(_ upstream: UpstreamConnection, reason: String) {
        let backend = upstream.backend
        let wasReused = upstream.reused
        let neverConnected = !upstream.connected
        upstream.close()
        self.upstream = nil
        // The request can go again only if nothing of the response arrived and its head is still
        // in `input` (no body, so nothing was consumed).
        let resendable = !responseStarted && !headConsumed
        // A pooled connection the replica had already closed: once more on a fresh one.
        if wasReused && !retried && resendable {
            retried = true
            headSent = false
            attach(backend)
            return
        }
        worker.reportUnreachable(backend)
        // Another replica, if nothing was sent (connect failed) or the method is idempotent
        // (RFC 9110 §9.2.2: safe to repeat after a connection failure).
        if resendable && (neverConnected || Self.isIdempotent(head)) && failOver(from: backend) {
            return
        }
        fail(status: 502, kind: .connect, message: "Server \(backend.name) is unreachable: \(reason)")
    }

    /// Moves the exchange to the next distinct healthy candidate for its key. False when the
    /// retry budget is spent or no candidate is left.
    private func failOver(from backend: Backend) -> Bool {
        tried.append(backend.name)
        guard failoversLeft > 0, !headConsumed,
              let next = snapshot.select(hashedKey: hashedKey, excluding: tried) else { return false }
        failoversLeft -= 1
        worker.metrics.count(.retried)
        headSent = false
        retried = false
        attach(next)
        return true
    }

    /// RFC 9110 §9.2.2: safe to send again after a connection failure.
    static func isIdempotent(_ head: RequestHeadInfo) -> Bool {
        head.methodKind.isIdempotent
    }

    /// Ends the exchange with our own error response (nothing of the replica's reached the client).
    private func fail(status: Int, kind: ProxyMetrics.ErrorKind, message: String) {
        worker.metrics.count(kind)
        if !headConsumed { client.input.consume(head.length) }
        // A body not fully forwarded cannot be told apart from the next request: close.
        let mustClose = closeClientAfter || bodyRemaining > 0
        abandon()
        client.exchangeFailed(status: status, message: message, close: mustClose)
    }

    /// Drops the exchange without an answer of its own: the client is closing, or answers for it.
    func abandon() {
        if let timer { worker.loop.cancel(timer) }
        timer = nil
        tracked?.end(answered: false, nanoseconds: 0)
        tracked = nil
        upstream?.close()
        upstream = nil
        ended = true
    }
}
