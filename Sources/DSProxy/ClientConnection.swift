#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem

/// One client connection on one worker: reads request heads, answers admin requests through the
/// supervisor, and proxies everything else to the replica the snapshot picks. Loop thread only.
///
/// Requests on a connection are handled one at a time; pipelined requests wait in `input` and
/// are answered in order once the current exchange ends.
final class ClientConnection: EventHandler, UpstreamOwner {
    enum State {
        case readingHead
        /// Waiting for `length` body bytes of an admin request after the head.
        case readingAdminBody(head: RequestHead, length: Int)
        case awaitingAdmin
        case proxying
        /// Flush what is queued in `output`, then close.
        case closing
    }

    let fd: Int32
    let peer: SocketAddress?
    private unowned let worker: Worker
    private let input = ByteBuffer(capacity: 8 * 1024)
    private let output = ByteBuffer(capacity: 1024)
    private var state = State.readingHead {
        didSet { transitions &+= 1 }
    }
    /// Counts state changes, so `drive` keeps going after a step that changed state without
    /// moving bytes (an error answer queued from inside the upstream code, say).
    private var transitions = 0
    private var parseFrom = 0
    private var mayRead = true
    private var mayWrite = true
    private var readEOF = false
    private(set) var closed = false

    /// The headers a proxy adds to every request it forwards; the peer never changes, so this is
    /// built once per connection.
    private lazy var forwardedHeader: [UInt8] = Array(
        "X-Forwarded-For: \(peer?.host ?? "unknown")\r\nX-Forwarded-Proto: http\r\n\r\n".utf8)
    private lazy var forwardedHeaderKeepAlive: [UInt8] = Array(
        "X-Forwarded-For: \(peer?.host ?? "unknown")\r\nX-Forwarded-Proto: http\r\nConnection: keep-alive\r\n\r\n".utf8)

    // The exchange in progress (state == .proxying).
    private var exchange = Exchange()

    struct Exchange {
        var head: RequestHead?
        var upstream: UpstreamConnection?
        /// Whether the head has been written upstream, and whether it has left `input`. A request
        /// without a body keeps its head at the front of `input` until the response begins, so a
        /// reused connection that turns out dead can be retried on a fresh one.
        var headSent = false
        var headConsumed = false
        var bodyRemaining: UInt64 = 0
        /// A chunked request body is forwarded as it came; the scanner finds where it ends, and
        /// `chunkReady` counts the bytes at the front of `input` known to belong to it.
        var requestChunks: ChunkedScanner?
        var chunkReady = 0
        /// A reused connection failed and the request went again on a fresh one.
        var retried = false
        /// The snapshot and hashed key the replica was chosen with, for failover to the next
        /// distinct candidate (`--retries`), and the replicas tried so far.
        var snapshot: Snapshot?
        var hashedKey: UInt64 = 0
        var tried: [String] = []
        var failoversLeft = 0
        /// The replica this exchange is counted against, and since when.
        var tracked: ProxyMetrics.Replica?
        var trackedSince: UInt64 = 0
        var responseStarted = false
        var responseHead: ResponseHead?
        var framing = BodyFraming.none
        var responseRemaining: UInt64 = 0
        var chunked = ChunkedScanner()
        /// Bytes at the front of `upstream.input` that belong to the response and await the client.
        var readyForClient = 0
        var responseParseFrom = 0
        var closeClientAfter = false
        var timer: TimerID?
    }

    init(fd: Int32, peer: SocketAddress?, worker: Worker) {
        self.fd = fd
        self.peer = peer
        self.worker = worker
    }

    // MARK: events

