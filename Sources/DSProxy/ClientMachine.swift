import DSHTTP1

/// The lifecycle of one client connection as a plain value: which state it is in, which
/// deadline runs, where it stands with the pipeline queue and the drain, and what each event
/// makes the connection do next. `ClientConnection` is its I/O shell: it performs the actions
/// (reads and writes, the deadline timer, the pipeline queue, closing) and reports what
/// happened as events. The machine makes no system call, reads no clock and allocates nothing
/// (`Actions` is a small inline value), so every transition is unit-tested without a socket.
///
/// The request/response exchange with the replica is still driven by `UpstreamExchange`; the
/// machine sees it as the `proxying` state and the events that begin and end it.
struct ClientMachine {
    /// What the connection waits for from its client; each has its own deadline (the shell
    /// turns the wait into a time: the machine has no clock).
    enum Wait: Equatable {
        case none
        /// A new connection that has sent nothing yet: the head deadline, not the idle one
        /// (silent connections are slowloris too).
        case firstByte
        /// Keep-alive between requests.
        case idle
        /// The rest of a head whose first bytes came: one deadline however slowly it trickles.
        case head
        /// More bytes of a request body.
        case body
    }

    enum State: Equatable {
        /// Between requests or in a head. `afterRequest`: a request has just ended and nothing
        /// has been read since, so bytes already buffered are a pipelined request, which waits
        /// its turn in the worker's `PipelineQueue` (`queued` once it is there).
        case readingHead(afterRequest: Bool, queued: Bool)
        /// Waiting for `length` body bytes of an admin request after its head (the parsed head
        /// stays with the shell: a state without references is copied and dropped for free).
        case readingAdminBody(length: Int)
        case awaitingAdmin
        case proxying
        /// After a 101: bytes both ways between client and replica (`Tunnel`).
        case tunneling
        /// Writing an admin answer without end (`/events`) as its producer sends it.
        case streaming
        /// Flush what is queued, then close.
        case closing
        case closed
    }

    enum Event {
        /// The connection is ready to read a head (nothing of ours left to write).
        case headWanted(buffered: Bool, pipelineOn: Bool)
        /// A complete head was parsed and is being routed.
        case headParsed
        /// A read for a head would block; `buffered`: part of a head is in.
        case headQuiet(buffered: Bool)
        /// Request body bytes arrived (an admin body, or a proxied one).
        case bodyBytes
        /// A read for body bytes would block.
        case bodyQuiet
        /// The proxied request's body has all gone to the replica.
        case bodyComplete
        /// The client's stream ended (or its socket failed).
        case clientEOF
        /// The head is an admin request with a `length`-byte body to read.
        case adminRequest(length: Int)
        /// The admin request went to the supervisor.
        case adminSubmitted
        /// The supervisor answered: a stream (`/events`) or a whole response.
        case adminAnswered(stream: Bool, close: Bool)
        /// The request went to a replica.
        case proxyStarted
        /// Our own response was queued (an error, a refusal); `close` if the client asked for it
        /// or a body that was not read forbids going on.
        case answered(close: Bool)
        /// The replica's response was relayed in full.
        case exchangeEnded(close: Bool)
        /// The replica switched protocols: the connection is a tunnel from now on.
        case upgraded
        /// The client deadline passed; `exchangeAnswerable`: the exchange may still be
        /// replaced by our own answer (nothing of the response has gone to the client).
        case deadlineExpired(exchangeAnswerable: Bool)
        /// The pipeline queue gives the connection its turn and a slot.
        case pipelineTurn
        /// The client does not take our bytes (a write would block).
        case writeBlocked
        /// Graceful stop; `buffered`: request bytes are waiting.
        case drain(buffered: Bool)
        /// The shell closed the connection.
        case closed
    }

    /// What the shell does after an event, as flags and one optional refusal: a fixed-size
    /// value, so handling an event allocates nothing.
    struct Actions: Equatable {
        struct Flags: OptionSet, Equatable {
            let rawValue: UInt16
            /// Go on reading and parsing the head (`headWanted`).
            static let readHead = Flags(rawValue: 1 << 0)
            /// Put the connection in the pipeline queue.
            static let queueForTurn = Flags(rawValue: 1 << 1)
            /// Give the pipeline slot back.
            static let releaseSlot = Flags(rawValue: 1 << 2)
            /// Close now.
            static let close = Flags(rawValue: 1 << 3)
            /// Write what is queued, then close.
            static let closeWhenFlushed = Flags(rawValue: 1 << 4)
            /// Drop the request bytes still buffered (the connection is closing).
            static let clearInput = Flags(rawValue: 1 << 5)
            /// End the streamed admin answer.
            static let endStream = Flags(rawValue: 1 << 6)
            /// Drop the exchange with the replica without its answer.
            static let abandonExchange = Flags(rawValue: 1 << 7)
            /// Give the input buffer's storage back (the connection waits with nothing in it).
            static let releaseInput = Flags(rawValue: 1 << 8)
        }