    func handle(_ events: IOEvents) {
        if events.contains(.error) || events.contains(.hangup) {
            close()
            return
        }
        if events.contains(.readable) || events.contains(.readHangup) { mayRead = true }
        if events.contains(.writable) { mayWrite = true }
        drive()
    }

    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) {
        guard upstream === exchange.upstream else { return }
        if !upstream.connected && (events.contains(.writable) || events.contains(.error) || events.contains(.hangup)) {
            let err = Socket.connectResult(upstream.fd)
            if err != 0 {
                upstreamFailed(upstream, reason: String(cString: strerror(err)))
                drive()
                return
            }
            upstream.connected = true
            upstream.mayWrite = true
            // Connected: the connect deadline gives way to the response deadline.
            if let timer = exchange.timer { worker.loop.cancel(timer) }
            exchange.timer = worker.loop.schedule(afterNanoseconds: worker.config.responseTimeoutNanoseconds) { [weak self] in
                self?.exchangeTimedOut()
            }
        }
        drive()
    }

    /// Makes all the progress possible now, then returns to wait for the next event.
    private func drive() {
        var progressed = true
        while progressed && !closed {
            let before = transitions
            switch state {
            case .readingHead: progressed = stepReadHead()
            case .readingAdminBody(let head, let length): progressed = stepAdminBody(head, length)
            case .awaitingAdmin: progressed = flushOutput() && false
            case .proxying: progressed = stepProxy()
            case .closing:
                if flushOutput() { close() }
                progressed = false
            }
            if transitions != before { progressed = true }
        }
    }

    // MARK: reading requests

    private enum ReadOutcome { case data, wouldBlock, eof }

    private func readClient() -> ReadOutcome {
        guard mayRead, !readEOF else { return readEOF ? .eof : .wouldBlock }
        do {
            switch try input.read(from: fd) {
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
        if !input.isEmpty {
            switch worker.parser.parseRequest(input.readable, from: parseFrom) {
            case .complete(let head):
                parseFrom = 0
                begin(head)
                return true
            case .failed(let error):
                worker.metrics.count(.badRequest)
                respond(status: error.status, message: error.message, close: true)
                return true
            case .incomplete(let resume):
                parseFrom = resume
            }
        }
        switch readClient() {
        case .data: return true
        case .wouldBlock:
            // Waiting: for a new request (idle keep-alive), or for the rest of a head, which
            // has one deadline from its first byte however slowly it trickles (slowloris).
            if input.isEmpty {
                if clientWait != .idle { expectClient(.idle, within: worker.config.idleTimeoutNanoseconds) }
            } else if clientWait != .head {
                expectClient(.head, within: worker.config.headTimeoutNanoseconds)
            }
            return false
        case .eof:
            // The client is done. A partial head left behind is dropped with the connection.
            close()
            return false
        }
    }

    // MARK: client deadlines

    /// What the connection is waiting for from its client, and until when. One timer serves
    /// them all and is re-armed lazily, so moving a deadline costs no timer operation.
    enum ClientWait { case none, idle, head, body }
    private var clientWait = ClientWait.none
    private var clientDeadline: UInt64 = 0
    private var clientTimer: TimerID?
    private var clientTimerAt: UInt64 = 0

    private func expectClient(_ wait: ClientWait, within nanoseconds: UInt64) {
        clientWait = wait
        clientDeadline = monotonicNanoseconds() + nanoseconds
        // A later deadline waits for the armed timer to fire and re-arm; an earlier one (the
        // head deadline replacing the idle one) needs the timer moved.
        if let timer = clientTimer, clientDeadline < clientTimerAt {
            worker.loop.cancel(timer)
            clientTimer = nil
        }
        if clientTimer == nil {
            clientTimerAt = clientDeadline
            clientTimer = worker.loop.schedule(afterNanoseconds: nanoseconds) { [weak self] in self?.clientTimerFired() }
        }
    }

    private func clientTimerFired() {
        clientTimer = nil
        guard !closed, clientWait != .none else { return }
        let now = monotonicNanoseconds()
        if now < clientDeadline {
            clientTimerAt = clientDeadline
            clientTimer = worker.loop.schedule(afterNanoseconds: clientDeadline - now) { [weak self] in self?.clientTimerFired() }
            return
        }
        switch clientWait {
        case .none:
            return
        case .idle:
            close()
        case .head:
            clientWait = .none
            worker.metrics.count(.badRequest)
            respond(status: 408, message: "Request header not received within \(worker.config.headTimeoutNanoseconds / 1_000_000_000) s", close: true)
            drive()
        case .body:
            clientWait = .none
            // A request body that stopped arriving: nothing sensible can reach the replica.
            if case .proxying = state, !exchange.responseStarted, exchange.readyForClient == 0 {
                exchange.upstream?.close()
                exchange.upstream = nil
                exchange.tracked?.end(answered: false, nanoseconds: 0)
                exchange.tracked = nil
                if let timer = exchange.timer { worker.loop.cancel(timer) }
                exchange = Exchange()
                respond(status: 408, message: "Request body stalled for \(worker.config.bodyTimeoutNanoseconds / 1_000_000_000) s", close: true)
                drive()
            } else {
                close()
            }
        }
    }

    /// Routes a complete head: admin endpoint, or proxied to a replica.
    private func begin(_ head: RequestHead) {
        clientWait = .none
        let framing: BodyFraming
        switch Framing.request(head) {
        case .failure(let error):
            worker.metrics.count(.badRequest)
            respond(status: error.status, message: error.message, close: true)
            return
        case .success(let decided):
            framing = decided
        }
        // A chunked body's length is unknown until its last chunk: `UInt64.max` keeps every
        // "body still pending" rule in force until the scanner sees the end.
        let bodyLength: UInt64
        switch framing {
        case .contentLength(let length): bodyLength = length
        case .chunked: bodyLength = .max
        default: bodyLength = 0
        }

        if let admin = worker.admin, admin.isAdminPath(head.path) {
            guard let peer, worker.config.adminAllow.contains(where: { $0.contains(peer) }) else {
                respond(status: 403, message: "Admin endpoint \(head.path) is not allowed from \(peer?.host ?? "this client")", close: true)
                return
            }
            guard framing != .chunked else {
                respond(status: 411, message: "Admin requests need a Content-Length body, not chunked", close: true)
                return
            }
            guard bodyLength <= UInt64(worker.config.maxAdminBody) else {
                respond(status: 413, message: "Admin request body larger than \(worker.config.maxAdminBody) bytes", close: true)
                return
            }
            state = .readingAdminBody(head: head, length: Int(bodyLength))
            return
        }
        proxy(head, bodyLength: bodyLength)
    }

    private func stepAdminBody(_ head: RequestHead, _ length: Int) -> Bool {
        if input.readableCount >= head.length + length {
            let body = [UInt8](UnsafeRawBufferPointer(rebasing: input.readable[head.length..<(head.length + length)]))
            input.consume(head.length + length)
            let request = AdminRequest(method: head.method, path: String(head.path),
                                       query: head.query.map(String.init), body: body)
            let closeAfter = !head.wantsKeepAlive
            let headOnly = head.isHead
            state = .awaitingAdmin
            clientWait = .none
            let loop = worker.loop
            let me = LoopBound(self)
            worker.admin?.submit(request) { response in
                loop.execute { me.value.adminReplied(response, close: closeAfter, headOnly: headOnly) }
            }
            return false
        }
        switch readClient() {
        case .data:
            expectClient(.body, within: worker.config.bodyTimeoutNanoseconds)
            return true
        case .wouldBlock:
            if clientWait != .body { expectClient(.body, within: worker.config.bodyTimeoutNanoseconds) }
            return false
        case .eof:
            close()
            return false
        }
    }

    private func adminReplied(_ response: AdminResponse, close closeAfter: Bool, headOnly: Bool) {
        guard !closed, case .awaitingAdmin = state else { return }
        output.append(ResponseWriter.response(status: response.status, contentType: response.contentType, body: response.body,
                                              close: closeAfter, headOnly: headOnly, extraHeaders: response.extraHeaders))
        state = closeAfter ? .closing : .readingHead
        drive()
    }

    /// Queues one of our own responses. `close` ends the connection after it is sent; a request
    /// body still unread makes that mandatory, since its bytes would be taken for the next head.
    private func respond(status: Int, message: String, close: Bool) {
        output.append(ResponseWriter.failure(status: status, message: message, close: close))
        if close {
            state = .closing
            input.clear()
        } else {
            state = .readingHead
        }
    }

    /// Writes queued own responses. True when nothing is left to write.
    private func flushOutput() -> Bool {
        while !output.isEmpty {
            guard mayWrite else { return false }
            do {
                if case .wouldBlock = try output.write(to: fd) {
                    mayWrite = false
                    return false
                }
            } catch {
                close()
                return false
            }
        }
        return true
    }

    // MARK: proxying

    private func proxy(_ head: RequestHead, bodyLength: UInt64) {
        let snapshot = worker.reader.snapshot
        var key = worker.config.keyExtractor.key(for: head, headBytes: input.readable, peer: peer)
        let hashedKey = key.withUTF8 { snapshot.table.key(UnsafeRawBufferPointer($0)) }
        let backend = worker.config.balanceFactor.map { worker.boundedSelect(snapshot, hashedKey: hashedKey, factor: $0) }
            ?? snapshot.select(hashedKey: hashedKey)
        guard let backend else {
            worker.metrics.count(.noReplica)
            input.consume(head.length)
            respond(status: 503, message: snapshot.isEmpty ? "No replica available: the pool is empty" : "No healthy replica available",
                    close: bodyLength > 0 || !head.wantsKeepAlive)
            return
        }
        exchange = Exchange()
        exchange.head = head
        exchange.bodyRemaining = bodyLength
        if bodyLength == .max { exchange.requestChunks = ChunkedScanner() }
        exchange.closeClientAfter = !head.wantsKeepAlive
        exchange.snapshot = snapshot
        exchange.hashedKey = hashedKey
        exchange.failoversLeft = worker.config.retries
        state = .proxying
        attach(backend)
    }

    /// Gets a connection to `backend` (pooled or new) for the current exchange.
    private func attach(_ backend: Backend) {
        let upstream: UpstreamConnection
        if !exchange.retried, let pooled = worker.pool.take(backend) {
            upstream = pooled
        } else {
            do {
                upstream = try worker.pool.connect(backend)
            } catch {
                worker.reportUnreachable(backend)
                if !failOver(from: backend) {
                    fail(status: 502, kind: .connect, message: "Server \(backend.name) is unreachable: \(error)")
                }
                return
            }
        }
        upstream.owner = self
        exchange.upstream = upstream
        if exchange.tracked == nil || exchange.tracked !== worker.metrics(for: backend) {
            exchange.tracked?.end(answered: false, nanoseconds: 0)
            exchange.tracked = worker.metrics(for: backend)
            exchange.tracked?.begin()
            exchange.trackedSince = monotonicNanoseconds()
        }
        if let timer = exchange.timer { worker.loop.cancel(timer) }
        let timeout = upstream.connected ? worker.config.responseTimeoutNanoseconds : worker.config.connectTimeoutNanoseconds
        exchange.timer = worker.loop.schedule(afterNanoseconds: timeout) { [weak self] in self?.exchangeTimedOut() }
        // A pooled or already-connected socket gets no new edge-triggered event: count the
        // attach as progress so `drive` goes on to send on it now.
        transitions &+= 1
    }

    private func exchangeTimedOut() {
        guard !closed, case .proxying = state, let upstream = exchange.upstream else { return }
        exchange.timer = nil
        if !upstream.connected {
            let backend = upstream.backend
            worker.reportUnreachable(backend)
            upstream.close()
            exchange.upstream = nil
            if !failOver(from: backend) {
                fail(status: 502, kind: .connect, message: "Server \(backend.name) did not accept the connection in time")
            }
        } else if exchange.responseHead == nil {
            fail(status: 504, kind: .timeout, message: "Server \(upstream.backend.name) did not answer in time")
        } else {
            close()
        }
        drive()
    }

    /// One round of moving bytes: request to the replica, response to the client.
    private func stepProxy() -> Bool {
        guard let upstream = exchange.upstream else { return false }
        guard upstream.connected else { return false }
        var progressed = false
        if !exchange.headSent {
            guard sendHead(upstream) else { return false }
            progressed = true
        }
        if upstream.closed { return false }
        if exchange.bodyRemaining > 0 || !upstream.output.isEmpty {
            if sendBody(upstream) { progressed = true }
            if closed || upstream.closed { return false }
        }
        if forwardResponse(upstream) { progressed = true }
        return progressed
    }

    /// Writes the head as it arrived, minus hop-by-hop fields, plus X-Forwarded-For and
    /// X-Forwarded-Proto, in one writev (DESIGN.md §1): the kept bytes are never copied.
    private func sendHead(_ upstream: UpstreamConnection) -> Bool {
        guard let head = exchange.head, upstream.mayWrite else { return false }
        let headBytes = input.readable
        let ranges = HopByHop.keptRanges(of: head, in: headBytes)
        // An HTTP/1.0 client's request goes out asking for keep-alive: the connection to the
        // replica is ours to reuse, whatever the client does with its own.
        let added = head.version == .http10 ? forwardedHeaderKeepAlive : forwardedHeader
        let total = ranges.reduce(0) { $0 + $1.count } + added.count
        let sent: Int
        do {
            sent = try added.withUnsafeBytes { extra -> Int in
                var iov = ranges.map {
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: headBytes.baseAddress! + $0.lowerBound), iov_len: $0.count)
                }
                iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: extra.baseAddress!), iov_len: extra.count))
                return try iov.withUnsafeMutableBufferPointer { buffer in
                    switch try Socket.writev(upstream.fd, buffer) {
                    case .done(let n): return n
                    case .wouldBlock: return 0
                    }
                }
            }
        } catch {
            upstreamFailed(upstream, reason: "\(error)")
            return false
        }
        if sent < total {
            // Keep what the socket did not take; it goes out before anything else.
            upstream.mayWrite = false
            var skip = sent
            for range in ranges {
                if skip >= range.count { skip -= range.count; continue }
                upstream.output.append(UnsafeRawBufferPointer(rebasing: headBytes[(range.lowerBound + skip)..<range.upperBound]))
                skip = 0
            }
            added.withUnsafeBytes { upstream.output.append(UnsafeRawBufferPointer(rebasing: $0[skip...])) }
        }
        exchange.headSent = true
        if exchange.bodyRemaining > 0 || sent < total {
            input.consume(head.length)
            exchange.headConsumed = true
        }
        return true
    }

    /// Streams the request body from the client to the replica; returns whether bytes moved.
    private func sendBody(_ upstream: UpstreamConnection) -> Bool {
        var progressed = false
        while !closed && !upstream.closed {
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
            guard exchange.bodyRemaining > 0 else { return progressed }
            if input.isEmpty {
                switch readClient() {
                case .data:
                    expectClient(.body, within: worker.config.bodyTimeoutNanoseconds)
                    continue
                case .wouldBlock:
                    if clientWait != .body { expectClient(.body, within: worker.config.bodyTimeoutNanoseconds) }
                    return progressed
                case .eof:
                    // The client vanished mid-body: the request cannot complete.
                    close()
                    return false
                }
            }
            guard upstream.mayWrite else { return progressed }
            if exchange.requestChunks != nil && exchange.chunkReady == 0 {
                do {
                    switch try exchange.requestChunks!.scan(input.readable) {
                    case .needMore: exchange.chunkReady = input.readableCount
                    case .complete(let consumed): exchange.chunkReady = consumed
                    }
                } catch let error as HTTPParseError {
                    // Bad chunked framing: whatever reached the replica is cut off with it.
                    fail(status: error.status, kind: .badRequest, message: error.message)
                    return false
                } catch {
                    close()
                    return false
                }
                if exchange.chunkReady == 0 {
                    // Only the final CRLF of the trailer section was missing and has now come.
                    if exchange.requestChunks!.isDone { exchange.bodyRemaining = 0 }
                    continue
                }
            }
            let chunk = exchange.requestChunks != nil
                ? exchange.chunkReady : Int(min(UInt64(input.readableCount), exchange.bodyRemaining))
            do {
                switch try Socket.write(upstream.fd, UnsafeRawBufferPointer(rebasing: input.readable[0..<chunk])) {
                case .wouldBlock:
                    upstream.mayWrite = false
                    return progressed
                case .done(let n):
                    input.consume(n)
                    if exchange.requestChunks != nil {
                        exchange.chunkReady -= n
                        if exchange.chunkReady == 0 && exchange.requestChunks!.isDone { exchange.bodyRemaining = 0 }
                    } else {
                        exchange.bodyRemaining -= UInt64(n)
                    }
                    if exchange.bodyRemaining == 0 && clientWait == .body { clientWait = .none }
                    progressed = true
                }
            } catch {
                upstreamFailed(upstream, reason: "\(error)")
                return false
            }
        }
        return progressed
    }

    /// Reads the response and passes its bytes to the client unchanged.
    private func forwardResponse(_ upstream: UpstreamConnection) -> Bool {
        var progressed = false
        while !closed && !upstream.closed {
            // 1. Write what is ready.
            if exchange.readyForClient > 0 {
                guard mayWrite else { return progressed }
                do {
                    let bytes = UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<exchange.readyForClient])
                    switch try Socket.write(fd, bytes) {
                    case .wouldBlock:
                        mayWrite = false
                        return progressed
                    case .done(let n):
                        upstream.input.consume(n)
                        exchange.readyForClient -= n
                        progressed = true
                        continue
                    }
                } catch {
                    close()
                    return false
                }
            }
            // 2. Finished?
            if isResponseComplete(upstream) {
                finishExchange(upstream)
                return true
            }
            // 3. Classify bytes already buffered.
            if upstream.input.readableCount > exchange.readyForClient {
                guard classifyResponseBytes(upstream) else { return false }
                if exchange.readyForClient > 0 || isResponseComplete(upstream) { continue }
            }
            // 4. Read more from the replica.
            guard upstream.mayRead else { return progressed }
            do {
                switch try upstream.input.read(from: upstream.fd) {
                case .wouldBlock:
                    upstream.mayRead = false
                    return progressed
                case .done(0):
                    upstream.peerClosed = true
                    upstream.mayRead = false
                    if exchange.responseHead == nil {
                        if upstream.input.isEmpty {
                            upstreamFailed(upstream, reason: "connection closed before a response")
                        } else {
                            fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an incomplete response head")
                        }
                        return false
                    }
                    if case .untilClose = exchange.framing { continue } // complete once flushed
                    // The replica closed mid-body: the client cannot get a complete response.
                    close()
                    return false
                case .done:
                    if !exchange.responseStarted {
                        exchange.responseStarted = true
                        releaseHeadFromInput()
                    }
                    progressed = true
                }
            } catch {
                upstream.peerClosed = true
                if exchange.responseHead == nil && upstream.input.isEmpty {
                    upstreamFailed(upstream, reason: "\(error)")
                } else {
                    close()
                }
                return false
            }
        }
        return progressed
    }

    /// Decides which newly buffered bytes belong to the response. False after an error reply.
    private func classifyResponseBytes(_ upstream: UpstreamConnection) -> Bool {
        if exchange.responseHead == nil {
            // The head is parsed from the first byte not yet classified; `responseParseFrom` is
            // relative to that point, which stays put while earlier bytes go to the client.
            let unparsed = UnsafeRawBufferPointer(rebasing: upstream.input.readable[exchange.readyForClient...])
            switch worker.parser.parseResponse(unparsed, from: exchange.responseParseFrom) {
            case .incomplete(let resume):
                exchange.responseParseFrom = resume
                return true
            case .failed(let error):
                fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an invalid response: \(error.message)")
                return false
            case .complete(let head):
                if head.status >= 100 && head.status < 200 {
                    // Interim responses (100 Continue) are passed on; the final one follows.
                    exchange.readyForClient += head.length
                    exchange.responseParseFrom = 0
                    return true
                }
                switch Framing.response(head, requestMethod: exchange.head?.method ?? "GET") {
                case .failure(let error):
                    fail(status: 502, kind: .invalidResponse, message: "Server \(upstream.backend.name) sent an invalid response: \(error.message)")
                    return false
                case .success(let framing):
                    exchange.responseHead = head
                    exchange.framing = framing
                    if case .contentLength(let n) = framing { exchange.responseRemaining = n }
                    exchange.readyForClient += head.length
                    if let timer = exchange.timer { worker.loop.cancel(timer); exchange.timer = nil }
                }
            }
        }
        let unclassified = upstream.input.readableCount - exchange.readyForClient
        guard unclassified > 0 else { return true }
        switch exchange.framing {
        case .none:
            return true
        case .contentLength:
            let take = Int(min(UInt64(unclassified), exchange.responseRemaining))
            exchange.responseRemaining -= UInt64(take)
            exchange.readyForClient += take
        case .untilClose:
            exchange.readyForClient += unclassified
        case .chunked:
            let fresh = UnsafeRawBufferPointer(rebasing: upstream.input.readable[exchange.readyForClient...])
            do {
                switch try exchange.chunked.scan(fresh) {
                case .needMore: exchange.readyForClient += unclassified
                case .complete(let consumed): exchange.readyForClient += consumed
                }
            } catch {
                // The head is already on its way to the client: all we can do is cut both ends.
                close()
                return false
            }
        }
        return true
    }

    private func isResponseComplete(_ upstream: UpstreamConnection) -> Bool {
        guard exchange.responseHead != nil, exchange.readyForClient == 0 else { return false }
        switch exchange.framing {
        case .none: return true
        case .contentLength: return exchange.responseRemaining == 0
        case .chunked: return exchange.chunked.isDone
        case .untilClose: return upstream.peerClosed && upstream.input.isEmpty
        }
    }

    private func releaseHeadFromInput() {
        if !exchange.headConsumed, let head = exchange.head {
            input.consume(head.length)
            exchange.headConsumed = true
        }
    }

    private func finishExchange(_ upstream: UpstreamConnection) {
        if let timer = exchange.timer { worker.loop.cancel(timer) }
        exchange.tracked?.end(answered: true, nanoseconds: monotonicNanoseconds() - exchange.trackedSince)
        exchange.tracked = nil
        releaseHeadFromInput()
        let reusable = exchange.responseHead?.keepsConnection == true && exchange.framing != .untilClose
            && exchange.bodyRemaining == 0 && upstream.input.isEmpty
        if reusable { worker.pool.give(upstream) } else { upstream.close() }
        // A replica may answer before reading the whole body; the rest of it would then be taken
        // for the next request, so the connection ends here.
        let closeAfter = exchange.closeClientAfter || exchange.framing == .untilClose || exchange.bodyRemaining > 0
        exchange = Exchange()
        state = closeAfter ? .closing : .readingHead
    }

    /// The replica connection failed before the response began.
    private func upstreamFailed(_ upstream: UpstreamConnection, reason: String) {
        let backend = upstream.backend
        let wasReused = upstream.reused
        let neverConnected = !upstream.connected
        upstream.close()
        exchange.upstream = nil
        // The request can go again only if nothing of the response arrived and its head is still
        // in `input` (no body, so nothing was consumed).
        let resendable = !exchange.responseStarted && !exchange.headConsumed
        // A pooled connection the replica had already closed: once more on a fresh one.
        if wasReused && !exchange.retried && resendable {
            exchange.retried = true
            exchange.headSent = false
            attach(backend)
            return
        }
        worker.reportUnreachable(backend)
        // Another replica, if nothing was sent (connect failed) or the method is idempotent
        // (RFC 9110 §9.2.2: safe to repeat after a connection failure).
        if resendable && (neverConnected || exchange.head.map(Self.isIdempotent) == true) && failOver(from: backend) {
            return
        }
        fail(status: 502, kind: .connect, message: "Server \(backend.name) is unreachable: \(reason)")
    }

    /// Moves the exchange to the next distinct healthy candidate for its key. False when the
    /// retry budget is spent or no candidate is left.
    private func failOver(from backend: Backend) -> Bool {
        exchange.tried.append(backend.name)
        guard exchange.failoversLeft > 0, let snapshot = exchange.snapshot, !exchange.headConsumed,
              let next = snapshot.select(hashedKey: exchange.hashedKey, excluding: exchange.tried) else { return false }
        exchange.failoversLeft -= 1
        worker.metrics.count(.retried)
        exchange.headSent = false
        exchange.retried = false
        attach(next)
        return true
    }

    static func isIdempotent(_ head: RequestHead) -> Bool {
        switch head.method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": return true
        default: return false
        }
    }

    /// Ends the exchange with our own error response (nothing of the replica's reached the client).
    private func fail(status: Int, kind: ProxyMetrics.ErrorKind, message: String) {
        if let timer = exchange.timer { worker.loop.cancel(timer) }
        exchange.tracked?.end(answered: false, nanoseconds: 0)
        exchange.tracked = nil
        worker.metrics.count(kind)
        exchange.upstream?.close()
        if !exchange.headConsumed, let head = exchange.head { input.consume(head.length) }
        // A body not fully forwarded cannot be told apart from the next request: close.
        let mustClose = exchange.closeClientAfter || exchange.bodyRemaining > 0
        exchange = Exchange()
        respond(status: status, message: message, close: mustClose)
    }

    // MARK: teardown

    func close() {
        guard !closed else { return }
        closed = true
        if let timer = exchange.timer { worker.loop.cancel(timer) }
        exchange.tracked?.end(answered: false, nanoseconds: 0)
        exchange.upstream?.close()
        exchange = Exchange()
        if let timer = clientTimer { worker.loop.cancel(timer) }
        worker.loop.unregister(fd)
        Socket.close(fd)
        worker.forget(self)
    }
}

/// Carries a loop-confined object through a `@Sendable` closure that is only ever run on that
/// same loop (via `EventLoop.execute`), so the object is never touched from another thread.
struct LoopBound<T: AnyObject>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