        /// Answers to a deadline that passed: both end the connection after the answer.
        enum Refusal: Equatable {
            case headTimeout
            case bodyStalled
        }

        var flags: Flags = []
        /// (Re)arm the client deadline for this wait, counted from now.
        var arm: Wait?
        var refuse: Refusal?

        static let none = Actions()

        init(_ flags: Flags = [], arm: Wait? = nil, refuse: Refusal? = nil) {
            self.flags = flags
            self.arm = arm
            self.refuse = refuse
        }

        func contains(_ flag: Flags) -> Bool { flags.contains(flag) }
    }

    private(set) var state = State.readingHead(afterRequest: false, queued: false)
    private(set) var wait = Wait.none
    /// A request head arrived on this connection. A fresh connection's first request may still
    /// be on its way when the drain starts: it is answered, with `Connection: close`, not cut off.
    private(set) var begun = false
    /// This connection's request was started by the pipeline queue and counts in its limit.
    private(set) var holdsSlot = false
    private(set) var draining = false
    /// Counts state changes, so the shell's drive loop goes on after a step that changed state
    /// without moving bytes.
    private(set) var transitions = 0

    init() {}

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    @inline(__always)
    mutating func handle(_ event: Event) -> Actions {
        switch event {
        case .headWanted(let buffered, let pipelineOn):
            guard case .readingHead(let afterRequest, let queued) = state else { return .none }
            guard afterRequest else { return Actions(.readHead) }
            if !buffered || !pipelineOn {
                // Nothing pipelined, or no queue: served as it arrived.
                state = .readingHead(afterRequest: false, queued: false)
                return Actions(.readHead)
            }
            if queued { return .none }
            state = .readingHead(afterRequest: true, queued: true)
            return Actions(.queueForTurn)

        case .headParsed:
            begun = true
            wait = .none
            return .none

        case .headQuiet(let buffered):
            // A pipelined request's head is still incomplete: its slot goes to someone ready.
            var actions = Actions(releaseSlotIfHeld())
            if buffered {
                if wait != .head { actions.arm = expect(.head) }
            } else {
                actions.flags.insert(.releaseInput)
                let next: Wait = begun ? .idle : .firstByte
                if wait != next { actions.arm = expect(next) }
            }
            return actions

        case .bodyBytes:
            // Every byte moves the body deadline on.
            return Actions(arm: expect(.body))

        case .bodyQuiet:
            return wait == .body ? .none : Actions(arm: expect(.body))

        case .bodyComplete:
            if wait == .body { wait = .none }
            return .none

        case .clientEOF:
            return Actions(.close)

        case .adminRequest(let length):
            return Actions(enter(.readingAdminBody(length: length)))

        case .adminSubmitted:
            wait = .none
            return Actions(enter(.awaitingAdmin))

        case .adminAnswered(let stream, let close):
            guard case .awaitingAdmin = state else { return .none }
            if stream {
                var actions = Actions(enter(.streaming))
                if draining { actions.flags.insert(.endStream) }
                return actions
            }
            return endRequest(close: close)

        case .proxyStarted:
            return Actions(enter(.proxying))

        case .answered(let close):
            var actions = endRequest(close: close)
            if actions.contains(.closeWhenFlushed) { actions.flags.insert(.clearInput) }
            return actions

        case .exchangeEnded(let close):
            return endRequest(close: close)

        case .upgraded:
            wait = .none
            return Actions(enter(.tunneling))

        case .deadlineExpired(let exchangeAnswerable):
            let expired = wait
            wait = .none
            switch expired {
            case .none:
                return .none
            case .idle, .firstByte:
                // Nothing was asked, so nothing is answered: the connection just ends.
                return Actions(.close)
            case .head:
                return Actions(enter(.closing).union([.closeWhenFlushed, .clearInput]), refuse: .headTimeout)
            case .body:
                // A body that stopped arriving: nothing sensible can reach the replica, and
                // once the response has begun nothing else can reach the client.
                guard case .proxying = state, exchangeAnswerable else { return Actions(.close) }
                return Actions(
                    enter(.closing).union([.abandonExchange, .closeWhenFlushed, .clearInput]), refuse: .bodyStalled)
            }

        case .pipelineTurn:
            if case .readingHead = state { state = .readingHead(afterRequest: false, queued: false) }
            holdsSlot = true
            return .none

        case .writeBlocked:
            // A client that does not read its answers is not work in progress: the slot goes to
            // someone ready, or a few such clients would hold up every pipelined request.
            return Actions(releaseSlotIfHeld())

        case .drain(let buffered):
            draining = true
            switch state {
            case .readingHead where !buffered && begun:
                return Actions(enter(.closing).union(.closeWhenFlushed))
            case .streaming:
                return Actions(.endStream) // what was sent goes out, then the connection closes
            default:
                // A tunnel ends when either side closes it (or at the drain deadline); a request
                // in progress makes its end the connection's end.
                return .none
            }

        case .closed:
            wait = .none
            let release = releaseSlotIfHeld()
            state = .closed
            return Actions(release)
        }
    }

    /// The request ended with an answer: the next head is read, or the connection closes once
    /// the answer is out.
    private mutating func endRequest(close: Bool) -> Actions {
        if close || draining { return Actions(enter(.closing).union(.closeWhenFlushed)) }
        return Actions(enter(.readingHead(afterRequest: false, queued: false)))
    }

    private mutating func expect(_ next: Wait) -> Wait {
        wait = next
        return next
    }

    private mutating func releaseSlotIfHeld() -> Actions.Flags {
        guard holdsSlot else { return [] }
        holdsSlot = false
        return .releaseSlot
    }

    /// Every state change goes through here: leaving a request (for a head, a tunnel, a stream
    /// or the close) ends it, which gives the pipeline slot back and marks bytes still buffered
    /// as pipelined.
    private mutating func enter(_ next: State) -> Actions.Flags {
        transitions &+= 1
        if case .readingHead = state {
            state = next
            return []
        }
        switch next {
        case .readingHead:
            state = .readingHead(afterRequest: true, queued: false)
        case .closing, .tunneling, .streaming:
            state = next
        default:
            state = next
            return []
        }
        return releaseSlotIfHeld()
    }
}

extension ClientMachine {
    /// What a complete request head gets before any byte of its body is read.
    enum Admission: Equatable {
        /// Routed on: its framing, and its body length (`UInt64.max` for chunked: unknown
        /// until the last chunk, which keeps every "body still pending" rule in force).
        case proceed(framing: BodyFraming, bodyLength: UInt64)
        /// Answered with `error`. `close`: a body was announced and is not read, so its bytes
        /// cannot be told from the next head. `consumeHead`: the connection goes on after the
        /// head (no body).
        case refuse(ProxyError, close: Bool, consumeHead: Bool)
    }

    /// The framing (`Framing.request`: 400 for every smuggling shape), then RFC 9110 §10.1.1
    /// (an expectation other than 100-continue cannot be met: 417), then the body cap
    /// (`maxBodyBytes`: 413).
    @inline(__always)
    static func admit(_ head: RequestHeadInfo, maxBodyBytes: UInt64?) -> Admission {
        let framing: BodyFraming
        switch Framing.request(head) {
        case .failure(let error):
            return .refuse(.badRequest(error), close: true, consumeHead: false)
        case .success(let decided):
            framing = decided
        }
        let bodyLength: UInt64
        switch framing {
        case .contentLength(let length): bodyLength = length
        case .chunked: bodyLength = .max
        default: bodyLength = 0
        }
        if head.version == .http11 && !head.expectContinue && head.hasExpect {
            return .refuse(
                .unsupportedExpectation, close: bodyLength > 0 || !head.wantsKeepAlive, consumeHead: bodyLength == 0)
        }
        if let cap = maxBodyBytes, bodyLength != .max, bodyLength > cap {
            return .refuse(.bodyTooLarge(length: bodyLength, limit: cap), close: true, consumeHead: false)
        }
        return .proceed(framing: framing, bodyLength: bodyLength)
    }

    /// What an admin request admitted by `admit` still cannot have: a chunked body (the
    /// supervisor takes whole bodies: 411) or one over `maxBody` (413). Nil: its body is read.
    static func admitAdmin(framing: BodyFraming, bodyLength: UInt64, maxBody: Int) -> (status: HTTPStatus, message: String)? {
        if framing == .chunked { return (.lengthRequired, "Admin requests need a Content-Length body, not chunked") }
        if bodyLength > UInt64(maxBody) { return (.contentTooLarge, "Admin request body larger than \(maxBody) bytes") }
        return nil
    }
}
